/*
 * test_memory.c - the physical backends behind memory.h: pinned region with
 * pageable fallback, the warm pageable cache, and the OS helpers.
 *
 * On a machine without a GPU (and in builds without CUDA) the pinned tests
 * check the fallback: prefer-pinned requests succeed as pageable, the
 * reason is readable, fallbacks are counted and the budget is exact. With
 * a usable GPU the same tests check that blocks really are pinned. The
 * sub-allocation path of the pinned region is also tested on ordinary
 * memory attached as the region (hmb__memory_attach_region), so that its
 * accounting is covered everywhere.
 */
#define _DEFAULT_SOURCE /* mincore */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "memory/cache.h"
#include "platform/cuda.h"
#include "core/internal.h"
#include "platform/os.h"
#include "testsupport.h"

static const char no_cuda[] = "built without CUDA support (HMB_WITH_CUDA=OFF)";

static hmb_pool_t *pool_with(size_t limit, size_t pinned, int method,
                             size_t cache) {
  hmb_pool_config_t cfg;
  hmb_pool_config_init(&cfg);
  cfg.limit = limit;
  cfg.pinned_bytes = pinned;
  cfg.pinned_method = method;
  cfg.cache_bytes = cache;
  cfg.log_level = HMB_LOG_ERROR;
  hmb_pool_t *pool = NULL;
  assert_int_equal(hmb_pool_create(&cfg, &pool), HMB_OK);
  return pool;
}

static hmb_memory_stats_t mstats(hmb_pool_t *pool) {
  hmb_memory_stats_t ms;
  assert_int_equal(hmb_pool_memory_stats(pool, &ms), HMB_OK);
  assert_non_null(ms.pinned_reason);
  return ms;
}

static void finish_and_destroy(hmb_runner_t *r) {
  assert_int_equal(hmb_runner_finish(r, 0, NULL), HMB_OK);
  hmb_runner_destroy(r);
}

/* ---- probe and reasons -----------------------------------------------------
 */

static void test_probe_reason(void **state) {
  (void)state;
  const char *r1 = NULL, *r2 = NULL;
  int ok = hmb__cuda_probe(&r1);
  assert_int_equal(hmb__cuda_probe(&r2), ok); /* decided once */
  assert_ptr_equal(r1, r2);
  assert_non_null(r1);
  fprintf(stderr, "cuda built=%d usable=%d reason='%s'\n", hmb__cuda_built(),
          ok, r1);
  if (!hmb__cuda_built()) {
    assert_int_equal(ok, 0);
    assert_string_equal(r1, no_cuda);
    assert_int_equal(hmb__cuda_is_pinned(&ok), HMB_ENOTSUP);
    void *dev = NULL;
    assert_int_equal(hmb__cuda_device_alloc(64, &dev), HMB_ENOTSUP);
  }
  if (ok)
    assert_string_equal(r1, "");
  else
    assert_true(strlen(r1) > 10);
}

static void test_invalid_method(void **state) {
  (void)state;
  hmb_pool_config_t cfg;
  hmb_pool_config_init(&cfg);
  cfg.limit = 1 << 20;
  cfg.pinned_method = 7;
  hmb_pool_t *pool = (hmb_pool_t *)&cfg; /* must be reset to NULL */
  assert_int_equal(hmb_pool_create(&cfg, &pool), HMB_EINVAL);
  assert_null(pool);
}

static void test_no_region_configured(void **state) {
  (void)state;
  hmb_pool_t *pool = pool_with(1 << 20, 0, 0, 0);
  hmb_memory_stats_t ms = mstats(pool);
  if (hmb__cuda_built())
    assert_string_equal(ms.pinned_reason,
                        "no pinned region configured (pinned_bytes is 0)");
  else
    assert_string_equal(ms.pinned_reason, no_cuda);
  assert_int_equal(ms.pinned_capacity, 0);
  hmb_runner_t *r = ts_started_runner(pool, 4096);
  hmb_buffer_t *b;
  assert_int_equal(hmb_runner_alloc(r, 1000, HMB_ALLOC_PINNED, &b), HMB_OK);
  assert_int_equal(hmb_buffer_is_pinned(b), 0);
  ms = mstats(pool);
  assert_int_equal(ms.pinned_fallbacks, 1);
  assert_int_equal(ms.pinned_full_fallbacks, 0);
  assert_int_equal(ms.pageable_live, 1000);
  hmb_buffer_close(b);
  finish_and_destroy(r);
  ts_assert_pool_idle(pool);
  assert_int_equal(hmb_pool_destroy(pool), 0);
}

