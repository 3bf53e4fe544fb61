/*
 * test_pool.c - admission rules of the pool: over-commit, prompt wake-up,
 * borrowers first, the all-borrowers rule, timeouts, priority order,
 * head-of-line blocking, cancellation, zero requests, destruction.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "testsupport.h"

/* A thread that runs one blocking call on a runner. */
typedef struct op {
  pthread_t th;
  hmb_runner_t *runner;
  int kind; /* 0: start, 1: allocate `bytes` */
  size_t bytes;
  int64_t timeout_ns;
  int rc;
  hmb_buffer_t *buf;
  atomic_int done;
  int *order; /* optional: append runner tag here when granted */
  int tag;
  pthread_mutex_t *order_mu;
  int *order_n;
  int finish_after; /* finish the runner right after start succeeds */
} op_t;

static void *op_main(void *arg) {
  op_t *op = arg;
  if (op->kind == 0) {
    op->rc = hmb_runner_start(op->runner, op->timeout_ns);
    if (op->rc == HMB_OK && op->order) {
      pthread_mutex_lock(op->order_mu);
      op->order[(*op->order_n)++] = op->tag;
      pthread_mutex_unlock(op->order_mu);
    }
    if (op->rc == HMB_OK && op->finish_after)
      hmb_runner_finish(op->runner, 0, NULL);
  } else {
    op->rc = hmb_runner_alloc(op->runner, op->bytes, 0, &op->buf);
  }
  atomic_store(&op->done, 1);
  return NULL;
}

static void op_run(op_t *op, hmb_runner_t *r, int kind, size_t bytes,
                   int64_t timeout_ns) {
  op->runner = r;
  op->kind = kind;
  op->bytes = bytes;
  op->timeout_ns = timeout_ns;
  atomic_init(&op->done, 0);
  assert_int_equal(pthread_create(&op->th, NULL, op_main, op), 0);
}

static void op_join(op_t *op) {
  pthread_join(op->th, NULL);
}

static hmb_runner_t *runner_new(hmb_pool_t *pool, size_t est, int prio) {
  hmb_runner_config_t rc = {0};
  rc.estimate = est;
  rc.priority = prio;
  hmb_runner_t *r = NULL;
  assert_int_equal(hmb_runner_create(pool, &rc, &r), HMB_OK);
  return r;
}

typedef struct waitcond {
  hmb_pool_t *pool;
  int acq, bor;
} waitcond_t;

static int waiters_are(void *arg) {
  waitcond_t *w = arg;
  hmb_pool_stats_t st;
  hmb_pool_stats(w->pool, &st);
  return st.acquire_waiters == w->acq && st.borrow_waiters == w->bor;
}

/* Block until the pool shows exactly `acq` start and `bor` borrow waiters. */
static void await_waiters(hmb_pool_t *pool, int acq, int bor) {
  waitcond_t w = {pool, acq, bor};
  assert_true(ts_wait_for(waiters_are, &w, 20000));
}

static hmb_pool_stats_t stats_of(hmb_pool_t *pool) {
  hmb_pool_stats_t st;
  assert_int_equal(hmb_pool_stats(pool, &st), HMB_OK);
  return st;
}

