/*
 * stress_registry.c - a runner's destroy against the last closes of its
 * buffers on other threads, while another thread walks the pool's runners.
 *
 * A destroy that finds every shard empty and nothing else holding the
 * runner takes it out of the registry in its own hold of the budget lock
 * (core/ledger.h), and its release frees the runner; otherwise the last
 * close does both. Each round here makes one runner, gives its buffers
 * (roots, some with a slice that outlives its root's handle) to closer
 * threads, and destroys the runner (plainly, after a finish, or after a
 * cancel) while they close them, so that either side may be the last one,
 * and a walker thread calls hmb_pool_stats(), hmb_pool_check() and
 * hmb_pool_describe() throughout. After every round: no runner left in the
 * registry, no live byte or buffer, no budget held, and the quiescent
 * self-check. AddressSanitizer catches a runner freed before its last
 * close; ThreadSanitizer, a walk that meets one being freed.
 *
 * Size: HMB_REGISTRY_ROUNDS (default 20000, a quarter under sanitizers).
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "testsupport.h"

enum { CLOSERS = 3, BUFS = 6 };

typedef struct closer {
  pthread_t th;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  hmb_buffer_t *todo[2 * BUFS];
  int n;     /* handles handed over this round */
  int round; /* the round they belong to */
  int done;  /* rounds whose handles are all closed */
  int bad;   /* a close that did not return HMB_OK */
  int quit;
} closer_t;

static closer_t closers[CLOSERS];
static atomic_int walker_quit;
static atomic_long walks, walk_bad;

static void *closer_main(void *arg) {
  closer_t *c = arg;
  pthread_mutex_lock(&c->mu);
  for (;;) {
    while (c->done == c->round && !c->quit)
      pthread_cond_wait(&c->cv, &c->mu);
    if (c->done == c->round)
      break;
    int n = c->n;
    hmb_buffer_t *todo[2 * BUFS];
    for (int i = 0; i < n; i++)
      todo[i] = c->todo[i];
    pthread_mutex_unlock(&c->mu);
    int bad = 0;
    for (int i = 0; i < n; i++)
      bad += hmb_buffer_close(todo[i]) != HMB_OK;
    pthread_mutex_lock(&c->mu);
    c->bad += bad;
    c->done = c->round;
    pthread_cond_broadcast(&c->cv);
  }
  pthread_mutex_unlock(&c->mu);
  return NULL;
}

static void *walker_main(void *arg) {
  hmb_pool_t *pool = arg;
  char buf[512];
  while (!atomic_load(&walker_quit)) {
    hmb_pool_stats_t s;
    if (hmb_pool_stats(pool, &s) != HMB_OK || s.runners < 0 || s.runners > 1 ||
        s.live_buffers < 0 || s.live_bytes < 0)
      atomic_fetch_add(&walk_bad, 1);
    if (hmb_pool_check(pool, 0, buf, sizeof buf) != HMB_OK) {
      fprintf(stderr, "stress_registry: check: %s\n", buf);
      atomic_fetch_add(&walk_bad, 1);
    }
    if (hmb_pool_describe(pool, 3, buf, sizeof buf) < 0)
      atomic_fetch_add(&walk_bad, 1);
    atomic_fetch_add(&walks, 1);
  }
  return NULL;
}

/* Hand `n` handles to closer `c` for round `round`. */
static void hand_over(closer_t *c, int round, hmb_buffer_t **h, int n) {
  pthread_mutex_lock(&c->mu);
  for (int i = 0; i < n; i++)
    c->todo[i] = h[i];
  c->n = n;
  c->round = round;
  pthread_cond_broadcast(&c->cv);
  pthread_mutex_unlock(&c->mu);
}

static void wait_closed(closer_t *c, int round) {
  pthread_mutex_lock(&c->mu);
  while (c->done != round)
    pthread_cond_wait(&c->cv, &c->mu);
  pthread_mutex_unlock(&c->mu);
}

/* Destroy `r` (plainly, after a finish, or after a cancel) while the
 * closers close its buffers; the runners the pool counts right after. */
static int32_t destroy_while_closing(hmb_pool_t *pool, hmb_runner_t *r,
                                     uint64_t *rng) {
  switch (ts_rand(rng) % 3) {
  case 0:
    break;
  case 1: {
    size_t ret = 0;
    assert_int_equal(hmb_runner_finish(r, 0, &ret), HMB_OK);
    break;
  }
  default:
    assert_int_equal(hmb_runner_cancel(r), HMB_OK);
    break;
  }
  hmb_runner_destroy(r);
  return ts_pool_stats(pool).runners;
}

