/*
 * hmb/runner.h - one scan task's budget, and the allocator it reads through.
 *
 * A runner is created from a pool with an estimate of what its task needs
 * (for a file split, typically the split length). Starting it acquires the
 * estimate from the pool. While it runs, it *is* the task's host allocator
 * (hmb_runner_allocator()): every buffer of the task comes through it, and it
 * tracks two numbers:
 *   held - budget it holds (taken from the pool);
 *   live - bytes of its buffers not yet closed.
 * live <= held at every instant. An allocation that fits in held - live is
 * lock-free (the hot path); one that does not borrows exactly the deficit
 * from the pool (which may wait). When a buffer's last reference is closed
 * its bytes stop being live: while the runner is running the budget stays
 * with it for reuse; once it has finished the budget goes straight back to
 * the pool.
 *
 * State machine (hmb_runner_state_t):
 *
 *   CREATED --start--> WAITING --granted--> RUNNING --finish--> COMPLETED
 *    |  ^                 |  |                 |    \-finish(err)-> FAILED
 *    |  +----timed out----+  +--cancel--+      +--cancel--> CANCELLED
 *    +--cancel------------------------> CANCELLED
 *   any state --destroy--> CLOSED (the handle is gone; see destroy)
 *
 * Early release: as soon as the reader knows its real size (after column
 * pruning and row-group filtering) it calls hmb_runner_set_need(), which
 * trims the held budget to max(live, need) and returns the rest to the pool
 * at once, while the runner keeps running. hmb_runner_try_free() returns
 * unused budget (held - live) directly.
 *
 * Threads: all calls may come from any thread. Allocation, close of buffers,
 * try-free, set-need, cancel and stats may run concurrently with each other.
 * start, finish and destroy are the task's lifecycle: do not call them
 * concurrently with each other on the same runner, and do not destroy a
 * runner while another thread is inside a call on it (buffer closes are the
 * exception: buffers may be closed from any thread, before or after destroy).
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

/* Opaque runner handle. */
typedef struct hmb_runner hmb_runner_t;

/* Runner configuration; zero-initialise, then set fields. */
typedef struct hmb_runner_config {
  /* Budget acquired by start (bytes; 0 is valid and granted at once). */
  size_t estimate;
  /* Start priority: higher is served first. */
  int priority;
  /*
   * Longest wait of a single borrow (ns); 0 or HMB_WAIT_FOREVER: no limit
   * (the deadlock rules guarantee progress). Cancel always interrupts.
   */
  int64_t borrow_timeout_ns;
  /* Short name for diagnostics (copied, truncated to 31 bytes); may be NULL. */
  const char *name;
} hmb_runner_config_t;

/*
 * Create a runner in the CREATED state; it holds no budget yet.
 * Errors: HMB_EINVAL (NULL arguments, borrow_timeout_ns below
 * HMB_WAIT_FOREVER), HMB_ETOOBIG (estimate above the pool's max_request),
 * HMB_ENOMEM. On error *out is NULL. Thread-safe.
 */
HMB_API int hmb_runner_create(hmb_pool_t *pool, const hmb_runner_config_t *cfg,
                              hmb_runner_t **out);

/*
 * Acquire the estimate and enter RUNNING. Waits up to `timeout_ns`
 * (0: do not wait; HMB_WAIT_FOREVER: no limit). Errors: HMB_ETIMEDOUT
 * (nothing was taken; the runner is CREATED again and start may be retried),
 * HMB_ECANCELED (cancelled while waiting or before), HMB_ESTATE (not
 * CREATED), HMB_EINVAL (NULL, or a timeout below HMB_WAIT_FOREVER),
 * HMB_ETOOBIG (granting it would push the pool's total beyond what its
 * counters can represent: only after huge over-commits).
 * A retried start keeps the place in the pool's queue of its first attempt.
 * Lifecycle call: not concurrently with finish/destroy of this runner; may
 * run concurrently with cancel, which wakes it.
 */
HMB_API int hmb_runner_start(hmb_runner_t *runner, int64_t timeout_ns);

/*
 * The allocator vtable of this runner; valid until destroy. Allocations
 * succeed only while RUNNING: HMB_ESTATE otherwise (HMB_ECANCELED once
 * cancelled). Beyond the held budget they borrow exactly the deficit; a
 * waiting borrow is also served by budget freed back to this runner by
 * another of its threads. HMB_ECANCELED if cancelled while waiting,
 * HMB_ETIMEDOUT if borrow_timeout_ns elapsed, HMB_ETOOBIG if granting it
 * would push the pool's total beyond what its counters can represent.
 * A failed physical allocation returns HMB_ENOMEM and rolls back every
 * budget counter it touched (borrowed bytes go back to the pool).
 * Thread-safe. NULL for a NULL runner.
 */
HMB_API const hmb_allocator_t *hmb_runner_allocator(hmb_runner_t *runner);

/*
 * Shorthand for hmb_allocate(hmb_runner_allocator(runner), ...), with the
 * same errors (see hmb_runner_allocator() and hmb_allocate()); HMB_EINVAL
 * for a NULL runner. Thread-safe.
 */