static void test_overcommit_when_nothing_running(void **state) {
  (void)state;
  ts_log_t log = {0};
  hmb_pool_t *pool = ts_pool(1000, NULL, &log);
  hmb_runner_t *big = runner_new(pool, 5000, 0);
  assert_int_equal(hmb_runner_start(big, 0), HMB_OK); /* nothing running */
  hmb_pool_stats_t st = stats_of(pool);
  assert_int_equal(st.held, 5000);
  assert_int_equal(st.available, -4000);
  assert_int_equal(st.overcommitted, 4000);
  assert_int_equal(st.peak_overcommitted, 4000);
  assert_int_equal(st.acquire_overcommits, 1);
  assert_int_equal(st.overcommitted_total, 4000);
  assert_true(ts_log_contains(&log, "over-commit"));
  assert_true(ts_log_contains(&log, "no runner was running"));

  /* Someone is running now: a second request must wait (here: not wait). */
  hmb_runner_t *small = runner_new(pool, 10, 0);
  assert_int_equal(hmb_runner_start(small, 0), HMB_ETIMEDOUT);
  assert_int_equal(hmb_runner_state(small), HMB_RUNNER_CREATED);
  size_t ret = 0;
  assert_int_equal(hmb_runner_finish(big, 0, &ret), HMB_OK);
  assert_int_equal(ret, 5000);
  assert_int_equal(hmb_runner_start(small, 0), HMB_OK);
  st = stats_of(pool);
  assert_int_equal(st.held, 10);
  assert_int_equal(st.overcommitted, 0);
  hmb_runner_destroy(small);
  hmb_runner_destroy(big);
  ts_assert_pool_idle(pool);
  assert_int_equal(hmb_pool_destroy(pool), HMB_OK);
}

static void test_prompt_wakeup_when_last_runner_stops(void **state) {
  (void)state;
  ts_watchdog_arm("prompt wake-up", 30);
  hmb_pool_t *pool = ts_pool(1000, NULL, NULL);
  hmb_runner_t *r1 = runner_new(pool, 800, 0);
  assert_int_equal(hmb_runner_start(r1, 0), HMB_OK);
  hmb_buffer_t *kept = NULL;
  assert_int_equal(hmb_runner_alloc(r1, 800, 0, &kept), HMB_OK);

  hmb_runner_t *r2 = runner_new(pool, 900, 0);
  op_t op = {0};
  op_run(&op, r2, 0, 0, HMB_WAIT_FOREVER); /* only a wake-up can end it */
  await_waiters(pool, 1, 0);
  assert_int_equal(hmb_runner_state(r2), HMB_RUNNER_WAITING);

  /* r1 stops running but its buffer (800) stays live with a consumer:
   * only 200 is free, yet nothing runs, so r2 must be admitted now. */
  assert_int_equal(hmb_runner_finish(r1, 0, NULL), HMB_OK);
  op_join(&op);
  assert_int_equal(op.rc, HMB_OK);
  assert_int_equal(hmb_runner_state(r2), HMB_RUNNER_RUNNING);
  hmb_pool_stats_t st = stats_of(pool);
  assert_int_equal(st.held, 1700);
  assert_int_equal(st.overcommitted, 700);
  assert_int_equal(st.acquire_overcommits, 1);
  hmb_buffer_close(kept);
  hmb_runner_destroy(r1);
  hmb_runner_destroy(r2);
  ts_assert_pool_idle(pool);
  assert_int_equal(hmb_pool_destroy(pool), HMB_OK);
  ts_watchdog_disarm();
}

