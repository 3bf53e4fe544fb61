/*
 * test_diagnostics.c - the log lines and reports that say who holds memory
 * (hmb/log.h), and the sink's contract.
 *
 * Each event is provoked deterministically and its message asserted word
 * for word where it carries numbers: a runner becoming the progress runner
 * (INFO), its first borrow beyond the limit (WARN; later ones DEBUG), a
 * long wait with the top holders (WARN), start and borrow timeouts (DEBUG,
 * without the pool description), the leak report of a busy pool destroy
 * (one line per runner), a runner detached with live buffers (DEBUG), and
 * hmb_pool_describe() itself (ordering, beyond, live and peak bytes,
 * truncation).
 *
 * The sink contract: one line, no newline (runner names have their
 * control characters replaced), level filtering for pool and process-wide
 * sinks (also while the process-wide sink is being replaced), no library
 * lock held (the sink calls back into the pool; a violation would
 * self-deadlock and trip the watchdog), and destroys re-entered from a sink
 * during the same object's destroy are refused, never run twice.
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "testsupport.h"

#define MS INT64_C(1000000)

typedef struct sink {
  ts_log_t log;
  hmb_pool_t *pool; /* called back from inside the sink when set */
  int max_level_seen;
  int bad_lines;
  int levels[8];
} sink_t;

/* Records, checks the line shape, and re-enters the pool. */
static void sink_fn(void *user, int level, const char *msg) {
  sink_t *s = user;
  if (!msg[0] || strchr(msg, '\n') || strchr(msg, '\r') || strlen(msg) >= 512)
    s->bad_lines++;
  for (const char *c = msg; *c; c++)
    if ((unsigned char)*c < 0x20 || *c == 0x7f)
      s->bad_lines++;
  if (level > s->max_level_seen)
    s->max_level_seen = level;
  if (level >= 0 && level < 8)
    s->levels[level]++;
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
  hmb_pool_t *p = ts_pool_cfg(&cfg);
  s->pool = p;
  return p;
}

static hmb_runner_t *runner(hmb_pool_t *p, size_t est, const char *name,
                            int64_t borrow_timeout_ns) {
  hmb_runner_config_t c;
  hmb_runner_config_init(&c);
  c.estimate = est;
  c.name = name;
  c.borrow_timeout_ns = borrow_timeout_ns;
  hmb_runner_t *r = NULL;
  assert_int_equal(hmb_runner_create(p, &c, &r), HMB_OK);
  return r;
}

static unsigned long long rid(hmb_runner_t *r) {
  return (unsigned long long)ts_runner_stats(r).id;
}

static void assert_logged(const sink_t *s, const char *text) {
  if (!ts_log_contains(&s->log, text)) {
    fprintf(stderr, "expected in the log: %s\n--- log ---\n%s---\n", text,
            s->log.text);
    fail();
  }
}

static void clear_log(sink_t *s) {
  s->log.text[0] = '\0';
  s->log.count = 0;
  memset(s->levels, 0, sizeof s->levels);
  s->max_level_seen = -1;
}

static void finish_pool(sink_t *s, hmb_pool_t *p) {
  ts_pool_done(p);
  assert_int_equal(s->bad_lines, 0);
}

/* ---- the progress runner and over-commit --------------------------------- */

/* An idle start is capped at the limit: nothing to warn about (0.1 warned
 * of an over-commit by the whole estimate); it becomes the progress runner
 * (INFO). Its first borrow beyond the limit is a WARN, later ones DEBUG. */
