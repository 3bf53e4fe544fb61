/*
 * memory.c - composition of the physical backends behind memory.h.
 *
 * A memory object serves blocks from one custom hmb_backend_t, or from the
 * built-in backends:
 *   small   below HMB__LARGE_MIN (data + prefix): malloc of the size
 *           class, behind the calling thread's cache (tcache.h), so a hit
 *           costs no malloc call, no lock and no atomic;
 *   large   their own mapping (huge-page aligned and advised from 2 MiB),
 *           behind the warm cache (cache.h), which lives inside the budget
 *           nobody holds;
 *   pinned  an optional CUDA pinned region (cuda.h), or one the caller
 *           pinned itself, cut up by a sub-allocator (arena.h).
 * A prefer_pinned request that the region cannot serve (no region, or it is
 * full) is served pageable and counted as a fallback; why pinned memory is
 * unavailable is decided once, at creation, and kept in static storage.
 *
 * Counters: live, physical and pinned bytes are sharded gauges (shard.h),
 * so allocating writes no cache line shared between threads. `live` counts
 * requested bytes (they match the budget), `physical` what the blocks
 * occupy: the class size (small, and large with a cache) or the mapping
 * length, which includes the prefix. This file and the inline hot path of
 * memory.h are the only writers of them (memory_state.h has the layout).
 *
 * Locks: the arena, the cache's depot and the thread caches' magazines have
 * their own leaf locks; this file takes none on the allocation path.
 */
#include "memory/memory.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hmb/errors.h"
#include "memory/arena.h"
#include "memory/block.h"
#include "memory/cache.h"
#include "memory/sizeclass.h"
#include "memory/tcache.h"
#include "platform/cuda.h"
#include "platform/os.h"
#include "platform/shard.h"
#include "platform/util.h"

/* hmb/stats.h states the peak error bound with these public figures. */
_Static_assert(HMB_STATS_SHARDS == HMB__SHARDS + 1 &&
                   HMB_STATS_MEMORY_SHARDS == HMB__MSHARDS + 1 &&
                   HMB_STATS_PEAK_STEP == HMB__GAUGE_STEP,
               "hmb/stats.h: HMB_STATS_SHARDS, HMB_STATS_MEMORY_SHARDS, "
               "HMB_STATS_PEAK_STEP");

/* ---- reasons --------------------------------------------------------------
 * Reasons made at run time (a region creation that failed) are interned in
 * a process-wide append-only table, so every reason pointer handed out is
 * valid for the life of the process, as hmb/stats.h promises.
 */

static const char hmb__reason_unset[] =
    "no pinned region configured (pinned_bytes is 0)";
static const char hmb__reason_default[] =
    "the default allocator has no pinned region";
static const char hmb__reason_custom[] =
    "a custom backend decides what is pinned";
static const char hmb__reason_full[] =
    "pinned reasons table full; see the pool log";

static pthread_mutex_t hmb__intern_lock = PTHREAD_MUTEX_INITIALIZER;
static char hmb__intern_buf[4096];
static size_t hmb__intern_used;

/* Fork (hmb__os_fork_guard()): the child finds the table's lock free. */
__attribute__((constructor)) static void hmb__intern_fork_guard(void) {
  (void)hmb__os_fork_guard(&hmb__intern_lock);
}

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

/* ---- creation ------------------------------------------------------------ */

/* Data alignment inside the pinned region: cuDF's 256, or more. */
static size_t hmb__pinned_align(size_t align) {
  return align > 256 ? align : 256;
}

static size_t hmb__pinned_capacity(hmb__arena_t *a) {
  hmb__arena_stats_t as;
  hmb__arena_stats(a, &as);
  return as.capacity;
}

