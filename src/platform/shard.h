/*
 * shard.h - counters that threads update without sharing a cache line.
 *
 * A gauge (a current value with a peak, such as live bytes) is kept as
 *   - a shard per thread index modulo HMB__SHARDS, each on its owner's
 *     cache line: its value, the part of it already folded into the top,
 *     and the two values at which it must fold next (`hi`, `lo`);
 *   - one `hmb__gauge_top_t` (total of the folded parts + peak) on a line of
 *     its own, written only by folds.
 * An update adds to its shard's value (one relaxed RMW on a line the thread
 * owns) and compares the result with `hi` (an increase) or `lo` (a
 * decrease), on the same line: no shared line is read or written unless it
 * folds. A fold publishes the shard's change since its last fold to the top
 * (and to an outer top, for a gauge that is part of a wider one), and sets
 *   hi = value + min(HMB__GAUGE_STEP - 1, peak - total of every top),
 *   lo = value - (HMB__GAUGE_STEP - 1),
 * so the next fold comes when the shard has drifted by HMB__GAUGE_STEP or
 * could set a new peak, as the tops stood at the fold. Hence:
 *   exact value = the sum of the shards' values: a reader adds them up, and
 *                 a fold running meanwhile changes none of them, so the sum
 *                 is off only by updates in flight;
 *   recorded peak: exact while the only shard with changes is the one that
 *                 folded last (one thread updating one gauge, or the tops'
 *                 other contributors all folded: a runner folds its shards
 *                 when it ends); else within (S - 1) x HMB__GAUGE_STEP, S
 *                 being the shards with changes not folded, since each
 *                 shard's view of the tops is off by at most what the
 *                 others did not fold.
 * A zeroed shard (hi = lo = 0) folds at its first update. Every access is
 * relaxed: a gauge orders nothing, and readers want values, not
 * happens-before. This file is the only writer of a gauge's fields.
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

/* One shard of a gauge (on a line its thread owns, with other counters of
 * that thread). */
typedef struct hmb__gauge_shard {
  _Atomic int64_t value;  /* this shard's part of the gauge */
  _Atomic int64_t folded; /* what of it the tops have */
  _Atomic int64_t hi, lo; /* fold when an update passes one of them */
} hmb__gauge_shard_t;

/* The shard of the calling thread. */
static inline unsigned hmb__shard_index(void) {
  return hmb__os_thread_index() & (HMB__SHARDS - 1u);
}

/* The same without a call: 0 if the thread has no index yet (then
 * hmb__shard_index() assigns it), else 1 and *sh. */
static inline int hmb__shard_index_known(unsigned *sh) {
  unsigned i = hmb__os_thread_index_plus1();
  *sh = (i - 1u) & (HMB__SHARDS - 1u);
  return i != 0;
}

/* Publish one fold's change `d` to `top`; returns the room left below its
 * peak. */
static inline int64_t hmb__gauge_publish(hmb__gauge_top_t *top, int64_t d) {
  int64_t t =
      atomic_fetch_add_explicit(&top->total, d, memory_order_relaxed) + d;
  hmb__peak_update(&top->peak, t);
  return atomic_load_explicit(&top->peak, memory_order_relaxed) - t;
}

/* Fold a shard into `top` (and `outer`, if not NULL): publish what changed
 * since its last fold, and set its next fold points. Concurrent folds of
 * one shard each publish the difference between what they saw and what the
 * one before them had, so the totals still add up. */
static inline void hmb__gauge_fold(hmb__gauge_shard_t *g, hmb__gauge_top_t *top,
                                   hmb__gauge_top_t *outer) {
  int64_t v = atomic_load_explicit(&g->value, memory_order_relaxed);
  int64_t d = v - atomic_exchange_explicit(&g->folded, v, memory_order_relaxed);
  int64_t room = hmb__gauge_publish(top, d);
  if (outer) {
    int64_t o = hmb__gauge_publish(outer, d);
    room = o < room ? o : room;
  }
  if (room > HMB__GAUGE_STEP - 1)
    room = HMB__GAUGE_STEP - 1;
  atomic_store_explicit(&g->hi, v + room, memory_order_relaxed);
  atomic_store_explicit(&g->lo, v - (HMB__GAUGE_STEP - 1),
                        memory_order_relaxed);
}

/* Add `delta` to a shard without folding: 1 if it must now be folded
 * (hmb__gauge_fold(), at once or after the caller's other updates: a fold
 * publishes whatever the shard holds when it runs). */
static inline int hmb__gauge_add_nofold(hmb__gauge_shard_t *g, int64_t delta) {
  int64_t v =
      atomic_fetch_add_explicit(&g->value, delta, memory_order_relaxed) + delta;
  return delta > 0 ? v > atomic_load_explicit(&g->hi, memory_order_relaxed)
                   : v < atomic_load_explicit(&g->lo, memory_order_relaxed);
}

/* The same for a delta known to be >= 0 (`up`) or <= 0 (`down`): one
 * comparison fewer. */
static inline int hmb__gauge_up_nofold(hmb__gauge_shard_t *g, int64_t d) {
  int64_t v = atomic_fetch_add_explicit(&g->value, d, memory_order_relaxed) + d;
  return v > atomic_load_explicit(&g->hi, memory_order_relaxed);
}
static inline int hmb__gauge_down_nofold(hmb__gauge_shard_t *g, int64_t d) {
  int64_t v = atomic_fetch_sub_explicit(&g->value, d, memory_order_relaxed) - d;
  return v < atomic_load_explicit(&g->lo, memory_order_relaxed);
}

/* Add `delta` to a shard; fold when it must (see above). */
static inline void hmb__gauge_add(hmb__gauge_shard_t *g, hmb__gauge_top_t *top,
                                  hmb__gauge_top_t *outer, int64_t delta) {
  if (HMB__UNLIKELY(hmb__gauge_add_nofold(g, delta)))
    hmb__gauge_fold(g, top, outer);
}

/* Relaxed read of one shard's value (for adding the shards up). */
static inline int64_t hmb__gauge_value(const hmb__gauge_shard_t *g) {
  return atomic_load_explicit(&g->value, memory_order_relaxed);
}

/* What a shard holds that its tops do not (folded at a runner's end). */
static inline int64_t hmb__gauge_unfolded(const hmb__gauge_shard_t *g) {
  return atomic_load_explicit(&g->value, memory_order_relaxed) -
         atomic_load_explicit(&g->folded, memory_order_relaxed);
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
