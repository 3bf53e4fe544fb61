/*
 * test_hot_path.c - white-box: allocating and freeing within a runner's
 * held budget takes no pool lock (hmb/runner.h: "an allocation that fits
 * in spare takes no lock"; the budget lock also guards the registry of
 * runners), and the calls documented lock-free (hmb_pool_memory_stats,
 * hmb_runner_stats, hmb_runner_state, hmb_pool_limit) take it neither.
 *
 * The test holds the budget lock while another thread makes the calls; if
 * any of them took it the thread would block and the wait below would time
 * out.
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdatomic.h>

#include <stdlib.h>
#include <string.h>

#include "core/pool.h"
#include "platform/os.h"
#include "testsupport.h"

typedef struct hot {
  hmb_runner_t *r;
  atomic_int done;
  int rc;
  size_t size;
} hot_t;

static void *hot_path_worker(void *arg) {
  hot_t *h = arg;
  for (int i = 0; i < 1000 && h->rc == 0; i++) {
    hmb_buffer_t *b = NULL, *s = NULL;
    h->rc = hmb_runner_alloc(h->r, h->size, 0, &b);
    if (h->rc == 0)
      h->rc = hmb_buffer_slice(b, 0, h->size / 2, &s);
    if (h->rc == 0) {
      hmb_buffer_close(b);
      hmb_buffer_close(s);
    }
  }
  atomic_store(&h->done, 1);
  return NULL;
}

/* ts_wait_for()'s predicate: whether the atomic_int at `arg` is set. */
static int flag_set(void *arg) {
  return atomic_load((atomic_int *)arg);
}

static void run_hot_path(size_t size) {
  hmb_pool_t *pool = ts_pool(1 << 22, NULL, NULL);
  hot_t h = {ts_started_runner(pool, 1 << 22), 0, 0, size};
  /* Warm the thread caches and the runner's shards outside the locks: the
   * first allocation of a thread may set up its caches. */
  pthread_t th;
  pthread_create(&th, NULL, hot_path_worker, &h);
  pthread_join(th, NULL);
  assert_int_equal(h.rc, 0);
  atomic_store(&h.done, 0);
  hmb__lock(&pool->home.ledger.lock); /* held for the run below */
  pthread_create(&th, NULL, hot_path_worker, &h);
  int finished = ts_wait_for(flag_set, &h.done, 20000);
  hmb__unlock(&pool->home.ledger.lock);
  pthread_join(th, NULL);
  assert_true(finished);
  assert_int_equal(h.rc, HMB_OK);
  hmb_runner_stats_t s = ts_runner_stats(h.r);
  assert_int_equal(s.allocations, 2000);
  assert_int_equal(s.live, 0);
  assert_int_equal(s.held, 1 << 22);
  assert_int_equal(s.borrows, 0);
  hmb_runner_destroy(h.r);
  ts_pool_done(pool);
}

static void test_hot_path_small_blocks_take_no_pool_lock(void **state) {
  (void)state;
  run_hot_path(1024);
}

/* Large blocks: mappings behind the warm cache (no budget lock either). */
static void test_hot_path_large_blocks_take_no_pool_lock(void **state) {
  (void)state;
  run_hot_path(512 * 1024);
}

typedef struct reader {
  hmb_pool_t *pool;
  hmb_runner_t *r;
  atomic_int done;
  int bad;
} reader_t;

static void *lock_free_reader(void *arg) {
  reader_t *x = arg;
  for (int i = 0; i < 1000; i++) {
    hmb_memory_stats_t ms;
    hmb_runner_stats_t rs;
    x->bad += hmb_pool_memory_stats(x->pool, &ms) != 0;
    x->bad += ms.pageable_live != 1000;
    x->bad += hmb_runner_stats(x->r, &rs) != 0;
    x->bad += rs.live != 1000 || rs.held != 4096;
    x->bad += hmb_runner_state(x->r) != HMB_RUNNER_RUNNING;
    x->bad += hmb_pool_limit(x->pool) != (size_t)1 << 20;
  }
  atomic_store(&x->done, 1);
  return NULL;
}

static void test_lock_free_stats_take_no_pool_lock(void **state) {
  (void)state;
  hmb_pool_t *pool = ts_pool(1 << 20, NULL, NULL);
  reader_t x = {pool, ts_started_runner(pool, 4096), 0, 0};
  hmb_buffer_t *b = NULL;
  assert_int_equal(hmb_runner_alloc(x.r, 1000, 0, &b), HMB_OK);
  hmb__lock(&pool->home.ledger.lock);
  pthread_t th;
  pthread_create(&th, NULL, lock_free_reader, &x);
  int finished = ts_wait_for(flag_set, &x.done, 20000);
  hmb__unlock(&pool->home.ledger.lock);
  pthread_join(th, NULL);
  assert_true(finished);
  assert_int_equal(x.bad, 0);
  hmb_buffer_close(b);
  hmb_runner_destroy(x.r);
  ts_pool_done(pool);
}

