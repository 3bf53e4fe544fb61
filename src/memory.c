/*
 * memory.c - composition of the physical backends behind memory.h.
 *
 * A memory object serves blocks either from a custom hmb_backend_t or from
 * the built-in pageable backend (os.h). It counts live and peak bytes per
 * kind with atomics; peaks use CAS loops so they are exact under races.
 * HMB_ALLOC_PINNED requests are served as pageable here and counted as
 * fallbacks, with the reason kept as a static string.
 */
#include <stdlib.h>

#include "internal.h"
#include "os.h"

struct hmb__memory {
  hmb_backend_t custom; /* custom.alloc == NULL: built-in */
  size_t align;
  const char *pinned_reason;
  _Atomic int64_t pageable_live, pageable_peak;
  _Atomic int64_t pinned_live, pinned_peak;
  _Atomic uint64_t fallbacks;
};

static void hmb__memory_init(hmb__memory_t *m, const hmb_pool_config_t *cfg) {
  m->align = (cfg && cfg->alignment >= 64) ? cfg->alignment : 64;
  if (cfg && cfg->backend)
    m->custom = *cfg->backend;
  m->pinned_reason = "pinned memory is not built in (HMB_WITH_CUDA=OFF)";
}

int hmb__memory_create(const hmb_pool_config_t *cfg, hmb__memory_t **out) {
  hmb__memory_t *m = calloc(1, sizeof *m);
  if (!m)
    return HMB_ENOMEM;
  hmb__memory_init(m, cfg);
  *out = m;
  return 0;
}

void hmb__memory_destroy(hmb__memory_t *mem) {
  free(mem);
}

static hmb__memory_t hmb__default_mem;
static pthread_once_t hmb__default_once = PTHREAD_ONCE_INIT;

static void hmb__memory_default_init(void) {
  hmb__memory_init(&hmb__default_mem, NULL);
}

hmb__memory_t *hmb__memory_default(void) {
  pthread_once(&hmb__default_once, hmb__memory_default_init);
  return &hmb__default_mem;
}

static void hmb__count(_Atomic int64_t *live, _Atomic int64_t *peak,
                       int64_t delta) {
  int64_t now =
      atomic_fetch_add_explicit(live, delta, memory_order_relaxed) + delta;
  if (delta > 0)
    hmb__peak_update(peak, now);
}

int hmb__memory_alloc(hmb__memory_t *mem, size_t size, int prefer_pinned,
                      void **ptr, int *pinned) {
  void *p = NULL;
  int is_pinned = 0;
  if (mem->custom.alloc) {
    if (mem->custom.alloc(mem->custom.ctx, size, mem->align, prefer_pinned, &p,
                          &is_pinned) != 0 ||
        !p)
      return HMB_ENOMEM;
    is_pinned = is_pinned ? 1 : 0;
  } else {
    p = hmb__os_alloc(size, mem->align);
    if (!p)
      return HMB_ENOMEM;
  }
  if (prefer_pinned && !is_pinned)
    atomic_fetch_add_explicit(&mem->fallbacks, 1, memory_order_relaxed);
  if (is_pinned)
    hmb__count(&mem->pinned_live, &mem->pinned_peak, (int64_t)size);
  else
    hmb__count(&mem->pageable_live, &mem->pageable_peak, (int64_t)size);
  *ptr = p;
  *pinned = is_pinned;
  return 0;
}

void hmb__memory_free(hmb__memory_t *mem, void *ptr, size_t size, int pinned) {
  if (pinned)
    hmb__count(&mem->pinned_live, &mem->pinned_peak, -(int64_t)size);
  else
    hmb__count(&mem->pageable_live, &mem->pageable_peak, -(int64_t)size);
  if (mem->custom.free)
    mem->custom.free(mem->custom.ctx, ptr, size, pinned);
  else
    hmb__os_free(ptr, size);
}

void hmb__memory_stats(hmb__memory_t *mem, hmb_memory_stats_t *out) {
  *out = (hmb_memory_stats_t){0};
  out->pageable_live = atomic_load(&mem->pageable_live);
  out->pageable_peak = atomic_load(&mem->pageable_peak);
  out->pinned_live = atomic_load(&mem->pinned_live);
  out->pinned_peak = atomic_load(&mem->pinned_peak);
  out->pinned_fallbacks = atomic_load(&mem->fallbacks);
  out->pinned_reason = mem->custom.alloc ? "" : mem->pinned_reason;
}

void hmb__memory_trim(hmb__memory_t *mem, size_t keep_bytes) {
  (void)mem;
  (void)keep_bytes;
}
