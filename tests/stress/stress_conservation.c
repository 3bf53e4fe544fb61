/*
 * stress_conservation.c - budget conservation after a multi-threaded run.
 *
 * Eight or more threads each run many scan tasks on one small pool: start
 * (with a short timeout and retries), allocate (often beyond the estimate,
 * so they borrow), slice, hand some buffers to other threads, close,
 * try-free, declare the real need, finish, destroy. Each thread checks its
 * own runner between operations (live <= held, spare <= held - live, beyond
 * <= held; live at least what it knows is live) and now and then runs the
 * library's self-check (hmb_pool_check, which holds at any instant); at the
 * end the self-check at rest passes and every counter is back at its
 * initial value.
 *
 * Sizes: HMB_CONSERVATION_THREADS (at least 8), HMB_CONSERVATION_ITERS
 * (tasks per thread; default 2000, a quarter under sanitizers).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "testsupport.h"

enum { MAX_LOCAL = 8, HANDOFF_CAP = 16 };

static hmb_pool_t *g_pool;
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static hmb_buffer_t *g_handoff[HANDOFF_CAP];
static int g_handoff_n;
static atomic_long g_starts, g_allocs, g_failures;
static long g_iters;
static uint64_t g_seed;

/* Put a buffer in the shared hand-off list, or close it if the list is full. */
static void handoff_put(hmb_buffer_t *b) {
  pthread_mutex_lock(&g_mu);
  if (g_handoff_n < HANDOFF_CAP) {
    g_handoff[g_handoff_n++] = b;
    b = NULL;
  }
  pthread_mutex_unlock(&g_mu);
  if (b)
    hmb_buffer_close(b);
}

static void handoff_close_some(uint64_t *rng) {
  hmb_buffer_t *take[4];
  int n = 0;
  pthread_mutex_lock(&g_mu);
  int want = (int)(ts_rand(rng) % 4);
  while (n < want && g_handoff_n > 0)
    take[n++] = g_handoff[--g_handoff_n];
  pthread_mutex_unlock(&g_mu);
  for (int i = 0; i < n; i++)
    hmb_buffer_close(take[i]);
}

static void check_runner(hmb_runner_t *r, int64_t my_live, uint64_t *rng) {
  (void)my_live;
  hmb_runner_stats_t s;
  hmb_runner_stats(r, &s);
  /* Each field in its own range; the relations between them (R-I1, R-I3)
   * hold under the budget lock, which the self-check takes. Live bytes are
   * exact only at rest (stats.h), and other threads close the slices this
   * one handed off. */
  if (s.held < 0 || s.spare < 0 || s.beyond < 0 || s.live_buffers < 0) {
    atomic_fetch_add(&g_failures, 1);
    fprintf(stderr,
            "runner counter out of range: held %lld spare %lld beyond %lld "
            "buffers %lld\n",
            (long long)s.held, (long long)s.spare, (long long)s.beyond,
            (long long)s.live_buffers);
  }
  if (ts_rand(rng) % 8 == 0) {
    char why[256];
    if (hmb_pool_check(g_pool, 0, why, sizeof why) != 0) {
      atomic_fetch_add(&g_failures, 1);
      fprintf(stderr, "hmb_pool_check: %s\n", why);
    }
  }
}

/* With nothing of this runner in flight on other threads (its own buffers
 * only, none handed off yet): live is exact and within held. */
static void check_runner_alone(hmb_runner_t *r, int64_t my_live) {
  hmb_runner_stats_t s;
  hmb_runner_stats(r, &s);
  if (s.live != my_live || s.live > s.held || s.held != s.live + s.spare) {
    atomic_fetch_add(&g_failures, 1);
    fprintf(stderr,
            "runner at rest: live %lld (mine %lld) held %lld spare "
            "%lld\n",
            (long long)s.live, (long long)my_live, (long long)s.held,
            (long long)s.spare);
  }
}

