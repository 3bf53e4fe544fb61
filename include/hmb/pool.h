/*
 * hmb/pool.h - the global byte budget.
 *
 * A pool holds a budget of `limit` bytes and the physical memory backends
 * that buffers come from. Runners (hmb/runner.h) take budget from it in two
 * ways:
 *   - acquire: hmb_runner_start() asks for the runner's estimate and waits,
 *     with a timeout, until the pool can grant it;
 *   - borrow: a running runner whose allocation needs more than it holds asks
 *     for exactly the deficit and waits (no timeout by default).
 *
 * Admission rules (docs/design.md explains why they cannot deadlock):
 *   1. Borrowers are served before acquirers, first come first served.
 *   2. Acquirers are served by priority (higher first), then arrival order.
 *      The head request blocks the ones behind it: a large request is never
 *      starved by a stream of small ones; it is granted when enough budget is
 *      released, or by rule 3.
 *   3. Over-commit: when no runner is running, the head acquirer is granted
 *      even beyond the limit, so progress never stops. When the last running
 *      runner stops running, waiting acquirers are re-examined at once.
 *   4. If every running runner is waiting to borrow, the first borrower is
 *      granted beyond the limit instead of deadlocking.
 *   5. Released budget wakes borrowers first, then acquirers.
 *
 * Conservation: held (sum of budget held by runners) + available == limit
 * at every instant; available < 0 exactly while over-committed.
 *
 * Lock order: one mutex per pool, taken last; the library never calls user
 * code (handlers, log sinks, backends) while holding it.
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

/* Opaque pool handle. */
typedef struct hmb_pool hmb_pool_t;

/* Wait forever (timeouts are in nanoseconds; 0 means "do not wait"). */
#define HMB_WAIT_FOREVER INT64_C(-1)

/* How the pinned region is created (see hmb_pool_config_t.pinned_bytes). */
typedef enum hmb_pinned_method {
  HMB_PINNED_HOST_ALLOC = 0, /* cudaHostAlloc of the whole region */
  HMB_PINNED_REGISTER = 1    /* allocate, pre-touch in parallel, register */
} hmb_pinned_method_t;

/*
 * Pool configuration. Zero-initialise (or call hmb_pool_config_init()) and
 * set what you need; every zero field means its default. Fields are only
 * ever appended.
 */
typedef struct hmb_pool_config {
  /* Budget in bytes. Required: > 0 and <= HMB_MAX_ALLOC. */
  size_t limit;
  /*
   * Largest single request (start estimate or allocation) ever accepted;
   * larger ones fail at once with HMB_ETOOBIG. 0: HMB_MAX_ALLOC.
   */
  size_t max_request;
  /* Alignment of every block (power of two); 0 or less than 64: 64. */
  size_t alignment;
  /*
   * Custom physical backend, copied at creation; NULL: the built-in ones
   * below. With a custom backend the pinned/cache fields are ignored.
   */
  const hmb_backend_t *backend;
  /*
   * Size of the CUDA pinned region sub-allocated for HMB_ALLOC_PINNED
   * requests; 0: no region. The region is created once, by
   * hmb_pool_create(), and stays mapped (and pinned) until
   * hmb_pool_destroy(), whatever is live. Blocks in it are 256-byte aligned
   * (or `alignment` if larger). Ignored (with the reason in the memory stats)
   * when the build has no CUDA, there is no usable GPU or driver, or the
   * region cannot be created: HMB_ALLOC_PINNED requests are then served
   * from pageable memory and counted as fallbacks, as are those that find
   * the region full. Either way each request is charged to the budget.
   */
  size_t pinned_bytes;
  /* An hmb_pinned_method_t; any other value: HMB_EINVAL from create. */
  int pinned_method;
  /*
   * Cap in bytes of the warm cache of freed pageable blocks; 0: no cache.
   * Freed pageable blocks of 4 KiB or more are kept (up to the cap) and
   * reused by later requests of the same size class instead of going back
   * to the OS; hmb_pool_trim() and hmb_pool_destroy() give them back.
   *
   * Physical bound. The budget is charged the requested size of every
   * buffer, whatever the backend rounds to. With a cache, pageable
   * requests of 4 KiB or more are rounded up to a size class (8 per power
   * of two), so each such block occupies less than 9/8 of its request, and
   * the cached blocks never total more than cache_bytes, at any instant
   * (room is reserved before a block is kept). Hence the pageable memory
   * the pool holds is at most
   *   9/8 x (live pageable bytes) + cache_bytes,
   * and the memory stats report its two parts: pageable_physical (live
   * blocks after rounding) + cached_bytes. The OS adds its own granularity
   * on top: blocks of 256 KiB or more are mapped in whole pages, smaller
   * ones carry the C library's per-block overhead and alignment padding.
   * The pinned region is fixed (pinned_bytes) and is not part of this sum.
   */
  size_t cache_bytes;
  /* Diagnostics sink for this pool; NULL: the process-wide one. */
  hmb_log_fn log_fn;
  /* Passed to log_fn as its first argument; may be NULL. */
  void *log_user;
  /* Highest level passed to log_fn; 0 means HMB_LOG_WARN. */
  int log_level;
  /* Waits longer than this are logged once (ns); 0: 1 s; <0: never. */
  int64_t long_wait_ns;
} hmb_pool_config_t;

