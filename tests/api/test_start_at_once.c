/*
 * test_start_at_once.c - starts that the rules grant at once (no one waits,
 * and the start fits), through hmb_runner_start() and through the executor.
 *
 * Such a start is booked exactly as a start granted by the waiter queue:
 * the same pool and runner counters, no wait hook, spare on the starting
 * thread's shard. It is granted at once only when it may be: never past a
 * waiting start (R2) or a waiting borrow (R1), and a start that does not
 * fit while nothing runs is granted what is there and makes its runner the
 * progress runner (R3). Tasks of the executor take the same decisions, and
 * tasks without a handle complete as tasks with one.
 *
 * Each test arms the watchdog; nothing asserts on elapsed time.
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testsupport.h"

#define HOUR_NS INT64_C(3600000000000)

/* ---- helpers ------------------------------------------------------------- */

static atomic_int hook_events;

static void count_hook(void *user, const hmb_wait_event_t *ev) {
  (void)user;
  (void)ev;
  atomic_fetch_add(&hook_events, 1);
}

static hmb_pool_t *hooked_pool(size_t limit) {
  hmb_pool_config_t cfg;
  hmb_pool_config_init(&cfg);
  cfg.limit = limit;
  cfg.wait_hook = count_hook;
  atomic_store(&hook_events, 0);
  return ts_pool_cfg(&cfg);
}

/* A start (or an allocation) on its own thread, without time limit. */
typedef struct bg {
  pthread_t tid;
  hmb_runner_t *r;
  size_t bytes; /* alloc: bytes to allocate */
  int alloc;    /* 0: hmb_runner_start(); 1: hmb_runner_alloc() */
  hmb_buffer_t *buf;
  atomic_int rc;
  atomic_int done;
} bg_t;

static void *bg_main(void *arg) {
  bg_t *b = arg;
  int rc = b->alloc ? hmb_runner_alloc(b->r, b->bytes, 0, &b->buf)
                    : hmb_runner_start(b->r, HMB_WAIT_FOREVER);
  atomic_store(&b->rc, rc);
  atomic_store(&b->done, 1);
  return NULL;
}

static void bg_run(bg_t *b, hmb_runner_t *r, int alloc, size_t bytes) {
  memset(b, 0, sizeof *b);
  b->r = r;
  b->alloc = alloc;
  b->bytes = bytes;
  atomic_init(&b->rc, 12345);
  atomic_init(&b->done, 0);
  assert_int_equal(pthread_create(&b->tid, NULL, bg_main, b), 0);
}

static void bg_join(bg_t *b) {
  assert_int_equal(pthread_join(b->tid, NULL), 0);
}

static int one_acquire_waiter(void *arg) {
  return ts_pool_stats(arg).acquire_waiters == 1;
}

static int one_borrow_waiter(void *arg) {
  return ts_pool_stats(arg).borrow_waiters == 1;
}

/* ---- through hmb_runner_start() ---------------------------------------- */

/*
 * A start granted at once and one granted from the queue (it waited for the
 * first to finish) leave the same counters; neither at-once start calls the
 * wait hook; the spare of each is where its allocations find it.
 */
