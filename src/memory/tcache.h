/*
 * tcache.h - the memory layer's per-thread cache.
 *
 * Each thread that allocates gets one, lazily, holding four things:
 *   - small blocks (malloc'd, up to HMB__TC_SMALL_MAX bytes with their
 *     prefix) freed on this thread, by size class, for reuse by this thread
 *     only: no lock, no atomic, no shared cache line;
 *   - 64-byte objects (buffer handles), the same way;
 *   - pairs: a 64-byte object kept with the small block it described (a
 *     buffer handle and its block, closed on this thread), so that the
 *     next allocation of that class and alignment takes both in one pop,
 *     the block already placed (see "Pairs" below);
 *   - a magazine of a few large blocks (mappings) of the warm caches, for
 *     reuse by this thread without taking a lock shared by all threads. The
 *     magazine has a lock of its own (uncontended but for evictions).
 * Bounds per thread: HMB__TC_SMALL_BYTES of small blocks (those of pairs
 * included), HMB__TC_OBJS objects and HMB__TC_PAIRS more in pairs,
 * HMB__TC_LARGE large blocks (those are counted in their warm
 * cache's cached bytes, inside the budget; see cache.h).
 *
 * Between threads, a process-wide depot: a thread whose cache of a class
 * (or of objects) is full moves a batch of them there, and a thread whose
 * cache is empty takes a batch from there before it calls malloc. So a
 * buffer allocated on one thread and closed on another (a scan thread and
 * its consumer) costs one depot lock per batch, not a malloc and a free
 * that contend for the C library's arena. The depot keeps at most
 * HMB__TC_DEPOT_BYTES of small blocks and HMB__TC_DEPOT_OBJS objects; what
 * does not fit goes back to malloc. It is reached only on the slow paths.
 *
 * When a thread exits its cache is emptied: small blocks and objects go
 * back to malloc (a pair's block and its object both), large blocks to
 * their warm cache's release function. A
 * thread that is exiting, or could not get a cache, gets NULL and the
 * callers go without.
 *
 * Locks: one process-wide registry lock (registration, exit, and the walk
 * of evictions; never on an allocation) above each magazine's lock.
 */
#ifndef HMB_SRC_MEMORY_TCACHE_H
#define HMB_SRC_MEMORY_TCACHE_H

#include <stddef.h>
#include <stdint.h>

#include "memory/sizeclass.h"
#include "platform/util.h"

/* Small blocks of at most this many bytes (prefix included) are kept. */
#define HMB__TC_SMALL_MAX ((size_t)128 * 1024)
/* Most bytes of small blocks one thread keeps. */
#define HMB__TC_SMALL_BYTES ((size_t)512 * 1024)
/* Most blocks of one small class one thread keeps (within the bytes above):
 * a reader keeps many small buffers live at once (a stream's pieces, one
 * buffer per column), and each one freed beyond this goes back to malloc,
 * so that the next allocation of the class misses the quick path too. */
#define HMB__TC_SMALL_COUNT 128u
/* Objects of 64 bytes one thread keeps. */
#define HMB__TC_OBJS 128u
/* Pairs one thread keeps (their blocks count in HMB__TC_SMALL_BYTES). */
#define HMB__TC_PAIRS 128u
/* Large blocks one thread keeps in its magazine. */
#define HMB__TC_LARGE 4u
/* Size of the objects of hmb__tcache_obj_get(). */
#define HMB__TC_OBJ_SIZE ((size_t)64)
/* Most bytes of small blocks, and most objects, the depot keeps. */
#define HMB__TC_DEPOT_BYTES ((size_t)2 * 1024 * 1024)
#define HMB__TC_DEPOT_OBJS 4096u
/* Most blocks or objects moved to or from the depot at once. */
#define HMB__TC_BATCH 32u

typedef struct hmb__tcache hmb__tcache_t;

/* Small classes kept: every class whose size is <= HMB__TC_SMALL_MAX
 * (hmb__class_of(128 KiB) == 87). */
#define HMB__TC_NCLASSES 88u

/* The size of each class kept (hmb__class_size() of 0 .. 87, as a table:
 * one load on the hit paths). */
extern const uint32_t hmb__tc_class_size[HMB__TC_NCLASSES];
static inline size_t hmb__tcache_class_size(unsigned cls) { /* cls < 88 */
  return hmb__tc_class_size[cls];
}

/* Under AddressSanitizer small blocks and objects go straight back to
 * malloc, so that a use after free is still reported. */
#if defined(__SANITIZE_ADDRESS__)
#define HMB__TC_KEEP_SMALL 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HMB__TC_KEEP_SMALL 0
#endif
#endif
#ifndef HMB__TC_KEEP_SMALL
#define HMB__TC_KEEP_SMALL 1
#endif

