/*
 * test_regressions.c - corner cases of the budget protocol, each of which a
 * simpler implementation gets wrong: counters that could overflow under
 * repeated over-commit, a borrow that waits for the pool although its own
 * runner got the bytes back, a declared need that is forgotten after the
 * call, a rollback that undoes the wrong amount of over-commit, a trim that
 * races another and gives twice, and a log sink that sees a message meant
 * for its predecessor.
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "testsupport.h"

static hmb_pool_stats_t pstats(hmb_pool_t *p) {
  hmb_pool_stats_t s;
  assert_int_equal(hmb_pool_stats(p, &s), HMB_OK);
  return s;
}

static hmb_runner_stats_t rstats(hmb_runner_t *r) {
  hmb_runner_stats_t s;
  assert_int_equal(hmb_runner_stats(r, &s), HMB_OK);
  return s;
}

/* ---- 1. over-commit sums never overflow the budget counters ----------- */

/*
 * Every single request is <= HMB_MAX_ALLOC (2^62), but two over-committed
 * grants (R4 here; R3 likewise) would put pool.held at 2^63, beyond
 * INT64_MAX. The second request is refused with HMB_ETOOBIG and the
 * accounting stays representable and consistent.
 */
static void test_overcommit_cannot_overflow_counters(void **state) {
  (void)state;
  hmb_pool_t *pool = ts_pool(1, NULL, NULL);
  hmb_runner_t *r = ts_started_runner(pool, 0);
  hmb_buffer_t *a = NULL, *b = NULL;
  /* The only running runner borrows: R4 grants beyond the limit. */
  assert_int_equal(hmb_runner_reserve(r, HMB_MAX_ALLOC, &a), HMB_OK);
  int rc = hmb_runner_reserve(r, HMB_MAX_ALLOC, &b);
  hmb_pool_stats_t st = pstats(pool);
  hmb_runner_stats_t rs = rstats(r);
  if (b)
    hmb_buffer_close(b);
  hmb_buffer_close(a);
  hmb_runner_destroy(r);
  assert_int_equal(hmb_pool_destroy(pool), HMB_OK);
  if (rc == HMB_OK) {
    assert_true(st.held > 0);
    assert_true(st.overcommitted >= 0);
    assert_true(st.available <= st.limit);
    assert_true(rs.held > 0);
  } else {
    assert_int_equal(rc, HMB_ETOOBIG);
    assert_int_equal(st.held, (int64_t)HMB_MAX_ALLOC);
  }
}

/* ---- 2. a waiting borrow is served by budget freed to its own runner --- */

typedef struct alloc_job {
  hmb_runner_t *r;
  size_t bytes;
  hmb_buffer_t *buf;
  atomic_int done;
  int rc;
} alloc_job_t;

static void *alloc_thread(void *arg) {
  alloc_job_t *j = arg;
  j->rc = hmb_runner_alloc(j->r, j->bytes, 0, &j->buf);
  atomic_store(&j->done, 1);
  return NULL;
}

static int one_borrow_waiter(void *arg) {
  hmb_pool_stats_t s;
  hmb_pool_stats(arg, &s);
  return s.borrow_waiters == 1;
}

/*
 * Runners A and B each hold 50 of a 100-byte pool. A's thread 1 allocates
 * 10 with A's spare at 0: it borrows 10 and waits (B is running and not
 * borrowing, so neither R1 nor R4 applies). Another thread of A then closes
 * a 50-byte buffer: A's held - live is now 50, which covers the waiting
 * request, so the close itself serves it from A's spare, without the pool:
 * it must not wait until some *other* runner releases budget, and must not
 * push R4 into an over-commit while A has the bytes.
 */
