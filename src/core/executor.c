/*
 * executor.c - a fixed set of worker threads that admit scan tasks only when
 * their budget can be had.
 *
 * Every task is, at any instant, in exactly one of these places:
 *   QUEUED     - in the executor's queue, sorted by priority (desc) and
 *                submission sequence (asc);
 *   ADMITTING  - taken by a worker, which creates its runner and waits in
 *                hmb_runner_start() for at most the acquisition timeout;
 *   RUNNING    - its function runs on the worker with a RUNNING runner;
 *   FINISHING  - its status is decided; the completion callback is due;
 *   DONE       - the callback has returned; waiters are released.
 * ADMITTING, RUNNING and FINISHING tasks taken by a worker sit on the active
 * list, so that shutdown can cancel them. A task whose admission times out
 * goes back into the queue with its original sequence number (its fair
 * place) and the worker takes the head again; the pool's own waiter queue
 * decides who is served, so no worker ever polls the budget.
 *
 * Locks: the executor lock protects the queue, the active list, task states,
 * the runner pointer of each task and the counters. It is taken before the
 * pool lock: the only library call made while holding it is
 * hmb_runner_cancel(), which takes the pool lock and calls no user code. A
 * worker also publishes a completion through its task's stripe (below)
 * inside it; nothing takes a stripe, then the executor lock.
 * Runners are created, started, finished and destroyed with the executor
 * lock released, and task functions and completion callbacks (user code) are
 * never called with any lock held. A task's runner pointer is cleared under
 * the lock before the runner is finished or destroyed, so a cancel that finds
 * a runner there may use it.
 *
 * Task lifetime: a task has one reference for the executor (dropped after
 * its completion) and one for the submitter's handle. Completion is
 * published through a process-wide lock stripe (below), so waiting on,
 * polling or releasing a handle never touches the executor: handles stay
 * valid after the executor is destroyed.
 */
#include <inttypes.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "core/abi.h"
#include "core/log.h"
#include "core/pool.h"
#include "memory/tcache.h"
#include "platform/lock.h"
#include "platform/os.h"

enum {
  HMB__TASK_QUEUED,
  HMB__TASK_ADMITTING,
  HMB__TASK_RUNNING,
  HMB__TASK_FINISHING,
  HMB__TASK_DONE
};

#define HMB__EXEC_DEFAULT_THREADS 20
#define HMB__EXEC_MAX_THREADS 4096
#define HMB__EXEC_DEFAULT_TIMEOUT_NS INT64_C(30000000000)

/* hmb_task::magic: a task from submit until its last reference goes, and
 * after (its object is a block of the thread caches, whose list links
 * through the first word, `refs`: the mark lies beyond it). */
#define HMB__TASK_LIVE 0x4B534154u /* "TASK" */
#define HMB__TASK_DEAD 0x44414544u /* "DEAD" */

struct hmb_task {
  _Atomic long refs; /* executor's reference + the submitter's handle */
  _Atomic int done;  /* 1 once the callback has returned */
  uint32_t magic;    /* HMB__TASK_LIVE, or DEAD once freed */
  hmb_executor_t *ex;

  /* copied from the descriptor; immutable after submit */
  hmb_task_fn run;
  hmb_task_done_fn done_fn;
  void *user;
  size_t estimate;
  int priority;
  int64_t borrow_timeout_ns;
  int staged;
  size_t initial;
  char name[32];

  /* --- under ex->lock (submit sets every field: no memset) --- */
  uint64_t seq;
  int state;
  int cancel_requested;
  int on_active;
  hmb_runner_t *runner;      /* set while admitting or running */
  hmb_runner_t *idle_runner; /* kept from a timed-out admission (CREATED,
                                holding nothing): retried, so the task keeps
                                its place in the pool's queue too */
  hmb_task_t *next, *prev;   /* queue or active list */
  uint64_t wait_ns;          /* waiting for budget, summed over attempts */

  /* --- completion, under its stripe's lock (hmb__stripe_of()) --- */
  int status;
};

/*
 * Completion is published through a process-wide set of lock stripes, a
 * task hashed to one by its address, so that a task needs no mutex or
 * condition variable of its own (creating and destroying them was a good
 * part of a tiny task's cost) and handles stay valid after their executor
 * is destroyed. A completion broadcasts its stripe's condition; waiters of
 * other tasks of the stripe re-check and sleep again.
 */
#define HMB__STRIPES 32u
static struct hmb__stripe {
  hmb__lock_t mu;
  hmb__cond_t cond;
} hmb__stripes[HMB__STRIPES];
static pthread_once_t hmb__stripes_once = PTHREAD_ONCE_INIT;
static int hmb__stripes_ok;