/* Create the pinned region and its arena, or record why not. */
static void hmb__memory_pin(hmb__memory_t *m, const hmb_pool_config_t *cfg) {
  const char *r;
  if (cfg->pinned_bytes == 0) {
    m->pinned_reason = hmb__reason_unset;
    return;
  }
  if (cfg->pinned_base) { /* pinned by the application */
    if (hmb__arena_create(cfg->pinned_base, cfg->pinned_bytes,
                          hmb__pinned_align(m->align), &m->arena) != 0) {
      m->pinned_reason = hmb__intern("the given pinned region is too small "
                                     "or could not be tracked");
      m->region_failed = 1;
      return;
    }
    m->region = cfg->pinned_base;
    m->region_size = cfg->pinned_bytes;
    m->pinned_reason = "";
    m->pinned_capacity = hmb__pinned_capacity(m->arena);
    return;
  }
  if (!hmb__cuda_built() || !hmb__cuda_probe(&r)) {
    if (!hmb__cuda_built())
      hmb__cuda_probe(&r); /* the build's reason; touches no CUDA */
    m->pinned_reason = r;
    m->region_failed = 1;
    return;
  }
  char why[256] = "";
  void *base = NULL;
  uint64_t t0 = hmb__os_now_ns();
  int rc = hmb__cuda_region_create(cfg->pinned_bytes, cfg->pinned_method, &base,
                                   why, sizeof why);
  m->setup_ns = hmb__os_now_ns() - t0;
  if (rc == 0) {
    rc = hmb__arena_create(base, cfg->pinned_bytes, hmb__pinned_align(m->align),
                           &m->arena);
    if (rc != 0) {
      hmb__cuda_region_destroy(base, cfg->pinned_bytes, cfg->pinned_method);
      snprintf(why, sizeof why,
               "no memory for the pinned region's bookkeeping");
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
  m->pinned_capacity = hmb__pinned_capacity(m->arena);
}

static void hmb__memory_init(hmb__memory_t *m, const hmb_pool_config_t *cfg) {
  m->align = (cfg && cfg->alignment >= 64) ? cfg->alignment : 64;
  m->huge = !(cfg && (cfg->flags & HMB_POOL_NO_HUGEPAGES));
  m->pinned_reason = hmb__reason_default;
  if (cfg && cfg->backend) {
    m->custom = *cfg->backend;
    m->pinned_reason = hmb__reason_custom;
  }
}

int hmb__memory_create(const hmb_pool_config_t *cfg, int64_t room0,
                       hmb__memory_t **out) {
  *out = NULL;
  if (cfg->pinned_method != HMB_PINNED_HOST_ALLOC &&
      cfg->pinned_method != HMB_PINNED_REGISTER)
    return HMB_EINVAL;
  hmb__memory_t *m = aligned_alloc(64, sizeof *m);
  if (!m)
    return HMB_ENOMEM;
  memset(m, 0, sizeof *m);
  hmb__memory_init(m, cfg);
  if (!cfg->backend) {
    if (!(cfg->flags & HMB_POOL_NO_CACHE) &&
        hmb__cache_create(cfg->cache_bytes, room0, m->huge, &m->cache) != 0) {
      free(m);
      return HMB_ENOMEM;
    }
    hmb__memory_pin(m, cfg);
  }
  *out = m;
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
/* The default memory's warm cache once made (release: its init is
 * complete), for the fork handlers below. */
static hmb__cache_t *_Atomic hmb__default_cache;

static void hmb__memory_default_init(void) {
  hmb__memory_init(&hmb__default_mem, NULL);
  if (hmb__cache_create(HMB__DEFAULT_CACHE, (int64_t)HMB__DEFAULT_CACHE, 1,
                        &hmb__default_mem.cache) != 0)
    hmb__default_mem.cache = NULL; /* no memory: serve without a cache */
  if (!hmb__cuda_built())
    hmb__cuda_probe(&hmb__default_mem.pinned_reason);
  /* Release: pairs with the acquire load in hmb__default_fork_prepare(). */
  atomic_store_explicit(&hmb__default_cache, hmb__default_mem.cache,
                        memory_order_release);
}

/* Fork (hmb__os_on_fork()): the default allocator's warm cache is the
 * process's own, so the child may use it: its depot's lock is held across
 * fork() once the cache exists. (The default memory is not made here: a
 * fork made while another thread makes it leaves the child that thread's
 * pthread_once to wait for, as for any pthread_once.) */
static hmb__cache_t *hmb__default_fork_held;
static void hmb__default_fork_prepare(void) {
  /* Acquire: pairs with the release store at the end of the init. */
  hmb__default_fork_held =
      atomic_load_explicit(&hmb__default_cache, memory_order_acquire);
  if (hmb__default_fork_held)
    hmb__cache_fork_lock(hmb__default_fork_held);
}
static void hmb__default_fork_after(void) {
  if (hmb__default_fork_held)
    hmb__cache_fork_unlock(hmb__default_fork_held);
}
__attribute__((constructor)) static void hmb__default_fork_register(void) {
  (void)hmb__os_on_fork(hmb__default_fork_prepare, hmb__default_fork_after,
                        hmb__default_fork_after);
}

hmb__memory_t *hmb__memory_default(void) {
  pthread_once(&hmb__default_once, hmb__memory_default_init);
  return &hmb__default_mem;
}

const char *hmb__memory_region_failure(const hmb__memory_t *mem) {
  return mem->region_failed ? mem->pinned_reason : NULL;
}

/* ---- allocation ---------------------------------------------------------- */

static size_t hmb__round_page(size_t v) {
  return hmb__os_round_up(v, hmb__os_page_size());
}

static void *hmb__alloc_custom(hmb__memory_t *m, size_t size, size_t align,
                               int prefer_pinned, int *pinned) {
  size_t prefix = hmb__prefix_for(align);
  if (size > SIZE_MAX - prefix)
    return NULL;
  void *raw = NULL;
  int is_pinned = 0;
  if (m->custom.alloc(m->custom.ctx, size + prefix, align > 16 ? align : 16,
                      prefer_pinned, &raw, &is_pinned) != 0 ||
      !raw)
    return NULL;
  is_pinned = is_pinned ? 1 : 0;
  if (prefer_pinned && !is_pinned)
    atomic_fetch_add_explicit(&m->fallbacks, 1, memory_order_relaxed);
  /* The backend aligned raw to `align`, so data = raw + prefix is too. */
  void *data = hmb__place(raw, prefix, 1, HMB__BLOCK_CUSTOM, is_pinned, 0,
                          HMB__BLOCK_NOCLASS, align);
  hmb__count_block(m, is_pinned, (int64_t)size, (int64_t)(size + prefix));
  *pinned = is_pinned;
  return data;
}

static void *hmb__alloc_pinned(hmb__memory_t *m, size_t size, size_t align) {
  size_t pa = hmb__pinned_align(align);
  /* The arena's blocks start on its granule (the alignment it was made
   * with); an alignment beyond it needs room to move the data forward. */
  size_t granule = hmb__pinned_align(m->align);
  size_t room = pa + (pa > granule ? pa - granule : 0);
  if (size > SIZE_MAX - room)
    return NULL;
  void *raw = hmb__arena_alloc(m->arena, size + room);
  if (!raw)
    return NULL;
  void *data = hmb__place(raw, pa, pa, HMB__BLOCK_PINNED, 1, 0,
                          HMB__BLOCK_NOCLASS, align);
  hmb__count_block(m, 1, (int64_t)size, 0);
  return data;
}

static inline __attribute__((always_inline)) void *
hmb__alloc_small(hmb__memory_t *m, size_t need, size_t size, size_t align) {
  unsigned cls = hmb__class_of(need);
  size_t bytes = hmb__class_size(cls);
  void *raw = hmb__tcache_small_get(cls);
  if (HMB__UNLIKELY(!raw) && !(raw = malloc(bytes)))
    return NULL;
  void *data = hmb__place(raw, HMB__PREFIX_MIN, align, HMB__BLOCK_SMALL, 0, 0,
                          cls, align);
  hmb__count_block(m, 0, (int64_t)size, (int64_t)bytes);
  return data;
}

static void *hmb__alloc_large(hmb__memory_t *m, size_t size, size_t align) {
  size_t prefix = hmb__prefix_for(align);
  size_t len = hmb__round_page(size + prefix);
  void *raw;
  unsigned cls = HMB__BLOCK_NOCLASS;
  int huge = 0;
  if (m->cache && align <= hmb__os_page_size()) {
    raw = hmb__cache_get(m->cache, len, &cls, &huge);
    len = hmb__cache_block_len(len);
  } else if (align <= hmb__os_page_size()) {
    raw = hmb__os_map_large(len, m->huge, &huge);
  } else {
    raw = hmb__os_map(len, align); /* over-aligned: never cached */
  }
  if (!raw)
    return NULL;
  void *data =
      hmb__place(raw, prefix, 1, HMB__BLOCK_LARGE, 0, huge, cls, align);
  if (huge)
    atomic_fetch_add_explicit(&m->huge_live, (int64_t)len,
                              memory_order_relaxed);
  hmb__count_block(m, 0, (int64_t)size, (int64_t)len);
  return data;
}

void *hmb__memory_alloc_slow(hmb__memory_t *mem, size_t size, size_t align,
                             int prefer_pinned, int *pinned) {
  if (mem->custom.alloc != NULL)
    return hmb__alloc_custom(mem, size, align, prefer_pinned, pinned);
  int full = 0;
  if (prefer_pinned) {
    if (mem->arena) {
      void *p = hmb__alloc_pinned(mem, size, align);
      if (p) {
        *pinned = 1;
        return p;
      }
      full = 1;
    }
  }
  size_t a = hmb__prefix_for(align);
  void *p;
  if (size < HMB__LARGE_MIN - a)
    p = hmb__alloc_small(mem, hmb__small_need(size, a), size, align);
  else
    p = size > SIZE_MAX / 2 ? NULL : hmb__alloc_large(mem, size, align);
  if (prefer_pinned && p) { /* served pageable: a fallback */
    atomic_fetch_add_explicit(&mem->fallbacks, 1, memory_order_relaxed);
    if (full)
      atomic_fetch_add_explicit(&mem->full_fallbacks, 1, memory_order_relaxed);
  }
  return p;
}

/* Bytes the block occupies (what hmb__count_block() added as physical). */
static size_t hmb__block_bytes(uint64_t w, size_t size) {
  unsigned cls = hmb__block_class(w);
  switch (hmb__block_kind_of(w)) {
  case HMB__BLOCK_SMALL:
    return hmb__class_size(cls);
  case HMB__BLOCK_LARGE:
    return cls != HMB__BLOCK_NOCLASS
               ? hmb__cache_block_len(hmb__class_size(cls))
               : hmb__round_page(size + hmb__block_offset(w));
  default:
    return size + hmb__block_offset(w);
  }
}

/* A small block the thread cache's fast put could not keep (no room, or
 * no cache made yet): kept by the full put, which makes the cache, or
 * freed. Returns 0. */
static int hmb__memory_small_release(unsigned cls, size_t bytes, void *raw) {
  if (!hmb__tcache_small_put(cls, bytes, raw))
    free(raw);
  return 0;
}

int hmb__memory_free_slow(hmb__memory_t *mem, void *data, size_t size,
                          uint64_t w) {
  if (!hmb__block_valid(w))
    return HMB_EINVAL;
  void *raw = (char *)data - hmb__block_offset(w);
  unsigned kind = hmb__block_kind_of(w);
  int pinned = hmb__block_pinned(w);
  size_t bytes = hmb__block_bytes(w, size);
  if (kind == HMB__BLOCK_PINNED && hmb__arena_free(mem->arena, raw) != 0)
    return HMB_EINVAL;
  hmb__count_block(mem, pinned, -(int64_t)size, -(int64_t)bytes);
  switch (kind) {
  case HMB__BLOCK_SMALL: /* the thread cache was full, or not made yet */
    return hmb__memory_small_release(hmb__block_class(w), bytes, raw);
  case HMB__BLOCK_LARGE:
    if (hmb__block_huge(w))
      atomic_fetch_sub_explicit(&mem->huge_live, (int64_t)bytes,
                                memory_order_relaxed);
    if (hmb__block_class(w) != HMB__BLOCK_NOCLASS && mem->cache)
      hmb__cache_put(mem->cache, raw, hmb__block_class(w), hmb__block_huge(w));
    else
      hmb__os_unmap(raw, bytes);
    break;
  case HMB__BLOCK_CUSTOM:
    mem->custom.free(mem->custom.ctx, raw, bytes, pinned);
    break;
  default: /* pinned: freed above */
    break;
  }
  return 0;
}

void hmb__memory_fold(hmb__memory_t *mem, unsigned slot) {
  hmb__mshard_t *s = &mem->shard[slot];
  hmb__gauge_fold(&s->live, &mem->live_top, NULL);
}

int hmb__memory_resize_in_place(hmb__memory_t *mem, void *data, size_t old_size,
                                size_t new_size) {
  uint64_t w = *hmb__block_word_at(data);
  unsigned kind = hmb__block_kind_of(w);
  if (kind != HMB__BLOCK_SMALL && kind != HMB__BLOCK_LARGE)
    return 0;
  size_t bytes = hmb__block_bytes(w, old_size);
  size_t off = hmb__block_offset(w);
  if (new_size > bytes - off)
    return 0;
  /* In place only when the block is the one a fresh allocation of the new
   * size would get: a shrink that kept a much larger block would hold
   * memory beyond the physical bound of stats.h (which counts the class of
   * the size asked for). */
  size_t a = hmb__prefix_for(hmb__block_align(w));
  size_t want;
  if (kind == HMB__BLOCK_SMALL)
    want = new_size + a < HMB__LARGE_MIN
               ? hmb__class_size(hmb__class_of(hmb__small_need(new_size, a)))
               : 0;
  else if (hmb__block_class(w) != HMB__BLOCK_NOCLASS)
    want = hmb__cache_block_len(hmb__round_page(new_size + off));
  else
    want = hmb__round_page(new_size + off);
  if (want != bytes)
    return 0;
  hmb__count_block(mem, 0, (int64_t)new_size - (int64_t)old_size, 0);
  return 1;
}

int hmb__memory_block_pinned(const void *data) {
  return hmb__block_pinned(*hmb__block_word_at((void *)(uintptr_t)data));
}

size_t hmb__memory_block_align(const void *data) {
  return hmb__block_align(*hmb__block_word_at((void *)(uintptr_t)data));
}

/* ---- the cache's room ------------------------------------------------------
 */

void hmb__memory_set_room(hmb__memory_t *mem, int64_t room) {
  if (mem->cache)
    hmb__cache_set_room(mem->cache, room);
}

void hmb__memory_fit_room(hmb__memory_t *mem) {
  hmb__cache_fit(mem->cache);
}

void hmb__memory_trim(hmb__memory_t *mem, size_t keep_bytes) {
  hmb__cache_trim(mem->cache, keep_bytes);
}

/* ---- inspection ------------------------------------------------------------
 */

void hmb__memory_stats(hmb__memory_t *mem, hmb_memory_stats_t *out) {
  memset(out, 0, sizeof *out);
  int64_t live = 0, pin = 0, phys = 0;
  for (unsigned i = 0; i <= HMB__MSHARD_SHARED; i++) {
    live += hmb__gauge_value(&mem->shard[i].live);
    pin += hmb__gauge_value(&mem->shard[i].pinned);
    phys += atomic_load_explicit(&mem->shard[i].phys, memory_order_relaxed);
  }
  out->pageable_live = live;
  out->pageable_peak =
      atomic_load_explicit(&mem->live_top.peak, memory_order_relaxed);
  if (out->pageable_peak < live)
    out->pageable_peak = live;
  out->pageable_physical = phys;
  out->pinned_live = pin;
  out->pinned_peak =
      atomic_load_explicit(&mem->pinned_top.peak, memory_order_relaxed);
  if (out->pinned_peak < pin)
    out->pinned_peak = pin;
  out->pinned_fallbacks =
      atomic_load_explicit(&mem->fallbacks, memory_order_relaxed);
  out->pinned_full_fallbacks =
      atomic_load_explicit(&mem->full_fallbacks, memory_order_relaxed);
  out->pinned_reason = mem->pinned_reason;
  out->pinned_setup_ns = mem->setup_ns;
  out->huge_bytes = atomic_load_explicit(&mem->huge_live, memory_order_relaxed);
  out->cuda_runtime = hmb__cuda_runtime();
  out->pinned_capacity = (int64_t)mem->pinned_capacity;
  if (mem->cache) {
    hmb__cache_stats_t cs;
    hmb__cache_stats(mem->cache, &cs);
    out->cached_bytes = cs.cached;
    out->cache_cap = cs.cap;
    out->cache_hits = cs.hits;
    out->cache_misses = cs.misses;
    out->cache_rejects = cs.rejects;
    out->cache_trimmed = cs.trimmed;
    out->huge_bytes += cs.huge;
  }
}

/* The thread cache's table of class sizes against sizeclass.h: a constant,
 * so walked once (relaxed: a second walk by a racing check is harmless). */
static int hmb__class_table_ok(void) {
  static _Atomic int ok;
  if (atomic_load_explicit(&ok, memory_order_relaxed))
    return 1;
  for (unsigned k = 0; k < HMB__TC_NCLASSES; k++)
    if (hmb__tcache_class_size(k) != hmb__class_size(k) ||
        hmb__class_of(hmb__class_size(k)) != k)
      return 0;
  atomic_store_explicit(&ok, 1, memory_order_relaxed);
  return 1;
}

int hmb__memory_check(hmb__memory_t *mem, char *why, size_t len) {
  hmb_memory_stats_t st;
  hmb__memory_stats(mem, &st);
  const char *bad = NULL;
  if (st.pageable_live < 0 || st.pinned_live < 0)
    bad = "memory: negative live bytes";
  else if (st.pageable_physical < st.pageable_live)
    bad = "memory: physical bytes below live bytes";
  else if (st.pageable_peak < st.pageable_live)
    bad = "memory: peak below live";
  else if (st.cached_bytes < 0)
    bad = "memory: negative cached bytes";
  else if (st.pinned_capacity && st.pinned_live > st.pinned_capacity)
    bad = "memory: pinned live bytes above the region";
  else if (mem->arena && hmb__arena_check(mem->arena) != 0)
    bad = "memory: pinned region bookkeeping is inconsistent";
  else if (!hmb__class_table_ok())
    bad = "memory: the thread cache's class sizes disagree with the size "
          "classes";
  if (bad && why && len)
    snprintf(why, len, "%s", bad);
  return bad ? HMB_EFAILED : 0;
}