static void test_borrowers_before_acquirers(void **state) {
  (void)state;
  ts_watchdog_arm("borrowers first", 30);
  hmb_pool_t *pool = ts_pool(1000, NULL, NULL);
  hmb_runner_t *r1 = runner_new(pool, 600, 0);
  hmb_runner_t *r2 = runner_new(pool, 300, 0);
  assert_int_equal(hmb_runner_start(r1, 0), HMB_OK);
  assert_int_equal(hmb_runner_start(r2, 0), HMB_OK); /* available: 100 */

  /* An acquirer arrives first and waits for 150 (highest priority). */
  hmb_runner_t *r3 = runner_new(pool, 150, 100);
  op_t acq = {0};
  op_run(&acq, r3, 0, 0, HMB_WAIT_FOREVER);
  await_waiters(pool, 1, 0);
  /* Then a running runner needs 250 more than it holds. */
  op_t bor = {0};
  op_run(&bor, r1, 1, 850, HMB_WAIT_FOREVER);
  await_waiters(pool, 1, 1);

  /* 200 free: enough for the acquirer, not for the borrower. The borrower
   * is first, so nobody is served (grants are decided inside try-free). */
  size_t ret = 0;
  assert_int_equal(hmb_runner_try_free(r2, 100, &ret), HMB_OK);
  assert_int_equal(ret, 100);
  hmb_pool_stats_t st = stats_of(pool);
  assert_int_equal(st.acquire_waiters, 1);
  assert_int_equal(st.borrow_waiters, 1);
  assert_int_equal(st.held, 800);

  /* 300 free: the borrower takes its 250; the acquirer still waits. */
  assert_int_equal(hmb_runner_try_free(r2, 100, &ret), HMB_OK);
  op_join(&bor);
  assert_int_equal(bor.rc, HMB_OK);
  hmb_runner_stats_t rs;
  hmb_runner_stats(r1, &rs);
  assert_int_equal(rs.held, 850);
  assert_int_equal(rs.borrowed, 250);
  assert_int_equal(rs.live, 850);
  st = stats_of(pool);
  assert_int_equal(st.acquire_waiters, 1);
  assert_int_equal(st.borrow_waiters, 0);
  assert_int_equal(atomic_load(&acq.done), 0);

  /* The rest of r2's budget admits the acquirer. */
  assert_int_equal(hmb_runner_try_free(r2, SIZE_MAX, &ret), HMB_OK);
  assert_int_equal(ret, 100);
  op_join(&acq);
  assert_int_equal(acq.rc, HMB_OK);
  st = stats_of(pool);
  assert_int_equal(st.held, 1000);
  assert_int_equal(st.overcommitted, 0);
  assert_int_equal(st.borrows, 1);
  assert_int_equal(st.borrow_waits, 1);
  assert_int_equal(st.released_early, 300);

  hmb_buffer_close(bor.buf);
  hmb_runner_destroy(r1);
  hmb_runner_destroy(r2);
  hmb_runner_destroy(r3);
  ts_assert_pool_idle(pool);
  assert_int_equal(hmb_pool_destroy(pool), HMB_OK);
  ts_watchdog_disarm();
}

static void test_all_borrowers_rule(void **state) {
  (void)state;
  ts_watchdog_arm("all borrowers", 30);
  ts_log_t log = {0};
  hmb_pool_t *pool = ts_pool(1000, NULL, &log);
  hmb_runner_t *r1 = runner_new(pool, 500, 0);
  hmb_runner_t *r2 = runner_new(pool, 500, 0);
  assert_int_equal(hmb_runner_start(r1, 0), HMB_OK);
  assert_int_equal(hmb_runner_start(r2, 0), HMB_OK);

  op_t b1 = {0}, b2 = {0};
  op_run(&b1, r1, 1, 700, HMB_WAIT_FOREVER); /* deficit 200: waits */
  await_waiters(pool, 0, 1);
  assert_int_equal(atomic_load(&b1.done), 0);
  /* Now every running runner waits to borrow: the first one proceeds. */
  op_run(&b2, r2, 1, 600, HMB_WAIT_FOREVER);
  op_join(&b1);
  assert_int_equal(b1.rc, HMB_OK);
  await_waiters(pool, 0, 1); /* r2 still waits: r1 is running again */
  hmb_pool_stats_t st = stats_of(pool);
  assert_int_equal(st.borrow_overcommits, 1);
  assert_int_equal(st.held, 1200);
  assert_int_equal(st.overcommitted, 200);
  assert_true(ts_log_contains(&log, "deadlock prevention"));

  /* r1 finishes and its buffer closes: r2 gets its 100 within the limit. */
  hmb_buffer_close(b1.buf);
  assert_int_equal(hmb_runner_finish(r1, 0, NULL), HMB_OK);
  op_join(&b2);
  assert_int_equal(b2.rc, HMB_OK);
  st = stats_of(pool);
  assert_int_equal(st.held, 600);
  assert_int_equal(st.borrow_overcommits, 1);
  assert_int_equal(st.peak_overcommitted, 200);

  /* A lone running runner may always borrow past the limit. */
  hmb_buffer_t *huge = NULL;
  assert_int_equal(hmb_runner_alloc(r2, 5000, 0, &huge), HMB_OK);
  st = stats_of(pool);
  assert_int_equal(st.borrow_overcommits, 2);
  assert_int_equal(st.held, 5600);
  hmb_buffer_close(huge);
  hmb_buffer_close(b2.buf);
  hmb_runner_destroy(r1);
  hmb_runner_destroy(r2);
  ts_assert_pool_idle(pool);
  assert_int_equal(hmb_pool_destroy(pool), HMB_OK);
  ts_watchdog_disarm();
}