static void hmb__stripes_init(void) {
  for (unsigned i = 0; i < HMB__STRIPES; i++) {
    if (hmb__lock_init(&hmb__stripes[i].mu) != 0 ||
        hmb__cond_init(&hmb__stripes[i].cond) != 0)
      return; /* hmb__stripes_ok stays 0: create fails with HMB_ENOMEM */
  }
  hmb__stripes_ok = 1;
}

/* Fork (hmb__os_on_fork()): every stripe is held across fork() (made
 * first if it was not yet). The child makes its stripes anew: a condition
 * variable that threads of the parent waited on keeps their count, which
 * in the child would hold back wakes (or make a pthread condition's
 * destroy wait) for threads that do not exist there. */
static void hmb__stripes_fork_prepare(void) {
  pthread_once(&hmb__stripes_once, hmb__stripes_init);
  if (hmb__stripes_ok)
    for (unsigned i = 0; i < HMB__STRIPES; i++)
      hmb__lock(&hmb__stripes[i].mu);
}
static void hmb__stripes_fork_parent(void) {
  if (hmb__stripes_ok)
    for (unsigned i = HMB__STRIPES; i-- > 0;)
      hmb__unlock(&hmb__stripes[i].mu);
}
static void hmb__stripes_fork_child(void) {
  if (!hmb__stripes_ok)
    return;
  hmb__stripes_fork_parent(); /* unlocked first, then made anew */
  for (unsigned i = 0; i < HMB__STRIPES; i++) {
    hmb__lock_fini(&hmb__stripes[i].mu); /* not the condition: see above */
    if (hmb__lock_init(&hmb__stripes[i].mu) != 0 ||
        hmb__cond_init(&hmb__stripes[i].cond) != 0)
      hmb__stripes_ok = 0; /* submit fails with HMB_ENOMEM in the child */
  }
}
__attribute__((constructor)) static void hmb__stripes_fork_register(void) {
  (void)hmb__os_on_fork(hmb__stripes_fork_prepare, hmb__stripes_fork_parent,
                        hmb__stripes_fork_child);
}

static struct hmb__stripe *hmb__stripe_of(const hmb_task_t *t) {
  uintptr_t h = (uintptr_t)t;
  h ^= h >> 17;
  h *= (uintptr_t)0x9E3779B97F4A7C15ull;
  return &hmb__stripes[(h >> 7) % HMB__STRIPES];
}

struct hmb_executor {
  hmb_pool_t *pool;
  int64_t acquire_timeout_ns;
  int nthreads;
  pthread_t *threads;
  char name[32];

  hmb__lock_t lock;
  hmb__cond_t work_cond; /* a task was queued, or shutdown began */
  hmb__cond_t join_cond; /* the workers have been joined */

  /* --- under lock --- */
  hmb_task_t *head, *tail; /* the queue */
  hmb_task_t *active;      /* taken by a worker, not yet done */
  uint64_t seq;
  int shutting;   /* no more submissions */
  int cancelling; /* shutdown in CANCEL mode began */
  int joining, joined;
  int64_t nqueued, nadmitting, nrunning, nfinishing;
  int nidle; /* workers waiting on work_cond */
  uint64_t submitted, completed, failed, cancelled, requeues;
  uint64_t wait_total, wait_max;
  _Atomic int destroying; /* re-entry guard of hmb_executor_destroy() */
};

/* The executor whose worker or callback this thread is in (shutdown check). */
static _Thread_local hmb_executor_t *hmb__exec_current;
/* The executor this thread is shutting down (a destroy from a log sink or
 * callback during that shutdown must not free it under the shutdown). */
static _Thread_local hmb_executor_t *hmb__exec_shutting;

/* ---- task references and completion ------------------------------------ */

/*
 * Task objects are small blocks of the memory layer's thread caches (not
 * counted in any pool; tcache.h): a task is made on the submitting thread
 * and freed on a worker (or wherever its handle is released), and the
 * caches' depot moves them back in batches, where malloc and free would
 * meet in the C library's slow paths on every task. Handles stay valid
 * after their executor and pool are gone: the caches are process-wide.
 */
static hmb_task_t *hmb__task_new(void) {
  unsigned cls = hmb__class_of(sizeof(hmb_task_t));
  /* The front is made if need be: a thread that only submits has none. */
  void *p = hmb__tcache_front() ? hmb__tcache_small_get(cls) : NULL;
  if (!p)
    p = malloc(hmb__class_size(cls));
  return p;
}

