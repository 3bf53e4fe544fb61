/*
 * memory.h - the contract between the budget core and physical memory.
 *
 * The core gets bytes only through this contract; it never calls the OS,
 * malloc or CUDA itself. A memory object composes the built-in backends
 * (small blocks from malloc behind the thread cache, large blocks as their
 * own mappings behind the warm cache, an optional CUDA pinned region with
 * pageable fallback) or wraps one custom hmb_backend_t.
 *
 * Every block carries the prefix of block.h in front of its data; the
 * memory layer writes its block word, the core its back-pointer slot.
 * Sizes passed here are the caller's requested sizes; the memory layer
 * works out what each block really occupies and counts it.
 *
 * Every function is thread-safe and takes no lock of the core; its own
 * locks are leaves (nothing else is acquired while one is held).
 */
#ifndef HMB_SRC_MEMORY_MEMORY_H
#define HMB_SRC_MEMORY_MEMORY_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "hmb/backend.h"
#include "hmb/errors.h"
#include "hmb/pool.h"
#include "hmb/stats.h"
#include "memory/block.h"
#include "memory/memory_state.h"
#include "memory/sizeclass.h"
#include "memory/tcache.h"
#include "platform/shard.h"
#include "platform/util.h"

typedef struct hmb__memory hmb__memory_t;

/* Blocks whose data and prefix reach this many bytes get their own mapping. */
#define HMB__LARGE_MIN ((size_t)256 * 1024)

/*
 * Build a memory object from a pool configuration (validated by the
 * caller). The warm cache starts with room `room0` (the whole budget).
 * 0, HMB_EINVAL (unknown pinned_method), HMB_ENOMEM.
 */
int hmb__memory_create(const hmb_pool_config_t *cfg, int64_t room0,
                       hmb__memory_t **out);

/* Free the object; every block must have been returned. NULL is a no-op. */
void hmb__memory_destroy(hmb__memory_t *mem);

/* The process-wide memory of the default allocator (no budget; its warm
 * cache keeps at most HMB__DEFAULT_CACHE bytes). */
#define HMB__DEFAULT_CACHE ((size_t)64 << 20)
hmb__memory_t *hmb__memory_default(void);

/* ---- the hot path (inline: the core's allocation path makes no call for
 * a small block the thread cache has) --------------------------------- */

/* The memory shard of the thread whose index + 1 is `me`: `me` modulo
 * HMB__MSHARDS (a thread without an index gets one too, and owns it
 * never). */
static inline unsigned hmb__memory_shard_of(unsigned me) {
  return me & (HMB__MSHARDS - 1u);
}

/* Whether that thread owns memory shard `msh` (its own,
 * hmb__memory_shard_of(me)) of the object's counters (platform/shard.h):
 * `mine` claims it when nobody owns it yet (an allocation); `is_mine` does
 * not (a free). */
static inline int hmb__memory_shard_mine(hmb__memory_t *m, unsigned msh,
                                         unsigned me) {
  return hmb__shard_mine(&m->shard[msh].owner, msh, hmb__memory_shard_of(me),
                         me);
}
static inline int hmb__memory_shard_is_mine(hmb__memory_t *m, unsigned msh,
                                            unsigned me) {
  return hmb__shard_is_mine(&m->shard[msh].owner, me);
}

/* The shard a count goes to: thread shard `msh` when the caller owns it,
 * else the shared one. */
static inline unsigned hmb__memory_slot(unsigned msh, int mine) {
  return mine ? msh : HMB__MSHARD_SHARED;
}

/* The calling thread's memory shard (*msh) and whether it owns it,
 * claiming it if `claim` (an allocation) and nobody owns it yet. */
static inline int hmb__memory_own_shard(hmb__memory_t *m, int claim,
                                        unsigned *msh) {
  unsigned me = hmb__os_thread_index_plus1();
  *msh = hmb__memory_shard_of(me);
  return claim ? hmb__memory_shard_mine(m, *msh, me)
               : hmb__memory_shard_is_mine(m, *msh, me);
}

