/*
 * test_executor.c - the memory-bounded executor (include/hmb/executor.h).
 *
 * Each test arms the watchdog: a deadlock aborts the test instead of hanging
 * CI. Nothing here asserts on elapsed time; "at once" is checked by waiting
 * without limit under the watchdog while every other way out is closed
 * (acquisition timeouts of an hour).
 *
 * Covered: argument checks; priority order and FIFO within a priority on one
 * worker; admission timeouts that requeue tasks in their place, with no task
 * lost or run twice; tasks larger than the whole budget; a local join whose
 * two scans feed one consumer under a budget of one buffer; borrowers served
 * before admissions; failures; cancellation of queued, admitting and running
 * tasks, also under load from two threads; shutdown in both modes; destroy
 * with work in flight; shutdown and destroy from inside a task; the runner
 * bound to the worker while its task runs; staged tasks (admitted for a
 * first piece, then grown); task objects made on one thread and freed on
 * another, reused by later executors and pools.
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testsupport.h"

#define KIB ((size_t)1024)
#define MIB ((size_t)1024 * 1024)
#define HOUR_NS INT64_C(3600000000000)

/* ---- helpers ------------------------------------------------------------- */

/* A gate a task can block on until the test opens it. */
typedef struct gate {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int open;
  atomic_int entered;
} gate_t;

static void gate_init(gate_t *g) {
  pthread_mutex_init(&g->mu, NULL);
  pthread_cond_init(&g->cv, NULL);
  g->open = 0;
  atomic_init(&g->entered, 0);
}

static void gate_open(gate_t *g) {
  pthread_mutex_lock(&g->mu);
  g->open = 1;
  pthread_cond_broadcast(&g->cv);
  pthread_mutex_unlock(&g->mu);
}

static void gate_destroy(gate_t *g) {
  pthread_cond_destroy(&g->cv);
  pthread_mutex_destroy(&g->mu);
}

static int gate_task(void *user, hmb_runner_t *r) {
  gate_t *g = user;
  (void)r;
  atomic_fetch_add(&g->entered, 1);
  pthread_mutex_lock(&g->mu);
  while (!g->open)
    pthread_cond_wait(&g->cv, &g->mu);
  pthread_mutex_unlock(&g->mu);
  return 0;
}

static int gate_entered(void *arg) {
  return atomic_load(&((gate_t *)arg)->entered) > 0;
}

/* Per-task record: runs of the function and deliveries of the callback. */
typedef struct rec {
  int id;
  atomic_int runs;
  atomic_int dones;
  atomic_int status;
  pthread_t done_thread;
  atomic_int *order_next; /* shared position counter, may be NULL */
  int *order;             /* order[pos] = id, may be NULL */
  size_t alloc;           /* bytes to allocate and close, 0: none */
  int ret;                /* returned by the function */
} rec_t;

static int rec_task(void *user, hmb_runner_t *r) {
  rec_t *t = user;
  atomic_fetch_add(&t->runs, 1);
  if (t->order) {
    int pos = atomic_fetch_add(t->order_next, 1);
    t->order[pos] = t->id;
  }
  if (t->alloc) {
    hmb_buffer_t *b = NULL;
    int rc = hmb_runner_alloc(r, t->alloc, 0, &b);
    if (rc)
      return rc;
    memset(hmb_buffer_data(b), t->id & 0xff, t->alloc);
    hmb_buffer_close(b);
  }
  return t->ret;
}

static void rec_done(void *user, hmb_task_t *task, int status) {
  rec_t *t = user;
  (void)task;
  t->done_thread = pthread_self();
  atomic_store(&t->status, status);
  atomic_fetch_add(&t->dones, 1);
}

static void rec_init(rec_t *t, int id) {
  memset(t, 0, sizeof *t);
  t->id = id;
  atomic_init(&t->runs, 0);
  atomic_init(&t->dones, 0);
  atomic_init(&t->status, 1);
}

static hmb_executor_t *make_exec(hmb_pool_t *pool, int threads,
                                 int64_t acquire_timeout_ns) {
  hmb_executor_config_t cfg = {0};
  cfg.threads = threads;
  cfg.acquire_timeout_ns = acquire_timeout_ns;
  cfg.name = "test";
  hmb_executor_t *ex = NULL;
  assert_int_equal(hmb_executor_create(pool, &cfg, &ex), HMB_OK);
  assert_non_null(ex);
  return ex;
}

static hmb_task_t *submit(hmb_executor_t *ex, size_t estimate, int priority,
                          hmb_task_fn fn, hmb_task_done_fn done, void *user) {
  hmb_task_desc_t d = {0};
  d.estimate = estimate;
  d.priority = priority;
  d.run = fn;
  d.done = done;
  d.user = user;
  d.name = "t";
  hmb_task_t *t = NULL;
  assert_int_equal(hmb_executor_submit(ex, &d, &t), HMB_OK);
  assert_non_null(t);
  return t;
}

static int wait_status(hmb_task_t *t) {
  int st = 12345;
  assert_int_equal(hmb_task_wait(t, HMB_WAIT_FOREVER, &st), HMB_OK);
  return st;
}

static hmb_executor_stats_t exec_stats(hmb_executor_t *ex) {
  hmb_executor_stats_t st;
  assert_int_equal(hmb_executor_stats(ex, &st), HMB_OK);
  return st;
}

static hmb_pool_stats_t pool_stats(hmb_pool_t *pool) {
  hmb_pool_stats_t st;
  assert_int_equal(hmb_pool_stats(pool, &st), HMB_OK);
  return st;
}

/* Every submitted task is accounted for exactly once, and nothing is in
 * flight (the identity at every instant is tested in test_stats.c). */
static void assert_stats_balanced(hmb_executor_t *ex) {
  hmb_executor_stats_t st = exec_stats(ex);
  assert_int_equal(st.queued, 0);
  assert_int_equal(st.running, 0);
  assert_int_equal(st.finishing, 0);
  assert_int_equal(st.completed + st.failed + st.cancelled, st.submitted);
  assert_true(st.wait_ns_max <= st.wait_ns_total);
}

/* ---- arguments ------------------------------------------------------------
 */

static int noop_task(void *user, hmb_runner_t *r) {
  (void)user;
  (void)r;
  return 0;
}

static void test_arguments(void **state) {
  (void)state;
  ts_watchdog_arm("arguments", 30);
  hmb_pool_config_t pc;
  hmb_pool_config_init(&pc);
  pc.limit = 1 * MIB;
  pc.max_request = 64 * KIB;
  hmb_pool_t *pool = NULL;
  assert_int_equal(hmb_pool_create(&pc, &pool), HMB_OK);

  hmb_executor_t *ex = (hmb_executor_t *)1;
  hmb_executor_config_t cfg = {0};
  assert_int_equal(hmb_executor_create(NULL, &cfg, &ex), HMB_EINVAL);
  assert_null(ex);
  assert_int_equal(hmb_executor_create(pool, &cfg, NULL), HMB_EINVAL);
  cfg.threads = -1;
  assert_int_equal(hmb_executor_create(pool, &cfg, &ex), HMB_EINVAL);
  cfg.threads = 1;
  cfg.acquire_timeout_ns = -2;
  assert_int_equal(hmb_executor_create(pool, &cfg, &ex), HMB_EINVAL);

  ex = make_exec(pool, 2, 0);
  hmb_task_desc_t d = {0};
  hmb_task_t *t = (hmb_task_t *)1;
  assert_int_equal(hmb_executor_submit(ex, &d, &t), HMB_EINVAL); /* no run */
  assert_null(t);
  assert_int_equal(hmb_executor_submit(NULL, &d, &t), HMB_EINVAL);
  assert_int_equal(hmb_executor_submit(ex, NULL, &t), HMB_EINVAL);
  d.run = noop_task;
  d.borrow_timeout_ns = -5;
  assert_int_equal(hmb_executor_submit(ex, &d, &t), HMB_EINVAL);
  d.borrow_timeout_ns = 0;
  d.estimate = 64 * KIB + 1;
  assert_int_equal(hmb_executor_submit(ex, &d, &t), HMB_ETOOBIG);
  assert_null(t);
  d.estimate = 64 * KIB;
  assert_int_equal(hmb_executor_submit(ex, &d, &t), HMB_OK);
  assert_int_equal(wait_status(t), 0);
  assert_int_equal(hmb_task_done(t), 1);
  assert_int_equal(hmb_task_cancel(t), HMB_ESTATE);
  hmb_task_release(t);
  /* Detached task: no handle. */
  assert_int_equal(hmb_executor_submit(ex, &d, NULL), HMB_OK);

  assert_int_equal(hmb_task_wait(NULL, 0, NULL), HMB_EINVAL);
  assert_int_equal(hmb_task_cancel(NULL), HMB_EINVAL);
  assert_int_equal(hmb_task_done(NULL), 0);
  hmb_task_release(NULL);
  assert_int_equal(hmb_executor_stats(NULL, NULL), HMB_EINVAL);
  assert_int_equal(hmb_executor_shutdown(NULL, 0), HMB_EINVAL);
  assert_int_equal(hmb_executor_shutdown(ex, 7), HMB_EINVAL);

  assert_int_equal(hmb_executor_shutdown(ex, HMB_SHUTDOWN_DRAIN), HMB_OK);
  assert_int_equal(hmb_executor_shutdown(ex, HMB_SHUTDOWN_DRAIN), HMB_OK);
  assert_int_equal(hmb_executor_submit(ex, &d, &t), HMB_ESHUTDOWN);
  assert_null(t);
  hmb_executor_stats_t st = exec_stats(ex);
  assert_int_equal(st.submitted, 2);
  assert_int_equal(st.completed, 2);
  assert_stats_balanced(ex);
  hmb_executor_destroy(ex);
  hmb_executor_destroy(NULL);

  /* NULL config: all defaults (20 workers, 30 s). */
  assert_int_equal(hmb_executor_create(pool, NULL, &ex), HMB_OK);
  hmb_executor_destroy(ex);
  ts_assert_pool_idle(pool);
  assert_int_equal(hmb_pool_destroy(pool), HMB_OK);
  ts_watchdog_disarm();
}

