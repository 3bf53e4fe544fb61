/*
 * arena.c - two-level segregated fit sub-allocator (see arena.h).
 *
 * Units: everything inside is counted in granules of `align` bytes, so
 * offsets and lengths are small integers and alignment holds by
 * construction.
 *
 * Blocks: every piece of the region, free or used, is a node kept outside
 * the region in a doubly linked list in address order (prev/next). The
 * list always tiles the region exactly. Invariant: no two neighbours are
 * both free (free coalesces at once), so "everything freed" is one block.
 *
 * Free blocks sit in one of 64 x 16 size-class lists: the first level is
 * the power of two of the length, the second splits each power of two into
 * 16 equal steps (lengths below 16 granules have one exact class each).
 * Two bitmaps mark the non-empty lists, so finding a list takes a few bit
 * operations. Search, in order:
 *   1. up to HMB__ARENA_PEEK blocks of the request's own class, first fit
 *      (keeps exact-size reuse tight: scan buffers repeat their sizes);
 *   2. the first non-empty class whose every block is large enough (the
 *      request rounded up to the next class boundary): its head fits;
 *   3. the rest of the request's own class.
 * Step 3 makes the arena complete: it reports "full" only if no free block
 * can hold the request. Internal waste is below one granule per block;
 * external fragmentation is limited by immediate coalescing and by the
 * class search preferring the smallest class that fits (good fit).
 *
 * Used blocks are found again on free through a chained hash table keyed by
 * offset (the chain link reuses the free-list pointer, which a used block
 * does not need). Nodes come from chunks of HMB__ARENA_CHUNK nodes; a node
 * is taken before a block is split, so a free never needs memory.
 *
 * Locking: one mutex per arena, a leaf lock. The only calls made under it
 * are libc malloc/free of bookkeeping chunks (rare); the region itself is
 * never touched.
 */
#include "memory/arena.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "hmb/errors.h"
#include "platform/util.h"

enum {
  HMB__ARENA_FL = 64,  /* first-level classes */
  HMB__ARENA_SLB = 4,  /* log2 of second-level classes */
  HMB__ARENA_SL = 16,  /* second-level classes per first level */
  HMB__ARENA_PEEK = 8, /* own-class candidates tried before larger classes */
  HMB__ARENA_CHUNK = 128
};

typedef struct hmb__ablk {
  size_t off, len;                 /* granules */
  struct hmb__ablk *prev, *next;   /* address order */
  struct hmb__ablk *fprev, *fnext; /* free list; used blocks: hash chain */
  int free;
} hmb__ablk_t;

typedef struct hmb__achunk {
  struct hmb__achunk *next;
  hmb__ablk_t nodes[HMB__ARENA_CHUNK];
} hmb__achunk_t;

struct hmb__arena {
  pthread_mutex_t lock;
  char *base;
  size_t gran;    /* alignment in bytes */
  unsigned shift; /* log2(gran) */
  size_t total;   /* granules */
  char *end;      /* base + total * gran */
  hmb__ablk_t *first;
  uint64_t fl_map;
  uint32_t sl_map[HMB__ARENA_FL];
  hmb__ablk_t *lists[HMB__ARENA_FL][HMB__ARENA_SL];
  hmb__ablk_t **buckets; /* used blocks by offset */
  size_t nbuckets;       /* power of two */
  unsigned bucket_bits;
  hmb__ablk_t *spare_nodes; /* recycled nodes, linked by next */
  hmb__achunk_t *chunks;
  size_t used, used_blocks, free_blocks; /* used in granules */
  uint64_t allocs, frees, failures;
};

/* The class a free block of `n` granules is filed under. */
static void hmb__mapping(size_t n, unsigned *fl, unsigned *sl) {
  if (n < HMB__ARENA_SL) {
    *fl = 0;
    *sl = (unsigned)n;
    return;
  }
  unsigned l = hmb__log2_floor(n);
  *fl = l - HMB__ARENA_SLB + 1;
  *sl = (unsigned)(n >> (l - HMB__ARENA_SLB)) - HMB__ARENA_SL;
}

/* ---- free lists ---------------------------------------------------------- */

