/*
 * bench_gpu.h - the benchmarks' own GPU copies (device memory and
 * host-to-device copies), for hmb_bench and bench_memory.
 *
 * The library needs no CUDA at build time and offers no device memory; the
 * benchmarks that measure copies to the GPU link the CUDA runtime
 * themselves when CMake finds the CUDA toolkit (HMB_BENCH_CUDART). Without
 * it these calls do nothing and say so: "built without the CUDA toolkit".
 *
 * Main thread only (the answer of bench_gpu_usable() is cached), except
 * bench_gpu_copy(), which any one thread may call at a time.
 */
#ifndef HMB_BENCH_GPU_H
#define HMB_BENCH_GPU_H

#include <stddef.h>

/* 1 if this program was built with the CUDA toolkit (it can try copies). */
int bench_gpu_built(void);

/* 1 when copies to a GPU can be made, else 0 with *why (may be NULL) set to
 * what is missing. Decided on the first call. */
int bench_gpu_usable(const char **why);

/* Device memory of `size` bytes: 0 with *dev, or -1. */
int bench_gpu_alloc(size_t size, void **dev);

/* Free what bench_gpu_alloc() gave; NULL is a no-op. */
void bench_gpu_free(void *dev);

/* Pinned host memory from cudaMallocHost (the baseline of hmb's pinned
 * buffers): 0 with *host, or -1. */
int bench_gpu_host_alloc(size_t size, void **host);

/* Free what bench_gpu_host_alloc() gave; NULL is a no-op. */
void bench_gpu_host_free(void *host);

/* Synchronous host-to-device copy: 0, or -1 when the runtime failed. */
int bench_gpu_copy(void *dev, const void *host, size_t size);

#endif /* HMB_BENCH_GPU_H */
