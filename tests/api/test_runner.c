/*
 * test_runner.c - the runner (hmb/runner.h) as an allocator and a budget:
 * the fast path, borrowing exactly the deficit, rollback on physical
 * failure, where freed budget goes, try-free and set-need while running
 * (the declared need stays in force), finish, cancel, detach, states,
 * reservations, and the regressions of the budget protocol that belong to
 * the runner. The admission rules themselves are in test_admission.c; that
 * the hot path takes no budget lock is checked white-box in
 * tests/unit/test_hot_path.c.
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testsupport.h"

#define MS INT64_C(1000000)

static hmb_runner_stats_t rstats(hmb_runner_t *r) {
  return ts_runner_stats(r);
}
static hmb_pool_stats_t pstats(hmb_pool_t *p) {
  return ts_pool_stats(p);
}

/* Every thread that blocks in the library runs under the watchdog (main). */

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

static int borrow_waiters_is(hmb_pool_t *p, int n) {
  return pstats(p).borrow_waiters == n;
}
static int one_borrow_waiter(void *arg) {
  return borrow_waiters_is(arg, 1);
}

/* ---- the allocator ------------------------------------------------------- */

static void test_runner_fast_path_uses_held_budget(void **state) {
  (void)state;
  hmb_pool_t *pool = ts_pool(10000, NULL, NULL);
  hmb_runner_t *r = ts_started_runner(pool, 1000);
  const hmb_allocator_t *a = hmb_runner_allocator(r);
  assert_non_null(a);
  assert_string_equal(a->name, "runner");
  assert_non_null(a->allocate);
  assert_non_null(a->allocate_aligned);
  assert_ptr_equal(hmb_runner_allocator(r), a); /* valid until destroy */
  hmb_buffer_t *b[4];
  for (int i = 0; i < 4; i++)
    assert_int_equal(hmb_allocate(a, 250, 0, &b[i]), HMB_OK);
  hmb_runner_stats_t s = rstats(r);
  assert_int_equal(s.held, 1000);
  assert_int_equal(s.live, 1000);
  assert_int_equal(s.spare, 0);
  assert_int_equal(s.live_buffers, 4);
  assert_int_equal(s.borrows, 0);
  assert_int_equal(s.allocations, 4);
  hmb_pool_stats_t p = pstats(pool);
  assert_int_equal(p.held, 1000);
  assert_int_equal(p.borrows, 0);
  assert_int_equal(p.live_bytes, 1000);
  for (int i = 0; i < 4; i++)
    hmb_buffer_close(b[i]);
  assert_int_equal(rstats(r).spare, 1000);
  hmb_runner_destroy(r);
  ts_pool_done(pool);
}

static void test_runner_borrows_exactly_the_deficit(void **state) {
  (void)state;
  hmb_pool_t *pool = ts_pool(10000, NULL, NULL);
  hmb_runner_t *r = ts_started_runner(pool, 100);
  hmb_buffer_t *a = NULL, *b = NULL;
  assert_int_equal(hmb_runner_alloc(r, 60, 0, &a), HMB_OK);
  assert_int_equal(hmb_runner_alloc(r, 300, 0, &b), HMB_OK); /* 40 spare */
  hmb_runner_stats_t s = rstats(r);
  assert_int_equal(s.borrowed, 260);
  assert_int_equal(s.borrows, 1);
  assert_int_equal(s.held, 360);
  assert_int_equal(s.live, 360);
  assert_int_equal(s.spare, 0);
  assert_int_equal(s.peak_held, 360);
  assert_int_equal(s.beyond, 0);
  assert_int_equal(pstats(pool).held, 360);
  hmb_buffer_close(a);
  hmb_buffer_close(b);
  hmb_runner_destroy(r);
  ts_pool_done(pool);
}

/* A failed physical allocation changes nothing (I6), peaks included. */
static void test_runner_rollback_on_physical_failure(void **state) {
  (void)state;
  ts_failing_backend_t fb;
  ts_failing_backend_init(&fb, 2, 0); /* the 2nd allocation fails */
  hmb_pool_t *pool = ts_pool(10000, &fb.vtable, NULL);
  hmb_runner_t *r = ts_started_runner(pool, 100);
  hmb_buffer_t *ok = NULL, *bad = (hmb_buffer_t *)1;
  assert_int_equal(hmb_runner_alloc(r, 50, 0, &ok), HMB_OK);
  hmb_runner_stats_t before = rstats(r);
  hmb_pool_stats_t pbefore = pstats(pool);
  /* Needs 150: 50 spare + a borrow of 100, then the backend fails. */
  assert_int_equal(hmb_runner_alloc(r, 150, 0, &bad), HMB_ENOMEM);
  assert_null(bad);
  assert_int_equal(fb.failures, 1);
  hmb_runner_stats_t after = rstats(r);
  hmb_pool_stats_t pafter = pstats(pool);
  assert_int_equal(after.held, before.held);
  assert_int_equal(after.spare, before.spare);
  assert_int_equal(after.peak_held, before.peak_held);
  assert_int_equal(after.live, before.live);
  assert_int_equal(after.live_buffers, before.live_buffers);
  assert_int_equal(after.borrowed, before.borrowed);
  assert_int_equal(after.borrows, before.borrows);
  assert_int_equal(after.allocations, before.allocations);
  assert_int_equal(after.peak_live, before.peak_live);
  assert_int_equal(after.wait_ns, before.wait_ns);
  assert_int_equal(pafter.held, pbefore.held);
  assert_int_equal(pafter.peak_held, pbefore.peak_held);
  assert_int_equal(pafter.borrows, pbefore.borrows);
  assert_int_equal(pafter.live_bytes, pbefore.live_bytes);
  assert_int_equal(pafter.live_buffers, pbefore.live_buffers);
  ts_check(pool, HMB_CHECK_QUIESCENT);
  /* The fast path rolls back too: the spare 50 is intact and usable. */
  fb.fail_at = 3;
  assert_int_equal(hmb_runner_alloc(r, 50, 0, &bad), HMB_ENOMEM);
  assert_int_equal(rstats(r).live, 50);
  assert_int_equal(rstats(r).spare, 50);
  assert_int_equal(hmb_runner_alloc(r, 50, 0, &bad), HMB_OK);
  assert_int_equal(rstats(r).held, 100);
  hmb_buffer_close(bad);
  hmb_buffer_close(ok);
  hmb_runner_destroy(r);
  ts_pool_done(pool);
  assert_int_equal(fb.live, 0);
}

