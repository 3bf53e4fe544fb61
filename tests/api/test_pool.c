/*
 * test_pool.c - the pool object itself (hmb/pool.h): configuration and its
 * validation, creation and destruction (refused while runners remain),
 * stats of a fresh and a busy pool, the limit at run time, pressure
 * handler registration, describe, trim and the self-check's arguments.
 * The admission rules are in test_admission.c, physical memory in
 * test_memory.c, struct sizes in test_stats.c.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "testsupport.h"

static uint64_t rid(hmb_runner_t *r) {
  return ts_runner_stats(r).id;
}

/* ---- configuration ------------------------------------------------------- */

static void test_pool_config_init_means_defaults(void **state) {
  (void)state;
  hmb_pool_config_t cfg;
  memset(&cfg, 0xab, sizeof cfg);
  hmb_pool_config_init(&cfg);
  const unsigned char *b = (const unsigned char *)&cfg;
  for (size_t i = 0; i < sizeof cfg; i++)
    assert_int_equal(b[i], 0);
  hmb_pool_config_init(NULL); /* a no-op */
  cfg.limit = 4096;
  hmb_pool_t *pool = ts_pool_cfg(&cfg);
  assert_int_equal(hmb_pool_limit(pool), 4096);
  hmb_pool_stats_t st = ts_pool_stats(pool);
  assert_int_equal(st.limit, 4096);
  assert_int_equal(st.available, 4096);
  assert_int_equal(st.held, 0);
  assert_int_equal(st.runners, 0);
  assert_int_equal(st.progress_runner, 0);
  assert_int_equal(st.overcommit_cap, -1); /* no cap by default */
  assert_int_equal(st.limit_changes, 0);
  /* The default alignment of hmb_allocate() is 64. */
  hmb_runner_t *r = ts_started_runner(pool, 4096);
  hmb_buffer_t *x[8];
  for (int i = 0; i < 8; i++) {
    assert_int_equal(hmb_runner_alloc(r, (size_t)(1 + 37 * i), 0, &x[i]),
                     HMB_OK);
    assert_int_equal((uintptr_t)hmb_buffer_data(x[i]) % 64, 0);
  }
  for (int i = 0; i < 8; i++)
    hmb_buffer_close(x[i]);
  hmb_runner_destroy(r);
  ts_pool_done(pool);
}

static void test_pool_alignment_applies_to_every_buffer(void **state) {
  (void)state;
  hmb_pool_config_t cfg;
  hmb_pool_config_init(&cfg);
  cfg.limit = 1 << 22;
  cfg.alignment = 4096;
  hmb_pool_t *pool = ts_pool_cfg(&cfg);
  hmb_runner_t *r = ts_started_runner(pool, 1 << 22);
  const size_t sizes[] = {1, 100, 4096, 5000, 300000, 1 << 20};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    hmb_buffer_t *b = NULL;
    assert_int_equal(hmb_runner_alloc(r, sizes[i], 0, &b), HMB_OK);
    assert_int_equal((uintptr_t)hmb_buffer_data(b) % 4096, 0);
    memset(hmb_buffer_data(b), 1, sizes[i]);
    hmb_buffer_close(b);
  }
  hmb_runner_destroy(r);
  ts_pool_done(pool);
  /* Below 64 means 64. */
  cfg.alignment = 16;
  pool = ts_pool_cfg(&cfg);
  r = ts_started_runner(pool, 4096);
  hmb_buffer_t *b = NULL;
  assert_int_equal(hmb_runner_alloc(r, 24, 0, &b), HMB_OK);
  assert_int_equal((uintptr_t)hmb_buffer_data(b) % 64, 0);
  hmb_buffer_close(b);
  hmb_runner_destroy(r);
  ts_pool_done(pool);
}