/* Count a block allocated (live > 0) or freed (live < 0) by the calling
 * thread: in the thread's memory shard if it owns it (an allocation claims
 * it), else in the shared shard. Any shard keeps the sums exact. */
static inline __attribute__((always_inline)) void
hmb__count_block(hmb__memory_t *m, int pinned, int64_t live, int64_t phys) {
  unsigned msh;
  int mine = hmb__memory_own_shard(m, live > 0, &msh);
  hmb__mshard_t *s = &m->shard[hmb__memory_slot(msh, mine)];
  if (pinned) {
    hmb__gauge_add(&s->pinned, &m->pinned_top, NULL, live, mine);
  } else {
    hmb__gauge_add(&s->live, &m->live_top, NULL, live, mine);
    if (mine)
      hmb__own_add(&s->phys, phys);
    else
      atomic_fetch_add_explicit(&s->phys, phys, memory_order_relaxed);
  }
}

/* Place the data in a block starting at raw: after `prefix` bytes, on a
 * multiple of `place` (1 when the prefix already aligns it); `align` is the
 * alignment asked for, recorded for a later resize. */
static inline void *hmb__place(void *raw, size_t prefix, size_t place,
                               unsigned kind, int pinned, int huge,
                               unsigned cls, size_t align) {
  uintptr_t d = (uintptr_t)raw + prefix;
  d = (d + place - 1) & ~(uintptr_t)(place - 1);
  void *data = (void *)d;
  *hmb__block_word_at(data) = hmb__block_word((size_t)(d - (uintptr_t)raw),
                                              kind, pinned, huge, cls, align);
  return data;
}

/* Everything hmb__memory_alloc() does not do inline (memory.c): a custom
 * backend, a pinned request, a large block, a thread-cache miss. */
void *hmb__memory_alloc_slow(hmb__memory_t *mem, size_t size, size_t align,
                             int prefer_pinned, int *pinned);
/* The free of a block hmb__memory_small_probe_free() said no to (memory.c);
 * `w` its block word. */
int hmb__memory_free_slow(hmb__memory_t *mem, void *data, size_t size,
                          uint64_t w);

/*
 * The thread-cache hit, split for a caller that checks everything before it
 * takes anything (the runner's allocation and close paths make no call on
 * a hit, so they need no stack frame):
 *   hmb__memory_small_class()  whether a pageable block for `size` at
 *                              `align` is of a class the calling thread's
 *                              cache keeps (sets f, cls, align);
 *   hmb__memory_small_block()  after it: whether that class has a block
 *                              (sets raw);
 *   hmb__memory_small_pair()   after it: whether that class has a pair
 *                              (tcache.h) whose block was placed for the
 *                              same alignment (sets pair); a head pair of
 *                              another alignment is split (its block to
 *                              the class, its object to the objects), so
 *                              that hmb__memory_small_block() finds it;
 *   hmb__memory_small_pair_quick()  the same without the split (no call):
 *                              1 a pair that fits, 0 none, -1 a head of
 *                              another alignment;
 *   hmb__memory_small_probe()  the class and the block at once;
 *   hmb__memory_small_take()   after a block said yes (and no other cache
 *                              use between): pops it, places the data,
 *                              counts it; cannot fail;
 *   hmb__memory_pair_take()    after a pair said yes: pops it and counts
 *                              its block; the pair's data word is the
 *                              block's data, already placed;
 * and for the free of a block:
 *   hmb__memory_small_kept()        whether it is a small block of a class
 *                                   the calling thread's cache keeps (sets
 *                                   f, raw, cls, bytes);
 *   hmb__memory_small_probe_free()  that, and the cache has room for it;
 *   hmb__memory_small_put()         after a yes: counts and keeps it;
 *   hmb__memory_pair_put()          after hmb__memory_small_kept() and
 *                                   hmb__tcache_pair_room(): counts the
 *                                   block and keeps it with `obj`, a
 *                                   64-byte object whose data word is the
 *                                   block's data.
 * The takes and the puts return 1 when the memory layer's gauge of the
 * shard must be folded (hmb__memory_fold(), before the next use of the
 * gauge by the caller; see platform/shard.h).
 */