typedef struct at_close {
  hmb_pool_t *pool;
  int64_t pool_held;
  int fired;
} at_close_t;

static void note_pool_held(void *user, hmb_buffer_t *buf, long refs) {
  (void)buf;
  at_close_t *c = user;
  if (refs == 0) {
    c->pool_held = pstats(c->pool).held;
    c->fired = 1;
  }
}

static void test_runner_freed_budget_stays_while_running(void **state) {
  (void)state;
  hmb_pool_t *pool = ts_pool(10000, NULL, NULL);
  hmb_runner_t *r = ts_started_runner(pool, 1000);
  hmb_buffer_t *a = NULL, *b = NULL;
  assert_int_equal(hmb_runner_alloc(r, 400, 0, &a), HMB_OK);
  assert_int_equal(hmb_runner_alloc(r, 300, 0, &b), HMB_OK);
  hmb_buffer_close(a); /* running: the 400 stays with the runner */
  hmb_runner_stats_t s = rstats(r);
  assert_int_equal(s.held, 1000);
  assert_int_equal(s.live, 300);
  assert_int_equal(s.spare, 700);
  assert_int_equal(s.peak_live, 700);
  assert_int_equal(pstats(pool).held, 1000);
  /* ... and is reused without borrowing. */
  assert_int_equal(hmb_runner_alloc(r, 700, 0, &a), HMB_OK);
  assert_int_equal(rstats(r).borrows, 0);
  size_t ret = 0;
  assert_int_equal(hmb_runner_finish(r, 0, &ret), HMB_OK);
  assert_int_equal(ret, 0); /* everything is live */
  assert_int_equal(hmb_runner_state(r), HMB_RUNNER_COMPLETED);
  at_close_t c = {pool, -1, 0};
  hmb_buffer_handler_t h = {note_pool_held, &c};
  hmb_buffer_set_handler(b, &h, NULL);
  hmb_buffer_close(b); /* finished: straight back to the pool */
  assert_int_equal(c.fired, 1);
  assert_int_equal(c.pool_held, 700); /* already returned at the event */
  assert_int_equal(rstats(r).held, 700);
  hmb_buffer_close(a);
  assert_int_equal(rstats(r).held, 0);
  assert_int_equal(rstats(r).returned_at_finish, 0);
  hmb_runner_destroy(r);
  ts_pool_done(pool);
}

/* ---- early release ------------------------------------------------------- */

static void test_runner_try_free_and_set_need_while_running(void **state) {
  (void)state;
  hmb_pool_t *pool = ts_pool(10000, NULL, NULL);
  hmb_runner_t *r = ts_started_runner(pool, 1000);
  hmb_buffer_t *a = NULL;
  assert_int_equal(hmb_runner_alloc(r, 100, 0, &a), HMB_OK);
  size_t ret = 99;
  assert_int_equal(hmb_runner_set_need(r, 400, &ret), HMB_OK);
  assert_int_equal(ret, 600);
  hmb_runner_stats_t s = rstats(r);
  assert_int_equal(s.held, 400);
  assert_int_equal(s.real_need, 400);
  assert_int_equal(s.returned_early, 600);
  assert_int_equal(hmb_runner_state(r), HMB_RUNNER_RUNNING);
  assert_int_equal(pstats(pool).held, 400);
  assert_int_equal(pstats(pool).released_early, 600);
  /* A need below live trims to live, never below. */
  assert_int_equal(hmb_runner_set_need(r, 50, &ret), HMB_OK);
  assert_int_equal(ret, 300);
  assert_int_equal(rstats(r).held, 100);
  /* A need above held returns nothing (grow reserves it). */
  assert_int_equal(hmb_runner_set_need(r, 5000, &ret), HMB_OK);
  assert_int_equal(ret, 0);
  assert_int_equal(rstats(r).held, 100);
  assert_int_equal(rstats(r).real_need, 5000);
  /* try-free with nothing spare. */
  assert_int_equal(hmb_runner_try_free(r, SIZE_MAX, &ret), HMB_OK);
  assert_int_equal(ret, 0);
  /* try-free returns at most what is asked. */
  hmb_buffer_close(a); /* 100 spare now (the need, 5000, keeps it) */
  assert_int_equal(rstats(r).spare, 100);
  assert_int_equal(hmb_runner_try_free(r, 30, &ret), HMB_OK);
  assert_int_equal(ret, 30);
  assert_int_equal(hmb_runner_try_free(r, SIZE_MAX, &ret), HMB_OK);
  assert_int_equal(ret, 70);
  assert_int_equal(hmb_runner_try_free(r, SIZE_MAX, NULL), HMB_OK);
  s = rstats(r);
  assert_int_equal(s.held, 0);
  assert_int_equal(s.returned_early, 1000);
  /* Still running: allocating now borrows. */
  assert_int_equal(hmb_runner_alloc(r, 10, 0, &a), HMB_OK);
  assert_int_equal(rstats(r).borrows, 1);
  hmb_buffer_close(a);
  hmb_runner_destroy(r);
  ts_pool_done(pool);
}

/* Regression: a declared need stays in force after the call (0.1 forgot
 * it: the footer's budget came back only at finish). */