/*
 * Fill `cfg` with defaults (all zero, which means defaults). NULL is a
 * no-op. Thread-safe (touches only `cfg`).
 */
HMB_API void hmb_pool_config_init(hmb_pool_config_t *cfg);

/*
 * Create a pool. Errors: HMB_EINVAL (NULL arguments, limit 0 or above
 * HMB_MAX_ALLOC, max_request above HMB_MAX_ALLOC, alignment not a power of
 * two, an incomplete backend, a negative log_level, an unknown
 * pinned_method), HMB_ENOMEM. On error *out is NULL.
 * Thread-safe (creates independent objects).
 */
HMB_API int hmb_pool_create(const hmb_pool_config_t *cfg, hmb_pool_t **out);

/*
 * Destroy a pool. NULL is a no-op returning 0. If runners (handles or
 * detached runners with live buffers) remain, nothing is destroyed: a leak
 * report naming each remaining runner is logged and HMB_EBUSY is returned;
 * the pool stays fully usable, so the caller can close what is left and
 * try again. Must not race with other calls on the same pool.
 */
HMB_API int hmb_pool_destroy(hmb_pool_t *pool);

/*
 * Snapshot of the budget counters (see hmb/stats.h). HMB_EINVAL for NULL.
 * Thread-safe; takes the pool lock briefly.
 */
HMB_API int hmb_pool_stats(hmb_pool_t *pool, hmb_pool_stats_t *out);

/*
 * Snapshot of the pool's physical memory counters. HMB_EINVAL for NULL.
 * Thread-safe, lock-free.
 */
HMB_API int hmb_pool_memory_stats(hmb_pool_t *pool, hmb_memory_stats_t *out);

/*
 * Give cached (warm) pageable blocks back to the OS until at most
 * `keep_bytes` remain cached. 0, or HMB_EINVAL for NULL. Thread-safe.
 */
HMB_API int hmb_pool_trim(hmb_pool_t *pool, size_t keep_bytes);

/*
 * Describe the pool for an error report: budget, waiters, and the `top`
 * runners by held budget with their live and peak bytes (top 0: 5; at most
 * 32 are listed). Writes
 * a NUL-terminated text into buf (truncated to len) and returns the length
 * of the whole description, like snprintf (a description is at most 4095
 * bytes); negative HMB_EINVAL for bad arguments.
 * Thread-safe; takes the pool lock.
 */
HMB_API int hmb_pool_describe(hmb_pool_t *pool, int top, char *buf, size_t len);

/* The pool's configured limit in bytes (0 for NULL). Thread-safe. */
HMB_API size_t hmb_pool_limit(const hmb_pool_t *pool);

#ifdef __cplusplus
}
#endif

#endif /* HMB_POOL_H */
