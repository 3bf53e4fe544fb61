/*
 * cache.c - the warm cache of large blocks (see cache.h).
 *
 * Accounting: `cached` counts the bytes of every block kept, in the depot
 * or in a magazine. A put reserves its bytes by CAS against min(room, cap)
 * before keeping the block; a hit, a trim or a fit releases them after the
 * block has left the cache. So cached <= min(room, cap) holds after every
 * put, and a fit restores it after the room shrank.
 *
 * Memory orders: every counter here is relaxed. The blocks themselves are
 * handed between threads through mutexes (depot, magazines), which order
 * the link words written into them.
 */
#include "memory/cache.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "hmb/errors.h"
#include "memory/sizeclass.h"
#include "memory/tcache.h"
#include "platform/os.h"

/* Classes up to hmb__class_of(2^62). */
#define HMB__CACHE_NCLASSES 448u

typedef struct hmb__depot_entry {
  struct hmb__depot_entry *next; /* in the block's first bytes */
  int huge;
} hmb__depot_entry_t;

struct hmb__cache {
  int64_t extra_cap; /* INT64_MAX: none */
  int huge_ok;
  pthread_mutex_t lock; /* the depot */
  hmb__depot_entry_t *depot[HMB__CACHE_NCLASSES];
  int top_class; /* highest class with something in the depot, or -1 */
  _Alignas(64) _Atomic int64_t cached;
  _Atomic int64_t room;
  _Atomic int64_t huge_cached;
  _Atomic uint64_t hits, misses, rejects, trimmed;
};

int hmb__cache_create(size_t extra_cap, int64_t room0, int huge,
                      hmb__cache_t **out) {
  *out = NULL;
  hmb__cache_t *c = calloc(1, sizeof *c);
  if (!c)
    return HMB_ENOMEM;
  if (pthread_mutex_init(&c->lock, NULL) != 0) {
    free(c);
    return HMB_ENOMEM;
  }
  c->extra_cap = extra_cap && extra_cap < (size_t)INT64_MAX ? (int64_t)extra_cap
                                                            : INT64_MAX;
  c->huge_ok = huge;
  c->top_class = -1;
  atomic_init(&c->room, room0 > 0 ? room0 : 0);
  *out = c;
  return 0;
}

size_t hmb__cache_block_len(size_t len) {
  return hmb__os_round_up(hmb__class_size(hmb__class_of(len)),
                          hmb__os_page_size());
}

/* The room is stored (hmb__cache_set_room) and read here seq_cst, as is
 * `cached` by a put's reservation and re-check and by a shrink: a put that
 * read the old room and a fit that ran before the put's reservation are
 * then ordered so that one of them sees the other's write (store-load on
 * two variables), and whichever does gives the excess back. */
static int64_t hmb__cache_allowed(const hmb__cache_t *c) {
  int64_t r = atomic_load_explicit(&c->room, memory_order_seq_cst);
  return r < c->extra_cap ? r : c->extra_cap;
}

/* Unmap a block that has left the cache's bookkeeping. */
static void hmb__cache_drop(hmb__cache_t *c, void *raw, unsigned cls,
                            int huge) {
  size_t len = hmb__cache_block_len(hmb__class_size(cls));
  atomic_fetch_sub_explicit(&c->cached, (int64_t)len, memory_order_relaxed);
  if (huge)
    atomic_fetch_sub_explicit(&c->huge_cached, (int64_t)len,
                              memory_order_relaxed);
  atomic_fetch_add_explicit(&c->trimmed, len, memory_order_relaxed);
  hmb__os_unmap(raw, len);
}

/* Release function of magazine entries (tcache.h): a thread exits. */
static void hmb__cache_release(void *owner, const hmb__tc_large_t *e) {
  hmb__cache_drop(owner, e->raw, e->cls, e->huge);
}

static void *hmb__depot_pop(hmb__cache_t *c, unsigned cls, int *huge) {
  pthread_mutex_lock(&c->lock);
  hmb__depot_entry_t *e = c->depot[cls];
  if (e) {
    c->depot[cls] = e->next;
    *huge = e->huge;
  }
  pthread_mutex_unlock(&c->lock);
  return e;
}

void *hmb__cache_get(hmb__cache_t *c, size_t len, unsigned *cls, int *huge) {
  unsigned k = hmb__class_of(len);
  size_t blen = hmb__cache_block_len(len);
  *cls = k;
  void *raw = NULL;
  hmb__tcache_t *tc = hmb__tcache();
  hmb__tc_large_t e;
  if (tc && hmb__tcache_large_get(tc, c, k, &e)) {
    raw = e.raw;
    *huge = e.huge;
  } else {
    raw = hmb__depot_pop(c, k, huge);
  }
  if (raw) {
    atomic_fetch_sub_explicit(&c->cached, (int64_t)blen, memory_order_relaxed);
    if (*huge)
      atomic_fetch_sub_explicit(&c->huge_cached, (int64_t)blen,
                                memory_order_relaxed);
    atomic_fetch_add_explicit(&c->hits, 1, memory_order_relaxed);
    return raw;
  }
  raw = hmb__os_map_large(blen, c->huge_ok, huge);
  if (raw) /* a miss served by the OS */
    atomic_fetch_add_explicit(&c->misses, 1, memory_order_relaxed);
  return raw;
}

