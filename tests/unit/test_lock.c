/*
 * test_lock.c - white-box: the platform layer's lock and condition
 * variable (src/platform/lock.h), which guard a pool's budget and an
 * executor's queue.
 *
 * Covered: mutual exclusion under contention (a plain counter incremented
 * under the lock by several threads ends exact); a signal is never lost (a
 * ping-pong of many rounds between two threads, each waiting with a
 * deadline, which a lost wake-up turns into a timeout); a signal with a
 * waiter that has not yet slept wakes it too; a broadcast wakes every
 * waiter; a timed wait returns ETIMEDOUT only once its deadline has passed,
 * holding the lock again either way (the counter stays exact with waits
 * and timeouts mixed into the increments).
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

#include "platform/lock.h"
#include "platform/os.h"
#include "testsupport.h"

#define SEC INT64_C(1000000000)

/* ---- mutual exclusion ----------------------------------------------------
 */

typedef struct counter {
  hmb__lock_t lock;
  hmb__cond_t cond; /* signalled by nobody: timed waits only */
  long value;       /* under lock, written plainly */
  int rounds;
  int timed_every; /* 0: none; else a 0-length timed wait every n rounds */
  atomic_int timeouts;
} counter_t;

static void *counter_worker(void *arg) {
  counter_t *c = arg;
  for (int i = 0; i < c->rounds; i++) {
    hmb__lock(&c->lock);
    long v = c->value;
    if (c->timed_every && i % c->timed_every == 0) {
      /* A deadline already past: returns at once, the lock held again,
       * after letting another thread in meanwhile. */
      if (hmb__cond_wait_until(&c->cond, &c->lock, hmb__os_now_ns()) ==
          ETIMEDOUT)
        atomic_fetch_add(&c->timeouts, 1);
      v = c->value; /* others may have run while it waited */
    }
    c->value = v + 1;
    hmb__unlock(&c->lock);
  }
  return NULL;
}

static void run_counter(int threads, int rounds, int timed_every) {
  counter_t c;
  assert_int_equal(hmb__lock_init(&c.lock), 0);
  assert_int_equal(hmb__cond_init(&c.cond), 0);
  c.value = 0;
  c.rounds = rounds;
  c.timed_every = timed_every;
  atomic_init(&c.timeouts, 0);
  pthread_t th[8];
  for (int i = 0; i < threads; i++)
    assert_int_equal(pthread_create(&th[i], NULL, counter_worker, &c), 0);
  for (int i = 0; i < threads; i++)
    pthread_join(th[i], NULL);
  assert_int_equal(c.value, (long)threads * rounds);
  if (timed_every) /* nobody signals: every wait timed out */
    assert_int_equal(atomic_load(&c.timeouts),
                     threads * ((rounds + timed_every - 1) / timed_every));
  hmb__cond_fini(&c.cond);
  hmb__lock_fini(&c.lock);
}

static void test_lock_excludes_under_contention(void **state) {
  (void)state;
  run_counter(4, 200000, 0);
}

static void test_timed_waits_take_the_lock_back(void **state) {
  (void)state;
  run_counter(4, 20000, 7);
}

/* ---- signals ---------------------------------------------------------------
 */

/* Two threads hand a turn back and forth; each waits for its turn with a
 * deadline, so a lost signal fails the run instead of hanging it. */
typedef struct pingpong {
  hmb__lock_t lock;
  hmb__cond_t cond[2];
  int turn; /* under lock: whose turn, 0 or 1 */
  int rounds;
  atomic_int timed_out;
} pingpong_t;

typedef struct player {
  pingpong_t *p;
  int me;
} player_t;

static void *pingpong_player(void *arg) {
  player_t *pl = arg;
  pingpong_t *p = pl->p;
  for (int i = 0; i < p->rounds; i++) {
    hmb__lock(&p->lock);
    uint64_t deadline = hmb__os_now_ns() + 10 * SEC;
    while (p->turn != pl->me) {
      /* A timeout means a lost signal: the other hands the turn over in
       * microseconds, far inside the deadline. */
      if (hmb__cond_wait_until(&p->cond[pl->me], &p->lock, deadline) ==
          ETIMEDOUT) {
        atomic_store(&p->timed_out, 1);
        p->turn = pl->me; /* stop the game: both end their loops */
        p->rounds = 0;
        break;
      }
    }
    p->turn = !pl->me;
    /* Half of the time in a hold of its own: the signal may come before or
     * after its receiver sleeps. */
    if (i & 1) {
      hmb__unlock(&p->lock);
      hmb__lock(&p->lock);
    }
    hmb__cond_signal(&p->cond[!pl->me]);
    hmb__unlock(&p->lock);
  }
  return NULL;
}