static void test_timeout_leaves_nothing_taken(void **state) {
  (void)state;
  ts_watchdog_arm("timeouts", 30);
  ts_log_t log = {0};
  hmb_pool_t *pool = ts_pool(1000, NULL, &log);
  hmb_runner_t *r1 = runner_new(pool, 900, 0);
  assert_int_equal(hmb_runner_start(r1, 0), HMB_OK);
  hmb_runner_t *r2 = runner_new(pool, 200, 0);
  assert_int_equal(hmb_runner_start(r2, 20 * 1000 * 1000), HMB_ETIMEDOUT);
  hmb_pool_stats_t st = stats_of(pool);
  assert_int_equal(st.held, 900);
  assert_int_equal(st.acquire_waiters, 0);
  assert_int_equal(st.acquire_timeouts, 1);
  assert_int_equal(hmb_runner_state(r2), HMB_RUNNER_CREATED);
  hmb_runner_stats_t rs;
  hmb_runner_stats(r2, &rs);
  assert_int_equal(rs.held, 0);
  assert_true(ts_log_contains(&log, "timeout"));
  assert_true(ts_log_contains(&log, "held 900 of limit 1000"));

  /* Borrow timeout: r3 runs beside r1 and cannot borrow 150 more. */
  hmb_runner_config_t rc = {0};
  rc.estimate = 100;
  rc.borrow_timeout_ns = 20 * 1000 * 1000;
  hmb_runner_t *r3 = NULL;
  assert_int_equal(hmb_runner_create(pool, &rc, &r3), HMB_OK);
  assert_int_equal(hmb_runner_start(r3, 0), HMB_OK);
  hmb_buffer_t *b = NULL;
  assert_int_equal(hmb_runner_alloc(r3, 250, 0, &b), HMB_ETIMEDOUT);
  assert_null(b);
  hmb_runner_stats(r3, &rs);
  assert_int_equal(rs.held, 100); /* kept what it held */
  assert_int_equal(rs.live, 0);
  assert_int_equal(rs.borrowed, 0);
  st = stats_of(pool);
  assert_int_equal(st.held, 1000);
  assert_int_equal(st.borrow_timeouts, 1);
  assert_int_equal(st.borrow_waiters, 0);
  /* and the budget it kept is still usable on the fast path */
  assert_int_equal(hmb_runner_alloc(r3, 100, 0, &b), HMB_OK);
  hmb_buffer_close(b);

  /* A timed-out start can be retried and succeeds once budget frees. */
  hmb_runner_destroy(r1);
  assert_int_equal(hmb_runner_start(r2, 0), HMB_OK);
  hmb_runner_destroy(r2);
  hmb_runner_destroy(r3);
  ts_assert_pool_idle(pool);
  assert_int_equal(hmb_pool_destroy(pool), HMB_OK);
  ts_watchdog_disarm();
}

