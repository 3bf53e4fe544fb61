/*
 * test_runner.c - the runner as an allocator: fast path, borrowing exactly
 * the deficit, rollback on physical failure, where freed budget goes,
 * try-free and set-need while running, finish, detach, states.
 */
#include <pthread.h>
#include <string.h>

#include <stdatomic.h>

#include "core/internal.h" /* white-box: the pool lock */
#include "testsupport.h"

static hmb_runner_stats_t rstats(hmb_runner_t *r) {
  hmb_runner_stats_t s;
  assert_int_equal(hmb_runner_stats(r, &s), HMB_OK);
  return s;
}

static hmb_pool_stats_t pstats(hmb_pool_t *p) {
  hmb_pool_stats_t s;
  assert_int_equal(hmb_pool_stats(p, &s), HMB_OK);
  return s;
}

static void test_fast_path_uses_held_budget(void **state) {
  (void)state;
  hmb_pool_t *pool = ts_pool(10000, NULL, NULL);
  hmb_runner_t *r = ts_started_runner(pool, 1000);
  const hmb_allocator_t *a = hmb_runner_allocator(r);
  assert_non_null(a);
  assert_string_equal(a->name, "runner");
  hmb_buffer_t *b[4];
  for (int i = 0; i < 4; i++)
    assert_int_equal(hmb_allocate(a, 250, 0, &b[i]), HMB_OK);
  hmb_runner_stats_t s = rstats(r);
  assert_int_equal(s.held, 1000);
  assert_int_equal(s.live, 1000);
  assert_int_equal(s.live_buffers, 4);
  assert_int_equal(s.borrows, 0);
  assert_int_equal(s.allocations, 4);
  hmb_pool_stats_t p = pstats(pool);
  assert_int_equal(p.held, 1000);
  assert_int_equal(p.borrows, 0);
  assert_int_equal(p.live_bytes, 1000);
  for (int i = 0; i < 4; i++)
    hmb_buffer_close(b[i]);
  hmb_runner_destroy(r);
  ts_assert_pool_idle(pool);
  assert_int_equal(hmb_pool_destroy(pool), HMB_OK);
}

static void test_borrows_exactly_the_deficit(void **state) {
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
  assert_int_equal(s.peak_held, 360);
  assert_int_equal(pstats(pool).held, 360);
  hmb_buffer_close(a);
  hmb_buffer_close(b);
  hmb_runner_destroy(r);
  ts_assert_pool_idle(pool);
  assert_int_equal(hmb_pool_destroy(pool), HMB_OK);
}

