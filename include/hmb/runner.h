/**
 * @file hmb/runner.h
 * @brief One scan task's budget, and the allocator it reads through.
 *
 * A runner is created from a pool with an estimate of what its task needs
 * (for a file split, typically the split length). Starting it acquires the
 * estimate (or a first piece, for staged admission) from the pool. While it
 * runs it *is* the task's host allocator (hmb_runner_allocator()): every
 * buffer of the task comes through it, and it tracks
 *   - **held**: budget taken from the pool and not yet given back;
 *   - **live**: bytes of its buffers not yet closed;
 *   - **spare**: the part of held that backs no live buffer (the hot path
 *     allocates from it without any lock).
 *
 * @par Invariants (checked by hmb_pool_check())
 *   - **R-I1** held - live >= spare >= 0 at every instant; hence live <= held.
 *   - **R-I2** held == live + spare whenever no call on the runner is in
 *     flight.
 *   - **R-I3** beyond <= held, where beyond is the part of held granted
 *     beyond the pool's limit (see hmb/pool.h, I2-I3); returns repay it
 *     first.
 *
 * An allocation that fits in spare takes no lock; one that does not borrows
 * exactly the deficit from the pool (which may wait). When a buffer's last
 * reference is closed its bytes stop being live: while the runner is running
 * the budget stays with it for reuse (unless a declared need says it is not
 * needed); once it has stopped, the budget goes straight back to the pool.
 *
 * @par State machine (hmb_runner_state_t)
 * @verbatim
  CREATED --start--> WAITING --granted--> RUNNING --finish(0)----> COMPLETED
     |  ^                |  |                |   \--finish(err)--> FAILED
     |  +---timed out----+  +--cancel--+     +--cancel--> CANCELLED
     +--cancel------------------------> CANCELLED --finish--> CANCELLED
  any state --destroy--> CLOSED (the handle is gone; buffers may live on)
  @endverbatim
 *
 * @par Early release
 * As soon as the reader knows its real size (after column pruning and
 * row-group filtering) it calls hmb_runner_set_need(), which trims the held
 * budget to max(live, need) and returns the rest to the pool at once, while
 * the runner keeps running. hmb_runner_try_free() returns spare budget
 * directly.
 *
 * @par Staged admission
 * hmb_runner_start_partial() admits a runner for its first piece (for a
 * file split, the footer); hmb_runner_grow() then reserves up to the real
 * need, served like a borrow (before new starts).
 *
 * @par Threads
 * All calls may come from any thread. Allocation, buffer closes, try-free,
 * set-need, grow, cancel and stats may run concurrently with each other.
 * start, finish and destroy are the task's lifecycle: do not call them
 * concurrently with each other on the same runner, and do not destroy a
 * runner while another thread is inside a call on it (buffer closes are the
 * exception: buffers may be closed from any thread, before or after
 * destroy).
 */
#ifndef HMB_RUNNER_H
#define HMB_RUNNER_H

#include <stddef.h>
#include <stdint.h>

#include "allocator.h"
#include "buffer.h"
#include "export.h"
#include "pool.h"
#include "stats.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Opaque runner handle. */
typedef struct hmb_runner hmb_runner_t;

/**
 * Runner configuration. Fill it with hmb_runner_config_init() (or zero it)
 * and set fields; fields are only ever appended.
 */
typedef struct hmb_runner_config {
  /** Budget acquired by hmb_runner_start() (bytes; 0 is valid). */
  size_t estimate;
  /** Priority of the runner's starts, borrows and grows: higher is served
   *  first (R1, R2 in hmb/pool.h); equal priorities in arrival order. */
  int priority;
  /**
   * Longest wait of a single borrow or grow (ns); 0 or #HMB_WAIT_FOREVER:
   * no limit (the admission rules guarantee progress). Cancel always
   * interrupts.
   */
  int64_t borrow_timeout_ns;
  /**
   * Short name for diagnostics (copied, truncated to 31 bytes; control
   * characters such as newlines are replaced by '?' so that log lines stay
   * one line); may be NULL.
   */
  const char *name;
} hmb_runner_config_t;

/**
 * Fill `cfg` with the defaults (all zero).
 * @param cfg the configuration; NULL is a no-op
 * @par Thread-safety
 * Thread-safe.
 */
HMB_API void hmb_runner_config_init(hmb_runner_config_t *cfg);

/**
 * Create a runner in the CREATED state; it holds no budget yet. The form
 * behind the hmb_runner_create() macro.
 * @param pool     the pool it takes budget from
 * @param cfg      its configuration
 * @param cfg_size `sizeof(hmb_runner_config_t)` as the caller was compiled
 * @param out      receives the runner; NULL on error
 * @return 0, #HMB_EINVAL (NULL arguments, borrow_timeout_ns below
 *         #HMB_WAIT_FOREVER, a bad cfg_size), #HMB_ETOOBIG (estimate above
 *         the pool's max_request), #HMB_ENOTSUP (a newer caller's field),
 *         #HMB_ENOMEM
 * @par Thread-safety
 * Thread-safe.
 */