/*
 * prefer_pinned through a runner with a configured region, both creation
 * methods: pinned when a GPU is usable, otherwise pageable with the probe's
 * reason; every byte charged to the budget exactly either way.
 */
static void check_pinned_requests(int method) {
  const char *probe_reason;
  int usable = hmb__cuda_probe(&probe_reason);
  hmb_pool_t *pool = pool_with(64 << 20, 4 << 20, method, 0);
  hmb_memory_stats_t ms = mstats(pool);
  if (usable) {
    assert_string_equal(ms.pinned_reason, "");
    assert_int_equal(ms.pinned_capacity, 4 << 20);
  } else {
    assert_string_equal(ms.pinned_reason, probe_reason);
    assert_int_equal(ms.pinned_capacity, 0);
  }
  uint64_t seed = ts_seed("pinned_requests");
  uint64_t rs = seed;
  hmb_runner_t *r = ts_started_runner(pool, 256 << 10);
  enum { N = 24 };
  hmb_buffer_t *bufs[N];
  int64_t sum = 0;
  for (int i = 0; i < N; i++) {
    size_t n = 1 + ts_rand(&rs) % (100 << 10); /* total exceeds the estimate */
    assert_int_equal(hmb_runner_alloc(r, n, HMB_ALLOC_PINNED, &bufs[i]),
                     HMB_OK);
    assert_int_equal(hmb_buffer_size(bufs[i]), n);
    memset(hmb_buffer_data(bufs[i]), i, n);
    assert_int_equal(hmb_buffer_is_pinned(bufs[i]), usable);
    if (usable) {
      assert_int_equal(hmb__cuda_is_pinned(hmb_buffer_data(bufs[i])), 1);
      assert_int_equal((uintptr_t)hmb_buffer_data(bufs[i]) % 256, 0);
    }
    sum += (int64_t)n;
  }
  hmb_pool_stats_t ps;
  hmb_runner_stats_t rst;
  assert_int_equal(hmb_pool_stats(pool, &ps), HMB_OK);
  assert_int_equal(hmb_runner_stats(r, &rst), HMB_OK);
  assert_int_equal(ps.live_bytes, sum);
  assert_int_equal(rst.live, sum);
  assert_int_equal(ps.held, rst.held);
  assert_true(rst.held >= sum);
  ms = mstats(pool);
  assert_int_equal(ms.pinned_live + ms.pageable_live, sum);
  if (usable) {
    assert_int_equal(ms.pinned_live, sum);
    assert_int_equal(ms.pinned_fallbacks, 0);
  } else {
    assert_int_equal(ms.pageable_live, sum);
    assert_int_equal(ms.pageable_physical, sum); /* no cache: no rounding */
    assert_int_equal(ms.pinned_fallbacks, N);
    assert_int_equal(ms.pinned_full_fallbacks, 0);
  }
  for (int i = 0; i < N; i++)
    assert_int_equal(hmb_buffer_close(bufs[i]), HMB_OK);
  ms = mstats(pool);
  assert_int_equal(ms.pinned_live, 0);
  assert_int_equal(ms.pageable_live, 0);
  assert_int_equal(ms.pageable_physical, 0);
  assert_int_equal(ms.pinned_peak + ms.pageable_peak >= sum, 1);
  assert_int_equal(hmb_runner_stats(r, &rst), HMB_OK);
  assert_int_equal(rst.live, 0);
  finish_and_destroy(r);
  ts_assert_pool_idle(pool);
  assert_int_equal(hmb_pool_destroy(pool), 0);
}

