/**
 * @file hmb/pool.h
 * @brief The global byte budget: admission, over-commit and its bounds.
 *
 * A pool holds a budget of `limit` bytes and the physical memory that
 * buffers come from. Runners (hmb/runner.h) take budget from it:
 *   - **start**: hmb_runner_start() asks for the runner's estimate (or
 *     hmb_runner_start_partial() for a first piece) and waits, with a
 *     timeout, until the pool grants it;
 *   - **borrow**: a running runner whose allocation needs more than it holds
 *     asks for exactly the deficit (real bytes) and waits;
 *   - **grow**: a running runner reserves budget up to a declared need
 *     (hmb_runner_grow(), staged admission); it queues with the borrowers.
 *
 * @par Admission rules (docs/design.md gives the argument for each)
 *   - **R1 Borrowers first.** Borrow and grow requests are served before
 *     starts, by their runner's priority (higher first), then arrival (first
 *     come first served at equal priorities, the default); while one waits,
 *     no start is granted.
 *   - **R2 Starts in order.** Starts are served by priority (higher first),
 *     then arrival. The head blocks the ones behind it, whatever their size
 *     (a start of 0 bytes included): a large start is never bypassed by a
 *     stream of small ones. A retried start keeps the place of its first try.
 *   - **R3 Idle progress.** When no runner is running and the head start
 *     does not fit, it is granted what is available (its request capped at
 *     `limit - held`, never below 0) and its runner becomes the *progress
 *     runner*. (A head start that fits is simply granted, by R2.)
 *   - **R4 Deadlock prevention.** When every running runner waits to borrow
 *     or grow, the waiting runner that holds the most becomes the progress
 *     runner.
 *   - **R5 The progress runner.** At most one runner is the progress runner
 *     at any instant; it keeps the role until it stops running (finish,
 *     cancel, destroy). Its borrows are granted at once, beyond the limit if
 *     need be (they are real bytes of real allocations); its grows are
 *     granted only what is available. No other grant ever goes beyond the
 *     limit.
 *
 * @par Invariants (checked by hmb_pool_check(); numbered as in docs/design.md)
 *   - **I1 Conservation.** held + available == limit, held == the sum of
 *     what the runners hold; available < 0 exactly while over-committed.
 *   - **I2 One runner beyond the limit.** Every runner records `beyond`, the
 *     budget it was granted beyond the limit and still holds (returns repay
 *     it first). Only the progress runner's `beyond` grows; every other
 *     running runner has `beyond == 0`.
 *   - **I3 The over-commit bound.** held <= limit + (beyond of runners that
 *     have stopped, held only by their live buffers) + (beyond of the
 *     progress runner, which is at most its live bytes: budget beyond the
 *     limit that a close frees goes back to the pool at once). In
 *     particular, while buffers do not outlive their runners, held <= limit
 *     + one task's real need. (After hmb_pool_set_limit() lowered the
 *     limit, add what the lowering left above it.)
 *   - **I4 Real bytes.** A start or a grow is never granted beyond the
 *     limit; only borrows (real allocations) are. A task whose real need
 *     fits in what is available never over-commits, whatever its estimate.
 *   - **I5 The cap.** With #HMB_POOL_CAP_OVERCOMMIT, no grant makes held -
 *     limit exceed `overcommit_cap` (0: the pool never holds more than its
 *     limit); a request that would pass it fails at once with #HMB_ELIMIT
 *     and changes nothing. The trade: such a task fails instead of
 *     over-committing, so progress is no longer guaranteed. (Lowering the
 *     limit below what is held does not take budget away: until enough
 *     comes back, held - limit may exceed the cap by what the lowering left
 *     above the new limit.)
 *   - **I6 Failures change nothing.** A failed allocation, a timed-out or
 *     cancelled borrow or grow, and a refused start leave held, spare and
 *     every budget counter of the runner and the pool as they were (the
 *     failure counters aside: timeouts, cancels, `limit_rejects`,
 *     `failed_wait_ns`). The progress role is admission state, not a
 *     counter: a runner that became the progress runner for a request that
 *     then failed keeps the role until it stops running.
 *
 * @par Pressure
 *   Handlers added with hmb_pool_add_pressure_handler() are called, outside
 *   every library lock, when a request has waited longer than
 *   `pressure_wait_ns`, and just before a borrow is granted beyond the limit
 *   (with the bytes it lacks), so that the holder of finished buffers can
 *   flush, spill or copy them out. The request is decided again after the
 *   handlers return: budget they freed serves it within the limit.
 *
 * @par Locks
 *   One budget mutex per pool, taken last; the library never calls user
 *   code (handlers, hooks, log sinks, backends) while holding it.
 */