/* ---- order ----------------------------------------------------------------
 */

/* Is order[] sorted by (priority desc, id asc), given prio[id]? */
static void assert_queue_order(const int *order, int n, const int *prio) {
  for (int i = 1; i < n; i++) {
    int a = order[i - 1], b = order[i];
    if (prio[a] == prio[b])
      assert_true(a < b);
    else
      assert_true(prio[a] > prio[b]);
  }
}

static void test_priority_fifo_one_worker(void **state) {
  (void)state;
  ts_watchdog_arm("priority_fifo", 30);
  enum { N = 24 };
  hmb_pool_t *pool = ts_pool(1 * MIB, NULL, NULL);
  hmb_executor_t *ex = make_exec(pool, 1, 0);
  gate_t g;
  gate_init(&g);
  hmb_task_t *gt = submit(ex, 0, 0, gate_task, NULL, &g);
  assert_true(ts_wait_for(gate_entered, &g, 20000)); /* worker busy */

  rec_t recs[N];
  int order[N], prio[N];
  atomic_int next;
  atomic_init(&next, 0);
  hmb_task_t *h[N];
  for (int i = 0; i < N; i++) {
    rec_init(&recs[i], i);
    recs[i].order = order;
    recs[i].order_next = &next;
    recs[i].alloc = 1 * KIB;
    prio[i] = (i * 7) % 4 - 1; /* -1..2, interleaved */
    h[i] = submit(ex, 4 * KIB, prio[i], rec_task, rec_done, &recs[i]);
  }
  assert_int_equal(exec_stats(ex).queued, N);
  gate_open(&g);
  for (int i = 0; i < N; i++) {
    assert_int_equal(wait_status(h[i]), 0);
    assert_int_equal(atomic_load(&recs[i].runs), 1);
    assert_int_equal(atomic_load(&recs[i].dones), 1);
    hmb_task_release(h[i]);
  }
  assert_int_equal(wait_status(gt), 0);
  hmb_task_release(gt);
  assert_int_equal(atomic_load(&next), N);
  assert_queue_order(order, N, prio);
  hmb_executor_stats_t st = exec_stats(ex);
  assert_int_equal(st.completed, N + 1);
  assert_int_equal(st.requeues, 0);
  assert_stats_balanced(ex);
  hmb_executor_destroy(ex);
  gate_destroy(&g);
  ts_assert_pool_idle(pool);
  assert_int_equal(hmb_pool_destroy(pool), HMB_OK);
  ts_watchdog_disarm();
}

/* ---- timeouts and requeue -------------------------------------------------
 */

typedef struct requeue_probe {
  hmb_executor_t *ex;
  uint64_t target;
} requeue_probe_t;

static int requeues_reached(void *arg) {
  requeue_probe_t *p = arg;
  hmb_executor_stats_t st;
  hmb_executor_stats(p->ex, &st);
  return st.requeues >= p->target;
}

/*
 * A runner outside the executor holds the whole budget and keeps running, so
 * nothing can be admitted (not even by over-commit): every attempt times out
 * and goes back in line. Once the budget is free, every task runs once.
 */
static void test_timeout_requeue_no_loss(void **state) {
  (void)state;
  ts_watchdog_arm("timeout_requeue", 60);
  enum { N = 32 };
  hmb_pool_t *pool = ts_pool(1000, NULL, NULL);
  hmb_runner_t *blocker = ts_started_runner(pool, 1000);
  hmb_executor_t *ex = make_exec(pool, 4, 2000000); /* 2 ms per attempt */
  rec_t recs[N];
  hmb_task_t *h[N];
  for (int i = 0; i < N; i++) {
    rec_init(&recs[i], i);
    recs[i].alloc = 100;
    h[i] = submit(ex, 100 + (size_t)(i % 3) * 50, i % 2, rec_task, rec_done,
                  &recs[i]);
  }
  requeue_probe_t probe = {ex, 3 * N};
  assert_true(ts_wait_for(requeues_reached, &probe, 30000));
  for (int i = 0; i < N; i++) {
    assert_int_equal(atomic_load(&recs[i].runs), 0);
    assert_int_equal(hmb_task_done(h[i]), 0);
  }
  hmb_executor_stats_t st = exec_stats(ex);
  assert_int_equal(st.queued, N);
  assert_int_equal(st.running, 0);
  assert_int_equal(st.completed, 0);
  assert_true(st.wait_ns_total > 0);

  assert_int_equal(hmb_runner_finish(blocker, 0, NULL), HMB_OK);
  hmb_runner_destroy(blocker);
  for (int i = 0; i < N; i++) {
    assert_int_equal(wait_status(h[i]), 0);
    assert_int_equal(atomic_load(&recs[i].runs), 1);
    assert_int_equal(atomic_load(&recs[i].dones), 1);
    assert_int_equal(atomic_load(&recs[i].status), 0);
    hmb_task_release(h[i]);
  }
  st = exec_stats(ex);
  assert_int_equal(st.completed, N);
  assert_true(st.requeues >= 3 * N);
  assert_true(st.wait_ns_max > 0);
  assert_true(st.wait_ns_max <= st.wait_ns_total);
  assert_stats_balanced(ex);
  hmb_executor_destroy(ex);
  ts_assert_pool_idle(pool);
  assert_int_equal(hmb_pool_destroy(pool), HMB_OK);
  ts_watchdog_disarm();
}

/*
 * On one worker, tasks that time out repeatedly keep their place: once the
 * budget frees, they run in exact queue order, including the task that was
 * taken from the queue before the higher-priority ones were submitted. The
 * budget is freed after different numbers of retries: a requeue that lost
 * the task's place would show up as a rotated order.
 */
static void run_requeue_keeps_place(uint64_t extra_requeues) {
  enum { N = 10 };
  hmb_pool_t *pool = ts_pool(1000, NULL, NULL);
  hmb_runner_t *blocker = ts_started_runner(pool, 1000);
  hmb_executor_t *ex = make_exec(pool, 1, 1000000); /* 1 ms */
  rec_t recs[N];
  int order[N], prio[N];
  atomic_int next;
  atomic_init(&next, 0);
  hmb_task_t *h[N];
  for (int i = 0; i < N; i++) {
    rec_init(&recs[i], i);
    recs[i].order = order;
    recs[i].order_next = &next;
    prio[i] = i < 4 ? 0 : 1; /* later tasks have higher priority */
    h[i] = submit(ex, 500, prio[i], rec_task, rec_done, &recs[i]);
  }
  /* Requeues after the last submission put the true head in front. */
  requeue_probe_t probe = {ex, exec_stats(ex).requeues + extra_requeues};
  assert_true(ts_wait_for(requeues_reached, &probe, 30000));
  assert_int_equal(atomic_load(&next), 0);
  assert_int_equal(hmb_runner_finish(blocker, 0, NULL), HMB_OK);
  hmb_runner_destroy(blocker);
  for (int i = 0; i < N; i++) {
    assert_int_equal(wait_status(h[i]), 0);
    assert_int_equal(atomic_load(&recs[i].runs), 1);
    hmb_task_release(h[i]);
  }
  assert_int_equal(atomic_load(&next), N);
  assert_queue_order(order, N, prio);
  assert_stats_balanced(ex);
  hmb_executor_destroy(ex);
  ts_assert_pool_idle(pool);
  assert_int_equal(hmb_pool_destroy(pool), HMB_OK);
}

