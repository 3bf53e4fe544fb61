/*
 * shard.h - counters that threads update without sharing a cache line.
 *
 * A gauge (a current value with a peak, such as live bytes) is kept as
 *   - thread shards (a runner has HMB__SHARDS, one per thread index modulo
 *     HMB__SHARDS; a memory object more, memory_state.h), each written
 *     only by the thread that owns it (see "Owned shards"),
 *     and one shared shard for every update that is not an owner's; each
 *     on a cache line of its own: its value, the part of it already folded
 *     into the top, and the two values at which it must fold next (`hi`,
 *     `lo`);
 *   - one `hmb__gauge_top_t` (total of the folded parts + peak) on a line of
 *     its own, written only by folds.
 * An update adds to a shard's value (the owner: a relaxed load and store
 * on its own line; anyone else: a relaxed RMW on the shared shard) and
 * compares the result with `hi` (an increase) or `lo` (a decrease), on the
 * same line: no line shared by the owners is read or written unless it
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
 * (S counts the shared shard too: at most the thread shards + 1.) A
 * zeroed shard (hi = lo = 0) folds at its first update. Every access is
 * relaxed: a gauge orders nothing, and readers want values, not
 * happens-before. This file is the only writer of a gauge's fields.
 *
 * Owned shards. Threads whose indices agree modulo the shard count map to
 * one thread shard, so without more its counters would need an atomic
 * read-modify-write per update (a locked instruction on x86). Instead an
 * object with sharded counters keeps an owner word per thread shard
 * (hmb__owner_t), set once from 0 by the first thread that claims it
 * (hmb__shard_mine(); only a thread whose own shard it is). From then on
 * that thread alone writes the shard's counters, with a relaxed load and a
 * relaxed store: no locked instruction, and no other writer, so nothing is
 * lost. Every other thread, and a thread that has no index, writes the
 * object's shared shard with RMWs instead. Readers add all the shards up.
 * A thread keeps what it owns for its life; its index passes to a later
 * thread only after it exited (os.h), through a mutex that orders the old
 * owner's last stores before the new owner's first load, so the new owner
 * carries on from the values the old one left.
 */
#ifndef HMB_SRC_PLATFORM_SHARD_H
#define HMB_SRC_PLATFORM_SHARD_H

#include <stdatomic.h>
#include <stdint.h>

#include "platform/os.h"
#include "platform/util.h"

/* Thread shards per sharded object (a power of two); the shared shard is
 * index HMB__SHARDS. */
#define HMB__SHARDS 4u
#define HMB__SHARD_SHARED HMB__SHARDS
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

/* The owner of a thread shard: 0 (none yet), or the owning thread's index
 * + 2, i.e. its `me` (index + 1, os.h) + 1: a zeroed word is a free shard,
 * and a thread without an index (me = 0) matches no owner. */
typedef _Atomic unsigned hmb__owner_t;

/* Claim thread shard `sh` (owner word `o`) for `me`, whose own shard of
 * the object is `own` (the object's mapping of thread to shard: a runner's
 * is hmb__shard_index(), the memory layer's its own): 1 if it is now the
 * caller's. Only the thread whose shard it is can claim it; a thread
 * without an index, or in its exit sequence (os.h), claims nothing.
 * Relaxed: the shard's counters start from what the object's publication
 * (or the index's hand-over) made visible; the CAS only picks one owner. */
static inline int hmb__shard_claim(hmb__owner_t *o, unsigned sh, unsigned own,
                                   unsigned me) {
  unsigned none = 0;
  return me != 0 && me != HMB__OS_TINDEX_EXITED && own == sh &&
         atomic_compare_exchange_strong_explicit(
             o, &none, me + 1u, memory_order_relaxed, memory_order_relaxed);
}

/* 1 if the thread whose index + 1 is `me` owns the shard of owner word `o`
 * (one relaxed load and compare on the shard's line). */
static inline int hmb__shard_is_mine(hmb__owner_t *o, unsigned me) {
  return atomic_load_explicit(o, memory_order_relaxed) == me + 1u;
}