static void test_runner_declared_need_stays_in_force(void **state) {
  (void)state;
  hmb_pool_t *pool = ts_pool(1000, NULL, NULL);
  hmb_runner_t *r = ts_started_runner(pool, 1000);
  hmb_buffer_t *footer = NULL;
  assert_int_equal(hmb_runner_alloc(r, 600, 0, &footer), HMB_OK);
  size_t ret = 0;
  assert_int_equal(hmb_runner_set_need(r, 100, &ret), HMB_OK);
  assert_int_equal(ret, 400); /* max(live 600, need 100) */
  hmb_buffer_close(footer);   /* still RUNNING: held goes to the need */
  hmb_runner_stats_t s = rstats(r);
  assert_int_equal(s.real_need, 100);
  assert_int_equal(s.live, 0);
  assert_int_equal(s.held, 100);
  assert_int_equal(s.returned_early, 900);
  assert_int_equal(pstats(pool).held, 100);
  assert_int_equal(hmb_runner_state(r), HMB_RUNNER_RUNNING);
  /* A later call replaces the need. */
  assert_int_equal(hmb_runner_set_need(r, 0, &ret), HMB_OK);
  assert_int_equal(ret, 100);
  hmb_runner_destroy(r);
  ts_pool_done(pool);
}

/* A need declared before start caps what start acquires. */
static void test_runner_need_before_start_caps_the_start(void **state) {
  (void)state;
  hmb_pool_t *pool = ts_pool(10000, NULL, NULL);
  hmb_runner_t *r = ts_runner(pool, 4000, "capped");
  size_t ret = 7;
  assert_int_equal(hmb_runner_set_need(r, 1500, &ret), HMB_OK);
  assert_int_equal(ret, 0);
  assert_int_equal(rstats(r).real_need, 1500);
  assert_int_equal(hmb_runner_start(r, 0), HMB_OK);
  assert_int_equal(rstats(r).held, 1500);
  assert_int_equal(rstats(r).estimate, 4000);
  hmb_runner_destroy(r);
  r = ts_runner(pool, 4000, "partial");
  assert_int_equal(hmb_runner_set_need(r, 300, NULL), HMB_OK);
  assert_int_equal(hmb_runner_start_partial(r, 2000, 0), HMB_OK);
  assert_int_equal(rstats(r).held, 300);
  hmb_runner_destroy(r);
  ts_pool_done(pool);
}

/* Regression: a CANCELLED runner with a declared need keeps the budget of
 * buffers closed after the cancel until finish or destroy (0.1 trimmed it
 * to the need while cancelled). */
static void test_runner_cancelled_keeps_budget_despite_need(void **state) {
  (void)state;
  hmb_pool_t *p = ts_pool(1000, NULL, NULL);
  hmb_runner_t *r = ts_started_runner(p, 100);
  hmb_buffer_t *b = NULL;
  assert_int_equal(hmb_runner_reserve(r, 100, &b), 0);
  assert_int_equal(hmb_runner_set_need(r, 0, NULL), 0); /* held == live */
  assert_int_equal(rstats(r).held, 100);
  assert_int_equal(hmb_runner_cancel(r), 0);
  assert_int_equal(hmb_buffer_close(b), 0);
  assert_int_equal(rstats(r).held, 100); /* kept in spare */
  assert_int_equal(rstats(r).spare, 100);
  assert_int_equal(pstats(p).held, 100);
  size_t ret = 0;
  assert_int_equal(hmb_runner_finish(r, 0, &ret), HMB_OK);
  assert_int_equal(ret, 100);
  hmb_runner_destroy(r);
  ts_pool_done(p);
}

/*
 * Regression: two closes at once on one runner with a declared need each
 * give back what exceeds max(live, need); decided on a stale `held`, both
 * would give the same excess and push held below the need (0.1 did).
 * Probabilistic: many rounds.
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

static void test_runner_concurrent_trims_stop_at_the_need(void **state) {
  (void)state;
  hmb_pool_t *p = ts_pool(1 << 20, NULL, NULL);
  long iters = ts_env_long("HMB_TRIM_ITERS", 4000);
  long below = 0;
  pthread_barrier_t bar;
  pthread_barrier_init(&bar, NULL, 3);
  for (long i = 0; i < iters && below == 0; i++) {
    hmb_runner_t *r = ts_started_runner(p, 150);
    hmb_buffer_t *b[3];
    for (int k = 0; k < 3; k++)
      assert_int_equal(hmb_runner_reserve(r, 50, &b[k]), 0);
    assert_int_equal(hmb_runner_set_need(r, 100, NULL), 0);
    assert_int_equal(rstats(r).held, 150);
    closer_arg_t c1 = {&bar, b[0]}, c2 = {&bar, b[1]};
    pthread_t t1, t2;
    pthread_create(&t1, NULL, closer, &c1);
    pthread_create(&t2, NULL, closer, &c2);
    pthread_barrier_wait(&bar);
    pthread_join(t1, NULL);
    pthread_join(t2, NULL);
    /* live 50, need 100: held must be max(live, need) == 100 */
    int64_t held = rstats(r).held;
    if (held != 100) {
      below++;
      fprintf(stderr, "iteration %ld: held %lld, need 100\n", i,
              (long long)held);
    }
    hmb_buffer_close(b[2]);
    hmb_runner_destroy(r);
  }
  pthread_barrier_destroy(&bar);
  ts_pool_done(p);
  assert_int_equal(below, 0);
}

/* try-free honours any max_bytes: SIZE_MAX returns all spare, even when
 * spare is above 2^62 (0.1 clamped the request to HMB_MAX_ALLOC and left
 * the rest). Reservations carry no memory, so the spare can be made huge. */
