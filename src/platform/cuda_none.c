/*
 * cuda_none.c - the cuda.h contract for builds without CUDA
 * (HMB_WITH_CUDA=OFF, or AUTO without a toolkit). It references no CUDA
 * symbol: the library links nothing of CUDA. Every request for pinned
 * memory is refused with the same readable reason, and the memory layer
 * serves it from pageable memory instead.
 */
#include <stdio.h>

#include "platform/cuda.h"
#include "hmb/errors.h"

static const char hmb__reason_off[] =
    "built without CUDA support (HMB_WITH_CUDA=OFF)";

int hmb__cuda_built(void) {
  return 0;
}

int hmb__cuda_probe(const char **reason) {
  if (reason)
    *reason = hmb__reason_off;
  return 0;
}

int hmb__cuda_region_create(size_t size, int method, void **base, char *why,
                            size_t why_len) {
  (void)size;
  (void)method;
  (void)base;
  if (why && why_len)
    snprintf(why, why_len, "%s", hmb__reason_off);
  return HMB_ENOTSUP;
}

void hmb__cuda_region_destroy(void *base, size_t size, int method) {
  (void)base;
  (void)size;
  (void)method;
}

int hmb__cuda_is_pinned(const void *ptr) {
  (void)ptr;
  return HMB_ENOTSUP;
}

int hmb__cuda_device_alloc(size_t size, void **dev) {
  (void)size;
  (void)dev;
  return HMB_ENOTSUP;
}

void hmb__cuda_device_free(void *dev) {
  (void)dev;
}

int hmb__cuda_copy_to_device(void *dev, const void *host, size_t size) {
  (void)dev;
  (void)host;
  (void)size;
  return HMB_ENOTSUP;
}
