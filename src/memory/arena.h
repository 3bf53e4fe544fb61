/*
 * arena.h - a thread-safe sub-allocator over one caller-owned memory region.
 *
 * The arena hands out aligned pieces of a region it does not own (a CUDA
 * pinned region in production, ordinary memory in the tests: the same code
 * either way; nothing here knows about CUDA). Its bookkeeping lives outside
 * the region, so the region's bytes are never read or written by the arena
 * and a caller's overrun cannot corrupt it.
 *
 * Algorithm (see arena.c): two-level segregated fit over size classes with
 * bitmaps (constant-time search), splitting on allocation and immediate
 * coalescing with both address neighbours on free. Guarantees:
 *   - every block starts on a multiple of `align` from an aligned base and
 *     its length is the request rounded up to `align` (internal waste is
 *     less than `align` per block);
 *   - no two free blocks are ever adjacent, so when every block is freed the
 *     region is one free block again;
 *   - an allocation fails only if no free block is large enough (or the
 *     bookkeeping itself cannot get memory): there is no false "full".
 */
#ifndef HMB_SRC_ARENA_H
#define HMB_SRC_ARENA_H

#include <stddef.h>
#include <stdint.h>

typedef struct hmb__arena hmb__arena_t;

/* Counters of an arena; byte counts include the rounding to `align`. */
typedef struct hmb__arena_stats {
  size_t capacity;     /* usable bytes of the region */
  size_t used;         /* bytes in allocated blocks */
  size_t free_bytes;   /* capacity - used */
  size_t largest_free; /* largest single free block */
  size_t used_blocks;  /* allocated blocks */
  size_t free_blocks;  /* free blocks (fragments) */
  uint64_t allocs, frees, failures;
} hmb__arena_stats_t;

/*
 * Create an arena over [base, base + size). `align` is a power of two
 * >= 16; the base is rounded up and the size down to it. Errors: HMB_EINVAL
 * (bad alignment, NULL base, or less than one aligned unit), HMB_ENOMEM.
 * The region stays owned by the caller and must outlive the arena.
 */
int hmb__arena_create(void *base, size_t size, size_t align,
                      hmb__arena_t **out);

/* Free the bookkeeping (not the region). NULL is a no-op. Not thread-safe. */
void hmb__arena_destroy(hmb__arena_t *a);

/*
 * Allocate `size` (> 0) bytes aligned to the arena's alignment, or NULL if
 * no free block is large enough. Thread-safe (one short lock per call).
 */
void *hmb__arena_alloc(hmb__arena_t *a, size_t size);

/*
 * Free a block returned by hmb__arena_alloc(). HMB_EINVAL (and no change)
 * for a pointer that is not the start of an allocated block, which catches
 * double frees. Thread-safe.
 */
int hmb__arena_free(hmb__arena_t *a, void *ptr);

/* 1 if `ptr` lies inside the arena's region. Lock-free, thread-safe. */
int hmb__arena_contains(const hmb__arena_t *a, const void *ptr);

/* Bytes a request of `size` occupies (rounded to the alignment). */
size_t hmb__arena_block_size(const hmb__arena_t *a, size_t size);

/* Counter snapshot (consistent: taken under the lock). Thread-safe. */
void hmb__arena_stats(hmb__arena_t *a, hmb__arena_stats_t *out);

/*
 * Verify every internal invariant (blocks tile the region in address
 * order, no two free neighbours, free lists and bitmaps agree with the
 * blocks, counters add up). 0 if sound, else HMB_EFAILED. For tests;
 * thread-safe but takes the lock for a full walk.
 */
int hmb__arena_check(hmb__arena_t *a);

#endif /* HMB_SRC_ARENA_H */