/*
 * A pool's memory layer serves every thread for the pool's life, and its
 * shards stay with the thread that claimed them. A thread whose index
 * agrees with another live allocating thread's modulo the runner's shard
 * count must still own the shard of its own runner (and so take the quick
 * paths): here the test's thread allocates on the pool first, then
 * 3 x HMB__SHARDS + 1 threads, each kept alive to the end (so that every
 * index stays taken), allocate on runners of their own one after another.
 */
typedef struct parked {
  hmb_pool_t *pool;
  unsigned idx;
  unsigned owner, want;
  int64_t live_after;
  atomic_int probed;
  pthread_barrier_t *hold;
} parked_t;

static void *parked_main(void *arg) {
  parked_t *t = arg;
  t->idx = hmb__os_thread_index();
  hmb_runner_t *r = ts_started_runner(t->pool, 1 << 20);
  hmb_buffer_t *b = NULL;
  if (hmb_runner_alloc(r, 100, 0, &b) == HMB_OK) {
    unsigned sh = t->idx & (HMB__SHARDS - 1u);
    t->owner = atomic_load(&r->acct.shard[sh].owner);
    t->live_after = ts_runner_stats(r).live;
    hmb_buffer_close(b);
  }
  t->want = t->idx + 2; /* its index + 1, + 1 (platform/shard.h) */
  hmb_runner_destroy(r);
  atomic_store(&t->probed, 1);
  pthread_barrier_wait(t->hold); /* parked: its index stays taken */
  return NULL;
}

static void test_every_thread_owns_its_runner_shard(void **state) {
  (void)state;
  hmb_pool_t *pool = ts_pool(1 << 24, NULL, NULL);
  hmb_runner_t *r0 = ts_started_runner(pool, 1 << 20);
  hmb_buffer_t *b = NULL;
  assert_int_equal(hmb_runner_alloc(r0, 100, 0, &b), HMB_OK);
  hmb_buffer_close(b);
  enum { MAXT = 3 * HMB__SHARDS + 1 };
  pthread_t th[MAXT];
  parked_t *t = calloc(MAXT, sizeof *t);
  assert_non_null(t);
  pthread_barrier_t hold;
  pthread_barrier_init(&hold, NULL, MAXT + 1);
  for (int i = 0; i < MAXT; i++) {
    t[i].pool = pool;
    t[i].hold = &hold;
    atomic_init(&t[i].probed, 0);
    assert_int_equal(pthread_create(&th[i], NULL, parked_main, &t[i]), 0);
    assert_true(ts_wait_for(flag_set, &t[i].probed, 20000));
  }
  pthread_barrier_wait(&hold);
  for (int i = 0; i < MAXT; i++)
    pthread_join(th[i], NULL);
  pthread_barrier_destroy(&hold);
  int owned = 0;
  for (int i = 0; i < MAXT; i++) {
    assert_int_equal(t[i].live_after, 100);
    owned += t[i].owner == t[i].want;
  }
  assert_int_equal(owned, MAXT);
  free(t);
  /* The self-check at rest knows the rule: a runner shard owned by a
   * thread index that owns no memory shard of the pool is reported. */
  char msg[512];
  assert_int_equal(hmb_pool_check(pool, HMB_CHECK_QUIESCENT, msg, sizeof msg),
                   HMB_OK);
  unsigned free_sh = HMB__SHARDS;
  for (unsigned i = 0; i < HMB__SHARDS && free_sh == HMB__SHARDS; i++)
    if (atomic_load(&r0->acct.shard[i].owner) == 0)
      free_sh = i;
  assert_true(free_sh < HMB__SHARDS);
  unsigned ghost = free_sh + 4096u * HMB__SHARDS; /* no thread has it */
  atomic_store(&r0->acct.shard[free_sh].owner, ghost + 2u);
  assert_int_equal(hmb_pool_check(pool, HMB_CHECK_QUIESCENT, msg, sizeof msg),
                   HMB_EFAILED);
  assert_non_null(strstr(msg, "(S-I1)"));
  atomic_store(&r0->acct.shard[free_sh].owner, 0u);
  assert_int_equal(hmb_pool_check(pool, HMB_CHECK_QUIESCENT, msg, sizeof msg),
                   HMB_OK);
  hmb_runner_destroy(r0);
  ts_pool_done(pool);
}

int main(void) {
  ts_watchdog_arm("test_hot_path", 120);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_hot_path_small_blocks_take_no_pool_lock),
      cmocka_unit_test(test_hot_path_large_blocks_take_no_pool_lock),
      cmocka_unit_test(test_lock_free_stats_take_no_pool_lock),
      cmocka_unit_test(test_every_thread_owns_its_runner_shard),
  };
  int rc = cmocka_run_group_tests(tests, NULL, NULL);
  ts_watchdog_disarm();
  return rc;
}
