/*
 * test_diagnostics.c - the log lines and reports that say who holds memory.
 *
 * Each event the library reports is provoked deterministically and its
 * message asserted word for word where it carries numbers: over-commit of an
 * idle start, a deadlock-prevention borrow, a long wait, start and borrow
 * timeouts (with the top holders), the leak report of a busy pool destroy
 * (one line per runner, so it is never cut), a runner detached with live
 * buffers, and hmb_pool_describe() itself (ordering, live and peak bytes,
 * truncation). It also checks the sink contract: one line, no newline,
 * level filtering, and that the sink never runs under the pool lock (it
 * calls back into the pool; a violation would self-deadlock and trip the
 * watchdog).
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "testsupport.h"

typedef struct sink {
  ts_log_t log;
  hmb_pool_t *pool; /* called back from inside the sink when set */
  int max_level_seen;
  int bad_lines;
} sink_t;

/* Records, checks the line shape, and re-enters the pool. */
static void sink_fn(void *user, int level, const char *msg) {
  sink_t *s = user;
  if (!msg[0] || strchr(msg, '\n') || strlen(msg) >= 512)
    s->bad_lines++;
  if (level > s->max_level_seen)
    s->max_level_seen = level;
  if (s->pool) {
    hmb_pool_stats_t st;
    hmb_pool_stats(s->pool, &st); /* would deadlock under the pool lock */
    char d[256];
    hmb_pool_describe(s->pool, 2, d, sizeof d);
  }
  ts_log_capture(&s->log, level, msg);
}

static hmb_pool_t *make_pool(sink_t *s, size_t limit, int level,
                             int64_t long_wait_ns) {
  memset(s, 0, sizeof *s);
  s->max_level_seen = -1;
  hmb_pool_config_t cfg;
  hmb_pool_config_init(&cfg);
  cfg.limit = limit;
  cfg.log_fn = sink_fn;
  cfg.log_user = s;
  cfg.log_level = level;
  cfg.long_wait_ns = long_wait_ns;
  hmb_pool_t *p = NULL;
  assert_int_equal(hmb_pool_create(&cfg, &p), HMB_OK);
  s->pool = p;
  return p;
}

static hmb_runner_t *runner(hmb_pool_t *p, size_t est, const char *name,
                            int64_t borrow_timeout_ns) {
  hmb_runner_config_t c = {0};
  c.estimate = est;
  c.name = name;
  c.borrow_timeout_ns = borrow_timeout_ns;
  hmb_runner_t *r = NULL;
  assert_int_equal(hmb_runner_create(p, &c, &r), HMB_OK);
  return r;
}

static uint64_t rid(hmb_runner_t *r) {
  hmb_runner_stats_t st;
  assert_int_equal(hmb_runner_stats(r, &st), HMB_OK);
  return st.id;
}

static void assert_logged(const sink_t *s, const char *text) {
  if (!ts_log_contains(&s->log, text)) {
    fprintf(stderr, "expected in the log: %s\n--- log ---\n%s---\n", text,
            s->log.text);
    fail();
  }
}

static void finish_pool(sink_t *s, hmb_pool_t *p) {
  ts_assert_pool_idle(p);
  assert_int_equal(hmb_pool_destroy(p), HMB_OK);
  assert_int_equal(s->bad_lines, 0);
}

/* ---- over-commit and deadlock prevention --------------------------- */

static void test_overcommit_idle_start(void **state) {
  (void)state;
  ts_watchdog_arm("overcommit idle start", 30);
  sink_t s;
  hmb_pool_t *p = make_pool(&s, 1000, HMB_LOG_WARN, -1);
  hmb_runner_t *big = runner(p, 1500, "footer-heavy", 0);
  assert_int_equal(hmb_runner_start(big, 0), HMB_OK);
  char want[256];
  snprintf(want, sizeof want,
           "over-commit: runner #%llu 'footer-heavy' started with 1500 "
           "bytes, 500 beyond the limit, because no runner was running "
           "(held 1500 of limit 1000)",
           (unsigned long long)rid(big));
  assert_logged(&s, want);
  assert_int_equal(s.log.count, 1);
  assert_int_equal(s.log.last_level, HMB_LOG_WARN);
  hmb_runner_destroy(big);
  finish_pool(&s, p);
  ts_watchdog_disarm();
}