HMB_API int hmb_runner_create_sized(hmb_pool_t *pool,
                                    const hmb_runner_config_t *cfg,
                                    size_t cfg_size, hmb_runner_t **out);
/**
 * Create a runner (macro over hmb_runner_create_sized()).
 * @param pool the pool
 * @param cfg  its configuration
 * @param out  receives the runner
 */
#define hmb_runner_create(pool, cfg, out)                                      \
  hmb_runner_create_sized((pool), (cfg), sizeof(hmb_runner_config_t), (out))
/**
 * The function form of the hmb_runner_create() macro, for callers that cannot
 * use the macro (other languages, function pointers): the same call,
 * assuming the struct layout of this release.
 * @param pool as for the macro
 * @param cfg as for the macro
 * @param out as for the macro
 * @return as hmb_runner_create_sized()
 */
HMB_API int(hmb_runner_create)(hmb_pool_t *pool, const hmb_runner_config_t *cfg,
                               hmb_runner_t **out);

/**
 * Acquire the estimate and enter RUNNING; the same as
 * hmb_runner_start_partial(runner, estimate, timeout_ns).
 * @param runner     the runner
 * @param timeout_ns longest wait (0: do not wait, and do not sleep;
 *                   #HMB_WAIT_FOREVER: no limit)
 * @return see hmb_runner_start_partial()
 * @par Thread-safety
 * Lifecycle call (see the file comment); may run concurrently with cancel,
 * which wakes it.
 */
HMB_API int hmb_runner_start(hmb_runner_t *runner, int64_t timeout_ns);

/**
 * Acquire `bytes` (at most the declared need, when hmb_runner_set_need() was
 * called before start) and enter RUNNING: staged admission of a first
 * piece. When nothing is running and `bytes` does not fit, the pool grants
 * what is available instead (rule R3: never below 0) and the runner becomes
 * the progress runner; its later allocations are granted as they come.
 * @param runner     the runner
 * @param bytes      budget to acquire (0 is valid; it still waits its turn)
 * @param timeout_ns longest wait (0: do not wait, and do not sleep;
 *                   #HMB_WAIT_FOREVER: no limit)
 * @return 0; #HMB_ETIMEDOUT (nothing was taken; the runner is CREATED again,
 *         keeps its place in the queue, and start may be retried);
 *         #HMB_ECANCELED (cancelled while waiting or before); #HMB_ESTATE
 *         (not CREATED); #HMB_EINVAL (NULL, or a timeout below
 *         #HMB_WAIT_FOREVER); #HMB_ETOOBIG (bytes above the pool's
 *         max_request, or the pool's counters cannot represent the grant).
 *         On every error nothing changes (invariant I6).
 * @par Thread-safety
 * Lifecycle call; may run concurrently with cancel.
 */
HMB_API int hmb_runner_start_partial(hmb_runner_t *runner, size_t bytes,
                                     int64_t timeout_ns);

/**
 * Reserve budget until the runner holds at least `bytes`: the second stage
 * of staged admission, once the real need is known. The deficit is asked
 * for like a borrow (served before new starts, rule R1); if the runner is
 * the progress runner it is granted only what is available (a reservation
 * is not a real allocation, so it never goes beyond the limit: invariant
 * I4), and returns 0 holding less. Holding `bytes` already: returns 0 at
 * once.
 * @param runner     a RUNNING runner
 * @param bytes      the budget to hold
 * @param timeout_ns longest wait (0: do not wait; #HMB_WAIT_FOREVER: no
 *                   limit)
 * @return 0; #HMB_ETIMEDOUT or #HMB_ECANCELED (nothing taken); #HMB_ESTATE
 *         (not RUNNING); #HMB_ETOOBIG (bytes above the pool's max_request);
 *         #HMB_EINVAL (NULL, or a timeout below #HMB_WAIT_FOREVER)
 * @par Thread-safety
 * Thread-safe.
 */
HMB_API int hmb_runner_grow(hmb_runner_t *runner, size_t bytes,
                            int64_t timeout_ns);