static void test_pool_config_validation(void **state) {
  (void)state;
  hmb_pool_config_t cfg;
  hmb_pool_t *pool = (hmb_pool_t *)1;
  hmb_pool_config_init(&cfg);
  assert_int_equal(hmb_pool_create(&cfg, &pool), HMB_EINVAL); /* limit 0 */
  assert_null(pool);
  cfg.limit = 100;
  cfg.alignment = 96; /* not a power of two */
  assert_int_equal(hmb_pool_create(&cfg, &pool), HMB_EINVAL);
  cfg.alignment = HMB_MAX_ALIGN * 2;
  assert_int_equal(hmb_pool_create(&cfg, &pool), HMB_EINVAL);
  cfg.alignment = 0;
  hmb_backend_t half = {0};
  cfg.backend = &half;
  assert_int_equal(hmb_pool_create(&cfg, &pool), HMB_EINVAL);
  cfg.backend = NULL;
  cfg.limit = HMB_MAX_ALLOC + 1;
  assert_int_equal(hmb_pool_create(&cfg, &pool), HMB_EINVAL);
  cfg.limit = 100;
  cfg.max_request = HMB_MAX_ALLOC + 1;
  assert_int_equal(hmb_pool_create(&cfg, &pool), HMB_EINVAL);
  cfg.max_request = 0;
  cfg.log_level = -1;
  assert_int_equal(hmb_pool_create(&cfg, &pool), HMB_EINVAL);
  cfg.log_level = 0;
  cfg.pinned_method = 2;
  assert_int_equal(hmb_pool_create(&cfg, &pool), HMB_EINVAL);
  cfg.pinned_method = 0;
  cfg.flags = 1u << 7; /* unknown flag */
  assert_int_equal(hmb_pool_create(&cfg, &pool), HMB_EINVAL);
  cfg.flags = 0;
  char region[1024];
  cfg.pinned_base = region; /* a base without a size */
  assert_int_equal(hmb_pool_create(&cfg, &pool), HMB_EINVAL);
  assert_null(pool);
  cfg.pinned_base = NULL;
  assert_int_equal(hmb_pool_create(NULL, &pool), HMB_EINVAL);
  assert_int_equal(hmb_pool_create(&cfg, NULL), HMB_EINVAL);

  /* The largest valid limit. */
  cfg.limit = HMB_MAX_ALLOC;
  assert_int_equal(hmb_pool_create(&cfg, &pool), HMB_OK);
  assert_int_equal(hmb_pool_limit(pool), HMB_MAX_ALLOC);
  ts_pool_done(pool);

  /* max_request bounds every single request. */
  cfg.limit = 100;
  cfg.max_request = 50;
  assert_int_equal(hmb_pool_create(&cfg, &pool), HMB_OK);
  assert_int_equal(hmb_pool_limit(pool), 100);
  hmb_runner_config_t rc;
  hmb_runner_config_init(&rc);
  rc.estimate = 51;
  hmb_runner_t *r = (hmb_runner_t *)1;
  assert_int_equal(hmb_runner_create(pool, &rc, &r), HMB_ETOOBIG);
  assert_null(r);
  rc.estimate = 10;
  assert_int_equal(hmb_runner_create(pool, &rc, &r), HMB_OK);
  assert_int_equal(hmb_runner_start_partial(r, 51, 0), HMB_ETOOBIG);
  assert_int_equal(hmb_runner_state(r), HMB_RUNNER_CREATED);
  assert_int_equal(hmb_runner_start(r, 0), HMB_OK);
  hmb_buffer_t *b = NULL;
  assert_int_equal(hmb_runner_alloc(r, 51, 0, &b), HMB_ETOOBIG);
  assert_int_equal(hmb_runner_grow(r, 51, 0), HMB_ETOOBIG);
  assert_int_equal(hmb_runner_reserve(r, 51, &b), HMB_ETOOBIG);
  hmb_runner_destroy(r);
  ts_pool_done(pool);
}

/* The function of the same name as the macro assumes this release's size. */
static void test_pool_create_function_form(void **state) {
  (void)state;
  hmb_pool_config_t cfg;
  hmb_pool_config_init(&cfg);
  cfg.limit = 1000;
  hmb_pool_t *pool = NULL;
  assert_int_equal((hmb_pool_create)(&cfg, &pool), HMB_OK);
  hmb_pool_stats_t st;
  assert_int_equal((hmb_pool_stats)(pool, &st), HMB_OK);
  assert_int_equal(st.limit, 1000);
  hmb_memory_stats_t ms;
  assert_int_equal((hmb_pool_memory_stats)(pool, &ms), HMB_OK);
  assert_int_equal(ms.pageable_live, 0);
  ts_pool_done(pool);
}

/* ---- destruction --------------------------------------------------------- */

