/*
 * hmb/allocator.h - the host allocator interface a columnar reader codes to.
 *
 * A reader takes a `const hmb_allocator_t *` and allocates every host buffer
 * of a scan task through it. Two implementations ship: the default allocator
 * (no budget, pageable memory) and the runner (hmb/runner.h), which charges
 * each buffer to a budget and gives the budget back when the buffer's last
 * reference is closed. Applications may write their own (for example a
 * wrapper that records allocations) by filling the struct.
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

/* Allocation flags. */
enum {
  /*
   * Prefer CUDA pinned host memory. A request that cannot be pinned (no CUDA
   * in the build, no GPU or driver at run time, pinned region exhausted) is
   * served from pageable memory instead; hmb_buffer_is_pinned() tells which.
   */
  HMB_ALLOC_PINNED = 1u << 0
};

/*
 * Allocator vtable. `ctx` is passed first to every function.
 * - allocate (required): allocate `bytes` (> 0) and store a new buffer with
 *   one reference in *out. Returns 0 or a negative HMB_E* code, in which case
 *   *out is NULL and no state changed. Must be safe to call from several
 *   threads at once on the same ctx.
 * - name (optional, may be NULL): a short static name for diagnostics.
 */
typedef struct hmb_allocator {
  /* Implementation state, passed first to every function; may be NULL. */
  void *ctx;
  /* Allocate one buffer (required; thread-safe; see above). */
  int (*allocate)(void *ctx, size_t bytes, unsigned flags, hmb_buffer_t **out);
  /* Short static name for diagnostics; may be NULL. */
  const char *name;
} hmb_allocator_t;

/*
 * Allocate through any allocator vtable. Checks the arguments once for all
 * implementations: HMB_EINVAL if `alloc`, its `allocate` or `out` is NULL,
 * if `bytes` is 0 or if `flags` has unknown bits; HMB_ETOOBIG if `bytes`
 * exceeds HMB_MAX_ALLOC. Otherwise returns what the implementation returns.
 * Thread-safe if the implementation is (both built-in ones are).
 */
HMB_API int hmb_allocate(const hmb_allocator_t *alloc, size_t bytes,
                         unsigned flags, hmb_buffer_t **out);

/* Largest single allocation or budget request the library accepts (2^62). */
#define HMB_MAX_ALLOC ((size_t)1 << 62)

/*
 * The default allocator: no budget, pageable memory (HMB_ALLOC_PINNED is
 * served as pageable and counted as a fallback). Never NULL; the returned
 * vtable is static. Thread-safe.
 */
HMB_API const hmb_allocator_t *hmb_default_allocator(void);

/*
 * Physical memory counters of the default allocator (process-wide): bytes
 * live and peak, pinned fallbacks. HMB_EINVAL for NULL. Thread-safe.
 */
HMB_API int hmb_default_memory_stats(hmb_memory_stats_t *out);

#ifdef __cplusplus
}
#endif

#endif /* HMB_ALLOCATOR_H */
