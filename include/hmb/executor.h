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
 *
 * Task life: queued (in line) -> admitting (a worker waits for its budget;
 * a timeout sends it back in line) -> running (its function runs) -> done
 * (its callback has returned). Every submitted task ends exactly once with a
 * status: 0, the function's nonzero return, HMB_ECANCELED, or an error of
 * the executor itself (HMB_ENOMEM when its runner could not be made). Task
 * handles do not depend on the executor: waiting on, polling and releasing
 * a handle remain valid after hmb_executor_destroy().
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

/* Opaque executor handle. */
typedef struct hmb_executor hmb_executor_t;
/* Opaque handle of a submitted task (see hmb_executor_submit()). */
typedef struct hmb_task hmb_task_t;

/*
 * Task body: runs on a worker thread with a RUNNING runner; allocate every
 * buffer through hmb_runner_allocator(runner). Poll hmb_runner_is_cancelled()
 * (or watch for HMB_ECANCELED from allocations) to stop early. Return 0 on
 * success or a negative HMB_E* code (any nonzero value is reported as the
 * task's status as is). A task that was cancelled is reported with
 * HMB_ECANCELED whatever it returns. Buffers may outlive the function (handed
 * to a consumer); each returns its budget when its last reference closes.
 * The executor owns the runner: do not finish or destroy it here.
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
  int threads; /* worker threads; 0: 20; at most 4096 */
  /*
   * Longest wait of one admission attempt, after which the task goes back
   * in line; 0: 30 s; HMB_WAIT_FOREVER: wait without limit (no requeues).
   */
  int64_t acquire_timeout_ns;
  const char *name; /* for diagnostics (copied, 31 bytes); may be NULL */
} hmb_executor_config_t;

/* A task to submit; zero-initialise, then set fields. */
typedef struct hmb_task_desc {
  size_t estimate;           /* budget to acquire before running (bytes) */
  int priority;              /* higher runs first */
  hmb_task_fn run;           /* required */
  void *user;                /* passed to run and done */
  hmb_task_done_fn done;     /* may be NULL */
  const char *name;          /* copied into the runner's name; may be NULL */
  int64_t borrow_timeout_ns; /* the runner's borrow timeout; 0 or -1: none */
} hmb_task_desc_t;

/* Shutdown modes. */
typedef enum hmb_shutdown_mode {
  HMB_SHUTDOWN_DRAIN = 0, /* run every queued task, then stop */
  HMB_SHUTDOWN_CANCEL = 1 /* cancel queued and running tasks, then stop */
} hmb_shutdown_mode_t;

/*
 * Counters of an executor. When no task is between the return of its
 * function and the return of its callback,
 * submitted == queued + running + completed + failed + cancelled.
 */
typedef struct hmb_executor_stats {
  int64_t queued;         /* waiting for admission now (in line, or a worker
                             waits for its budget) */
  int64_t running;        /* tasks whose function is running now */
  uint64_t submitted;     /* tasks accepted by hmb_executor_submit() */
  uint64_t completed;     /* finished with status 0 */
  uint64_t failed;        /* finished with a nonzero status other than cancel */
  uint64_t cancelled;     /* completed with HMB_ECANCELED */
  uint64_t requeues;      /* admissions that timed out and went back in line */
  uint64_t wait_ns_total; /* time tasks spent waiting for budget, summed
                             over every admission attempt */
  uint64_t wait_ns_max;   /* longest single task's wait for budget (all its
                             attempts), over tasks admitted or ended */
} hmb_executor_stats_t;

/*
 * Create an executor over `pool` and start its workers. `cfg` may be NULL
 * (all defaults). The pool must outlive the executor. Errors: HMB_EINVAL
 * (NULL pool/out, threads < 0 or above 4096, acquire_timeout_ns below
 * HMB_WAIT_FOREVER), HMB_ENOMEM (including failure to start threads;
 * nothing is left running). On error *out is NULL. Thread-safe.
 */
HMB_API int hmb_executor_create(hmb_pool_t *pool,
                                const hmb_executor_config_t *cfg,
                                hmb_executor_t **out);