static void test_diagnostics_idle_start_and_progress_borrows(void **state) {
  (void)state;
  sink_t s;
  hmb_pool_t *p = make_pool(&s, 1000, HMB_LOG_DEBUG, -1);
  hmb_runner_t *big = runner(p, 1500, "footer-heavy", 0);
  assert_int_equal(hmb_runner_start(big, 0), HMB_OK);
  char want[320];
  snprintf(want, sizeof want,
           "runner #%llu 'footer-heavy' is now the progress runner (no runner "
           "was running); until it stops running it alone may be granted "
           "budget beyond the limit of 1000",
           rid(big));
  assert_logged(&s, want);
  assert_int_equal(s.log.count, 1);
  assert_int_equal(s.log.last_level, HMB_LOG_INFO);
  hmb_buffer_t *b = NULL, *c = NULL;
  assert_int_equal(hmb_runner_alloc(big, 1500, 0, &b), HMB_OK);
  snprintf(want, sizeof want,
           "over-commit: progress runner #%llu 'footer-heavy' was granted a "
           "borrow of 500 bytes, 500 of them beyond the limit of 1000 (it now "
           "holds 500 beyond)",
           rid(big));
  assert_logged(&s, want);
  assert_int_equal(s.log.last_level, HMB_LOG_WARN);
  assert_int_equal(hmb_runner_alloc(big, 100, 0, &c), HMB_OK);
  snprintf(want, sizeof want,
           "was granted a borrow of 100 bytes, 100 of them beyond the limit of "
           "1000 (it now holds 600 beyond)");
  assert_logged(&s, want);
  assert_int_equal(s.log.last_level, HMB_LOG_DEBUG);
  assert_int_equal(s.levels[HMB_LOG_WARN], 1);
  hmb_buffer_close(b);
  hmb_buffer_close(c);
  hmb_runner_destroy(big);
  finish_pool(&s, p);
}

/* R4: the only running runner waits to borrow, so it becomes the progress
 * runner and its borrow goes beyond the limit (0.1 called this "deadlock
 * prevention"). */
static void test_diagnostics_every_runner_waiting(void **state) {
  (void)state;
  sink_t s;
  hmb_pool_t *p = make_pool(&s, 1000, HMB_LOG_INFO, -1);
  hmb_runner_t *a = runner(p, 800, "join-left", 0);
  assert_int_equal(hmb_runner_start(a, 0), HMB_OK);
  assert_int_equal(s.log.count, 0); /* it fitted: not the progress runner */
  hmb_buffer_t *b = NULL;
  assert_int_equal(hmb_runner_alloc(a, 1500, 0, &b), HMB_OK);
  char want[320];
  snprintf(want, sizeof want,
           "runner #%llu 'join-left' is now the progress runner (every running "
           "runner waited to borrow); until it stops running it alone may be "
           "granted budget beyond the limit of 1000",
           rid(a));
  assert_logged(&s, want);
  snprintf(want, sizeof want,
           "over-commit: progress runner #%llu 'join-left' was granted a "
           "borrow of 700 bytes, 500 of them beyond the limit of 1000 (it now "
           "holds 500 beyond)",
           rid(a));
  assert_logged(&s, want);
  assert_int_equal(s.log.count, 2);
  assert_int_equal(s.log.last_level, HMB_LOG_WARN);
  assert_int_equal(hmb_buffer_close(b), HMB_OK);
  hmb_runner_destroy(a);
  finish_pool(&s, p);
}

/* ---- waits and timeouts -------------------------------------------------- */

/* A long wait is a WARN naming the holders; the start timeout itself is
 * the normal retry path: DEBUG, without the description. */
static void test_diagnostics_long_wait_names_holders(void **state) {
  (void)state;
  sink_t s;
  /* long waits reported after 1 ms; the start gives up after 50 ms */
  hmb_pool_t *p = make_pool(&s, 1000, HMB_LOG_DEBUG, MS);
  hmb_runner_t *hog = runner(p, 700, "hog", 0);
  hmb_runner_t *small = runner(p, 200, "small", 0);
  assert_int_equal(hmb_runner_start(hog, 0), HMB_OK);
  assert_int_equal(hmb_runner_start(small, 0), HMB_OK);
  hmb_buffer_t *b = NULL;
  assert_int_equal(hmb_runner_alloc(hog, 300, 0, &b), HMB_OK);
  hmb_runner_t *late = runner(p, 600, "late", 0);
  clear_log(&s);
  assert_int_equal(hmb_runner_start(late, 50 * MS), HMB_ETIMEDOUT);
  assert_int_equal(hmb_runner_state(late), HMB_RUNNER_CREATED);
  char want[320];
  snprintf(want, sizeof want,
           "timeout: runner #%llu 'late' could not start 600 bytes within "
           "50000 us",
           rid(late));
  assert_logged(&s, want);
  assert_int_equal(s.log.last_level, HMB_LOG_DEBUG);
  /* The long-wait line came first (1 ms < 50 ms) and says what it waits
   * for, then the holders, largest first, with live and peak bytes. */
  snprintf(want, sizeof want, "runner #%llu 'late' has waited", rid(late));
  assert_logged(&s, want);
  assert_logged(&s, " ms to start 600 bytes (2 running); pool: held 900 of "
                    "limit 1000 (available 100, over-committed 0)");
  snprintf(want, sizeof want,
           "; #%llu 'hog' RUNNING held 700 (beyond 0) live 300 peak live 300; "
           "#%llu 'small' RUNNING held 200 (beyond 0) live 0 peak live 0",
           rid(hog), rid(small));
  assert_logged(&s, want);
  assert_int_equal(s.log.count, 2);
  assert_int_equal(s.levels[HMB_LOG_WARN], 1);
  assert_int_equal(s.levels[HMB_LOG_DEBUG], 1);
  /* The timeout line carries no description. */
  const char *t = strstr(s.log.text, "timeout: ");
  assert_non_null(t);
  const char *eol = strchr(t, '\n');
  assert_non_null(eol);
  assert_true(eol - t < 100);
  assert_int_equal(hmb_buffer_close(b), HMB_OK);
  hmb_runner_destroy(late);
  hmb_runner_destroy(small);
  hmb_runner_destroy(hog);
  finish_pool(&s, p);
}