static void hmb__task_free(hmb_task_t *t) {
  t->magic = HMB__TASK_DEAD;
  unsigned cls = hmb__class_of(sizeof(hmb_task_t));
  if (!hmb__tcache_small_put(cls, hmb__class_size(cls), t))
    free(t);
}

/* Whether `t` is a task (a handle still referenced); else logged. A
 * released handle whose task is gone, or a pointer that never was one, is
 * reported when its object no longer carries the mark (not when it was
 * reused for a new task: that is undetectable, as any use after free). */
static int hmb__task_live(const hmb_task_t *t, const char *call) {
  if (HMB__LIKELY(t->magic == HMB__TASK_LIVE))
    return 1;
  hmb__log(NULL, HMB_LOG_ERROR,
           "%s(%p): not a task handle (released already, or never one); "
           "ignored",
           call, (const void *)t);
  return 0;
}

void hmb_task_release(hmb_task_t *t) {
  if (!t || !hmb__task_live(t, "hmb_task_release"))
    return;
  /* acq_rel: the last release sees every write made through other refs
   * (an acquire on the RMW itself, which ThreadSanitizer understands). */
  long old = atomic_fetch_sub_explicit(&t->refs, 1, memory_order_acq_rel);
  if (old > 1)
    return;
  if (HMB__UNLIKELY(old <= 0)) {
    atomic_fetch_add_explicit(&t->refs, 1, memory_order_relaxed);
    hmb__log(NULL, HMB_LOG_ERROR,
             "task %p released more times than referenced (refs %ld)",
             (void *)t, old);
    return;
  }
  hmb__task_free(t);
}

/* Queue order: higher priority first, then lower sequence number. */
static int hmb__task_before(const hmb_task_t *a, const hmb_task_t *b) {
  if (a->priority != b->priority)
    return a->priority > b->priority;
  return a->seq < b->seq;
}

/* Link `t` after `at` (at NULL: at the front) of the list head/tail. */
static void hmb__link_after(hmb_task_t **head, hmb_task_t **tail,
                            hmb_task_t *at, hmb_task_t *t) {
  t->prev = at;
  t->next = at ? at->next : *head;
  if (t->next)
    t->next->prev = t;
  else if (tail)
    *tail = t;
  if (at)
    at->next = t;
  else
    *head = t;
}

static void hmb__unlink(hmb_task_t **head, hmb_task_t **tail, hmb_task_t *t) {
  if (t->prev)
    t->prev->next = t->next;
  else
    *head = t->next;
  if (t->next)
    t->next->prev = t->prev;
  else if (tail)
    *tail = t->prev;
  t->next = t->prev = NULL;
}

/*
 * Insert into the queue at its place. New tasks have the highest sequence
 * number and are placed from the tail; requeued tasks were near the head
 * and are placed from the head. Both walks stop at the first fitting spot.
 */
static void hmb__enqueue_locked(hmb_executor_t *ex, hmb_task_t *t,
                                int from_head) {
  hmb_task_t *at;
  if (from_head) {
    at = NULL;
    for (hmb_task_t *n = ex->head; n && hmb__task_before(n, t); n = n->next)
      at = n;
  } else {
    at = ex->tail;
    while (at && hmb__task_before(t, at))
      at = at->prev;
  }
  hmb__link_after(&ex->head, &ex->tail, at, t);
  t->state = HMB__TASK_QUEUED;
  ex->nqueued++;
}

static void hmb__active_add_locked(hmb_executor_t *ex, hmb_task_t *t) {
  hmb__link_after(&ex->active, NULL, NULL, t);
  t->on_active = 1;
}

static void hmb__active_remove_locked(hmb_executor_t *ex, hmb_task_t *t) {
  if (t->on_active) {
    hmb__unlink(&ex->active, NULL, t);
    t->on_active = 0;
  }
}

/* A task's wait for budget is over (admitted or ended): account its max. */
static void hmb__wait_end_locked(hmb_executor_t *ex, const hmb_task_t *t) {
  if (t->wait_ns > ex->wait_max)
    ex->wait_max = t->wait_ns;
}

/* The task leaves admission (granted, cancelled or failed). */
static void hmb__admission_end_locked(hmb_executor_t *ex, hmb_task_t *t) {
  ex->nadmitting--;
  hmb__wait_end_locked(ex, t);
}

/*
 * Deliver the final status: callback first (no lock held), then counters,
 * then release waiters, then drop the executor's reference. The caller holds
 * no lock and the task is FINISHING, so nobody else touches it. With
 * `keep_lock` (a worker, which takes its next task in the same hold) it
 * returns with the executor lock held.
 */