static void test_priority_then_arrival_order(void **state) {
  (void)state;
  ts_watchdog_arm("priority order", 30);
  hmb_pool_t *pool = ts_pool(100, NULL, NULL);
  hmb_runner_t *blocker = runner_new(pool, 100, 0);
  assert_int_equal(hmb_runner_start(blocker, 0), HMB_OK);
  static const int prios[] = {1, 5, 5, 3, 5};
  enum { N = 5 };
  op_t ops[N];
  hmb_runner_t *rs[N];
  int order[N], order_n = 0;
  pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
  memset(ops, 0, sizeof ops);
  for (int i = 0; i < N; i++) {
    rs[i] = runner_new(pool, 100, prios[i]);
    ops[i].order = order;
    ops[i].order_mu = &mu;
    ops[i].order_n = &order_n;
    ops[i].tag = i;
    ops[i].finish_after = 1;
    op_run(&ops[i], rs[i], 0, 0, HMB_WAIT_FOREVER);
    await_waiters(pool, i + 1, 0); /* arrival order is the creation order */
  }
  hmb_runner_finish(blocker, 0, NULL);
  for (int i = 0; i < N; i++)
    op_join(&ops[i]);
  assert_int_equal(order_n, N);
  static const int expect[] = {1, 2, 4, 3, 0};
  for (int i = 0; i < N; i++)
    assert_int_equal(order[i], expect[i]);
  for (int i = 0; i < N; i++)
    hmb_runner_destroy(rs[i]);
  hmb_runner_destroy(blocker);
  ts_assert_pool_idle(pool);
  assert_int_equal(hmb_pool_destroy(pool), HMB_OK);
  ts_watchdog_disarm();
}

static void test_retried_start_keeps_its_place(void **state) {
  (void)state;
  ts_watchdog_arm("retry keeps place", 30);
  hmb_pool_t *pool = ts_pool(100, NULL, NULL);
  hmb_runner_t *blocker = runner_new(pool, 100, 0);
  assert_int_equal(hmb_runner_start(blocker, 0), HMB_OK);
  hmb_runner_t *old = runner_new(pool, 100, 0);
  hmb_runner_t *young = runner_new(pool, 100, 0);
  /* `old` asks first and times out; `young` then queues. */
  assert_int_equal(hmb_runner_start(old, 1000000), HMB_ETIMEDOUT);
  int order[2], order_n = 0;
  pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
  op_t ops[2];
  memset(ops, 0, sizeof ops);
  hmb_runner_t *rs[2] = {young, old};
  for (int i = 0; i < 2; i++) {
    ops[i].order = order;
    ops[i].order_mu = &mu;
    ops[i].order_n = &order_n;
    ops[i].tag = i;
    ops[i].finish_after = 1;
    op_run(&ops[i], rs[i], 0, 0, HMB_WAIT_FOREVER);
    await_waiters(pool, i + 1, 0);
  }
  /* The retry of `old` is served before `young`, which arrived later. */
  hmb_runner_finish(blocker, 0, NULL);
  for (int i = 0; i < 2; i++)
    op_join(&ops[i]);
  assert_int_equal(order_n, 2);
  assert_int_equal(order[0], 1);
  assert_int_equal(order[1], 0);
  hmb_runner_destroy(old);
  hmb_runner_destroy(young);
  hmb_runner_destroy(blocker);
  ts_assert_pool_idle(pool);
  assert_int_equal(hmb_pool_destroy(pool), HMB_OK);
  ts_watchdog_disarm();
}