/* At the default level (WARN) a start that times out logs nothing. */
static void test_diagnostics_start_timeouts_are_quiet(void **state) {
  (void)state;
  sink_t s;
  hmb_pool_t *p = make_pool(&s, 1000, 0, -1);
  hmb_runner_t *a = runner(p, 1000, "a", 0);
  assert_int_equal(hmb_runner_start(a, 0), HMB_OK);
  hmb_runner_t *b = runner(p, 10, "b", 0);
  for (int i = 0; i < 20; i++)
    assert_int_equal(hmb_runner_start(b, i % 2 ? MS : 0), HMB_ETIMEDOUT);
  assert_int_equal(s.log.count, 0);
  hmb_runner_destroy(a);
  hmb_runner_destroy(b);
  finish_pool(&s, p);
}

static void test_diagnostics_borrow_timeout(void **state) {
  (void)state;
  sink_t s;
  hmb_pool_t *p = make_pool(&s, 1000, HMB_LOG_DEBUG, -1);
  hmb_runner_t *a = runner(p, 500, "reader", 20 * MS);
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
           "20000 us",
           rid(a));
  assert_logged(&s, want);
  hmb_runner_stats_t rs = ts_runner_stats(a);
  assert_int_equal(rs.held, 500); /* its own spare was given back */
  assert_int_equal(rs.spare, 500);
  hmb_runner_destroy(a);
  hmb_runner_destroy(b);
  finish_pool(&s, p);
}

/* ---- describe ------------------------------------------------------------ */

static void test_diagnostics_describe_top_runners(void **state) {
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
           "borrow, progress runner #0; #%llu 'r2' RUNNING held 3000 (beyond "
           "0) live 0 peak live 2500; #%llu 'r3' RUNNING held 2000 (beyond 0) "
           "live 400 peak live 400",
           rid(r2), rid(r3));
  assert_string_equal(d, want);
  /* top 0 means 5: every holder. A runner that holds nothing is not one. */
  n = hmb_pool_describe(p, 0, d, sizeof d);
  assert_non_null(strstr(d, "'r1' RUNNING held 100"));
  assert_null(strstr(d, "'not-started'"));
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

/* The progress runner is named, and marked in its line. */
static void test_diagnostics_describe_the_progress_runner(void **state) {
  (void)state;
  sink_t s;
  hmb_pool_t *p = make_pool(&s, 1000, HMB_LOG_WARN, -1);
  hmb_runner_t *r = runner(p, 5000, "alone", 0);
  assert_int_equal(hmb_runner_start(r, 0), HMB_OK);
  hmb_buffer_t *b = NULL;
  assert_int_equal(hmb_runner_alloc(r, 1200, 0, &b), HMB_OK);
  char d[512], want[256];
  hmb_pool_describe(p, 1, d, sizeof d);
  snprintf(want, sizeof want,
           "pool: held 1200 of limit 1000 (available -200, over-committed "
           "200), 1 runners, 1 running, 0 waiting to start, 0 waiting to "
           "borrow, progress runner #%llu; #%llu 'alone' RUNNING (progress) "
           "held 1200 (beyond 200) live 1200 peak live 1200",
           rid(r), rid(r));
  assert_string_equal(d, want);
  hmb_buffer_close(b);
  hmb_runner_destroy(r);
  finish_pool(&s, p);
}