static void hmb__complete(hmb_executor_t *ex, hmb_task_t *t, int status,
                          int keep_lock) {
  if (t->idle_runner) { /* cancelled while queued after a requeue */
    hmb_runner_destroy(t->idle_runner);
    t->idle_runner = NULL;
  }
  if (t->done_fn) {
    hmb_executor_t *saved = hmb__exec_current;
    hmb__exec_current = ex;
    t->done_fn(t->user, t, status);
    hmb__exec_current = saved;
  }
  hmb__lock(&ex->lock);
  ex->nfinishing--;
  if (status == 0)
    ex->completed++;
  else if (status == HMB_ECANCELED)
    ex->cancelled++;
  else
    ex->failed++;
  hmb__wait_end_locked(ex, t); /* also for tasks cancelled after a requeue */
  hmb__active_remove_locked(ex, t);
  t->state = HMB__TASK_DONE;
  /* Relaxed: one reference left is the executor's own; no handle can reach
   * the task (a released handle is not used again), so nobody waits on it
   * and its stripe need not be woken. A handle still held (or released
   * just after this load) takes the stripe below. */
  if (atomic_load_explicit(&t->refs, memory_order_relaxed) == 1) {
    /* Release: pairs with the acquire loads of hmb_task_done() and
     * hmb_task_cancel() (a callback may still have been handed `t`). */
    atomic_store_explicit(&t->done, 1, memory_order_release);
    if (!keep_lock)
      hmb__unlock(&ex->lock);
    hmb_task_release(t);
    return;
  }
  /* A handle may be waited on: publish through its stripe. A worker keeps
   * the executor lock for its next take, so it takes the stripe inside it
   * (executor lock, then stripe: nothing takes them the other way); any
   * other caller drops the executor lock first. */
  if (!keep_lock)
    hmb__unlock(&ex->lock);
  struct hmb__stripe *sp = hmb__stripe_of(t);
  hmb__lock(&sp->mu);
  t->status = status;
  /* Release: pairs with the acquire loads of hmb_task_done(), _wait() and
   * _cancel(): whoever sees done sees the status and the callback's work. */
  atomic_store_explicit(&t->done, 1, memory_order_release);
  hmb__cond_broadcast(&sp->cond);
  hmb__unlock(&sp->mu);
  hmb_task_release(t);
}

/* ---- workers --------------------------------------------------------------
 */

/* Run the task's function with its granted runner, then finish and detach;
 * returns with the executor lock held. */
static void hmb__run_admitted(hmb_executor_t *ex, hmb_task_t *t,
                              hmb_runner_t *r) {
  hmb_runner_t *prev = hmb_runner_bind(r); /* for code that cannot be
                                              handed the allocator */
  int rc = t->run(t->user, r);
  hmb_runner_bind(prev);
  hmb__lock(&ex->lock);
  ex->nrunning--;
  ex->nfinishing++;
  t->runner = NULL; /* from now on cancel cannot reach the runner */
  t->state = HMB__TASK_FINISHING;
  int cancelled = t->cancel_requested || hmb_runner_is_cancelled(r);
  hmb__unlock(&ex->lock);
  /* Over-claim goes back now; live buffers return budget as they close.
   * finish fails only if the task misused its runner (finished it itself);
   * destroy copes with every state. */
  (void)hmb__runner_finish_destroy(r, rc);
  hmb__complete(ex, t, cancelled ? HMB_ECANCELED : rc, 1);
}

/*
 * One admission attempt of a task taken from the queue (ADMITTING, on the
 * active list). Ends with the task run, requeued, or completed. Called
 * without the executor lock; returns with it held.
 *
 * A new runner is created and, when admission grants its start at once,
 * started in the same step (hmb__runner_create_started()): such a start
 * never waits, so nothing needs to reach it before it returns, and a cancel
 * meanwhile is seen just after it. Otherwise the runner is published first,
 * so that a cancel wakes the waiting start at once.
 */