static void test_large_request_not_bypassed(void **state) {
  (void)state;
  ts_watchdog_arm("head of line", 30);
  hmb_pool_t *pool = ts_pool(1000, NULL, NULL);
  hmb_runner_t *r0 = runner_new(pool, 600, 0);
  assert_int_equal(hmb_runner_start(r0, 0), HMB_OK);
  hmb_runner_t *big = runner_new(pool, 800, 0);
  op_t op = {0};
  op_run(&op, big, 0, 0, HMB_WAIT_FOREVER);
  await_waiters(pool, 1, 0);
  /* 400 is free and 100 would fit, but the large head request is first. */
  hmb_runner_t *small = runner_new(pool, 100, 0);
  assert_int_equal(hmb_runner_start(small, 0), HMB_ETIMEDOUT);
  /* A higher priority is served first, though: priority beats arrival. */
  hmb_runner_t *urgent = runner_new(pool, 100, 9);
  assert_int_equal(hmb_runner_start(urgent, 0), HMB_OK);
  hmb_runner_destroy(urgent);
  hmb_runner_destroy(r0);
  op_join(&op);
  assert_int_equal(op.rc, HMB_OK);
  hmb_pool_stats_t st = stats_of(pool);
  assert_int_equal(st.held, 800);
  assert_int_equal(st.acquire_overcommits, 0);
  assert_int_equal(hmb_runner_start(small, 0), HMB_OK);
  hmb_runner_destroy(small);
  hmb_runner_destroy(big);
  ts_assert_pool_idle(pool);
  assert_int_equal(hmb_pool_destroy(pool), HMB_OK);
  ts_watchdog_disarm();
}

static void test_cancel_wakes_waiters(void **state) {
  (void)state;
  ts_watchdog_arm("cancel", 30);
  hmb_pool_t *pool = ts_pool(1000, NULL, NULL);
  hmb_runner_t *r0 = runner_new(pool, 900, 0);
  assert_int_equal(hmb_runner_start(r0, 0), HMB_OK);

  /* Cancelling a start waiter. */
  hmb_runner_t *w = runner_new(pool, 500, 0);
  op_t op = {0};
  op_run(&op, w, 0, 0, HMB_WAIT_FOREVER);
  await_waiters(pool, 1, 0);
  assert_int_equal(hmb_runner_cancel(w), HMB_OK);
  op_join(&op);
  assert_int_equal(op.rc, HMB_ECANCELED);
  assert_int_equal(hmb_runner_state(w), HMB_RUNNER_CANCELLED);
  assert_int_equal(hmb_runner_is_cancelled(w), 1);
  assert_int_equal(hmb_runner_cancel(w), HMB_OK); /* idempotent */
  assert_int_equal(hmb_runner_start(w, 0), HMB_ECANCELED);
  hmb_pool_stats_t st = stats_of(pool);
  assert_int_equal(st.acquire_cancels, 1);
  assert_int_equal(st.acquire_waiters, 0);
  assert_int_equal(st.held, 900);

  /* Cancelling a borrower: it keeps what it held until finish/destroy. */
  hmb_runner_t *b = runner_new(pool, 100, 0);
  assert_int_equal(hmb_runner_start(b, 0), HMB_OK);
  hmb_buffer_t *kept = NULL;
  assert_int_equal(hmb_runner_alloc(b, 40, 0, &kept), HMB_OK);
  op_t bop = {0};
  op_run(&bop, b, 1, 500, HMB_WAIT_FOREVER);
  await_waiters(pool, 0, 1);
  assert_int_equal(hmb_runner_cancel(b), HMB_OK);
  op_join(&bop);
  assert_int_equal(bop.rc, HMB_ECANCELED);
  assert_null(bop.buf);
  hmb_runner_stats_t rs;
  hmb_runner_stats(b, &rs);
  assert_int_equal(rs.held, 100);
  assert_int_equal(rs.live, 40);
  st = stats_of(pool);
  assert_int_equal(st.running, 1); /* only r0 */
  assert_int_equal(st.borrow_cancels, 1);
  hmb_buffer_t *no = NULL;
  assert_int_equal(hmb_runner_alloc(b, 8, 0, &no), HMB_ECANCELED);
  size_t ret = 0;
  assert_int_equal(hmb_runner_finish(b, 0, &ret), HMB_OK); /* after cancel */
  assert_int_equal(ret, 60);
  assert_int_equal(hmb_runner_state(b), HMB_RUNNER_CANCELLED);
  assert_int_equal(hmb_runner_finish(b, 0, &ret), HMB_ESTATE);
  hmb_buffer_close(kept); /* straight back to the pool */
  hmb_runner_stats(b, &rs);
  assert_int_equal(rs.held, 0);
  hmb_runner_destroy(b);
  hmb_runner_destroy(w);
  hmb_runner_destroy(r0);
  ts_assert_pool_idle(pool);
  assert_int_equal(hmb_pool_destroy(pool), HMB_OK);
  ts_watchdog_disarm();
}