/* ---- text from the caller ------------------------------------------------ */

static atomic_int spin_in;

static int spin_until_cancelled(void *user, hmb_runner_t *r) {
  (void)user;
  atomic_store(&spin_in, 1);
  while (!hmb_runner_is_cancelled(r))
    ts_sleep_ms(1);
  return 0;
}

static int spin_entered(void *arg) {
  (void)arg;
  return atomic_load(&spin_in);
}

static char d_text[512];

/* Control characters in a runner's name are replaced by '?': log lines and
 * descriptions stay one line ('a\nb' -> 'a?b'). */
static void test_diagnostics_runner_name_is_cleaned(void **state) {
  (void)state;
  sink_t s;
  hmb_pool_t *p = make_pool(&s, 1000, HMB_LOG_DEBUG, -1);
  hmb_runner_t *r = runner(p, 5000,
                           "a\nb\tc\rd\x7f"
                           "e\x1b[0m",
                           0);
  assert_int_equal(hmb_runner_start(r, 0), HMB_OK); /* logs the name */
  hmb_buffer_t *b = NULL;
  assert_int_equal(hmb_runner_alloc(r, 1500, 0, &b), HMB_OK);
  assert_logged(&s, "'a?b?c?d?e?[0m' is now the progress runner");
  assert_logged(&s, "progress runner #1 'a?b?c?d?e?[0m' was granted");
  hmb_pool_describe(p, 1, d_text, sizeof d_text);
  assert_non_null(strstr(d_text, "'a?b?c?d?e?[0m' RUNNING"));
  assert_null(strchr(d_text, '\n'));
  hmb_buffer_close(b);
  hmb_runner_destroy(r);
  /* The names of executors and tasks, too. */
  hmb_executor_config_t ec;
  hmb_executor_config_init(&ec);
  ec.threads = 1;
  ec.name = "ex\nec";
  hmb_executor_t *ex = NULL;
  assert_int_equal(hmb_executor_create(p, &ec, &ex), HMB_OK);
  hmb_task_desc_t d;
  hmb_task_desc_init(&d);
  d.run = spin_until_cancelled;
  d.name = "task\none";
  d.estimate = 100; /* a holder, so that describe lists it */
  atomic_store(&spin_in, 0);
  assert_int_equal(hmb_executor_submit(ex, &d, NULL), HMB_OK);
  assert_true(ts_wait_for(spin_entered, NULL, 20000));
  /* The task's runner is named after the task. */
  hmb_pool_describe(p, 1, d_text, sizeof d_text);
  assert_non_null(strstr(d_text, "'task?one' RUNNING"));
  assert_int_equal(hmb_executor_submit(ex, &d, NULL), HMB_OK);
  hmb_executor_destroy(ex);
  assert_logged(&s, "executor 'ex?ec': shutdown cancels 1 queued and 1 "
                    "running task(s)");
  finish_pool(&s, p);
}

/* ---- leaks --------------------------------------------------------------- */

static void test_diagnostics_leak_report_lists_every_runner(void **state) {
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
  clear_log(&s);
  assert_int_equal(hmb_pool_destroy(p), HMB_EBUSY);
  assert_int_equal(s.log.last_level, HMB_LOG_ERROR);
  assert_logged(&s, "leak: pool destroyed with 12 runner(s) and 12 live "
                    "buffer(s) (1266 bytes) still alive; nothing was "
                    "destroyed; pool: held 6630 of limit 100000 (available "
                    "93370, over-committed 0), 12 runners, 6 running, 0 "
                    "waiting to start, 0 waiting to borrow, progress runner "
                    "#0\n");
  for (int i = 0; i < N; i++) {
    char want[160];
    int detached = i % 2 == 0;
    snprintf(want, sizeof want,
             "leak: runner #%d 'scan-%02d' %s holds %d bytes of budget, %d "
             "live bytes in 1 buffer(s)\n",
             i + 1, i, detached ? "CLOSED (handle destroyed)" : "RUNNING",
             detached ? 100 + i : 1000, 100 + i);
    assert_logged(&s, want);
  }
  assert_int_equal(s.log.count, 1 + N); /* one line each: never cut */
  assert_int_equal(s.levels[HMB_LOG_ERROR], 1 + N);
  /* Nothing was destroyed: the pool still works, and empties. */
  assert_int_equal(ts_pool_stats(p).runners, N);
  for (int i = 0; i < N; i++) {
    assert_int_equal(hmb_buffer_close(b[i]), HMB_OK);
    if (i % 2)
      hmb_runner_destroy(r[i]);
  }
  finish_pool(&s, p);
}