static void test_requeue_keeps_place(void **state) {
  (void)state;
  ts_watchdog_arm("requeue_keeps_place", 60);
  for (uint64_t extra = 2; extra <= 13; extra += 1)
    run_requeue_keeps_place(extra);
  ts_watchdog_disarm();
}

/* ---- excessive requests ---------------------------------------------------
 */

typedef struct big_task {
  rec_t rec;
  size_t estimate;
  size_t chunks[4];
  int nchunks;
  hmb_buffer_t *kept; /* handed to the test, closed after completion */
} big_task_t;

static int big_run(void *user, hmb_runner_t *r) {
  big_task_t *t = user;
  atomic_fetch_add(&t->rec.runs, 1);
  for (int i = 0; i < t->nchunks; i++) {
    hmb_buffer_t *b = NULL;
    int rc = hmb_runner_alloc(r, t->chunks[i], 0, &b);
    if (rc)
      return rc;
    unsigned char *p = hmb_buffer_data(b);
    p[0] = (unsigned char)t->rec.id;
    p[t->chunks[i] - 1] = (unsigned char)i;
    if (i == 0 && (t->rec.id % 3) == 0)
      t->kept = b; /* outlives the task: a consumer still holds it */
    else
      hmb_buffer_close(b);
  }
  return 0;
}

/* 1 KiB budget, 64 tasks of random sizes up to 1 MiB, 16 workers. */
static void test_excessive_requests(void **state) {
  (void)state;
  ts_watchdog_arm("excessive_requests", 120);
  enum { N = 64 };
  uint64_t seed = ts_seed("excessive_requests");
  hmb_pool_t *pool = ts_pool(1 * KIB, NULL, NULL);
  hmb_executor_t *ex = make_exec(pool, 16, 5000000); /* 5 ms */
  static big_task_t tasks[N];
  hmb_task_t *h[N];
  for (int i = 0; i < N; i++) {
    big_task_t *t = &tasks[i];
    memset(t, 0, sizeof *t);
    rec_init(&t->rec, i);
    t->estimate = 1 + (size_t)(ts_rand(&seed) % MIB);
    t->nchunks = 1 + (int)(ts_rand(&seed) % 4);
    for (int c = 0; c < t->nchunks; c++) /* may exceed the estimate */
      t->chunks[c] = 1 + (size_t)(ts_rand(&seed) % (MIB / 2));
    h[i] = submit(ex, t->estimate, (int)(ts_rand(&seed) % 3), big_run, rec_done,
                  &t->rec);
  }
  for (int i = 0; i < N; i++) {
    assert_int_equal(wait_status(h[i]), 0);
    assert_int_equal(atomic_load(&tasks[i].rec.runs), 1);
    assert_int_equal(atomic_load(&tasks[i].rec.dones), 1);
    hmb_task_release(h[i]);
  }
  hmb_executor_stats_t st = exec_stats(ex);
  assert_int_equal(st.completed, N);
  assert_int_equal(st.failed + st.cancelled, 0);
  assert_stats_balanced(ex);
  hmb_pool_stats_t ps = pool_stats(pool);
  assert_true(ps.acquire_overcommits >= 1);
  assert_true(ps.peak_overcommitted > 0);
  assert_int_equal(ps.running, 0);
  /* Kept buffers hold budget until the consumer closes them. */
  int64_t kept = 0;
  for (int i = 0; i < N; i++)
    if (tasks[i].kept) {
      unsigned char *p = hmb_buffer_data(tasks[i].kept);
      assert_int_equal(p[0], (unsigned char)i);
      kept += (int64_t)hmb_buffer_size(tasks[i].kept);
    }
  assert_true(kept > 0);
  assert_int_equal(ps.live_bytes, kept);
  assert_int_equal(ps.held, kept);
  hmb_executor_destroy(ex);
  for (int i = 0; i < N; i++)
    if (tasks[i].kept)
      hmb_buffer_close(tasks[i].kept);
  ts_assert_pool_idle(pool);
  assert_int_equal(hmb_pool_destroy(pool), HMB_OK);
  ts_watchdog_disarm();
}

/* ---- local join ------------------------------------------------------------
 */

/* Buffers one scan side hands to the consumer, in production order. */
typedef struct side {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  hmb_buffer_t *q[64];
  int head, tail;
} side_t;

typedef struct split {
  side_t *side;
  int side_id, split_id, nbufs;
  size_t bufsize;
} split_t;

static void side_push(side_t *s, hmb_buffer_t *b) {
  pthread_mutex_lock(&s->mu);
  s->q[s->tail++] = b;
  pthread_cond_signal(&s->cv);
  pthread_mutex_unlock(&s->mu);
}

static hmb_buffer_t *side_pop(side_t *s) {
  pthread_mutex_lock(&s->mu);
  while (s->head == s->tail)
    pthread_cond_wait(&s->cv, &s->mu);
  hmb_buffer_t *b = s->q[s->head++];
  pthread_mutex_unlock(&s->mu);
  return b;
}

static int scan_split(void *user, hmb_runner_t *r) {
  split_t *sp = user;
  for (int i = 0; i < sp->nbufs; i++) {
    hmb_buffer_t *b = NULL;
    int rc = hmb_runner_alloc(r, sp->bufsize, 0, &b);
    if (rc)
      return rc;
    unsigned char *p = hmb_buffer_data(b);
    p[0] = (unsigned char)sp->side_id;
    p[1] = (unsigned char)sp->split_id;
    p[2] = (unsigned char)i;
    side_push(sp->side, b); /* the consumer owns it now */
  }
  return 0;
}

/*
 * Two scans (left, right) under one budget feed one consumer that needs one
 * buffer from each side before it can close either. The left side has the
 * higher priority, so its finished-but-unconsumed buffers hold the whole
 * budget when the right side asks for admission: the classic local-join
 * deadlock. It must complete at every budget down to a single buffer, with
 * split estimates both above (split length) and below (one buffer) the need.
 */
static void run_local_join(size_t budget, size_t bufsize, int workers,
                           int under_estimate) {
  enum { SPLITS = 3, BUFS = 4 };
  hmb_pool_t *pool = ts_pool(budget, NULL, NULL);
  hmb_executor_t *ex = make_exec(pool, workers, 2000000);
  side_t sides[2];
  split_t splits[2][SPLITS];
  hmb_task_t *h[2][SPLITS];
  for (int s = 0; s < 2; s++) {
    memset(&sides[s], 0, sizeof sides[s]);
    pthread_mutex_init(&sides[s].mu, NULL);
    pthread_cond_init(&sides[s].cv, NULL);
  }
  for (int s = 0; s < 2; s++)
    for (int k = 0; k < SPLITS; k++) {
      split_t *sp = &splits[s][k];
      sp->side = &sides[s];
      sp->side_id = s;
      sp->split_id = k;
      sp->nbufs = BUFS;
      sp->bufsize = bufsize;
      size_t est = under_estimate ? bufsize : BUFS * bufsize;
      h[s][k] = submit(ex, est, s == 0 ? 1 : 0, scan_split, NULL, sp);
    }
  /* The consumer: take one buffer of each side, then close both. */
  int seen[2][SPLITS][BUFS];
  memset(seen, 0, sizeof seen);
  for (int i = 0; i < SPLITS * BUFS; i++) {
    hmb_buffer_t *pair[2] = {side_pop(&sides[0]), side_pop(&sides[1])};
    for (int s = 0; s < 2; s++) {
      unsigned char *p = hmb_buffer_data(pair[s]);
      assert_int_equal(p[0], s);
      assert_true(p[1] < SPLITS && p[2] < BUFS);
      seen[s][p[1]][p[2]]++;
    }
    hmb_buffer_close(pair[0]);
    hmb_buffer_close(pair[1]);
  }
  for (int s = 0; s < 2; s++) /* every buffer arrived exactly once */
    for (int k = 0; k < SPLITS; k++)
      for (int i = 0; i < BUFS; i++)
        assert_int_equal(seen[s][k][i], 1);
  for (int s = 0; s < 2; s++)
    for (int k = 0; k < SPLITS; k++) {
      assert_int_equal(wait_status(h[s][k]), 0);
      hmb_task_release(h[s][k]);
    }
  hmb_executor_stats_t st = exec_stats(ex);
  assert_int_equal(st.completed, 2 * SPLITS);
  assert_stats_balanced(ex);
  hmb_pool_stats_t ps = pool_stats(pool);
  if (budget < 2 * bufsize) /* could only finish beyond the limit */
    assert_true(ps.peak_overcommitted > 0);
  assert_int_equal(ps.peak_live_bytes >= (int64_t)(2 * bufsize), 1);
  hmb_executor_destroy(ex);
  ts_assert_pool_idle(pool);
  assert_int_equal(hmb_pool_destroy(pool), HMB_OK);
  for (int s = 0; s < 2; s++) {
    assert_int_equal(sides[s].head, SPLITS * BUFS);
    pthread_cond_destroy(&sides[s].cv);
    pthread_mutex_destroy(&sides[s].mu);
  }
}