static void
test_runner_try_free_size_max_returns_spare_above_2_62(void **state) {
  (void)state;
  hmb_pool_t *pool = ts_pool(HMB_MAX_ALLOC, NULL, NULL);
  hmb_runner_t *r = ts_started_runner(pool, HMB_MAX_ALLOC);
  hmb_buffer_t *a = NULL, *b = NULL;
  assert_int_equal(hmb_runner_reserve(r, HMB_MAX_ALLOC, &a), HMB_OK);
  /* Alone and waiting: the progress runner, granted beyond the limit. */
  assert_int_equal(hmb_runner_reserve(r, HMB_MAX_ALLOC - 1, &b), HMB_OK);
  const int64_t all = INT64_MAX; /* 2^62 + 2^62 - 1 */
  assert_int_equal(rstats(r).held, all);
  assert_int_equal(rstats(r).beyond, (int64_t)HMB_MAX_ALLOC - 1);
  /* Closing them gives what was beyond the limit back at once (a progress
   * runner holds beyond the limit only what is live): spare is the 2^62
   * within it. */
  hmb_buffer_close(a);
  hmb_buffer_close(b);
  hmb_runner_stats_t s = rstats(r);
  assert_int_equal(s.spare, (int64_t)HMB_MAX_ALLOC);
  assert_int_equal(s.beyond, 0);
  /* An amount above 2^62 is not clamped to 2^62 - anything: all of it. */
  size_t ret = 0;
  assert_int_equal(hmb_runner_try_free(r, HMB_MAX_ALLOC + 5, &ret), HMB_OK);
  assert_int_equal(ret, HMB_MAX_ALLOC);
  s = rstats(r);
  assert_int_equal(s.spare, 0);
  assert_int_equal(s.held, 0);
  assert_int_equal(s.returned_early, (uint64_t)HMB_MAX_ALLOC);
  /* Again, SIZE_MAX. */
  assert_int_equal(hmb_runner_reserve(r, HMB_MAX_ALLOC, &a), HMB_OK);
  hmb_buffer_close(a);
  assert_int_equal(hmb_runner_try_free(r, SIZE_MAX, &ret), HMB_OK);
  assert_int_equal(ret, HMB_MAX_ALLOC);
  assert_int_equal(pstats(pool).held, 0);
  ts_check(pool, HMB_CHECK_QUIESCENT);
  hmb_runner_destroy(r);
  ts_pool_done(pool);
}

/* Spare of any size is kept exactly and serves the runner's own
 * allocations without a borrow from the pool: a shard keeps up to 512 GiB
 * next to its buffer count (ledger_state.h), the rest is kept apart, and a
 * close whose bytes do not fit its shard is kept there too. Reservations
 * carry no memory, so the budget can be that large. */
static void test_runner_spare_beyond_a_shard_is_kept_exactly(void **state) {
  (void)state;
  const int64_t gib = INT64_C(1) << 30;
  hmb_pool_t *pool = ts_pool((size_t)(2048 * gib), NULL, NULL);
  hmb_runner_t *r = ts_started_runner(pool, (size_t)(1000 * gib));
  assert_int_equal(rstats(r).spare, 1000 * gib);
  hmb_buffer_t *a = NULL, *b = NULL, *c = NULL;
  assert_int_equal(hmb_runner_reserve(r, (size_t)(400 * gib), &a), HMB_OK);
  assert_int_equal(hmb_runner_reserve(r, (size_t)(300 * gib), &b), HMB_OK);
  hmb_runner_stats_t s = rstats(r);
  assert_int_equal(s.held, 1000 * gib);
  assert_int_equal(s.live, 700 * gib);
  assert_int_equal(s.spare, 300 * gib);
  assert_int_equal(s.borrows, 0);
  assert_int_equal(pstats(pool).held, 1000 * gib);
  ts_check(pool, HMB_CHECK_QUIESCENT);
  /* 400 GiB fit the shard; 300 more would not (700 > 512). */
  hmb_buffer_close(a);
  hmb_buffer_close(b);
  s = rstats(r);
  assert_int_equal(s.held, 1000 * gib);
  assert_int_equal(s.live, 0);
  assert_int_equal(s.spare, 1000 * gib);
  ts_check(pool, HMB_CHECK_QUIESCENT);
  /* All of it serves one allocation again, from wherever it sits. */
  assert_int_equal(hmb_runner_reserve(r, (size_t)(1000 * gib), &c), HMB_OK);
  s = rstats(r);
  assert_int_equal(s.spare, 0);
  assert_int_equal(s.borrows, 0);
  assert_int_equal(s.held, 1000 * gib);
  hmb_buffer_close(c);
  /* Trims take from both places, exactly. */
  size_t ret = 0;
  assert_int_equal(hmb_runner_try_free(r, (size_t)(600 * gib), &ret), HMB_OK);
  assert_int_equal(ret, (size_t)(600 * gib));
  assert_int_equal(rstats(r).spare, 400 * gib);
  assert_int_equal(hmb_runner_set_need(r, (size_t)(100 * gib), &ret), HMB_OK);
  assert_int_equal(ret, (size_t)(300 * gib));
  assert_int_equal(rstats(r).held, 100 * gib);
  assert_int_equal(hmb_runner_finish(r, 0, &ret), HMB_OK);
  assert_int_equal(ret, (size_t)(100 * gib));
  assert_int_equal(pstats(pool).held, 0);
  ts_check(pool, HMB_CHECK_QUIESCENT);
  hmb_runner_destroy(r);
  ts_pool_done(pool);
}

/* ---- lifecycle ----------------------------------------------------------- */

static void test_runner_finish_returns_overclaim(void **state) {
  (void)state;
  hmb_pool_t *pool = ts_pool(10000, NULL, NULL);
  hmb_runner_t *r = ts_started_runner(pool, 1000);
  hmb_buffer_t *a = NULL;
  assert_int_equal(hmb_runner_alloc(r, 300, 0, &a), HMB_OK);
  size_t ret = 0;
  assert_int_equal(hmb_runner_finish(r, HMB_EFAILED, &ret), HMB_OK);
  assert_int_equal(ret, 700);
  assert_int_equal(hmb_runner_state(r), HMB_RUNNER_FAILED);
  assert_int_equal(rstats(r).held, 300);
  assert_int_equal(rstats(r).spare, 0);
  assert_int_equal(rstats(r).returned_at_finish, 700);
  assert_int_equal(pstats(pool).held, 300);
  assert_int_equal(pstats(pool).running, 0);
  hmb_buffer_t *no = NULL;
  assert_int_equal(hmb_runner_alloc(r, 1, 0, &no), HMB_ESTATE);
  assert_int_equal(hmb_runner_reserve(r, 1, &no), HMB_ESTATE);
  assert_int_equal(hmb_runner_grow(r, 5000, 0), HMB_ESTATE);
  assert_int_equal(hmb_runner_finish(r, 0, &ret), HMB_ESTATE);
  assert_int_equal(hmb_runner_cancel(r), HMB_ESTATE);
  hmb_buffer_close(a);
  assert_int_equal(pstats(pool).held, 0);
  hmb_runner_destroy(r);
  ts_pool_done(pool);
}

