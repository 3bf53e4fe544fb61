/**
 * @file hmb/allocator.h
 * @brief The host allocator interface a columnar reader codes to, in two
 *        styles: buffer handles and plain pointers.
 *
 * A reader takes a `const hmb_allocator_t *` and allocates every host buffer
 * of a scan task through it. Built-in implementations: the default
 * allocator (no budget), a runner (hmb/runner.h, charges a budget) and the
 * bound allocator (charges whatever runner the calling thread has bound).
 * Applications may write their own by filling the struct.
 *
 * @par Two styles
 *   - **Handles**: hmb_allocate() returns an #hmb_buffer_t with a reference
 *     count, slices and close events (cuDF-style buffers).
 *   - **Pointers**: hmb_ptr_alloc() / hmb_ptr_realloc() / hmb_ptr_free()
 *     for readers coded to malloc-style pool interfaces (Apache ORC's
 *     `MemoryPool`, Arrow's `MemoryPool`). Every pointer is the data of a
 *     buffer handle, found again in O(1) without a lock by hmb_ptr_buffer(),
 *     so retain, slice and close handlers work on it too; hmb_ptr_free() is
 *     hmb_buffer_close() of that handle.
 *
 * @par Per-allocation overhead (built-in allocators)
 * Blocks below 256 KiB come from the C library's malloc with a prefix of
 * max(16, alignment) bytes in front of the data (the back-pointer to the
 * handle lives in its last 8 bytes); the handle itself is 64 bytes, taken
 * from a per-thread cache. Larger blocks are whole-page mappings with the
 * same prefix inside their first page. The budget is charged the requested
 * size only; hmb/stats.h states the physical bound including the prefix.
 * Zero-byte allocations charge nothing and still return a distinct
 * pointer (a block of the prefix and one byte, so that the pointer lies
 * inside it: leak checkers count it as a reference).
 */
#ifndef HMB_ALLOCATOR_H
#define HMB_ALLOCATOR_H

#include <stddef.h>

#include "buffer.h"
#include "export.h"
#include "stats.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Allocation flags. */
enum hmb_alloc_flags {
  /**
   * Prefer CUDA pinned host memory. A request that cannot be pinned (no CUDA
   * runtime or GPU, no pinned region, region exhausted) is served from
   * pageable memory instead; hmb_buffer_is_pinned() tells which.
   */
  HMB_ALLOC_PINNED = 1u << 0
};

/** Largest single allocation or budget request the library accepts (2^62). */
#define HMB_MAX_ALLOC ((size_t)1 << 62)

/** Largest alignment hmb_ptr_alloc() and hmb_allocate_aligned() accept. */
#define HMB_MAX_ALIGN ((size_t)1 << 16)

/**
 * Allocator vtable. `ctx` is passed first to every function. Initialise it
 * with designated initialisers or zero it first: fields are only ever
 * appended, and a zero field means "not provided".
 */
typedef struct hmb_allocator {
  /** Implementation state, passed first to every function; may be NULL. */
  void *ctx;
  /**
   * Allocate one buffer of `bytes` (0 is valid) with one reference into
   * `*out`. Returns 0 or a negative HMB_E* code, in which case `*out` is
   * NULL and no state changed. Required; must be thread-safe.
   */
  int (*allocate)(void *ctx, size_t bytes, unsigned flags, hmb_buffer_t **out);
  /** Short static name for diagnostics; may be NULL. */
  const char *name;
  /**
   * Optional: like allocate, with the data aligned to `alignment` (a power
   * of two <= #HMB_MAX_ALIGN). When NULL, aligned and pointer-style
   * allocations are served by allocate() with room to align inside.
   */
  int (*allocate_aligned)(void *ctx, size_t bytes, size_t alignment,
                          unsigned flags, hmb_buffer_t **out);
} hmb_allocator_t;

/**
 * Allocate a buffer through any allocator vtable. Checks the arguments once
 * for all implementations.
 * @param alloc the allocator
 * @param bytes bytes to allocate; 0 gives a valid buffer of size 0 that
 *              charges nothing
 * @param flags bit set of hmb_alloc_flags
 * @param out   receives the buffer; NULL on error
 * @return 0; #HMB_EINVAL (`alloc`, its allocate or `out` NULL, unknown flag
 *         bits); #HMB_ETOOBIG (`bytes` above #HMB_MAX_ALLOC); otherwise what
 *         the implementation returns
 * @par Thread-safety
 * Thread-safe if the implementation is (the built-in ones are).
 */
HMB_API int hmb_allocate(const hmb_allocator_t *alloc, size_t bytes,
                         unsigned flags, hmb_buffer_t **out);

/**
 * hmb_allocate() with the data aligned to `alignment`.
 * @param alloc     the allocator
 * @param bytes     bytes to allocate (0 is valid)
 * @param alignment a power of two <= #HMB_MAX_ALIGN (0: the allocator's
 *                  default)
 * @param flags     bit set of hmb_alloc_flags
 * @param out       receives the buffer
 * @return as hmb_allocate(); #HMB_EINVAL for a bad alignment
 * @par Thread-safety
 * As hmb_allocate().
 */
HMB_API int hmb_allocate_aligned(const hmb_allocator_t *alloc, size_t bytes,
                                 size_t alignment, unsigned flags,
                                 hmb_buffer_t **out);

