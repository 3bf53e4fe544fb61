/*
 * test_arena.c - the pinned-region sub-allocator, on ordinary memory.
 *
 * The arena never knows what memory it cuts up, so these tests exercise the
 * exact code that serves the CUDA pinned region. They check alignment,
 * completeness (no false "full"), coalescing back to a single block, the
 * rejection of foreign and double frees, and, with many threads and random
 * sizes, that no two live allocations ever overlap: every allocation claims
 * its granules in a shared ownership map by compare-and-swap, which fails
 * at once if another live block already owns one of them.
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "memory/arena.h"
#include "testsupport.h"

enum { G = 256 };

static void *region_new(size_t size) {
  void *p = NULL;
  assert_int_equal(posix_memalign(&p, 4096, size), 0);
  memset(p, 0xA5, size);
  return p;
}

static void assert_all_free(hmb__arena_t *a) {
  hmb__arena_stats_t st;
  assert_int_equal(hmb__arena_check(a), 0);
  hmb__arena_stats(a, &st);
  assert_int_equal(st.used, 0);
  assert_int_equal(st.used_blocks, 0);
  assert_int_equal(st.free_blocks, 1);
  assert_int_equal(st.largest_free, st.capacity);
}

static void test_create_args(void **state) {
  (void)state;
  char *r = region_new(1 << 16);
  hmb__arena_t *a = NULL;
  assert_int_equal(hmb__arena_create(NULL, 4096, G, &a), HMB_EINVAL);
  assert_int_equal(hmb__arena_create(r, 4096, 100, &a), HMB_EINVAL);
  assert_int_equal(hmb__arena_create(r, 4096, 8, &a), HMB_EINVAL);
  assert_int_equal(hmb__arena_create(r + 1, G, G, &a), HMB_EINVAL);
  assert_null(a);
  /* An unaligned base is rounded up; the capacity shrinks accordingly. */
  assert_int_equal(hmb__arena_create(r + 1, 10 * G, G, &a), HMB_OK);
  hmb__arena_stats_t st;
  hmb__arena_stats(a, &st);
  assert_int_equal(st.capacity, 9 * G);
  void *p = hmb__arena_alloc(a, 1);
  assert_ptr_equal(p, r + G);
  assert_int_equal(hmb__arena_free(a, p), 0);
  hmb__arena_destroy(a);
  hmb__arena_destroy(NULL);
  free(r);
}

static void test_basic_alignment_and_rounding(void **state) {
  (void)state;
  size_t cap = 1 << 20;
  char *r = region_new(cap);
  hmb__arena_t *a;
  assert_int_equal(hmb__arena_create(r, cap, G, &a), HMB_OK);
  assert_int_equal(hmb__arena_block_size(a, 1), G);
  assert_int_equal(hmb__arena_block_size(a, G), G);
  assert_int_equal(hmb__arena_block_size(a, G + 1), 2 * G);
  size_t sizes[] = {1, 255, 256, 257, 1000, 4096, 65537, 3};
  void *ps[8];
  size_t used = 0;
  for (int i = 0; i < 8; i++) {
    ps[i] = hmb__arena_alloc(a, sizes[i]);
    assert_non_null(ps[i]);
    assert_int_equal((uintptr_t)ps[i] % G, 0);
    assert_true(hmb__arena_contains(a, ps[i]));
    memset(ps[i], i, sizes[i]);
    used += hmb__arena_block_size(a, sizes[i]);
  }
  hmb__arena_stats_t st;
  hmb__arena_stats(a, &st);
  assert_int_equal(st.used, used);
  assert_int_equal(st.used_blocks, 8);
  assert_int_equal(st.allocs, 8);
  assert_int_equal(hmb__arena_check(a), 0);
  for (int i = 0; i < 8; i++) /* nothing overwrote another block */
    for (size_t j = 0; j < sizes[i]; j++)
      assert_int_equal(((unsigned char *)ps[i])[j], i);
  assert_null(hmb__arena_alloc(a, 0));
  assert_null(hmb__arena_alloc(a, cap + 1));
  assert_false(hmb__arena_contains(a, r + cap));
  assert_false(hmb__arena_contains(a, r - 1));
  for (int i = 0; i < 8; i++)
    assert_int_equal(hmb__arena_free(a, ps[i]), 0);
  assert_all_free(a);
  hmb__arena_destroy(a);
  free(r);
}