static void test_signals_are_never_lost(void **state) {
  (void)state;
  pingpong_t p;
  assert_int_equal(hmb__lock_init(&p.lock), 0);
  assert_int_equal(hmb__cond_init(&p.cond[0]), 0);
  assert_int_equal(hmb__cond_init(&p.cond[1]), 0);
  p.turn = 0;
  p.rounds = 20000;
  atomic_init(&p.timed_out, 0);
  player_t pl[2] = {{&p, 0}, {&p, 1}};
  pthread_t th[2];
  for (int i = 0; i < 2; i++)
    assert_int_equal(pthread_create(&th[i], NULL, pingpong_player, &pl[i]), 0);
  for (int i = 0; i < 2; i++)
    pthread_join(th[i], NULL);
  assert_int_equal(atomic_load(&p.timed_out), 0);
  assert_int_equal(p.rounds, 20000);
  hmb__cond_fini(&p.cond[1]);
  hmb__cond_fini(&p.cond[0]);
  hmb__lock_fini(&p.lock);
}

/* Waiters on one condition, a flag set under the lock and broadcast. */
typedef struct gate {
  hmb__lock_t lock;
  hmb__cond_t cond;
  int open;    /* under lock */
  int waiting; /* under lock: waiters that have checked `open` */
  int passed;  /* under lock */
  int timed_out;
} gate_t;

static void *gate_waiter(void *arg) {
  gate_t *g = arg;
  hmb__lock(&g->lock);
  g->waiting++;
  uint64_t deadline = hmb__os_now_ns() + 10 * SEC;
  /* A timeout here means the broadcast did not wake this waiter (it comes
   * long before the deadline), whatever the flag says by then. */
  while (!g->open)
    if (hmb__cond_wait_until(&g->cond, &g->lock, deadline) == ETIMEDOUT) {
      g->timed_out++;
      break;
    }
  g->passed += g->open;
  hmb__unlock(&g->lock);
  return NULL;
}

static int gate_all_waiting(void *arg) {
  gate_t *g = arg;
  hmb__lock(&g->lock);
  int n = g->waiting;
  hmb__unlock(&g->lock);
  return n == 6;
}

static void test_broadcast_wakes_every_waiter(void **state) {
  (void)state;
  gate_t g = {0};
  assert_int_equal(hmb__lock_init(&g.lock), 0);
  assert_int_equal(hmb__cond_init(&g.cond), 0);
  pthread_t th[6];
  for (int i = 0; i < 6; i++)
    assert_int_equal(pthread_create(&th[i], NULL, gate_waiter, &g), 0);
  /* Every waiter has checked the flag under the lock (most sleep by now;
   * one that has not yet slept must wake as well). */
  assert_true(ts_wait_for(gate_all_waiting, &g, 20000));
  hmb__lock(&g.lock);
  g.open = 1;
  hmb__cond_broadcast(&g.cond);
  hmb__unlock(&g.lock);
  for (int i = 0; i < 6; i++)
    pthread_join(th[i], NULL);
  assert_int_equal(g.timed_out, 0);
  assert_int_equal(g.passed, 6);
  hmb__cond_fini(&g.cond);
  hmb__lock_fini(&g.lock);
}

/* A timed wait that nobody signals returns ETIMEDOUT, not before its
 * deadline, with the lock held (a second thread can take it only after the
 * waiter released it again). */
static void test_timed_wait_ends_at_its_deadline(void **state) {
  (void)state;
  hmb__lock_t lock;
  hmb__cond_t cond;
  assert_int_equal(hmb__lock_init(&lock), 0);
  assert_int_equal(hmb__cond_init(&cond), 0);
  for (int i = 0; i < 5; i++) {
    hmb__lock(&lock);
    uint64_t deadline = hmb__os_now_ns() + 20000000u; /* 20 ms */
    int rc;
    do
      rc = hmb__cond_wait_until(&cond, &lock, deadline);
    while (rc == 0); /* spurious wake-ups may return 0 */
    assert_int_equal(rc, ETIMEDOUT);
    assert_true(hmb__os_now_ns() >= deadline);
    hmb__unlock(&lock);
  }
  hmb__cond_fini(&cond);
  hmb__lock_fini(&lock);
}

int main(void) {
  ts_watchdog_arm("test_lock", 120);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_lock_excludes_under_contention),
      cmocka_unit_test(test_timed_waits_take_the_lock_back),
      cmocka_unit_test(test_signals_are_never_lost),
      cmocka_unit_test(test_broadcast_wakes_every_waiter),
      cmocka_unit_test(test_timed_wait_ends_at_its_deadline),
  };
  int rc = cmocka_run_group_tests(tests, NULL, NULL);
  ts_watchdog_disarm();
  return rc;
}