static void hmb__attempt(hmb_executor_t *ex, hmb_task_t *t) {
  hmb_runner_t *r = t->idle_runner; /* ours: the task is ADMITTING */
  t->idle_runner = NULL;
  int rc = 0, started = 0;
  if (!r) {
    hmb_runner_config_t cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.estimate = t->estimate;
    cfg.priority = t->priority;
    cfg.borrow_timeout_ns = t->borrow_timeout_ns;
    cfg.name = t->name;
    rc = hmb__runner_create_started(
        ex->pool, &cfg, t->staged ? t->initial : t->estimate, &r, &started);
  }

  hmb__lock(&ex->lock);
  if (rc == 0 && t->cancel_requested)
    rc = HMB_ECANCELED;
  if (rc != 0) {
    hmb__admission_end_locked(ex, t);
    t->state = HMB__TASK_FINISHING;
    ex->nfinishing++;
    hmb__unlock(&ex->lock);
    hmb_runner_destroy(r); /* a granted budget goes back here */
    hmb__complete(ex, t, rc, 1);
    return;
  }
  t->runner = r; /* a cancel from now on reaches the runner */
  if (started) { /* granted at once: it waited for nothing */
    hmb__admission_end_locked(ex, t);
    t->state = HMB__TASK_RUNNING;
    ex->nrunning++;
    hmb__unlock(&ex->lock);
    hmb__run_admitted(ex, t, r);
    return;
  }
  hmb__unlock(&ex->lock);

  uint64_t t0 = hmb__os_now_ns();
  rc = t->staged
           ? hmb_runner_start_partial(r, t->initial, ex->acquire_timeout_ns)
           : hmb_runner_start(r, ex->acquire_timeout_ns);
  uint64_t waited = hmb__os_now_ns() - t0;

  hmb__lock(&ex->lock);
  t->wait_ns += waited;
  ex->wait_total += waited;
  if (rc == 0 && !t->cancel_requested) {
    hmb__admission_end_locked(ex, t);
    t->state = HMB__TASK_RUNNING;
    ex->nrunning++;
    hmb__unlock(&ex->lock);
    hmb__run_admitted(ex, t, r);
    return;
  }
  t->runner = NULL;
  if (rc == HMB_ETIMEDOUT && !t->cancel_requested && !ex->cancelling) {
    /* Not admitted in time: back to its place in line; it held nothing. */
    hmb__active_remove_locked(ex, t);
    ex->nadmitting--;
    ex->requeues++;
    t->idle_runner = r; /* CREATED again; retried with its pool ticket */
    hmb__enqueue_locked(ex, t, 1);
    hmb__cond_signal(&ex->work_cond);
    return;
  }
  /* Cancelled (while waiting, or just after the grant) or a hard error. */
  if (rc == 0 || rc == HMB_ETIMEDOUT || t->cancel_requested)
    rc = HMB_ECANCELED;
  hmb__admission_end_locked(ex, t);
  t->state = HMB__TASK_FINISHING;
  ex->nfinishing++;
  hmb__unlock(&ex->lock);
  hmb_runner_destroy(r); /* a granted budget goes back here */
  hmb__complete(ex, t, rc, 1);
}

static void *hmb__worker_main(void *arg) {
  hmb_executor_t *ex = arg;
  hmb__exec_current = ex;
  hmb__lock(&ex->lock);
  for (;;) {
    while (!ex->head && !ex->shutting) {
      ex->nidle++;
      hmb__cond_wait(&ex->work_cond, &ex->lock);
      ex->nidle--;
    }
    hmb_task_t *t = ex->head;
    if (!t)
      break; /* shutting down and nothing left to run */
    hmb__unlink(&ex->head, &ex->tail, t);
    ex->nqueued--;
    ex->nadmitting++;
    t->state = HMB__TASK_ADMITTING;
    hmb__active_add_locked(ex, t);
    hmb__unlock(&ex->lock);
    hmb__attempt(ex, t); /* returns with the lock held */
  }
  hmb__unlock(&ex->lock);
  return NULL;
}

/* ---- executor --------------------------------------------------------------
 */

/* Join the first `n` workers; `shutting` must be set and broadcast. */
static void hmb__join_workers(hmb_executor_t *ex, int n) {
  for (int i = 0; i < n; i++)
    pthread_join(ex->threads[i], NULL);
}

void hmb_executor_config_init(hmb_executor_config_t *cfg) {
  if (cfg)
    memset(cfg, 0, sizeof *cfg);
}

void hmb_task_desc_init(hmb_task_desc_t *desc) {
  if (desc)
    memset(desc, 0, sizeof *desc);
}

