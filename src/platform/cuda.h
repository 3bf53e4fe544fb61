/*
 * cuda.h - the internal contract between the library and the CUDA runtime.
 *
 * Exactly one of two files implements it: cuda.c (loads the CUDA runtime
 * with dlopen the first time pinned memory is needed; no CUDA header or
 * library is needed to build it) or cuda_none.c (HMB_WITH_CUDA=OFF: every
 * call reports why pinned memory is unavailable). No other file tests
 * whether CUDA is built in; they call these functions.
 *
 * All functions are thread-safe. Reasons are NUL-terminated texts in
 * static storage (or copied into the caller's buffer where one is given).
 */
#ifndef HMB_SRC_CUDA_H
#define HMB_SRC_CUDA_H

#include <stddef.h>

/*
 * 1 if this build can use the CUDA runtime (it is looked for at run time,
 * see hmb__cuda_probe()), 0 if it was built without CUDA support.
 */
int hmb__cuda_built(void);

/*
 * Probe once per process whether pinned host memory can be allocated: the
 * CUDA runtime library loads, a driver and at least one device are usable
 * and a small pinned allocation succeeds. Returns 1 if so, else 0 with
 * *reason (may be NULL) set to what failed. The first call loads the
 * runtime; later calls return the first answer without touching CUDA again.
 * Never crashes without a GPU, a driver or the runtime library.
 */
int hmb__cuda_probe(const char **reason);

/*
 * The CUDA runtime library in use, as it was opened ("libcudart.so.13", or
 * the value of the HMB_CUDART environment variable), or why none is ("libcudart
 * not found (tried ...)", or the reason of a build without CUDA support).
 * "" while no pool has needed the runtime yet: this call never loads it.
 */
const char *hmb__cuda_runtime(void);

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

#endif /* HMB_SRC_CUDA_H */