/* The owner-only part of a thread's cache (the hit path; inline below). */
/* A list linked through each node's first word, and its length. */
typedef struct hmb__tc_small {
  void *head;
  unsigned count;
} hmb__tc_small_t;

typedef struct hmb__tc_front {
  hmb__tc_small_t small[HMB__TC_NCLASSES];
  size_t small_bytes;           /* of small[] and of the pairs' blocks */
  hmb__tc_small_t objs;         /* the 64-byte objects */
  void *pair[HMB__TC_NCLASSES]; /* the pairs, by their block's class */
  unsigned npairs;              /* of all pair[] */
} hmb__tc_front_t;

/* The calling thread's cache front (NULL until made). Only tcache.h and
 * tcache.c touch it. */
extern _Thread_local hmb__tc_front_t *hmb__tc_front
    __attribute__((tls_model("initial-exec")));

/* A large block in a magazine, and who it belongs to. `release` gives it
 * back to its owner without taking a lock (it is called under the
 * registry and magazine locks, and in a fork child). */
typedef struct hmb__tc_large {
  void *owner; /* the warm cache (cache.h) */
  void (*release)(void *owner, const struct hmb__tc_large *e);
  void *raw;  /* start of the mapping */
  size_t len; /* its length */
  unsigned cls;
  int huge;
} hmb__tc_large_t;

/* The calling thread's cache, or NULL (exiting, or no memory for one). */
hmb__tcache_t *hmb__tcache(void);
/* The front of it, made if need be; NULL as above. */
hmb__tc_front_t *hmb__tcache_front_slow(void);
static inline hmb__tc_front_t *hmb__tcache_front(void) {
  hmb__tc_front_t *f = hmb__tc_front;
  return HMB__LIKELY(f != NULL) ? f : hmb__tcache_front_slow();
}

/* The parts of the hit path, for callers that check before they take
 * (memory.h): pop `raw`, the head of class `cls` (of size `bytes`); whether
 * class `cls` has room for one more; push one. Owner thread only. */
static inline void hmb__tcache_small_pop(hmb__tc_front_t *f, unsigned cls,
                                         void *raw, size_t bytes) {
  hmb__tc_small_t *s = &f->small[cls];
  s->head = *(void **)raw;
  s->count--;
  f->small_bytes -= bytes;
}

static inline int hmb__tcache_small_room(const hmb__tc_front_t *f, unsigned cls,
                                         size_t bytes) {
  return HMB__TC_KEEP_SMALL && cls < HMB__TC_NCLASSES &&
         f->small[cls].count < HMB__TC_SMALL_COUNT &&
         f->small_bytes + bytes <= HMB__TC_SMALL_BYTES;
}

static inline void hmb__tcache_small_push(hmb__tc_front_t *f, unsigned cls,
                                          void *raw, size_t bytes) {
  hmb__tc_small_t *s = &f->small[cls];
  *(void **)raw = s->head;
  s->head = raw;
  s->count++;
  f->small_bytes += bytes;
}

/* A batch of class `cls` from the depot into the empty class of `f`, and
 * one of them popped; NULL if the depot has none. (tcache.c) */
void *hmb__tcache_small_refill(hmb__tc_front_t *f, unsigned cls);
/* A batch of the full class `cls` of `f` into the depot, then `raw` kept;
 * 0 (nothing moved, `raw` not kept) if the depot has no room. */
int hmb__tcache_small_spill(hmb__tc_front_t *f, unsigned cls, size_t bytes,
                            void *raw);

/* Pop a small block of class `cls` (the thread's cache, then the depot),
 * or NULL. Owner thread only. */
static inline void *hmb__tcache_small_get(unsigned cls) {
  hmb__tc_front_t *f = hmb__tc_front;
  if (!f || cls >= HMB__TC_NCLASSES)
    return NULL;
  void *p = f->small[cls].head;
  if (p)
    hmb__tcache_small_pop(f, cls, p, hmb__tcache_class_size(cls));
  else if (HMB__TC_KEEP_SMALL)
    p = hmb__tcache_small_refill(f, cls);
  return p;
}

/* Keep a small block of `bytes` (its class size), in the thread's cache
 * or, when that is full, by moving a batch to the depot; 1 if kept, 0 if
 * there is no room for it. */
static inline int hmb__tcache_small_put(unsigned cls, size_t bytes, void *raw) {
  if (!HMB__TC_KEEP_SMALL || cls >= HMB__TC_NCLASSES)
    return 0;
  hmb__tc_front_t *f = hmb__tcache_front();
  if (!f)
    return 0;
  if (!hmb__tcache_small_room(f, cls, bytes))
    return hmb__tcache_small_spill(f, cls, bytes, raw);
  hmb__tcache_small_push(f, cls, raw, bytes);
  return 1;
}