static void test_waiting_borrow_served_by_own_freed_budget(void **state) {
  (void)state;
  ts_watchdog_arm("test_waiting_borrow_served_by_own_freed_budget", 30);
  hmb_pool_t *pool = ts_pool(100, NULL, NULL);
  hmb_runner_t *a = ts_started_runner(pool, 50);
  hmb_runner_t *b = ts_started_runner(pool, 50);
  hmb_buffer_t *big = NULL;
  assert_int_equal(hmb_runner_alloc(a, 50, 0, &big), HMB_OK);

  alloc_job_t job;
  memset(&job, 0, sizeof job);
  job.r = a;
  job.bytes = 10;
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, alloc_thread, &job), 0);
  assert_true(ts_wait_for(one_borrow_waiter, pool, 5000));

  hmb_buffer_close(big); /* A now has 50 spare: more than the 10 it waits for */
  /* Served inside the close: no borrower is left queued when it returns. */
  hmb_pool_stats_t after = pstats(pool);
  int served_by_own_spare = after.borrow_waiters == 0 && after.held == 100;

  /* Unblock in any case: B finishing returns its 50 to the pool. */
  assert_int_equal(hmb_runner_finish(b, 0, NULL), HMB_OK);
  pthread_join(th, NULL);
  assert_int_equal(job.rc, HMB_OK);
  hmb_buffer_close(job.buf);
  hmb_runner_destroy(a);
  hmb_runner_destroy(b);
  ts_assert_pool_idle(pool);
  assert_int_equal(hmb_pool_destroy(pool), HMB_OK);
  ts_watchdog_disarm();
  assert_true(served_by_own_spare);
}

/* ---- 3. a declared need stays in force after the call ------------------ */

/*
 * The reader allocates the footer (600) before it knows the real need, then
 * declares need = 100 after pruning. set_need trims held to
 * max(live, need) = 600 (correct at that instant). When the footer closes
 * while the runner is still RUNNING, the budget above the declared need
 * (500) goes back to the pool at once, not at finish.
 */
static void test_declared_need_stays_in_force(void **state) {
  (void)state;
  hmb_pool_t *pool = ts_pool(1000, NULL, NULL);
  hmb_runner_t *r = ts_started_runner(pool, 1000);
  hmb_buffer_t *footer = NULL;
  assert_int_equal(hmb_runner_alloc(r, 600, 0, &footer), HMB_OK);
  size_t ret = 0;
  assert_int_equal(hmb_runner_set_need(r, 100, &ret), HMB_OK);
  assert_int_equal(ret, 400);
  hmb_buffer_close(footer);
  hmb_runner_stats_t s = rstats(r);
  hmb_pool_stats_t p = pstats(pool);
  hmb_runner_destroy(r);
  ts_assert_pool_idle(pool);
  assert_int_equal(hmb_pool_destroy(pool), HMB_OK);
  assert_int_equal(s.real_need, 100);
  assert_int_equal(s.live, 0);
  assert_true(s.held <= 100); /* max(live, need) */
  assert_true(p.held <= 100);
}

/* ---- 4. rollback of an over-limit borrow undoes exactly its over-commit */

typedef struct gate_backend {
  hmb_backend_t vtable;
  atomic_long calls;
  long fail_at; /* this call blocks on the gate, then fails */
  pthread_mutex_t mu;
  pthread_cond_t cond;
  int entered, open;
} gate_backend_t;

static int gate_alloc(void *ctx, size_t size, size_t align, int prefer_pinned,
                      void **ptr, int *pinned) {
  (void)prefer_pinned;
  gate_backend_t *g = ctx;
  long n = atomic_fetch_add(&g->calls, 1) + 1;
  if (n == g->fail_at) {
    pthread_mutex_lock(&g->mu);
    g->entered = 1;
    pthread_cond_broadcast(&g->cond);
    while (!g->open)
      pthread_cond_wait(&g->cond, &g->mu);
    pthread_mutex_unlock(&g->mu);
    return HMB_ENOMEM;
  }
  void *p = NULL;
  if (posix_memalign(&p, align, size) != 0)
    return HMB_ENOMEM;
  *ptr = p;
  *pinned = 0;
  return 0;
}

static void gate_free(void *ctx, void *ptr, size_t size, int pinned) {
  (void)ctx;
  (void)size;
  (void)pinned;
  free(ptr);
}

/*
 * C (finished) keeps 50 of a 100-byte pool through a live reservation.
 * A starts with 50 and allocates them; A's thread allocates 100 more: A is
 * the only running runner, so R4 grants the 100-byte borrow at once, 100
 * beyond the limit (overcommitted_total = 100, borrow_overcommits = 1).
 * While its physical allocation is in progress C's reservation closes (held
 * drops by 50). The allocation fails and is rolled back: borrow_overcommits
 * goes back to 0 and overcommitted_total is decreased by the 100 the grant
 * added, not by the over-commit at the time of the rollback (50): nothing
 * is reported for a grant that was undone. (In the opposite ordering,
 * another over-commit between grant and rollback, subtracting the amount
 * of the moment would take too much and could wrap the counter.)
 */