#ifndef HMB_POOL_H
#define HMB_POOL_H

#include <stddef.h>
#include <stdint.h>

#include "backend.h"
#include "export.h"
#include "log.h"
#include "stats.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Opaque pool handle. */
typedef struct hmb_pool hmb_pool_t;

/** Wait without limit (timeouts are in nanoseconds; 0 means "do not wait"). */
#define HMB_WAIT_FOREVER INT64_C(-1)

/** How the pinned region is created (see hmb_pool_config_t::pinned_bytes). */
typedef enum hmb_pinned_method {
  HMB_PINNED_HOST_ALLOC = 0, /**< cudaHostAlloc of the whole region */
  HMB_PINNED_REGISTER = 1    /**< map, pre-touch in parallel, register */
} hmb_pinned_method_t;

/** Flags of hmb_pool_config_t::flags. */
enum hmb_pool_flags {
  /** Enforce hmb_pool_config_t::overcommit_cap (invariant I5). */
  HMB_POOL_CAP_OVERCOMMIT = 1u << 0,
  /** No warm cache: freed pageable blocks go straight back to the OS. */
  HMB_POOL_NO_CACHE = 1u << 1,
  /** Never ask for transparent huge pages for fresh mappings. */
  HMB_POOL_NO_HUGEPAGES = 1u << 2
};

/** What a wait hook is told (see hmb_pool_config_t::wait_hook). */
typedef enum hmb_wait_phase {
  HMB_WAIT_BEGIN = 1, /**< the thread is about to block in the pool */
  HMB_WAIT_END = 2    /**< it has stopped waiting (granted or not) */
} hmb_wait_phase_t;

/** Kinds of budget request, as reported to hooks and handlers. */
typedef enum hmb_request_kind {
  HMB_REQUEST_START = 1,  /**< hmb_runner_start() / _start_partial() */
  HMB_REQUEST_BORROW = 2, /**< an allocation beyond the held budget */
  HMB_REQUEST_GROW = 3    /**< hmb_runner_grow() */
} hmb_request_kind_t;

/** One begin or end of a wait in the pool. */
typedef struct hmb_wait_event {
  int phase;               /**< an hmb_wait_phase_t */
  int request;             /**< an hmb_request_kind_t */
  uint64_t runner_id;      /**< the waiting runner (hmb_runner_stats_t::id) */
  const char *runner_name; /**< its name ("" if none); valid during the call */
  size_t bytes;            /**< bytes asked for */
  int result;              /**< END: 0 or the HMB_E* code returned; BEGIN: 0 */
  int64_t waited_ns;       /**< END: time spent waiting; BEGIN: 0 */
} hmb_wait_event_t;

/**
 * Wait hook: lets an engine's own deadlock detector see threads blocked in
 * hmb. Called on the waiting thread, with no library lock held, once when it
 * is about to block and once when it stops waiting. Must be thread-safe and
 * must not wait for budget itself.
 * @param user the pointer given in hmb_pool_config_t::wait_hook_user
 * @param ev   what happened; valid only during the call
 */
typedef void (*hmb_wait_hook_fn)(void *user, const hmb_wait_event_t *ev);

/** Why a pressure handler is called. */
typedef enum hmb_pressure_kind {
  HMB_PRESSURE_WAIT = 1,      /**< a request has waited pressure_wait_ns */
  HMB_PRESSURE_OVERCOMMIT = 2 /**< a borrow is about to go beyond the limit */
} hmb_pressure_kind_t;