int hmb_executor_create_sized(hmb_pool_t *pool,
                              const hmb_executor_config_t *cfg, size_t cfg_size,
                              hmb_executor_t **out) {
  if (out)
    *out = NULL;
  if (!pool || !out)
    return HMB_EINVAL;
  hmb_executor_config_t c;
  memset(&c, 0, sizeof c);
  if (cfg) {
    int rc = hmb__abi_in(&c, sizeof c, cfg, cfg_size, sizeof c);
    if (rc)
      return rc;
  }
  if (c.threads < 0 || c.threads > HMB__EXEC_MAX_THREADS ||
      c.acquire_timeout_ns < HMB_WAIT_FOREVER)
    return HMB_EINVAL;
  /* The completion stripes are made with the first executor (its tasks
   * need them), not checked by every submit. */
  pthread_once(&hmb__stripes_once, hmb__stripes_init);
  if (!hmb__stripes_ok)
    return HMB_ENOMEM;

  hmb_executor_t *ex = calloc(1, sizeof *ex);
  if (!ex)
    return HMB_ENOMEM;
  ex->pool = pool;
  ex->nthreads = c.threads ? c.threads : HMB__EXEC_DEFAULT_THREADS;
  ex->acquire_timeout_ns = c.acquire_timeout_ns ? c.acquire_timeout_ns
                                                : HMB__EXEC_DEFAULT_TIMEOUT_NS;
  hmb__text_clean(ex->name, sizeof ex->name, c.name);
  ex->threads = calloc((size_t)ex->nthreads, sizeof *ex->threads);
  if (!ex->threads) {
    free(ex);
    return HMB_ENOMEM;
  }
  if (hmb__lock_init(&ex->lock) != 0) {
    free(ex->threads);
    free(ex);
    return HMB_ENOMEM;
  }
  if (hmb__cond_init(&ex->work_cond) != 0) {
    hmb__lock_fini(&ex->lock);
    free(ex->threads);
    free(ex);
    return HMB_ENOMEM;
  }
  if (hmb__cond_init(&ex->join_cond) != 0) {
    hmb__cond_fini(&ex->work_cond);
    hmb__lock_fini(&ex->lock);
    free(ex->threads);
    free(ex);
    return HMB_ENOMEM;
  }
  int nthreads = ex->nthreads;
  for (int i = 0; i < nthreads; i++) {
    if (pthread_create(&ex->threads[i], NULL, hmb__worker_main, ex) != 0) {
      /* The queue is empty: the started workers exit as soon as told. */
      hmb__lock(&ex->lock);
      ex->shutting = 1;
      hmb__cond_broadcast(&ex->work_cond);
      hmb__unlock(&ex->lock);
      hmb__join_workers(ex, i);
      hmb__cond_fini(&ex->join_cond);
      hmb__cond_fini(&ex->work_cond);
      hmb__lock_fini(&ex->lock);
      free(ex->threads);
      free(ex);
      hmb__log(&pool->home.log, HMB_LOG_ERROR,
               "executor '%s': could not start worker thread %d of %d",
               c.name ? c.name : "", i + 1, nthreads);
      return HMB_ENOMEM;
    }
  }
  *out = ex;
  return 0;
}

int(hmb_executor_create)(hmb_pool_t *pool, const hmb_executor_config_t *cfg,
                         hmb_executor_t **out) {
  return hmb_executor_create_sized(pool, cfg, sizeof(hmb_executor_config_t),
                                   out);
}

int hmb_executor_submit_sized(hmb_executor_t *ex, const hmb_task_desc_t *udesc,
                              size_t desc_size, hmb_task_t **out) {
  if (out)
    *out = NULL;
  if (!ex || !udesc)
    return HMB_EINVAL;
  hmb_task_desc_t d;
  int arc = hmb__abi_in(&d, sizeof d, udesc, desc_size,
                        offsetof(hmb_task_desc_t, staged));
  if (arc)
    return arc;
  const hmb_task_desc_t *desc = &d;
  if (!desc->run || desc->borrow_timeout_ns < HMB_WAIT_FOREVER)
    return HMB_EINVAL;
  if (desc->estimate > (size_t)ex->pool->home.ledger.max_request ||
      (desc->staged &&
       desc->initial > (size_t)ex->pool->home.ledger.max_request))
    return HMB_ETOOBIG;
  if (!hmb__stripes_ok) /* made by the executor's create; none in a child
                         * whose fork could not make them anew */
    return HMB_ENOMEM;
  hmb_task_t *t = hmb__task_new();
  if (!t)
    return HMB_ENOMEM;
  /* Every field is set here or, under the lock, by the enqueue (seq,
   * state, links): no memset of the reused block. */
  t->magic = HMB__TASK_LIVE;
  atomic_init(&t->refs, out ? 2 : 1);
  atomic_init(&t->done, 0);
  t->ex = ex;
  t->run = desc->run;
  t->done_fn = desc->done;
  t->user = desc->user;
  t->estimate = desc->estimate;
  t->priority = desc->priority;
  t->borrow_timeout_ns = desc->borrow_timeout_ns;
  t->staged = desc->staged != 0;
  t->initial = desc->initial;
  hmb__text_clean(t->name, sizeof t->name, desc->name);
  t->cancel_requested = 0;
  t->on_active = 0;
  t->runner = t->idle_runner = NULL;
  t->wait_ns = 0;
  t->status = 0;

  hmb__lock(&ex->lock);
  if (ex->shutting) {
    hmb__unlock(&ex->lock);
    hmb__task_free(t);
    return HMB_ESHUTDOWN;
  }
  t->seq = ex->seq++;
  ex->submitted++;
  hmb__enqueue_locked(ex, t, 0);
  if (ex->nidle) /* a worker that is not waiting takes it when done */
    hmb__cond_signal(&ex->work_cond);
  hmb__unlock(&ex->lock);
  if (out)
    *out = t; /* our own reference: valid even if the task already ended */
  return 0;
}