HMB_API int hmb_runner_alloc(hmb_runner_t *runner, size_t bytes, unsigned flags,
                             hmb_buffer_t **out);

/*
 * Reserve `bytes` of budget with no memory behind it: *out is a buffer whose
 * data is NULL and whose size is `bytes`. It is charged exactly like an
 * allocation (counts as live, borrows the deficit if needed, same errors
 * except HMB_ENOMEM only for the handle) and gives its budget back when its
 * last reference is closed. For memory that does not come through the runner
 * (a decoder's own allocator, a legacy path, a consumer-held result) that
 * must still be bounded. Slices of a reservation have NULL data too.
 * Thread-safe.
 */
HMB_API int hmb_runner_reserve(hmb_runner_t *runner, size_t bytes,
                               hmb_buffer_t **out);

/*
 * Return up to `max_bytes` of unused budget (held - live) to the pool now
 * and store the amount returned in *returned (may be NULL). Works in every
 * state until destroy; returns 0 with nothing to give. HMB_EINVAL for NULL.
 * Thread-safe.
 */
HMB_API int hmb_runner_try_free(hmb_runner_t *runner, size_t max_bytes,
                                size_t *returned);

/*
 * Declare the real need once known: trim held to max(live, need) and return
 * the rest to the pool now (the early release). The declared need stays in
 * force: while the runner keeps running, budget freed by closing buffers is
 * also given back whenever held exceeds max(live, need) (a later call
 * replaces the need). A need above held returns nothing (the runner borrows
 * later, if it must). *returned (may be NULL)
 * gets the bytes returned. Errors: HMB_EINVAL (NULL), HMB_ETOOBIG (need
 * above HMB_MAX_ALLOC; nothing changes). Thread-safe.
 */
HMB_API int hmb_runner_set_need(hmb_runner_t *runner, size_t need,
                                size_t *returned);

/*
 * Finish the task: `status` 0 gives COMPLETED, anything else FAILED. The
 * runner stops running (waking acquirers if it was the last one), returns
 * its over-claim (held - live) at once (stored in *returned, may be NULL),
 * and from now on every closed buffer returns its bytes to the pool.
 * Allowed in RUNNING, and in CANCELLED (the state stays CANCELLED).
 * HMB_ESTATE otherwise (for example a second finish, or while another
 * thread of the task is still waiting in a borrow), HMB_EINVAL for NULL.
 * Lifecycle call: not concurrently with start/destroy of this runner; other
 * threads may allocate (they then fail with HMB_ESTATE) or close buffers.
 */
HMB_API int hmb_runner_finish(hmb_runner_t *runner, int status,
                              size_t *returned);

/*
 * Cancel: a runner waiting in start or in a borrow wakes at once with
 * HMB_ECANCELED; a running runner stops running and its later allocations
 * fail with HMB_ECANCELED. It keeps the budget it held (including that of
 * buffers closed afterwards, which returns to its spare), and all of it that
 * is not live comes back at finish or destroy. Idempotent; HMB_ESTATE if
 * already finished, HMB_EINVAL for NULL.
 * Thread-safe (this is the call meant to come from another thread).
 */
HMB_API int hmb_runner_cancel(hmb_runner_t *runner);

/*
 * 1 once hmb_runner_cancel() was called, else 0 (also for NULL).
 * Thread-safe, lock-free.
 */
HMB_API int hmb_runner_is_cancelled(const hmb_runner_t *runner);

/*
 * The current state (an hmb_runner_state_t); HMB_RUNNER_CLOSED for NULL.
 * Thread-safe, lock-free.
 */
HMB_API int hmb_runner_state(const hmb_runner_t *runner);

/*
 * Wait until no buffer of this runner is live, up to `timeout_ns`
 * (HMB_WAIT_FOREVER: no limit). 0, HMB_ETIMEDOUT, or HMB_EINVAL (NULL, or a
 * timeout below HMB_WAIT_FOREVER). Thread-safe.
 */
HMB_API int hmb_runner_wait_idle(hmb_runner_t *runner, int64_t timeout_ns);

/*
 * Destroy the handle. NULL is a no-op. A RUNNING runner is finished first
 * (COMPLETED); unused budget goes back at once. Buffers still live are not
 * touched: they stay valid, and each returns its budget to the pool when
 * closed (the runner is detached; its bookkeeping is freed with its last
 * buffer). Use hmb_runner_wait_idle() first to wait for them instead.
 * Nothing leaks either way; the pool refuses destruction while detached
 * runners remain. Must not race with other calls on this handle.
 */
HMB_API void hmb_runner_destroy(hmb_runner_t *runner);

/* Snapshot of this runner's counters. HMB_EINVAL for NULL. Thread-safe. */
HMB_API int hmb_runner_stats(const hmb_runner_t *runner,
                             hmb_runner_stats_t *out);

/*
 * Name of a runner state ("RUNNING"); "UNKNOWN" if out of range. Never NULL.
 * Thread-safe (static strings).
 */
HMB_API const char *hmb_runner_state_name(int state);

#ifdef __cplusplus
}
#endif

#endif /* HMB_RUNNER_H */
