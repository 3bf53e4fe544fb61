/**
 * @file hmb/backend.h
 * @brief Where physical bytes come from.
 *
 * A pool normally gets its memory from the built-in backends (pageable
 * memory, optionally a CUDA pinned region and a warm cache; see
 * hmb_pool_config_t). An application can instead supply its own backend:
 * its own arena, a NUMA-aware allocator, or a test backend that fails on
 * demand. The budget is charged the same way whatever the backend.
 */
#ifndef HMB_BACKEND_H
#define HMB_BACKEND_H

#include <stddef.h>

#include "export.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * Backend vtable. `ctx` is passed first to every function. Both functions
 * are required and must be thread-safe (they are called from any thread that
 * allocates or closes a buffer, concurrently, never under a library lock).
 * - alloc: allocate `size` bytes aligned to `align` (a power of two >= 16).
 *   `prefer_pinned` is a hint. Store the address in *ptr and 1/0 in *pinned.
 *   Return 0, or #HMB_ENOMEM (any nonzero is treated as #HMB_ENOMEM) with
 *   *ptr untouched. `size` includes room for the library's prefix in front
 *   of the data (hmb/allocator.h).
 * - free: give back a block returned by alloc, with the same size and the
 *   pinned value alloc reported.
 */
typedef struct hmb_backend {
  /** Backend state, passed first to both functions; may be NULL. */
  void *ctx;
  /** Allocate a block (required; thread-safe; see above). */
  int (*alloc)(void *ctx, size_t size, size_t align, int prefer_pinned,
               void **ptr, int *pinned);
  /** Give a block back (required; thread-safe; see above). */
  void (*free)(void *ctx, void *ptr, size_t size, int pinned);
} hmb_backend_t;

#ifdef __cplusplus
}
#endif

#endif /* HMB_BACKEND_H */
