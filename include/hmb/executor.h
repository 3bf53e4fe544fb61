/*
 * hmb/executor.h - a memory-bounded executor for scan tasks.
 *
 * A fixed set of worker threads takes tasks from one queue, ordered by
 * priority (higher first) and then submission order. A worker admits a task
 * only when its runner can acquire the task's estimate from the pool within
 * the acquisition timeout; a task that times out goes back into the queue at
 * its original position (it keeps its priority and sequence number), and is
 * retried later, never failed for lack of budget. The pool's rules then
 * guarantee progress: when nothing is running, the head task is admitted even
 * beyond the limit, and running tasks that borrow are served before new
 * admissions.
 *
 * When a task's function returns, its runner is finished at once: the
 * over-claim (held - live) goes back to the pool, and buffers the task handed
 * to a consumer return their budget as they are closed. The runner handle is
 * destroyed by the executor (buffers stay valid; see hmb_runner_destroy()).
 *
 * Lock order: executor lock, then pool lock. User code (task functions,
 * completion callbacks) is never called with either held.
 */
#ifndef HMB_EXECUTOR_H
#define HMB_EXECUTOR_H

#include <stddef.h>
#include <stdint.h>

#include "export.h"
#include "pool.h"
#include "runner.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Opaque executor and task handles. */
typedef struct hmb_executor hmb_executor_t;
typedef struct hmb_task hmb_task_t;

/*
 * Task body: runs on a worker thread with a RUNNING runner; allocate every
 * buffer through hmb_runner_allocator(runner). Poll hmb_runner_is_cancelled()
 * (or watch for HMB_ECANCELED from allocations) to stop early. Return 0 on
 * success or a negative HMB_E* code (any nonzero value is reported as the
 * task's status as is).
 */
typedef int (*hmb_task_fn)(void *user, hmb_runner_t *runner);

/*
 * Completion callback: called exactly once per submitted task, on a worker
 * thread (or on the thread calling cancel/shutdown for tasks that never
 * ran), after the task's runner is finished. `status` is 0, the task's
 * nonzero return, or HMB_ECANCELED. May be NULL. Must not call
 * hmb_executor_shutdown()/destroy() on its own executor.
 */
typedef void (*hmb_task_done_fn)(void *user, hmb_task_t *task, int status);

/* Executor configuration; zero fields mean defaults. */
typedef struct hmb_executor_config {
  int threads;                /* worker threads; 0: 20 */
  int64_t acquire_timeout_ns; /* one admission attempt; 0: 30 s */
  const char *name;           /* for diagnostics; may be NULL */
} hmb_executor_config_t;

/* A task to submit; zero-initialise, then set fields. */
typedef struct hmb_task_desc {
  size_t estimate;           /* budget to acquire before running (bytes) */
  int priority;              /* higher runs first */
  hmb_task_fn run;           /* required */
  void *user;                /* passed to run and done */
  hmb_task_done_fn done;     /* may be NULL */
  const char *name;          /* copied into the runner's name; may be NULL */
  int64_t borrow_timeout_ns; /* the runner's borrow timeout; 0: none */
} hmb_task_desc_t;

/* Shutdown modes. */
typedef enum hmb_shutdown_mode {
  HMB_SHUTDOWN_DRAIN = 0, /* run every queued task, then stop */
  HMB_SHUTDOWN_CANCEL = 1 /* cancel queued and running tasks, then stop */
} hmb_shutdown_mode_t;

/* Counters of an executor. */
typedef struct hmb_executor_stats {
  int64_t queued;  /* tasks waiting for admission now */
  int64_t running; /* tasks whose function is running now */
  uint64_t submitted;
  uint64_t completed; /* finished with status 0 */
  uint64_t failed;    /* finished with a nonzero status other than cancel */
  uint64_t cancelled;
  uint64_t requeues;      /* admissions that timed out and went back in line */
  uint64_t wait_ns_total; /* time tasks spent waiting for budget, summed */
  uint64_t wait_ns_max;   /* longest single task's wait for budget */
} hmb_executor_stats_t;

/*
 * Create an executor over `pool` and start its workers. The pool must
 * outlive the executor. Errors: HMB_EINVAL, HMB_ENOMEM (including failure to
 * start threads; nothing is left running). Thread-safe.
 */
HMB_API int hmb_executor_create(hmb_pool_t *pool,
                                const hmb_executor_config_t *cfg,
                                hmb_executor_t **out);

/*
 * Queue a task. If `out` is non-NULL it receives a handle (one reference,
 * drop it with hmb_task_release()); with `out` NULL the task runs detached.
 * Errors: HMB_EINVAL (NULL executor/desc/run), HMB_ETOOBIG (estimate above
 * the pool's max_request), HMB_ESHUTDOWN (after shutdown began), HMB_ENOMEM.
 * On error the task is not queued and its callback never fires.
 * Thread-safe.
 */
HMB_API int hmb_executor_submit(hmb_executor_t *ex, const hmb_task_desc_t *desc,
                                hmb_task_t **out);

/*
 * Wait for a task to finish, up to `timeout_ns` (HMB_WAIT_FOREVER: no
 * limit). Returns 0 when it finished, with its status in *status (may be
 * NULL), or HMB_ETIMEDOUT. Thread-safe.
 */
HMB_API int hmb_task_wait(hmb_task_t *task, int64_t timeout_ns, int *status);

/*
 * Cancel a task. A queued task is removed from the queue and completes with
 * HMB_ECANCELED (its callback fires on this thread before this returns). A
 * running task's runner is cancelled: the task sees hmb_runner_is_cancelled()
 * and HMB_ECANCELED from allocations, and completes when its function
 * returns. A finished task: HMB_ESTATE. Thread-safe.
 */
HMB_API int hmb_task_cancel(hmb_task_t *task);

/* 1 once the task has finished (its callback has returned), else 0. */
HMB_API int hmb_task_done(const hmb_task_t *task);

/* Drop a task handle. NULL is a no-op. Thread-safe. */
HMB_API void hmb_task_release(hmb_task_t *task);

/*
 * Stop accepting tasks, then either run (DRAIN) or cancel (CANCEL) what is
 * queued, wait for running tasks and join the workers. Idempotent. Must not
 * be called from a task or callback of this executor (HMB_ESTATE).
 */
HMB_API int hmb_executor_shutdown(hmb_executor_t *ex, int mode);

/*
 * Destroy: shuts down with HMB_SHUTDOWN_CANCEL if that has not happened,
 * joins the workers and frees the executor. Task handles still held by the
 * caller stay valid until released. NULL is a no-op.
 */
HMB_API void hmb_executor_destroy(hmb_executor_t *ex);

/* Snapshot of the executor's counters. Thread-safe. */
HMB_API int hmb_executor_stats(hmb_executor_t *ex, hmb_executor_stats_t *out);

#ifdef __cplusplus
}
#endif

#endif /* HMB_EXECUTOR_H */