static void test_rollback_undoes_exact_overcommit(void **state) {
  (void)state;
  ts_watchdog_arm("test_rollback_undoes_exact_overcommit", 30);
  gate_backend_t g;
  memset(&g, 0, sizeof g);
  g.vtable.ctx = &g;
  g.vtable.alloc = gate_alloc;
  g.vtable.free = gate_free;
  g.fail_at = 2;
  pthread_mutex_init(&g.mu, NULL);
  pthread_cond_init(&g.cond, NULL);
  hmb_pool_t *pool = ts_pool(100, &g.vtable, NULL);

  hmb_runner_t *c = ts_started_runner(pool, 50);
  hmb_buffer_t *res = NULL;
  assert_int_equal(hmb_runner_reserve(c, 50, &res), HMB_OK);
  assert_int_equal(hmb_runner_finish(c, 0, NULL), HMB_OK);

  hmb_runner_t *a = ts_started_runner(pool, 50);
  hmb_buffer_t *first = NULL;
  assert_int_equal(hmb_runner_alloc(a, 50, 0, &first), HMB_OK); /* call 1 */

  alloc_job_t job;
  memset(&job, 0, sizeof job);
  job.r = a;
  job.bytes = 100; /* borrows 100 by R4, then call 2 blocks and fails */
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, alloc_thread, &job), 0);
  pthread_mutex_lock(&g.mu);
  while (!g.entered)
    pthread_cond_wait(&g.cond, &g.mu);
  pthread_mutex_unlock(&g.mu);

  hmb_pool_stats_t mid = pstats(pool);
  assert_int_equal(mid.borrow_overcommits, 1);
  assert_int_equal(mid.overcommitted_total, 100);

  hmb_buffer_close(res); /* C's 50 go back to the pool */
  pthread_mutex_lock(&g.mu);
  g.open = 1;
  pthread_cond_broadcast(&g.cond);
  pthread_mutex_unlock(&g.mu);
  pthread_join(th, NULL);
  assert_int_equal(job.rc, HMB_ENOMEM);

  hmb_pool_stats_t after = pstats(pool);
  hmb_buffer_close(first);
  hmb_runner_destroy(a);
  hmb_runner_destroy(c);
  ts_assert_pool_idle(pool);
  assert_int_equal(hmb_pool_destroy(pool), HMB_OK);
  pthread_cond_destroy(&g.cond);
  pthread_mutex_destroy(&g.mu);
  ts_watchdog_disarm();
  /* The only over-limit grant was undone: both counters agree on it. */
  assert_int_equal(after.borrow_overcommits, 0);
  assert_int_equal(after.overcommitted_total, 0);
}

static int64_t runner_held(hmb_runner_t *r) {
  hmb_runner_stats_t st;
  assert_int_equal(hmb_runner_stats(r, &st), 0);
  return st.held;
}

static int64_t pool_held(hmb_pool_t *p) {
  hmb_pool_stats_t st;
  assert_int_equal(hmb_pool_stats(p, &st), 0);
  return st.held;
}

/*
 * ---- 5. a cancelled runner keeps its budget despite a declared need -----
 * A CANCELLED runner with a declared need keeps the budget of buffers closed
 * after the cancel (it returns to its spare) until finish or destroy; the
 * need is only enforced while the runner runs.
 */
static void test_cancelled_runner_keeps_budget_despite_need(void **state) {
  (void)state;
  hmb_pool_t *p = ts_pool(1000, NULL, NULL);
  hmb_runner_t *r = ts_started_runner(p, 100);
  hmb_buffer_t *b = NULL;
  assert_int_equal(hmb_runner_reserve(r, 100, &b), 0);
  assert_int_equal(hmb_runner_set_need(r, 0, NULL), 0); /* held == live */
  assert_int_equal(runner_held(r), 100);
  assert_int_equal(hmb_runner_cancel(r), 0);
  assert_int_equal(hmb_buffer_close(b), 0);
  /* documented: kept in spare until finish/destroy */
  assert_int_equal(runner_held(r), 100);
  assert_int_equal(pool_held(p), 100);
  hmb_runner_destroy(r);
  assert_int_equal(hmb_pool_destroy(p), 0);
}