/**
 * The allocator vtable of this runner, valid until destroy. Allocations
 * succeed only while RUNNING (#HMB_ESTATE otherwise, #HMB_ECANCELED once
 * cancelled). Beyond the held budget they borrow exactly the deficit; a
 * waiting borrow is also served by budget freed back to this runner by
 * another of its threads. Errors of a borrow: #HMB_ECANCELED (cancelled
 * while waiting), #HMB_ETIMEDOUT (borrow_timeout_ns elapsed), #HMB_ELIMIT
 * (the pool's over-commit cap), #HMB_ETOOBIG. A failed physical allocation
 * returns #HMB_ENOMEM and changes nothing (borrowed bytes go back).
 * @param runner the runner
 * @return the vtable; NULL for a NULL runner
 * @par Thread-safety
 * Thread-safe; the vtable's functions are thread-safe.
 */
HMB_API const hmb_allocator_t *hmb_runner_allocator(hmb_runner_t *runner);

/**
 * Shorthand for hmb_allocate(hmb_runner_allocator(runner), ...).
 * @param runner the runner
 * @param bytes  bytes to allocate (0 is valid and charges nothing)
 * @param flags  #HMB_ALLOC_PINNED or 0
 * @param out    receives the buffer
 * @return the errors of hmb_runner_allocator() and hmb_allocate();
 *         #HMB_EINVAL for a NULL runner
 * @par Thread-safety
 * Thread-safe.
 */
HMB_API int hmb_runner_alloc(hmb_runner_t *runner, size_t bytes, unsigned flags,
                             hmb_buffer_t **out);

/**
 * Reserve `bytes` of budget with no memory behind it: `*out` is a buffer
 * whose data is NULL and whose size is `bytes`. It is charged exactly like
 * an allocation (counts as live, borrows the deficit if needed, the same
 * errors except #HMB_ENOMEM only for the handle) and gives its budget back
 * when its last reference is closed. For memory that does not come through
 * the runner (a decoder's own allocator, a consumer-held result) that must
 * still be bounded. Slices of a reservation have NULL data too.
 * @param runner the runner
 * @param bytes  bytes to reserve (> 0)
 * @param out    receives the reservation
 * @return 0 or an error as above; #HMB_EINVAL for NULL or 0 bytes
 * @par Thread-safety
 * Thread-safe.
 */
HMB_API int hmb_runner_reserve(hmb_runner_t *runner, size_t bytes,
                               hmb_buffer_t **out);

/**
 * Return up to `max_bytes` of spare budget to the pool now. Works in every
 * state until destroy; returns 0 with nothing to give. Any `max_bytes`
 * (SIZE_MAX included) is honoured: after it, spare is
 * max(0, spare - max_bytes).
 * @param runner    the runner
 * @param max_bytes most bytes to return
 * @param returned  receives the bytes returned; may be NULL
 * @return 0 or #HMB_EINVAL (NULL)
 * @par Thread-safety
 * Thread-safe.
 */
HMB_API int hmb_runner_try_free(hmb_runner_t *runner, size_t max_bytes,
                                size_t *returned);

/**
 * Declare the real need once known: trim held to max(live, need) and return
 * the rest to the pool now (the early release). The declared need stays in
 * force: while the runner keeps running, budget freed by closing buffers is
 * given back whenever held exceeds max(live, need) (a later call replaces
 * the need). A need above held returns nothing (use hmb_runner_grow() to
 * reserve it). Declared before start, it caps what start acquires.
 * @param runner   the runner
 * @param need     the real need in bytes
 * @param returned receives the bytes returned; may be NULL
 * @return 0, #HMB_EINVAL (NULL), #HMB_ETOOBIG (need above #HMB_MAX_ALLOC;
 *         nothing changes), #HMB_ESTATE (destroyed)
 * @par Thread-safety
 * Thread-safe.
 */
HMB_API int hmb_runner_set_need(hmb_runner_t *runner, size_t need,
                                size_t *returned);

/**
 * Finish the task: `status` 0 gives COMPLETED, anything else FAILED. The
 * runner stops running (if it was the progress runner, the role passes on;
 * waiting requests are re-examined at once), returns its spare budget at
 * once, and from now on every closed buffer returns its bytes to the pool.
 * Allowed in RUNNING, and in CANCELLED (the state stays CANCELLED).
 * @param runner   the runner
 * @param status   0 for success
 * @param returned receives the spare budget returned; may be NULL
 * @return 0, #HMB_ESTATE (any other state, a second finish, or while
 *         another thread of the task still waits in a borrow), #HMB_EINVAL
 * @par Thread-safety
 * Lifecycle call; other threads may allocate (they then fail with
 * #HMB_ESTATE) or close buffers.
 */
HMB_API int hmb_runner_finish(hmb_runner_t *runner, int status,
                              size_t *returned);