static void test_pool_destroy_with_runners_is_refused(void **state) {
  (void)state;
  ts_log_t log = {0};
  hmb_pool_t *pool = ts_pool(1000, NULL, &log);
  hmb_runner_t *r = ts_runner(pool, 100, NULL);
  hmb_runner_t *named = ts_runner(pool, 0, "split-7");
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
  hmb_pool_stats_t st = ts_pool_stats(pool);
  assert_int_equal(st.runners, 2);
  assert_int_equal(st.live_buffers, 1);
  ts_check(pool, HMB_CHECK_QUIESCENT);
  hmb_buffer_t *more = NULL;
  assert_int_equal(hmb_runner_alloc(r, 10, 0, &more), HMB_OK);
  hmb_buffer_close(more);
  hmb_runner_destroy(r);
  assert_int_equal(hmb_pool_destroy(pool), HMB_EBUSY);
  hmb_buffer_close(b);
  ts_pool_done(pool);
  assert_int_equal(hmb_pool_destroy(NULL), HMB_OK);
}

/* ---- stats --------------------------------------------------------------- */

static void test_pool_stats_follow_the_runners(void **state) {
  (void)state;
  hmb_pool_t *pool = ts_pool(10000, NULL, NULL);
  hmb_runner_t *a = ts_runner(pool, 3000, "a");
  hmb_runner_t *b = ts_runner(pool, 2000, "b");
  hmb_runner_t *c = ts_runner(pool, 500, "c"); /* never started */
  assert_int_equal(hmb_runner_start(a, 0), HMB_OK);
  assert_int_equal(hmb_runner_start(b, 0), HMB_OK);
  hmb_buffer_t *x = NULL, *y = NULL, *z = NULL;
  assert_int_equal(hmb_runner_alloc(a, 1000, 0, &x), HMB_OK);
  assert_int_equal(hmb_runner_alloc(a, 500, 0, &y), HMB_OK);
  assert_int_equal(hmb_runner_alloc(b, 2500, 0, &z), HMB_OK); /* borrows 500 */
  hmb_pool_stats_t st = ts_pool_stats(pool);
  assert_int_equal(st.held, 5500);
  assert_int_equal(st.available, 4500);
  assert_int_equal(st.peak_held, 5500);
  assert_int_equal(st.overcommitted, 0);
  assert_int_equal(st.live_bytes, 4000);
  assert_int_equal(st.peak_live_bytes, 4000);
  assert_int_equal(st.live_buffers, 3);
  assert_int_equal(st.runners, 3);
  assert_int_equal(st.running, 2);
  assert_int_equal(st.acquires, 2);
  assert_int_equal(st.borrows, 1);
  assert_int_equal(st.borrow_waits, 0);
  hmb_buffer_close(y);
  st = ts_pool_stats(pool);
  assert_int_equal(st.live_bytes, 3500);
  assert_int_equal(st.peak_live_bytes, 4000);
  assert_int_equal(st.held, 5500); /* kept as a's spare while running */
  size_t ret = 0;
  assert_int_equal(hmb_runner_finish(a, 0, &ret), HMB_OK);
  assert_int_equal(ret, 2000);
  st = ts_pool_stats(pool);
  assert_int_equal(st.held, 3500);
  assert_int_equal(st.running, 1);
  hmb_buffer_close(x);
  hmb_buffer_close(z);
  hmb_runner_destroy(a);
  hmb_runner_destroy(b);
  st = ts_pool_stats(pool);
  assert_int_equal(st.runners, 1);
  assert_int_equal(st.peak_held, 5500);
  hmb_runner_destroy(c);
  ts_pool_done(pool);
}

/* ---- the limit at run time ----------------------------------------------- */