static void test_booked_like_a_dispatched_start(void **state) {
  (void)state;
  ts_watchdog_arm("booked_like_dispatched", 60);
  hmb_pool_t *pool = hooked_pool(1000);
  hmb_runner_t *a = ts_runner(pool, 300, "a");
  assert_int_equal(hmb_runner_start(a, 0), HMB_OK);
  assert_int_equal(atomic_load(&hook_events), 0);

  hmb_pool_stats_t ps = ts_pool_stats(pool);
  assert_int_equal(ps.acquires, 1);
  assert_int_equal(ps.running, 1);
  assert_int_equal(ps.held, 300);
  assert_int_equal(ps.peak_held, 300);
  assert_int_equal(ps.available, 700);
  assert_int_equal(ps.acquire_waiters, 0);
  assert_int_equal(ps.acquire_timeouts, 0);
  assert_int_equal(ps.acquire_overcommits, 0);
  assert_int_equal(ps.progress_grants, 0);
  assert_int_equal(ps.progress_runner, 0);
  hmb_runner_stats_t rs = ts_runner_stats(a);
  assert_int_equal(rs.state, HMB_RUNNER_RUNNING);
  assert_int_equal(rs.held, 300);
  assert_int_equal(rs.peak_held, 300);
  assert_int_equal(rs.spare, 300);
  assert_int_equal(rs.wait_ns, 0);
  assert_int_equal(rs.failed_wait_ns, 0);
  assert_int_equal(rs.progress, 0);
  ts_check(pool, 0);

  /* The spare is on this thread's shard: no borrow, no lock. */
  hmb_buffer_t *buf = NULL;
  assert_int_equal(hmb_runner_alloc(a, 300, 0, &buf), HMB_OK);
  rs = ts_runner_stats(a);
  assert_int_equal(rs.borrows, 0);
  assert_int_equal(rs.spare, 0);
  (void)hmb_buffer_close(buf);

  /* b waits (it does not fit next to a), then is granted from the queue. */
  hmb_runner_t *b = ts_runner(pool, 800, "b");
  bg_t g;
  bg_run(&g, b, 0, 0);
  assert_true(ts_wait_for(one_acquire_waiter, pool, 20000));
  assert_int_equal(hmb_runner_finish(a, 0, NULL), HMB_OK);
  bg_join(&g);
  assert_int_equal(atomic_load(&g.rc), HMB_OK);
  ps = ts_pool_stats(pool);
  assert_int_equal(ps.acquires, 2);
  assert_int_equal(ps.running, 1);
  assert_int_equal(ps.held, 800);
  assert_int_equal(ps.peak_held, 800);
  assert_int_equal(ps.acquire_waiters, 0);
  assert_int_equal(ps.acquire_overcommits, 0);
  assert_int_equal(ps.progress_runner, 0);
  rs = ts_runner_stats(b);
  assert_int_equal(rs.state, HMB_RUNNER_RUNNING);
  assert_int_equal(rs.held, 800);
  assert_int_equal(rs.peak_held, 800);
  assert_int_equal(rs.spare, 800);
  assert_int_equal(rs.progress, 0);
  ts_check(pool, 0);

  /* A third, at once again, next to b. */
  hmb_runner_t *c = ts_runner(pool, 200, "c");
  int events = atomic_load(&hook_events);
  assert_int_equal(hmb_runner_start(c, 0), HMB_OK);
  assert_int_equal(atomic_load(&hook_events), events);
  ps = ts_pool_stats(pool);
  assert_int_equal(ps.acquires, 3);
  assert_int_equal(ps.running, 2);
  assert_int_equal(ps.held, 1000);
  assert_int_equal(ps.peak_held, 1000);
  assert_int_equal(ps.available, 0);

  /* A start of 0 bytes fits an exhausted pool. */
  hmb_runner_t *d = ts_runner(pool, 0, "d");
  assert_int_equal(hmb_runner_start(d, 0), HMB_OK);
  assert_int_equal(ts_pool_stats(pool).running, 3);
  ts_check(pool, 0);

  hmb_runner_destroy(d);
  hmb_runner_destroy(c);
  hmb_runner_destroy(b);
  hmb_runner_destroy(a);
  ts_pool_done(pool);
  ts_watchdog_disarm();
}

/*
 * R3: with nothing running, a start that does not fit is granted what is
 * available and its runner becomes the progress runner; one that fits is
 * simply granted (no progress role).
 */