/* More runners than one report lists: the rest are counted. */
static void test_diagnostics_leak_report_of_many_runners(void **state) {
  (void)state;
  sink_t s;
  hmb_pool_t *p = make_pool(&s, 100000, HMB_LOG_WARN, -1);
  enum { N = 40 };
  hmb_runner_t *r[N];
  for (int i = 0; i < N; i++)
    r[i] = runner(p, 10, "many", 0);
  clear_log(&s);
  assert_int_equal(hmb_pool_destroy(p), HMB_EBUSY);
  assert_logged(&s, "leak: pool destroyed with 40 runner(s)");
  assert_logged(&s, "leak: ... and 8 more runner(s)");
  assert_int_equal(s.log.count, 1 + 32 + 1);
  for (int i = 0; i < N; i++)
    hmb_runner_destroy(r[i]);
  finish_pool(&s, p);
}

static void test_diagnostics_runner_detach_reported(void **state) {
  (void)state;
  sink_t s;
  hmb_pool_t *p = make_pool(&s, 1000, HMB_LOG_DEBUG, -1);
  hmb_runner_t *r = runner(p, 500, "producer", 0);
  assert_int_equal(hmb_runner_start(r, 0), HMB_OK);
  hmb_buffer_t *a = NULL, *b = NULL;
  assert_int_equal(hmb_runner_alloc(r, 100, 0, &a), HMB_OK);
  assert_int_equal(hmb_runner_alloc(r, 50, 0, &b), HMB_OK);
  unsigned long long id = rid(r);
  hmb_runner_destroy(r);
  char want[160];
  snprintf(want, sizeof want,
           "runner #%llu 'producer' RUNNING detached with 2 live buffer(s), "
           "150 bytes; their budget returns as they close",
           id);
  assert_logged(&s, want);
  assert_int_equal(s.log.last_level, HMB_LOG_DEBUG);
  assert_int_equal(ts_pool_stats(p).held, 150);
  assert_int_equal(hmb_buffer_close(a), HMB_OK);
  assert_int_equal(hmb_buffer_close(b), HMB_OK);
  finish_pool(&s, p);
}

/* ---- destroy re-entered from a sink -------------------------------------- */

typedef struct reentry {
  sink_t s;
  hmb_pool_t *pool;
  hmb_buffer_t *leaked; /* closed by the sink on the leak report */
  int nested_rc;
  int nested_calls;
} reentry_t;

static void reentry_sink(void *user, int level, const char *msg) {
  reentry_t *x = user;
  sink_fn(&x->s, level, msg);
  if (strncmp(msg, "leak: runner", 12) == 0 && x->leaked) {
    hmb_buffer_t *b = x->leaked;
    x->leaked = NULL;
    hmb_buffer_close(b); /* the detached runner's last buffer */
    x->nested_calls++;
    x->nested_rc = hmb_pool_destroy(x->pool);
  }
}

/*
 * A sink that, on the leak report, closes the leaked buffer and destroys
 * the pool again: the nested destroy is refused with HMB_ESTATE (0.1 freed
 * the pool there, a use after free in the outer destroy under ASan), and
 * the outer one, finding nothing left after the report, destroys the pool
 * and returns 0.
 */
static void
test_diagnostics_pool_destroy_reentered_from_the_leak_report(void **state) {
  (void)state;
  reentry_t x;
  memset(&x, 0, sizeof x);
  x.s.max_level_seen = -1;
  hmb_pool_config_t cfg;
  hmb_pool_config_init(&cfg);
  cfg.limit = 1000;
  cfg.log_fn = reentry_sink;
  cfg.log_user = &x;
  x.pool = ts_pool_cfg(&cfg);
  hmb_runner_t *r = ts_started_runner(x.pool, 100);
  assert_int_equal(hmb_runner_alloc(r, 64, 0, &x.leaked), HMB_OK);
  hmb_runner_destroy(r); /* detached, its buffer still live */
  int rc = hmb_pool_destroy(x.pool);
  assert_int_equal(x.nested_calls, 1);
  assert_int_equal(x.nested_rc, HMB_ESTATE);
  assert_int_equal(rc, HMB_OK); /* the pool is gone; nothing to clean */
  assert_true(ts_log_contains(&x.s.log, "leak: pool destroyed with 1 "
                                        "runner(s)"));
  assert_true(ts_log_contains(&x.s.log, "hmb_pool_destroy() re-entered"));
  assert_int_equal(x.s.bad_lines, 0);
}