/**
 * Allocate `bytes` and return a plain pointer (the data of a new buffer
 * handle with one reference).
 * @param alloc     any allocator
 * @param bytes     bytes to allocate; 0 gives a distinct, freeable pointer
 *                  that charges nothing
 * @param alignment a power of two <= #HMB_MAX_ALIGN; 0: 16
 * @param flags     bit set of hmb_alloc_flags
 * @param out       receives the pointer; NULL on error
 * @return as hmb_allocate_aligned()
 * @par Thread-safety
 * As hmb_allocate().
 */
HMB_API int hmb_ptr_alloc(const hmb_allocator_t *alloc, size_t bytes,
                          size_t alignment, unsigned flags, void **out);

/**
 * Resize a block from hmb_ptr_alloc(), keeping its owner, its alignment
 * and its first min(old, new) bytes. The owner (a runner) is charged only
 * the difference: a growth borrows it first (and fails changing nothing if
 * it cannot be had), a shrink gives it back after the block has shrunk.
 * The block stays where it is only while a fresh allocation of the new size
 * would get the same block (same size class); otherwise the data moves to
 * a new block, so a shrink never keeps a larger block than its size needs
 * (the physical bound of hmb/stats.h holds after it).
 * @param ptr   in: the block (NULL: like hmb_ptr_alloc() on the default
 *              allocator); out: the block, possibly moved
 * @param bytes the new size (0 is valid)
 * @return 0; #HMB_EINVAL (NULL `ptr`, or `*ptr` not from hmb_ptr_alloc());
 *         #HMB_EBUSY (the buffer has other references or slices, which
 *         would see the old memory); the errors of an allocation. On error
 *         `*ptr` and its bytes are unchanged.
 * @par Thread-safety
 * Thread-safe; the caller must own the only reference.
 */
HMB_API int hmb_ptr_realloc(void **ptr, size_t bytes);

/**
 * Free a block from hmb_ptr_alloc(): hmb_buffer_close() of its handle (the
 * memory and its budget go back when the last reference closes). A foreign
 * pointer is recognised by the check word in the 16 bytes before it, which
 * are read: like free(), it must at least point into readable memory with
 * readable bytes before it (any pointer a C allocator returned does).
 * @param ptr the block; NULL is a no-op returning 0
 * @return 0, #HMB_EINVAL (not a block of hmb_ptr_alloc(): nothing is
 *         freed, an error is logged), #HMB_ESTATE (closed more often than
 *         retained)
 * @par Thread-safety
 * Thread-safe: any thread may free (or close) it.
 */
HMB_API int hmb_ptr_free(void *ptr);

/**
 * The buffer handle behind a block of hmb_ptr_alloc(), in O(1) and without
 * a lock. The handle may be retained, sliced and given a close handler.
 * @param ptr the block
 * @return the handle (not retained), or NULL for NULL or a pointer that is
 *         not the start of such a block (detected by a check word)
 * @par Thread-safety
 * Thread-safe while the caller holds a reference.
 */
HMB_API hmb_buffer_t *hmb_ptr_buffer(const void *ptr);

/**
 * The size asked for a block of hmb_ptr_alloc() (or its last realloc).
 * @param ptr the block
 * @return its size, 0 for NULL or a foreign pointer
 * @par Thread-safety
 * As hmb_ptr_buffer().
 */
HMB_API size_t hmb_ptr_size(const void *ptr);

/**
 * The default allocator: no budget, pageable memory (#HMB_ALLOC_PINNED is
 * served pageable and counted as a fallback).
 * @return a static vtable, never NULL
 * @par Thread-safety
 * Thread-safe.
 */
HMB_API const hmb_allocator_t *hmb_default_allocator(void);

/** What the bound allocator does on a thread with no runner bound. */
typedef enum hmb_unbound_mode {
  HMB_UNBOUND_DEFAULT = 0, /**< use the default allocator (no budget) */
  HMB_UNBOUND_FAIL = 1     /**< fail with #HMB_ESTATE */
} hmb_unbound_mode_t;

/**
 * An allocator that charges whatever runner the calling thread has bound
 * with hmb_runner_bind() at the moment of each allocation (frees go to the
 * buffer's own runner, whichever thread closes it).
 * @param mode an hmb_unbound_mode_t: what to do when no runner is bound
 * @return a static vtable; NULL for an unknown mode
 * @par Thread-safety
 * Thread-safe.
 */
HMB_API const hmb_allocator_t *hmb_bound_allocator(int mode);

/**
 * Physical memory counters of the default allocator (process-wide); the
 * form behind hmb_default_memory_stats().
 * @param out      receives the snapshot
 * @param out_size `sizeof(hmb_memory_stats_t)` as the caller was compiled
 * @return 0 or #HMB_EINVAL
 * @par Thread-safety
 * Thread-safe.
 */
HMB_API int hmb_default_memory_stats_sized(hmb_memory_stats_t *out,
                                           size_t out_size);
/**
 * Physical memory counters of the default allocator (macro over
 * hmb_default_memory_stats_sized()).
 * @param out receives the snapshot
 */
#define hmb_default_memory_stats(out)                                          \
  hmb_default_memory_stats_sized((out), sizeof(hmb_memory_stats_t))
/**
 * The function form of the hmb_default_memory_stats() macro, for callers that
 * cannot use the macro (other languages, function pointers): the same call,
 * assuming the struct layout of this release.
 * @param out as for the macro
 * @return as hmb_default_memory_stats_sized()
 */
HMB_API int(hmb_default_memory_stats)(hmb_memory_stats_t *out);

#ifdef __cplusplus
}
#endif

#endif /* HMB_ALLOCATOR_H */
