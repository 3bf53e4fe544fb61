/**
 * @file hmb/executor.h
 * @brief A memory-bounded executor for scan tasks.
 *
 * A fixed set of worker threads takes tasks from one queue, ordered by
 * priority (higher first) and then submission order. A worker admits a task
 * only when its runner can acquire the task's estimate (or, for a staged
 * task, its first piece) from the pool within the acquisition timeout; a
 * task that times out goes back into the queue at its original position
 * (it keeps its priority, its sequence number and its place in the pool's
 * queue) and is retried later, never failed for lack of budget. The pool's
 * rules then guarantee progress (hmb/pool.h).
 *
 * When a task's function returns, its runner is finished at once: its spare
 * budget goes back to the pool, and buffers the task handed to a consumer
 * return their budget as they are closed. The runner handle is destroyed by
 * the executor (buffers stay valid; see hmb_runner_destroy()).
 *
 * @par Task life
 * @verbatim
  queued --a worker takes it--> admitting --granted--> running --fn returns-->
  finishing --callback returns--> done
  (admitting --timed out--> queued; queued/admitting --cancel--> finishing)
  @endverbatim
 * Every submitted task ends exactly once with a status: 0, the function's
 * nonzero return, #HMB_ECANCELED, or an error of the executor itself
 * (#HMB_ENOMEM when its runner could not be made). Task handles do not
 * depend on the executor: waiting on, polling and releasing a handle remain
 * valid after hmb_executor_destroy().
 *
 * @par Locks
 * Executor lock, then the pool's budget lock. User code (task functions,
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

/** Opaque executor handle. */
typedef struct hmb_executor hmb_executor_t;
/** Opaque handle of a submitted task (see hmb_executor_submit()). */
typedef struct hmb_task hmb_task_t;

/**
 * Task body: runs on a worker thread with a RUNNING runner; allocate every
 * buffer through hmb_runner_allocator(runner) (the runner is also bound to
 * the worker thread for the call: see hmb_runner_bind()). Poll
 * hmb_runner_is_cancelled() (or watch for #HMB_ECANCELED from allocations)
 * to stop early. A staged task calls hmb_runner_set_need() and
 * hmb_runner_grow() once it knows its real need. Buffers may outlive the
 * function; each returns its budget when its last reference closes. The
 * executor owns the runner: do not finish or destroy it here.
 * @param user   hmb_task_desc_t::user
 * @param runner the task's runner
 * @return 0 on success or a nonzero status (reported as is; a cancelled
 *         task is reported with #HMB_ECANCELED whatever it returns)
 */
typedef int (*hmb_task_fn)(void *user, hmb_runner_t *runner);

/**
 * Completion callback: called exactly once per submitted task, on a worker
 * thread (or on the thread calling cancel/shutdown for tasks that never
 * ran), after the task's runner is finished. Must not call
 * hmb_executor_shutdown() or hmb_executor_destroy() on its own executor.
 * @param user   hmb_task_desc_t::user
 * @param task   the task (valid during the call)
 * @param status 0, the task's nonzero return, or #HMB_ECANCELED
 */
typedef void (*hmb_task_done_fn)(void *user, hmb_task_t *task, int status);

/**
 * Executor configuration. Fill it with hmb_executor_config_init() (or zero
 * it): zero fields mean defaults. Fields are only ever appended.
 */
typedef struct hmb_executor_config {
  /** Worker threads; 0: 20; at most 4096. */
  int threads;
  /**
   * Longest wait of one admission attempt, after which the task goes back
   * in line; 0: 30 s; #HMB_WAIT_FOREVER: wait without limit (no requeues).
   */
  int64_t acquire_timeout_ns;
  /** For diagnostics (copied, 31 bytes); may be NULL. */
  const char *name;
} hmb_executor_config_t;

/**
 * A task to submit. Fill it with hmb_task_desc_init() (or zero it), then set
 * fields. Fields are only ever appended.
 */
typedef struct hmb_task_desc {
  /** Budget to acquire before running (bytes). */
  size_t estimate;
  /** Higher runs first. */
  int priority;
  /** The task body; required. */
  hmb_task_fn run;
  /** Passed to run and done; may be NULL. */
  void *user;
  /** Completion callback; may be NULL. */
  hmb_task_done_fn done;
  /** Copied (at submit) into the runner's name; may be NULL. */
  const char *name;
  /** The runner's borrow timeout (ns); 0 or #HMB_WAIT_FOREVER: none. */
  int64_t borrow_timeout_ns;
  /**
   * Staged admission: when nonzero the task is admitted for `initial`
   * bytes only (hmb_runner_start_partial()) and grows to its real need
   * with hmb_runner_grow() once it knows it, served before new admissions.
   */
  int staged;
  /** With `staged`: the budget acquired at admission (0 is valid). */
  size_t initial;
} hmb_task_desc_t;

/** Shutdown modes. */
typedef enum hmb_shutdown_mode {
  HMB_SHUTDOWN_DRAIN = 0, /**< run every queued task, then stop */
  HMB_SHUTDOWN_CANCEL = 1 /**< cancel queued and running tasks, then stop */
} hmb_shutdown_mode_t;