/**
 * Cancel: a runner waiting in start, a borrow or a grow wakes at once with
 * #HMB_ECANCELED; a running runner stops running and its later allocations
 * fail with #HMB_ECANCELED. It keeps the budget it held within the limit
 * (including that of buffers closed afterwards, which returns to its spare;
 * budget beyond the limit goes back as soon as no live buffer needs it);
 * all of it that is not live comes back at finish or destroy. Idempotent while
 * not finished: cancelling a cancelled runner returns 0; once it is finished
 * (completed, failed, or cancelled and then finished) or destroyed,
 * #HMB_ESTATE.
 * @param runner the runner
 * @return 0, #HMB_ESTATE (finished), #HMB_EINVAL (NULL)
 * @par Thread-safety
 * Thread-safe (this is the call meant to come from another thread).
 */
HMB_API int hmb_runner_cancel(hmb_runner_t *runner);

/**
 * Whether hmb_runner_cancel() was called.
 * @param runner the runner
 * @return 1 once cancelled, else 0 (also for NULL)
 * @par Thread-safety
 * Thread-safe, lock-free.
 */
HMB_API int hmb_runner_is_cancelled(const hmb_runner_t *runner);

/**
 * The current state.
 * @param runner the runner
 * @return an hmb_runner_state_t; #HMB_RUNNER_CLOSED for NULL
 * @par Thread-safety
 * Thread-safe, lock-free.
 */
HMB_API int hmb_runner_state(const hmb_runner_t *runner);

/**
 * Wait until no buffer of this runner is live.
 * @param runner     the runner
 * @param timeout_ns longest wait (#HMB_WAIT_FOREVER: no limit)
 * @return 0, #HMB_ETIMEDOUT, or #HMB_EINVAL (NULL, or a timeout below
 *         #HMB_WAIT_FOREVER)
 * @par Thread-safety
 * Thread-safe.
 */
HMB_API int hmb_runner_wait_idle(hmb_runner_t *runner, int64_t timeout_ns);

/**
 * Destroy the handle. A RUNNING runner is finished first (COMPLETED); spare
 * budget goes back at once. Buffers still live are not touched: they stay
 * valid, and each returns its budget to the pool when closed (the runner is
 * detached; its bookkeeping is freed with its last buffer). Use
 * hmb_runner_wait_idle() first to wait for them instead. The pool refuses
 * destruction while detached runners remain.
 * @param runner the runner; NULL is a no-op
 * @par Thread-safety
 * Must not race with other calls on this handle.
 */
HMB_API void hmb_runner_destroy(hmb_runner_t *runner);

/**
 * Snapshot of this runner's counters; the form behind hmb_runner_stats().
 * @param runner   the runner
 * @param out      receives the snapshot (see hmb/stats.h for exactness)
 * @param out_size `sizeof(hmb_runner_stats_t)` as the caller was compiled
 * @return 0 or #HMB_EINVAL
 * @par Thread-safety
 * Thread-safe, lock-free.
 */
HMB_API int hmb_runner_stats_sized(const hmb_runner_t *runner,
                                   hmb_runner_stats_t *out, size_t out_size);
/**
 * Snapshot of a runner's counters (macro over hmb_runner_stats_sized()).
 * @param runner the runner
 * @param out    receives the snapshot
 */
#define hmb_runner_stats(runner, out)                                          \
  hmb_runner_stats_sized((runner), (out), sizeof(hmb_runner_stats_t))
/**
 * The function form of the hmb_runner_stats() macro, for callers that cannot
 * use the macro (other languages, function pointers): the same call,
 * assuming the struct layout of this release.
 * @param runner as for the macro
 * @param out as for the macro
 * @return as hmb_runner_stats_sized()
 */
HMB_API int(hmb_runner_stats)(const hmb_runner_t *runner,
                              hmb_runner_stats_t *out);

/**
 * Name of a runner state ("RUNNING").
 * @param state an hmb_runner_state_t
 * @return a static string; "UNKNOWN" if out of range; never NULL
 * @par Thread-safety
 * Thread-safe.
 */
HMB_API const char *hmb_runner_state_name(int state);

/**
 * Bind `runner` to the calling thread, so that hmb_bound_allocator() charges
 * it: for code that cannot be handed an allocator (a reader reading footers,
 * a pool interface created once per reader). Bindings nest: keep what this
 * returns and bind it again to restore it. The binding holds no reference:
 * unbind before the runner is destroyed.
 * @param runner the runner to bind; NULL unbinds
 * @return the runner bound before (NULL if none)
 * @par Thread-safety
 * Affects only the calling thread.
 */
HMB_API hmb_runner_t *hmb_runner_bind(hmb_runner_t *runner);

/**
 * The runner bound to the calling thread.
 * @return the runner, or NULL when none is bound
 * @par Thread-safety
 * Reads only the calling thread's binding.
 */
HMB_API hmb_runner_t *hmb_runner_bound(void);

#ifdef __cplusplus
}
#endif

#endif /* HMB_RUNNER_H */