static void test_pinned_host_alloc(void **state) {
  (void)state;
  check_pinned_requests(HMB_PINNED_HOST_ALLOC);
}

static void test_pinned_register(void **state) {
  (void)state;
  check_pinned_requests(HMB_PINNED_REGISTER);
}

/* The default allocator has no region: pinned requests are fallbacks. */
static void test_default_allocator(void **state) {
  (void)state;
  hmb_memory_stats_t before, after;
  hmb__memory_stats(hmb__memory_default(), &before);
  hmb_buffer_t *b;
  assert_int_equal(
      hmb_allocate(hmb_default_allocator(), 3000, HMB_ALLOC_PINNED, &b),
      HMB_OK);
  assert_int_equal(hmb_buffer_is_pinned(b), 0);
  hmb__memory_stats(hmb__memory_default(), &after);
  assert_int_equal(after.pinned_fallbacks, before.pinned_fallbacks + 1);
  assert_int_equal(after.pageable_live, before.pageable_live + 3000);
  assert_true(strlen(after.pinned_reason) > 0);
  if (!hmb__cuda_built())
    assert_string_equal(after.pinned_reason, no_cuda);
  hmb_buffer_close(b);
}

/*
 * The pinned path itself, on ordinary memory attached as the region:
 * blocks come from the region until it is full, then fall back to pageable;
 * the budget is charged the requested size in both cases.
 */
static void test_region_path_and_full_fallback(void **state) {
  (void)state;
  enum { CAP = 65536, N = 10, SZ = 6000 }; /* 6000 -> 6144 in the region */
  char *region = NULL;
  assert_int_equal(posix_memalign((void **)&region, 4096, CAP), 0);
  hmb_pool_t *pool = pool_with(1 << 20, 0, 0, 0);
  assert_int_equal(hmb__memory_attach_region(pool->mem, region, CAP), HMB_OK);
  assert_int_equal(hmb__memory_attach_region(pool->mem, region, CAP),
                   HMB_ESTATE);
  hmb_memory_stats_t ms = mstats(pool);
  assert_string_equal(ms.pinned_reason, "");
  assert_int_equal(ms.pinned_capacity, CAP);

  hmb_runner_t *r = ts_started_runner(pool, 32768);
  hmb_buffer_t *b[N + 2];
  for (int i = 0; i < N; i++) {
    assert_int_equal(hmb_runner_alloc(r, SZ, HMB_ALLOC_PINNED, &b[i]), HMB_OK);
    char *d = hmb_buffer_data(b[i]);
    assert_int_equal(hmb_buffer_is_pinned(b[i]), 1);
    assert_true(d >= region && d + SZ <= region + CAP);
    assert_int_equal((uintptr_t)d % 256, 0);
    memset(d, i + 1, SZ);
  }
  /* 4096 bytes are left: a 6000-byte request falls back to pageable. */
  assert_int_equal(hmb_runner_alloc(r, SZ, HMB_ALLOC_PINNED, &b[N]), HMB_OK);
  assert_int_equal(hmb_buffer_is_pinned(b[N]), 0);
  char *d = hmb_buffer_data(b[N]);
  assert_true(d + SZ <= region || d >= region + CAP);
  /* A plain pageable request is not a fallback. */
  assert_int_equal(hmb_runner_alloc(r, 100, 0, &b[N + 1]), HMB_OK);
  ms = mstats(pool);
  assert_int_equal(ms.pinned_live, N * SZ);
  assert_int_equal(ms.pinned_peak, N * SZ);
  assert_int_equal(ms.pageable_live, SZ + 100);
  assert_int_equal(ms.pinned_fallbacks, 1);
  assert_int_equal(ms.pinned_full_fallbacks, 1);
  hmb_pool_stats_t ps;
  assert_int_equal(hmb_pool_stats(pool, &ps), HMB_OK);
  assert_int_equal(ps.live_bytes, (N + 1) * SZ + 100);
  assert_int_equal(ps.live_buffers, N + 2);
  hmb_runner_stats_t rst;
  assert_int_equal(hmb_runner_stats(r, &rst), HMB_OK);
  assert_int_equal(rst.live, (N + 1) * SZ + 100);
  assert_int_equal(ps.held, rst.held);

  for (int i = 0; i < N + 2; i++)
    assert_int_equal(hmb_buffer_close(b[i]), HMB_OK);
  ms = mstats(pool);
  assert_int_equal(ms.pinned_live, 0);
  assert_int_equal(ms.pageable_live, 0);
  /* Everything coalesced: the whole region is one block again. */
  hmb_buffer_t *whole;
  assert_int_equal(hmb_runner_alloc(r, CAP, HMB_ALLOC_PINNED, &whole), HMB_OK);
  assert_int_equal(hmb_buffer_is_pinned(whole), 1);
  assert_ptr_equal(hmb_buffer_data(whole), region);
  hmb_buffer_close(whole);
  finish_and_destroy(r);
  ts_assert_pool_idle(pool);
  assert_int_equal(hmb_pool_destroy(pool), 0);
  free(region);

  ts_failing_backend_t fb;
  ts_failing_backend_init(&fb, 0, 0);
  pool = ts_pool(1 << 20, &fb.vtable, NULL);
  assert_int_equal(hmb__memory_attach_region(pool->mem, &fb, 4096), HMB_ESTATE);
  assert_int_equal(hmb_pool_destroy(pool), 0);
}

