/*
 * testsupport.h - helpers shared by the test programs.
 *
 *  - cmocka is included with its required system headers;
 *  - a watchdog turns a deadlock into a test failure instead of a CI hang;
 *  - a fault-injecting backend fails the Nth physical allocation;
 *  - a log capture records library messages for assertions;
 *  - stress sizes come from environment variables and shrink under
 *    sanitizers; the seed is printed so a failure can be replayed.
 */
#ifndef HMB_TESTSUPPORT_H
#define HMB_TESTSUPPORT_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "hmb.h"

/* Abort the process (with `what` printed) if not disarmed in `seconds`. */
void ts_watchdog_arm(const char *what, int seconds);
void ts_watchdog_disarm(void);

/* A backend over malloc that fails allocation number `fail_at` (1-based;
 * 0 = never), or every allocation from then on if `sticky`. */
typedef struct ts_failing_backend {
  hmb_backend_t vtable; /* pass &fb.vtable as hmb_pool_config_t.backend */
  long fail_at;
  int sticky;
  long calls; /* allocation calls seen (atomic in practice) */
  long failures;
  long live; /* blocks not yet freed */
} ts_failing_backend_t;
void ts_failing_backend_init(ts_failing_backend_t *fb, long fail_at,
                             int sticky);

/* Log capture: install with the pool config (log_fn = ts_log_capture). */
typedef struct ts_log {
  char text[8192]; /* all messages, '\n' separated */
  int count;
  int last_level;
} ts_log_t;
void ts_log_capture(void *user, int level, const char *msg);
int ts_log_contains(const ts_log_t *log, const char *needle);

/* Pool with `limit` bytes and an optional failing backend and log. */
hmb_pool_t *ts_pool(size_t limit, const hmb_backend_t *backend, ts_log_t *log);

/* Runner created and started (asserts success). */
hmb_runner_t *ts_started_runner(hmb_pool_t *pool, size_t estimate);

/* Integer from the environment, or `def`; halved per sanitizer in use. */
long ts_env_long(const char *name, long def);
int ts_under_sanitizer(void);
/* Whether this build runs under AddressSanitizer (which the memory layer's
 * thread cache steps aside for: tcache.h). */
int ts_under_asan(void);

/* Seed from HMB_TEST_SEED or the clock; printed to stderr. */
uint64_t ts_seed(const char *test);
/* xorshift64* PRNG. */
uint64_t ts_rand(uint64_t *state);

/* Sleep for `ms` milliseconds. */
void ts_sleep_ms(long ms);
/* Poll `pred(arg)` every ms until true or `ms_max` passes; returns pred. */
int ts_wait_for(int (*pred)(void *), void *arg, long ms_max);

/* Assert that every budget counter of the pool is back at rest. */
void ts_assert_pool_idle(hmb_pool_t *pool);

/*
 * Run the library's self-check (hmb_pool_check()) and fail the test with
 * its message if an invariant is broken. `flags`: HMB_CHECK_QUIESCENT when
 * nothing is in flight.
 */
#define ts_check(pool, flags) ts_check_at((pool), (flags), __FILE__, __LINE__)
void ts_check_at(hmb_pool_t *pool, unsigned flags, const char *file, int line);

/* A runner created (asserts success) but not started; the second with a
 * priority (ts_runner's is 0). `name` may be NULL. */
hmb_runner_t *ts_runner(hmb_pool_t *pool, size_t estimate, const char *name);
hmb_runner_t *ts_runner_prio(hmb_pool_t *pool, size_t estimate, int priority,
                             const char *name);

/* Snapshots (assert success). */
hmb_pool_stats_t ts_pool_stats(hmb_pool_t *pool);
hmb_runner_stats_t ts_runner_stats(const hmb_runner_t *runner);
hmb_memory_stats_t ts_memory_stats(hmb_pool_t *pool);

/*
 * The end of a test's pool: the self-check at rest, every budget counter
 * idle (ts_assert_pool_idle), then hmb_pool_destroy() must return 0.
 */
#define ts_pool_done(pool) ts_pool_done_at((pool), __FILE__, __LINE__)
void ts_pool_done_at(hmb_pool_t *pool, const char *file, int line);

/* A pool from a full configuration (asserts success). */
hmb_pool_t *ts_pool_cfg(const hmb_pool_config_t *cfg);

#endif /* HMB_TESTSUPPORT_H */