/**
 * Counters of an executor, read together under its lock. At every instant
 * `submitted == queued + running + finishing + completed + failed +
 * cancelled`.
 */
typedef struct hmb_executor_stats_s {
  /** Waiting for admission (in line, or a worker waits for its budget). */
  int64_t queued;
  /** Tasks whose function is running now. */
  int64_t running;
  /** Tasks accepted by hmb_executor_submit(). */
  uint64_t submitted;
  /** Finished with status 0 (callback returned). */
  uint64_t completed;
  /** Finished with a nonzero status other than cancel. */
  uint64_t failed;
  /** Finished with #HMB_ECANCELED. */
  uint64_t cancelled;
  /** Admissions that timed out and went back in line. */
  uint64_t requeues;
  /** Time tasks spent waiting for budget, summed over every attempt. */
  uint64_t wait_ns_total;
  /** Longest single task's wait for budget (all its attempts). */
  uint64_t wait_ns_max;
  /* ---- appended in 0.2 ---- */
  /** Status decided, completion callback not yet returned. */
  int64_t finishing;
} hmb_executor_stats_t;

/**
 * Fill `cfg` with the defaults (all zero).
 * @param cfg the configuration; NULL is a no-op
 * @par Thread-safety
 * Thread-safe.
 */
HMB_API void hmb_executor_config_init(hmb_executor_config_t *cfg);

/**
 * Fill `desc` with the defaults (all zero).
 * @param desc the descriptor; NULL is a no-op
 * @par Thread-safety
 * Thread-safe.
 */
HMB_API void hmb_task_desc_init(hmb_task_desc_t *desc);

/**
 * Create an executor over `pool` and start its workers; the form behind the
 * hmb_executor_create() macro. The pool must outlive the executor.
 * @param pool     the pool
 * @param cfg      the configuration; NULL: all defaults
 * @param cfg_size `sizeof(hmb_executor_config_t)` as the caller was compiled
 * @param out      receives the executor; NULL on error
 * @return 0, #HMB_EINVAL (NULL pool or out, threads < 0 or above 4096,
 *         acquire_timeout_ns below #HMB_WAIT_FOREVER, a bad cfg_size),
 *         #HMB_ENOTSUP (a newer caller's field), #HMB_ENOMEM (including a
 *         failure to start threads; nothing is left running)
 * @par Thread-safety
 * Thread-safe.
 */
HMB_API int hmb_executor_create_sized(hmb_pool_t *pool,
                                      const hmb_executor_config_t *cfg,
                                      size_t cfg_size, hmb_executor_t **out);
/**
 * Create an executor (macro over hmb_executor_create_sized()).
 * @param pool the pool
 * @param cfg  the configuration, or NULL
 * @param out  receives the executor
 */
#define hmb_executor_create(pool, cfg, out)                                    \
  hmb_executor_create_sized((pool), (cfg), sizeof(hmb_executor_config_t), (out))
/**
 * The function form of the hmb_executor_create() macro, for callers that cannot
 * use the macro (other languages, function pointers): the same call,
 * assuming the struct layout of this release.
 * @param pool as for the macro
 * @param cfg as for the macro
 * @param out as for the macro
 * @return as hmb_executor_create_sized()
 */
HMB_API int(hmb_executor_create)(hmb_pool_t *pool,
                                 const hmb_executor_config_t *cfg,
                                 hmb_executor_t **out);

/**
 * Queue a task; the form behind the hmb_executor_submit() macro.
 * @param ex        the executor
 * @param desc      the task
 * @param desc_size `sizeof(hmb_task_desc_t)` as the caller was compiled
 * @param out       receives a handle with one reference (drop it with
 *                  hmb_task_release()); NULL: the task runs detached
 * @return 0, #HMB_EINVAL (NULL executor, desc or run; borrow_timeout_ns
 *         below #HMB_WAIT_FOREVER; a bad desc_size), #HMB_ETOOBIG (estimate
 *         or initial above the pool's max_request), #HMB_ESHUTDOWN (after
 *         shutdown began), #HMB_ENOMEM. On error the task is not queued,
 *         `*out` is NULL and its callback never fires.
 * @par Thread-safety
 * Thread-safe, also from inside tasks and callbacks.
 */
HMB_API int hmb_executor_submit_sized(hmb_executor_t *ex,
                                      const hmb_task_desc_t *desc,
                                      size_t desc_size, hmb_task_t **out);
/**
 * Queue a task (macro over hmb_executor_submit_sized()).
 * @param ex   the executor
 * @param desc the task
 * @param out  receives a handle, or NULL
 */
#define hmb_executor_submit(ex, desc, out)                                     \
  hmb_executor_submit_sized((ex), (desc), sizeof(hmb_task_desc_t), (out))
/**
 * The function form of the hmb_executor_submit() macro, for callers that cannot
 * use the macro (other languages, function pointers): the same call,
 * assuming the struct layout of this release.
 * @param ex as for the macro
 * @param desc as for the macro
 * @param out as for the macro
 * @return as hmb_executor_submit_sized()
 */
