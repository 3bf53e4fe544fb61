/*
 * cache.c - size-classed warm cache of pageable blocks (see cache.h).
 *
 * Classes: a request s >= HMB__CACHE_MIN is rounded up to a multiple of
 * 2^(e-3), where 2^e <= s < 2^(e+1): eight classes per power of two, each
 * at most 1/8 larger than any request it serves. Class k covers
 * e = 12 + k / 8 and has size (8 + k % 8) << (e - 3). Only classes whose
 * size fits under the cap exist.
 *
 * Invariant: c->cached >= bytes actually sitting in the stacks, and
 * c->cached <= cap. A free reserves its bytes by CAS before pushing; an
 * allocation pops first and releases the bytes afterwards. So the cap is a
 * hard bound on cached memory at every instant.
 *
 * Lock order: class locks are leaves, taken one at a time; nothing (in
 * particular no OS call) happens while one is held but the push or pop of a
 * pointer. The link of a cached block lives in its first bytes.
 */
#include "memory/cache.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "hmb/errors.h"
#include "platform/os.h"

enum { HMB__CACHE_MIN_LOG2 = 12, HMB__CACHE_SUB = 8, HMB__CACHE_SUB_LOG2 = 3 };

typedef struct hmb__cclass {
  _Alignas(64) pthread_mutex_t lock;
  void *head; /* LIFO: the most recently freed (warmest) block first */
  size_t count;
  _Atomic uint64_t hits, misses;
} hmb__cclass_t;

struct hmb__cache {
  size_t cap;
  size_t align;
  int nclasses;
  hmb__cclass_t *classes;
  _Alignas(64) _Atomic int64_t cached;
  _Atomic uint64_t rejects, trimmed;
};

static unsigned hmb__clog2(size_t v) {
  return (unsigned)(63 - __builtin_clzll((unsigned long long)v));
}

/* Class index of a request of `size` (>= HMB__CACHE_MIN); -1 on overflow. */
static int hmb__class_of(size_t size) {
  unsigned e = hmb__clog2(size);
  size_t step = (size_t)1 << (e - HMB__CACHE_SUB_LOG2);
  if (size > SIZE_MAX - step)
    return -1;
  size_t r = (size + step - 1) & ~(step - 1);
  e = hmb__clog2(r);
  return (int)((e - HMB__CACHE_MIN_LOG2) * HMB__CACHE_SUB +
               (unsigned)(r >> (e - HMB__CACHE_SUB_LOG2)) - HMB__CACHE_SUB);
}

static size_t hmb__class_size(int k) {
  unsigned e = HMB__CACHE_MIN_LOG2 + (unsigned)k / HMB__CACHE_SUB;
  return ((size_t)HMB__CACHE_SUB + (size_t)k % HMB__CACHE_SUB)
         << (e - HMB__CACHE_SUB_LOG2);
}

/* The class handling `size`, or -1 when the request bypasses the cache. */
static int hmb__cache_class(const hmb__cache_t *c, size_t size) {
  if (size < HMB__CACHE_MIN)
    return -1;
  int k = hmb__class_of(size);
  return (k >= 0 && k < c->nclasses) ? k : -1;
}

int hmb__cache_create(size_t cap, size_t align, hmb__cache_t **out) {
  *out = NULL;
  if (cap == 0 || align < sizeof(void *) || (align & (align - 1)) != 0)
    return HMB_EINVAL;
  hmb__cache_t *c = calloc(1, sizeof *c);
  if (!c)
    return HMB_ENOMEM;
  c->cap = cap;
  c->align = align;
  int n = 0;
  while (n < 64 * HMB__CACHE_SUB &&
         HMB__CACHE_MIN_LOG2 + (unsigned)n / HMB__CACHE_SUB < 62 &&
         hmb__class_size(n) <= cap)
    n++;
  if (n > 0) {
    c->classes = aligned_alloc(64, (size_t)n * sizeof *c->classes);
    if (!c->classes) {
      free(c);
      return HMB_ENOMEM;
    }
    for (int k = 0; k < n; k++) {
      hmb__cclass_t *cl = &c->classes[k];
      if (pthread_mutex_init(&cl->lock, NULL) != 0) {
        while (k-- > 0)
          pthread_mutex_destroy(&c->classes[k].lock);
        free(c->classes);
        free(c);
        return HMB_ENOMEM;
      }
      cl->head = NULL;
      cl->count = 0;
      atomic_init(&cl->hits, 0);
      atomic_init(&cl->misses, 0);
    }
  }
  c->nclasses = n;
  *out = c;
  return 0;
}

