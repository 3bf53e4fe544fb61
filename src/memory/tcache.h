/*
 * tcache.h - the memory layer's per-thread cache.
 *
 * Each thread that allocates gets one, lazily, holding three things:
 *   - small blocks (malloc'd, up to HMB__TC_SMALL_MAX bytes with their
 *     prefix) freed on this thread, by size class, for reuse by this thread
 *     only: no lock, no atomic, no shared cache line;
 *   - 64-byte objects (buffer handles), the same way;
 *   - a magazine of a few large blocks (mappings) of the warm caches, for
 *     reuse by this thread without taking a lock shared by all threads. The
 *     magazine has a lock of its own (uncontended but for evictions).
 * Bounds per thread: HMB__TC_SMALL_BYTES of small blocks, HMB__TC_OBJS
 * objects, HMB__TC_LARGE large blocks (those are counted in their warm
 * cache's cached bytes, inside the budget; see cache.h).
 *
 * When a thread exits its cache is emptied: small blocks and objects go
 * back to malloc, large blocks to their warm cache's release function. A
 * thread that is exiting, or could not get a cache, gets NULL and the
 * callers go without.
 *
 * Locks: one process-wide registry lock (registration, exit, and the walk
 * of evictions; never on an allocation) above each magazine's lock.
 */
#ifndef HMB_SRC_MEMORY_TCACHE_H
#define HMB_SRC_MEMORY_TCACHE_H

#include <stddef.h>

/* Small blocks of at most this many bytes (prefix included) are kept. */
#define HMB__TC_SMALL_MAX ((size_t)128 * 1024)
/* Most bytes of small blocks one thread keeps. */
#define HMB__TC_SMALL_BYTES ((size_t)512 * 1024)
/* Most blocks of one small class one thread keeps. */
#define HMB__TC_SMALL_COUNT 16u
/* Objects of 64 bytes one thread keeps. */
#define HMB__TC_OBJS 128u
/* Large blocks one thread keeps in its magazine. */
#define HMB__TC_LARGE 4u
/* Size of the objects of hmb__tcache_obj_get(). */
#define HMB__TC_OBJ_SIZE ((size_t)64)

typedef struct hmb__tcache hmb__tcache_t;

/* A large block in a magazine, and who it belongs to. */
typedef struct hmb__tc_large {
  void *owner; /* the warm cache (cache.h) */
  void (*release)(void *owner, const struct hmb__tc_large *e);
  void *raw;   /* start of the mapping */
  size_t len;  /* its length */
  unsigned cls;
  int huge;
} hmb__tc_large_t;

/* The calling thread's cache, or NULL (exiting, or no memory for one). */
hmb__tcache_t *hmb__tcache(void);

/* Pop a small block of class `cls`, or NULL. Owner thread only. */
void *hmb__tcache_small_get(hmb__tcache_t *tc, unsigned cls);
/* Keep a small block of `bytes` (its class size); 1 if kept, 0 if full. */
int hmb__tcache_small_put(hmb__tcache_t *tc, unsigned cls, size_t bytes,
                          void *raw);

/* A 64-byte object, 64-byte aligned; NULL on failure. Any thread. */
void *hmb__tcache_obj_get(void);
/* Give one back (kept by the calling thread, or freed). Any thread. */
void hmb__tcache_obj_put(void *obj);

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