static void test_other_alignment(void **state) {
  (void)state;
  size_t cap = 1 << 20;
  char *r = region_new(cap);
  hmb__arena_t *a;
  assert_int_equal(hmb__arena_create(r, cap, 4096, &a), HMB_OK);
  void *p = hmb__arena_alloc(a, 10);
  void *q = hmb__arena_alloc(a, 5000);
  assert_int_equal((uintptr_t)p % 4096, 0);
  assert_int_equal((uintptr_t)q % 4096, 0);
  assert_int_equal((char *)q - (char *)p, 4096);
  hmb__arena_free(a, q);
  hmb__arena_free(a, p);
  assert_all_free(a);
  hmb__arena_destroy(a);
  free(r);
}

static void test_bad_and_double_free(void **state) {
  (void)state;
  size_t cap = 64 * G;
  char *r = region_new(cap);
  hmb__arena_t *a;
  assert_int_equal(hmb__arena_create(r, cap, G, &a), HMB_OK);
  char *p = hmb__arena_alloc(a, 2 * G);
  assert_non_null(p);
  char other;
  assert_int_equal(hmb__arena_free(a, &other), HMB_EINVAL);
  assert_int_equal(hmb__arena_free(a, p + 1), HMB_EINVAL); /* misaligned */
  assert_int_equal(hmb__arena_free(a, p + G), HMB_EINVAL); /* inside */
  assert_int_equal(hmb__arena_free(a, p), 0);
  assert_int_equal(hmb__arena_free(a, p), HMB_EINVAL); /* double */
  assert_all_free(a);
  hmb__arena_destroy(a);
  free(r);
}

/* Exhaust the region, then free in a pattern and refill exact holes. */
static void test_exhaust_and_exact_fit(void **state) {
  (void)state;
  enum { N = 64 };
  size_t cap = N * G;
  char *r = region_new(cap);
  hmb__arena_t *a;
  assert_int_equal(hmb__arena_create(r, cap, G, &a), HMB_OK);
  void *ps[N];
  for (int i = 0; i < N; i++) {
    ps[i] = hmb__arena_alloc(a, G);
    assert_non_null(ps[i]);
  }
  assert_null(hmb__arena_alloc(a, 1));
  hmb__arena_stats_t st;
  hmb__arena_stats(a, &st);
  assert_int_equal(st.failures, 1);
  assert_int_equal(st.free_bytes, 0);
  /* Free every other block: 32 holes of one granule, none adjacent. */
  for (int i = 0; i < N; i += 2)
    assert_int_equal(hmb__arena_free(a, ps[i]), 0);
  assert_int_equal(hmb__arena_check(a), 0);
  hmb__arena_stats(a, &st);
  assert_int_equal(st.free_blocks, N / 2);
  assert_int_equal(st.largest_free, G);
  assert_null(hmb__arena_alloc(a, 2 * G)); /* fragmented: honest "full" */
  /* Freeing one neighbour merges three blocks into one. */
  assert_int_equal(hmb__arena_free(a, ps[1]), 0);
  hmb__arena_stats(a, &st);
  assert_int_equal(st.free_blocks, N / 2 - 1);
  assert_int_equal(st.largest_free, 3 * G);
  ps[1] = hmb__arena_alloc(a, 3 * G); /* exact fit of the merged hole */
  assert_ptr_equal(ps[1], ps[0]);
  /* Blocks 0-2 are now ps[1]; every remaining 1-granule hole is reusable. */
  for (int i = 4; i < N; i += 2) {
    ps[i] = hmb__arena_alloc(a, 1);
    assert_non_null(ps[i]);
  }
  assert_null(hmb__arena_alloc(a, 1));
  assert_int_equal(hmb__arena_free(a, ps[1]), 0);
  for (int i = 3; i < N; i++)
    assert_int_equal(hmb__arena_free(a, ps[i]), 0);
  assert_all_free(a);
  hmb__arena_destroy(a);
  free(r);
}

/*
 * Completeness on a random workload, single-threaded against a model: an
 * allocation may fail only if the model shows no free run long enough.
 */