int(hmb_executor_submit)(hmb_executor_t *ex, const hmb_task_desc_t *desc,
                         hmb_task_t **out) {
  return hmb_executor_submit_sized(ex, desc, sizeof(hmb_task_desc_t), out);
}

int hmb_task_wait(hmb_task_t *t, int64_t timeout_ns, int *status) {
  if (!t || timeout_ns < HMB_WAIT_FOREVER ||
      !hmb__task_live(t, "hmb_task_wait"))
    return HMB_EINVAL;
  uint64_t deadline = hmb__os_deadline(timeout_ns);
  int rc = 0;
  struct hmb__stripe *sp = hmb__stripe_of(t);
  hmb__lock(&sp->mu);
  /* Acquire: pairs with the release stores of `done` in the finish. */
  while (!atomic_load_explicit(&t->done, memory_order_acquire)) {
    if (hmb__cond_wait_until(&sp->cond, &sp->mu, deadline) != 0 &&
        !atomic_load_explicit(&t->done, memory_order_acquire)) {
      rc = HMB_ETIMEDOUT;
      break;
    }
  }
  if (rc == 0 && status)
    *status = t->status;
  hmb__unlock(&sp->mu);
  return rc;
}

int hmb_task_done(const hmb_task_t *t) {
  /* Acquire: pairs with the release stores of `done` in the finish. */
  return t ? atomic_load_explicit(&t->done, memory_order_acquire) : 0;
}

int hmb_task_cancel(hmb_task_t *t) {
  if (!t || !hmb__task_live(t, "hmb_task_cancel"))
    return HMB_EINVAL;
  /* Acquire: pairs with the release stores of `done` in the finish. */
  if (atomic_load_explicit(&t->done, memory_order_acquire))
    return HMB_ESTATE; /* never touches a possibly destroyed executor */
  hmb_executor_t *ex = t->ex;
  hmb__lock(&ex->lock);
  switch (t->state) {
  case HMB__TASK_QUEUED:
    hmb__unlink(&ex->head, &ex->tail, t);
    ex->nqueued--;
    ex->nfinishing++;
    t->state = HMB__TASK_FINISHING;
    hmb__unlock(&ex->lock);
    hmb__complete(ex, t, HMB_ECANCELED, 0);
    return 0;
  case HMB__TASK_ADMITTING:
  case HMB__TASK_RUNNING:
    if (!t->cancel_requested) {
      t->cancel_requested = 1;
      /* Lock order executor -> pool; wakes a waiting start at once. */
      if (t->runner)
        (void)hmb_runner_cancel(t->runner);
    }
    hmb__unlock(&ex->lock);
    return 0;
  default:
    hmb__unlock(&ex->lock);
    return HMB_ESTATE;
  }
}

static int hmb__shutdown(hmb_executor_t *ex, int mode);

int hmb_executor_shutdown(hmb_executor_t *ex, int mode) {
  if (!ex || (mode != HMB_SHUTDOWN_DRAIN && mode != HMB_SHUTDOWN_CANCEL))
    return HMB_EINVAL;
  if (hmb__exec_current == ex)
    return HMB_ESTATE; /* joining from a worker would wait for itself */
  /* Relaxed: a sink that runs during this executor's destroy, on the
   * destroying thread, sees the flag that thread set. */
  if (atomic_load_explicit(&ex->destroying, memory_order_relaxed))
    return HMB_ESTATE;
  return hmb__shutdown(ex, mode);
}

static int hmb__shutdown_run(hmb_executor_t *ex, int mode);

static int hmb__shutdown(hmb_executor_t *ex, int mode) {
  hmb_executor_t *outer = hmb__exec_shutting;
  hmb__exec_shutting = ex;
  int rc = hmb__shutdown_run(ex, mode);
  hmb__exec_shutting = outer;
  return rc;
}

