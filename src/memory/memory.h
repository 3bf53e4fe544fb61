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

#include <stddef.h>
#include <stdint.h>

#include "hmb/backend.h"
#include "hmb/pool.h"
#include "hmb/stats.h"

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

/*
 * Allocate `size` bytes whose data is aligned to `align` (a power of two,
 * 0: the object's default alignment). `prefer_pinned` asks for the pinned
 * region; *pinned tells what was served. `shard` is the calling thread's
 * shard index (hmb__shard_index(), passed down so it is read once).
 * Returns the data pointer (with its prefix and block word in place), or
 * NULL.
 */
void *hmb__memory_alloc(hmb__memory_t *mem, size_t size, size_t align,
                        int prefer_pinned, int *pinned, unsigned shard);

/*
 * Return a block with the size it was allocated (or last resized) with.
 * 0, or HMB_EINVAL (nothing freed) for a data pointer whose block word is
 * not valid or that the pinned region does not know: the caller reports it.
 */
int hmb__memory_free(hmb__memory_t *mem, void *data, size_t size,
                     unsigned shard);

/*
 * Resize a block in place when it already has room for `new_size` (its
 * class or mapping is large enough): 1 if done (counters adjusted), 0 if the
 * caller must allocate, copy and free.
 */
int hmb__memory_resize_in_place(hmb__memory_t *mem, void *data, size_t old_size,
                                size_t new_size, unsigned shard);

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