static void hmb__list_insert(hmb__arena_t *a, hmb__ablk_t *b) {
  unsigned fl, sl;
  hmb__mapping(b->len, &fl, &sl);
  b->free = 1;
  b->fprev = NULL;
  b->fnext = a->lists[fl][sl];
  if (b->fnext)
    b->fnext->fprev = b;
  a->lists[fl][sl] = b;
  a->fl_map |= 1ull << fl;
  a->sl_map[fl] |= 1u << sl;
  a->free_blocks++;
}

static void hmb__list_remove(hmb__arena_t *a, hmb__ablk_t *b) {
  unsigned fl, sl;
  hmb__mapping(b->len, &fl, &sl);
  if (b->fprev)
    b->fprev->fnext = b->fnext;
  else
    a->lists[fl][sl] = b->fnext;
  if (b->fnext)
    b->fnext->fprev = b->fprev;
  if (!a->lists[fl][sl]) {
    a->sl_map[fl] &= ~(1u << sl);
    if (!a->sl_map[fl])
      a->fl_map &= ~(1ull << fl);
  }
  b->fprev = b->fnext = NULL;
  b->free = 0;
  a->free_blocks--;
}

/* First non-empty list at class (fl, sl) or above; NULL if none. */
static hmb__ablk_t *hmb__find_class(hmb__arena_t *a, unsigned fl, unsigned sl) {
  if (fl >= HMB__ARENA_FL)
    return NULL;
  uint32_t sbits = a->sl_map[fl] & (~0u << sl);
  if (!sbits) {
    uint64_t fbits =
        fl + 1 < HMB__ARENA_FL ? a->fl_map & (~0ull << (fl + 1)) : 0;
    if (!fbits)
      return NULL;
    fl = (unsigned)__builtin_ctzll(fbits);
    sbits = a->sl_map[fl];
  }
  return a->lists[fl][__builtin_ctz(sbits)];
}

/* ---- nodes and the hash of used blocks ----------------------------------- */

static hmb__ablk_t *hmb__node_get(hmb__arena_t *a) {
  if (!a->spare_nodes) {
    hmb__achunk_t *c = malloc(sizeof *c);
    if (!c)
      return NULL;
    c->next = a->chunks;
    a->chunks = c;
    for (int i = 0; i < HMB__ARENA_CHUNK; i++) {
      c->nodes[i].next = a->spare_nodes;
      a->spare_nodes = &c->nodes[i];
    }
  }
  hmb__ablk_t *n = a->spare_nodes;
  a->spare_nodes = n->next;
  memset(n, 0, sizeof *n);
  return n;
}

static void hmb__node_put(hmb__arena_t *a, hmb__ablk_t *n) {
  n->next = a->spare_nodes;
  a->spare_nodes = n;
}

static size_t hmb__hash(const hmb__arena_t *a, size_t off) {
  return (size_t)(((uint64_t)off * 0x9E3779B97F4A7C15ull) >>
                  (64 - a->bucket_bits));
}

/* Double the table when it gets crowded; keep the old one if out of memory. */
static void hmb__hash_grow(hmb__arena_t *a) {
  size_t n = a->nbuckets * 2;
  hmb__ablk_t **nb = calloc(n, sizeof *nb);
  if (!nb)
    return;
  hmb__ablk_t **old = a->buckets;
  size_t oldn = a->nbuckets;
  a->buckets = nb;
  a->nbuckets = n;
  a->bucket_bits++;
  for (size_t i = 0; i < oldn; i++) {
    hmb__ablk_t *b = old[i];
    while (b) {
      hmb__ablk_t *nx = b->fnext;
      size_t h = hmb__hash(a, b->off);
      b->fnext = nb[h];
      nb[h] = b;
      b = nx;
    }
  }
  free(old);
}

static void hmb__hash_insert(hmb__arena_t *a, hmb__ablk_t *b) {
  if (a->used_blocks >= a->nbuckets)
    hmb__hash_grow(a);
  size_t h = hmb__hash(a, b->off);
  b->fnext = a->buckets[h];
  a->buckets[h] = b;
}

/* Unlink and return the used block starting at `off`, or NULL. */
static hmb__ablk_t *hmb__hash_take(hmb__arena_t *a, size_t off) {
  hmb__ablk_t **at = &a->buckets[hmb__hash(a, off)];
  for (; *at; at = &(*at)->fnext) {
    if ((*at)->off == off) {
      hmb__ablk_t *b = *at;
      *at = b->fnext;
      b->fnext = NULL;
      return b;
    }
  }
  return NULL;
}