static void test_zero_request_granted_at_once(void **state) {
  (void)state;
  hmb_pool_t *pool = ts_pool(100, NULL, NULL);
  hmb_runner_t *r0 = runner_new(pool, 500, 0); /* over-committed */
  assert_int_equal(hmb_runner_start(r0, 0), HMB_OK);
  hmb_runner_t *z = runner_new(pool, 0, 0);
  assert_int_equal(hmb_runner_start(z, 0), HMB_OK);
  assert_int_equal(hmb_runner_state(z), HMB_RUNNER_RUNNING);
  hmb_pool_stats_t st = stats_of(pool);
  assert_int_equal(st.running, 2);
  assert_int_equal(st.held, 500);
  hmb_runner_destroy(z);
  hmb_runner_destroy(r0);
  ts_assert_pool_idle(pool);
  assert_int_equal(hmb_pool_destroy(pool), HMB_OK);
}

static void test_destroy_with_runners_is_refused(void **state) {
  (void)state;
  ts_log_t log = {0};
  hmb_pool_t *pool = ts_pool(1000, NULL, &log);
  hmb_runner_t *r = runner_new(pool, 100, 0);
  hmb_runner_config_t cfg = {0};
  cfg.name = "split-7";
  hmb_runner_t *named = NULL;
  assert_int_equal(hmb_runner_create(pool, &cfg, &named), HMB_OK);
  assert_int_equal(hmb_runner_start(r, 0), HMB_OK);
  assert_int_equal(hmb_runner_start(named, 0), HMB_OK);
  hmb_buffer_t *b = NULL;
  assert_int_equal(hmb_runner_alloc(named, 64, 0, &b), HMB_OK);
  hmb_runner_destroy(named); /* detached: its buffer is still live */
  assert_int_equal(hmb_pool_destroy(pool), HMB_EBUSY);
  assert_true(ts_log_contains(&log, "leak"));
  assert_true(ts_log_contains(&log, "2 runner(s)"));
  assert_true(ts_log_contains(&log, "'split-7'"));
  /* Still fully usable. */
  hmb_pool_stats_t st = stats_of(pool);
  assert_int_equal(st.runners, 2);
  assert_int_equal(st.live_buffers, 1);
  hmb_runner_destroy(r);
  assert_int_equal(hmb_pool_destroy(pool), HMB_EBUSY);
  hmb_buffer_close(b);
  ts_assert_pool_idle(pool);
  assert_int_equal(hmb_pool_destroy(pool), HMB_OK);
  assert_int_equal(hmb_pool_destroy(NULL), HMB_OK);
}

