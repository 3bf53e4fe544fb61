/*
 * cuda.h - the internal contract between the library and the CUDA runtime.
 *
 * Exactly one of two files implements it: cuda.c (the build found the CUDA
 * toolkit; the only file that includes CUDA headers) or cuda_none.c (built
 * without CUDA: every call reports why pinned memory is unavailable). No
 * other file tests whether CUDA is built in; they call these functions.
 *
 * All functions are thread-safe. Reasons are NUL-terminated texts in
 * static storage (or copied into the caller's buffer where one is given).
 */
#ifndef HMB_SRC_CUDA_H
#define HMB_SRC_CUDA_H

#include <stddef.h>

/* 1 if this build links the CUDA runtime, else 0. */
int hmb__cuda_built(void);

/*
 * Probe once per process whether pinned host memory can be allocated (a
 * runtime, a driver and at least one device are usable): 1 if so, else 0
 * with *reason (may be NULL) set to why. Later calls return the first
 * answer without touching CUDA again. Never crashes without a GPU.
 */
int hmb__cuda_probe(const char **reason);

/*
 * Create a pinned region of `size` bytes: method 0 (HMB_PINNED_HOST_ALLOC)
 * by cudaHostAlloc, method 1 (HMB_PINNED_REGISTER) by mapping pageable
 * memory, pre-touching it from several threads and registering it. Returns
 * 0 with *base, or HMB_ENOTSUP (no CUDA) / HMB_ENOMEM (the runtime refused)
 * with a reason written to why[0..why_len).
 */
int hmb__cuda_region_create(size_t size, int method, void **base, char *why,
                            size_t why_len);

/* Free a region made by hmb__cuda_region_create() with the same arguments. */
void hmb__cuda_region_destroy(void *base, size_t size, int method);

/*
 * What the runtime says about `ptr`: 1 host memory of the pinned
 * (page-locked) kind, 0 anything else, HMB_ENOTSUP without CUDA.
 */
int hmb__cuda_is_pinned(const void *ptr);

/* Device memory and a synchronous host-to-device copy, for benchmarks. */
int hmb__cuda_device_alloc(size_t size, void **dev);
void hmb__cuda_device_free(void *dev);
int hmb__cuda_copy_to_device(void *dev, const void *host, size_t size);

#endif /* HMB_SRC_CUDA_H */