/* ---- warm cache ------------------------------------------------------------
 */

static void test_cache_classes(void **state) {
  (void)state;
  hmb__cache_t *c = NULL;
  assert_int_equal(hmb__cache_create(0, 64, &c), HMB_EINVAL);
  assert_int_equal(hmb__cache_create(1 << 20, 3, &c), HMB_EINVAL);
  assert_int_equal(hmb__cache_create(1 << 20, 64, &c), HMB_OK);
  const size_t in[] = {1,    4095,  4096,  4097,   5000,    8191,
                       8192, 65536, 65537, 100000, 1 << 20, (1 << 20) + 1};
  const size_t out[] = {1,    4095,  4096,  4608,   5120,    8192,
                        8192, 65536, 73728, 106496, 1 << 20, (1 << 20) + 1};
  for (size_t i = 0; i < sizeof in / sizeof in[0]; i++) {
    size_t bs = hmb__cache_block_size(c, in[i]);
    assert_int_equal(bs, out[i]);
    assert_true(bs >= in[i]);
    assert_true(bs * 8 <= in[i] * 9); /* rounding below 1/8 */
  }
  /* Many sizes: rounding always within 1/8 and idempotent. */
  for (size_t s = 4096; s < (1 << 20); s = s * 17 / 16 + 3) {
    size_t bs = hmb__cache_block_size(c, s);
    assert_true(bs >= s && bs * 8 <= s * 9);
    assert_int_equal(hmb__cache_block_size(c, bs), bs);
  }
  /* Blocks kept at destroy are given back (leak-checked under ASan). */
  void *p = hmb__cache_alloc(c, 70000);
  void *q = hmb__cache_alloc(c, 300000);
  assert_non_null(p);
  assert_non_null(q);
  hmb__cache_free(c, p, 70000);
  hmb__cache_free(c, q, 300000);
  hmb__cache_stats_t cs;
  hmb__cache_stats(c, &cs);
  assert_int_equal(cs.cached, 73728 + 327680); /* 9x8 KiB, 10x32 KiB */
  hmb__cache_destroy(c);
  hmb__cache_destroy(NULL);
}

