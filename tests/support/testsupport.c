/*
 * testsupport.c - see testsupport.h.
 */
#define _POSIX_C_SOURCE 200809L
#include "testsupport.h"
#include "storm_support.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---- watchdog ------------------------------------------------------------ */

static pthread_t ts_wd_thread;
static pthread_mutex_t ts_wd_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t ts_wd_cv = PTHREAD_COND_INITIALIZER;
static int ts_wd_armed;
static const char *ts_wd_what;
static int ts_wd_seconds;

static void *ts_watchdog_main(void *arg) {
  (void)arg;
  struct timespec until;
  clock_gettime(CLOCK_REALTIME, &until);
  until.tv_sec += ts_wd_seconds;
  pthread_mutex_lock(&ts_wd_mu);
  while (ts_wd_armed) {
    if (pthread_cond_timedwait(&ts_wd_cv, &ts_wd_mu, &until) != 0 &&
        ts_wd_armed) {
      fprintf(stderr, "WATCHDOG: '%s' did not finish within %d s (deadlock?)\n",
              ts_wd_what, ts_wd_seconds);
      fflush(stderr);
      abort();
    }
  }
  pthread_mutex_unlock(&ts_wd_mu);
  return NULL;
}

void ts_watchdog_arm(const char *what, int seconds) {
  /* Sanitizers and valgrind slow every step (valgrind also runs one thread
   * at a time). */
  if (ts_under_sanitizer() || sts_under_valgrind())
    seconds *= 4;
  pthread_mutex_lock(&ts_wd_mu);
  ts_wd_armed = 1;
  ts_wd_what = what;
  ts_wd_seconds = seconds;
  pthread_mutex_unlock(&ts_wd_mu);
  pthread_create(&ts_wd_thread, NULL, ts_watchdog_main, NULL);
}

void ts_watchdog_disarm(void) {
  pthread_mutex_lock(&ts_wd_mu);
  ts_wd_armed = 0;
  pthread_cond_broadcast(&ts_wd_cv);
  pthread_mutex_unlock(&ts_wd_mu);
  pthread_join(ts_wd_thread, NULL);
}

/* ---- failing backend ----------------------------------------------------- */

static int ts_fb_alloc(void *ctx, size_t size, size_t align, int prefer_pinned,
                       void **ptr, int *pinned) {
  ts_failing_backend_t *fb = ctx;
  (void)prefer_pinned;
  long n = __atomic_add_fetch(&fb->calls, 1, __ATOMIC_SEQ_CST);
  if (fb->fail_at > 0 &&
      (n == fb->fail_at || (fb->sticky && n > fb->fail_at))) {
    __atomic_add_fetch(&fb->failures, 1, __ATOMIC_SEQ_CST);
    return HMB_ENOMEM;
  }
  void *p = NULL;
  if (posix_memalign(&p, align, size) != 0)
    return HMB_ENOMEM;
  __atomic_add_fetch(&fb->live, 1, __ATOMIC_SEQ_CST);
  *ptr = p;
  *pinned = 0;
  return 0;
}

static void ts_fb_free(void *ctx, void *ptr, size_t size, int pinned) {
  ts_failing_backend_t *fb = ctx;
  (void)size;
  (void)pinned;
  __atomic_sub_fetch(&fb->live, 1, __ATOMIC_SEQ_CST);
  free(ptr);
}

void ts_failing_backend_init(ts_failing_backend_t *fb, long fail_at,
                             int sticky) {
  memset(fb, 0, sizeof *fb);
  fb->vtable.ctx = fb;
  fb->vtable.alloc = ts_fb_alloc;
  fb->vtable.free = ts_fb_free;
  fb->fail_at = fail_at;
  fb->sticky = sticky;
}

/* ---- log capture ----------------------------------------------------------
 */

static pthread_mutex_t ts_log_mu = PTHREAD_MUTEX_INITIALIZER;

void ts_log_capture(void *user, int level, const char *msg) {
  ts_log_t *log = user;
  pthread_mutex_lock(&ts_log_mu);
  size_t n = strlen(log->text);
  snprintf(log->text + n, sizeof log->text - n, "%s\n", msg);
  log->count++;
  log->last_level = level;
  pthread_mutex_unlock(&ts_log_mu);
}

int ts_log_contains(const ts_log_t *log, const char *needle) {
  pthread_mutex_lock(&ts_log_mu);
  int found = strstr(log->text, needle) != NULL;
  pthread_mutex_unlock(&ts_log_mu);
  return found;
}

/* ---- pools and runners ------------------------------------------------- */

hmb_pool_t *ts_pool(size_t limit, const hmb_backend_t *backend, ts_log_t *log) {
  hmb_pool_config_t cfg;
  hmb_pool_config_init(&cfg);
  cfg.limit = limit;
  cfg.backend = backend;
  if (log) {
    cfg.log_fn = ts_log_capture;
    cfg.log_user = log;
    cfg.log_level = HMB_LOG_DEBUG;
  }
  hmb_pool_t *pool = NULL;
  assert_int_equal(hmb_pool_create(&cfg, &pool), HMB_OK);
  assert_non_null(pool);
  return pool;
}