typedef struct hmb__small_probe {
  hmb__tc_front_t *f;
  void *raw;    /* the block (its start) */
  void *pair;   /* the pair (hmb__memory_small_pair()) */
  unsigned cls; /* its class */
  size_t align; /* the data alignment */
  size_t bytes; /* its class size (the free probe) */
} hmb__small_probe_t;

static inline __attribute__((always_inline)) int
hmb__memory_small_class(const hmb__memory_t *mem, size_t size, size_t align,
                        hmb__small_probe_t *p) {
  if (align == 0)
    align = mem->align;
  /* Worst-case room: malloc gives 16-byte alignment, so an offset of at
   * most max(16, align) places aligned data after a 16-byte prefix. */
  size_t a = hmb__prefix_for(align);
  hmb__tc_front_t *f = hmb__tc_front;
  /* size <= HMB_MAX_ALLOC and a <= align: the sum cannot wrap. Below
   * HMB__TC_SMALL_MAX it is in a class the thread cache keeps. */
  if (HMB__UNLIKELY(mem->custom.alloc != NULL || f == NULL ||
                    hmb__small_need(size, a) >= HMB__TC_SMALL_MAX))
    return 0;
  p->f = f;
  p->cls = hmb__class_of(hmb__small_need(size, a));
  p->align = align;
  return 1;
}

static inline __attribute__((always_inline)) int
hmb__memory_small_block(hmb__small_probe_t *p) {
  p->raw = p->f->small[p->cls].head;
  return p->raw != NULL;
}

/* The head pair of the class, without the call of a split: 1 it fits
 * (p->pair), 0 no pair, -1 a head of another alignment (left as it is; for
 * a quick path that makes no call, and so needs no frame, and leaves the
 * split to its full path). A pair's block fits when its class is the one
 * asked for, and with the same alignment its offset is at most
 * hmb__prefix_for(align), so the data ends within the class size. (The
 * block word records the alignment, which a resize and
 * hmb__memory_block_align() use: it must be the one asked for.) */
static inline __attribute__((always_inline)) int
hmb__memory_small_pair_quick(hmb__small_probe_t *p) {
  void *obj = p->f->pair[p->cls];
  if (obj == NULL)
    return 0;
  uint64_t w = *hmb__block_word_at(hmb__tcache_pair_data(obj));
  if (HMB__UNLIKELY(((w >> 24) & 31u) !=
                    (uint64_t)__builtin_ctzll((unsigned long long)p->align)))
    return -1;
  p->pair = obj;
  return 1;
}

/* Whether the head pair fits (p->pair). A head of another alignment is
 * split into a block and an object, which the caller takes apart, so a
 * class's pairs never pile up behind a head of the wrong alignment. */
static inline __attribute__((always_inline)) int
hmb__memory_small_pair(hmb__small_probe_t *p) {
  int k = hmb__memory_small_pair_quick(p);
  if (HMB__UNLIKELY(k < 0))
    hmb__tcache_pair_split(p->f, p->cls);
  return k > 0;
}

static inline __attribute__((always_inline)) int
hmb__memory_small_probe(const hmb__memory_t *mem, size_t size, size_t align,
                        hmb__small_probe_t *p) {
  return hmb__memory_small_class(mem, size, align, p) &&
         hmb__memory_small_block(p);
}

/* The gauges of a block of class size `bytes` that becomes live (`up`) or
 * goes back to the thread cache; returns the fold, as the takes. */