static void test_cache_hits_rounding_budget(void **state) {
  (void)state;
  hmb_pool_t *pool = pool_with(8 << 20, 0, 0, 1 << 20);
  hmb_runner_t *r = ts_started_runner(pool, 1 << 20);
  hmb_buffer_t *b;
  assert_int_equal(hmb_runner_alloc(r, 65536, 0, &b), HMB_OK);
  void *first = hmb_buffer_data(b);
  hmb_memory_stats_t ms = mstats(pool);
  assert_int_equal(ms.cache_cap, 1 << 20);
  assert_int_equal(ms.cache_misses, 1);
  assert_int_equal(ms.cache_hits, 0);
  assert_int_equal(ms.cached_bytes, 0);
  assert_int_equal(ms.pageable_physical, 65536);
  hmb_buffer_close(b);
  ms = mstats(pool);
  assert_int_equal(ms.cached_bytes, 65536);
  assert_int_equal(ms.pageable_physical, 0);
  /* Same class (61441..65536): the warm block comes back. */
  assert_int_equal(hmb_runner_alloc(r, 62000, 0, &b), HMB_OK);
  assert_ptr_equal(hmb_buffer_data(b), first);
  ms = mstats(pool);
  assert_int_equal(ms.cache_hits, 1);
  assert_int_equal(ms.cache_misses, 1);
  assert_int_equal(ms.cached_bytes, 0);
  assert_int_equal(ms.pageable_live, 62000);
  assert_int_equal(ms.pageable_physical, 65536);
  /* The budget is charged the request, not the class. */
  hmb_pool_stats_t ps;
  assert_int_equal(hmb_pool_stats(pool, &ps), HMB_OK);
  assert_int_equal(ps.live_bytes, 62000);
  hmb_buffer_t *c;
  assert_int_equal(hmb_runner_alloc(r, 4097, 0, &c), HMB_OK);
  ms = mstats(pool);
  assert_int_equal(ms.pageable_live, 62000 + 4097);
  assert_int_equal(ms.pageable_physical, 65536 + 4608);
  assert_true(ms.pageable_physical * 8 <= ms.pageable_live * 9);
  assert_int_equal(hmb_pool_stats(pool, &ps), HMB_OK);
  assert_int_equal(ps.live_bytes, 62000 + 4097);
  /* Small requests bypass the cache: no hit, no miss, nothing kept. */
  hmb_buffer_t *small;
  assert_int_equal(hmb_runner_alloc(r, 100, 0, &small), HMB_OK);
  hmb_buffer_close(small);
  hmb_buffer_close(c);
  hmb_buffer_close(b);
  ms = mstats(pool);
  assert_int_equal(ms.cache_hits + ms.cache_misses, 3);
  assert_int_equal(ms.cached_bytes, 65536 + 4608);
  assert_int_equal(ms.pageable_live, 0);
  assert_int_equal(ms.pageable_physical, 0);
  finish_and_destroy(r);
  ts_assert_pool_idle(pool);
  assert_int_equal(hmb_pool_destroy(pool), 0); /* trims the cache */
}

