/*
 * shard.h - counters that threads update without sharing a cache line.
 *
 * A gauge (a current value with a peak, such as live bytes) is kept as
 *   - one `hmb__gauge_top_t` (total + peak) on a line of its own, written
 *     rarely and read on every update, so it stays shared in every cache;
 *   - a pending delta per shard (one shard per thread index modulo
 *     HMB__SHARDS, each on the owner's cache line).
 * An update adds to its shard's pending delta (one relaxed RMW on a line
 * the thread owns) and folds the delta into the top only when it has drifted
 * by HMB__GAUGE_STEP or could set a new peak. Hence:
 *   exact value = top.total + sum of pending deltas, at any instant when no
 *                 update is in flight (a reader adds the shards up);
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
#define HMB__GAUGE_STEP ((int64_t)64 * 1024)

/* The shared part of a gauge. */
typedef struct hmb__gauge_top {
  _Atomic int64_t total; /* sum of the folded deltas */
  _Atomic int64_t peak;  /* highest total + pending seen by an updater */
} hmb__gauge_top_t;

/* The shard of the calling thread. */
static inline unsigned hmb__shard_index(void) {
  return hmb__os_thread_index() & (HMB__SHARDS - 1u);
}

/* Fold a shard's pending delta into the top and record the peak. */
static inline void hmb__gauge_fold(_Atomic int64_t *pending,
                                   hmb__gauge_top_t *top) {
  int64_t u = atomic_exchange_explicit(pending, 0, memory_order_relaxed);
  int64_t t = atomic_fetch_add_explicit(&top->total, u, memory_order_relaxed) + u;
  hmb__peak_update(&top->peak, t);
}

/* Add `delta` through the shard `pending`; folds when it must (see above). */
static inline void hmb__gauge_add(_Atomic int64_t *pending,
                                  hmb__gauge_top_t *top, int64_t delta) {
  int64_t u =
      atomic_fetch_add_explicit(pending, delta, memory_order_relaxed) + delta;
  if (HMB__UNLIKELY(u >= HMB__GAUGE_STEP || u <= -HMB__GAUGE_STEP ||
                    (delta > 0 &&
                     atomic_load_explicit(&top->total, memory_order_relaxed) +
                             u >
                         atomic_load_explicit(&top->peak,
                                              memory_order_relaxed))))
    hmb__gauge_fold(pending, top);
}

/*
 * The same for a gauge that is also part of a wider one (a runner's live
 * bytes within its pool's): the delta is folded into both tops at once, so
 * `outer.total` is the sum of the folded deltas of every inner gauge.
 */
static inline void hmb__gauge_add2(_Atomic int64_t *pending,
                                   hmb__gauge_top_t *inner,
                                   hmb__gauge_top_t *outer, int64_t delta) {
  int64_t u =
      atomic_fetch_add_explicit(pending, delta, memory_order_relaxed) + delta;
  if (HMB__LIKELY(u < HMB__GAUGE_STEP && u > -HMB__GAUGE_STEP) &&
      (delta <= 0 ||
       (atomic_load_explicit(&inner->total, memory_order_relaxed) + u <=
            atomic_load_explicit(&inner->peak, memory_order_relaxed) &&
        atomic_load_explicit(&outer->total, memory_order_relaxed) + u <=
            atomic_load_explicit(&outer->peak, memory_order_relaxed))))
    return;
  u = atomic_exchange_explicit(pending, 0, memory_order_relaxed);
  int64_t t =
      atomic_fetch_add_explicit(&inner->total, u, memory_order_relaxed) + u;
  hmb__peak_update(&inner->peak, t);
  t = atomic_fetch_add_explicit(&outer->total, u, memory_order_relaxed) + u;
  hmb__peak_update(&outer->peak, t);
}

/* Relaxed read of one shard's pending delta (for adding the shards up). */
static inline int64_t hmb__gauge_pending(const _Atomic int64_t *pending) {
  return atomic_load_explicit(pending, memory_order_relaxed);
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