/** What a pressure handler is told. */
typedef struct hmb_pressure {
  int kind;                /**< an hmb_pressure_kind_t */
  int request;             /**< an hmb_request_kind_t */
  uint64_t runner_id;      /**< the runner whose request is short */
  const char *runner_name; /**< its name ("" if none); valid during the call */
  size_t wanted;           /**< bytes the request lacks now */
  int64_t waited_ns;       /**< how long it has waited so far */
  int64_t held;            /**< pool budget held when the handler was called */
  int64_t limit;           /**< pool limit at that moment */
} hmb_pressure_t;

/**
 * Pressure handler: free, flush, spill or copy out buffers you hold so that
 * a waiting request can be served within the limit. Called on the thread of
 * the request that is short, with no library lock held; it may close
 * buffers, call try-free or set-need, finish runners, and read stats. It
 * must be thread-safe, must not wait for budget, and must not add or remove
 * pressure handlers.
 * @param user the pointer given to hmb_pool_add_pressure_handler()
 * @param pool the pool under pressure
 * @param ev   the request that is short; valid only during the call
 */
typedef void (*hmb_pressure_fn)(void *user, hmb_pool_t *pool,
                                const hmb_pressure_t *ev);

/**
 * Pool configuration. Fill it with hmb_pool_config_init() (or zero it) and
 * set what you need: every zero field means its default, and only `limit`
 * is required. The defaults are the fast, safe configuration: warm cache
 * inside the budget, huge pages for large fresh mappings, no over-commit cap
 * (progress is guaranteed). Fields are only ever appended; the size the
 * caller was compiled with travels with every call (see hmb_pool_create()).
 */
typedef struct hmb_pool_config {
  /** Budget in bytes. Required: > 0 and <= #HMB_MAX_ALLOC. */
  size_t limit;
  /**
   * Largest single request (start, grow or allocation) ever accepted;
   * larger ones fail at once with #HMB_ETOOBIG. 0: #HMB_MAX_ALLOC.
   */
  size_t max_request;
  /**
   * Alignment of every buffer of hmb_allocate() (a power of two);
   * 0 or less than 64: 64. The pointer API takes its own alignment.
   */
  size_t alignment;
  /**
   * Custom physical backend, copied at creation; NULL: the built-in ones.
   * With a custom backend the pinned, cache and huge-page settings are
   * ignored.
   */
  const hmb_backend_t *backend;
  /**
   * Size of the CUDA pinned region sub-allocated for #HMB_ALLOC_PINNED
   * requests; 0: no region. Without `pinned_base`, hmb_pool_create()
   * creates the region by `pinned_method`, loading the CUDA runtime at that
   * moment (a pool without a region never loads it); the region stays
   * mapped until hmb_pool_destroy(). When the runtime, a driver or a device
   * is missing,
   * or the region cannot be made, pinned requests are served pageable and
   * counted as fallbacks, with the reason in hmb_memory_stats_t; so are
   * those that find the region full. Either way every request is charged to
   * the budget. Blocks in the region are 256-byte aligned (or more).
   */
  size_t pinned_bytes;
  /** An hmb_pinned_method_t; any other value: #HMB_EINVAL from create. */
  int pinned_method;
  /**
   * Extra cap in bytes of the warm cache; 0: no extra cap. The cache always
   * lives inside the budget: it keeps freed pageable blocks only in budget
   * no runner holds, and gives them back to the OS before a grant needs
   * that budget (see the physical bound in hmb/stats.h). Off with
   * #HMB_POOL_NO_CACHE.
   */
  size_t cache_bytes;
  /** Diagnostics sink for this pool; NULL: the process-wide one. */
  hmb_log_fn log_fn;
  /** Passed to log_fn as its first argument; may be NULL. */
  void *log_user;
  /** Highest level passed to log_fn; 0 means #HMB_LOG_WARN. */
  int log_level;
  /** Waits longer than this are logged once (ns); 0: 1 s; < 0: never. */
  int64_t long_wait_ns;
  /** Bit set of hmb_pool_flags. */
  unsigned flags;
  /**
   * With #HMB_POOL_CAP_OVERCOMMIT: the most bytes the pool may ever hold
   * beyond its limit (0: never beyond). Ignored without the flag.
   */
  size_t overcommit_cap;
  /**
   * Pressure handlers are called for a request that has waited this long
   * (ns); 0: 100 ms; < 0: never (they are still called before a borrow
   * goes beyond the limit).
   */
  int64_t pressure_wait_ns;
  /** Called when a thread starts and stops waiting in the pool; may be NULL. */
  hmb_wait_hook_fn wait_hook;
  /** Passed to wait_hook as its first argument; may be NULL. */
  void *wait_hook_user;
  /**
   * Memory the application has already pinned (for example with
   * cudaHostRegister) to use as the pinned region, `pinned_bytes` long;
   * NULL: the pool creates its own. The pool never frees it; it must
   * outlive the pool. hmb_buffer_is_pinned() reports its blocks as pinned.
   */
  void *pinned_base;
} hmb_pool_config_t;

