/*
 * pinned_copy.c - pinned host buffers for copies to the GPU, with fallback.
 *
 * A pool configured with pinned_bytes sets up a region of CUDA pinned
 * (page-locked) host memory once, at creation, and serves HMB_ALLOC_PINNED
 * requests from it: copies from pinned memory to the GPU run at full bus
 * speed and can be asynchronous. When pinned memory cannot be had (a build
 * without CUDA, no GPU or driver, or the region is full) the same request is
 * served from pageable memory under the same budget, and the pool's memory
 * statistics say why (pinned_reason) and how often (pinned_fallbacks).
 *
 * This program allocates one buffer with HMB_ALLOC_PINNED and then:
 *   - built with CUDA and a GPU present: copies it to the GPU and back and
 *     compares (pageable buffers are copied too, just more slowly);
 *   - otherwise: prints why pinned memory is not in use and what that means.
 * Either way it checks the library's counters agree with what the buffer
 * reports, and prints "OK: pinned_copy (...)".
 *
 * Only this example includes the CUDA runtime header; the library itself
 * keeps CUDA behind its memory layer and needs none of it in user code.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "hmb.h"

#ifdef HMB_HAVE_CUDA
#include <cuda_runtime_api.h>
#endif

enum { REGION_BYTES = 8 << 20, COPY_BYTES = 4 << 20 };

static int failures;
#define EXPECT(cond)                                                           \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "check failed: %s\n", #cond);                            \
      failures++;                                                              \
    }                                                                          \
  } while (0)

#ifdef HMB_HAVE_CUDA
/*
 * Copy `src` to the GPU and back into `back`. Returns 1 when the round trip
 * happened, 0 when there is no usable GPU (with the reason in *why), -1 on a
 * CUDA error after a GPU was found.
 */
static int gpu_round_trip(const void *src, void *back, size_t n,
                          const char **why) {
  int devices = 0;
  cudaError_t e = cudaGetDeviceCount(&devices);
  if (e != cudaSuccess || devices == 0) {
    *why = e != cudaSuccess ? cudaGetErrorString(e) : "no CUDA device";
    return 0;
  }
  void *dev = NULL;
  e = cudaMalloc(&dev, n);
  if (e == cudaSuccess)
    e = cudaMemcpy(dev, src, n, cudaMemcpyHostToDevice);
  if (e == cudaSuccess)
    e = cudaMemcpy(back, dev, n, cudaMemcpyDeviceToHost);
  if (dev)
    cudaFree(dev);
  if (e != cudaSuccess) {
    fprintf(stderr, "CUDA: %s\n", cudaGetErrorString(e));
    return -1;
  }
  return 1;
}
#endif

int main(void) {
  hmb_pool_config_t cfg;
  hmb_pool_config_init(&cfg);
  cfg.limit = 64 << 20;
  cfg.pinned_bytes = REGION_BYTES; /* set up once, sub-allocated after */
  hmb_pool_t *pool;
  int rc = hmb_pool_create(&cfg, &pool);
  if (rc) {
    fprintf(stderr, "hmb_pool_create: %s\n", hmb_strerror(rc));
    return 1;
  }
  hmb_runner_config_t rcfg = {0};
  rcfg.estimate = 2 * COPY_BYTES;
  rcfg.name = "copy";
  hmb_runner_t *runner;
  hmb_buffer_t *host = NULL, *back = NULL;
  if ((rc = hmb_runner_create(pool, &rcfg, &runner)) != 0 ||
      (rc = hmb_runner_start(runner, HMB_WAIT_FOREVER)) != 0 ||
      (rc = hmb_runner_alloc(runner, COPY_BYTES, HMB_ALLOC_PINNED, &host)) ||
      (rc = hmb_runner_alloc(runner, COPY_BYTES, 0, &back))) {
    fprintf(stderr, "setup: %s (%s)\n", hmb_errname(rc), hmb_strerror(rc));
    return 1;
  }
  unsigned char *src = hmb_buffer_data(host);
  for (size_t i = 0; i < COPY_BYTES; i++)
    src[i] = (unsigned char)(i * 131 + 7);
  memset(hmb_buffer_data(back), 0, COPY_BYTES);

  int pinned = hmb_buffer_is_pinned(host);
  hmb_memory_stats_t ms;
  hmb_pool_memory_stats(pool, &ms);
  printf("buffer of %d bytes is %s; pinned region %" PRId64
         " bytes, pinned live %" PRId64 ", fallbacks %" PRIu64 "\n",
         COPY_BYTES, pinned ? "pinned" : "pageable", ms.pinned_capacity,
         ms.pinned_live, ms.pinned_fallbacks);
  /* The counters must agree with what the buffer says it is. */
  if (pinned) {
    EXPECT(ms.pinned_live >= COPY_BYTES && ms.pinned_fallbacks == 0);
  } else {
    EXPECT(ms.pinned_fallbacks == 1 && ms.pinned_live == 0);
    EXPECT(ms.pinned_reason != NULL && ms.pinned_reason[0] != '\0');
    printf("fallback: pinned memory is not in use: %s\n", ms.pinned_reason);
    printf("fallback: the buffer is pageable host memory charged to the same "
           "budget; a GPU copy from it still works, at pageable speed and "
           "staged through the driver\n");
  }

  const char *mode = "no GPU copy";
#ifdef HMB_HAVE_CUDA
  const char *why = NULL;
  int trip = gpu_round_trip(src, hmb_buffer_data(back), COPY_BYTES, &why);
  if (trip == 1) {
    EXPECT(memcmp(src, hmb_buffer_data(back), COPY_BYTES) == 0);
    printf("copied %d bytes to the GPU and back from %s memory: %s\n",
           COPY_BYTES, pinned ? "pinned" : "pageable",
           memcmp(src, hmb_buffer_data(back), COPY_BYTES) == 0 ? "identical"
                                                               : "DIFFERENT");
    mode = pinned ? "pinned, copied to the GPU" : "pageable, copied to the GPU";
  } else if (trip == 0) {
    printf("no GPU copy: %s\n", why);
    mode = pinned ? "pinned, no GPU" : "pageable fallback, no GPU";
  } else {
    failures++;
  }
#else
  printf("no GPU copy: this example was built without the CUDA toolkit "
         "(the library itself may still use the CUDA runtime for pinned "
         "memory)\n");
  mode = "pageable fallback, example built without the toolkit";
#endif

  hmb_buffer_close(host);
  hmb_buffer_close(back);
  hmb_runner_destroy(runner);
  EXPECT(hmb_pool_destroy(pool) == 0);
  if (failures) {
    fprintf(stderr, "FAILED: pinned_copy (%d checks)\n", failures);
    return 1;
  }
  printf("OK: pinned_copy (%s)\n", mode);
  return 0;
}