/* An object is in the calling thread's cache (the get below will not call
 * out); there is room for one more (the put below will not). */
static inline int hmb__tcache_obj_ready(const hmb__tc_front_t *f) {
  return f->objs.head != NULL;
}
static inline int hmb__tcache_obj_room(const hmb__tc_front_t *f) {
  return HMB__TC_KEEP_SMALL && f->objs.count < HMB__TC_OBJS;
}
/* Pop the head object after hmb__tcache_obj_ready(); push one after
 * hmb__tcache_obj_room(). Owner thread only. */
static inline void *hmb__tcache_obj_pop(hmb__tc_front_t *f) {
  void *p = f->objs.head;
  f->objs.head = *(void **)p;
  f->objs.count--;
  return p;
}
static inline void hmb__tcache_obj_push(hmb__tc_front_t *f, void *obj) {
  *(void **)obj = f->objs.head;
  f->objs.head = obj;
  f->objs.count++;
}

/* A 64-byte object, 64-byte aligned; NULL on failure. Any thread. */
void *hmb__tcache_obj_get_slow(void);
static inline void *hmb__tcache_obj_get(void) {
  hmb__tc_front_t *f = hmb__tc_front;
  if (HMB__LIKELY(f && hmb__tcache_obj_ready(f)))
    return hmb__tcache_obj_pop(f);
  return hmb__tcache_obj_get_slow();
}

/* Give one back (kept by the calling thread, or freed). Any thread. */
void hmb__tcache_obj_put_slow(void *obj);
static inline void hmb__tcache_obj_put(void *obj) {
  hmb__tc_front_t *f = hmb__tc_front;
  if (HMB__LIKELY(f && hmb__tcache_obj_room(f))) {
    hmb__tcache_obj_push(f, obj);
    return;
  }
  hmb__tcache_obj_put_slow(obj);
}

/*
 * Pairs. A pair is a 64-byte object whose word 0 links it in its list and
 * whose word HMB__TC_PAIR_DATA holds the data pointer of a small block of
 * the class it is kept under (the block's word, block.h, gives its start;
 * that is how a thread's exit frees both). The block's word and data stay
 * as they were placed; the caller that pops a pair may reuse them when the
 * alignment it wants is the one the block's word records. The memory
 * layer's gauges count a pair's block as a block in the cache: not live,
 * not physical. Owner thread only; never moved to the depot (a full cache
 * keeps the pair's parts apart, on the lists above).
 */
#define HMB__TC_PAIR_DATA 2u
static inline void *hmb__tcache_pair_data(const void *obj) {
  return ((void *const *)obj)[HMB__TC_PAIR_DATA];
}
static inline int hmb__tcache_pair_room(const hmb__tc_front_t *f,
                                        size_t bytes) {
  return HMB__TC_KEEP_SMALL && f->npairs < HMB__TC_PAIRS &&
         f->small_bytes + bytes <= HMB__TC_SMALL_BYTES;
}
/* Pop `obj`, the head pair of class `cls` (of size `bytes`). */
static inline void hmb__tcache_pair_pop(hmb__tc_front_t *f, unsigned cls,
                                        void *obj, size_t bytes) {
  f->pair[cls] = *(void **)obj;
  f->npairs--;
  f->small_bytes -= bytes;
}
/* Push a pair after hmb__tcache_pair_room() (cls < HMB__TC_NCLASSES). */
static inline void hmb__tcache_pair_push(hmb__tc_front_t *f, unsigned cls,
                                         void *obj, size_t bytes) {
  *(void **)obj = f->pair[cls];
  f->pair[cls] = obj;
  f->npairs++;
  f->small_bytes += bytes;
}

/* Split the head pair of class `cls` (there is one): its block to the
 * class's blocks, its object to the objects; either goes back to malloc
 * where its list is full. (tcache.c) */
void hmb__tcache_pair_split(hmb__tc_front_t *f, unsigned cls);

/* What the depot holds now (for tests and the self-check). */
void hmb__tcache_depot_counts(size_t *small_bytes, unsigned *objs);

/* Take a large block of `owner` and class `cls` from the calling thread's
 * magazine; 1 if found (*out filled). */
int hmb__tcache_large_get(hmb__tcache_t *tc, const void *owner, unsigned cls,
                          hmb__tc_large_t *out);
/* Keep a large block in the calling thread's magazine; 1 if kept. */
int hmb__tcache_large_put(hmb__tcache_t *tc, const hmb__tc_large_t *e);
/*
 * Take any large block of `owner` out of any thread's magazine (for
 * evictions, trims and destroy); 1 if one was found (*out filled).
 */
int hmb__tcache_large_take_any(const void *owner, hmb__tc_large_t *out);

#endif /* HMB_SRC_MEMORY_TCACHE_H */