static void hmb__cache_shrink(hmb__cache_t *c, int64_t target);

void hmb__cache_put(hmb__cache_t *c, void *raw, unsigned cls, int huge) {
  size_t blen = hmb__cache_block_len(hmb__class_size(cls));
  /* Reserve room first: the bound holds even while the push is pending. */
  int64_t cur = atomic_load_explicit(&c->cached, memory_order_relaxed);
  /* The CAS is seq_cst: pairs with hmb__cache_set_room()'s store and the
   * shrink's load (store-load; see hmb__cache_allowed()). */
  do {
    if (cur + (int64_t)blen > hmb__cache_allowed(c)) {
      atomic_fetch_add_explicit(&c->rejects, 1, memory_order_relaxed);
      hmb__os_unmap(raw, blen);
      return;
    }
  } while (!atomic_compare_exchange_weak_explicit(
      &c->cached, &cur, cur + (int64_t)blen, memory_order_seq_cst,
      memory_order_relaxed));
  if (huge)
    atomic_fetch_add_explicit(&c->huge_cached, (int64_t)blen,
                              memory_order_relaxed);
  hmb__tcache_t *tc = hmb__tcache();
  hmb__tc_large_t e = {c, hmb__cache_release, raw, blen, cls, huge};
  if (!tc || !hmb__tcache_large_put(tc, &e)) {
    hmb__depot_entry_t *d = raw;
    d->huge = huge;
    pthread_mutex_lock(&c->lock);
    d->next = c->depot[cls];
    c->depot[cls] = d;
    if ((int)cls > c->top_class)
      c->top_class = (int)cls;
    pthread_mutex_unlock(&c->lock);
  }
  /* The room may have shrunk since it was read, with a fit that ran before
   * the reservation (and so missed this block): give the excess back. */
  int64_t allowed = hmb__cache_allowed(c);
  if (atomic_load_explicit(&c->cached, memory_order_relaxed) > allowed)
    hmb__cache_shrink(c, allowed);
}

void hmb__cache_set_room(hmb__cache_t *c, int64_t room) {
  /* seq_cst: pairs with a put's re-check (hmb__cache_allowed). */
  atomic_store_explicit(&c->room, room > 0 ? room : 0, memory_order_seq_cst);
}

/* Take one block out of the depot (largest class first), or NULL. */
static void *hmb__depot_take_largest(hmb__cache_t *c, unsigned *cls,
                                     int *huge) {
  void *raw = NULL;
  pthread_mutex_lock(&c->lock);
  while (c->top_class >= 0 && !c->depot[c->top_class])
    c->top_class--;
  if (c->top_class >= 0) {
    hmb__depot_entry_t *e = c->depot[c->top_class];
    c->depot[c->top_class] = e->next;
    *cls = (unsigned)c->top_class;
    *huge = e->huge;
    raw = e;
  }
  pthread_mutex_unlock(&c->lock);
  return raw;
}

/* Give blocks back while cached > `target`. */
static void hmb__cache_shrink(hmb__cache_t *c, int64_t target) {
  /* seq_cst: after the room's store, sees a reservation made before it. */
  while (atomic_load_explicit(&c->cached, memory_order_seq_cst) > target) {
    unsigned cls;
    int huge;
    void *raw = hmb__depot_take_largest(c, &cls, &huge);
    if (raw) {
      hmb__cache_drop(c, raw, cls, huge);
      continue;
    }
    hmb__tc_large_t e;
    if (!hmb__tcache_large_take_any(c, &e))
      break; /* a put in flight has reserved but not yet pushed */
    hmb__cache_drop(c, e.raw, e.cls, e.huge);
  }
}

void hmb__cache_fit(hmb__cache_t *c) {
  if (c)
    hmb__cache_shrink(c, hmb__cache_allowed(c));
}

void hmb__cache_trim(hmb__cache_t *c, size_t keep) {
  if (c)
    hmb__cache_shrink(c, keep < (size_t)INT64_MAX ? (int64_t)keep : INT64_MAX);
}

void hmb__cache_destroy(hmb__cache_t *c) {
  if (!c)
    return;
  hmb__cache_shrink(c, 0);
  pthread_mutex_destroy(&c->lock);
  free(c);
}

void hmb__cache_stats(hmb__cache_t *c, hmb__cache_stats_t *out) {
  out->cached = atomic_load_explicit(&c->cached, memory_order_relaxed);
  out->cap = hmb__cache_allowed(c);
  out->huge = atomic_load_explicit(&c->huge_cached, memory_order_relaxed);
  out->hits = atomic_load_explicit(&c->hits, memory_order_relaxed);
  out->misses = atomic_load_explicit(&c->misses, memory_order_relaxed);
  out->rejects = atomic_load_explicit(&c->rejects, memory_order_relaxed);
  out->trimmed = atomic_load_explicit(&c->trimmed, memory_order_relaxed);
}

void hmb__cache_fork_lock(hmb__cache_t *c) {
  pthread_mutex_lock(&c->lock);
}

void hmb__cache_fork_unlock(hmb__cache_t *c) {
  pthread_mutex_unlock(&c->lock);
}