static void test_local_join(void **state) {
  (void)state;
  ts_watchdog_arm("local_join", 120);
  const size_t B = 4 * KIB;
  const size_t budgets[] = {B, 2 * B, 3 * B, 5 * B, 24 * B};
  for (size_t i = 0; i < sizeof budgets / sizeof budgets[0]; i++)
    for (int workers = 1; workers <= 4; workers += 3)
      for (int under = 0; under < 2; under++)
        run_local_join(budgets[i], B, workers, under);
  ts_watchdog_disarm();
}

/* ---- borrowers before admissions ------------------------------------------
 */

typedef struct borrow_ctx {
  hmb_pool_t *pool;
  atomic_int step;    /* event counter */
  atomic_int a_grant; /* step at which A's borrow returned */
  atomic_int c_start; /* step at which C started */
  atomic_int a_in, b_in;
} borrow_ctx_t;

static int waiters_ready(void *arg) {
  borrow_ctx_t *c = arg;
  hmb_pool_stats_t st;
  hmb_pool_stats(c->pool, &st);
  return st.borrow_waiters == 1 && st.acquire_waiters == 1;
}

static int a_and_b_in(void *arg) {
  borrow_ctx_t *c = arg;
  return atomic_load(&c->a_in) && atomic_load(&c->b_in);
}

static int b_in(void *arg) {
  return atomic_load(&((borrow_ctx_t *)arg)->b_in);
}

static int task_a(void *user, hmb_runner_t *r) { /* holds 600, needs 900 */
  borrow_ctx_t *c = user;
  hmb_buffer_t *b1 = NULL, *b2 = NULL;
  int rc = hmb_runner_alloc(r, 600, 0, &b1);
  if (rc)
    return rc;
  atomic_store(&c->a_in, 1);
  if (!ts_wait_for(b_in, c, 20000)) { /* B holds the other 400 */
    hmb_buffer_close(b1);
    return HMB_EFAILED;
  }
  rc = hmb_runner_alloc(r, 300, 0, &b2); /* borrows 300: must wait */
  atomic_store(&c->a_grant, atomic_fetch_add(&c->step, 1));
  hmb_buffer_close(b1);
  if (rc == 0)
    hmb_buffer_close(b2);
  return rc;
}

static int task_b(void *user, hmb_runner_t *r) { /* holds 400 */
  borrow_ctx_t *c = user;
  (void)r;
  atomic_store(&c->b_in, 1);
  /* Leave only once A waits to borrow and C waits to be admitted. */
  return ts_wait_for(waiters_ready, c, 20000) ? 0 : HMB_EFAILED;
}

static int task_c(void *user, hmb_runner_t *r) {
  borrow_ctx_t *c = user;
  (void)r;
  atomic_store(&c->c_start, atomic_fetch_add(&c->step, 1));
  return 0;
}

/* B's released budget goes to the waiting borrower A, not to the new C. */
static void test_borrowers_before_admissions(void **state) {
  (void)state;
  ts_watchdog_arm("borrowers_first", 60);
  hmb_pool_t *pool = ts_pool(1000, NULL, NULL);
  hmb_executor_t *ex = make_exec(pool, 3, HOUR_NS);
  borrow_ctx_t c;
  memset(&c, 0, sizeof c);
  c.pool = pool;
  atomic_init(&c.step, 1);
  hmb_task_t *ha = submit(ex, 600, 2, task_a, NULL, &c);
  hmb_task_t *hb = submit(ex, 400, 1, task_b, NULL, &c);
  assert_true(ts_wait_for(a_and_b_in, &c, 20000));
  hmb_task_t *hc = submit(ex, 300, 0, task_c, NULL, &c);
  assert_int_equal(wait_status(hb), 0);
  assert_int_equal(wait_status(ha), 0);
  assert_int_equal(wait_status(hc), 0);
  assert_true(atomic_load(&c.a_grant) > 0);
  assert_true(atomic_load(&c.a_grant) < atomic_load(&c.c_start));
  hmb_pool_stats_t ps = pool_stats(pool);
  assert_int_equal(ps.peak_overcommitted, 0); /* all within the limit */
  assert_int_equal(ps.borrow_waits, 1);
  hmb_task_release(ha);
  hmb_task_release(hb);
  hmb_task_release(hc);
  assert_stats_balanced(ex);
  hmb_executor_destroy(ex);
  ts_assert_pool_idle(pool);
  assert_int_equal(hmb_pool_destroy(pool), HMB_OK);
  ts_watchdog_disarm();
}

/* ---- failures --------------------------------------------------------------
 */

typedef struct fail_ctx {
  int ret;
  hmb_buffer_t *kept;
} fail_ctx_t;

static int failing_task(void *user, hmb_runner_t *r) {
  fail_ctx_t *f = user;
  hmb_buffer_t *a = NULL, *b = NULL;
  /* Estimate 1000: the second buffer borrows. */
  int rc = hmb_runner_alloc(r, 800, 0, &a);
  if (rc)
    return rc;
  rc = hmb_runner_alloc(r, 700, 0, &b);
  hmb_buffer_close(a);
  if (rc)
    return rc;
  if (f->kept == NULL && f->ret == -42)
    f->kept = b; /* a consumer keeps it past the failure */
  else
    hmb_buffer_close(b);
  return f->ret;
}

static void test_failure_status(void **state) {
  (void)state;
  ts_watchdog_arm("failure_status", 30);
  hmb_pool_t *pool = ts_pool(4000, NULL, NULL);
  hmb_executor_t *ex = make_exec(pool, 2, 0);
  fail_ctx_t f1 = {HMB_EFAILED, NULL}, f2 = {-42, NULL};
  hmb_task_desc_t d = {0};
  d.estimate = 1000;
  d.run = failing_task;
  d.user = &f1;
  hmb_task_t *h1 = NULL, *h2 = NULL;
  assert_int_equal(hmb_executor_submit(ex, &d, &h1), HMB_OK);
  int st = wait_status(h1);
  assert_int_equal(st, HMB_EFAILED);
  d.user = &f2;
  assert_int_equal(hmb_executor_submit(ex, &d, &h2), HMB_OK);
  assert_int_equal(wait_status(h2), -42);
  hmb_executor_stats_t es = exec_stats(ex);
  assert_int_equal(es.failed, 2);
  assert_int_equal(es.completed, 0);
  assert_stats_balanced(ex);
  /* Only the kept buffer still holds budget; nothing else leaked. */
  assert_non_null(f2.kept);
  hmb_pool_stats_t ps = pool_stats(pool);
  assert_int_equal(ps.held, 700);
  assert_int_equal(ps.live_bytes, 700);
  assert_int_equal(ps.running, 0);
  hmb_buffer_close(f2.kept);
  ts_assert_pool_idle(pool);
  hmb_task_release(h1);
  hmb_task_release(h2);
  hmb_executor_destroy(ex);
  assert_int_equal(hmb_pool_destroy(pool), HMB_OK);
  ts_watchdog_disarm();
}

static void test_failure_callback(void **state) {
  (void)state;
  ts_watchdog_arm("failure_callback", 30);
  hmb_pool_t *pool = ts_pool(4000, NULL, NULL);
  hmb_executor_t *ex = make_exec(pool, 1, 0);
  rec_t r;
  rec_init(&r, 1);
  r.ret = HMB_EFAILED;
  r.alloc = 3000;
  hmb_task_t *h = submit(ex, 100, 0, rec_task, rec_done, &r);
  assert_int_equal(wait_status(h), HMB_EFAILED);
  assert_int_equal(atomic_load(&r.status), HMB_EFAILED);
  assert_int_equal(atomic_load(&r.dones), 1);
  hmb_task_release(h);
  assert_int_equal(exec_stats(ex).failed, 1);
  hmb_executor_destroy(ex);
  ts_assert_pool_idle(pool);
  assert_int_equal(hmb_pool_destroy(pool), HMB_OK);
  ts_watchdog_disarm();
}