/**
 * Fill `cfg` with the defaults (all zero, which means defaults).
 * @param cfg the configuration to fill; NULL is a no-op
 * @par Thread-safety
 * Thread-safe (touches only `cfg`).
 */
HMB_API void hmb_pool_config_init(hmb_pool_config_t *cfg);

/**
 * Create a pool; the form behind the hmb_pool_create() macro, which passes
 * the caller's `sizeof(hmb_pool_config_t)`.
 * @param cfg      the configuration (see hmb_pool_config_t)
 * @param cfg_size the size of `*cfg` as the caller was compiled; fields the
 *                 library does not know must be zero
 * @param out      receives the pool; NULL on error
 * @return 0, #HMB_EINVAL (NULL arguments, limit 0 or above #HMB_MAX_ALLOC,
 *         max_request above #HMB_MAX_ALLOC, alignment not a power of two,
 *         an incomplete backend, a negative log_level, an unknown
 *         pinned_method or flag, a cfg_size smaller than the first
 *         release's), #HMB_ENOTSUP (a newer caller set a field this library
 *         does not have), #HMB_ENOMEM.
 * @par Thread-safety
 * Thread-safe (creates independent objects).
 */
HMB_API int hmb_pool_create_sized(const hmb_pool_config_t *cfg, size_t cfg_size,
                                  hmb_pool_t **out);

/**
 * Create a pool. A macro over hmb_pool_create_sized() that passes the size
 * of hmb_pool_config_t the caller was compiled with, so that an older
 * binary keeps working with a newer library (see hmb_pool_create_sized()
 * for the errors). A function of the same name, for callers that cannot
 * use the macro, assumes this release's layout.
 * @param cfg the configuration
 * @param out receives the pool
 */
#define hmb_pool_create(cfg, out)                                              \
  hmb_pool_create_sized((cfg), sizeof(hmb_pool_config_t), (out))
/**
 * The function form of the hmb_pool_create() macro, for callers that cannot
 * use the macro (other languages, function pointers): the same call,
 * assuming the struct layout of this release.
 * @param cfg as for the macro
 * @param out as for the macro
 * @return as hmb_pool_create_sized()
 */
HMB_API int(hmb_pool_create)(const hmb_pool_config_t *cfg, hmb_pool_t **out);

/**
 * Destroy a pool. If runners (handles, or detached runners with live
 * buffers) remain, nothing is destroyed: a leak report naming each
 * remaining runner is logged and #HMB_EBUSY is returned; the pool stays
 * fully usable, so the caller can close what is left and try again.
 * @param pool the pool; NULL is a no-op returning 0
 * @return 0, #HMB_EBUSY, or #HMB_ESTATE when called from a log sink,
 *         pressure handler or wait hook of this pool while a destroy of the
 *         same pool is in progress (nothing is destroyed twice).
 * @par Thread-safety
 * Must not race with other calls on the same pool.
 */