static void test_cache_cap_and_trim(void **state) {
  (void)state;
  enum { N = 40, SZ = 65536, CAP = 1 << 20 };
  hmb_pool_t *pool = pool_with(64 << 20, 0, 0, CAP);
  hmb_runner_t *r = ts_started_runner(pool, N * SZ);
  hmb_buffer_t *b[N];
  for (int i = 0; i < N; i++)
    assert_int_equal(hmb_runner_alloc(r, SZ, 0, &b[i]), HMB_OK);
  for (int i = 0; i < N; i++) {
    hmb_buffer_close(b[i]);
    hmb_memory_stats_t ms = mstats(pool);
    assert_true(ms.cached_bytes <= CAP);
  }
  hmb_memory_stats_t ms = mstats(pool);
  assert_int_equal(ms.cached_bytes, CAP); /* 16 blocks kept */
  assert_int_equal(ms.cache_rejects, N - CAP / SZ);
  assert_int_equal(ms.pageable_physical + ms.cached_bytes, CAP);
  /* Trim to 300 KiB: whole blocks go until at most that much is left. */
  assert_int_equal(hmb_pool_trim(pool, 300 << 10), HMB_OK);
  ms = mstats(pool);
  assert_int_equal(ms.cached_bytes, 4 * SZ);
  assert_int_equal(ms.cache_trimmed, CAP - 4 * SZ);
  /* Requests larger than the cap bypass the cache and are not rounded. */
  hmb_buffer_t *big;
  assert_int_equal(hmb_runner_alloc(r, CAP + 12345, 0, &big), HMB_OK);
  ms = mstats(pool);
  assert_int_equal(ms.pageable_physical, CAP + 12345);
  assert_int_equal(ms.cache_misses, N); /* not counted as a miss */
  hmb_buffer_close(big);
  ms = mstats(pool);
  assert_int_equal(ms.cached_bytes, 4 * SZ);
  assert_int_equal(hmb_pool_trim(pool, 0), HMB_OK);
  ms = mstats(pool);
  assert_int_equal(ms.cached_bytes, 0);
  assert_int_equal(ms.cache_trimmed, CAP);
  assert_int_equal(hmb_pool_trim(NULL, 0), HMB_EINVAL);
  finish_and_destroy(r);
  ts_assert_pool_idle(pool);
  assert_int_equal(hmb_pool_destroy(pool), 0);
}

/* Many threads through runners: cap never exceeded, counters add up. */
typedef struct cc_shared {
  hmb_pool_t *pool;
  long iters;
  uint64_t seed;
  _Atomic long cacheable, over_cap, bad;
} cc_shared_t;

typedef struct cc_arg {
  cc_shared_t *sh;
  int id;
} cc_arg_t;

enum { CC_CAP = 2 << 20 };

static void *cc_main(void *argp) {
  cc_arg_t *a = argp;
  cc_shared_t *sh = a->sh;
  uint64_t rs = sh->seed + (uint64_t)a->id * 7919;
  hmb_runner_config_t rc = {0};
  rc.estimate = 1 << 20;
  hmb_runner_t *r = NULL;
  if (hmb_runner_create(sh->pool, &rc, &r) != 0 ||
      hmb_runner_start(r, HMB_WAIT_FOREVER) != 0) {
    atomic_fetch_add(&sh->bad, 1);
    hmb_runner_destroy(r);
    return NULL;
  }
  hmb_buffer_t *held[4] = {NULL, NULL, NULL, NULL};
  for (long i = 0; i < sh->iters; i++) {
    int k = (int)(ts_rand(&rs) % 4);
    if (held[k]) {
      unsigned char *d = hmb_buffer_data(held[k]);
      size_t n = hmb_buffer_size(held[k]);
      if (d[0] != (unsigned char)k || d[n - 1] != (unsigned char)k)
        atomic_fetch_add(&sh->bad, 1);
      hmb_buffer_close(held[k]);
      held[k] = NULL;
      continue;
    }
    size_t n = 4096 + ts_rand(&rs) % (256 << 10);
    if (hmb_runner_alloc(r, n, 0, &held[k]) != 0) {
      atomic_fetch_add(&sh->bad, 1);
      continue;
    }
    atomic_fetch_add(&sh->cacheable, 1);
    unsigned char *d = hmb_buffer_data(held[k]);
    d[0] = d[n - 1] = (unsigned char)k;
    hmb_memory_stats_t ms;
    hmb_pool_memory_stats(sh->pool, &ms);
    if (ms.cached_bytes > CC_CAP)
      atomic_fetch_add(&sh->over_cap, 1);
  }
  for (int k = 0; k < 4; k++)
    if (held[k])
      hmb_buffer_close(held[k]);
  hmb_runner_finish(r, 0, NULL);
  hmb_runner_destroy(r);
  return NULL;
}