static inline __attribute__((always_inline)) int
hmb__memory_small_count(hmb__memory_t *mem, size_t size, size_t bytes,
                        unsigned msh, int mine, int up) {
  hmb__mshard_t *s = &mem->shard[hmb__memory_slot(msh, mine)];
  int64_t ph = up ? (int64_t)bytes : -(int64_t)bytes;
  int fold = up ? hmb__gauge_up_nofold(&s->live, (int64_t)size, mine)
                : hmb__gauge_down_nofold(&s->live, (int64_t)size, mine);
  if (mine)
    hmb__own_add(&s->phys, ph);
  else
    atomic_fetch_add_explicit(&s->phys, ph, memory_order_relaxed);
  return fold;
}

/* The take and the put count in memory shard `msh` (the calling thread's,
 * hmb__memory_shard_of()) when `mine` (the caller owns it; a caller that
 * checked passes the constant 1), else in the shared shard; the fold they
 * ask for is of that slot (hmb__memory_slot()). */
static inline __attribute__((always_inline)) void *
hmb__memory_small_take(hmb__memory_t *mem, size_t size,
                       const hmb__small_probe_t *p, unsigned msh, int mine,
                       int *fold) {
  size_t bytes = hmb__tcache_class_size(p->cls);
  hmb__tcache_small_pop(p->f, p->cls, p->raw, bytes);
  uintptr_t d = ((uintptr_t)p->raw + HMB__PREFIX_MIN + p->align - 1) &
                ~(uintptr_t)(p->align - 1);
  void *data = (void *)d;
  *hmb__block_word_at(data) =
      hmb__block_word_small(d - (uintptr_t)p->raw, p->cls, p->align);
  *fold = hmb__memory_small_count(mem, size, bytes, msh, mine, 1);
  return data;
}

static inline __attribute__((always_inline)) void *
hmb__memory_pair_take(hmb__memory_t *mem, size_t size,
                      const hmb__small_probe_t *p, unsigned msh, int mine,
                      int *fold) {
  size_t bytes = hmb__tcache_class_size(p->cls);
  hmb__tcache_pair_pop(p->f, p->cls, p->pair, bytes);
  *fold = hmb__memory_small_count(mem, size, bytes, msh, mine, 1);
  return p->pair;
}

static inline __attribute__((always_inline)) int
hmb__memory_small_kept(const void *data, hmb__small_probe_t *p) {
  uint64_t w = *hmb__block_word_at((void *)(uintptr_t)data);
  hmb__tc_front_t *f = hmb__tc_front;
  if (HMB__UNLIKELY(!hmb__block_valid_small(w) || f == NULL))
    return 0;
  unsigned cls = hmb__block_class(w);
  if (HMB__UNLIKELY(cls >= HMB__TC_NCLASSES))
    return 0;
  p->f = f;
  p->raw = (char *)(uintptr_t)data - hmb__block_offset(w);
  p->cls = cls;
  p->bytes = hmb__tcache_class_size(cls);
  return 1;
}

static inline __attribute__((always_inline)) int
hmb__memory_small_probe_free(const void *data, hmb__small_probe_t *p) {
  return hmb__memory_small_kept(data, p) &&
         hmb__tcache_small_room(p->f, p->cls, p->bytes);
}

static inline __attribute__((always_inline)) int
hmb__memory_small_put(hmb__memory_t *mem, size_t size,
                      const hmb__small_probe_t *p, unsigned msh, int mine) {
  int fold = hmb__memory_small_count(mem, size, p->bytes, msh, mine, 0);
  hmb__tcache_small_push(p->f, p->cls, p->raw, p->bytes);
  return fold;
}

static inline __attribute__((always_inline)) int
hmb__memory_pair_put(hmb__memory_t *mem, size_t size,
                     const hmb__small_probe_t *p, unsigned msh, int mine,
                     void *obj) {
  int fold = hmb__memory_small_count(mem, size, p->bytes, msh, mine, 0);
  hmb__tcache_pair_push(p->f, p->cls, obj, p->bytes);
  return fold;
}

/* Fold the pageable gauge of `slot` (a thread shard, or HMB__MSHARD_SHARED;
 * after a take or put said so). */
void hmb__memory_fold(hmb__memory_t *mem, unsigned slot);