static void test_idle_progress_kept(void **state) {
  (void)state;
  ts_watchdog_arm("idle_progress_kept", 60);
  hmb_pool_t *pool = ts_pool(1000, NULL, NULL);

  /* Nothing held: 5000 asked, the whole limit granted, progress. */
  hmb_runner_t *big = ts_runner(pool, 5000, "big");
  assert_int_equal(hmb_runner_start(big, 0), HMB_OK);
  hmb_runner_stats_t rs = ts_runner_stats(big);
  assert_int_equal(rs.held, 1000);
  assert_int_equal(rs.progress, 1);
  hmb_pool_stats_t ps = ts_pool_stats(pool);
  assert_int_equal(ps.progress_runner, rs.id);
  assert_int_equal(ps.acquire_overcommits, 1);
  assert_int_equal(ps.progress_grants, 1);
  ts_check(pool, 0);

  /* Its buffer outlives it: 600 held, nothing running. */
  hmb_buffer_t *buf = NULL;
  assert_int_equal(hmb_runner_alloc(big, 600, 0, &buf), HMB_OK);
  assert_int_equal(hmb_runner_finish(big, 0, NULL), HMB_OK);
  hmb_runner_destroy(big);
  ps = ts_pool_stats(pool);
  assert_int_equal(ps.running, 0);
  assert_int_equal(ps.held, 600);
  assert_int_equal(ps.progress_runner, 0);

  /* 500 does not fit the 400 left: granted 400 by R3, progress. */
  hmb_runner_t *r3 = ts_runner(pool, 500, "r3");
  assert_int_equal(hmb_runner_start(r3, 0), HMB_OK);
  rs = ts_runner_stats(r3);
  assert_int_equal(rs.held, 400);
  assert_int_equal(rs.progress, 1);
  ps = ts_pool_stats(pool);
  assert_int_equal(ps.progress_runner, rs.id);
  assert_int_equal(ps.acquire_overcommits, 2);
  assert_int_equal(ps.acquires, 2);
  ts_check(pool, 0);
  hmb_runner_destroy(r3);

  /* 300 fits the 400 left: granted at once, no progress role. */
  hmb_runner_t *fit = ts_runner(pool, 300, "fit");
  assert_int_equal(hmb_runner_start(fit, 0), HMB_OK);
  rs = ts_runner_stats(fit);
  assert_int_equal(rs.held, 300);
  assert_int_equal(rs.progress, 0);
  ps = ts_pool_stats(pool);
  assert_int_equal(ps.progress_runner, 0);
  assert_int_equal(ps.acquire_overcommits, 2);
  assert_int_equal(ps.acquires, 3);
  ts_check(pool, 0);
  hmb_runner_destroy(fit);

  (void)hmb_buffer_close(buf);
  ts_pool_done(pool);
  ts_watchdog_disarm();
}

/*
 * R2: a start that fits is not granted past a waiting start of the same
 * priority (it times out, CREATED, nothing booked), but one of higher
 * priority goes ahead of it and is granted, as the queue orders them.
 */
static void test_not_past_a_waiting_start(void **state) {
  (void)state;
  ts_watchdog_arm("not_past_waiting_start", 60);
  hmb_pool_t *pool = ts_pool(1000, NULL, NULL);
  hmb_runner_t *blocker = ts_started_runner(pool, 600);
  hmb_runner_t *w = ts_runner(pool, 800, "w");
  bg_t g;
  bg_run(&g, w, 0, 0);
  assert_true(ts_wait_for(one_acquire_waiter, pool, 20000));

  hmb_runner_t *n = ts_runner(pool, 100, "n");
  assert_int_equal(hmb_runner_start(n, 0), HMB_ETIMEDOUT);
  assert_int_equal(hmb_runner_state(n), HMB_RUNNER_CREATED);
  hmb_pool_stats_t ps = ts_pool_stats(pool);
  assert_int_equal(ps.held, 600);
  assert_int_equal(ps.acquires, 1);
  assert_int_equal(ps.acquire_waiters, 1);
  assert_int_equal(ps.acquire_timeouts, 1);

  hmb_runner_t *hi = ts_runner_prio(pool, 100, 5, NULL);
  assert_int_equal(hmb_runner_start(hi, 0), HMB_OK);
  ps = ts_pool_stats(pool);
  assert_int_equal(ps.held, 700);
  assert_int_equal(ps.acquires, 2);
  assert_int_equal(ps.acquire_waiters, 1);
  ts_check(pool, 0);

  hmb_runner_destroy(hi);
  hmb_runner_destroy(blocker);
  bg_join(&g);
  assert_int_equal(atomic_load(&g.rc), HMB_OK);
  /* w holds 800: n fits beside it and nobody waits now. */
  assert_int_equal(hmb_runner_start(n, 0), HMB_OK);
  assert_int_equal(ts_pool_stats(pool).held, 900);
  hmb_runner_destroy(n);
  hmb_runner_destroy(w);
  ts_pool_done(pool);
  ts_watchdog_disarm();
}