static void test_cache_concurrent(void **state) {
  (void)state;
  cc_shared_t sh;
  memset(&sh, 0, sizeof sh);
  sh.pool = pool_with(256 << 20, 0, 0, CC_CAP);
  sh.iters = ts_env_long("HMB_CACHE_ITERS", 8000);
  sh.seed = ts_seed("cache_concurrent");
  int threads = (int)ts_env_long("HMB_CACHE_THREADS", 16);
  if (threads < 2)
    threads = 2;
  if (threads > 32)
    threads = 32;
  pthread_t t[32];
  cc_arg_t args[32];
  ts_watchdog_arm("cache concurrent", 120);
  for (int i = 0; i < threads; i++) {
    args[i].sh = &sh;
    args[i].id = i;
    assert_int_equal(pthread_create(&t[i], NULL, cc_main, &args[i]), 0);
  }
  for (int i = 0; i < threads; i++)
    pthread_join(t[i], NULL);
  ts_watchdog_disarm();
  assert_int_equal(atomic_load(&sh.bad), 0);
  assert_int_equal(atomic_load(&sh.over_cap), 0);
  hmb_memory_stats_t ms = mstats(sh.pool);
  fprintf(stderr, "cache threads=%d hits=%llu misses=%llu cached=%lld\n",
          threads, (unsigned long long)ms.cache_hits,
          (unsigned long long)ms.cache_misses, (long long)ms.cached_bytes);
  assert_int_equal(ms.cache_hits + ms.cache_misses,
                   (uint64_t)atomic_load(&sh.cacheable));
  assert_true(ms.cache_hits > 0);
  assert_true(ms.cached_bytes <= CC_CAP);
  assert_int_equal(ms.pageable_live, 0);
  assert_int_equal(ms.pageable_physical, 0);
  ts_assert_pool_idle(sh.pool);
  assert_int_equal(hmb_pool_destroy(sh.pool), 0);
}

/* ---- OS helpers
 * -------------------------------------------------------------- */

static void test_os_helpers(void **state) {
  (void)state;
  size_t page = hmb__os_page_size();
  assert_true(page >= 4096 && (page & (page - 1)) == 0);
  assert_true(hmb__os_cpus() >= 1);
  /* Over-aligned mapping. */
  size_t n = (1 << 20) + 1;
  char *p = hmb__os_map(n, 1 << 16);
  assert_non_null(p);
  assert_int_equal((uintptr_t)p % (1 << 16), 0);
  memset(p, 1, n);
  hmb__os_unmap(p, n);
  /* Large blocks are mappings (page aligned); small ones from libc. */
  p = hmb__os_alloc(HMB__OS_MAP_MIN, 64);
  assert_non_null(p);
  assert_int_equal((uintptr_t)p % page, 0);
  memset(p, 2, HMB__OS_MAP_MIN);
  hmb__os_free(p, HMB__OS_MAP_MIN);
  p = hmb__os_alloc(1000, 128);
  assert_non_null(p);
  assert_int_equal((uintptr_t)p % 128, 0);
  hmb__os_free(p, 1000);
  /* Parallel pre-touch makes every page resident. */
  size_t len = 8 << 20;
  p = hmb__os_map(len, page);
  assert_non_null(p);
  hmb__os_touch(p, len, 4);
  size_t pages = len / page;
  unsigned char *vec = malloc(pages);
  assert_non_null(vec);
  assert_int_equal(mincore(p, len, vec), 0);
  size_t resident = 0;
  for (size_t i = 0; i < pages; i++)
    resident += vec[i] & 1;
  assert_int_equal(resident, pages);
  free(vec);
  hmb__os_unmap(p, len);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_probe_reason),
      cmocka_unit_test(test_invalid_method),
      cmocka_unit_test(test_no_region_configured),
      cmocka_unit_test(test_pinned_host_alloc),
      cmocka_unit_test(test_pinned_register),
      cmocka_unit_test(test_default_allocator),
      cmocka_unit_test(test_region_path_and_full_fallback),
      cmocka_unit_test(test_cache_classes),
      cmocka_unit_test(test_cache_hits_rounding_budget),
      cmocka_unit_test(test_cache_cap_and_trim),
      cmocka_unit_test(test_cache_concurrent),
      cmocka_unit_test(test_os_helpers),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