/* The same sink, but the runner's handle is still alive: the report cannot
 * empty the pool, so the outer destroy is refused too and the pool stays
 * usable; a later destroy succeeds. */
static void
test_diagnostics_pool_destroy_reentered_and_still_busy(void **state) {
  (void)state;
  reentry_t x;
  memset(&x, 0, sizeof x);
  x.s.max_level_seen = -1;
  hmb_pool_config_t cfg;
  hmb_pool_config_init(&cfg);
  cfg.limit = 1000;
  cfg.log_fn = reentry_sink;
  cfg.log_user = &x;
  x.pool = ts_pool_cfg(&cfg);
  hmb_runner_t *r = ts_started_runner(x.pool, 100);
  assert_int_equal(hmb_runner_alloc(r, 64, 0, &x.leaked), HMB_OK);
  assert_int_equal(hmb_pool_destroy(x.pool), HMB_EBUSY);
  assert_int_equal(x.nested_rc, HMB_ESTATE);
  assert_int_equal(ts_runner_stats(r).live, 0); /* the sink closed it */
  hmb_buffer_t *b = NULL;
  assert_int_equal(hmb_runner_alloc(r, 10, 0, &b), HMB_OK);
  hmb_buffer_close(b);
  hmb_runner_destroy(r);
  ts_pool_done(x.pool);
}

typedef struct ex_reentry {
  sink_t s;
  hmb_executor_t *ex;
  int nested_destroys;
  int shutdown_rc;
} ex_reentry_t;

static void ex_reentry_sink(void *user, int level, const char *msg) {
  ex_reentry_t *x = user;
  ts_log_capture(&x->s.log, level, msg);
  if (strchr(msg, '\n'))
    x->s.bad_lines++;
  if (strstr(msg, "shutdown cancels") && x->ex) {
    hmb_executor_t *ex = x->ex;
    x->ex = NULL;
    x->nested_destroys++;
    hmb_executor_destroy(ex); /* ignored: its destroy is in progress */
    x->shutdown_rc = hmb_executor_shutdown(ex, HMB_SHUTDOWN_CANCEL);
  }
}

/*
 * A sink that destroys the executor on its shutdown line (logged by the
 * destroy itself): the nested destroy is ignored and logged, shutdown from
 * there is refused with HMB_ESTATE, every task still completes once, and
 * nothing is freed twice (ASan).
 */
static void test_diagnostics_executor_destroy_reentered_from_its_shutdown_line(
    void **state) {
  (void)state;
  ex_reentry_t x;
  memset(&x, 0, sizeof x);
  hmb_pool_config_t cfg;
  hmb_pool_config_init(&cfg);
  cfg.limit = 1 << 20;
  cfg.log_fn = ex_reentry_sink;
  cfg.log_user = &x;
  cfg.log_level = HMB_LOG_INFO;
  hmb_pool_t *pool = ts_pool_cfg(&cfg);
  hmb_executor_config_t ec;
  hmb_executor_config_init(&ec);
  ec.threads = 1;
  ec.name = "reentered";
  hmb_executor_t *ex = NULL;
  assert_int_equal(hmb_executor_create(pool, &ec, &ex), HMB_OK);
  hmb_task_desc_t d;
  hmb_task_desc_init(&d);
  d.run = spin_until_cancelled;
  hmb_task_t *hs = NULL;
  atomic_store(&spin_in, 0);
  assert_int_equal(hmb_executor_submit(ex, &d, &hs), HMB_OK);
  assert_true(ts_wait_for(spin_entered, NULL, 20000));
  hmb_task_t *h[3];
  for (int i = 0; i < 3; i++)
    assert_int_equal(hmb_executor_submit(ex, &d, &h[i]), HMB_OK);
  x.ex = ex;
  hmb_executor_destroy(ex);
  assert_int_equal(x.nested_destroys, 1);
  assert_int_equal(x.shutdown_rc, HMB_ESTATE);
  assert_true(ts_log_contains(&x.s.log,
                              "executor 'reentered': shutdown cancels 3 "
                              "queued and 1 running task(s)"));
  assert_true(ts_log_contains(&x.s.log, "executor 'reentered': destroy "
                                        "called while this thread shuts it "
                                        "down (from a log sink or callback); "
                                        "ignored"));
  /* Handles outlive the executor; every task completed once. */
  int st = 1;
  assert_int_equal(hmb_task_wait(hs, 0, &st), HMB_OK);
  assert_int_equal(st, HMB_ECANCELED);
  hmb_task_release(hs);
  for (int i = 0; i < 3; i++) {
    st = 1;
    assert_int_equal(hmb_task_wait(h[i], 0, &st), HMB_OK);
    assert_int_equal(st, HMB_ECANCELED);
    hmb_task_release(h[i]);
  }
  assert_int_equal(x.s.bad_lines, 0);
  ts_pool_done(pool);
}