static void *worker(void *arg) {
  uint64_t rng = g_seed ^ (0x9e3779b97f4a7c15ULL * (uintptr_t)arg);
  for (long it = 0; it < g_iters; it++) {
    hmb_runner_config_t cfg;
    hmb_runner_config_init(&cfg);
    cfg.estimate = ts_rand(&rng) % 2000;
    cfg.priority = (int)(ts_rand(&rng) % 3);
    hmb_runner_t *r = NULL;
    if (hmb_runner_create(g_pool, &cfg, &r) != HMB_OK) {
      atomic_fetch_add(&g_failures, 1);
      continue;
    }
    int rc;
    while ((rc = hmb_runner_start(r, 2 * 1000 * 1000)) == HMB_ETIMEDOUT)
      handoff_close_some(&rng);
    if (rc != HMB_OK) {
      atomic_fetch_add(&g_failures, 1);
      hmb_runner_destroy(r);
      continue;
    }
    atomic_fetch_add(&g_starts, 1);
    hmb_buffer_t *local[MAX_LOCAL];
    int64_t sizes[MAX_LOCAL];
    int n = 0;
    int64_t my_live = 0;
    int handed = 0; /* a slice of this runner is with other threads */
    int ops = 2 + (int)(ts_rand(&rng) % 10);
    for (int k = 0; k < ops; k++) {
      unsigned what = (unsigned)(ts_rand(&rng) % 10);
      if (what < 5 && n < MAX_LOCAL) {
        size_t sz = 1 + ts_rand(&rng) % 1500;
        hmb_buffer_t *b = NULL;
        if (hmb_runner_alloc(r, sz, 0, &b) != HMB_OK) {
          atomic_fetch_add(&g_failures, 1);
          continue;
        }
        memset(hmb_buffer_data(b), (int)k, sz);
        atomic_fetch_add(&g_allocs, 1);
        local[n] = b;
        sizes[n++] = (int64_t)sz;
        my_live += (int64_t)sz;
      } else if (what < 7 && n > 0) {
        int i = (int)(ts_rand(&rng) % (uint64_t)n);
        hmb_buffer_t *s = NULL;
        if (ts_rand(&rng) % 2 &&
            hmb_buffer_slice(local[i], 0, (size_t)sizes[i], &s) == HMB_OK) {
          handoff_put(s); /* the slice keeps the bytes live elsewhere */
          handed = 1;
        }
        hmb_buffer_close(local[i]);
        my_live -= sizes[i]; /* a handed-off slice is not ours to count */
        local[i] = local[--n];
        sizes[i] = sizes[n];
      } else if (what == 7) {
        hmb_runner_try_free(r, ts_rand(&rng) % 1000, NULL);
      } else if (what == 8) {
        hmb_runner_set_need(r, ts_rand(&rng) % 1500, NULL);
      } else {
        handoff_close_some(&rng);
      }
      check_runner(r, my_live, &rng);
      if (!handed)
        check_runner_alone(r, my_live);
    }
    size_t ret = 0;
    if (hmb_runner_finish(r, 0, &ret) != HMB_OK)
      atomic_fetch_add(&g_failures, 1);
    /* Buffers outlive the task: hand them over, or close them. */
    for (int i = 0; i < n; i++) {
      if (ts_rand(&rng) % 2)
        handoff_put(local[i]);
      else
        hmb_buffer_close(local[i]);
    }
    hmb_runner_destroy(r);
  }
  return NULL;
}

static void test_conservation_multithreaded(void **state) {
  (void)state;
  long threads = ts_env_long("HMB_CONSERVATION_THREADS", 8);
  if (threads < 8)
    threads = 8;
  g_iters = ts_env_long("HMB_CONSERVATION_ITERS", 2000);
  g_seed = ts_seed("stress_conservation");
  ts_watchdog_arm("conservation", 240);
  g_pool = ts_pool(32768, NULL, NULL);
  hmb_pool_stats_t initial;
  hmb_pool_stats(g_pool, &initial);

  pthread_t th[64];
  if (threads > 64)
    threads = 64;
  for (long i = 0; i < threads; i++)
    assert_int_equal(pthread_create(&th[i], NULL, worker, (void *)(i + 1)), 0);
  for (long i = 0; i < threads; i++)
    pthread_join(th[i], NULL);
  for (int i = 0; i < g_handoff_n; i++)
    hmb_buffer_close(g_handoff[i]);
  g_handoff_n = 0;
  ts_watchdog_disarm();

  assert_int_equal(atomic_load(&g_failures), 0);
  hmb_pool_stats_t st;
  hmb_pool_stats(g_pool, &st);
  fprintf(stderr,
          "conservation: %ld threads, %ld tasks, %ld allocations, %llu "
          "borrows (%llu over-commit), %llu start over-commits, peak held "
          "%lld of %lld\n",
          threads, atomic_load(&g_starts), atomic_load(&g_allocs),
          (unsigned long long)st.borrows,
          (unsigned long long)st.borrow_overcommits,
          (unsigned long long)st.acquire_overcommits, (long long)st.peak_held,
          (long long)st.limit);
  assert_true(atomic_load(&g_allocs) >= g_iters);
  assert_int_equal((long)st.acquires, atomic_load(&g_starts));
  /* Every counter with a resting value is back at it. */
  ts_check(g_pool, HMB_CHECK_QUIESCENT);
  ts_assert_pool_idle(g_pool);
  assert_int_equal(st.held, initial.held);
  assert_int_equal(st.available, initial.available);
  assert_int_equal(st.runners, 0);
  hmb_memory_stats_t m;
  hmb_pool_memory_stats(g_pool, &m);
  assert_int_equal(m.pageable_live, 0);
  assert_int_equal(m.pinned_live, 0);
  assert_int_equal(hmb_pool_destroy(g_pool), HMB_OK);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_conservation_multithreaded),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