/*
 * ---- 6. concurrent closes trim a runner to its need, never below --------
 * Two closes at once on one runner with a declared need each give back what
 * exceeds max(live, need); decided on a stale `held`, both would give the
 * same excess and push held below the need. Probabilistic: many rounds.
 */
typedef struct {
  pthread_barrier_t *bar;
  hmb_buffer_t *buf;
} closer_arg_t;

static void *closer(void *a) {
  closer_arg_t *c = a;
  pthread_barrier_wait(c->bar);
  hmb_buffer_close(c->buf);
  return NULL;
}

static void test_concurrent_trims_stop_at_need(void **state) {
  (void)state;
  hmb_pool_t *p = ts_pool(1 << 20, NULL, NULL);
  long iters = ts_env_long("HMB_REV2_ITERS", 20000);
  long below = 0;
  pthread_barrier_t bar;
  pthread_barrier_init(&bar, NULL, 3);
  for (long i = 0; i < iters && below == 0; i++) {
    hmb_runner_t *r = ts_started_runner(p, 150);
    hmb_buffer_t *b[3];
    for (int k = 0; k < 3; k++)
      assert_int_equal(hmb_runner_reserve(r, 50, &b[k]), 0);
    assert_int_equal(hmb_runner_set_need(r, 100, NULL), 0);
    assert_int_equal(runner_held(r), 150);
    closer_arg_t c1 = {&bar, b[0]}, c2 = {&bar, b[1]};
    pthread_t t1, t2;
    pthread_create(&t1, NULL, closer, &c1);
    pthread_create(&t2, NULL, closer, &c2);
    pthread_barrier_wait(&bar);
    pthread_join(t1, NULL);
    pthread_join(t2, NULL);
    /* live 50, need 100: held must be max(live, need) == 100 */
    if (runner_held(r) < 100) {
      below++;
      fprintf(stderr, "iteration %ld: held %lld < need 100\n", i,
              (long long)runner_held(r));
    }
    hmb_buffer_close(b[2]);
    hmb_runner_destroy(r);
  }
  pthread_barrier_destroy(&bar);
  assert_int_equal(hmb_pool_destroy(p), 0);
  assert_int_equal(below, 0);
}

/*
 * ---- 7. the process-wide sink only sees messages within its level -------
 * A message that passed the previous sink's level filter must not reach a
 * sink installed meanwhile that asked for errors only. Probabilistic.
 */
static _Atomic long sink_b_violations, sink_calls;
static void sink_a(void *u, int level, const char *m) {
  (void)u, (void)level, (void)m;
  atomic_fetch_add(&sink_calls, 1);
}
static void sink_b(void *u, int level, const char *m) {
  (void)u, (void)m;
  if (level > HMB_LOG_ERROR)
    atomic_fetch_add(&sink_b_violations, 1);
}
static _Atomic int log_stop;
static void *log_spammer(void *a) {
  (void)a;
  while (!atomic_load(&log_stop))
    hmb__log(NULL, HMB_LOG_DEBUG, "debug %d", 1);
  return NULL;
}

static void test_global_log_level_follows_its_sink(void **state) {
  (void)state;
  pthread_t t;
  pthread_create(&t, NULL, log_spammer, NULL);
  long iters = ts_env_long("HMB_REV2_LOG_ITERS", 200000);
  for (long i = 0; i < iters && atomic_load(&sink_b_violations) == 0; i++) {
    hmb_set_log(sink_a, NULL, HMB_LOG_DEBUG);
    hmb_set_log(sink_b, NULL, HMB_LOG_ERROR);
  }
  atomic_store(&log_stop, 1);
  pthread_join(t, NULL);
  hmb_set_log(NULL, NULL, 0);
  fprintf(stderr, "sink B got %ld debug message(s)\n",
          atomic_load(&sink_b_violations));
  assert_int_equal(atomic_load(&sink_b_violations), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_overcommit_cannot_overflow_counters),
      cmocka_unit_test(test_waiting_borrow_served_by_own_freed_budget),
      cmocka_unit_test(test_declared_need_stays_in_force),
      cmocka_unit_test(test_rollback_undoes_exact_overcommit),
      cmocka_unit_test(test_cancelled_runner_keeps_budget_despite_need),
      cmocka_unit_test(test_concurrent_trims_stop_at_need),
      cmocka_unit_test(test_global_log_level_follows_its_sink),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
