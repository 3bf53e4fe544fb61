/*
 * cuda_none.c - the cuda.h contract for builds without CUDA support
 * (HMB_WITH_CUDA=OFF, or AUTO on a platform without dlopen). It references
 * no CUDA symbol and loads nothing: every request for pinned memory is
 * refused with the same readable reason, and the memory layer serves it
 * from pageable memory instead.
 *
 * The build says why CUDA is off in HMB_CUDA_NONE_REASON (CMakeLists.txt).
 */
#include <stdio.h>

#include "hmb/errors.h"
#include "platform/cuda.h"

#ifndef HMB_CUDA_NONE_REASON
#define HMB_CUDA_NONE_REASON "built without CUDA support (HMB_WITH_CUDA=OFF)"
#endif

static const char hmb__reason_off[] = HMB_CUDA_NONE_REASON;

int hmb__cuda_built(void) {
  return 0;
}

int hmb__cuda_probe(const char **reason) {
  if (reason)
    *reason = hmb__reason_off;
  return 0;
}

const char *hmb__cuda_runtime(void) {
  return hmb__reason_off;
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
