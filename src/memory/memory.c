/*
 * memory.c - composition of the physical backends behind memory.h.
 *
 * A memory object serves blocks from one custom hmb_backend_t, or from the
 * built-in backends:
 *   pinned    an optional CUDA pinned region (cuda.h) cut up by a
 *             sub-allocator (arena.h); used for prefer_pinned requests;
 *   pageable  the OS (os.h), behind an optional warm cache (cache.h).
 * A prefer_pinned request that the region cannot serve (no region: no CUDA
 * in the build, no GPU or driver, pinned_bytes 0, region creation failed;
 * or the region is full) is served pageable and counted as a fallback; the
 * reason pinned memory is unavailable is decided once, at creation, and
 * kept as a string in static storage.
 *
 * Accounting: the budget layer charges the requested size and never learns
 * where a block came from, so the budget is exact whatever the backend.
 * Here, live/peak bytes per kind count requested sizes too (they match the
 * budget), and pageable_physical counts what the blocks really occupy after
 * the cache's class rounding. Physical pageable memory is therefore
 * pageable_physical + cached bytes, with cached bytes <= the cache cap.
 *
 * Locks: the arena and the cache have their own leaf locks; this file takes
 * none on the allocation path and never calls the OS under a lock.
 */
#include <stdlib.h>
#include <string.h>

#include "memory/memory.h"

#include <pthread.h>

#include "hmb/errors.h"

#include "memory/arena.h"
#include "memory/cache.h"
#include "platform/cuda.h"
#include "platform/os.h"
#include "platform/util.h"

struct hmb__memory {
  hmb_backend_t custom; /* custom.alloc == NULL: built-in */
  size_t align;
  const char *pinned_reason; /* static storage; "" when the region works */
  hmb__arena_t *arena;       /* NULL: no pinned region */
  void *region;
  size_t region_size;
  int region_method;
  int region_owned; /* 1: made by cuda.h and freed with the object */
  int region_failed; /* 1: a region was asked for and could not be made */
  uint64_t setup_ns;
  hmb__cache_t *cache; /* NULL: no warm cache */
  _Atomic int64_t pageable_live, pageable_peak, pageable_physical;
  _Atomic int64_t pinned_live, pinned_peak;
  _Atomic uint64_t fallbacks, full_fallbacks;
};

/* ---- reasons --------------------------------------------------------------
 * Reasons made at run time (a region creation that failed) are interned in
 * a process-wide append-only table, so every reason pointer handed out is
 * valid for the life of the process, as hmb/stats.h promises.
 */

static const char hmb__reason_unset[] =
    "no pinned region configured (pinned_bytes is 0)";
static const char hmb__reason_default[] =
    "the default allocator has no pinned region";
static const char hmb__reason_full[] =
    "pinned reasons table full; see the pool log";

static pthread_mutex_t hmb__intern_lock = PTHREAD_MUTEX_INITIALIZER;
static char hmb__intern_buf[4096];
static size_t hmb__intern_used;

static const char *hmb__intern(const char *s) {
  size_t n = strlen(s) + 1;
  const char *out = hmb__reason_full;
  pthread_mutex_lock(&hmb__intern_lock);
  for (size_t at = 0; at < hmb__intern_used;
       at += strlen(hmb__intern_buf + at) + 1) {
    if (strcmp(hmb__intern_buf + at, s) == 0) {
      out = hmb__intern_buf + at;
      goto done;
    }
  }
  if (n <= sizeof hmb__intern_buf - hmb__intern_used) {
    memcpy(hmb__intern_buf + hmb__intern_used, s, n);
    out = hmb__intern_buf + hmb__intern_used;
    hmb__intern_used += n;
  }
done:
  pthread_mutex_unlock(&hmb__intern_lock);
  return out;
}

/* ---- creation --------------------------------------------------------------
 */

static size_t hmb__arena_align(const hmb__memory_t *m) {
  return m->align > 256 ? m->align : 256;
}

