/*
 * lock.c - the slow halves of lock.h: sleeping on and waking a lock word,
 * and the condition variable (see lock.h for both protocols).
 */
#define _GNU_SOURCE /* syscall() on glibc */
#include "platform/lock.h"

#include <errno.h>
#include <time.h>

#if HMB__LOCK_FUTEX

#include <linux/futex.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Sleep while `*word` == `val`, until woken or the absolute monotonic time
 * `*at` (NULL: none). 0 (woken, or the word had changed, or a signal
 * interrupted the sleep: every caller re-checks), or ETIMEDOUT. The
 * caller's errno is kept. A kernel that refuses the call (a sandbox without
 * futexes) gets a yield instead of a sleep: every wait loops on its
 * predicate, so the waits stay correct, only busier. */
static int hmb__futex_wait(_Atomic uint32_t *word, uint32_t val,
                           const struct timespec *at) {
  int saved = errno;
  /* WAIT_BITSET takes an absolute time, on the monotonic clock unless
   * FUTEX_CLOCK_REALTIME is given. */
  long rc = syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT_BITSET_PRIVATE, val,
                    at, NULL, FUTEX_BITSET_MATCH_ANY);
  int err = rc == 0 ? 0 : errno;
  errno = saved;
  if (err == ETIMEDOUT)
    return ETIMEDOUT;
  if (err != 0 && err != EAGAIN && err != EINTR)
    (void)sched_yield();
  return 0;
}

/* Wake up to `n` sleepers of `word`. The word may belong to a lock that
 * was released just before and has since been freed or reused by its
 * owner: a private futex wake on it only wakes whoever sleeps there now,
 * and every sleeper re-checks, so a stray wake is harmless (as for glibc's
 * mutexes). The caller's errno is kept. */
static void hmb__futex_wake(_Atomic uint32_t *word, int n) {
  int saved = errno;
  (void)syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE_PRIVATE, n, NULL, NULL,
                0);
  errno = saved;
}

void hmb__lock_wait(hmb__lock_t *l) {
  /* Acquire: pairs with the release exchange of hmb__unlock(). Swapping in
   * 2 marks the word as having sleepers, so the holder's release wakes one;
   * a zero read back means the lock was free and is now ours (marked 2,
   * which costs at most one needless wake). */
  while (atomic_exchange_explicit(&l->word, 2, memory_order_acquire) != 0)
    (void)hmb__futex_wait(&l->word, 2, NULL);
}

void hmb__lock_wake(hmb__lock_t *l) {
  hmb__futex_wake(&l->word, 1);
}

int hmb__cond_init(hmb__cond_t *c) {
  atomic_init(&c->seq, 0);
  c->waiters = c->wakes = 0;
  return 0;
}

void hmb__cond_fini(hmb__cond_t *c) {
  (void)c;
}

int hmb__cond_wait_until(hmb__cond_t *c, hmb__lock_t *l, uint64_t deadline_ns) {
  /* Relaxed: read under `l`, which orders it after every predicate change
   * made under `l` before it; a signal after that changes the value, which
   * the futex compares in the kernel. */
  uint32_t seq = atomic_load_explicit(&c->seq, memory_order_relaxed);
  c->waiters++;
  struct timespec at, *pat = NULL;
  if (deadline_ns != UINT64_MAX) {
    at.tv_sec = (time_t)(deadline_ns / 1000000000u);
    at.tv_nsec = (long)(deadline_ns % 1000000000u);
    pat = &at;
  }
  hmb__unlock(l);
  int rc = hmb__futex_wait(&c->seq, seq, pat);
  hmb__lock(l);
  c->waiters--;
  if (c->wakes > 0) /* one wake is spent, whoever the kernel woke */
    c->wakes--;
  return rc;
}

void hmb__cond_wait(hmb__cond_t *c, hmb__lock_t *l) {
  (void)hmb__cond_wait_until(c, l, UINT64_MAX);
}

void hmb__cond_wake(hmb__cond_t *c, int n) {
  c->wakes = n == 1 ? c->wakes + 1 : c->waiters;
  /* Relaxed: the waiters learn the predicate through the lock; the kernel
   * compares the new value with what a sleeper read. */
  atomic_fetch_add_explicit(&c->seq, 1, memory_order_relaxed);
  hmb__futex_wake(&c->seq, n);
}

#else /* pthread fallback */

#include "platform/os.h"

int hmb__cond_init(hmb__cond_t *c) {
  return hmb__os_cond_init(&c->cv);
}

void hmb__cond_fini(hmb__cond_t *c) {
  pthread_cond_destroy(&c->cv);
}

void hmb__cond_wait(hmb__cond_t *c, hmb__lock_t *l) {
  pthread_cond_wait(&c->cv, &l->mu);
}

int hmb__cond_wait_until(hmb__cond_t *c, hmb__lock_t *l, uint64_t deadline_ns) {
  return hmb__os_cond_wait_until(&c->cv, &l->mu, deadline_ns);
}

#endif
