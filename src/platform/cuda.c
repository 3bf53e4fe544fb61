/*
 * cuda.c - the cuda.h contract over the CUDA runtime API. This is the only
 * file of the library that includes a CUDA header or calls CUDA.
 *
 * The probe runs once per process (pthread_once): it asks for the device
 * count and makes one small pinned allocation, which also creates the
 * runtime's context, so a machine without a GPU or without a driver is
 * recognised here, once, and every later pinned request falls back to
 * pageable memory without calling CUDA again. The reason is formatted into
 * static storage on that single call and never changes afterwards.
 *
 * Regions are allocated "portable" so that they count as pinned for every
 * device and context of the process.
 */
#include <pthread.h>
#include <stdio.h>

#include <cuda_runtime_api.h>

#include "platform/cuda.h"
#include "hmb/errors.h"
#include "platform/os.h"

static pthread_once_t hmb__probe_once = PTHREAD_ONCE_INIT;
static int hmb__probe_ok;
static char hmb__probe_reason[256];

static void hmb__probe_run(void) {
  int n = 0;
  cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) {
    snprintf(hmb__probe_reason, sizeof hmb__probe_reason,
             "no usable CUDA driver or device: cudaGetDeviceCount failed: "
             "%s (%s)",
             cudaGetErrorString(e), cudaGetErrorName(e));
    cudaGetLastError(); /* reset the runtime's last-error slot */
    return;
  }
  if (n <= 0) {
    snprintf(hmb__probe_reason, sizeof hmb__probe_reason,
             "no CUDA device visible (cudaGetDeviceCount returned 0)");
    return;
  }
  void *p = NULL;
  e = cudaHostAlloc(&p, 4096, cudaHostAllocPortable);
  if (e != cudaSuccess) {
    snprintf(hmb__probe_reason, sizeof hmb__probe_reason,
             "CUDA pinned allocation does not work: cudaHostAlloc failed: "
             "%s (%s)",
             cudaGetErrorString(e), cudaGetErrorName(e));
    cudaGetLastError();
    return;
  }
  cudaFreeHost(p);
  hmb__probe_reason[0] = '\0';
  hmb__probe_ok = 1;
}

int hmb__cuda_built(void) {
  return 1;
}

int hmb__cuda_probe(const char **reason) {
  pthread_once(&hmb__probe_once, hmb__probe_run);
  if (reason)
    *reason = hmb__probe_reason;
  return hmb__probe_ok;
}

int hmb__cuda_region_create(size_t size, int method, void **base, char *why,
                            size_t why_len) {
  const char *r;
  if (!hmb__cuda_probe(&r)) {
    snprintf(why, why_len, "%s", r);
    return HMB_ENOTSUP;
  }
  if (method == 0) {
    void *p = NULL;
    cudaError_t e = cudaHostAlloc(&p, size, cudaHostAllocPortable);
    if (e != cudaSuccess) {
      snprintf(why, why_len, "cudaHostAlloc of %zu bytes failed: %s", size,
               cudaGetErrorString(e));
      cudaGetLastError();
      return HMB_ENOMEM;
    }
    *base = p;
    return 0;
  }
  /* Map, fault every page in from several threads, then pin in one call:
   * pinning already-resident pages is much cheaper than letting the driver
   * fault them in one by one. */
  void *p = hmb__os_map(size, hmb__os_page_size());
  if (!p) {
    snprintf(why, why_len, "mapping %zu bytes for the pinned region failed",
             size);
    return HMB_ENOMEM;
  }
  hmb__os_touch(p, size, 0);
  cudaError_t e = cudaHostRegister(p, size, cudaHostRegisterPortable);
  if (e != cudaSuccess) {
    snprintf(why, why_len, "cudaHostRegister of %zu bytes failed: %s", size,
             cudaGetErrorString(e));
    cudaGetLastError();
    hmb__os_unmap(p, size);
    return HMB_ENOMEM;
  }
  *base = p;
  return 0;
}

void hmb__cuda_region_destroy(void *base, size_t size, int method) {
  if (!base)
    return;
  if (method == 0) {
    cudaFreeHost(base);
  } else {
    cudaHostUnregister(base);
    hmb__os_unmap(base, size);
  }
}

int hmb__cuda_is_pinned(const void *ptr) {
  if (!hmb__cuda_probe(NULL))
    return HMB_ENOTSUP;
  struct cudaPointerAttributes a;
  cudaError_t e = cudaPointerGetAttributes(&a, ptr);
  if (e != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return a.type == cudaMemoryTypeHost ? 1 : 0;
}

int hmb__cuda_device_alloc(size_t size, void **dev) {
  if (!hmb__cuda_probe(NULL))
    return HMB_ENOTSUP;
  if (cudaMalloc(dev, size) != cudaSuccess) {
    cudaGetLastError();
    return HMB_ENOMEM;
  }
  return 0;
}

void hmb__cuda_device_free(void *dev) {
  if (dev)
    cudaFree(dev);
}

int hmb__cuda_copy_to_device(void *dev, const void *host, size_t size) {
  if (cudaMemcpy(dev, host, size, cudaMemcpyHostToDevice) != cudaSuccess) {
    cudaGetLastError();
    return HMB_EFAILED;
  }
  return 0;
}