static void test_rollback_on_physical_failure(void **state) {
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
  assert_int_equal(after.live, before.live);
  assert_int_equal(after.live_buffers, before.live_buffers);
  assert_int_equal(after.borrowed, before.borrowed);
  assert_int_equal(after.borrows, before.borrows);
  assert_int_equal(after.allocations, before.allocations);
  assert_int_equal(after.peak_live, before.peak_live);
  assert_int_equal(pafter.held, pbefore.held);
  assert_int_equal(pafter.borrows, pbefore.borrows);
  assert_int_equal(pafter.live_bytes, pbefore.live_bytes);
  assert_int_equal(pafter.live_buffers, pbefore.live_buffers);
  /* The fast path rolls back too: the spare 50 is intact and usable. */
  ts_failing_backend_init(&fb, 0, 0);
  fb.fail_at = 3;
  fb.calls = 2;
  fb.live = 1;
  assert_int_equal(hmb_runner_alloc(r, 50, 0, &bad), HMB_ENOMEM);
  assert_int_equal(rstats(r).live, 50);
  assert_int_equal(hmb_runner_alloc(r, 50, 0, &bad), HMB_OK);
  assert_int_equal(rstats(r).held, 100);
  hmb_buffer_close(bad);
  hmb_buffer_close(ok);
  hmb_runner_destroy(r);
  ts_assert_pool_idle(pool);
  assert_int_equal(fb.live, 0);
  assert_int_equal(hmb_pool_destroy(pool), HMB_OK);
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

static void test_freed_budget_stays_while_running_returns_after(void **state) {
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
  ts_assert_pool_idle(pool);
  assert_int_equal(hmb_pool_destroy(pool), HMB_OK);
}

static void test_try_free_and_set_need_while_running(void **state) {
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
  /* A need above held returns nothing. */
  assert_int_equal(hmb_runner_set_need(r, 5000, &ret), HMB_OK);
  assert_int_equal(ret, 0);
  assert_int_equal(rstats(r).held, 100);
  /* try-free with nothing spare. */
  assert_int_equal(hmb_runner_try_free(r, SIZE_MAX, &ret), HMB_OK);
  assert_int_equal(ret, 0);
  /* try-free returns at most what is asked. */
  hmb_buffer_close(a); /* 100 spare now */
  assert_int_equal(hmb_runner_try_free(r, 30, &ret), HMB_OK);
  assert_int_equal(ret, 30);
  assert_int_equal(hmb_runner_try_free(r, SIZE_MAX, &ret), HMB_OK);
  assert_int_equal(ret, 70);
  s = rstats(r);
  assert_int_equal(s.held, 0);
  assert_int_equal(s.returned_early, 1000);
  /* Still running: allocating now borrows. */
  assert_int_equal(hmb_runner_alloc(r, 10, 0, &a), HMB_OK);
  assert_int_equal(rstats(r).borrows, 1);
  hmb_buffer_close(a);
  hmb_runner_destroy(r);
  ts_assert_pool_idle(pool);
  assert_int_equal(hmb_pool_destroy(pool), HMB_OK);
}

static void test_finish_returns_overclaim(void **state) {
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
  assert_int_equal(rstats(r).returned_at_finish, 700);
  assert_int_equal(pstats(pool).held, 300);
  assert_int_equal(pstats(pool).running, 0);
  hmb_buffer_t *no = NULL;
  assert_int_equal(hmb_runner_alloc(r, 1, 0, &no), HMB_ESTATE);
  assert_int_equal(hmb_runner_finish(r, 0, &ret), HMB_ESTATE);
  assert_int_equal(hmb_runner_cancel(r), HMB_ESTATE);
  hmb_buffer_close(a);
  assert_int_equal(pstats(pool).held, 0);
  hmb_runner_destroy(r);
  ts_assert_pool_idle(pool);
  assert_int_equal(hmb_pool_destroy(pool), HMB_OK);
}

static void test_detach_buffers_outlive_runner(void **state) {
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
  assert_int_equal(((unsigned char *)hmb_buffer_data(s))[127], 7);
  hmb_buffer_close(s);
  ts_assert_pool_idle(pool);
  assert_int_equal(pstats(pool).runners, 0);
  assert_int_equal(hmb_pool_destroy(pool), HMB_OK);
}

static void *close_later(void *arg) {
  ts_sleep_ms(30);
  hmb_buffer_close(arg);
  return NULL;
}

static void test_wait_idle(void **state) {
  (void)state;
  ts_watchdog_arm("wait idle", 30);
  hmb_pool_t *pool = ts_pool(10000, NULL, NULL);
  hmb_runner_t *r = ts_started_runner(pool, 100);
  assert_int_equal(hmb_runner_wait_idle(r, 0), HMB_OK); /* nothing live */
  hmb_buffer_t *a = NULL;
  assert_int_equal(hmb_runner_alloc(r, 10, 0, &a), HMB_OK);
  assert_int_equal(hmb_runner_wait_idle(r, 1000000), HMB_ETIMEDOUT);
  pthread_t th;
  pthread_create(&th, NULL, close_later, a);
  assert_int_equal(hmb_runner_wait_idle(r, HMB_WAIT_FOREVER), HMB_OK);
  assert_int_equal(rstats(r).live_buffers, 0);
  pthread_join(th, NULL);
  hmb_runner_destroy(r);
  ts_assert_pool_idle(pool);
  assert_int_equal(hmb_pool_destroy(pool), HMB_OK);
  ts_watchdog_disarm();
}

static void test_states(void **state) {
  (void)state;
  hmb_pool_t *pool = ts_pool(1000, NULL, NULL);
  hmb_runner_config_t cfg = {0};
  cfg.estimate = 100;
  hmb_runner_t *r = NULL;
  assert_int_equal(hmb_runner_create(pool, &cfg, &r), HMB_OK);
  assert_int_equal(hmb_runner_state(r), HMB_RUNNER_CREATED);
  assert_string_equal(hmb_runner_state_name(HMB_RUNNER_CREATED), "CREATED");
  assert_string_equal(hmb_runner_state_name(99), "UNKNOWN");
  hmb_buffer_t *b = NULL;
  assert_int_equal(hmb_runner_alloc(r, 1, 0, &b), HMB_ESTATE); /* not started */
  assert_int_equal(hmb_runner_finish(r, 0, NULL), HMB_ESTATE);
  assert_int_equal(hmb_runner_start(r, 0), HMB_OK);
  assert_int_equal(hmb_runner_start(r, 0), HMB_ESTATE);
  assert_int_equal(hmb_runner_state(r), HMB_RUNNER_RUNNING);
  assert_int_equal(hmb_runner_alloc(r, 0, 0, &b), HMB_EINVAL);
  assert_int_equal(hmb_runner_alloc(NULL, 1, 0, &b), HMB_EINVAL);
  assert_int_equal(hmb_runner_cancel(r), HMB_OK);
  assert_int_equal(hmb_runner_state(r), HMB_RUNNER_CANCELLED);
  assert_int_equal(hmb_runner_alloc(r, 1, 0, &b), HMB_ECANCELED);
  assert_int_equal(pstats(pool).running, 0);
  assert_int_equal(rstats(r).held, 100); /* kept until finish/destroy */
  hmb_runner_destroy(r);
  ts_assert_pool_idle(pool);
  /* Cancel before start. */
  assert_int_equal(hmb_runner_create(pool, &cfg, &r), HMB_OK);
  assert_int_equal(hmb_runner_cancel(r), HMB_OK);
  assert_int_equal(hmb_runner_start(r, 0), HMB_ECANCELED);
  hmb_runner_destroy(r);
  hmb_runner_destroy(NULL);
  assert_int_equal(hmb_pool_destroy(pool), HMB_OK);
}

static void test_reservation(void **state) {
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
  hmb_memory_stats_t m;
  hmb_pool_memory_stats(pool, &m);
  assert_int_equal(m.pageable_live, 0); /* no memory behind it */
  hmb_runner_finish(r, 0, NULL);
  hmb_buffer_close(res);
  assert_int_equal(pstats(pool).held, 500);
  hmb_buffer_close(sl);
  assert_int_equal(pstats(pool).held, 0);
  assert_int_equal(hmb_runner_reserve(r, 0, &res), HMB_EINVAL);
  assert_int_equal(hmb_runner_reserve(r, 1, &res), HMB_ESTATE);
  hmb_runner_destroy(r);
  ts_assert_pool_idle(pool);
  assert_int_equal(hmb_pool_destroy(pool), HMB_OK);
}

typedef struct hot {
  hmb_runner_t *r;
  atomic_int done;
  int rc;
} hot_t;

static void *hot_path_worker(void *arg) {
  hot_t *h = arg;
  for (int i = 0; i < 1000 && h->rc == 0; i++) {
    hmb_buffer_t *b = NULL, *s = NULL;
    h->rc = hmb_runner_alloc(h->r, 1024, 0, &b);
    if (h->rc == 0)
      h->rc = hmb_buffer_slice(b, 0, 512, &s);
    if (h->rc == 0) {
      hmb_buffer_close(b);
      hmb_buffer_close(s);
    }
  }
  atomic_store(&h->done, 1);
  return NULL;
}

static int hot_done(void *arg) {
  return atomic_load(&((hot_t *)arg)->done);
}

/* Allocating and freeing within held budget never takes the pool lock. */
static void test_hot_path_takes_no_pool_lock(void **state) {
  (void)state;
  ts_watchdog_arm("hot path lock-free", 60);
  hmb_pool_t *pool = ts_pool(1 << 20, NULL, NULL);
  hot_t h = {ts_started_runner(pool, 1 << 20), 0, 0};
  pthread_mutex_lock(&pool->lock); /* held for the whole run below */
  pthread_t th;
  pthread_create(&th, NULL, hot_path_worker, &h);
  int finished = ts_wait_for(hot_done, &h, 20000);
  pthread_mutex_unlock(&pool->lock);
  pthread_join(th, NULL);
  assert_true(finished);
  assert_int_equal(h.rc, HMB_OK);
  hmb_runner_stats_t s = rstats(h.r);
  assert_int_equal(s.allocations, 1000);
  assert_int_equal(s.live, 0);
  assert_int_equal(s.held, 1 << 20);
  assert_int_equal(s.borrows, 0);
  hmb_runner_destroy(h.r);
  ts_assert_pool_idle(pool);
  assert_int_equal(hmb_pool_destroy(pool), HMB_OK);
  ts_watchdog_disarm();
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_fast_path_uses_held_budget),
      cmocka_unit_test(test_borrows_exactly_the_deficit),
      cmocka_unit_test(test_rollback_on_physical_failure),
      cmocka_unit_test(test_freed_budget_stays_while_running_returns_after),
      cmocka_unit_test(test_try_free_and_set_need_while_running),
      cmocka_unit_test(test_finish_returns_overclaim),
      cmocka_unit_test(test_detach_buffers_outlive_runner),
      cmocka_unit_test(test_wait_idle),
      cmocka_unit_test(test_states),
      cmocka_unit_test(test_reservation),
      cmocka_unit_test(test_hot_path_takes_no_pool_lock),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