static int hmb__shutdown_run(hmb_executor_t *ex, int mode) {
  hmb_task_t *dropped = NULL;
  int64_t ndropped = 0, nsignalled = 0;
  hmb__lock(&ex->lock);
  ex->shutting = 1;
  if (mode == HMB_SHUTDOWN_CANCEL && !ex->cancelling) {
    ex->cancelling = 1;
    dropped = ex->head;
    ndropped = ex->nqueued;
    for (hmb_task_t *t = dropped; t; t = t->next)
      t->state = HMB__TASK_FINISHING;
    ex->head = ex->tail = NULL;
    ex->nfinishing += ex->nqueued;
    ex->nqueued = 0;
    for (hmb_task_t *t = ex->active; t; t = t->next) {
      if (t->state == HMB__TASK_FINISHING || t->cancel_requested)
        continue;
      t->cancel_requested = 1;
      nsignalled++;
      if (t->runner)
        (void)hmb_runner_cancel(t->runner);
    }
  }
  hmb__cond_broadcast(&ex->work_cond);
  hmb__unlock(&ex->lock);

  if (mode == HMB_SHUTDOWN_CANCEL && (ndropped || nsignalled))
    hmb__log(&ex->pool->home.log, HMB_LOG_INFO,
             "executor '%s': shutdown cancels %" PRId64 " queued and %" PRId64
             " running task(s)",
             ex->name, ndropped, nsignalled);
  while (dropped) {
    hmb_task_t *t = dropped;
    dropped = t->next;
    t->next = t->prev = NULL;
    hmb__complete(ex, t, HMB_ECANCELED, 0);
  }

  hmb__lock(&ex->lock);
  if (!ex->joining) {
    ex->joining = 1;
    hmb__unlock(&ex->lock);
    hmb__join_workers(ex, ex->nthreads);
    hmb__lock(&ex->lock);
    ex->joined = 1;
    hmb__cond_broadcast(&ex->join_cond);
  }
  while (!ex->joined)
    hmb__cond_wait(&ex->join_cond, &ex->lock);
  hmb__unlock(&ex->lock);
  return 0;
}

void hmb_executor_destroy(hmb_executor_t *ex) {
  if (!ex)
    return;
  if (hmb__exec_current == ex) {
    hmb__log(&ex->pool->home.log, HMB_LOG_ERROR,
             "executor '%s': destroy called from its own task or callback; "
             "ignored (it would wait for itself)",
             ex->name);
    return;
  }
  if (hmb__exec_shutting == ex) {
    hmb__log(&ex->pool->home.log, HMB_LOG_ERROR,
             "executor '%s': destroy called while this thread shuts it down "
             "(from a log sink or callback); ignored",
             ex->name);
    return;
  }
  int expect = 0;
  /* acq_rel: a destroy re-entered from a sink on this thread, or racing on
   * another (misuse), sees the first one's flag. */
  if (!atomic_compare_exchange_strong_explicit(&ex->destroying, &expect, 1,
                                               memory_order_acq_rel,
                                               memory_order_acquire)) {
    hmb__log(&ex->pool->home.log, HMB_LOG_ERROR,
             "executor '%s': destroy re-entered while it is being destroyed; "
             "ignored",
             ex->name);
    return;
  }
  /* Cancels what is left (a no-op after an earlier shutdown) and joins. */
  (void)hmb__shutdown(ex, HMB_SHUTDOWN_CANCEL);
  hmb__cond_fini(&ex->join_cond);
  hmb__cond_fini(&ex->work_cond);
  hmb__lock_fini(&ex->lock);
  free(ex->threads);
  free(ex);
}

int hmb_executor_stats_sized(hmb_executor_t *ex, hmb_executor_stats_t *out,
                             size_t out_size) {
  if (!ex || !out)
    return HMB_EINVAL;
  hmb_executor_stats_t st;
  memset(&st, 0, sizeof st);
  hmb__lock(&ex->lock);
  st.queued = ex->nqueued + ex->nadmitting;
  st.running = ex->nrunning;
  st.finishing = ex->nfinishing;
  st.submitted = ex->submitted;
  st.completed = ex->completed;
  st.failed = ex->failed;
  st.cancelled = ex->cancelled;
  st.requeues = ex->requeues;
  st.wait_ns_total = ex->wait_total;
  st.wait_ns_max = ex->wait_max;
  hmb__unlock(&ex->lock);
  return hmb__abi_out(out, out_size, &st, sizeof st,
                      offsetof(hmb_executor_stats_t, finishing));
}

int(hmb_executor_stats)(hmb_executor_t *ex, hmb_executor_stats_t *out) {
  return hmb_executor_stats_sized(ex, out, sizeof(hmb_executor_stats_t));
}