/*
 * Queue a task. If `out` is non-NULL it receives a handle (one reference,
 * drop it with hmb_task_release()); with `out` NULL the task runs detached.
 * Errors: HMB_EINVAL (NULL executor/desc/run, borrow_timeout_ns below
 * HMB_WAIT_FOREVER), HMB_ETOOBIG (estimate above the pool's max_request),
 * HMB_ESHUTDOWN (after shutdown began), HMB_ENOMEM. On error the task is not
 * queued, *out is NULL and its callback never fires.
 * Thread-safe, also from inside tasks and callbacks.
 */
HMB_API int hmb_executor_submit(hmb_executor_t *ex, const hmb_task_desc_t *desc,
                                hmb_task_t **out);

/*
 * Wait for a task to finish, up to `timeout_ns` (HMB_WAIT_FOREVER: no
 * limit; 0: just look). Returns 0 when it finished (its callback has
 * returned), with its status in *status (may be NULL), HMB_ETIMEDOUT, or
 * HMB_EINVAL (NULL task, timeout below HMB_WAIT_FOREVER). Thread-safe; never
 * call it on a task from that task's own function or callback.
 */
HMB_API int hmb_task_wait(hmb_task_t *task, int64_t timeout_ns, int *status);

/*
 * Cancel a task. A queued task is removed from the queue and completes with
 * HMB_ECANCELED (its callback fires on this thread before this returns). A
 * running task's runner is cancelled: the task sees hmb_runner_is_cancelled()
 * and HMB_ECANCELED from allocations, and completes when its function
 * returns. A task a worker is admitting is woken at once from its wait for
 * budget and completes with HMB_ECANCELED on that worker. Repeated cancels
 * return 0. A return of 0 means the task's status will be HMB_ECANCELED.
 * A finished task, or one whose function has already returned: HMB_ESTATE.
 * HMB_EINVAL for NULL. Thread-safe, but must not race with
 * hmb_executor_destroy() (after destroy it safely returns HMB_ESTATE).
 */
HMB_API int hmb_task_cancel(hmb_task_t *task);

/*
 * 1 once the task has finished (its callback has returned), else 0 (also
 * for NULL). Thread-safe, lock-free.
 */
HMB_API int hmb_task_done(const hmb_task_t *task);

/*
 * Drop a task handle. NULL is a no-op. Releasing more often than once is a
 * caller bug, reported through the log when detectable. Thread-safe.
 */
HMB_API void hmb_task_release(hmb_task_t *task);

/*
 * Stop accepting tasks, then either run (DRAIN) or cancel (CANCEL) what is
 * queued, wait for running tasks and join the workers. Callbacks of tasks
 * cancelled from the queue fire on this thread. Idempotent, and callable
 * from several threads at once: every call returns once the workers are
 * joined; a CANCEL after a DRAIN cancels what the drain has not yet run.
 * Returns 0, HMB_EINVAL (NULL executor or an unknown mode), or HMB_ESTATE
 * when called from a task or callback of this executor.
 */
HMB_API int hmb_executor_shutdown(hmb_executor_t *ex, int mode);

/*
 * Destroy: shuts down with HMB_SHUTDOWN_CANCEL if that has not happened,
 * joins the workers and frees the executor. Running tasks are cancelled and
 * waited for (a task that never polls its cancel flag delays this until it
 * returns). Every task has completed when this returns; task handles still
 * held by the caller stay valid until released, and buffers the tasks
 * handed out keep returning budget to the pool as they close. NULL is a
 * no-op. Must not race with other calls on this executor; called from one of
 * its own tasks or callbacks it logs an error and does nothing.
 */
HMB_API void hmb_executor_destroy(hmb_executor_t *ex);

/* Snapshot of the executor's counters. HMB_EINVAL for NULL. Thread-safe. */
HMB_API int hmb_executor_stats(hmb_executor_t *ex, hmb_executor_stats_t *out);

#ifdef __cplusplus
}
#endif

#endif /* HMB_EXECUTOR_H */