/* finish is refused while another thread of the task still waits in a
 * borrow (it would strand the waiter). */
static void test_runner_finish_refused_while_a_borrow_waits(void **state) {
  (void)state;
  hmb_pool_t *pool = ts_pool(1000, NULL, NULL);
  hmb_runner_t *other = ts_started_runner(pool, 500);
  hmb_runner_t *r = ts_started_runner(pool, 500);
  alloc_job_t job;
  memset(&job, 0, sizeof job);
  job.r = r;
  job.bytes = 800;
  pthread_t th;
  pthread_create(&th, NULL, alloc_thread, &job);
  assert_true(ts_wait_for(one_borrow_waiter, pool, 20000));
  size_t ret = 77;
  assert_int_equal(hmb_runner_finish(r, 0, &ret), HMB_ESTATE);
  assert_int_equal(ret, 0);
  assert_int_equal(hmb_runner_state(r), HMB_RUNNER_RUNNING);
  hmb_runner_finish(other, 0, NULL); /* the borrow is served */
  pthread_join(th, NULL);
  assert_int_equal(job.rc, HMB_OK);
  hmb_buffer_close(job.buf);
  assert_int_equal(hmb_runner_finish(r, 0, &ret), HMB_OK);
  assert_int_equal(ret, 800);
  hmb_runner_destroy(r);
  hmb_runner_destroy(other);
  ts_pool_done(pool);
}

static void test_runner_detach_buffers_outlive_runner(void **state) {
  (void)state;
  hmb_pool_t *pool = ts_pool(10000, NULL, NULL);
  hmb_runner_t *r = ts_started_runner(pool, 1000);
  hmb_buffer_t *a = NULL, *s = NULL;
  assert_int_equal(hmb_runner_alloc(r, 256, 0, &a), HMB_OK);
  memset(hmb_buffer_data(a), 7, 256);
  assert_int_equal(hmb_buffer_slice(a, 128, 128, &s), HMB_OK);
  hmb_buffer_close(a);
  hmb_runner_destroy(r); /* running -> finished and detached */
  hmb_pool_stats_t p = pstats(pool);
  assert_int_equal(p.held, 256);
  assert_int_equal(p.running, 0);
  assert_int_equal(p.runners, 1);
  assert_int_equal(p.live_buffers, 1);
  ts_check(pool, HMB_CHECK_QUIESCENT);
  assert_int_equal(((unsigned char *)hmb_buffer_data(s))[127], 7);
  hmb_buffer_close(s);
  assert_int_equal(pstats(pool).runners, 0);
  ts_pool_done(pool);
}

static void *close_later(void *arg) {
  ts_sleep_ms(30);
  hmb_buffer_close(arg);
  return NULL;
}

static void test_runner_wait_idle(void **state) {
  (void)state;
  hmb_pool_t *pool = ts_pool(10000, NULL, NULL);
  hmb_runner_t *r = ts_started_runner(pool, 100);
  assert_int_equal(hmb_runner_wait_idle(r, 0), HMB_OK); /* nothing live */
  hmb_buffer_t *a = NULL;
  assert_int_equal(hmb_runner_alloc(r, 10, 0, &a), HMB_OK);
  assert_int_equal(hmb_runner_wait_idle(r, MS), HMB_ETIMEDOUT);
  pthread_t th;
  pthread_create(&th, NULL, close_later, a);
  assert_int_equal(hmb_runner_wait_idle(r, HMB_WAIT_FOREVER), HMB_OK);
  assert_int_equal(rstats(r).live_buffers, 0);
  pthread_join(th, NULL);
  hmb_runner_destroy(r);
  ts_pool_done(pool);
}

static void test_runner_states(void **state) {
  (void)state;
  hmb_pool_t *pool = ts_pool(1000, NULL, NULL);
  hmb_runner_t *r = ts_runner(pool, 100, NULL);
  assert_int_equal(hmb_runner_state(r), HMB_RUNNER_CREATED);
  static const char *const names[] = {"CREATED",   "WAITING", "RUNNING",
                                      "COMPLETED", "FAILED",  "CANCELLED",
                                      "CLOSED"};
  for (int i = 0; i <= HMB_RUNNER_CLOSED; i++)
    assert_string_equal(hmb_runner_state_name(i), names[i]);
  assert_string_equal(hmb_runner_state_name(99), "UNKNOWN");
  assert_string_equal(hmb_runner_state_name(-1), "UNKNOWN");
  hmb_buffer_t *b = NULL;
  assert_int_equal(hmb_runner_alloc(r, 1, 0, &b), HMB_ESTATE); /* not started */
  assert_int_equal(hmb_runner_alloc(r, 0, 0, &b), HMB_ESTATE);
  assert_int_equal(hmb_runner_finish(r, 0, NULL), HMB_ESTATE);
  assert_int_equal(hmb_runner_grow(r, 10, 0), HMB_ESTATE);
  assert_int_equal(hmb_runner_start(r, 0), HMB_OK);
  assert_int_equal(hmb_runner_start(r, 0), HMB_ESTATE);
  assert_int_equal(hmb_runner_start_partial(r, 5, 0), HMB_ESTATE);
  assert_int_equal(hmb_runner_state(r), HMB_RUNNER_RUNNING);
  /* 0 bytes is a valid allocation since 0.2 (it was HMB_EINVAL). */
  assert_int_equal(hmb_runner_alloc(r, 0, 0, &b), HMB_OK);
  assert_int_equal(hmb_buffer_size(b), 0);
  assert_int_equal(rstats(r).live, 0);
  assert_int_equal(rstats(r).live_buffers, 1);
  hmb_buffer_close(b);
  assert_int_equal(hmb_runner_alloc(NULL, 1, 0, &b), HMB_EINVAL);
  assert_int_equal(hmb_runner_cancel(r), HMB_OK);
  assert_int_equal(hmb_runner_state(r), HMB_RUNNER_CANCELLED);
  assert_int_equal(hmb_runner_alloc(r, 1, 0, &b), HMB_ECANCELED);
  assert_int_equal(hmb_runner_grow(r, 500, 0), HMB_ECANCELED);
  assert_int_equal(pstats(pool).running, 0);
  assert_int_equal(rstats(r).held, 100); /* kept until finish/destroy */
  hmb_runner_destroy(r);
  ts_assert_pool_idle(pool);
  /* Cancel before start. */
  r = ts_runner(pool, 100, NULL);
  assert_int_equal(hmb_runner_cancel(r), HMB_OK);
  assert_int_equal(hmb_runner_start(r, 0), HMB_ECANCELED);
  assert_int_equal(hmb_runner_finish(r, 0, NULL), HMB_OK); /* CANCELLED */
  assert_int_equal(hmb_runner_state(r), HMB_RUNNER_CANCELLED);
  hmb_runner_destroy(r);
  hmb_runner_destroy(NULL);
  ts_pool_done(pool);
}