/* ---- sink contract ------------------------------------------------------- */

static void test_diagnostics_level_filter(void **state) {
  (void)state;
  sink_t s;
  /* WARN (also what 0 means): INFO and DEBUG lines are not sent. */
  hmb_pool_t *p = make_pool(&s, 100, HMB_LOG_WARN, -1);
  hmb_runner_t *r = runner(p, 500, "quiet", 0);
  assert_int_equal(hmb_runner_start(r, 0), HMB_OK); /* INFO: not sent */
  assert_int_equal(s.log.count, 0);
  hmb_buffer_t *a = NULL, *c = NULL;
  assert_int_equal(hmb_runner_alloc(r, 150, 0, &a), HMB_OK); /* WARN: sent */
  assert_int_equal(s.log.count, 1);
  assert_int_equal(hmb_runner_alloc(r, 10, 0, &c), HMB_OK); /* DEBUG */
  assert_int_equal(s.log.count, 1);
  hmb_buffer_close(c);
  hmb_runner_destroy(r); /* the detach line is DEBUG */
  assert_int_equal(s.log.count, 1);
  assert_int_equal(hmb_pool_destroy(p), HMB_EBUSY); /* ERROR: sent */
  assert_int_equal(s.max_level_seen, HMB_LOG_WARN);
  assert_int_equal(s.log.last_level, HMB_LOG_ERROR);
  assert_int_equal(s.log.count, 3); /* + the pool line and one runner line */
  assert_int_equal(hmb_buffer_close(a), HMB_OK);
  finish_pool(&s, p);
  /* ERROR only. */
  p = make_pool(&s, 100, HMB_LOG_ERROR, -1);
  r = runner(p, 500, "quieter", 0);
  assert_int_equal(hmb_runner_start(r, 0), HMB_OK);
  assert_int_equal(hmb_runner_alloc(r, 150, 0, &a), HMB_OK);
  hmb_buffer_close(a);
  hmb_runner_destroy(r);
  assert_int_equal(s.log.count, 0);
  finish_pool(&s, p);
}

static void test_diagnostics_process_wide_sink(void **state) {
  (void)state;
  sink_t s;
  memset(&s, 0, sizeof s);
  s.max_level_seen = -1;
  hmb_set_log(sink_fn, &s, HMB_LOG_WARN);
  /* A pool without its own sink uses the process-wide one. */
  hmb_pool_config_t cfg;
  hmb_pool_config_init(&cfg);
  cfg.limit = 100;
  hmb_pool_t *p = ts_pool_cfg(&cfg);
  hmb_runner_t *r = runner(p, 300, "global", 0);
  assert_int_equal(hmb_runner_start(r, 0), HMB_OK); /* INFO: filtered */
  assert_int_equal(s.log.count, 0);
  hmb_buffer_t *b = NULL;
  assert_int_equal(hmb_runner_alloc(r, 300, 0, &b), HMB_OK);
  hmb_set_log(NULL, NULL, 0);
  assert_logged(&s, "over-commit: progress runner #1 'global' was granted a "
                    "borrow of 200 bytes, 200 of them beyond the limit of "
                    "100");
  assert_int_equal(s.log.count, 1);
  hmb_buffer_close(b);
  hmb_runner_destroy(r);
  ts_pool_done(p);
  assert_int_equal(s.bad_lines, 0);
}