/* ---- cancellation -----------------------------------------------------------
 */

static void test_cancel_queued(void **state) {
  (void)state;
  ts_watchdog_arm("cancel_queued", 30);
  enum { N = 10 };
  hmb_pool_t *pool = ts_pool(1 * MIB, NULL, NULL);
  hmb_executor_t *ex = make_exec(pool, 1, 0);
  gate_t g;
  gate_init(&g);
  hmb_task_t *gt = submit(ex, 0, 0, gate_task, NULL, &g);
  assert_true(ts_wait_for(gate_entered, &g, 20000));
  rec_t recs[N];
  hmb_task_t *h[N];
  for (int i = 0; i < N; i++) {
    rec_init(&recs[i], i);
    h[i] = submit(ex, 100, 0, rec_task, rec_done, &recs[i]);
  }
  for (int i = 1; i < N; i += 2) {
    assert_int_equal(hmb_task_cancel(h[i]), HMB_OK);
    /* The callback already fired, on this thread, with the cancel status. */
    assert_int_equal(atomic_load(&recs[i].dones), 1);
    assert_int_equal(atomic_load(&recs[i].status), HMB_ECANCELED);
    assert_true(pthread_equal(recs[i].done_thread, pthread_self()));
    assert_int_equal(hmb_task_done(h[i]), 1);
    assert_int_equal(hmb_task_cancel(h[i]), HMB_ESTATE);
    int st = 0;
    assert_int_equal(hmb_task_wait(h[i], 0, &st), HMB_OK);
    assert_int_equal(st, HMB_ECANCELED);
  }
  /* A queued task not yet finished: a zero-timeout wait times out. */
  assert_int_equal(hmb_task_wait(h[0], 0, NULL), HMB_ETIMEDOUT);
  assert_int_equal(hmb_task_wait(h[0], 1000000, NULL), HMB_ETIMEDOUT);
  hmb_executor_stats_t st = exec_stats(ex);
  assert_int_equal(st.queued, N / 2);
  assert_int_equal(st.cancelled, N / 2);
  gate_open(&g);
  for (int i = 0; i < N; i++) {
    int s = wait_status(h[i]);
    assert_int_equal(atomic_load(&recs[i].dones), 1);
    assert_int_equal(atomic_load(&recs[i].runs), i % 2 ? 0 : 1);
    assert_int_equal(s, i % 2 ? HMB_ECANCELED : 0);
    hmb_task_release(h[i]);
  }
  assert_int_equal(wait_status(gt), 0);
  hmb_task_release(gt);
  st = exec_stats(ex);
  assert_int_equal(st.completed, N / 2 + 1);
  assert_int_equal(st.cancelled, N / 2);
  assert_stats_balanced(ex);
  hmb_executor_destroy(ex);
  gate_destroy(&g);
  ts_assert_pool_idle(pool);
  assert_int_equal(hmb_pool_destroy(pool), HMB_OK);
  ts_watchdog_disarm();
}

typedef struct spin_ctx {
  atomic_int entered;
  atomic_int alloc_after_cancel; /* status of an allocation after cancel */
  hmb_buffer_t *kept;
  size_t bytes;
} spin_ctx_t;

/* Holds a buffer, then polls the cancel flag; returns 0 once it is set. */
static int spin_task(void *user, hmb_runner_t *r) {
  spin_ctx_t *c = user;
  if (c->bytes) {
    int rc = hmb_runner_alloc(r, c->bytes, 0, &c->kept);
    if (rc)
      return rc;
  }
  atomic_store(&c->entered, 1);
  while (!hmb_runner_is_cancelled(r))
    ts_sleep_ms(1);
  hmb_buffer_t *b = NULL;
  atomic_store(&c->alloc_after_cancel, hmb_runner_alloc(r, 64, 0, &b));
  return 0; /* ignores the cancel: still reported as cancelled */
}

static int spin_entered(void *arg) {
  return atomic_load(&((spin_ctx_t *)arg)->entered);
}

static void test_cancel_running(void **state) {
  (void)state;
  ts_watchdog_arm("cancel_running", 30);
  hmb_pool_t *pool = ts_pool(64 * KIB, NULL, NULL);
  hmb_executor_t *ex = make_exec(pool, 2, 0);
  spin_ctx_t c;
  memset(&c, 0, sizeof c);
  c.bytes = 10 * KIB;
  hmb_task_t *h = submit(ex, 32 * KIB, 0, spin_task, NULL, &c);
  assert_true(ts_wait_for(spin_entered, &c, 20000));
  hmb_executor_stats_t st = exec_stats(ex);
  assert_int_equal(st.running, 1);
  assert_int_equal(hmb_task_cancel(h), HMB_OK);
  assert_int_equal(hmb_task_cancel(h), HMB_OK); /* idempotent */
  assert_int_equal(wait_status(h), HMB_ECANCELED);
  assert_int_equal(atomic_load(&c.alloc_after_cancel), HMB_ECANCELED);
  assert_int_equal(hmb_task_cancel(h), HMB_ESTATE);
  hmb_task_release(h);
  st = exec_stats(ex);
  assert_int_equal(st.cancelled, 1);
  assert_stats_balanced(ex);
  /* The over-claim came back at once; the kept buffer's budget at close. */
  hmb_pool_stats_t ps = pool_stats(pool);
  assert_int_equal(ps.held, (int64_t)c.bytes);
  assert_int_equal(ps.running, 0);
  hmb_buffer_close(c.kept);
  ts_assert_pool_idle(pool);
  hmb_executor_destroy(ex);
  assert_int_equal(hmb_pool_destroy(pool), HMB_OK);
  ts_watchdog_disarm();
}

static int one_acquire_waiter(void *arg) {
  hmb_pool_stats_t st;
  hmb_pool_stats((hmb_pool_t *)arg, &st);
  return st.acquire_waiters == 1;
}

/*
 * A task whose worker waits for its budget (acquisition timeout: one hour)
 * is woken by cancel at once: the unbounded wait below returns only then.
 */
static void test_cancel_admitting(void **state) {
  (void)state;
  ts_watchdog_arm("cancel_admitting", 30);
  hmb_pool_t *pool = ts_pool(1000, NULL, NULL);
  hmb_runner_t *blocker = ts_started_runner(pool, 1000);
  hmb_executor_t *ex = make_exec(pool, 1, HOUR_NS);
  rec_t r;
  rec_init(&r, 0);
  hmb_task_t *h = submit(ex, 500, 0, rec_task, rec_done, &r);
  assert_true(ts_wait_for(one_acquire_waiter, pool, 20000));
  assert_int_equal(exec_stats(ex).queued, 1);
  assert_int_equal(hmb_task_cancel(h), HMB_OK);
  assert_int_equal(wait_status(h), HMB_ECANCELED);
  assert_int_equal(atomic_load(&r.runs), 0);
  assert_int_equal(atomic_load(&r.dones), 1);
  assert_int_equal(atomic_load(&r.status), HMB_ECANCELED);
  hmb_task_release(h);
  hmb_executor_stats_t st = exec_stats(ex);
  assert_int_equal(st.cancelled, 1);
  assert_int_equal(st.requeues, 0);
  assert_true(st.wait_ns_max > 0);
  assert_stats_balanced(ex);
  hmb_pool_stats_t ps = pool_stats(pool);
  assert_int_equal(ps.acquire_waiters, 0);
  assert_int_equal(ps.acquire_cancels, 1);
  assert_int_equal(ps.held, 1000);
  assert_int_equal(hmb_runner_finish(blocker, 0, NULL), HMB_OK);
  hmb_runner_destroy(blocker);
  hmb_executor_destroy(ex);
  ts_assert_pool_idle(pool);
  assert_int_equal(hmb_pool_destroy(pool), HMB_OK);
  ts_watchdog_disarm();
}

/* Load: random tasks, random cancels from the submitter and a second thread. */
typedef struct load_task {
  rec_t rec;
  size_t estimate, alloc;
  int slow;             /* sleeps while holding budget: others wait */
  atomic_int cancel_rc; /* 1: never cancelled */
} load_task_t;

typedef struct load {
  load_task_t *tasks;
  hmb_task_t **handles;
  atomic_int published;
  atomic_int stop;
  int n;
  uint64_t seed;
} load_t;