static void test_random_model(void **state) {
  (void)state;
  uint64_t seed = ts_seed("arena_random_model");
  uint64_t rs = seed;
  enum { GRAN = 512, LIVE = 200 };
  size_t cap = (size_t)GRAN * G;
  char *r = region_new(cap);
  hmb__arena_t *a;
  assert_int_equal(hmb__arena_create(r, cap, G, &a), HMB_OK);
  unsigned char owner[GRAN];
  memset(owner, 0, sizeof owner);
  struct {
    char *p;
    size_t n;
  } live[LIVE];
  memset(live, 0, sizeof live);
  long steps = ts_env_long("HMB_ARENA_STEPS", 20000);
  for (long s = 0; s < steps; s++) {
    int slot = (int)(ts_rand(&rs) % LIVE);
    if (live[slot].p) {
      size_t g0 = (size_t)(live[slot].p - r) / G;
      for (size_t g = 0; g < live[slot].n; g++)
        owner[g0 + g] = 0;
      assert_int_equal(hmb__arena_free(a, live[slot].p), 0);
      live[slot].p = NULL;
      continue;
    }
    size_t bytes = 1 + ts_rand(&rs) % (8 * G);
    size_t n = (bytes + G - 1) / G;
    char *p = hmb__arena_alloc(a, bytes);
    size_t run = 0, best = 0;
    for (size_t g = 0; g < GRAN; g++) {
      run = owner[g] ? 0 : run + 1;
      if (run > best)
        best = run;
    }
    if (!p) {
      if (best >= n)
        fprintf(stderr, "seed %llu step %ld: false full for %zu granules\n",
                (unsigned long long)seed, s, n);
      assert_true(best < n);
      continue;
    }
    size_t g0 = (size_t)(p - r) / G;
    assert_int_equal((size_t)(p - r) % G, 0);
    assert_true(g0 + n <= GRAN);
    for (size_t g = 0; g < n; g++) {
      assert_int_equal(owner[g0 + g], 0); /* overlap with a live block */
      owner[g0 + g] = 1;
    }
    live[slot].p = p;
    live[slot].n = n;
    if (s % 1000 == 0)
      assert_int_equal(hmb__arena_check(a), 0);
  }
  for (int i = 0; i < LIVE; i++)
    if (live[i].p)
      assert_int_equal(hmb__arena_free(a, live[i].p), 0);
  assert_all_free(a);
  hmb__arena_destroy(a);
  free(r);
}

/* ---- many threads ----------------------------------------------------------
 */

typedef struct mt_shared {
  hmb__arena_t *a;
  char *base;
  _Atomic uint32_t *owner; /* per granule: 0 free, else the allocation tag */
  size_t granules;
  long steps;
  uint64_t seed;
  _Atomic long overlaps, corrupt, allocs, fulls;
} mt_shared_t;

typedef struct mt_arg {
  mt_shared_t *sh;
  int id;
} mt_arg_t;