void hmb__cache_destroy(hmb__cache_t *c) {
  if (!c)
    return;
  hmb__cache_trim(c, 0);
  for (int k = 0; k < c->nclasses; k++)
    pthread_mutex_destroy(&c->classes[k].lock);
  free(c->classes);
  free(c);
}

size_t hmb__cache_block_size(const hmb__cache_t *c, size_t size) {
  int k = hmb__cache_class(c, size);
  return k < 0 ? size : hmb__class_size(k);
}

/* Pop the warmest block of class k, or NULL. */
static void *hmb__pop(hmb__cclass_t *cl) {
  pthread_mutex_lock(&cl->lock);
  void *p = cl->head;
  if (p) {
    cl->head = *(void **)p;
    cl->count--;
  }
  pthread_mutex_unlock(&cl->lock);
  return p;
}

void *hmb__cache_alloc(hmb__cache_t *c, size_t size) {
  int k = hmb__cache_class(c, size);
  if (k < 0)
    return hmb__os_alloc(size, c->align);
  hmb__cclass_t *cl = &c->classes[k];
  size_t bs = hmb__class_size(k);
  void *p = hmb__pop(cl);
  if (p) {
    atomic_fetch_sub_explicit(&c->cached, (int64_t)bs, memory_order_relaxed);
    atomic_fetch_add_explicit(&cl->hits, 1, memory_order_relaxed);
    return p;
  }
  atomic_fetch_add_explicit(&cl->misses, 1, memory_order_relaxed);
  return hmb__os_alloc(bs, c->align);
}

void hmb__cache_free(hmb__cache_t *c, void *ptr, size_t size) {
  int k = hmb__cache_class(c, size);
  if (k < 0) {
    hmb__os_free(ptr, size);
    return;
  }
  size_t bs = hmb__class_size(k);
  /* Reserve room first: the cap holds even while the push is pending. */
  int64_t cur = atomic_load_explicit(&c->cached, memory_order_relaxed);
  do {
    if ((size_t)cur + bs > c->cap) {
      atomic_fetch_add_explicit(&c->rejects, 1, memory_order_relaxed);
      hmb__os_free(ptr, bs);
      return;
    }
  } while (!atomic_compare_exchange_weak_explicit(
      &c->cached, &cur, cur + (int64_t)bs, memory_order_relaxed,
      memory_order_relaxed));
  hmb__cclass_t *cl = &c->classes[k];
  pthread_mutex_lock(&cl->lock);
  *(void **)ptr = cl->head;
  cl->head = ptr;
  cl->count++;
  pthread_mutex_unlock(&cl->lock);
}

void hmb__cache_trim(hmb__cache_t *c, size_t keep) {
  for (int k = c->nclasses - 1; k >= 0; k--) {
    size_t bs = hmb__class_size(k);
    while ((size_t)atomic_load_explicit(&c->cached, memory_order_relaxed) >
           keep) {
      void *p = hmb__pop(&c->classes[k]);
      if (!p)
        break;
      atomic_fetch_sub_explicit(&c->cached, (int64_t)bs, memory_order_relaxed);
      atomic_fetch_add_explicit(&c->trimmed, bs, memory_order_relaxed);
      hmb__os_free(p, bs);
    }
  }
}

void hmb__cache_stats(hmb__cache_t *c, hmb__cache_stats_t *out) {
  out->cached = atomic_load_explicit(&c->cached, memory_order_relaxed);
  out->cap = (int64_t)c->cap;
  out->hits = out->misses = 0;
  for (int k = 0; k < c->nclasses; k++) {
    out->hits +=
        atomic_load_explicit(&c->classes[k].hits, memory_order_relaxed);
    out->misses +=
        atomic_load_explicit(&c->classes[k].misses, memory_order_relaxed);
  }
  out->rejects = atomic_load_explicit(&c->rejects, memory_order_relaxed);
  out->trimmed = atomic_load_explicit(&c->trimmed, memory_order_relaxed);
}