static void test_pool_set_limit_arguments_and_counters(void **state) {
  (void)state;
  hmb_pool_t *pool = ts_pool(1000, NULL, NULL);
  assert_int_equal(hmb_pool_set_limit(NULL, 10), HMB_EINVAL);
  assert_int_equal(hmb_pool_set_limit(pool, 0), HMB_EINVAL);
  assert_int_equal(hmb_pool_set_limit(pool, HMB_MAX_ALLOC + 1), HMB_EINVAL);
  assert_int_equal(ts_pool_stats(pool).limit_changes, 0);
  assert_int_equal(hmb_pool_limit(pool), 1000);
  hmb_runner_t *r = ts_started_runner(pool, 800);
  assert_int_equal(hmb_pool_set_limit(pool, 500), HMB_OK);
  hmb_pool_stats_t st = ts_pool_stats(pool);
  assert_int_equal(st.limit, 500);
  assert_int_equal(st.held, 800); /* nothing is taken away */
  assert_int_equal(st.available, -300);
  assert_int_equal(st.overcommitted, 300);
  assert_int_equal(st.limit_changes, 1);
  ts_check(pool, 0);
  assert_int_equal(hmb_pool_set_limit(pool, HMB_MAX_ALLOC), HMB_OK);
  st = ts_pool_stats(pool);
  assert_int_equal(st.limit, (int64_t)HMB_MAX_ALLOC);
  assert_int_equal(st.overcommitted, 0);
  assert_int_equal(st.limit_changes, 2);
  assert_int_equal(hmb_pool_limit(pool), HMB_MAX_ALLOC);
  assert_int_equal(hmb_pool_limit(NULL), 0);
  hmb_runner_destroy(r);
  ts_pool_done(pool);
}

/* ---- pressure handler registration --------------------------------------- */

static void nop_pressure(void *user, hmb_pool_t *pool,
                         const hmb_pressure_t *ev) {
  (void)user;
  (void)pool;
  (void)ev;
}

static void test_pool_pressure_handler_registration(void **state) {
  (void)state;
  hmb_pool_t *pool = ts_pool(1000, NULL, NULL);
  int id = 77;
  assert_int_equal(hmb_pool_add_pressure_handler(NULL, nop_pressure, NULL, &id),
                   HMB_EINVAL);
  assert_int_equal(hmb_pool_add_pressure_handler(pool, NULL, NULL, &id),
                   HMB_EINVAL);
  int ids[64];
  for (int i = 0; i < 64; i++) {
    assert_int_equal(
        hmb_pool_add_pressure_handler(pool, nop_pressure, NULL, &ids[i]),
        HMB_OK);
    assert_true(ids[i] > 0);
    for (int j = 0; j < i; j++)
      assert_int_not_equal(ids[i], ids[j]);
  }
  assert_int_equal(hmb_pool_add_pressure_handler(pool, nop_pressure, NULL, &id),
                   HMB_ENOMEM); /* at most 64 */
  assert_int_equal(hmb_pool_remove_pressure_handler(pool, ids[10]), HMB_OK);
  assert_int_equal(hmb_pool_remove_pressure_handler(pool, ids[10]), HMB_EINVAL);
  assert_int_equal(hmb_pool_remove_pressure_handler(pool, -5), HMB_EINVAL);
  assert_int_equal(hmb_pool_remove_pressure_handler(NULL, ids[0]), HMB_EINVAL);
  /* The freed slot can be used again; the id may be NULL. */
  assert_int_equal(
      hmb_pool_add_pressure_handler(pool, nop_pressure, NULL, NULL), HMB_OK);
  for (int i = 0; i < 64; i++)
    if (i != 10)
      assert_int_equal(hmb_pool_remove_pressure_handler(pool, ids[i]), HMB_OK);
  ts_pool_done(pool); /* the one left is removed with the pool */
}

/* ---- describe ------------------------------------------------------------ */