static int load_run(void *user, hmb_runner_t *r) {
  load_task_t *t = user;
  atomic_fetch_add(&t->rec.runs, 1);
  size_t left = t->alloc;
  while (left > 0) {
    if (hmb_runner_is_cancelled(r))
      return HMB_ECANCELED;
    size_t n = left < 4 * KIB ? left : 4 * KIB;
    hmb_buffer_t *b = NULL;
    int rc = hmb_runner_alloc(r, n, 0, &b);
    if (rc)
      return rc; /* HMB_ECANCELED once cancelled */
    memset(hmb_buffer_data(b), 0x5a, n);
    if (t->slow)
      ts_sleep_ms(1);
    hmb_buffer_close(b);
    left -= n;
  }
  return 0;
}

static void load_cancel(load_t *l, int i) {
  int rc = hmb_task_cancel(l->handles[i]);
  assert_true(rc == HMB_OK || rc == HMB_ESTATE);
  int expect = 1;
  /* Keep the first verdict that says "cancelled". */
  if (rc == HMB_OK)
    atomic_store(&l->tasks[i].cancel_rc, 0);
  else
    atomic_compare_exchange_strong(&l->tasks[i].cancel_rc, &expect, rc);
}

static void *load_canceller(void *arg) {
  load_t *l = arg;
  uint64_t s = l->seed ^ 0x9e3779b97f4a7c15ULL;
  while (!atomic_load(&l->stop)) {
    int n = atomic_load(&l->published);
    if (n > 0)
      load_cancel(l, (int)(ts_rand(&s) % (uint64_t)n));
    if (ts_rand(&s) % 4 == 0)
      ts_sleep_ms(1);
  }
  return NULL;
}

static void test_cancel_under_load(void **state) {
  (void)state;
  ts_watchdog_arm("cancel_under_load", 180);
  load_t l;
  memset(&l, 0, sizeof l);
  l.n = (int)ts_env_long("HMB_EXEC_LOAD_TASKS", 400);
  l.seed = ts_seed("cancel_under_load");
  uint64_t s = l.seed;
  l.tasks = calloc((size_t)l.n, sizeof *l.tasks);
  l.handles = calloc((size_t)l.n, sizeof *l.handles);
  assert_non_null(l.tasks);
  assert_non_null(l.handles);
  atomic_init(&l.published, 0);
  atomic_init(&l.stop, 0);
  hmb_pool_t *pool = ts_pool(64 * KIB, NULL, NULL);
  hmb_executor_t *ex = make_exec(pool, 6, 1000000); /* 1 ms: requeues */
  pthread_t canceller;
  assert_int_equal(pthread_create(&canceller, NULL, load_canceller, &l), 0);
  for (int i = 0; i < l.n; i++) {
    load_task_t *t = &l.tasks[i];
    rec_init(&t->rec, i);
    atomic_init(&t->cancel_rc, 1);
    t->estimate = (size_t)(ts_rand(&s) % (48 * KIB));
    t->alloc = (size_t)(ts_rand(&s) % (96 * KIB)); /* may borrow */
    t->slow = ts_rand(&s) % 8 == 0;
    l.handles[i] = submit(ex, t->estimate, (int)(ts_rand(&s) % 3), load_run,
                          rec_done, &t->rec);
    atomic_store(&l.published, i + 1);
    if (ts_rand(&s) % 5 == 0)
      load_cancel(&l, (int)(ts_rand(&s) % (uint64_t)(i + 1)));
  }
  for (int i = 0; i < l.n; i++)
    (void)wait_status(l.handles[i]);
  atomic_store(&l.stop, 1);
  pthread_join(canceller, NULL);
  int64_t ok = 0, cancelled = 0;
  for (int i = 0; i < l.n; i++) {
    load_task_t *t = &l.tasks[i];
    int st = wait_status(l.handles[i]);
    assert_int_equal(atomic_load(&t->rec.dones), 1);
    assert_int_equal(atomic_load(&t->rec.status), st);
    assert_true(atomic_load(&t->rec.runs) <= 1);
    /* Cancelled exactly when some cancel returned 0. */
    assert_int_equal(atomic_load(&t->cancel_rc) == 0, st == HMB_ECANCELED);
    if (st == 0) {
      ok++;
      assert_int_equal(atomic_load(&t->rec.runs), 1);
    } else {
      assert_int_equal(st, HMB_ECANCELED);
      cancelled++;
    }
  }
  hmb_executor_stats_t st = exec_stats(ex);
  assert_int_equal(st.submitted, (uint64_t)l.n);
  assert_int_equal(st.completed, (uint64_t)ok);
  assert_int_equal(st.cancelled, (uint64_t)cancelled);
  assert_int_equal(st.failed, 0);
  assert_stats_balanced(ex);
  fprintf(stderr,
          "cancel_under_load: %d tasks, %lld ok, %lld cancelled, "
          "%llu requeues\n",
          l.n, (long long)ok, (long long)cancelled,
          (unsigned long long)st.requeues);
  assert_true(cancelled > 0);
  for (int i = 0; i < l.n; i++)
    hmb_task_release(l.handles[i]);
  hmb_executor_destroy(ex);
  ts_assert_pool_idle(pool);
  assert_int_equal(hmb_pool_destroy(pool), HMB_OK);
  free(l.tasks);
  free(l.handles);
  ts_watchdog_disarm();
}

/* ---- shutdown and destroy ---------------------------------------------------
 */

static void test_shutdown_drain(void **state) {
  (void)state;
  ts_watchdog_arm("shutdown_drain", 60);
  enum { N = 60 };
  hmb_pool_t *pool = ts_pool(3000, NULL, NULL);
  hmb_executor_t *ex = make_exec(pool, 3, 1000000);
  rec_t recs[N];
  for (int i = 0; i < N; i++) {
    rec_init(&recs[i], i);
    recs[i].alloc = 500 + (size_t)(i % 4) * 400;
    hmb_task_desc_t d = {0};
    d.estimate = 1000;
    d.run = rec_task;
    d.done = rec_done;
    d.user = &recs[i];
    assert_int_equal(hmb_executor_submit(ex, &d, NULL), HMB_OK); /* detached */
  }
  assert_int_equal(hmb_executor_shutdown(ex, HMB_SHUTDOWN_DRAIN), HMB_OK);
  for (int i = 0; i < N; i++) {
    assert_int_equal(atomic_load(&recs[i].runs), 1);
    assert_int_equal(atomic_load(&recs[i].dones), 1);
    assert_int_equal(atomic_load(&recs[i].status), 0);
  }
  hmb_executor_stats_t st = exec_stats(ex);
  assert_int_equal(st.completed, N);
  assert_int_equal(st.cancelled, 0);
  assert_stats_balanced(ex);
  hmb_task_desc_t d = {0};
  d.run = noop_task;
  assert_int_equal(hmb_executor_submit(ex, &d, NULL), HMB_ESHUTDOWN);
  assert_int_equal(hmb_executor_shutdown(ex, HMB_SHUTDOWN_CANCEL), HMB_OK);
  hmb_executor_destroy(ex);
  ts_assert_pool_idle(pool);
  assert_int_equal(hmb_pool_destroy(pool), HMB_OK);
  ts_watchdog_disarm();
}

static int two_entered(void *arg) {
  spin_ctx_t *c = arg;
  return atomic_load(&c[0].entered) && atomic_load(&c[1].entered);
}

/*
 * Two running tasks (polling their cancel flags, holding buffers) and queued
 * tasks; `destroy` 0: shutdown(CANCEL) then destroy; 1: destroy directly.
 */
