/*
 * cache.h - the warm cache of freed pageable blocks.
 *
 * A cache sits in front of the OS allocator (os.h). Requests of
 * HMB__CACHE_MIN bytes or more are rounded up to a size class (8 classes per
 * power of two, so the rounding adds less than 1/8); a freed block of a
 * class is kept, up to the cap, and handed to the next request of the same
 * class without touching the OS: its pages are already mapped and warm.
 * Smaller requests and classes above the cap bypass the cache.
 *
 * Bound: cached bytes (block sizes, after rounding) never exceed the cap, at
 * any instant, under any concurrency: room is reserved by compare-and-swap
 * before a block is kept. Freed blocks that find no room go back to the OS.
 * There is no eviction between classes: hmb__cache_trim() (and the pool's
 * hmb_pool_trim()) gives cached blocks back on demand.
 *
 * Concurrency: one short mutex per class protects a LIFO stack threaded
 * through the cached blocks themselves; the OS is never called while a lock
 * is held. Counters are atomics.
 */
#ifndef HMB_SRC_CACHE_H
#define HMB_SRC_CACHE_H

#include <stddef.h>
#include <stdint.h>

/* Smallest request the cache rounds and keeps. */
#define HMB__CACHE_MIN ((size_t)4096)

typedef struct hmb__cache hmb__cache_t;

typedef struct hmb__cache_stats {
  int64_t cached;   /* bytes kept now (<= cap) */
  int64_t cap;      /* the configured cap */
  uint64_t hits;    /* allocations served from the cache */
  uint64_t misses;  /* cacheable allocations that went to the OS */
  uint64_t rejects; /* frees that found the cache full (went to the OS) */
  uint64_t trimmed; /* bytes given back by trims */
} hmb__cache_stats_t;

/*
 * Create a cache of at most `cap` (> 0) bytes whose blocks are aligned to
 * `align` (power of two >= sizeof(void *)). 0, HMB_EINVAL or HMB_ENOMEM.
 */
int hmb__cache_create(size_t cap, size_t align, hmb__cache_t **out);

/* Give every cached block back and free the cache. NULL is a no-op. */
void hmb__cache_destroy(hmb__cache_t *c);

/*
 * Bytes a request of `size` really occupies: its class size when the cache
 * handles it, else `size`. Pure function of the size; thread-safe.
 */
size_t hmb__cache_block_size(const hmb__cache_t *c, size_t size);

/*
 * A block for a request of `size` bytes (hmb__cache_block_size(size) bytes
 * long): a cached one (hit), else a new one from the OS. NULL if the OS
 * fails. Thread-safe.
 */
void *hmb__cache_alloc(hmb__cache_t *c, size_t size);

/* Take back a block allocated for a request of `size`. Thread-safe. */
void hmb__cache_free(hmb__cache_t *c, void *ptr, size_t size);

/*
 * Give cached blocks back to the OS, largest classes first, until at most
 * `keep` bytes remain cached. Thread-safe (concurrent frees may refill).
 */
void hmb__cache_trim(hmb__cache_t *c, size_t keep);

/* Counter snapshot. Thread-safe, lock-free. */
void hmb__cache_stats(hmb__cache_t *c, hmb__cache_stats_t *out);

#endif /* HMB_SRC_CACHE_H */