/*
 * Regression: a message that passed the previous process-wide sink's level
 * filter must not reach a sink installed meanwhile that asked for errors
 * only (0.1 filtered with one sink's level and called the other). A thread
 * produces DEBUG lines through the process-wide sink (start timeouts of a
 * pool without a sink of its own) while the main thread swaps sinks.
 * Probabilistic: many rounds.
 */
static _Atomic long sink_b_violations, sink_a_calls;
static void sink_a(void *u, int level, const char *m) {
  (void)u, (void)level, (void)m;
  atomic_fetch_add(&sink_a_calls, 1);
}
static void sink_b(void *u, int level, const char *m) {
  (void)u, (void)m;
  if (level > HMB_LOG_ERROR)
    atomic_fetch_add(&sink_b_violations, 1);
}
static _Atomic int spam_stop;

static void *debug_spammer(void *arg) {
  hmb_pool_t *p = arg;
  hmb_runner_t *b = runner(p, 10, "spam", 0);
  while (!atomic_load(&spam_stop))
    hmb_runner_start(b, 0); /* HMB_ETIMEDOUT, logged at DEBUG */
  hmb_runner_destroy(b);
  return NULL;
}

static void test_diagnostics_global_log_level_follows_its_sink(void **state) {
  (void)state;
  hmb_pool_config_t cfg;
  hmb_pool_config_init(&cfg);
  cfg.limit = 100;
  hmb_pool_t *p = ts_pool_cfg(&cfg);
  hmb_runner_t *a = ts_started_runner(p, 100); /* the pool is full */
  atomic_store(&spam_stop, 0);
  pthread_t t;
  pthread_create(&t, NULL, debug_spammer, p);
  long iters = ts_env_long("HMB_LOG_SWAP_ITERS", 100000);
  for (long i = 0; (i < iters || atomic_load(&sink_a_calls) < 50) &&
                   atomic_load(&sink_b_violations) == 0;
       i++) {
    hmb_set_log(sink_a, NULL, HMB_LOG_DEBUG);
    hmb_set_log(sink_b, NULL, HMB_LOG_ERROR);
  }
  atomic_store(&spam_stop, 1);
  pthread_join(t, NULL);
  hmb_set_log(NULL, NULL, 0);
  fprintf(stderr, "sink A got %ld message(s), sink B %ld debug message(s)\n",
          atomic_load(&sink_a_calls), atomic_load(&sink_b_violations));
  assert_int_equal(atomic_load(&sink_b_violations), 0);
  assert_true(atomic_load(&sink_a_calls) > 0); /* the race was exercised */
  hmb_runner_destroy(a);
  ts_pool_done(p);
}

int main(void) {
  ts_watchdog_arm("test_diagnostics", 120);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_diagnostics_idle_start_and_progress_borrows),
      cmocka_unit_test(test_diagnostics_every_runner_waiting),
      cmocka_unit_test(test_diagnostics_long_wait_names_holders),
      cmocka_unit_test(test_diagnostics_start_timeouts_are_quiet),
      cmocka_unit_test(test_diagnostics_borrow_timeout),
      cmocka_unit_test(test_diagnostics_describe_top_runners),
      cmocka_unit_test(test_diagnostics_describe_the_progress_runner),
      cmocka_unit_test(test_diagnostics_runner_name_is_cleaned),
      cmocka_unit_test(test_diagnostics_leak_report_lists_every_runner),
      cmocka_unit_test(test_diagnostics_leak_report_of_many_runners),
      cmocka_unit_test(test_diagnostics_runner_detach_reported),
      cmocka_unit_test(
          test_diagnostics_pool_destroy_reentered_from_the_leak_report),
      cmocka_unit_test(test_diagnostics_pool_destroy_reentered_and_still_busy),
      cmocka_unit_test(
          test_diagnostics_executor_destroy_reentered_from_its_shutdown_line),
      cmocka_unit_test(test_diagnostics_level_filter),
      cmocka_unit_test(test_diagnostics_process_wide_sink),
      cmocka_unit_test(test_diagnostics_global_log_level_follows_its_sink),
  };
  int rc = cmocka_run_group_tests(tests, NULL, NULL);
  ts_watchdog_disarm();
  return rc;
}