/* Create the pinned region and its arena, or record why not. */
static void hmb__memory_pin(hmb__memory_t *m, const hmb_pool_config_t *cfg) {
  const char *r;
  if (!hmb__cuda_built()) {
    hmb__cuda_probe(&r); /* the build's reason; touches no CUDA */
    m->pinned_reason = r;
    return;
  }
  if (cfg->pinned_bytes == 0) {
    m->pinned_reason = hmb__reason_unset;
    return;
  }
  if (!hmb__cuda_probe(&r)) {
    m->pinned_reason = r;
    return;
  }
  char why[256] = "";
  void *base = NULL;
  uint64_t t0 = hmb__os_now_ns();
  int rc = hmb__cuda_region_create(cfg->pinned_bytes, cfg->pinned_method, &base,
                                   why, sizeof why);
  m->setup_ns = hmb__os_now_ns() - t0;
  if (rc == 0) {
    rc = hmb__arena_create(base, cfg->pinned_bytes, hmb__arena_align(m),
                           &m->arena);
    if (rc != 0) {
      hmb__cuda_region_destroy(base, cfg->pinned_bytes, cfg->pinned_method);
      strcpy(why, "no memory for the pinned region's bookkeeping");
    }
  }
  if (rc != 0) {
    m->pinned_reason = hmb__intern(why);
    m->region_failed = 1;
    return;
  }
  m->region = base;
  m->region_size = cfg->pinned_bytes;
  m->region_method = cfg->pinned_method;
  m->region_owned = 1;
  m->pinned_reason = "";
}

static void hmb__memory_init(hmb__memory_t *m, const hmb_pool_config_t *cfg) {
  m->align = (cfg && cfg->alignment >= 64) ? cfg->alignment : 64;
  if (cfg && cfg->backend)
    m->custom = *cfg->backend;
  m->pinned_reason = hmb__reason_default;
}

int hmb__memory_create(const hmb_pool_config_t *cfg, hmb__memory_t **out) {
  if (cfg->pinned_method != HMB_PINNED_HOST_ALLOC &&
      cfg->pinned_method != HMB_PINNED_REGISTER)
    return HMB_EINVAL;
  hmb__memory_t *m = calloc(1, sizeof *m);
  if (!m)
    return HMB_ENOMEM;
  hmb__memory_init(m, cfg);
  if (!cfg->backend) {
    if (cfg->cache_bytes > 0 &&
        hmb__cache_create(cfg->cache_bytes, m->align, &m->cache) != 0) {
      free(m);
      return HMB_ENOMEM;
    }
    hmb__memory_pin(m, cfg);
  }
  *out = m;
  return 0;
}

int hmb__memory_attach_region(hmb__memory_t *mem, void *base, size_t size) {
  if (mem->custom.alloc || mem->arena)
    return HMB_ESTATE;
  int rc = hmb__arena_create(base, size, hmb__arena_align(mem), &mem->arena);
  if (rc)
    return rc;
  mem->region = base;
  mem->region_size = size;
  mem->region_owned = 0;
  mem->pinned_reason = "";
  return 0;
}

void hmb__memory_destroy(hmb__memory_t *mem) {
  if (!mem)
    return;
  hmb__cache_destroy(mem->cache);
  hmb__arena_destroy(mem->arena);
  if (mem->region_owned)
    hmb__cuda_region_destroy(mem->region, mem->region_size, mem->region_method);
  free(mem);
}

static hmb__memory_t hmb__default_mem;
static pthread_once_t hmb__default_once = PTHREAD_ONCE_INIT;

static void hmb__memory_default_init(void) {
  hmb__memory_init(&hmb__default_mem, NULL);
  if (!hmb__cuda_built())
    hmb__cuda_probe(&hmb__default_mem.pinned_reason);
}

hmb__memory_t *hmb__memory_default(void) {
  pthread_once(&hmb__default_once, hmb__memory_default_init);
  return &hmb__default_mem;
}

/* ---- allocation ------------------------------------------------------------
 */

static void hmb__count(_Atomic int64_t *live, _Atomic int64_t *peak,
                       int64_t delta) {
  int64_t now =
      atomic_fetch_add_explicit(live, delta, memory_order_relaxed) + delta;
  if (delta > 0)
    hmb__peak_update(peak, now);
}

static int hmb__custom_alloc(hmb__memory_t *mem, size_t size, int prefer_pinned,
                             void **ptr, int *pinned) {
  void *p = NULL;
  int is_pinned = 0;
  if (mem->custom.alloc(mem->custom.ctx, size, mem->align, prefer_pinned, &p,
                        &is_pinned) != 0 ||
      !p)
    return HMB_ENOMEM;
  is_pinned = is_pinned ? 1 : 0;
  if (prefer_pinned && !is_pinned)
    atomic_fetch_add_explicit(&mem->fallbacks, 1, memory_order_relaxed);
  if (is_pinned) {
    hmb__count(&mem->pinned_live, &mem->pinned_peak, (int64_t)size);
  } else {
    hmb__count(&mem->pageable_live, &mem->pageable_peak, (int64_t)size);
    atomic_fetch_add_explicit(&mem->pageable_physical, (int64_t)size,
                              memory_order_relaxed);
  }
  *ptr = p;
  *pinned = is_pinned;
  return 0;
}