/*
 * Allocate `size` bytes whose data is aligned to `align` (a power of two,
 * 0: the object's default alignment). `prefer_pinned` asks for the pinned
 * region; *pinned tells what was served. Counted in the calling thread's
 * memory shard. Returns the data pointer (with its prefix and block word in
 * place), or NULL.
 */
static inline void *hmb__memory_alloc(hmb__memory_t *mem, size_t size,
                                      size_t align, int prefer_pinned,
                                      int *pinned) {
  *pinned = 0;
  hmb__small_probe_t p;
  if (HMB__LIKELY(!prefer_pinned &&
                  hmb__memory_small_probe(mem, size, align, &p))) {
    int fold;
    unsigned msh;
    int mine = hmb__memory_own_shard(mem, 1, &msh);
    void *data = hmb__memory_small_take(mem, size, &p, msh, mine, &fold);
    if (HMB__UNLIKELY(fold))
      hmb__memory_fold(mem, hmb__memory_slot(msh, mine));
    return data;
  }
  /* A miss goes the slow way (which pops again, then mallocs). */
  return hmb__memory_alloc_slow(mem, size, align ? align : mem->align,
                                prefer_pinned, pinned);
}

/*
 * Return a block with the size it was allocated (or last resized) with.
 * 0, or HMB_EINVAL (nothing freed) for a data pointer whose block word is
 * not valid or that the pinned region does not know: the caller reports it.
 * Counted in the calling thread's memory shard if it owns it, else in the
 * shared one (any shard keeps the sums exact).
 */
static inline int hmb__memory_free(hmb__memory_t *mem, void *data,
                                   size_t size) {
  hmb__small_probe_t p;
  if (HMB__LIKELY(hmb__memory_small_probe_free(data, &p))) {
    unsigned msh;
    int mine = hmb__memory_own_shard(mem, 0, &msh);
    if (HMB__UNLIKELY(hmb__memory_small_put(mem, size, &p, msh, mine)))
      hmb__memory_fold(mem, hmb__memory_slot(msh, mine));
    return 0;
  }
  return hmb__memory_free_slow(mem, data, size, *hmb__block_word_at(data));
}

/*
 * Resize a block in place when it already has room for `new_size` (its
 * class or mapping is large enough): 1 if done (counters adjusted), 0 if the
 * caller must allocate, copy and free.
 */
int hmb__memory_resize_in_place(hmb__memory_t *mem, void *data, size_t old_size,
                                size_t new_size);

/* 1 if the block's data is pinned memory (from its block word). */
int hmb__memory_block_pinned(const void *data);
/* The data alignment the block was allocated with (its block word). */
size_t hmb__memory_block_align(const void *data);

/*
 * The budget nobody holds, set by the core whenever it changes (the warm
 * cache lives inside it). Lock-free; the cache is not shrunk here.
 */
void hmb__memory_set_room(hmb__memory_t *mem, int64_t room);

/*
 * Give cached blocks back until they fit the room again. Called by the core
 * after a grant shrank the room, before the granted budget is used.
 * Takes no core lock; calls the OS.
 */
void hmb__memory_fit_room(hmb__memory_t *mem);

/* Counter snapshot (see hmb/stats.h for exactness). Lock-free. */
void hmb__memory_stats(hmb__memory_t *mem, hmb_memory_stats_t *out);

/* Release cached blocks until at most keep_bytes remain cached. */
void hmb__memory_trim(hmb__memory_t *mem, size_t keep_bytes);

/*
 * Why a pinned region that was asked for could not be made (static
 * storage), or NULL when none was asked for or it works. The caller logs it.
 */
const char *hmb__memory_region_failure(const hmb__memory_t *mem);

/*
 * Self-check of the memory layer's counters at rest (no call in flight):
 * live, physical and cached figures agree with what was handed out.
 * 0 or HMB_EFAILED, with the first broken one in why[0..len).
 */
int hmb__memory_check(hmb__memory_t *mem, char *why, size_t len);

#endif /* HMB_SRC_MEMORY_MEMORY_H */