/* R1: while a borrow waits, no start is granted, not even one of 0 bytes. */
static void test_not_past_a_waiting_borrow(void **state) {
  (void)state;
  ts_watchdog_arm("not_past_waiting_borrow", 60);
  hmb_pool_t *pool = ts_pool(1000, NULL, NULL);
  hmb_runner_t *a = ts_started_runner(pool, 500);
  hmb_runner_t *b = ts_started_runner(pool, 400);
  hmb_buffer_t *first = NULL;
  assert_int_equal(hmb_runner_alloc(a, 500, 0, &first), HMB_OK);
  bg_t g; /* 200 more than a holds, 100 available, b runs: a waits */
  bg_run(&g, a, 1, 200);
  assert_true(ts_wait_for(one_borrow_waiter, pool, 20000));

  hmb_runner_t *z = ts_runner(pool, 0, "zero");
  assert_int_equal(hmb_runner_start(z, 0), HMB_ETIMEDOUT);
  hmb_runner_t *s = ts_runner(pool, 50, "small");
  assert_int_equal(hmb_runner_start(s, 0), HMB_ETIMEDOUT);
  hmb_pool_stats_t ps = ts_pool_stats(pool);
  assert_int_equal(ps.held, 900);
  assert_int_equal(ps.running, 2);
  assert_int_equal(ps.acquires, 2);
  assert_int_equal(ps.acquire_timeouts, 2);
  ts_check(pool, 0);

  assert_int_equal(hmb_runner_finish(b, 0, NULL), HMB_OK);
  bg_join(&g);
  assert_int_equal(atomic_load(&g.rc), HMB_OK);
  assert_int_equal(hmb_runner_start(z, 0), HMB_OK);
  assert_int_equal(hmb_runner_start(s, 0), HMB_OK);
  ps = ts_pool_stats(pool);
  assert_int_equal(ps.held, 750);
  assert_int_equal(ps.running, 3);
  ts_check(pool, 0);

  (void)hmb_buffer_close(g.buf);
  (void)hmb_buffer_close(first);
  hmb_runner_destroy(s);
  hmb_runner_destroy(z);
  hmb_runner_destroy(b);
  hmb_runner_destroy(a);
  ts_pool_done(pool);
  ts_watchdog_disarm();
}

/* ---- through the executor ------------------------------------------------ */

typedef struct probe {
  hmb_pool_t *pool;
  atomic_int runs;
  atomic_int dones;
  atomic_int status;
  hmb_runner_stats_t rs; /* the runner, seen from inside the task */
  hmb_pool_stats_t ps;   /* the pool, likewise */
  size_t keep;           /* bytes of a buffer handed out of the task */
  hmb_buffer_t *kept;
} probe_t;

static void probe_init(probe_t *p, hmb_pool_t *pool) {
  memset(p, 0, sizeof *p);
  p->pool = pool;
  atomic_init(&p->runs, 0);
  atomic_init(&p->dones, 0);
  atomic_init(&p->status, 12345);
}

static int probe_task(void *user, hmb_runner_t *runner) {
  probe_t *p = user;
  atomic_fetch_add(&p->runs, 1);
  p->rs = ts_runner_stats(runner);
  p->ps = ts_pool_stats(p->pool);
  if (p->keep)
    return hmb_runner_alloc(runner, p->keep, 0, &p->kept);
  return 0;
}

