/*
 * bench_gpu.c - bench_gpu.h over the CUDA runtime, when the benchmarks are
 * built with the CUDA toolkit (HMB_BENCH_CUDART); otherwise every call
 * reports that the toolkit was missing at build time.
 *
 * The benchmark links the same shared runtime (libcudart.so.N) that the
 * library opens at run time, so both share one CUDA context.
 */
#include <stdio.h>

#include "bench_gpu.h"

#ifdef HMB_BENCH_CUDART
#include <stddef.h>

#include <cuda_runtime_api.h>

/* The library opens the runtime at run time and declares by hand the few
 * values and the one struct it uses (src/platform/cuda.c), so that it needs
 * no CUDA header. Where the toolkit is at hand, check them against it. */
_Static_assert(sizeof(cudaError_t) == sizeof(int) && cudaSuccess == 0,
               "cuda.c: runtime calls return an int, 0 on success");
_Static_assert(cudaHostAllocPortable == 1 && cudaHostRegisterPortable == 1,
               "cuda.c: HMB__CUDA_HOST_*_PORTABLE");
_Static_assert(cudaMemoryTypeHost == 1, "cuda.c: HMB__CUDA_MEMORY_TYPE_HOST");
_Static_assert(offsetof(struct cudaPointerAttributes, type) == 0 &&
                   sizeof(enum cudaMemoryType) == sizeof(int) &&
                   sizeof(struct cudaPointerAttributes) <=
                       2 * sizeof(int) + 2 * sizeof(void *) + 32 * sizeof(long),
               "cuda.c: hmb__cuda_ptr_attrs_t holds cudaPointerAttributes");
/* The prototypes of HMB__CUDART_FUNCS, with cudaError_t for their int. */
#define BENCH_CUDA_SIGNATURE(fn, type) _Generic(&(fn), type : 1, default : 0)
_Static_assert(
    BENCH_CUDA_SIGNATURE(cudaRuntimeGetVersion, cudaError_t (*)(int *)) &&
        BENCH_CUDA_SIGNATURE(cudaDriverGetVersion, cudaError_t (*)(int *)) &&
        BENCH_CUDA_SIGNATURE(cudaGetDeviceCount, cudaError_t (*)(int *)) &&
        BENCH_CUDA_SIGNATURE(cudaHostAlloc,
                             cudaError_t (*)(void **, size_t, unsigned int)) &&
        BENCH_CUDA_SIGNATURE(cudaFreeHost, cudaError_t (*)(void *)) &&
        BENCH_CUDA_SIGNATURE(cudaHostRegister,
                             cudaError_t (*)(void *, size_t, unsigned int)) &&
        BENCH_CUDA_SIGNATURE(cudaHostUnregister, cudaError_t (*)(void *)) &&
        BENCH_CUDA_SIGNATURE(cudaPointerGetAttributes,
                             cudaError_t (*)(struct cudaPointerAttributes *,
                                             const void *)) &&
        BENCH_CUDA_SIGNATURE(cudaGetErrorString,
                             const char *(*)(cudaError_t)) &&
        BENCH_CUDA_SIGNATURE(cudaGetErrorName, const char *(*)(cudaError_t)) &&
        BENCH_CUDA_SIGNATURE(cudaGetLastError, cudaError_t (*)(void)),
    "cuda.c: the hand-written runtime prototypes match the toolkit's");

int bench_gpu_built(void) {
  return 1;
}

int bench_gpu_usable(const char **why) {
  static int decided, usable;
  static char text[256];
  if (!decided) {
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) {
      snprintf(text, sizeof text, "cudaGetDeviceCount failed: %s (%s)",
               cudaGetErrorString(e), cudaGetErrorName(e));
      cudaGetLastError();
    } else if (n <= 0) {
      snprintf(text, sizeof text,
               "no CUDA device visible (cudaGetDeviceCount returned 0)");
    } else {
      usable = 1;
    }
    decided = 1;
  }
  if (why)
    *why = text;
  return usable;
}

int bench_gpu_alloc(size_t size, void **dev) {
  if (!bench_gpu_usable(NULL) || cudaMalloc(dev, size) != cudaSuccess) {
    cudaGetLastError();
    *dev = NULL;
    return -1;
  }
  return 0;
}

void bench_gpu_free(void *dev) {
  if (dev)
    cudaFree(dev);
}

int bench_gpu_host_alloc(size_t size, void **host) {
  if (!bench_gpu_usable(NULL) || cudaMallocHost(host, size) != cudaSuccess) {
    cudaGetLastError();
    *host = NULL;
    return -1;
  }
  return 0;
}

void bench_gpu_host_free(void *host) {
  if (host)
    cudaFreeHost(host);
}

int bench_gpu_copy(void *dev, const void *host, size_t size) {
  if (cudaMemcpy(dev, host, size, cudaMemcpyHostToDevice) != cudaSuccess) {
    cudaGetLastError();
    return -1;
  }
  return 0;
}

#else /* no CUDA toolkit at build time */

int bench_gpu_built(void) {
  return 0;
}

int bench_gpu_usable(const char **why) {
  if (why)
    *why = "built without the CUDA toolkit";
  return 0;
}

int bench_gpu_alloc(size_t size, void **dev) {
  (void)size;
  *dev = NULL;
  return -1;
}

void bench_gpu_free(void *dev) {
  (void)dev;
}

int bench_gpu_host_alloc(size_t size, void **host) {
  (void)size;
  *host = NULL;
  return -1;
}

void bench_gpu_host_free(void *host) {
  (void)host;
}

int bench_gpu_copy(void *dev, const void *host, size_t size) {
  (void)dev;
  (void)host;
  (void)size;
  return -1;
}

#endif