/* ---- public -------------------------------------------------------------- */

int hmb__arena_create(void *base, size_t size, size_t align,
                      hmb__arena_t **out) {
  *out = NULL;
  if (!base || align < 16 || (align & (align - 1)) != 0)
    return HMB_EINVAL;
  uintptr_t b = (uintptr_t)base;
  uintptr_t start = (b + align - 1) & ~(uintptr_t)(align - 1);
  if (start < b || start - b >= size)
    return HMB_EINVAL;
  size_t granules = (size - (size_t)(start - b)) / align;
  if (granules == 0)
    return HMB_EINVAL;
  hmb__arena_t *a = calloc(1, sizeof *a);
  if (!a)
    return HMB_ENOMEM;
  a->nbuckets = 64;
  a->bucket_bits = 6;
  a->buckets = calloc(a->nbuckets, sizeof *a->buckets);
  if (!a->buckets || pthread_mutex_init(&a->lock, NULL) != 0) {
    free(a->buckets);
    free(a);
    return HMB_ENOMEM;
  }
  a->base = (char *)start;
  a->gran = align;
  a->shift = hmb__log2_floor(align);
  a->total = granules;
  a->end = a->base + granules * align;
  hmb__ablk_t *first = hmb__node_get(a);
  if (!first) {
    hmb__arena_destroy(a);
    return HMB_ENOMEM;
  }
  first->off = 0;
  first->len = granules;
  a->first = first;
  hmb__list_insert(a, first);
  *out = a;
  return 0;
}

void hmb__arena_destroy(hmb__arena_t *a) {
  if (!a)
    return;
  hmb__achunk_t *c = a->chunks;
  while (c) {
    hmb__achunk_t *n = c->next;
    free(c);
    c = n;
  }
  free(a->buckets);
  pthread_mutex_destroy(&a->lock);
  free(a);
}

size_t hmb__arena_block_size(const hmb__arena_t *a, size_t size) {
  return (size + a->gran - 1) & ~(a->gran - 1);
}

int hmb__arena_contains(const hmb__arena_t *a, const void *ptr) {
  const char *p = ptr;
  return a && p >= a->base && p < a->end;
}

/* Steps 1-3 of the search (file comment). Called under the lock. */
static hmb__ablk_t *hmb__find_fit(hmb__arena_t *a, size_t n) {
  unsigned fl, sl;
  hmb__mapping(n, &fl, &sl);
  hmb__ablk_t *own = a->lists[fl][sl];
  int peek = 0;
  for (hmb__ablk_t *b = own; b && peek < HMB__ARENA_PEEK; b = b->fnext, peek++)
    if (b->len >= n)
      return b;
  /* Round up to the next class boundary: any block there is large enough. */
  size_t up = n;
  if (n >= HMB__ARENA_SL)
    up = n + ((size_t)1 << (hmb__log2_floor(n) - HMB__ARENA_SLB)) - 1;
  unsigned ufl, usl;
  hmb__mapping(up, &ufl, &usl);
  hmb__ablk_t *b = hmb__find_class(a, ufl, usl);
  if (b)
    return b;
  for (b = own; b; b = b->fnext)
    if (b->len >= n)
      return b;
  return NULL;
}

void *hmb__arena_alloc(hmb__arena_t *a, size_t size) {
  if (size == 0 || size > a->total * a->gran)
    return NULL;
  size_t n = (size + a->gran - 1) >> a->shift;
  pthread_mutex_lock(&a->lock);
  hmb__ablk_t *b = hmb__find_fit(a, n);
  hmb__ablk_t *rest = NULL;
  if (b && b->len > n) {
    rest = hmb__node_get(a);
    if (!rest)
      b = NULL; /* cannot record the split: report full */
  }
  if (!b) {
    a->failures++;
    pthread_mutex_unlock(&a->lock);
    return NULL;
  }
  hmb__list_remove(a, b);
  if (rest) {
    rest->off = b->off + n;
    rest->len = b->len - n;
    rest->prev = b;
    rest->next = b->next;
    if (b->next)
      b->next->prev = rest;
    b->next = rest;
    b->len = n;
    hmb__list_insert(a, rest);
  }
  hmb__hash_insert(a, b);
  a->used += n;
  a->used_blocks++;
  a->allocs++;
  void *p = a->base + (b->off << a->shift);
  pthread_mutex_unlock(&a->lock);
  return p;
}