static void probe_done(void *user, hmb_task_t *task, int status) {
  (void)task;
  probe_t *p = user;
  atomic_store(&p->status, status);
  atomic_fetch_add(&p->dones, 1);
}

static hmb_executor_t *make_exec(hmb_pool_t *pool, int threads,
                                 int64_t timeout_ns) {
  hmb_executor_config_t ec;
  hmb_executor_config_init(&ec);
  ec.threads = threads;
  ec.acquire_timeout_ns = timeout_ns;
  hmb_executor_t *ex = NULL;
  assert_int_equal(hmb_executor_create(pool, &ec, &ex), HMB_OK);
  return ex;
}

static hmb_task_t *submit_probe(hmb_executor_t *ex, probe_t *p, size_t estimate,
                                int staged, size_t initial, int with_handle) {
  hmb_task_desc_t d;
  hmb_task_desc_init(&d);
  d.estimate = estimate;
  d.run = probe_task;
  d.done = probe_done;
  d.user = p;
  d.staged = staged;
  d.initial = initial;
  hmb_task_t *h = NULL;
  assert_int_equal(hmb_executor_submit(ex, &d, with_handle ? &h : NULL),
                   HMB_OK);
  return h;
}

/*
 * A task admitted at once runs with its whole estimate (or its first piece)
 * as spare, booked as one start; a task larger than the budget, with nothing
 * running, runs as the progress runner with what there is (R3); a buffer
 * handed out of a task keeps its budget until it closes.
 */
static void test_executor_tasks_booked(void **state) {
  (void)state;
  ts_watchdog_arm("executor_tasks_booked", 60);
  hmb_pool_t *pool = ts_pool(1000, NULL, NULL);
  hmb_executor_t *ex = make_exec(pool, 1, HOUR_NS);

  probe_t p;
  probe_init(&p, pool);
  hmb_task_t *h = submit_probe(ex, &p, 300, 0, 0, 1);
  int st = 12345;
  assert_int_equal(hmb_task_wait(h, HMB_WAIT_FOREVER, &st), HMB_OK);
  assert_int_equal(st, 0);
  hmb_task_release(h);
  assert_int_equal(p.rs.state, HMB_RUNNER_RUNNING);
  assert_int_equal(p.rs.held, 300);
  assert_int_equal(p.rs.spare, 300);
  assert_int_equal(p.rs.progress, 0);
  assert_int_equal(p.ps.running, 1);
  assert_int_equal(p.ps.held, 300);
  assert_int_equal(p.ps.acquires, 1);
  assert_int_equal(p.ps.progress_runner, 0);

  /* staged: the first piece only */
  probe_init(&p, pool);
  h = submit_probe(ex, &p, 900, 1, 100, 1);
  assert_int_equal(hmb_task_wait(h, HMB_WAIT_FOREVER, &st), HMB_OK);
  assert_int_equal(st, 0);
  hmb_task_release(h);
  assert_int_equal(p.rs.held, 100);
  assert_int_equal(p.ps.held, 100);
  assert_int_equal(p.ps.acquires, 2);

  /* larger than the budget, nothing running: R3 */
  probe_init(&p, pool);
  h = submit_probe(ex, &p, 5000, 0, 0, 1);
  assert_int_equal(hmb_task_wait(h, HMB_WAIT_FOREVER, &st), HMB_OK);
  assert_int_equal(st, 0);
  hmb_task_release(h);
  assert_int_equal(p.rs.held, 1000);
  assert_int_equal(p.rs.progress, 1);
  assert_int_equal(p.ps.progress_runner, p.rs.id);
  assert_int_equal(p.ps.acquire_overcommits, 1);
  assert_int_equal(p.ps.acquires, 3);

  /* a buffer outlives its task: held until it closes */
  probe_init(&p, pool);
  p.keep = 250;
  h = submit_probe(ex, &p, 400, 0, 0, 1);
  assert_int_equal(hmb_task_wait(h, HMB_WAIT_FOREVER, &st), HMB_OK);
  assert_int_equal(st, 0);
  hmb_task_release(h);
  assert_non_null(p.kept);
  hmb_pool_stats_t ps = ts_pool_stats(pool);
  assert_int_equal(ps.held, 250);
  assert_int_equal(ps.running, 0);
  ts_check(pool, 0);
  (void)hmb_buffer_close(p.kept);
  assert_int_equal(ts_pool_stats(pool).held, 0);

  hmb_executor_stats_t es;
  assert_int_equal(hmb_executor_stats(ex, &es), HMB_OK);
  assert_int_equal(es.completed, 4);
  assert_int_equal(es.requeues, 0);
  hmb_executor_destroy(ex);
  ts_pool_done(pool);
  ts_watchdog_disarm();
}