HMB_API int hmb_pool_destroy(hmb_pool_t *pool);

/**
 * Change the limit at run time. Growing admits waiters at once. Shrinking
 * never fails and never strands a waiter: budget already held above the new
 * limit stays with its runners and comes back as usual, and every later
 * grant respects the new limit (a borrow of the progress runner excepted,
 * as R5 says). The warm cache gives back what no longer fits before this
 * returns.
 * @param pool  the pool
 * @param limit the new limit: > 0 and <= #HMB_MAX_ALLOC
 * @return 0 or #HMB_EINVAL
 * @par Thread-safety
 * Thread-safe.
 */
HMB_API int hmb_pool_set_limit(hmb_pool_t *pool, size_t limit);

/**
 * The pool's current limit in bytes.
 * @param pool the pool
 * @return the limit, 0 for NULL
 * @par Thread-safety
 * Thread-safe, lock-free.
 */
HMB_API size_t hmb_pool_limit(const hmb_pool_t *pool);

/**
 * Register a pressure handler (see hmb_pressure_fn).
 * @param pool the pool
 * @param fn   the handler; required
 * @param user passed to `fn`; may be NULL
 * @param id   receives an identifier for hmb_pool_remove_pressure_handler();
 *             may be NULL
 * @return 0, #HMB_EINVAL (NULL pool or fn), #HMB_ENOMEM (more than 64
 *         handlers)
 * @par Thread-safety
 * Thread-safe; not from inside a pressure handler.
 */
HMB_API int hmb_pool_add_pressure_handler(hmb_pool_t *pool, hmb_pressure_fn fn,
                                          void *user, int *id);

/**
 * Remove a pressure handler. When this returns, no call of it is running
 * and none will start, so its `user` may be freed.
 * @param pool the pool
 * @param id   as returned by hmb_pool_add_pressure_handler()
 * @return 0, #HMB_EINVAL (NULL pool or unknown id)
 * @par Thread-safety
 * Thread-safe; not from inside a pressure handler.
 */
HMB_API int hmb_pool_remove_pressure_handler(hmb_pool_t *pool, int id);

/**
 * Snapshot of the budget counters; the form behind hmb_pool_stats().
 * @param pool     the pool
 * @param out      receives the snapshot (see hmb/stats.h for which fields
 *                 are exact)
 * @param out_size the size of `*out` as the caller was compiled; only that
 *                 many bytes are written
 * @return 0 or #HMB_EINVAL (NULL, or out_size below the first release's)
 * @par Thread-safety
 * Thread-safe; takes the budget lock once, for the budget counters and a
 * walk of the pool's runners (O(runners), a few loads each).
 */
HMB_API int hmb_pool_stats_sized(hmb_pool_t *pool, hmb_pool_stats_t *out,
                                 size_t out_size);
/**
 * Snapshot of the budget counters (a macro passing the caller's struct
 * size to hmb_pool_stats_sized()).
 * @param pool the pool
 * @param out  receives the snapshot
 */
#define hmb_pool_stats(pool, out)                                              \
  hmb_pool_stats_sized((pool), (out), sizeof(hmb_pool_stats_t))
/**
 * The function form of the hmb_pool_stats() macro, for callers that cannot
 * use the macro (other languages, function pointers): the same call,
 * assuming the struct layout of this release.
 * @param pool as for the macro
 * @param out as for the macro
 * @return as hmb_pool_stats_sized()
 */
HMB_API int(hmb_pool_stats)(hmb_pool_t *pool, hmb_pool_stats_t *out);

/**
 * Snapshot of the pool's physical memory counters; the form behind
 * hmb_pool_memory_stats().
 * @param pool     the pool
 * @param out      receives the snapshot
 * @param out_size the size of `*out` as the caller was compiled
 * @return 0 or #HMB_EINVAL
 * @par Thread-safety
 * Thread-safe and lock-free (counters are read with relaxed loads).
 */
HMB_API int hmb_pool_memory_stats_sized(hmb_pool_t *pool,
                                        hmb_memory_stats_t *out,
                                        size_t out_size);
