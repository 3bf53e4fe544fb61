/*
 * os.h - the few platform services the library needs (POSIX here): aligned
 * pageable memory, whole-page mappings, parallel pre-touch, a monotonic
 * clock, and condition-variable deadlines. Everything platform-specific
 * outside CUDA lives behind these functions.
 *
 * Pageable blocks: hmb__os_alloc() serves blocks of HMB__OS_MAP_MIN bytes or
 * more with their own anonymous mapping (so that freeing them really gives
 * the pages back to the OS, and trimming a cache is exact) and smaller ones
 * from libc. The choice depends on the size only, so hmb__os_free() needs
 * nothing but the size the block was allocated with.
 */
#ifndef HMB_SRC_OS_H
#define HMB_SRC_OS_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

/* Blocks of at least this many bytes get their own mapping. */
#define HMB__OS_MAP_MIN ((size_t)256 * 1024)

/*
 * Aligned pageable block (align: power of two >= sizeof(void *)). NULL on
 * failure. Thread-safe. hmb__os_free() takes the same size back.
 */
void *hmb__os_alloc(size_t size, size_t align);
void hmb__os_free(void *ptr, size_t size);

/* The OS page size in bytes (a power of two); cached after the first call. */
size_t hmb__os_page_size(void);

/*
 * Map `size` bytes (rounded up to whole pages) of anonymous read-write
 * memory aligned to `align` (a power of two; at least the page size is
 * always given). NULL on failure. hmb__os_unmap() takes the same size.
 * Thread-safe; the pages are not touched.
 */
void *hmb__os_map(size_t size, size_t align);
void hmb__os_unmap(void *ptr, size_t size);

/*
 * Write one byte in every page of [ptr, ptr + size) so that the OS backs
 * the range with physical pages now, using up to `threads` threads (0: one
 * per online CPU, at most 16). Falls back to the calling thread alone if
 * threads cannot be started. Thread-safe for disjoint ranges.
 */
void hmb__os_touch(void *ptr, size_t size, int threads);

/* Number of online CPUs (at least 1). */
int hmb__os_cpus(void);

/* Monotonic time in nanoseconds. */
uint64_t hmb__os_now_ns(void);

/* Initialise a condition variable that waits on the monotonic clock. */
int hmb__os_cond_init(pthread_cond_t *cond);

/*
 * Wait on `cond` until signalled or until the monotonic time `deadline_ns`
 * (UINT64_MAX: no deadline). Returns 0 or ETIMEDOUT (spurious wake-ups may
 * return 0: callers re-check their predicate).
 */
int hmb__os_cond_wait_until(pthread_cond_t *cond, pthread_mutex_t *mu,
                            uint64_t deadline_ns);

/* Deadline for a relative timeout (<0: UINT64_MAX, i.e. none). */
uint64_t hmb__os_deadline(int64_t timeout_ns);

#endif /* HMB_SRC_OS_H */