static void test_runner_reservation(void **state) {
  (void)state;
  hmb_pool_t *pool = ts_pool(1000, NULL, NULL);
  hmb_runner_t *r = ts_started_runner(pool, 100);
  hmb_buffer_t *res = NULL, *sl = NULL;
  assert_int_equal(hmb_runner_reserve(r, 500, &res), HMB_OK);
  assert_null(hmb_buffer_data(res));
  assert_int_equal(hmb_buffer_size(res), 500);
  assert_int_equal(hmb_buffer_slice(res, 100, 100, &sl), HMB_OK);
  assert_null(hmb_buffer_data(sl));
  hmb_runner_stats_t s = rstats(r);
  assert_int_equal(s.live, 500);
  assert_int_equal(s.borrowed, 400);
  assert_int_equal(s.live_buffers, 1);
  hmb_memory_stats_t m = ts_memory_stats(pool);
  assert_int_equal(m.pageable_live, 0); /* no memory behind it */
  hmb_runner_finish(r, 0, NULL);
  hmb_buffer_close(res);
  assert_int_equal(pstats(pool).held, 500);
  hmb_buffer_close(sl);
  assert_int_equal(pstats(pool).held, 0);
  assert_int_equal(hmb_runner_reserve(r, 0, &res), HMB_EINVAL);
  assert_int_equal(hmb_runner_reserve(r, 1, &res), HMB_ESTATE);
  hmb_runner_destroy(r);
  ts_pool_done(pool);
}

/* The runner's name is copied and truncated to 31 bytes. */
static void test_runner_name_is_copied_and_truncated(void **state) {
  (void)state;
  hmb_pool_t *pool = ts_pool(1000, NULL, NULL);
  char name[64];
  memset(name, 'n', sizeof name);
  name[40] = '\0';
  hmb_runner_t *r = ts_runner(pool, 10, name);
  memset(name, 'x', 40); /* the runner kept its own copy */
  assert_int_equal(hmb_runner_start(r, 0), HMB_OK);
  char d[512];
  hmb_pool_describe(pool, 1, d, sizeof d);
  char want[40];
  memset(want, 'n', 31);
  want[31] = '\0';
  char quoted[48];
  snprintf(quoted, sizeof quoted, "'%s'", want);
  assert_non_null(strstr(d, quoted));
  assert_null(strstr(d, "xxx"));
  hmb_runner_destroy(r);
  ts_pool_done(pool);
}

/* ---- borrows of one runner from several threads -------------------------- */

/*
 * Regression: a waiting borrow is served by budget freed to its own runner
 * (0.1 left it waiting for another runner to release budget). Runners A and
 * B hold half of the pool each; a thread of A waits for 10 more; another
 * thread of A closes a 50-byte buffer, and that close serves the waiter
 * from A's spare, within the limit.
 */
static void
test_runner_waiting_borrow_served_by_own_freed_budget(void **state) {
  (void)state;
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
  assert_true(ts_wait_for(one_borrow_waiter, pool, 20000));
  hmb_buffer_close(big); /* A has 50 spare: more than the 10 it waits for */
  /* Served inside the close: no borrower is left queued when it returns. */
  hmb_pool_stats_t after = pstats(pool);
  int served_by_own_spare = after.borrow_waiters == 0 && after.held == 100 &&
                            after.overcommitted == 0;
  /* Unblock in any case: B finishing returns its 50 to the pool. */
  assert_int_equal(hmb_runner_finish(b, 0, NULL), HMB_OK);
  pthread_join(th, NULL);
  assert_int_equal(job.rc, HMB_OK);
  assert_int_equal(rstats(a).borrows, 0); /* not a grant of the pool */
  hmb_buffer_close(job.buf);
  hmb_runner_destroy(a);
  hmb_runner_destroy(b);
  ts_pool_done(pool);
  assert_true(served_by_own_spare);
}

/* Counts the threads that went to sleep in the pool (a wait hook's BEGIN
 * comes once a request is queued and about to block). */
static atomic_int sleepers;
static void count_sleepers(void *user, const hmb_wait_event_t *ev) {
  (void)user;
  if (ev->phase == HMB_WAIT_BEGIN)
    atomic_fetch_add(&sleepers, 1);
}
static int two_sleepers(void *arg) {
  (void)arg;
  return atomic_load(&sleepers) >= 2;
}