HMB_API int(hmb_executor_submit)(hmb_executor_t *ex,
                                 const hmb_task_desc_t *desc, hmb_task_t **out);

/**
 * Wait for a task to finish.
 * @param task       the task
 * @param timeout_ns longest wait (#HMB_WAIT_FOREVER: no limit; 0: just look)
 * @param status     receives its status when it finished; may be NULL
 * @return 0 when it finished (its callback has returned), #HMB_ETIMEDOUT,
 *         or #HMB_EINVAL (NULL task, timeout below #HMB_WAIT_FOREVER, or a
 *         handle already released, where detectable: logged)
 * @par Thread-safety
 * Thread-safe; never call it on a task from its own function or callback.
 */
HMB_API int hmb_task_wait(hmb_task_t *task, int64_t timeout_ns, int *status);

/**
 * Cancel a task. A queued task is removed from the queue and completes with
 * #HMB_ECANCELED (its callback fires on this thread before this returns). A
 * running task's runner is cancelled: the task sees
 * hmb_runner_is_cancelled() and #HMB_ECANCELED from allocations, and
 * completes when its function returns. A task a worker is admitting is
 * woken at once and completes with #HMB_ECANCELED on that worker.
 * @param task the task
 * @return 0 (the task's status will be #HMB_ECANCELED; repeated cancels
 *         return 0 too), #HMB_ESTATE (finished, or its function has already
 *         returned), #HMB_EINVAL (NULL, or a handle already released, where
 *         detectable: logged)
 * @par Thread-safety
 * Thread-safe, but must not race with hmb_executor_destroy() (after destroy
 * it safely returns #HMB_ESTATE).
 */
HMB_API int hmb_task_cancel(hmb_task_t *task);

/**
 * Whether a task has finished.
 * @param task the task
 * @return 1 once its callback has returned, else 0 (also for NULL)
 * @par Thread-safety
 * Thread-safe, lock-free.
 */
HMB_API int hmb_task_done(const hmb_task_t *task);

/**
 * Drop a task handle. Releasing more often than once is a caller bug,
 * reported through the log when detectable.
 * @param task the handle; NULL is a no-op
 * @par Thread-safety
 * Thread-safe.
 */
HMB_API void hmb_task_release(hmb_task_t *task);

/**
 * Stop accepting tasks, then either run (DRAIN) or cancel (CANCEL) what is
 * queued, wait for running tasks and join the workers. Callbacks of tasks
 * cancelled from the queue fire on this thread. Idempotent, and callable
 * from several threads at once: every call returns once the workers are
 * joined; a CANCEL after a DRAIN cancels what the drain has not yet run.
 * @param ex   the executor
 * @param mode an hmb_shutdown_mode_t
 * @return 0, #HMB_EINVAL (NULL executor or an unknown mode), #HMB_ESTATE
 *         (called from a task or callback of this executor, or from a log
 *         sink while this executor's destroy is in progress)
 * @par Thread-safety
 * Thread-safe.
 */
HMB_API int hmb_executor_shutdown(hmb_executor_t *ex, int mode);

/**
 * Destroy: shuts down with #HMB_SHUTDOWN_CANCEL if that has not happened,
 * joins the workers and frees the executor. Running tasks are cancelled and
 * waited for. Every task has completed when this returns; task handles
 * still held stay valid until released, and buffers the tasks handed out
 * keep returning budget to the pool as they close. Called from one of its
 * own tasks or callbacks, or from a log sink or callback while this thread
 * is inside the executor's shutdown or destroy, it logs an error and does
 * nothing.
 * @param ex the executor; NULL is a no-op
 * @par Thread-safety
 * Must not race with other calls on this executor.
 */
HMB_API void hmb_executor_destroy(hmb_executor_t *ex);

/**
 * Snapshot of the executor's counters; the form behind
 * hmb_executor_stats().
 * @param ex       the executor
 * @param out      receives the snapshot
 * @param out_size `sizeof(hmb_executor_stats_t)` as the caller was compiled
 * @return 0 or #HMB_EINVAL
 * @par Thread-safety
 * Thread-safe.
 */
HMB_API int hmb_executor_stats_sized(hmb_executor_t *ex,
                                     hmb_executor_stats_t *out,
                                     size_t out_size);
/**
 * Snapshot of an executor's counters (macro over
 * hmb_executor_stats_sized()).
 * @param ex  the executor
 * @param out receives the snapshot
 */
#define hmb_executor_stats(ex, out)                                            \
  hmb_executor_stats_sized((ex), (out), sizeof(hmb_executor_stats_t))
/**
 * The function form of the hmb_executor_stats() macro, for callers that cannot
 * use the macro (other languages, function pointers): the same call,
 * assuming the struct layout of this release.
 * @param ex as for the macro
 * @param out as for the macro
 * @return as hmb_executor_stats_sized()
 */
HMB_API int(hmb_executor_stats)(hmb_executor_t *ex, hmb_executor_stats_t *out);

#ifdef __cplusplus
}
#endif

#endif /* HMB_EXECUTOR_H */