static void *mt_main(void *argp) {
  mt_arg_t *arg = argp;
  mt_shared_t *sh = arg->sh;
  uint64_t rs = sh->seed ^ (0x9E3779B97F4A7C15ull * (uint64_t)(arg->id + 1));
  enum { SLOTS = 16 };
  struct {
    unsigned char *p;
    size_t bytes;
    uint32_t tag;
  } live[SLOTS];
  memset(live, 0, sizeof live);
  uint32_t next_tag = (uint32_t)arg->id << 24;
  for (long s = 0; s < sh->steps; s++) {
    int k = (int)(ts_rand(&rs) % SLOTS);
    if (live[k].p) {
      /* The pattern is intact: nobody else wrote into this block. */
      for (size_t i = 0; i < live[k].bytes; i += 61)
        if (live[k].p[i] != (unsigned char)live[k].tag)
          atomic_fetch_add(&sh->corrupt, 1);
      size_t g0 = (size_t)((char *)live[k].p - sh->base) / G;
      size_t n = (live[k].bytes + G - 1) / G;
      for (size_t g = 0; g < n; g++)
        atomic_store(&sh->owner[g0 + g], 0);
      if (hmb__arena_free(sh->a, live[k].p) != 0)
        atomic_fetch_add(&sh->corrupt, 1);
      live[k].p = NULL;
      continue;
    }
    /* Mostly small, sometimes large: 1 byte .. 64 KiB. */
    size_t bytes = (ts_rand(&rs) % 4 == 0) ? 1 + ts_rand(&rs) % 65536
                                           : 1 + ts_rand(&rs) % 2048;
    unsigned char *p = hmb__arena_alloc(sh->a, bytes);
    if (!p) {
      atomic_fetch_add(&sh->fulls, 1);
      continue;
    }
    atomic_fetch_add(&sh->allocs, 1);
    uint32_t tag = ++next_tag;
    size_t g0 = (size_t)((char *)p - sh->base) / G;
    size_t n = (bytes + G - 1) / G;
    if ((size_t)((char *)p - sh->base) % G != 0 || g0 + n > sh->granules)
      atomic_fetch_add(&sh->overlaps, 1);
    for (size_t g = 0; g < n && g0 + g < sh->granules; g++) {
      uint32_t expect = 0;
      if (!atomic_compare_exchange_strong(&sh->owner[g0 + g], &expect, tag))
        atomic_fetch_add(&sh->overlaps, 1);
    }
    memset(p, (unsigned char)tag, bytes);
    live[k].p = p;
    live[k].bytes = bytes;
    live[k].tag = tag;
  }
  for (int k = 0; k < SLOTS; k++) {
    if (!live[k].p)
      continue;
    size_t g0 = (size_t)((char *)live[k].p - sh->base) / G;
    size_t n = (live[k].bytes + G - 1) / G;
    for (size_t g = 0; g < n; g++)
      atomic_store(&sh->owner[g0 + g], 0);
    if (hmb__arena_free(sh->a, live[k].p) != 0)
      atomic_fetch_add(&sh->corrupt, 1);
  }
  return NULL;
}

static void test_many_threads(void **state) {
  (void)state;
  mt_shared_t sh;
  memset(&sh, 0, sizeof sh);
  sh.seed = ts_seed("arena_many_threads");
  int threads = (int)ts_env_long("HMB_ARENA_THREADS", 16);
  if (threads < 2)
    threads = 2;
  sh.steps = ts_env_long("HMB_ARENA_MT_STEPS", 20000);
  /* Small enough that threads regularly find it full and must coalesce. */
  if (threads > 64)
    threads = 64;
  size_t cap = (size_t)threads << 16;
  sh.base = region_new(cap);
  sh.granules = cap / G;
  sh.owner = calloc(sh.granules, sizeof *sh.owner);
  assert_non_null(sh.owner);
  assert_int_equal(hmb__arena_create(sh.base, cap, G, &sh.a), HMB_OK);
  ts_watchdog_arm("arena many threads", 120);
  pthread_t t[64];
  mt_arg_t args[64];
  for (int i = 0; i < threads; i++) {
    args[i].sh = &sh;
    args[i].id = i;
    assert_int_equal(pthread_create(&t[i], NULL, mt_main, &args[i]), 0);
  }
  for (int i = 0; i < threads; i++)
    pthread_join(t[i], NULL);
  ts_watchdog_disarm();
  fprintf(stderr, "arena threads=%d allocs=%ld full=%ld\n", threads,
          atomic_load(&sh.allocs), atomic_load(&sh.fulls));
  assert_int_equal(atomic_load(&sh.overlaps), 0);
  assert_int_equal(atomic_load(&sh.corrupt), 0);
  assert_true(atomic_load(&sh.allocs) > 0);
  for (size_t g = 0; g < sh.granules; g++)
    assert_int_equal(atomic_load(&sh.owner[g]), 0);
  hmb__arena_stats_t st;
  hmb__arena_stats(sh.a, &st);
  assert_int_equal(st.allocs, (uint64_t)atomic_load(&sh.allocs));
  assert_int_equal(st.frees, st.allocs);
  assert_all_free(sh.a); /* everything coalesced back into one block */
  hmb__arena_destroy(sh.a);
  free(sh.owner);
  free(sh.base);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_create_args),
      cmocka_unit_test(test_basic_alignment_and_rounding),
      cmocka_unit_test(test_other_alignment),
      cmocka_unit_test(test_bad_and_double_free),
      cmocka_unit_test(test_exhaust_and_exact_fit),
      cmocka_unit_test(test_random_model),
      cmocka_unit_test(test_many_threads),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