static void test_deadlock_prevention_borrow(void **state) {
  (void)state;
  ts_watchdog_arm("deadlock prevention", 30);
  sink_t s;
  hmb_pool_t *p = make_pool(&s, 1000, HMB_LOG_WARN, -1);
  hmb_runner_t *a = runner(p, 800, "join-left", 0);
  assert_int_equal(hmb_runner_start(a, 0), HMB_OK);
  hmb_buffer_t *b = NULL;
  /* a is the only running runner: borrowing 700 past its 800 crosses the
   * limit by 500 and is granted at once by the all-borrowing rule. */
  assert_int_equal(hmb_runner_alloc(a, 1500, 0, &b), HMB_OK);
  char want[256];
  snprintf(want, sizeof want,
           "deadlock prevention: runner #%llu 'join-left' borrowed 700 "
           "bytes, 500 beyond the limit, because every running runner (1) "
           "was waiting to borrow (held 1500 of limit 1000)",
           (unsigned long long)rid(a));
  assert_logged(&s, want);
  assert_int_equal(s.log.last_level, HMB_LOG_WARN);
  assert_int_equal(hmb_buffer_close(b), HMB_OK);
  hmb_runner_destroy(a);
  finish_pool(&s, p);
  ts_watchdog_disarm();
}

/* ---- waits and timeouts ---------------------------------------------- */

static void test_start_timeout_names_holders(void **state) {
  (void)state;
  ts_watchdog_arm("start timeout", 30);
  sink_t s;
  /* long waits reported after 1 ms; the start gives up after 50 ms */
  hmb_pool_t *p = make_pool(&s, 1000, HMB_LOG_WARN, 1000000);
  hmb_runner_t *hog = runner(p, 700, "hog", 0);
  hmb_runner_t *small = runner(p, 200, "small", 0);
  assert_int_equal(hmb_runner_start(hog, 0), HMB_OK);
  assert_int_equal(hmb_runner_start(small, 0), HMB_OK);
  hmb_buffer_t *b = NULL;
  assert_int_equal(hmb_runner_alloc(hog, 300, 0, &b), HMB_OK);
  hmb_runner_t *late = runner(p, 600, "late", 0);
  assert_int_equal(hmb_runner_start(late, 50000000), HMB_ETIMEDOUT);
  assert_int_equal(hmb_runner_state(late), HMB_RUNNER_CREATED);
  char want[256];
  snprintf(want, sizeof want,
           "timeout: runner #%llu 'late' could not start 600 bytes within "
           "50 ms; pool: held 900 of limit 1000 (available 100",
           (unsigned long long)rid(late));
  assert_logged(&s, want);
  /* The holders, largest first, with live and peak bytes. */
  snprintf(want, sizeof want,
           "; #%llu 'hog' RUNNING held 700 live 300 peak live 300; #%llu "
           "'small' RUNNING held 200 live 0 peak live 0",
           (unsigned long long)rid(hog), (unsigned long long)rid(small));
  assert_logged(&s, want);
  /* The long-wait line came first (1 ms < 50 ms) and says what it waits for. */
  snprintf(want, sizeof want, "runner #%llu 'late' has waited",
           (unsigned long long)rid(late));
  assert_logged(&s, want);
  assert_logged(&s, " ms to start 600 bytes (2 running); pool: held 900");
  assert_int_equal(s.log.count, 2);
  assert_int_equal(hmb_buffer_close(b), HMB_OK);
  hmb_runner_destroy(late);
  hmb_runner_destroy(small);
  hmb_runner_destroy(hog);
  finish_pool(&s, p);
  ts_watchdog_disarm();
}

static void test_borrow_timeout(void **state) {
  (void)state;
  ts_watchdog_arm("borrow timeout", 30);
  sink_t s;
  hmb_pool_t *p = make_pool(&s, 1000, HMB_LOG_WARN, -1);
  hmb_runner_t *a = runner(p, 500, "reader", 20000000);
  hmb_runner_t *b = runner(p, 500, "other", 0);
  assert_int_equal(hmb_runner_start(a, 0), HMB_OK);
  assert_int_equal(hmb_runner_start(b, 0), HMB_OK);
  hmb_buffer_t *x = NULL;
  /* b runs and does not borrow: a waits, then times out. */
  assert_int_equal(hmb_runner_alloc(a, 800, 0, &x), HMB_ETIMEDOUT);
  assert_null(x);
  char want[160];
  snprintf(want, sizeof want,
           "timeout: runner #%llu 'reader' could not borrow 300 bytes within "
           "20 ms; pool: held 1000 of limit 1000",
           (unsigned long long)rid(a));
  assert_logged(&s, want);
  hmb_runner_stats_t rs;
  assert_int_equal(hmb_runner_stats(a, &rs), HMB_OK);
  assert_int_equal(rs.held, 500); /* its own spare was given back */
  hmb_runner_destroy(a);
  hmb_runner_destroy(b);
  finish_pool(&s, p);
  ts_watchdog_disarm();
}