/* Merge `right` (free, in no list) into `left`; recycle right's node. */
static void hmb__absorb(hmb__arena_t *a, hmb__ablk_t *left,
                        hmb__ablk_t *right) {
  left->len += right->len;
  left->next = right->next;
  if (right->next)
    right->next->prev = left;
  hmb__node_put(a, right);
}

int hmb__arena_free(hmb__arena_t *a, void *ptr) {
  char *p = ptr;
  if (!hmb__arena_contains(a, p) ||
      ((size_t)(p - a->base) & (a->gran - 1)) != 0)
    return HMB_EINVAL;
  size_t off = (size_t)(p - a->base) >> a->shift;
  pthread_mutex_lock(&a->lock);
  hmb__ablk_t *b = hmb__hash_take(a, off);
  if (!b) {
    pthread_mutex_unlock(&a->lock);
    return HMB_EINVAL;
  }
  a->used -= b->len;
  a->used_blocks--;
  a->frees++;
  if (b->next && b->next->free) {
    hmb__ablk_t *r = b->next;
    hmb__list_remove(a, r);
    hmb__absorb(a, b, r);
  }
  if (b->prev && b->prev->free) {
    hmb__ablk_t *l = b->prev;
    hmb__list_remove(a, l);
    hmb__absorb(a, l, b);
    b = l;
  }
  hmb__list_insert(a, b);
  pthread_mutex_unlock(&a->lock);
  return 0;
}

void hmb__arena_stats(hmb__arena_t *a, hmb__arena_stats_t *out) {
  memset(out, 0, sizeof *out);
  pthread_mutex_lock(&a->lock);
  out->capacity = a->total * a->gran;
  out->used = a->used * a->gran;
  out->free_bytes = out->capacity - out->used;
  out->used_blocks = a->used_blocks;
  out->free_blocks = a->free_blocks;
  out->allocs = a->allocs;
  out->frees = a->frees;
  out->failures = a->failures;
  if (a->fl_map) {
    unsigned fl = hmb__log2_floor((size_t)a->fl_map);
    unsigned sl = hmb__log2_floor(a->sl_map[fl]);
    size_t best = 0;
    for (hmb__ablk_t *b = a->lists[fl][sl]; b; b = b->fnext)
      if (b->len > best)
        best = b->len;
    out->largest_free = best * a->gran;
  }
  pthread_mutex_unlock(&a->lock);
}

int hmb__arena_check(hmb__arena_t *a) {
  int ok = 1;
  pthread_mutex_lock(&a->lock);
  size_t at = 0, used = 0, nused = 0, nfree = 0;
  hmb__ablk_t *prev = NULL;
  for (hmb__ablk_t *b = a->first; b && ok; prev = b, b = b->next) {
    ok = b->off == at && b->len > 0 && b->prev == prev &&
         !(prev && prev->free && b->free);
    at += b->len;
    if (b->free) {
      nfree++;
    } else {
      used += b->len;
      nused++;
      hmb__ablk_t *h = a->buckets[hmb__hash(a, b->off)];
      while (h && h != b)
        h = h->fnext;
      ok = ok && h == b;
    }
  }
  ok = ok && at == a->total && used == a->used && nused == a->used_blocks &&
       nfree == a->free_blocks;
  /* Every listed block is free, in its own class, and the bitmaps agree. */
  size_t listed = 0;
  for (unsigned fl = 0; fl < HMB__ARENA_FL && ok; fl++) {
    for (unsigned sl = 0; sl < HMB__ARENA_SL && ok; sl++) {
      hmb__ablk_t *b = a->lists[fl][sl];
      int bit = (a->sl_map[fl] >> sl) & 1;
      ok = (b != NULL) == bit;
      for (; b && ok; b = b->fnext) {
        unsigned f, s;
        hmb__mapping(b->len, &f, &s);
        ok = b->free && f == fl && s == sl;
        listed++;
      }
    }
    ok = ok && (((a->fl_map >> fl) & 1) != 0) == (a->sl_map[fl] != 0);
  }
  ok = ok && listed == a->free_blocks;
  pthread_mutex_unlock(&a->lock);
  return ok ? 0 : HMB_EFAILED;
}