static void run_cancel_shutdown(int destroy_directly) {
  enum { N = 20 };
  hmb_pool_t *pool = ts_pool(64 * KIB, NULL, NULL);
  hmb_executor_t *ex = make_exec(pool, 2, 0);
  spin_ctx_t spins[2];
  memset(spins, 0, sizeof spins);
  hmb_task_t *sh[2];
  for (int i = 0; i < 2; i++) {
    spins[i].bytes = 8 * KIB;
    sh[i] = submit(ex, 16 * KIB, 5, spin_task, NULL, &spins[i]);
  }
  assert_true(ts_wait_for(two_entered, spins, 20000));
  rec_t recs[N];
  hmb_task_t *h[N];
  for (int i = 0; i < N; i++) {
    rec_init(&recs[i], i);
    h[i] = submit(ex, 100, 0, rec_task, rec_done, &recs[i]);
  }
  if (destroy_directly) {
    hmb_executor_destroy(ex);
  } else {
    assert_int_equal(hmb_executor_shutdown(ex, HMB_SHUTDOWN_CANCEL), HMB_OK);
    hmb_task_desc_t d = {0};
    d.run = noop_task;
    assert_int_equal(hmb_executor_submit(ex, &d, NULL), HMB_ESHUTDOWN);
    hmb_executor_stats_t st = exec_stats(ex);
    assert_int_equal(st.cancelled, N + 2);
    assert_int_equal(st.completed, 0);
    assert_stats_balanced(ex);
  }
  /* Every task finished; handles remain usable after destroy. */
  for (int i = 0; i < N; i++) {
    assert_int_equal(hmb_task_done(h[i]), 1);
    assert_int_equal(atomic_load(&recs[i].runs), 0);
    assert_int_equal(atomic_load(&recs[i].dones), 1);
    assert_true(pthread_equal(recs[i].done_thread, pthread_self()));
    assert_int_equal(wait_status(h[i]), HMB_ECANCELED);
    assert_int_equal(hmb_task_cancel(h[i]), HMB_ESTATE);
    hmb_task_release(h[i]);
  }
  for (int i = 0; i < 2; i++) {
    assert_int_equal(hmb_task_done(sh[i]), 1);
    assert_int_equal(wait_status(sh[i]), HMB_ECANCELED);
    assert_int_equal(atomic_load(&spins[i].alloc_after_cancel), HMB_ECANCELED);
    hmb_task_release(sh[i]);
  }
  if (!destroy_directly)
    hmb_executor_destroy(ex);
  /* The kept buffers stay valid and return their budget as they close. */
  hmb_pool_stats_t ps = pool_stats(pool);
  assert_int_equal(ps.held, (int64_t)(16 * KIB));
  for (int i = 0; i < 2; i++) {
    memset(hmb_buffer_data(spins[i].kept), 1, spins[i].bytes);
    hmb_buffer_close(spins[i].kept);
  }
  ts_assert_pool_idle(pool);
  assert_int_equal(hmb_pool_destroy(pool), HMB_OK);
}

static void test_shutdown_cancel(void **state) {
  (void)state;
  ts_watchdog_arm("shutdown_cancel", 60);
  run_cancel_shutdown(0);
  ts_watchdog_disarm();
}

static void test_destroy_in_flight(void **state) {
  (void)state;
  ts_watchdog_arm("destroy_in_flight", 60);
  run_cancel_shutdown(1);
  ts_watchdog_disarm();
}

typedef struct self_ctx {
  hmb_executor_t *ex;
  atomic_int rc_task, rc_cb;
} self_ctx_t;

static int self_shutdown_task(void *user, hmb_runner_t *r) {
  self_ctx_t *c = user;
  (void)r;
  atomic_store(&c->rc_task, hmb_executor_shutdown(c->ex, HMB_SHUTDOWN_DRAIN));
  hmb_executor_destroy(c->ex); /* refused: logged, nothing happens */
  return 0;
}

static void self_shutdown_done(void *user, hmb_task_t *task, int status) {
  self_ctx_t *c = user;
  (void)task;
  (void)status;
  atomic_store(&c->rc_cb, hmb_executor_shutdown(c->ex, HMB_SHUTDOWN_CANCEL));
}

static void test_shutdown_from_task(void **state) {
  (void)state;
  ts_watchdog_arm("shutdown_from_task", 30);
  ts_log_t log;
  memset(&log, 0, sizeof log);
  hmb_pool_t *pool = ts_pool(1 * MIB, NULL, &log);
  hmb_executor_t *ex = make_exec(pool, 2, 0);
  self_ctx_t c;
  c.ex = ex;
  atomic_init(&c.rc_task, 1);
  atomic_init(&c.rc_cb, 1);
  hmb_task_t *h =
      submit(ex, 100, 0, self_shutdown_task, self_shutdown_done, &c);
  assert_int_equal(wait_status(h), 0);
  hmb_task_release(h);
  assert_int_equal(atomic_load(&c.rc_task), HMB_ESTATE);
  assert_int_equal(atomic_load(&c.rc_cb), HMB_ESTATE);
  assert_true(ts_log_contains(&log, "destroy called from its own task"));
  /* Still working after the refused calls. */
  rec_t r;
  rec_init(&r, 0);
  h = submit(ex, 100, 0, rec_task, rec_done, &r);
  assert_int_equal(wait_status(h), 0);
  hmb_task_release(h);
  hmb_executor_destroy(ex);
  ts_assert_pool_idle(pool);
  assert_int_equal(hmb_pool_destroy(pool), HMB_OK);
  ts_watchdog_disarm();
}

/* ---- the runner bound to the worker -------------------------------------- */

typedef struct bind_ctx {
  hmb_runner_t *seen_in_task;
  hmb_runner_t *runner;
  hmb_runner_t *seen_in_done;
  int64_t live_after_bound_alloc;
  int rc;
  hmb_buffer_t *kept;
} bind_ctx_t;

static int bind_task(void *user, hmb_runner_t *r) {
  bind_ctx_t *c = user;
  c->runner = r;
  c->seen_in_task = hmb_runner_bound();
  /* Code that cannot be handed the allocator charges the task anyway. */
  c->rc =
      hmb_allocate(hmb_bound_allocator(HMB_UNBOUND_FAIL), 3000, 0, &c->kept);
  hmb_runner_stats_t rs;
  hmb_runner_stats(r, &rs);
  c->live_after_bound_alloc = rs.live;
  return 0;
}

static void bind_done(void *user, hmb_task_t *task, int status) {
  bind_ctx_t *c = user;
  (void)task;
  (void)status;
  c->seen_in_done = hmb_runner_bound();
}

static void test_executor_binds_the_runner_while_the_task_runs(void **state) {
  (void)state;
  ts_watchdog_arm("binds_the_runner", 30);
  hmb_pool_t *pool = ts_pool(1 * MIB, NULL, NULL);
  hmb_executor_t *ex = make_exec(pool, 1, 0);
  bind_ctx_t c;
  memset(&c, 0, sizeof c);
  c.seen_in_done = (hmb_runner_t *)1;
  hmb_task_t *h = submit(ex, 1000, 0, bind_task, bind_done, &c);
  assert_int_equal(wait_status(h), 0);
  hmb_task_release(h);
  assert_non_null(c.runner);
  assert_ptr_equal(c.seen_in_task, c.runner);
  assert_int_equal(c.rc, HMB_OK);
  assert_int_equal(c.live_after_bound_alloc, 3000);
  assert_null(c.seen_in_done); /* restored once the function returned */
  /* The buffer was charged to the task's runner: finished, it holds only
   * the buffer, which returns its budget at close. */
  assert_int_equal(pool_stats(pool).held, 3000);
  hmb_buffer_close(c.kept);
  assert_int_equal(pool_stats(pool).held, 0);
  /* The submitting thread was never bound. */
  assert_null(hmb_runner_bound());
  hmb_executor_destroy(ex);
  ts_pool_done(pool);
  ts_watchdog_disarm();
}

/* ---- staged tasks -------------------------------------------------------- */

typedef struct staged_ctx {
  int64_t held_at_start, held_after_grow, need;
  int grow_rc;
} staged_ctx_t;

static int staged_task(void *user, hmb_runner_t *r) {
  staged_ctx_t *c = user;
  hmb_runner_stats_t rs;
  hmb_runner_stats(r, &rs);
  c->held_at_start = rs.held;
  /* The footer says what is really needed. */
  hmb_runner_set_need(r, (size_t)c->need, NULL);
  c->grow_rc = hmb_runner_grow(r, (size_t)c->need, HMB_WAIT_FOREVER);
  hmb_runner_stats(r, &rs);
  c->held_after_grow = rs.held;
  hmb_buffer_t *b = NULL;
  int rc = hmb_runner_alloc(r, (size_t)c->need, 0, &b);
  if (rc == 0)
    hmb_buffer_close(b);
  return rc;
}