static void test_describe_names_top_holders(void **state) {
  (void)state;
  hmb_pool_t *pool = ts_pool(1000, NULL, NULL);
  hmb_runner_t *rs[3];
  const char *names[] = {"small", "large", "medium"};
  size_t est[] = {100, 500, 300};
  for (int i = 0; i < 3; i++) {
    hmb_runner_config_t cfg = {0};
    cfg.estimate = est[i];
    cfg.name = names[i];
    assert_int_equal(hmb_runner_create(pool, &cfg, &rs[i]), HMB_OK);
    assert_int_equal(hmb_runner_start(rs[i], 0), HMB_OK);
  }
  hmb_buffer_t *b = NULL;
  assert_int_equal(hmb_runner_alloc(rs[1], 200, 0, &b), HMB_OK);
  char text[1024];
  int n = hmb_pool_describe(pool, 2, text, sizeof text);
  assert_true(n > 0 && (size_t)n < sizeof text);
  assert_non_null(strstr(text, "held 900 of limit 1000"));
  const char *large = strstr(text, "'large' RUNNING held 500 live 200");
  const char *medium = strstr(text, "'medium' RUNNING held 300 live 0");
  assert_non_null(large);
  assert_non_null(medium);
  assert_true(large < medium);
  assert_null(strstr(text, "'small'")); /* only the top 2 */
  char tiny[8];
  int need = hmb_pool_describe(pool, 2, tiny, sizeof tiny);
  assert_int_equal(need, n);
  assert_int_equal(strlen(tiny), 7);
  assert_int_equal(hmb_pool_describe(NULL, 1, text, sizeof text), HMB_EINVAL);
  hmb_buffer_close(b);
  for (int i = 0; i < 3; i++)
    hmb_runner_destroy(rs[i]);
  assert_int_equal(hmb_pool_destroy(pool), HMB_OK);
}

static void test_config_validation(void **state) {
  (void)state;
  hmb_pool_config_t cfg;
  hmb_pool_t *pool = (hmb_pool_t *)1;
  hmb_pool_config_init(&cfg);
  assert_int_equal(hmb_pool_create(&cfg, &pool), HMB_EINVAL); /* limit 0 */
  assert_null(pool);
  cfg.limit = 100;
  cfg.alignment = 96;
  assert_int_equal(hmb_pool_create(&cfg, &pool), HMB_EINVAL);
  cfg.alignment = 0;
  hmb_backend_t half = {0};
  cfg.backend = &half;
  assert_int_equal(hmb_pool_create(&cfg, &pool), HMB_EINVAL);
  cfg.backend = NULL;
  cfg.limit = HMB_MAX_ALLOC + 1;
  assert_int_equal(hmb_pool_create(&cfg, &pool), HMB_EINVAL);
  assert_int_equal(hmb_pool_create(NULL, &pool), HMB_EINVAL);
  cfg.limit = 100;
  assert_int_equal(hmb_pool_create(&cfg, NULL), HMB_EINVAL);
  cfg.max_request = 50;
  assert_int_equal(hmb_pool_create(&cfg, &pool), HMB_OK);
  assert_int_equal(hmb_pool_limit(pool), 100);
  hmb_runner_config_t rc = {0};
  rc.estimate = 51;
  hmb_runner_t *r = (hmb_runner_t *)1;
  assert_int_equal(hmb_runner_create(pool, &rc, &r), HMB_ETOOBIG);
  assert_null(r);
  rc.estimate = 10;
  assert_int_equal(hmb_runner_create(pool, &rc, &r), HMB_OK);
  assert_int_equal(hmb_runner_start(r, 0), HMB_OK);
  hmb_buffer_t *b = NULL;
  assert_int_equal(hmb_runner_alloc(r, 51, 0, &b), HMB_ETOOBIG);
  hmb_runner_destroy(r);
  ts_assert_pool_idle(pool);
  assert_int_equal(hmb_pool_destroy(pool), HMB_OK);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_overcommit_when_nothing_running),
      cmocka_unit_test(test_prompt_wakeup_when_last_runner_stops),
      cmocka_unit_test(test_borrowers_before_acquirers),
      cmocka_unit_test(test_all_borrowers_rule),
      cmocka_unit_test(test_timeout_leaves_nothing_taken),
      cmocka_unit_test(test_priority_then_arrival_order),
      cmocka_unit_test(test_retried_start_keeps_its_place),
      cmocka_unit_test(test_large_request_not_bypassed),
      cmocka_unit_test(test_cancel_wakes_waiters),
      cmocka_unit_test(test_zero_request_granted_at_once),
      cmocka_unit_test(test_destroy_with_runners_is_refused),
      cmocka_unit_test(test_describe_names_top_holders),
      cmocka_unit_test(test_config_validation),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