static int requeued(void *arg) {
  hmb_executor_stats_t es;
  hmb_executor_stats((hmb_executor_t *)arg, &es);
  return es.requeues >= 2;
}

/*
 * A task whose estimate fits is not admitted past a waiting start (R2) nor
 * a waiting borrow (R1): its attempts time out and it goes back in line;
 * it runs once they are served.
 */
static void test_executor_waits_its_turn(void **state) {
  (void)state;
  ts_watchdog_arm("executor_waits_its_turn", 60);
  hmb_pool_t *pool = ts_pool(1000, NULL, NULL);
  hmb_executor_t *ex = make_exec(pool, 1, 2000000); /* 2 ms per attempt */

  /* R2 */
  hmb_runner_t *blocker = ts_started_runner(pool, 600);
  hmb_runner_t *w = ts_runner(pool, 800, "w");
  bg_t g;
  bg_run(&g, w, 0, 0);
  assert_true(ts_wait_for(one_acquire_waiter, pool, 20000));
  probe_t p;
  probe_init(&p, pool);
  hmb_task_t *h = submit_probe(ex, &p, 100, 0, 0, 1);
  assert_true(ts_wait_for(requeued, ex, 20000));
  assert_int_equal(atomic_load(&p.runs), 0);
  assert_int_equal(ts_pool_stats(pool).held, 600);
  hmb_runner_destroy(blocker);
  bg_join(&g);
  assert_int_equal(atomic_load(&g.rc), HMB_OK);
  int st = 12345;
  assert_int_equal(hmb_task_wait(h, HMB_WAIT_FOREVER, &st), HMB_OK);
  assert_int_equal(st, 0);
  hmb_task_release(h);
  assert_int_equal(atomic_load(&p.runs), 1);
  assert_int_equal(p.ps.held, 900);
  hmb_runner_destroy(w);

  /* R1 */
  hmb_runner_t *a = ts_started_runner(pool, 500);
  hmb_runner_t *b = ts_started_runner(pool, 400);
  hmb_buffer_t *first = NULL;
  assert_int_equal(hmb_runner_alloc(a, 500, 0, &first), HMB_OK);
  bg_run(&g, a, 1, 200);
  assert_true(ts_wait_for(one_borrow_waiter, pool, 20000));
  hmb_executor_stats_t es;
  assert_int_equal(hmb_executor_stats(ex, &es), HMB_OK);
  uint64_t requeues = es.requeues;
  probe_init(&p, pool);
  h = submit_probe(ex, &p, 0, 0, 0, 1);
  for (;;) { /* two more attempts timed out */
    assert_int_equal(hmb_executor_stats(ex, &es), HMB_OK);
    if (es.requeues >= requeues + 2)
      break;
    ts_sleep_ms(1);
  }
  assert_int_equal(atomic_load(&p.runs), 0);
  assert_int_equal(hmb_runner_finish(b, 0, NULL), HMB_OK);
  bg_join(&g);
  assert_int_equal(atomic_load(&g.rc), HMB_OK);
  assert_int_equal(hmb_task_wait(h, HMB_WAIT_FOREVER, &st), HMB_OK);
  assert_int_equal(st, 0);
  hmb_task_release(h);
  assert_int_equal(atomic_load(&p.runs), 1);
  (void)hmb_buffer_close(g.buf);
  (void)hmb_buffer_close(first);
  hmb_runner_destroy(b);
  hmb_runner_destroy(a);

  hmb_executor_destroy(ex);
  ts_pool_done(pool);
  ts_watchdog_disarm();
}