/* ---- describe ----------------------------------------------------------- */

static void test_describe_top_runners(void **state) {
  (void)state;
  sink_t s;
  hmb_pool_t *p = make_pool(&s, 10000, HMB_LOG_WARN, -1);
  hmb_runner_t *r1 = runner(p, 100, "r1", 0);
  hmb_runner_t *r2 = runner(p, 3000, "r2", 0);
  hmb_runner_t *r3 = runner(p, 2000, "r3", 0);
  hmb_runner_t *idle = runner(p, 50, "not-started", 0);
  assert_int_equal(hmb_runner_start(r1, 0), HMB_OK);
  assert_int_equal(hmb_runner_start(r2, 0), HMB_OK);
  assert_int_equal(hmb_runner_start(r3, 0), HMB_OK);
  hmb_buffer_t *a = NULL, *b = NULL;
  assert_int_equal(hmb_runner_alloc(r2, 2500, 0, &a), HMB_OK);
  assert_int_equal(hmb_runner_alloc(r3, 400, 0, &b), HMB_OK);
  assert_int_equal(hmb_buffer_close(a), HMB_OK); /* live 0, peak 2500 */
  char d[1024];
  int n = hmb_pool_describe(p, 2, d, sizeof d);
  assert_int_equal((int)strlen(d), n);
  char want[512];
  snprintf(want, sizeof want,
           "pool: held 5100 of limit 10000 (available 4900, over-committed "
           "0), 4 runners, 3 running, 0 waiting to start, 0 waiting to "
           "borrow; #%llu 'r2' RUNNING held 3000 live 0 peak live 2500; "
           "#%llu 'r3' RUNNING held 2000 live 400 peak live 400",
           (unsigned long long)rid(r2), (unsigned long long)rid(r3));
  assert_string_equal(d, want);
  /* top 0 means 5: every runner, the unstarted one last with 0 held. */
  n = hmb_pool_describe(p, 0, d, sizeof d);
  assert_non_null(strstr(d, "'r1' RUNNING held 100"));
  assert_non_null(strstr(d, "'not-started' CREATED held 0 live 0"));
  assert_true(strstr(d, "'r3'") < strstr(d, "'r1'"));
  /* Truncation keeps a NUL and reports the full length. */
  char small[16];
  assert_int_equal(hmb_pool_describe(p, 0, small, sizeof small), n);
  assert_string_equal(small, "pool: held 5100");
  assert_int_equal(hmb_buffer_close(b), HMB_OK);
  hmb_runner_destroy(r1);
  hmb_runner_destroy(r2);
  hmb_runner_destroy(r3);
  hmb_runner_destroy(idle);
  finish_pool(&s, p);
}

/* ---- leaks ----------------------------------------------------------------*/

static void test_leak_report_lists_every_runner(void **state) {
  (void)state;
  sink_t s;
  hmb_pool_t *p = make_pool(&s, 100000, HMB_LOG_WARN, -1);
  enum { N = 12 };
  hmb_runner_t *r[N];
  hmb_buffer_t *b[N];
  for (int i = 0; i < N; i++) {
    char name[32];
    snprintf(name, sizeof name, "scan-%02d", i);
    r[i] = runner(p, 1000, name, 0);
    assert_int_equal(hmb_runner_start(r[i], 0), HMB_OK);
    assert_int_equal(hmb_runner_alloc(r[i], (size_t)(100 + i), 0, &b[i]),
                     HMB_OK);
  }
  /* Half the handles are destroyed: those runners live on, detached. */
  for (int i = 0; i < N; i += 2)
    hmb_runner_destroy(r[i]);
  s.log.text[0] = '\0';
  s.log.count = 0;
  assert_int_equal(hmb_pool_destroy(p), HMB_EBUSY);
  assert_int_equal(s.log.last_level, HMB_LOG_ERROR);
  assert_logged(&s, "leak: pool destroyed with 12 runner(s) and 12 live "
                    "buffer(s) (1266 bytes) still alive; nothing was "
                    "destroyed; pool: held 6630 of limit 100000");
  for (int i = 0; i < N; i++) {
    char want[160];
    int detached = i % 2 == 0;
    snprintf(want, sizeof want,
             "leak: runner #%d 'scan-%02d' %s holds %d bytes of budget, %d "
             "live bytes in 1 buffer(s)",
             i + 1, i, detached ? "CLOSED (handle destroyed)" : "RUNNING",
             detached ? 100 + i : 1000, 100 + i);
    assert_logged(&s, want);
  }
  assert_int_equal(s.log.count, 1 + N);
  /* Nothing was destroyed: the pool still works, and empties. */
  hmb_pool_stats_t st;
  assert_int_equal(hmb_pool_stats(p, &st), HMB_OK);
  assert_int_equal(st.runners, N);
  for (int i = 0; i < N; i++) {
    assert_int_equal(hmb_buffer_close(b[i]), HMB_OK);
    if (i % 2)
      hmb_runner_destroy(r[i]);
  }
  finish_pool(&s, p);
}