/* The same, claiming thread shard `sh` when nobody owns it yet (for an
 * allocation; a free's shard is the allocation's, so it only asks). */
static inline int hmb__shard_mine(hmb__owner_t *o, unsigned sh, unsigned own,
                                  unsigned me) {
  unsigned cur = atomic_load_explicit(o, memory_order_relaxed);
  if (HMB__LIKELY(cur == me + 1u))
    return 1;
  return cur == 0 && hmb__shard_claim(o, sh, own, me);
}

/* The owner's update of a counter of its shard (it is the only writer): a
 * relaxed load and store in C11 terms. On x86-64 (outside ThreadSanitizer
 * builds, which check the C11 form) it is one unlocked add to memory: an
 * aligned 8-byte access is single-copy atomic there, so a relaxed reader
 * sees the old or the new value either way, and the compiler emits a
 * separate load, add and store for the C11 form. */
#if defined(__SANITIZE_THREAD__)
#define HMB__UNDER_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define HMB__UNDER_TSAN 1
#endif
#endif
#if defined(__x86_64__) && defined(__GNUC__) && !defined(HMB__UNDER_TSAN)
#define HMB__OWN_ADD_ASM 1
#endif
static inline void hmb__own_add(_Atomic int64_t *c, int64_t d) {
#ifdef HMB__OWN_ADD_ASM
  __asm__("addq %1, %0" : "+m"(*c) : "er"(d));
#else
  atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + d,
                        memory_order_relaxed);
#endif
}
static inline void hmb__own_inc(_Atomic uint64_t *c) {
#ifdef HMB__OWN_ADD_ASM
  __asm__("addq $1, %0" : "+m"(*c));
#else
  atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + 1,
                        memory_order_relaxed);
#endif
}

/* The shard of the calling thread. */
static inline unsigned hmb__shard_index(void) {
  return hmb__os_thread_index() & (HMB__SHARDS - 1u);
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

/* Add `d` (>= 0: `up`, or subtract it: `down`) to a shard without
 * folding: 1 if it must now be folded (hmb__gauge_fold(), at once or after
 * the caller's other updates: a fold publishes whatever the shard holds
 * when it runs). `mine`: `g` is a thread shard the caller owns, so the
 * update is its plain load and store; else `g` is the shared shard and the
 * update an RMW. A caller that checked ownership passes a constant. */
static inline int hmb__gauge_up_nofold(hmb__gauge_shard_t *g, int64_t d,
                                       int mine) {
  int64_t v;
  if (mine) {
    v = atomic_load_explicit(&g->value, memory_order_relaxed) + d;
    atomic_store_explicit(&g->value, v, memory_order_relaxed);
  } else {
    v = atomic_fetch_add_explicit(&g->value, d, memory_order_relaxed) + d;
  }
  return v > atomic_load_explicit(&g->hi, memory_order_relaxed);
}
static inline int hmb__gauge_down_nofold(hmb__gauge_shard_t *g, int64_t d,
                                         int mine) {
  int64_t v;
  if (mine) {
    v = atomic_load_explicit(&g->value, memory_order_relaxed) - d;
    atomic_store_explicit(&g->value, v, memory_order_relaxed);
  } else {
    v = atomic_fetch_sub_explicit(&g->value, d, memory_order_relaxed) - d;
  }
  return v < atomic_load_explicit(&g->lo, memory_order_relaxed);
}

/* Add `delta` to a shard; fold when it must (see above). `mine` as for
 * hmb__gauge_up_nofold(). */
static inline void hmb__gauge_add(hmb__gauge_shard_t *g, hmb__gauge_top_t *top,
                                  hmb__gauge_top_t *outer, int64_t delta,
                                  int mine) {
  int f = delta >= 0 ? hmb__gauge_up_nofold(g, delta, mine)
                     : hmb__gauge_down_nofold(g, -delta, mine);
  if (HMB__UNLIKELY(f))
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

/* Saturating add for counters under a lock. */
static inline uint64_t hmb__sat_add(uint64_t a, uint64_t b) {
  return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

#endif /* HMB_SRC_PLATFORM_SHARD_H */