hmb_runner_t *ts_started_runner(hmb_pool_t *pool, size_t estimate) {
  hmb_runner_config_t rc = {0};
  rc.estimate = estimate;
  hmb_runner_t *r = NULL;
  assert_int_equal(hmb_runner_create(pool, &rc, &r), HMB_OK);
  assert_int_equal(hmb_runner_start(r, 0), HMB_OK);
  return r;
}

/* ---- environment and randomness ------------------------------------------ */

/* The detection lives in storm_support.c (free of cmocka, for the storm). */
int ts_under_sanitizer(void) {
  return sts_sanitized();
}

int ts_under_asan(void) {
  return sts_asan();
}

long ts_env_long(const char *name, long def) {
  const char *v = getenv(name);
  if (v && *v)
    return strtol(v, NULL, 0);
  return ts_under_sanitizer() ? (def + 3) / 4 : def;
}

uint64_t ts_seed(const char *test) {
  const char *v = getenv("HMB_TEST_SEED");
  uint64_t seed;
  if (v && *v) {
    seed = strtoull(v, NULL, 0);
  } else {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    seed = ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)ts.tv_sec ^
           ((uint64_t)getpid() << 40);
  }
  if (seed == 0)
    seed = 1;
  fprintf(stderr, "%s: seed %llu (replay with HMB_TEST_SEED=%llu)\n", test,
          (unsigned long long)seed, (unsigned long long)seed);
  return seed;
}

uint64_t ts_rand(uint64_t *s) {
  uint64_t x = *s;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  *s = x;
  return x * 0x2545F4914F6CDD1DULL;
}

void ts_sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

int ts_wait_for(int (*pred)(void *), void *arg, long ms_max) {
  for (long i = 0; i < ms_max; i++) {
    if (pred(arg))
      return 1;
    ts_sleep_ms(1);
  }
  return pred(arg);
}

void ts_assert_pool_idle(hmb_pool_t *pool) {
  hmb_pool_stats_t st;
  assert_int_equal(hmb_pool_stats(pool, &st), HMB_OK);
  assert_int_equal(st.held, 0);
  assert_int_equal(st.available, st.limit);
  assert_int_equal(st.overcommitted, 0);
  assert_int_equal(st.live_bytes, 0);
  assert_int_equal(st.live_buffers, 0);
  assert_int_equal(st.running, 0);
  assert_int_equal(st.acquire_waiters, 0);
  assert_int_equal(st.borrow_waiters, 0);
}

void ts_check_at(hmb_pool_t *pool, unsigned flags, const char *file, int line) {
  char why[512];
  if (hmb_pool_check(pool, flags, why, sizeof why) != 0) {
    char desc[2048];
    hmb_pool_describe(pool, 8, desc, sizeof desc);
    fail_msg("%s:%d: hmb_pool_check: %s\n  %s", file, line, why, desc);
  }
}

hmb_runner_t *ts_runner_prio(hmb_pool_t *pool, size_t estimate, int priority,
                             const char *name) {
  hmb_runner_config_t rc;
  hmb_runner_config_init(&rc);
  rc.estimate = estimate;
  rc.priority = priority;
  rc.name = name;
  hmb_runner_t *r = NULL;
  assert_int_equal(hmb_runner_create(pool, &rc, &r), HMB_OK);
  return r;
}

hmb_runner_t *ts_runner(hmb_pool_t *pool, size_t estimate, const char *name) {
  return ts_runner_prio(pool, estimate, 0, name);
}

hmb_pool_stats_t ts_pool_stats(hmb_pool_t *pool) {
  hmb_pool_stats_t st;
  assert_int_equal(hmb_pool_stats(pool, &st), HMB_OK);
  return st;
}

hmb_runner_stats_t ts_runner_stats(const hmb_runner_t *runner) {
  hmb_runner_stats_t st;
  assert_int_equal(hmb_runner_stats(runner, &st), HMB_OK);
  return st;
}

hmb_memory_stats_t ts_memory_stats(hmb_pool_t *pool) {
  hmb_memory_stats_t st;
  assert_int_equal(hmb_pool_memory_stats(pool, &st), HMB_OK);
  return st;
}

void ts_pool_done_at(hmb_pool_t *pool, const char *file, int line) {
  ts_check_at(pool, HMB_CHECK_QUIESCENT, file, line);
  ts_assert_pool_idle(pool);
  int rc = hmb_pool_destroy(pool);
  if (rc != 0)
    fail_msg("%s:%d: hmb_pool_destroy returned %s", file, line,
             hmb_errname(rc));
}

hmb_pool_t *ts_pool_cfg(const hmb_pool_config_t *cfg) {
  hmb_pool_t *pool = NULL;
  assert_int_equal(hmb_pool_create(cfg, &pool), HMB_OK);
  assert_non_null(pool);
  return pool;
}

/* HMB_TEST_FILTER=pattern runs only the tests of a program whose names
 * match (cmocka's filter: '*' and '?' wildcards). Set before main(). */
__attribute__((constructor)) static void ts_filter_from_env(void) {
  const char *f = getenv("HMB_TEST_FILTER");
  if (f && *f)
    cmocka_set_test_filter(f);
}