int hmb__memory_alloc(hmb__memory_t *mem, size_t size, int prefer_pinned,
                      void **ptr, int *pinned) {
  if (mem->custom.alloc)
    return hmb__custom_alloc(mem, size, prefer_pinned, ptr, pinned);
  if (prefer_pinned) {
    if (mem->arena) {
      void *p = hmb__arena_alloc(mem->arena, size);
      if (p) {
        hmb__count(&mem->pinned_live, &mem->pinned_peak, (int64_t)size);
        *ptr = p;
        *pinned = 1;
        return 0;
      }
      atomic_fetch_add_explicit(&mem->full_fallbacks, 1, memory_order_relaxed);
    }
    atomic_fetch_add_explicit(&mem->fallbacks, 1, memory_order_relaxed);
  }
  void *p;
  size_t phys;
  if (mem->cache) {
    p = hmb__cache_alloc(mem->cache, size);
    phys = hmb__cache_block_size(mem->cache, size);
  } else {
    p = hmb__os_alloc(size, mem->align);
    phys = size;
  }
  if (!p)
    return HMB_ENOMEM;
  hmb__count(&mem->pageable_live, &mem->pageable_peak, (int64_t)size);
  atomic_fetch_add_explicit(&mem->pageable_physical, (int64_t)phys,
                            memory_order_relaxed);
  *ptr = p;
  *pinned = 0;
  return 0;
}

int hmb__memory_free(hmb__memory_t *mem, void *ptr, size_t size, int pinned) {
  if (pinned)
    hmb__count(&mem->pinned_live, &mem->pinned_peak, -(int64_t)size);
  else
    hmb__count(&mem->pageable_live, &mem->pageable_peak, -(int64_t)size);
  if (mem->custom.free) {
    if (!pinned)
      atomic_fetch_sub_explicit(&mem->pageable_physical, (int64_t)size,
                                memory_order_relaxed);
    mem->custom.free(mem->custom.ctx, ptr, size, pinned);
    return 0;
  }
  if (pinned)
    return hmb__arena_free(mem->arena, ptr) != 0 ? HMB_EINVAL : 0;
  size_t phys = mem->cache ? hmb__cache_block_size(mem->cache, size) : size;
  atomic_fetch_sub_explicit(&mem->pageable_physical, (int64_t)phys,
                            memory_order_relaxed);
  if (mem->cache)
    hmb__cache_free(mem->cache, ptr, size);
  else
    hmb__os_free(ptr, size);
  return 0;
}

const char *hmb__memory_region_failure(const hmb__memory_t *mem) {
  return mem->region_failed ? mem->pinned_reason : NULL;
}

void hmb__memory_stats(hmb__memory_t *mem, hmb_memory_stats_t *out) {
  *out = (hmb_memory_stats_t){0};
  out->pageable_live = atomic_load(&mem->pageable_live);
  out->pageable_peak = atomic_load(&mem->pageable_peak);
  out->pageable_physical = atomic_load(&mem->pageable_physical);
  out->pinned_live = atomic_load(&mem->pinned_live);
  out->pinned_peak = atomic_load(&mem->pinned_peak);
  out->pinned_fallbacks = atomic_load(&mem->fallbacks);
  out->pinned_full_fallbacks = atomic_load(&mem->full_fallbacks);
  out->pinned_reason = mem->custom.alloc ? "" : mem->pinned_reason;
  out->pinned_setup_ns = mem->setup_ns;
  if (mem->arena) {
    hmb__arena_stats_t as;
    hmb__arena_stats(mem->arena, &as);
    out->pinned_capacity = (int64_t)as.capacity;
  }
  if (mem->cache) {
    hmb__cache_stats_t cs;
    hmb__cache_stats(mem->cache, &cs);
    out->cached_bytes = cs.cached;
    out->cache_cap = cs.cap;
    out->cache_hits = cs.hits;
    out->cache_misses = cs.misses;
    out->cache_rejects = cs.rejects;
    out->cache_trimmed = cs.trimmed;
  }
}

void hmb__memory_trim(hmb__memory_t *mem, size_t keep_bytes) {
  if (mem->cache)
    hmb__cache_trim(mem->cache, keep_bytes);
}
