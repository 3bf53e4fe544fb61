/*
 * shard.h - counters that threads update without sharing a cache line.
 *
 * A gauge (a current value with a peak, such as live bytes) is kept as
 *   - a value per shard (one shard per thread index modulo HMB__SHARDS, each
 *     on its owner's cache line), and beside it the part of that value
 *     already folded into the top;
 *   - one `hmb__gauge_top_t` (total of the folded parts + peak) on a line of
 *     its own, written rarely and read on every update, so it stays shared
 *     in every cache.
 * An update adds to its shard's value (one relaxed RMW on a line the thread
 * owns) and folds the shard into the top only when it has drifted by
 * HMB__GAUGE_STEP from what was folded, or could set a new peak. Hence:
 *   exact value = the sum of the shards' values: a reader adds them up, and
 *                 a fold running meanwhile changes none of them, so the sum
 *                 is off only by updates in flight;
 *   recorded peak: exact when one thread updates the gauge at a time; with
 *                 several, within (shards in use - 1) x HMB__GAUGE_STEP.
 * Every access is relaxed: a gauge orders nothing, and readers want values,
 * not happens-before. This file is the only writer of a gauge's fields.
 */
#ifndef HMB_SRC_PLATFORM_SHARD_H
#define HMB_SRC_PLATFORM_SHARD_H

#include <stdatomic.h>
#include <stdint.h>

#include "platform/os.h"
#include "platform/util.h"

/* Shards per sharded object (a power of two). */
#define HMB__SHARDS 4u
/* Drift folded into the top at the latest (bytes or counts). */
#define HMB__GAUGE_STEP ((int64_t)1024 * 1024)

/* The shared part of a gauge. */
typedef struct hmb__gauge_top {
  _Atomic int64_t total; /* sum of the folded parts of every shard */
  _Atomic int64_t peak;  /* highest total seen, or total + a shard's drift */
} hmb__gauge_top_t;

/* The shard of the calling thread. */
static inline unsigned hmb__shard_index(void) {
  return hmb__os_thread_index() & (HMB__SHARDS - 1u);
}

/* Fold a shard into `top` (and `outer`, if not NULL): publish what changed
 * since its last fold. Concurrent folds of one shard each publish the
 * difference between what they saw and what the one before them had, so
 * the totals still add up. */
static inline void hmb__gauge_fold(const _Atomic int64_t *value,
                                   _Atomic int64_t *folded,
                                   hmb__gauge_top_t *top,
                                   hmb__gauge_top_t *outer) {
  int64_t v = atomic_load_explicit(value, memory_order_relaxed);
  int64_t d = v - atomic_exchange_explicit(folded, v, memory_order_relaxed);
  int64_t t =
      atomic_fetch_add_explicit(&top->total, d, memory_order_relaxed) + d;
  hmb__peak_update(&top->peak, t);
  if (outer) {
    t = atomic_fetch_add_explicit(&outer->total, d, memory_order_relaxed) + d;
    hmb__peak_update(&outer->peak, t);
  }
}

/* Would a shard at drift `u` set a new peak of `top`? */
static inline int hmb__gauge_peaks(const hmb__gauge_top_t *top, int64_t u) {
  return atomic_load_explicit(&top->total, memory_order_relaxed) + u >
         atomic_load_explicit(&top->peak, memory_order_relaxed);
}

/* Add `delta` to a shard; fold when it must (see above). */
static inline void hmb__gauge_add(_Atomic int64_t *value,
                                  _Atomic int64_t *folded,
                                  hmb__gauge_top_t *top, int64_t delta) {
  int64_t v =
      atomic_fetch_add_explicit(value, delta, memory_order_relaxed) + delta;
  int64_t u = v - atomic_load_explicit(folded, memory_order_relaxed);
  if (HMB__UNLIKELY(u >= HMB__GAUGE_STEP || u <= -HMB__GAUGE_STEP ||
                    (delta > 0 && hmb__gauge_peaks(top, u))))
    hmb__gauge_fold(value, folded, top, NULL);
}

/*
 * The same for a gauge that is also part of a wider one (a runner's live
 * bytes within its pool's): a fold publishes to both tops, so `outer.total`
 * is the sum of the folded parts of every inner gauge.
 */
static inline void hmb__gauge_add2(_Atomic int64_t *value,
                                   _Atomic int64_t *folded,
                                   hmb__gauge_top_t *inner,
                                   hmb__gauge_top_t *outer, int64_t delta) {
  int64_t v =
      atomic_fetch_add_explicit(value, delta, memory_order_relaxed) + delta;
  int64_t u = v - atomic_load_explicit(folded, memory_order_relaxed);
  if (HMB__LIKELY(u < HMB__GAUGE_STEP && u > -HMB__GAUGE_STEP) &&
      (delta <= 0 ||
       (!hmb__gauge_peaks(inner, u) && !hmb__gauge_peaks(outer, u))))
    return;
  hmb__gauge_fold(value, folded, inner, outer);
}

/* Relaxed read of one shard's value (for adding the shards up). */
static inline int64_t hmb__gauge_value(const _Atomic int64_t *value) {
  return atomic_load_explicit(value, memory_order_relaxed);
}

/* Saturating add for cumulative counters (never wraps). Relaxed. */
static inline void hmb__count_add(_Atomic uint64_t *c, uint64_t v) {
  uint64_t o = atomic_load_explicit(c, memory_order_relaxed);
  uint64_t n;
  do
    n = o > UINT64_MAX - v ? UINT64_MAX : o + v;
  while (!atomic_compare_exchange_weak_explicit(c, &o, n, memory_order_relaxed,
                                                memory_order_relaxed));
}

/* Saturating add for counters under a lock. */
static inline uint64_t hmb__sat_add(uint64_t a, uint64_t b) {
  return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

#endif /* HMB_SRC_PLATFORM_SHARD_H */