static void test_destroy_races_last_closes(void **state) {
  (void)state;
  long rounds = ts_env_long("HMB_REGISTRY_ROUNDS", 20000);
  uint64_t rng = ts_seed("stress_registry");
  hmb_pool_t *pool = ts_pool((size_t)1 << 30, NULL, NULL);
  for (int i = 0; i < CLOSERS; i++) {
    closer_t *c = &closers[i];
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    assert_int_equal(pthread_create(&c->th, NULL, closer_main, c), 0);
  }
  pthread_t walker;
  assert_int_equal(pthread_create(&walker, NULL, walker_main, pool), 0);

  long early = 0, late = 0, destroyed_first = 0;
  for (int round = 1; round <= rounds; round++) {
    hmb_runner_t *r = ts_started_runner(pool, 64 * 1024);
    hmb_buffer_t *h[CLOSERS][2 * BUFS];
    int n[CLOSERS] = {0};
    /* Some rounds hand nothing over: the destroy finds every shard empty. */
    int nbufs = (int)(ts_rand(&rng) % (BUFS + 1));
    if (ts_rand(&rng) % 4 == 0)
      nbufs = 0;
    size_t bytes = 0;
    for (int i = 0; i < nbufs; i++) {
      size_t size = 1 + (size_t)(ts_rand(&rng) % 8192);
      bytes += size;
      hmb_buffer_t *b = NULL;
      assert_int_equal(hmb_runner_alloc(r, size, 0, &b), HMB_OK);
      int to = (int)(ts_rand(&rng) % CLOSERS);
      if (ts_rand(&rng) % 3 == 0) { /* a slice, closed by another closer */
        hmb_buffer_t *s = NULL;
        assert_int_equal(hmb_buffer_slice(b, 0, size, &s), HMB_OK);
        int to2 = (to + 1) % CLOSERS;
        h[to2][n[to2]++] = s;
      }
      h[to][n[to]++] = b;
    }
    /* One round in four destroys before handing anything over: the
     * runner must then stay registered, with its live buffers counted,
     * until the closers are done. */
    if (ts_rand(&rng) % 4 == 0) {
      hmb_runner_destroy(r);
      hmb_pool_stats_t s = ts_pool_stats(pool);
      assert_int_equal(s.runners, nbufs > 0 ? 1 : 0);
      assert_int_equal(s.live_bytes, (int64_t)bytes);
      assert_int_equal(s.live_buffers, nbufs);
      for (int i = 0; i < CLOSERS; i++)
        hand_over(&closers[i], round, h[i], n[i]);
      destroyed_first++;
    } else {
      for (int i = 0; i < CLOSERS; i++)
        hand_over(&closers[i], round, h[i], n[i]);
      /* How many runners the registry holds just after the destroy: 0
       * when its release was the last (every buffer closed already), 1
       * when a buffer's last close is still to come. */
      if (destroy_while_closing(pool, r, &rng) == 0)
        early++;
      else
        late++;
    }
    for (int i = 0; i < CLOSERS; i++)
      wait_closed(&closers[i], round);
    hmb_pool_stats_t s = ts_pool_stats(pool);
    assert_int_equal(s.runners, 0);
    assert_int_equal(s.live_bytes, 0);
    assert_int_equal(s.live_buffers, 0);
    assert_int_equal(s.held, 0);
    assert_int_equal(s.running, 0);
    ts_check(pool, HMB_CHECK_QUIESCENT);
  }

  atomic_store(&walker_quit, 1);
  pthread_join(walker, NULL);
  for (int i = 0; i < CLOSERS; i++) {
    closer_t *c = &closers[i];
    pthread_mutex_lock(&c->mu);
    c->quit = 1;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
    pthread_join(c->th, NULL);
    assert_int_equal(c->bad, 0);
    pthread_cond_destroy(&c->cv);
    pthread_mutex_destroy(&c->mu);
  }
  printf("stress_registry: %ld rounds (destroyed before the hand-over in "
         "%ld; while closing: the registry empty right after the destroy in "
         "%ld, a close still to come in %ld), %ld walks\n",
         rounds, destroyed_first, early, late, atomic_load(&walks));
  assert_true(destroyed_first > 0 && early > 0 && late > 0);
  assert_int_equal(atomic_load(&walk_bad), 0);
  assert_true(atomic_load(&walks) > 0);
  ts_pool_done(pool);
}

int main(void) {
  ts_watchdog_arm("stress_registry", 240);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_destroy_races_last_closes),
  };
  int rc = cmocka_run_group_tests(tests, NULL, NULL);
  ts_watchdog_disarm();
  return rc;
}
