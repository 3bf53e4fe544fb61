/*
 * lock.h - the mutex and condition variable of the library's busiest locks
 * (a pool's budget lock, an executor's lock and its completion stripes).
 *
 * On Linux a lock is one futex word and a condition variable one sequence
 * word: taking a free lock is one compare-and-swap and releasing it one
 * exchange, inline, where a pthread mutex spends about 55 instructions on
 * the pair (its type dispatch, owner bookkeeping and elision checks), and a
 * signal with nobody left to wake is one comparison. Elsewhere both are
 * the pthread objects, behind the same functions.
 *
 * The lock word (after Drepper, "Futexes Are Tricky", mutex 3): 0 free,
 * 1 held, 2 held and a thread may sleep on it. A taker that finds it held
 * swaps in 2 and sleeps while it reads back nonzero; a release that swaps
 * out 2 wakes one sleeper. Lock-free acquire and release orders make every
 * hold happen-before the next (what ThreadSanitizer sees, too).
 *
 * The condition variable: a waiter counts itself and reads the sequence
 * while it holds the lock, releases the lock and sleeps only while the
 * sequence still has that value; a signal increments the sequence, then
 * wakes one sleeper. A change of the predicate made under the lock before a
 * signal is therefore never missed: either the waiter read the sequence
 * after the change (and re-checks the predicate before waiting again), or
 * the increment makes its sleep return at once. Signals and broadcasts are
 * made under the lock, which also guards two counts: the waiters, and the
 * wakes sent that no waiter has yet come back from. A signal with every
 * waiter already woken (or none) changes nothing and makes no system call:
 * each of those waiters re-checks the predicate under the lock anyway.
 * Every waiter that comes back takes one wake off the count (whichever
 * thread the kernel woke: at least one waiter wakes per signal, which is
 * all a signal promises). Wake-ups may be spurious (a waiter that had not
 * yet slept when a signal woke another); every caller waits in a loop on
 * its predicate.
 *
 * Neither needs destroying on Linux; hmb__lock_fini() and hmb__cond_fini()
 * are for the pthread fallback. Not for memory shared between processes.
 * Neither changes errno. ThreadSanitizer sees the orders of the lock word
 * (so no false race), but not a mutex: its lock-order checks do not cover
 * these two locks.
 */
#ifndef HMB_SRC_PLATFORM_LOCK_H
#define HMB_SRC_PLATFORM_LOCK_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "platform/util.h"

/* The futex lock on 64-bit Linux (where the futex call's timespec is the
 * C library's: 32-bit targets with a 64-bit time_t would need
 * futex_time64); -DHMB__LOCK_FUTEX=0 builds the fallback there too (for
 * testing it). */
#ifndef HMB__LOCK_FUTEX
#if defined(__linux__) && (defined(__LP64__) || defined(_LP64))
#define HMB__LOCK_FUTEX 1
#else
#define HMB__LOCK_FUTEX 0
#endif
#endif

#if HMB__LOCK_FUTEX

typedef struct hmb__lock {
  _Atomic uint32_t word; /* 0 free, 1 held, 2 held with possible sleepers */
} hmb__lock_t;

typedef struct hmb__cond {
  _Atomic uint32_t seq; /* the futex word: incremented by every wake */
  /* --- under the waiters' lock --- */
  int waiters; /* threads in a wait */
  int wakes;   /* wakes sent that no waiter has come back from (<= waiters) */
} hmb__cond_t;

/* The slow halves (lock.c). */
void hmb__lock_wait(hmb__lock_t *l);
void hmb__lock_wake(hmb__lock_t *l);
void hmb__cond_wake(hmb__cond_t *c, int n);

static inline int hmb__lock_init(hmb__lock_t *l) {
  atomic_init(&l->word, 0);
  return 0;
}
static inline void hmb__lock_fini(hmb__lock_t *l) {
  (void)l;
}

static inline void hmb__lock(hmb__lock_t *l) {
  uint32_t free_word = 0;
  /* Acquire: pairs with the release exchange of hmb__unlock(). */
  if (HMB__LIKELY(atomic_compare_exchange_strong_explicit(
          &l->word, &free_word, 1, memory_order_acquire, memory_order_relaxed)))
    return;
  hmb__lock_wait(l);
}

static inline void hmb__unlock(hmb__lock_t *l) {
  /* Release: pairs with the acquire of the next taker (the CAS above, or
   * the exchange of hmb__lock_wait()). */
  if (HMB__UNLIKELY(
          atomic_exchange_explicit(&l->word, 0, memory_order_release) == 2))
    hmb__lock_wake(l);
}

/* Wake one waiter (at least one, if any wait), or all of them. Called
 * with the waiters' lock held, after the change of the predicate. */
static inline void hmb__cond_signal(hmb__cond_t *c) {
  if (c->wakes < c->waiters)
    hmb__cond_wake(c, 1);
}
static inline void hmb__cond_broadcast(hmb__cond_t *c) {
  if (c->wakes < c->waiters)
    hmb__cond_wake(c, INT32_MAX);
}

#else /* pthread fallback */

typedef struct hmb__lock {
  pthread_mutex_t mu;
} hmb__lock_t;

typedef struct hmb__cond {
  pthread_cond_t cv; /* on the monotonic clock */
} hmb__cond_t;

static inline int hmb__lock_init(hmb__lock_t *l) {
  return pthread_mutex_init(&l->mu, NULL);
}
static inline void hmb__lock_fini(hmb__lock_t *l) {
  pthread_mutex_destroy(&l->mu);
}
static inline void hmb__lock(hmb__lock_t *l) {
  pthread_mutex_lock(&l->mu);
}
static inline void hmb__unlock(hmb__lock_t *l) {
  pthread_mutex_unlock(&l->mu);
}
static inline void hmb__cond_signal(hmb__cond_t *c) {
  pthread_cond_signal(&c->cv);
}
static inline void hmb__cond_broadcast(hmb__cond_t *c) {
  pthread_cond_broadcast(&c->cv);
}

#endif

/* A condition variable that waits on the monotonic clock; 0 or nonzero
 * (only the pthread fallback can fail). */
int hmb__cond_init(hmb__cond_t *c);
void hmb__cond_fini(hmb__cond_t *c);
/* Release `l`, wait for a signal, take `l` again. Spurious wake-ups. */
void hmb__cond_wait(hmb__cond_t *c, hmb__lock_t *l);
/* The same, until the monotonic time `deadline_ns` at the latest
 * (UINT64_MAX: none): 0, or ETIMEDOUT once the deadline has passed. */
int hmb__cond_wait_until(hmb__cond_t *c, hmb__lock_t *l, uint64_t deadline_ns);
#endif /* HMB_SRC_PLATFORM_LOCK_H */