static void test_pool_describe_names_top_holders(void **state) {
  (void)state;
  hmb_pool_t *pool = ts_pool(1000, NULL, NULL);
  hmb_runner_t *rs[3];
  const char *names[] = {"small", "large", "medium"};
  size_t est[] = {100, 500, 300};
  for (int i = 0; i < 3; i++) {
    rs[i] = ts_runner(pool, est[i], names[i]);
    assert_int_equal(hmb_runner_start(rs[i], 0), HMB_OK);
  }
  hmb_buffer_t *b = NULL;
  assert_int_equal(hmb_runner_alloc(rs[1], 200, 0, &b), HMB_OK);
  char text[1024];
  int n = hmb_pool_describe(pool, 2, text, sizeof text);
  assert_true(n > 0 && (size_t)n < sizeof text);
  assert_int_equal((int)strlen(text), n);
  char want[512];
  snprintf(want, sizeof want,
           "pool: held 900 of limit 1000 (available 100, over-committed 0), "
           "3 runners, 3 running, 0 waiting to start, 0 waiting to borrow, "
           "progress runner #0; #%llu 'large' RUNNING held 500 (beyond 0) live "
           "200 peak live 200; #%llu 'medium' RUNNING held 300 (beyond 0) live "
           "0 peak live 0",
           (unsigned long long)rid(rs[1]), (unsigned long long)rid(rs[2]));
  assert_string_equal(text, want);
  assert_null(strstr(text, "'small'")); /* only the top 2 */
  char tiny[8];
  int need = hmb_pool_describe(pool, 2, tiny, sizeof tiny);
  assert_int_equal(need, n);
  assert_int_equal(strlen(tiny), 7);
  assert_int_equal(hmb_pool_describe(pool, 2, NULL, 0), n);
  assert_int_equal(hmb_pool_describe(NULL, 1, text, sizeof text), HMB_EINVAL);
  assert_int_equal(hmb_pool_describe(pool, -1, text, sizeof text), HMB_EINVAL);
  /* top 0 means 5; more than 32 lists 32. */
  n = hmb_pool_describe(pool, 0, text, sizeof text);
  assert_non_null(strstr(text, "'small' RUNNING held 100"));
  assert_int_equal(hmb_pool_describe(pool, 1000, text, sizeof text), n);
  hmb_buffer_close(b);
  for (int i = 0; i < 3; i++)
    hmb_runner_destroy(rs[i]);
  ts_pool_done(pool);
}

/* ---- trim ---------------------------------------------------------------- */

static void test_pool_trim_arguments(void **state) {
  (void)state;
  assert_int_equal(hmb_pool_trim(NULL, 0), HMB_EINVAL);
  hmb_pool_t *pool = ts_pool(1 << 20, NULL, NULL);
  assert_int_equal(hmb_pool_trim(pool, 0), HMB_OK);
  assert_int_equal(hmb_pool_trim(pool, SIZE_MAX), HMB_OK);
  assert_int_equal(ts_memory_stats(pool).cached_bytes, 0);
  ts_pool_done(pool);
  /* No cache at all (a custom backend): trim is a no-op that succeeds. */
  ts_failing_backend_t fb;
  ts_failing_backend_init(&fb, 0, 0);
  pool = ts_pool(1 << 20, &fb.vtable, NULL);
  assert_int_equal(hmb_pool_trim(pool, 0), HMB_OK);
  ts_pool_done(pool);
}

/* ---- the self-check's own contract --------------------------------------- */

static void test_pool_check_arguments(void **state) {
  (void)state;
  hmb_pool_t *pool = ts_pool(1000, NULL, NULL);
  char why[128];
  memset(why, 'x', sizeof why);
  assert_int_equal(hmb_pool_check(pool, 0, why, sizeof why), 0);
  assert_string_equal(why, ""); /* "" when sound */
  assert_int_equal(hmb_pool_check(pool, HMB_CHECK_QUIESCENT, NULL, 0), 0);
  assert_int_equal(hmb_pool_check(NULL, 0, why, sizeof why), HMB_EINVAL);
  assert_int_equal(hmb_pool_check(pool, 1u << 5, why, sizeof why), HMB_EINVAL);
  assert_int_equal(hmb_pool_check(pool, 0, NULL, 8), HMB_EINVAL);
  ts_pool_done(pool);
}

int main(void) {
  ts_watchdog_arm("test_pool", 120);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_pool_config_init_means_defaults),
      cmocka_unit_test(test_pool_alignment_applies_to_every_buffer),
      cmocka_unit_test(test_pool_config_validation),
      cmocka_unit_test(test_pool_create_function_form),
      cmocka_unit_test(test_pool_destroy_with_runners_is_refused),
      cmocka_unit_test(test_pool_stats_follow_the_runners),
      cmocka_unit_test(test_pool_set_limit_arguments_and_counters),
      cmocka_unit_test(test_pool_pressure_handler_registration),
      cmocka_unit_test(test_pool_describe_names_top_holders),
      cmocka_unit_test(test_pool_trim_arguments),
      cmocka_unit_test(test_pool_check_arguments),
  };
  int rc = cmocka_run_group_tests(tests, NULL, NULL);
  ts_watchdog_disarm();
  return rc;
}
