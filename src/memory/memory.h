/*
 * memory.h - internal contract between the budget layer and physical memory.
 *
 * The pool, the runner and the default allocator get bytes only through this
 * contract; they never call the OS, libc allocators or CUDA themselves. A
 * memory object composes the built-in backends (pageable OS memory, an
 * optional warm cache in front of it, an optional CUDA pinned region with
 * pageable fallback) or wraps one custom hmb_backend_t.
 *
 * Every function is thread-safe and takes no library lock other than the
 * memory object's own internal locks (which are leaves: nothing else is
 * acquired while they are held).
 */
#ifndef HMB_SRC_MEMORY_H
#define HMB_SRC_MEMORY_H

#include <stddef.h>

#include "hmb/backend.h"
#include "hmb/pool.h"
#include "hmb/stats.h"

typedef struct hmb__memory hmb__memory_t;

/* Build a memory object from a pool configuration (validated by caller). */
int hmb__memory_create(const hmb_pool_config_t *cfg, hmb__memory_t **out);

/* Free the object; every block must have been returned. NULL is a no-op. */
void hmb__memory_destroy(hmb__memory_t *mem);

/* The process-wide pageable memory of the default allocator. */
hmb__memory_t *hmb__memory_default(void);

/*
 * Allocate `size` bytes. `prefer_pinned` asks for the pinned region; *pinned
 * tells what was served. Returns 0 or HMB_ENOMEM (*ptr untouched).
 */
int hmb__memory_alloc(hmb__memory_t *mem, size_t size, int prefer_pinned,
                      void **ptr, int *pinned);

/*
 * Return a block with the size and pinned flag it was allocated with.
 * 0, or HMB_EINVAL (nothing freed) for a pinned pointer that is not a live
 * block of the region: the caller reports it.
 */
int hmb__memory_free(hmb__memory_t *mem, void *ptr, size_t size, int pinned);

/*
 * Why a pinned region that was asked for could not be made (static
 * storage), or NULL when none was asked for or it works. The caller logs it.
 */
const char *hmb__memory_region_failure(const hmb__memory_t *mem);

/* Counter snapshot. */
void hmb__memory_stats(hmb__memory_t *mem, hmb_memory_stats_t *out);

/* Release cached blocks until at most keep_bytes remain cached. */
void hmb__memory_trim(hmb__memory_t *mem, size_t keep_bytes);

/*
 * Use [base, base + size), owned by the caller, as this object's pinned
 * region: prefer_pinned requests are sub-allocated from it and reported as
 * pinned. For tests of the pinned path on ordinary memory (no GPU needed);
 * call before any allocation. The region is not freed by destroy.
 * 0, HMB_ESTATE (custom backend or a region already present), HMB_EINVAL,
 * HMB_ENOMEM. Not thread-safe.
 */
int hmb__memory_attach_region(hmb__memory_t *mem, void *base, size_t size);

#endif /* HMB_SRC_MEMORY_H */