/* Cancel wakes every waiting borrow of the runner, not only the last. */
static void test_runner_cancel_wakes_every_borrow(void **state) {
  (void)state;
  hmb_pool_config_t cfg;
  hmb_pool_config_init(&cfg);
  cfg.limit = 1000;
  cfg.wait_hook = count_sleepers;
  atomic_store(&sleepers, 0);
  hmb_pool_t *p = ts_pool_cfg(&cfg);
  hmb_runner_t *a = ts_started_runner(p, 500);
  hmb_runner_t *b = ts_started_runner(p, 500);
  alloc_job_t x, y;
  memset(&x, 0, sizeof x);
  memset(&y, 0, sizeof y);
  x.r = y.r = a;
  x.bytes = 600;
  y.bytes = 700;
  pthread_t tx, ty;
  pthread_create(&tx, NULL, alloc_thread, &x);
  pthread_create(&ty, NULL, alloc_thread, &y);
  /* Both queued and asleep; one waiting runner is seen. */
  assert_true(ts_wait_for(two_sleepers, NULL, 20000));
  assert_true(borrow_waiters_is(p, 1));
  assert_int_equal(rstats(a).spare, 0);
  assert_int_equal(hmb_runner_cancel(a), HMB_OK);
  pthread_join(tx, NULL);
  pthread_join(ty, NULL);
  assert_int_equal(x.rc, HMB_ECANCELED);
  assert_int_equal(y.rc, HMB_ECANCELED);
  assert_null(x.buf);
  assert_null(y.buf);
  hmb_pool_stats_t st = pstats(p);
  assert_int_equal(st.borrows, 0);
  assert_int_equal(st.borrow_cancels, 2);
  assert_int_equal(st.borrow_overcommits, 0);
  assert_int_equal(st.held, 1000); /* A kept its 500 (spare restored) */
  hmb_runner_stats_t rs = rstats(a);
  assert_int_equal(rs.held, 500);
  assert_int_equal(rs.spare, 500);
  assert_int_equal(rs.live, 0);
  /* finish is allowed again: no request of A is queued any more. */
  size_t ret = 0;
  assert_int_equal(hmb_runner_finish(a, 0, &ret), HMB_OK);
  assert_int_equal(ret, 500);
  hmb_runner_destroy(a);
  hmb_runner_destroy(b);
  ts_pool_done(p);
}

/* ---- rollback of a borrow beyond the limit ------------------------------- */

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
 * Regression: the rollback of a failed allocation that borrowed beyond the
 * limit undoes exactly what its grant added (0.1 subtracted the over-commit
 * of the moment of the rollback, which another return had changed).
 * C (finished) keeps 50 of a 100-byte pool through a live reservation; A
 * holds 50 and allocates 100 more alone, so it is the progress runner and
 * its borrow goes 100 beyond. While the physical allocation is in progress
 * C's reservation closes; then the allocation fails. Both counters drop by
 * the 100 of the grant, and the peaks it raised go back (I6).
 */
static void
test_runner_failed_borrow_undoes_its_exact_overcommit(void **state) {
  (void)state;
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
  hmb_pool_stats_t start = pstats(pool);
  assert_int_equal(start.peak_held, 100);
  alloc_job_t job;
  memset(&job, 0, sizeof job);
  job.r = a;
  job.bytes = 100; /* borrows 100 beyond the limit; call 2 blocks, fails */
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, alloc_thread, &job), 0);
  pthread_mutex_lock(&g.mu);
  while (!g.entered)
    pthread_cond_wait(&g.cond, &g.mu);
  pthread_mutex_unlock(&g.mu);
  hmb_pool_stats_t mid = pstats(pool);
  assert_int_equal(mid.borrow_overcommits, 1);
  assert_int_equal(mid.overcommitted_total, 100);
  assert_int_equal(mid.peak_overcommitted, 100);
  hmb_buffer_close(res); /* C's 50 go back to the pool */
  pthread_mutex_lock(&g.mu);
  g.open = 1;
  pthread_cond_broadcast(&g.cond);
  pthread_mutex_unlock(&g.mu);
  pthread_join(th, NULL);
  assert_int_equal(job.rc, HMB_ENOMEM);
  hmb_pool_stats_t after = pstats(pool);
  hmb_runner_stats_t ra = rstats(a);
  hmb_buffer_close(first);
  hmb_runner_destroy(a);
  hmb_runner_destroy(c);
  ts_pool_done(pool);
  pthread_cond_destroy(&g.cond);
  pthread_mutex_destroy(&g.mu);
  /* The only over-limit grant was undone: every counter agrees on it. */
  assert_int_equal(after.borrow_overcommits, 0);
  assert_int_equal(after.overcommitted_total, 0);
  assert_int_equal(after.borrows, start.borrows);
  assert_int_equal(after.held, 50);
  assert_int_equal(after.peak_held, start.peak_held);
  assert_int_equal(after.peak_overcommitted, 0);
  assert_int_equal(ra.beyond, 0);
  assert_int_equal(ra.held, 50);
  assert_int_equal(ra.borrowed, 0);
}

/* Start a gated failure: thread `job` allocates through `r` and the
 * backend holds its physical allocation at the gate. */
static void gate_wait_entered(gate_backend_t *g) {
  pthread_mutex_lock(&g->mu);
  while (!g->entered)
    pthread_cond_wait(&g->cond, &g->mu);
  pthread_mutex_unlock(&g->mu);
}

static void gate_open(gate_backend_t *g) {
  pthread_mutex_lock(&g->mu);
  g->open = 1;
  pthread_cond_broadcast(&g->cond);
  pthread_mutex_unlock(&g->mu);
}

static void gate_init(gate_backend_t *g, long fail_at) {
  memset(g, 0, sizeof *g);
  g->vtable.ctx = g;
  g->vtable.alloc = gate_alloc;
  g->vtable.free = gate_free;
  g->fail_at = fail_at;
  pthread_mutex_init(&g->mu, NULL);
  pthread_cond_init(&g->cond, NULL);
}

/*
 * The rollback of a failed borrow beyond the limit, when part of the
 * runner's `beyond` was repaid meanwhile (a try-free of spare freed by
 * another thread repays beyond first, hmb/pool.h I2): the runner's beyond
 * must stay within [0, held] (R-I3) and the self-check must hold.
 */