static atomic_int many_dones;

static int empty_task(void *user, hmb_runner_t *runner) {
  (void)user;
  (void)runner;
  return 0;
}

static int failing_task(void *user, hmb_runner_t *runner) {
  (void)user;
  (void)runner;
  return 7;
}

static void count_done(void *user, hmb_task_t *task, int status) {
  (void)task;
  atomic_int *failed = user;
  if (status != 0)
    atomic_fetch_add(failed, 1);
  atomic_fetch_add(&many_dones, 1);
}

/*
 * Tasks without a handle, with one, and with one released at once all
 * complete exactly once, with their status; the counters add up.
 */
static void test_executor_handles_and_detached(void **state) {
  (void)state;
  ts_watchdog_arm("handles_and_detached", 120);
  enum { N = 600 };
  hmb_pool_t *pool = ts_pool((size_t)1 << 30, NULL, NULL);
  hmb_executor_t *ex = make_exec(pool, 4, 0);
  atomic_int failed;
  atomic_init(&failed, 0);
  atomic_store(&many_dones, 0);
  hmb_task_t *kept[N / 3];
  int nkept = 0;
  for (int i = 0; i < N; i++) {
    hmb_task_desc_t d;
    hmb_task_desc_init(&d);
    d.estimate = (size_t)(i % 4) * 4096;
    d.run = i % 10 == 9 ? failing_task : empty_task;
    d.done = count_done;
    d.user = &failed;
    hmb_task_t *h = NULL;
    switch (i % 3) {
    case 0: /* detached */
      assert_int_equal(hmb_executor_submit(ex, &d, NULL), HMB_OK);
      break;
    case 1: /* a handle, released at once */
      assert_int_equal(hmb_executor_submit(ex, &d, &h), HMB_OK);
      hmb_task_release(h);
      break;
    default: /* a handle, waited on */
      assert_int_equal(hmb_executor_submit(ex, &d, &h), HMB_OK);
      kept[nkept++] = h;
      break;
    }
  }
  for (int i = 0; i < nkept; i++) {
    int st = 12345;
    assert_int_equal(hmb_task_wait(kept[i], HMB_WAIT_FOREVER, &st), HMB_OK);
    assert_int_equal(hmb_task_done(kept[i]), 1);
    /* kept[i] is task 3 * i + 2 */
    assert_int_equal(st, (3 * i + 2) % 10 == 9 ? 7 : 0);
    hmb_task_release(kept[i]);
  }
  assert_int_equal(hmb_executor_shutdown(ex, HMB_SHUTDOWN_DRAIN), HMB_OK);
  assert_int_equal(atomic_load(&many_dones), N);
  assert_int_equal(atomic_load(&failed), N / 10);
  hmb_executor_stats_t es;
  assert_int_equal(hmb_executor_stats(ex, &es), HMB_OK);
  assert_int_equal(es.submitted, N);
  assert_int_equal(es.completed, N - N / 10);
  assert_int_equal(es.failed, N / 10);
  assert_int_equal(es.queued + es.running + es.finishing, 0);
  hmb_pool_stats_t ps = ts_pool_stats(pool);
  assert_int_equal(ps.acquires, N);
  assert_int_equal(ps.running, 0);
  assert_int_equal(ps.held, 0);
  hmb_executor_destroy(ex);
  ts_pool_done(pool);
  ts_watchdog_disarm();
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_booked_like_a_dispatched_start),
      cmocka_unit_test(test_idle_progress_kept),
      cmocka_unit_test(test_not_past_a_waiting_start),
      cmocka_unit_test(test_not_past_a_waiting_borrow),
      cmocka_unit_test(test_executor_tasks_booked),
      cmocka_unit_test(test_executor_waits_its_turn),
      cmocka_unit_test(test_executor_handles_and_detached),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