/**
 * Snapshot of the pool's physical memory counters (a macro over
 * hmb_pool_memory_stats_sized()).
 * @param pool the pool
 * @param out  receives the snapshot
 */
#define hmb_pool_memory_stats(pool, out)                                       \
  hmb_pool_memory_stats_sized((pool), (out), sizeof(hmb_memory_stats_t))
/**
 * The function form of the hmb_pool_memory_stats() macro, for callers that
 * cannot use the macro (other languages, function pointers): the same call,
 * assuming the struct layout of this release.
 * @param pool as for the macro
 * @param out as for the macro
 * @return as hmb_pool_memory_stats_sized()
 */
HMB_API int(hmb_pool_memory_stats)(hmb_pool_t *pool, hmb_memory_stats_t *out);

/**
 * Give cached (warm) pageable blocks back to the OS until at most
 * `keep_bytes` remain cached.
 * @param pool       the pool
 * @param keep_bytes cached bytes to keep
 * @return 0 or #HMB_EINVAL for NULL
 * @par Thread-safety
 * Thread-safe.
 */
HMB_API int hmb_pool_trim(hmb_pool_t *pool, size_t keep_bytes);

/**
 * Describe the pool for an error report: budget, waiters, the progress
 * runner, and the `top` runners by held budget with their live and peak
 * bytes. Like snprintf: writes a NUL-terminated text into `buf` (truncated
 * to `len`) and returns the length of the whole description (at most 4095
 * bytes). Costs O(top log top) under the budget lock, whatever the number of
 * runners: the pool keeps its holders in a heap.
 * @param pool the pool
 * @param top  how many runners to list (0: 5; at most 32 are listed)
 * @param buf  where to write; may be NULL when `len` is 0
 * @param len  size of `buf`
 * @return the description's length, or #HMB_EINVAL (negative)
 * @par Thread-safety
 * Thread-safe.
 */
HMB_API int hmb_pool_describe(hmb_pool_t *pool, int top, char *buf, size_t len);

/** Flags of hmb_pool_check(). */
enum hmb_check_flags {
  /**
   * The caller promises that no call on the pool, its runners or their
   * buffers is in flight: the invariants that hold only at rest are checked
   * too.
   */
  HMB_CHECK_QUIESCENT = 1u << 0
};

/**
 * The library's self-check of the budget ledger and the memory layer.
 * At any instant, with calls in flight on other threads, it verifies I1
 * (held is the sum of the runners' held), I2 (only the progress runner's
 * `beyond` can grow: every other running runner has none), I3 (over-commit
 * within the stopped runners' `beyond` plus the progress runner's), I5 (the
 * cap), spare >= 0 and 0 <= beyond <= held for every runner, one progress
 * runner at most and it is running, the running count, the queue counts,
 * the heap of holders, and that the pool's list of runners holds as many as
 * it counts (the `runners` of hmb_pool_stats_t). With #HMB_CHECK_QUIESCENT it
 * also verifies what holds only at rest: held == live + spare and live >= 0 for
 * every runner, no request queued, the memory layer's counters, and that each
 * thread shard of a runner is owned only by a thread that owns its own shard of
 * the memory layer (docs/design.md, S-I1). Stress tests and fuzzers call it
 * after every step.
 * @param pool  the pool
 * @param flags bit set of hmb_check_flags
 * @param buf   receives the first broken invariant ("" when sound),
 *              truncated to `len` (a message is under 512 bytes); may be
 *              NULL when `len` is 0
 * @param len   size of `buf`
 * @return 0 when every invariant holds, #HMB_EFAILED otherwise,
 *         #HMB_EINVAL for bad arguments
 * @par Thread-safety
 * Thread-safe; takes the budget lock for a walk of every runner.
 */
HMB_API int hmb_pool_check(hmb_pool_t *pool, unsigned flags, char *buf,
                           size_t len);

#ifdef __cplusplus
}
#endif

#endif /* HMB_POOL_H */