static void test_executor_staged_task_grows_to_its_need(void **state) {
  (void)state;
  ts_watchdog_arm("staged", 30);
  hmb_pool_t *pool = ts_pool(1 * MIB, NULL, NULL);
  hmb_executor_t *ex = make_exec(pool, 2, 0);
  staged_ctx_t c[2];
  memset(c, 0, sizeof c);
  c[0].need = 300 * KIB;
  c[1].need = 20 * KIB;
  hmb_task_t *h[2];
  for (int i = 0; i < 2; i++) {
    hmb_task_desc_t d;
    hmb_task_desc_init(&d);
    d.estimate = 4 * MIB; /* the split length: far above the budget */
    d.staged = 1;
    d.initial = i == 0 ? 64 * KIB : 0;
    d.run = staged_task;
    d.user = &c[i];
    assert_int_equal(hmb_executor_submit(ex, &d, &h[i]), HMB_OK);
    assert_int_equal(wait_status(h[i]), 0);
    hmb_task_release(h[i]);
  }
  assert_int_equal(c[0].held_at_start, (int64_t)(64 * KIB));
  assert_int_equal(c[0].grow_rc, 0);
  assert_int_equal(c[0].held_after_grow, (int64_t)(300 * KIB));
  assert_int_equal(c[1].held_at_start, 0);
  assert_int_equal(c[1].held_after_grow, (int64_t)(20 * KIB));
  hmb_pool_stats_t ps = pool_stats(pool);
  assert_int_equal(ps.peak_overcommitted, 0); /* never the 4 MiB estimate */
  assert_true(ps.peak_held <= (int64_t)(300 * KIB));
  assert_int_equal(ps.grows, 2);
  hmb_executor_destroy(ex);
  ts_pool_done(pool);
  ts_watchdog_disarm();
}

/* ---- task objects reused across threads, executors and pools ------------ */

typedef struct rel_ctx {
  hmb_task_t **h;
  int from, to;
  int *status;
} rel_ctx_t;

/* Waits for and releases handles [from, to) on a thread of its own. */
static void *release_handles(void *arg) {
  rel_ctx_t *c = arg;
  for (int i = c->from; i < c->to; i++) {
    c->status[i] = wait_status(c->h[i]);
    hmb_task_release(c->h[i]);
  }
  return NULL;
}

/*
 * A handle released twice is a caller bug. Task objects are blocks of the
 * thread caches once freed, so the second release must not touch the
 * object's count (the first word, the caches' link): it is reported, and
 * the caches, the later tasks and the memory stay sound. (Under
 * AddressSanitizer the caches keep nothing, and the sanitizer reports the
 * second release itself.)
 */
static void test_task_released_twice_is_reported(void **state) {
  (void)state;
  if (ts_under_asan()) { /* task objects go straight back to malloc there */
    fprintf(stderr, "test_task_released_twice_is_reported: not under "
                    "AddressSanitizer, which reports the second release as "
                    "the use after free it is\n");
    skip();
  }
  ts_watchdog_arm("released_twice", 30);
  ts_log_t log;
  memset(&log, 0, sizeof log);
  hmb_pool_t *pool = ts_pool(16 * MIB, NULL, NULL);
  hmb_executor_t *ex = make_exec(pool, 1, 0);
  rec_t rec[40];
  hmb_task_t *h[3];
  for (int i = 0; i < 3; i++) {
    rec_init(&rec[i], i);
    h[i] = submit(ex, 4 * KIB, 0, rec_task, rec_done, &rec[i]);
    assert_int_equal(wait_status(h[i]), 0);
  }
  for (int i = 0; i < 3; i++)
    hmb_task_release(h[i]);
  hmb_set_log(ts_log_capture, &log, HMB_LOG_ERROR);
  hmb_task_release(h[1]); /* the bug */
  assert_int_equal(hmb_task_wait(h[1], 0, NULL), HMB_EINVAL);
  assert_int_equal(hmb_task_cancel(h[1]), HMB_EINVAL);
  hmb_set_log(NULL, NULL, 0);
  assert_int_equal(log.count, 3);
  assert_true(ts_log_contains(&log, "hmb_task_release"));
  assert_true(ts_log_contains(&log, "not a task handle"));
  /* Later tasks, and buffers of the tasks' size class, are unharmed. */
  for (int i = 3; i < 40; i++) {
    rec_init(&rec[i], i);
    rec[i].alloc = 100 + (size_t)i;
    rec[i].ret = i;
    hmb_task_t *t = submit(ex, 4 * KIB, 0, rec_task, rec_done, &rec[i]);
    assert_true(((uintptr_t)t & 15u) == 0);
    assert_int_equal(wait_status(t), i);
    hmb_task_release(t);
  }
  hmb_executor_destroy(ex);
  ts_pool_done(pool);
  ts_watchdog_disarm();
}

#define REUSE_TASKS 600
#define REUSE_HANDLES 200 /* the first ones have a handle */

/*
 * Task objects are made on the submitting thread and freed on a worker, on
 * a releasing thread, or after their executor and pool are gone; later
 * submissions are made from them. Each task must still deliver its own
 * status (a value only it returns) exactly once, to its callback and its
 * handle, in every round.
 */
static void test_task_objects_reused_across_threads(void **state) {
  (void)state;
  ts_watchdog_arm("task_reuse", 60);
  static rec_t rec[REUSE_TASKS];
  static hmb_task_t *h[REUSE_HANDLES];
  static int hstatus[REUSE_HANDLES];
  for (int round = 0; round < 3; round++) {
    hmb_pool_t *pool = ts_pool(64 * MIB, NULL, NULL);
    hmb_executor_t *ex = make_exec(pool, 3, 0);
    for (int i = 0; i < REUSE_TASKS; i++) {
      rec_init(&rec[i], i);
      rec[i].alloc = (size_t)(i % 3) * 100; /* none, 100 or 200 bytes */
      rec[i].ret = i % 7 == 0 ? 1000 + round * REUSE_TASKS + i : 0;
      hmb_task_desc_t d;
      hmb_task_desc_init(&d);
      d.estimate = 4 * KIB;
      d.run = rec_task;
      d.done = rec_done;
      d.user = &rec[i];
      d.name = "reuse";
      assert_int_equal(
          hmb_executor_submit(ex, &d, i < REUSE_HANDLES ? &h[i] : NULL),
          HMB_OK);
    }
    /* Half the handles are waited for and released on another thread
     * while tasks still run; the rest after the executor and the pool are
     * destroyed (rounds 1 and 2), or before (round 0). */
    rel_ctx_t c = {h, 0, REUSE_HANDLES / 2, hstatus};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, release_handles, &c), 0);
    for (int i = REUSE_HANDLES / 2; i < REUSE_HANDLES; i++)
      hstatus[i] = wait_status(h[i]);
    if (round == 0)
      for (int i = REUSE_HANDLES / 2; i < REUSE_HANDLES; i++)
        hmb_task_release(h[i]);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(hmb_executor_shutdown(ex, HMB_SHUTDOWN_DRAIN), HMB_OK);
    assert_stats_balanced(ex);
    hmb_executor_stats_t es = exec_stats(ex);
    assert_int_equal(es.submitted, REUSE_TASKS);
    assert_int_equal(es.failed, (REUSE_TASKS + 6) / 7);
    hmb_executor_destroy(ex);
    ts_pool_done(pool);
    if (round != 0)
      for (int i = REUSE_HANDLES / 2; i < REUSE_HANDLES; i++) {
        assert_int_equal(hmb_task_done(h[i]), 1); /* still valid */
        hmb_task_release(h[i]);
      }
    for (int i = 0; i < REUSE_TASKS; i++) {
      assert_int_equal(atomic_load(&rec[i].runs), 1);
      assert_int_equal(atomic_load(&rec[i].dones), 1);
      assert_int_equal(atomic_load(&rec[i].status), rec[i].ret);
      if (i < REUSE_HANDLES)
        assert_int_equal(hstatus[i], rec[i].ret);
    }
  }
  ts_watchdog_disarm();
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_arguments),
      cmocka_unit_test(test_priority_fifo_one_worker),
      cmocka_unit_test(test_timeout_requeue_no_loss),
      cmocka_unit_test(test_requeue_keeps_place),
      cmocka_unit_test(test_excessive_requests),
      cmocka_unit_test(test_local_join),
      cmocka_unit_test(test_borrowers_before_admissions),
      cmocka_unit_test(test_failure_status),
      cmocka_unit_test(test_failure_callback),
      cmocka_unit_test(test_cancel_queued),
      cmocka_unit_test(test_cancel_running),
      cmocka_unit_test(test_cancel_admitting),
      cmocka_unit_test(test_cancel_under_load),
      cmocka_unit_test(test_shutdown_drain),
      cmocka_unit_test(test_shutdown_cancel),
      cmocka_unit_test(test_destroy_in_flight),
      cmocka_unit_test(test_shutdown_from_task),
      cmocka_unit_test(test_executor_binds_the_runner_while_the_task_runs),
      cmocka_unit_test(test_executor_staged_task_grows_to_its_need),
      cmocka_unit_test(test_task_objects_reused_across_threads),
      cmocka_unit_test(test_task_released_twice_is_reported),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