static void test_runner_detach_reported(void **state) {
  (void)state;
  sink_t s;
  hmb_pool_t *p = make_pool(&s, 1000, HMB_LOG_DEBUG, -1);
  hmb_runner_t *r = runner(p, 500, "producer", 0);
  assert_int_equal(hmb_runner_start(r, 0), HMB_OK);
  hmb_buffer_t *a = NULL, *b = NULL;
  assert_int_equal(hmb_runner_alloc(r, 100, 0, &a), HMB_OK);
  assert_int_equal(hmb_runner_alloc(r, 50, 0, &b), HMB_OK);
  uint64_t id = rid(r);
  hmb_runner_destroy(r);
  char want[160];
  snprintf(want, sizeof want,
           "runner #%llu 'producer' detached with 2 live buffer(s), 150 "
           "bytes; their budget returns as they close",
           (unsigned long long)id);
  assert_logged(&s, want);
  assert_int_equal(s.log.last_level, HMB_LOG_DEBUG);
  hmb_pool_stats_t st;
  assert_int_equal(hmb_pool_stats(p, &st), HMB_OK);
  assert_int_equal(st.held, 150);
  assert_int_equal(hmb_buffer_close(a), HMB_OK);
  assert_int_equal(hmb_buffer_close(b), HMB_OK);
  finish_pool(&s, p);
}

/* ---- sink contract ---------------------------------------------------- */

static void test_level_filter(void **state) {
  (void)state;
  sink_t s;
  /* WARN (also what 0 means): the detach line (DEBUG) is not sent. */
  hmb_pool_t *p = make_pool(&s, 100, HMB_LOG_WARN, -1);
  hmb_runner_t *r = runner(p, 500, "quiet", 0);
  assert_int_equal(hmb_runner_start(r, 0), HMB_OK); /* WARN: sent */
  assert_int_equal(s.log.count, 1);
  hmb_buffer_t *a = NULL;
  assert_int_equal(hmb_runner_alloc(r, 10, 0, &a), HMB_OK);
  hmb_runner_destroy(r);
  assert_int_equal(s.log.count, 1);
  assert_int_equal(hmb_pool_destroy(p), HMB_EBUSY); /* ERROR: sent */
  assert_int_equal(s.max_level_seen, HMB_LOG_WARN);
  assert_int_equal(s.log.last_level, HMB_LOG_ERROR);
  assert_int_equal(s.log.count, 3); /* + the pool line and one runner line */
  assert_int_equal(hmb_buffer_close(a), HMB_OK);
  finish_pool(&s, p);
}

static void test_process_wide_sink(void **state) {
  (void)state;
  sink_t s;
  memset(&s, 0, sizeof s);
  s.max_level_seen = -1;
  hmb_set_log(sink_fn, &s, HMB_LOG_WARN);
  /* A pool without its own sink uses the process-wide one. */
  hmb_pool_config_t cfg;
  hmb_pool_config_init(&cfg);
  cfg.limit = 100;
  hmb_pool_t *p = NULL;
  assert_int_equal(hmb_pool_create(&cfg, &p), HMB_OK);
  hmb_runner_t *r = runner(p, 300, "global", 0);
  assert_int_equal(hmb_runner_start(r, 0), HMB_OK);
  hmb_set_log(NULL, NULL, 0);
  assert_logged(&s, "'global' started with 300 bytes, 200 beyond the limit");
  hmb_runner_destroy(r);
  assert_int_equal(hmb_pool_destroy(p), HMB_OK);
  assert_int_equal(s.bad_lines, 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_overcommit_idle_start),
      cmocka_unit_test(test_deadlock_prevention_borrow),
      cmocka_unit_test(test_start_timeout_names_holders),
      cmocka_unit_test(test_borrow_timeout),
      cmocka_unit_test(test_describe_top_runners),
      cmocka_unit_test(test_leak_report_lists_every_runner),
      cmocka_unit_test(test_runner_detach_reported),
      cmocka_unit_test(test_level_filter),
      cmocka_unit_test(test_process_wide_sink),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