static void
test_runner_failed_borrow_after_a_try_free_keeps_beyond_in_range(void **state) {
  (void)state;
  gate_backend_t g;
  gate_init(&g, 2);
  hmb_pool_t *pool = ts_pool(100, &g.vtable, NULL);
  hmb_runner_t *r = ts_started_runner(pool, 100);
  hmb_buffer_t *small = NULL;
  assert_int_equal(hmb_runner_alloc(r, 30, 0, &small), HMB_OK); /* call 1 */
  alloc_job_t job;
  memset(&job, 0, sizeof job);
  job.r = r;
  job.bytes = 150; /* 70 spare + a borrow of 80, beyond the limit */
  pthread_t th;
  pthread_create(&th, NULL, alloc_thread, &job);
  gate_wait_entered(&g);
  assert_int_equal(rstats(r).beyond, 80);
  /* The close repays beyond at once: 30 of the 80 go back to the pool. */
  hmb_buffer_close(small);
  assert_int_equal(rstats(r).beyond, 50);
  size_t ret = 0;
  assert_int_equal(hmb_runner_try_free(r, SIZE_MAX, &ret), HMB_OK);
  assert_int_equal(ret, 0);
  gate_open(&g);
  pthread_join(th, NULL);
  assert_int_equal(job.rc, HMB_ENOMEM);
  hmb_runner_stats_t rs = rstats(r);
  char why[256] = "";
  int check = hmb_pool_check(pool, HMB_CHECK_QUIESCENT, why, sizeof why);
  fprintf(stderr,
          "after the rollback: held %lld beyond %lld spare %lld; "
          "check: %s\n",
          (long long)rs.held, (long long)rs.beyond, (long long)rs.spare,
          check ? why : "sound");
  hmb_runner_destroy(r);
  assert_int_equal(hmb_pool_destroy(pool), HMB_OK);
  pthread_cond_destroy(&g.cond);
  pthread_mutex_destroy(&g.mu);
  assert_true(rs.beyond >= 0 && rs.beyond <= rs.held);
  assert_int_equal(check, 0);
}

/*
 * The same rollback when the runner was finished by another thread while
 * the allocation was in flight (allowed: hmb_runner_finish()): the pool's
 * `beyond_stopped` must still be the sum over the stopped runners.
 */
static void test_runner_failed_borrow_of_a_finished_runner_keeps_beyond_stopped(
    void **state) {
  (void)state;
  gate_backend_t g;
  gate_init(&g, 1);
  hmb_pool_t *pool = ts_pool(100, &g.vtable, NULL);
  hmb_runner_t *r = ts_started_runner(pool, 100);
  alloc_job_t job;
  memset(&job, 0, sizeof job);
  job.r = r;
  job.bytes = 150; /* 100 spare + 50 beyond the limit */
  pthread_t th;
  pthread_create(&th, NULL, alloc_thread, &job);
  gate_wait_entered(&g);
  assert_int_equal(hmb_runner_finish(r, 0, NULL), HMB_OK);
  hmb_pool_stats_t mid = pstats(pool);
  assert_int_equal(mid.beyond_stopped, 50);
  gate_open(&g);
  pthread_join(th, NULL);
  assert_int_equal(job.rc, HMB_ENOMEM);
  hmb_pool_stats_t st = pstats(pool);
  hmb_runner_stats_t rs = rstats(r);
  char why[256] = "";
  int check = hmb_pool_check(pool, HMB_CHECK_QUIESCENT, why, sizeof why);
  fprintf(stderr,
          "after the rollback: pool held %lld beyond_stopped %lld; "
          "runner held %lld beyond %lld; check: %s\n",
          (long long)st.held, (long long)st.beyond_stopped, (long long)rs.held,
          (long long)rs.beyond, check ? why : "sound");
  hmb_runner_destroy(r);
  assert_int_equal(hmb_pool_destroy(pool), HMB_OK);
  pthread_cond_destroy(&g.cond);
  pthread_mutex_destroy(&g.mu);
  assert_int_equal(st.held, 0);
  assert_int_equal(st.beyond_stopped, rs.beyond);
  assert_int_equal(check, 0);
}

int main(void) {
  ts_watchdog_arm("test_runner", 120);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_runner_fast_path_uses_held_budget),
      cmocka_unit_test(test_runner_borrows_exactly_the_deficit),
      cmocka_unit_test(test_runner_rollback_on_physical_failure),
      cmocka_unit_test(test_runner_freed_budget_stays_while_running),
      cmocka_unit_test(test_runner_try_free_and_set_need_while_running),
      cmocka_unit_test(test_runner_declared_need_stays_in_force),
      cmocka_unit_test(test_runner_need_before_start_caps_the_start),
      cmocka_unit_test(test_runner_cancelled_keeps_budget_despite_need),
      cmocka_unit_test(test_runner_concurrent_trims_stop_at_the_need),
      cmocka_unit_test(test_runner_try_free_size_max_returns_spare_above_2_62),
      cmocka_unit_test(test_runner_spare_beyond_a_shard_is_kept_exactly),
      cmocka_unit_test(test_runner_finish_returns_overclaim),
      cmocka_unit_test(test_runner_finish_refused_while_a_borrow_waits),
      cmocka_unit_test(test_runner_detach_buffers_outlive_runner),
      cmocka_unit_test(test_runner_wait_idle),
      cmocka_unit_test(test_runner_states),
      cmocka_unit_test(test_runner_reservation),
      cmocka_unit_test(test_runner_name_is_copied_and_truncated),
      cmocka_unit_test(test_runner_waiting_borrow_served_by_own_freed_budget),
      cmocka_unit_test(test_runner_cancel_wakes_every_borrow),
      cmocka_unit_test(test_runner_failed_borrow_undoes_its_exact_overcommit),
      cmocka_unit_test(
          test_runner_failed_borrow_after_a_try_free_keeps_beyond_in_range),
      cmocka_unit_test(
          test_runner_failed_borrow_of_a_finished_runner_keeps_beyond_stopped),
  };
  int rc = cmocka_run_group_tests(tests, NULL, NULL);
  ts_watchdog_disarm();
  return rc;
}
