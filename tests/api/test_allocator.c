/*
 * test_allocator.c - the allocator interface (hmb/allocator.h): handles
 * and plain pointers through any vtable, the default allocator, and the
 * thread-bound allocator.
 *
 *   - hmb_allocate() / hmb_allocate_aligned(): arguments, alignments up to
 *     HMB_MAX_ALIGN, 0 bytes;
 *   - the pointer API: 0 bytes is a distinct, freeable pointer charging
 *     nothing; alignments 16..HMB_MAX_ALIGN; realloc keeps the bytes and
 *     charges only the difference, refuses a shared buffer (HMB_EBUSY);
 *     free of NULL and of foreign pointers; free from another thread; the
 *     budget comes back at the last free; hmb_ptr_buffer() gives the handle
 *     (retain, slice, handlers work on it);
 *   - an application vtable without allocate_aligned still gives aligned
 *     pointers (a view placed inside its buffer);
 *   - the bound allocator: bind nests and restores, charges the bound
 *     runner, falls back or fails when nothing is bound, and a buffer's
 *     close always goes to its own runner, whatever the closing thread has
 *     bound.
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testsupport.h"

#define KIB ((size_t)1024)
#define MIB (1024 * KIB)

static hmb_memory_stats_t default_mem(void) {
  hmb_memory_stats_t ms;
  assert_int_equal(hmb_default_memory_stats(&ms), HMB_OK);
  return ms;
}

static void fill(void *p, size_t n, unsigned seed) {
  unsigned char *c = p;
  for (size_t i = 0; i < n; i++)
    c[i] = (unsigned char)(seed + i * 7);
}

static int filled(const void *p, size_t n, unsigned seed) {
  const unsigned char *c = p;
  for (size_t i = 0; i < n; i++)
    if (c[i] != (unsigned char)(seed + i * 7))
      return 0;
  return 1;
}

/* ---- hmb_allocate and hmb_allocate_aligned ------------------------------- */

static void test_allocate_arguments(void **state) {
  (void)state;
  const hmb_allocator_t *d = hmb_default_allocator();
  hmb_buffer_t *b = (hmb_buffer_t *)1;
  assert_int_equal(hmb_allocate(NULL, 8, 0, &b), HMB_EINVAL);
  assert_null(b);
  assert_int_equal(hmb_allocate(d, 8, 0, NULL), HMB_EINVAL);
  assert_int_equal(hmb_allocate(d, 8, 0x10, &b), HMB_EINVAL);
  assert_int_equal(hmb_allocate(d, HMB_MAX_ALLOC + 1, 0, &b), HMB_ETOOBIG);
  b = (hmb_buffer_t *)1;
  assert_int_equal(hmb_allocate_aligned(d, 8, 48, 0, &b), HMB_EINVAL);
  assert_null(b);
  assert_int_equal(hmb_allocate_aligned(d, 8, HMB_MAX_ALIGN * 2, 0, &b),
                   HMB_EINVAL);
  assert_int_equal(hmb_allocate_aligned(d, 8, 64, 0x2, &b), HMB_EINVAL);
  assert_int_equal(hmb_allocate_aligned(NULL, 8, 64, 0, &b), HMB_EINVAL);
  assert_int_equal(hmb_allocate_aligned(d, 8, 64, 0, NULL), HMB_EINVAL);
  assert_int_equal(hmb_allocate_aligned(d, SIZE_MAX, 64, 0, &b), HMB_ETOOBIG);
  const hmb_allocator_t no_fn = {NULL, NULL, "none", NULL};
  assert_int_equal(hmb_allocate(&no_fn, 8, 0, &b), HMB_EINVAL);
  assert_int_equal(hmb_allocate_aligned(&no_fn, 8, 64, 0, &b), HMB_EINVAL);
  void *p = (void *)1;
  assert_int_equal(hmb_ptr_alloc(d, 8, 24, 0, &p), HMB_EINVAL);
  assert_null(p);
  assert_int_equal(hmb_ptr_alloc(d, 8, HMB_MAX_ALIGN * 2, 0, &p), HMB_EINVAL);
  assert_int_equal(hmb_ptr_alloc(d, 8, 16, 0, NULL), HMB_EINVAL);
  assert_int_equal(hmb_ptr_alloc(NULL, 8, 16, 0, &p), HMB_EINVAL);
  assert_int_equal(hmb_ptr_alloc(d, HMB_MAX_ALLOC + 1, 16, 0, &p), HMB_ETOOBIG);
}

static void test_allocate_aligned_through_a_runner(void **state) {
  (void)state;
  hmb_pool_t *pool = ts_pool(64 << 20, NULL, NULL);
  hmb_runner_t *r = ts_started_runner(pool, 32 << 20);
  const hmb_allocator_t *a = hmb_runner_allocator(r);
  const size_t sizes[] = {0, 1, 100, 5000, 300 * KIB};
  int64_t live = 0;
  for (size_t al = 16; al <= HMB_MAX_ALIGN; al *= 2) {
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
      hmb_buffer_t *b = NULL;
      assert_int_equal(hmb_allocate_aligned(a, sizes[i], al, 0, &b), HMB_OK);
      assert_int_equal(hmb_buffer_size(b), sizes[i]);
      assert_non_null(hmb_buffer_data(b));
      assert_int_equal((uintptr_t)hmb_buffer_data(b) % al, 0);
      fill(hmb_buffer_data(b), sizes[i], (unsigned)al);
      live += (int64_t)sizes[i];
      assert_int_equal(ts_runner_stats(r).live, live);
      hmb_buffer_close(b);
      live -= (int64_t)sizes[i];
    }
  }
  /* 0: the allocator's default (the pool's 64). */
  hmb_buffer_t *b = NULL;
  assert_int_equal(hmb_allocate_aligned(a, 10, 0, 0, &b), HMB_OK);
  assert_int_equal((uintptr_t)hmb_buffer_data(b) % 64, 0);
  hmb_buffer_close(b);
  hmb_runner_destroy(r);
  ts_pool_done(pool);
}

/* ---- the pointer API ----------------------------------------------------- */

static void test_ptr_zero_bytes(void **state) {
  (void)state;
  hmb_pool_t *pool = ts_pool(1 << 20, NULL, NULL);
  hmb_runner_t *r = ts_started_runner(pool, 4096);
  const hmb_allocator_t *a = hmb_runner_allocator(r);
  enum { N = 16 };
  void *p[N];
  for (int i = 0; i < N; i++) {
    p[i] = NULL;
    assert_int_equal(hmb_ptr_alloc(a, 0, 0, 0, &p[i]), HMB_OK);
    assert_non_null(p[i]);
    assert_int_equal((uintptr_t)p[i] % 16, 0);
    assert_int_equal(hmb_ptr_size(p[i]), 0);
    assert_non_null(hmb_ptr_buffer(p[i]));
    for (int j = 0; j < i; j++)
      assert_ptr_not_equal(p[i], p[j]); /* distinct */
  }
  hmb_runner_stats_t s = ts_runner_stats(r);
  assert_int_equal(s.live, 0); /* they charge nothing */
  assert_int_equal(s.held, 4096);
  assert_int_equal(s.spare, 4096);
  assert_int_equal(s.live_buffers, N);
  assert_int_equal(ts_pool_stats(pool).live_bytes, 0);
  for (int i = 0; i < N; i++)
    assert_int_equal(hmb_ptr_free(p[i]), HMB_OK); /* freeable */
  s = ts_runner_stats(r);
  assert_int_equal(s.live_buffers, 0);
  assert_int_equal(s.held, 4096);
  assert_int_equal(s.borrows, 0);
  /* The same through the default allocator and as handles. */
  void *q = NULL, *q2 = NULL;
  assert_int_equal(hmb_ptr_alloc(hmb_default_allocator(), 0, 64, 0, &q),
                   HMB_OK);
  assert_int_equal(hmb_ptr_alloc(hmb_default_allocator(), 0, 64, 0, &q2),
                   HMB_OK);
  assert_non_null(q);
  assert_ptr_not_equal(q, q2);
  assert_int_equal((uintptr_t)q % 64, 0);
  assert_int_equal(hmb_ptr_free(q), HMB_OK);
  assert_int_equal(hmb_ptr_free(q2), HMB_OK);
  hmb_buffer_t *h = NULL;
  assert_int_equal(hmb_runner_alloc(r, 0, 0, &h), HMB_OK);
  assert_int_equal(hmb_buffer_size(h), 0);
  assert_non_null(hmb_buffer_data(h));
  assert_int_equal(ts_runner_stats(r).live, 0);
  hmb_buffer_close(h);
  hmb_runner_destroy(r);
  ts_pool_done(pool);
}

static void test_ptr_alignments(void **state) {
  (void)state;
  hmb_pool_t *pool = ts_pool(64 << 20, NULL, NULL);
  hmb_runner_t *r = ts_started_runner(pool, 32 << 20);
  const hmb_allocator_t *allocs[2] = {hmb_runner_allocator(r),
                                      hmb_default_allocator()};
  const size_t sizes[] = {1, 24, 1000, 70000, 400 * KIB};
  for (int k = 0; k < 2; k++)
    for (size_t al = 16; al <= HMB_MAX_ALIGN; al *= 2)
      for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        void *p = NULL;
        assert_int_equal(hmb_ptr_alloc(allocs[k], sizes[i], al, 0, &p), HMB_OK);
        assert_int_equal((uintptr_t)p % al, 0);
        assert_int_equal(hmb_ptr_size(p), sizes[i]);
        fill(p, sizes[i], 3);
        assert_true(filled(p, sizes[i], 3));
        assert_int_equal(hmb_ptr_free(p), HMB_OK);
      }
  /* alignment 0 means 16. */
  void *p = NULL;
  assert_int_equal(hmb_ptr_alloc(allocs[0], 33, 0, 0, &p), HMB_OK);
  assert_int_equal((uintptr_t)p % 16, 0);
  assert_int_equal(hmb_ptr_free(p), HMB_OK);
  assert_int_equal(ts_runner_stats(r).live, 0);
  hmb_runner_destroy(r);
  ts_pool_done(pool);
}

static void
test_ptr_realloc_keeps_bytes_and_charges_the_difference(void **state) {
  (void)state;
  hmb_pool_t *pool = ts_pool(64 << 20, NULL, NULL);
  hmb_runner_t *r = ts_started_runner(pool, 1000);
  const hmb_allocator_t *a = hmb_runner_allocator(r);
  void *p = NULL;
  assert_int_equal(hmb_ptr_alloc(a, 1000, 64, 0, &p), HMB_OK);
  fill(p, 1000, 11);
  hmb_runner_stats_t s0 = ts_runner_stats(r);
  assert_int_equal(s0.held, 1000);
  assert_int_equal(s0.live, 1000);
  assert_int_equal(s0.spare, 0);
  /* Grow: borrows exactly the 2000 more. */
  assert_int_equal(hmb_ptr_realloc(&p, 3000), HMB_OK);
  assert_int_equal((uintptr_t)p % 64, 0); /* keeps its alignment */
  assert_int_equal(hmb_ptr_size(p), 3000);
  assert_true(filled(p, 1000, 11));
  hmb_runner_stats_t s1 = ts_runner_stats(r);
  assert_int_equal(s1.live, 3000);
  assert_int_equal(s1.held, 3000);
  assert_int_equal(s1.borrowed, 2000);
  assert_int_equal(s1.live_buffers, 1);
  assert_int_equal(ts_pool_stats(pool).held, 3000);
  fill(p, 3000, 5);
  /* Grow into a mapping (beyond 256 KiB) and back: bytes survive. */
  assert_int_equal(hmb_ptr_realloc(&p, 600 * KIB), HMB_OK);
  assert_true(filled(p, 3000, 5));
  assert_int_equal((uintptr_t)p % 64, 0);
  hmb_runner_stats_t s2 = ts_runner_stats(r);
  assert_int_equal(s2.live, (int64_t)(600 * KIB));
  assert_int_equal(s2.held, (int64_t)(600 * KIB));
  assert_int_equal(s2.borrowed, (uint64_t)(600 * KIB - 1000));
  /* Shrink: live drops by the difference; the budget stays with the
   * running runner as spare. */
  assert_int_equal(hmb_ptr_realloc(&p, 500), HMB_OK);
  assert_true(filled(p, 500, 5));
  hmb_runner_stats_t s3 = ts_runner_stats(r);
  assert_int_equal(s3.live, 500);
  assert_int_equal(s3.held, (int64_t)(600 * KIB));
  assert_int_equal(s3.spare, (int64_t)(600 * KIB - 500));
  assert_int_equal(s3.borrowed, s2.borrowed);
  /* Grow again within spare: no borrow. */
  assert_int_equal(hmb_ptr_realloc(&p, 2000), HMB_OK);
  assert_true(filled(p, 500, 5));
  assert_int_equal(ts_runner_stats(r).borrows, s3.borrows);
  assert_int_equal(ts_runner_stats(r).live, 2000);
  /* To 0 and back. */
  assert_int_equal(hmb_ptr_realloc(&p, 0), HMB_OK);
  assert_non_null(p);
  assert_int_equal(hmb_ptr_size(p), 0);
  assert_int_equal(ts_runner_stats(r).live, 0);
  assert_int_equal(hmb_ptr_realloc(&p, 100), HMB_OK);
  assert_int_equal(ts_runner_stats(r).live, 100);
  /* After finish: a shrink gives the difference back to the pool; a
   * growth is refused and changes nothing. */
  fill(p, 100, 9);
  hmb_runner_finish(r, 0, NULL);
  assert_int_equal(ts_pool_stats(pool).held, 100);
  void *before = p;
  assert_int_equal(hmb_ptr_realloc(&p, 200), HMB_ESTATE);
  assert_ptr_equal(p, before);
  assert_true(filled(p, 100, 9));
  assert_int_equal(hmb_ptr_realloc(&p, 40), HMB_OK);
  assert_true(filled(p, 40, 9));
  assert_int_equal(ts_pool_stats(pool).held, 40);
  assert_int_equal(hmb_ptr_free(p), HMB_OK);
  assert_int_equal(ts_pool_stats(pool).held, 0);
  hmb_runner_destroy(r);
  ts_pool_done(pool);
}

/* A realloc far down moves the data to a block of its own size: keeping the
 * large block would hold memory the physical bound of stats.h does not
 * count (it counts the class of the size asked for). */
static void test_ptr_realloc_shrink_gives_the_block_back(void **state) {
  (void)state;
  hmb_pool_config_t cfg;
  hmb_pool_config_init(&cfg);
  cfg.limit = 8 * MIB;
  cfg.flags = HMB_POOL_NO_CACHE;
  hmb_pool_t *pool = ts_pool_cfg(&cfg);
  hmb_runner_t *r = ts_started_runner(pool, 4 * MIB);
  void *p = NULL;
  assert_int_equal(hmb_ptr_alloc(hmb_runner_allocator(r), 2 * MIB, 0, 0, &p),
                   HMB_OK);
  fill(p, 2 * MIB, 3);
  assert_true(ts_memory_stats(pool).pageable_physical >= (int64_t)(2 * MIB));
  assert_int_equal(hmb_ptr_realloc(&p, 100), HMB_OK);
  assert_true(filled(p, 100, 3));
  hmb_memory_stats_t m = ts_memory_stats(pool);
  assert_int_equal(m.pageable_live, 100);
  assert_true(m.pageable_physical < (int64_t)(4 * KIB));
  /* Same for a mid-size block shrunk to a small one. */
  assert_int_equal(hmb_ptr_realloc(&p, 60 * KIB), HMB_OK);
  assert_true(filled(p, 100, 3));
  assert_int_equal(hmb_ptr_realloc(&p, 50), HMB_OK);
  assert_true(filled(p, 50, 3));
  m = ts_memory_stats(pool);
  assert_int_equal(m.pageable_live, 50);
  assert_true(m.pageable_physical < (int64_t)(1 * KIB));
  assert_int_equal(hmb_ptr_free(p), HMB_OK);
  hmb_runner_destroy(r);
  ts_pool_done(pool);
}

/* Pointers through a runner's allocator and through the bound allocator:
 * every refusal leaves *out NULL and the runner and pool as they were, and
 * every success is found again by hmb_ptr_buffer(). */
static void ptr_runner_refusals(const hmb_allocator_t *a, hmb_runner_t *r,
                                hmb_pool_t *pool) {
  hmb_runner_stats_t s0 = ts_runner_stats(r);
  hmb_pool_stats_t p0 = ts_pool_stats(pool);
  static const struct {
    size_t bytes, align;
    unsigned flags;
    int rc;
  } bad[] = {
      {8, 24, 0, HMB_EINVAL},                 /* not a power of two */
      {8, HMB_MAX_ALIGN * 2, 0, HMB_EINVAL},  /* too large */
      {8, 0, 0x100, HMB_EINVAL},              /* an unknown flag */
      {HMB_MAX_ALLOC + 1, 0, 0, HMB_ETOOBIG}, /* beyond any request */
      {SIZE_MAX, 16, 0, HMB_ETOOBIG},         /* would wrap */
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    void *p = (void *)1;
    assert_int_equal(
        hmb_ptr_alloc(a, bad[i].bytes, bad[i].align, bad[i].flags, &p),
        bad[i].rc);
    assert_null(p);
  }
  assert_int_equal(hmb_ptr_alloc(a, 8, 16, 0, NULL), HMB_EINVAL);
  hmb_runner_stats_t s1 = ts_runner_stats(r);
  hmb_pool_stats_t p1 = ts_pool_stats(pool);
  assert_int_equal(s1.held, s0.held);
  assert_int_equal(s1.live, s0.live);
  assert_int_equal(s1.live_buffers, s0.live_buffers);
  assert_int_equal(s1.allocations, s0.allocations);
  assert_int_equal(p1.held, p0.held);
  assert_int_equal(p1.live_bytes, p0.live_bytes);
  ts_check(pool, 0);
  /* Successes, small (the thread cache's) and large (a mapping), at the
   * default and at larger alignments. */
  static const size_t sizes[] = {0, 1, 64, 4000, 300 * 1024};
  static const size_t aligns[] = {0, 16, 64, 4096};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    for (size_t k = 0; k < sizeof aligns / sizeof aligns[0]; k++) {
      void *p = NULL;
      assert_int_equal(hmb_ptr_alloc(a, sizes[i], aligns[k], 0, &p), HMB_OK);
      size_t al = aligns[k] ? aligns[k] : 16;
      assert_int_equal((uintptr_t)p % al, 0);
      hmb_buffer_t *h = hmb_ptr_buffer(p);
      assert_non_null(h);
      assert_ptr_equal(hmb_buffer_data(h), p);
      assert_int_equal(hmb_ptr_size(p), sizes[i]);
      memset(p, 0x5a, sizes[i]);
      assert_int_equal(ts_runner_stats(r).live, s0.live + (int64_t)sizes[i]);
      assert_int_equal(ts_runner_stats(r).allocations,
                       s1.allocations + 1 + i * 4 + k);
      assert_int_equal(hmb_ptr_free(p), HMB_OK);
      assert_int_equal(ts_runner_stats(r).live, s0.live);
      assert_int_equal(ts_runner_stats(r).live_buffers, s0.live_buffers);
    }
  }
  ts_check(pool, 0);
}

static void
test_ptr_on_runners_refuses_bad_input_and_charges_right(void **state) {
  (void)state;
  hmb_pool_t *pool = ts_pool(64 * MIB, NULL, NULL);
  hmb_runner_t *r = ts_started_runner(pool, MIB);
  ptr_runner_refusals(hmb_runner_allocator(r), r, pool);
  hmb_runner_t *r2 = ts_started_runner(pool, MIB);
  hmb_runner_bind(r2);
  ptr_runner_refusals(hmb_bound_allocator(HMB_UNBOUND_FAIL), r2, pool);
  ptr_runner_refusals(hmb_bound_allocator(HMB_UNBOUND_DEFAULT), r2, pool);
  assert_int_equal(ts_runner_stats(r).allocations, 20);
  /* A block of the bound runner is freed to it from any binding. */
  void *p = NULL;
  assert_int_equal(
      hmb_ptr_alloc(hmb_bound_allocator(HMB_UNBOUND_FAIL), 100, 0, 0, &p),
      HMB_OK);
  assert_int_equal(ts_runner_stats(r2).live, 100);
  hmb_runner_bind(r);
  assert_int_equal(hmb_ptr_free(p), HMB_OK);
  assert_int_equal(ts_runner_stats(r2).live, 0);
  assert_int_equal(ts_runner_stats(r).live, 0);
  hmb_runner_bind(NULL);
  /* A runner that is not running: its error, nothing charged. */
  assert_int_equal(hmb_runner_finish(r, 0, NULL), HMB_OK);
  p = (void *)1;
  assert_int_equal(hmb_ptr_alloc(hmb_runner_allocator(r), 100, 0, 0, &p),
                   HMB_ESTATE);
  assert_null(p);
  /* The size is checked before the state, as hmb_allocate_aligned() does. */
  p = (void *)1;
  assert_int_equal(
      hmb_ptr_alloc(hmb_runner_allocator(r), HMB_MAX_ALLOC + 1, 0, 0, &p),
      HMB_ETOOBIG);
  assert_null(p);
  hmb_runner_bind(r);
  p = (void *)1;
  assert_int_equal(
      hmb_ptr_alloc(hmb_bound_allocator(HMB_UNBOUND_DEFAULT), 100, 0, 0, &p),
      HMB_ESTATE);
  assert_null(p);
  hmb_runner_bind(NULL);
  assert_int_equal(ts_runner_stats(r).live_buffers, 0);
  hmb_runner_destroy(r);
  hmb_runner_destroy(r2);
  ts_pool_done(pool);
}

static void test_ptr_realloc_refusals_change_nothing(void **state) {
  (void)state;
  hmb_pool_config_t cfg;
  hmb_pool_config_init(&cfg);
  cfg.limit = 4096;
  cfg.flags = HMB_POOL_CAP_OVERCOMMIT; /* cap 0: never beyond the limit */
  hmb_pool_t *pool = ts_pool_cfg(&cfg);
  hmb_runner_t *r = ts_started_runner(pool, 4096);
  void *p = NULL;
  assert_int_equal(hmb_ptr_alloc(hmb_runner_allocator(r), 1000, 0, 0, &p),
                   HMB_OK);
  fill(p, 1000, 1);
  hmb_buffer_t *h = hmb_ptr_buffer(p);
  assert_non_null(h);
  /* Another reference: EBUSY, nothing moves. */
  assert_int_equal(hmb_buffer_retain(h), HMB_OK);
  void *q = p;
  assert_int_equal(hmb_ptr_realloc(&q, 2000), HMB_EBUSY);
  assert_ptr_equal(q, p);
  assert_int_equal(hmb_ptr_size(p), 1000);
  assert_int_equal(hmb_buffer_close(h), HMB_OK);
  /* A slice: EBUSY too (it would see the old memory). */
  hmb_buffer_t *s = NULL;
  assert_int_equal(hmb_buffer_slice(h, 10, 10, &s), HMB_OK);
  assert_int_equal(hmb_ptr_realloc(&q, 10), HMB_EBUSY);
  assert_ptr_equal(q, p);
  assert_int_equal(hmb_buffer_close(s), HMB_OK);
  /* Beyond what the cap allows: the allocation's error, nothing changes. */
  hmb_runner_stats_t before = ts_runner_stats(r);
  assert_int_equal(hmb_ptr_realloc(&q, 8192), HMB_ELIMIT);
  assert_ptr_equal(q, p);
  assert_true(filled(p, 1000, 1));
  hmb_runner_stats_t after = ts_runner_stats(r);
  assert_int_equal(after.held, before.held);
  assert_int_equal(after.live, before.live);
  assert_int_equal(after.spare, before.spare);
  assert_int_equal(hmb_ptr_size(p), 1000);
  /* Not a block of hmb_ptr_alloc(), a NULL out, a size too large. */
  static _Alignas(64) unsigned char foreign[256];
  void *f = foreign + 64;
  assert_int_equal(hmb_ptr_realloc(&f, 10), HMB_EINVAL);
  assert_ptr_equal(f, foreign + 64);
  assert_int_equal(hmb_ptr_realloc(NULL, 10), HMB_EINVAL);
  assert_int_equal(hmb_ptr_realloc(&q, HMB_MAX_ALLOC + 1), HMB_ETOOBIG);
  assert_int_equal(hmb_ptr_free(p), HMB_OK);
  /* NULL: like hmb_ptr_alloc() on the default allocator. */
  hmb_memory_stats_t d0 = default_mem();
  void *n = NULL;
  assert_int_equal(hmb_ptr_realloc(&n, 123), HMB_OK);
  assert_non_null(n);
  assert_int_equal((uintptr_t)n % 16, 0);
  assert_int_equal(hmb_ptr_size(n), 123);
  assert_int_equal(default_mem().pageable_live - d0.pageable_live, 123);
  assert_int_equal(hmb_ptr_free(n), HMB_OK);
  assert_int_equal(default_mem().pageable_live, d0.pageable_live);
  hmb_runner_destroy(r);
  ts_pool_done(pool);
}

static void test_ptr_free_null_and_foreign(void **state) {
  (void)state;
  ts_log_t log;
  memset(&log, 0, sizeof log);
  hmb_set_log(ts_log_capture, &log, HMB_LOG_ERROR);
  assert_int_equal(hmb_ptr_free(NULL), HMB_OK);
  assert_int_equal(log.count, 0);
  /* Pointers that are not the start of a block: the middle of ordinary
   * memory, the middle of a block, a misaligned address. Nothing is
   * freed, and each is logged. */
  static _Alignas(64) unsigned char plain[512];
  assert_null(hmb_ptr_buffer(plain + 128));
  assert_int_equal(hmb_ptr_size(plain + 128), 0);
  assert_int_equal(hmb_ptr_free(plain + 128), HMB_EINVAL);
  void *p = NULL;
  assert_int_equal(hmb_ptr_alloc(hmb_default_allocator(), 512, 16, 0, &p),
                   HMB_OK);
  memset(p, 0, 512);
  assert_null(hmb_ptr_buffer((char *)p + 64));
  assert_int_equal(hmb_ptr_free((char *)p + 64), HMB_EINVAL);
  assert_int_equal(hmb_ptr_free((char *)p + 3), HMB_EINVAL);
  /* The data of a handle-API buffer is not a block of hmb_ptr_alloc(): a
   * free through it would close a reference its holder owns. */
  hmb_buffer_t *hb = NULL;
  assert_int_equal(hmb_allocate(hmb_default_allocator(), 512, 0, &hb), HMB_OK);
  void *hd = hmb_buffer_data(hb);
  assert_null(hmb_ptr_buffer(hd));
  assert_int_equal(hmb_ptr_size(hd), 0);
  assert_int_equal(hmb_ptr_free(hd), HMB_EINVAL);
  assert_int_equal(hmb_ptr_realloc(&hd, 1024), HMB_EINVAL);
  assert_ptr_equal(hd, hmb_buffer_data(hb));
  assert_int_equal(hmb_buffer_close(hb), HMB_OK); /* still open: closes */
  assert_int_equal(log.count, 4);
  assert_true(ts_log_contains(&log, "not a block of hmb_ptr_alloc()"));
  assert_int_equal(hmb_ptr_size(p), 512); /* still there */
  assert_int_equal(hmb_ptr_free(p), HMB_OK);
  assert_null(hmb_ptr_buffer(NULL));
  hmb_set_log(NULL, NULL, 0);
}

typedef struct freer {
  void *p;
  int rc;
} freer_t;

static void *free_elsewhere(void *arg) {
  freer_t *f = arg;
  f->rc = hmb_ptr_free(f->p);
  return NULL;
}

static void test_ptr_free_from_another_thread_returns_the_budget(void **state) {
  (void)state;
  hmb_pool_t *pool = ts_pool(1 << 20, NULL, NULL);
  hmb_runner_t *r = ts_started_runner(pool, 10000);
  const hmb_allocator_t *a = hmb_runner_allocator(r);
  void *p1 = NULL, *p2 = NULL;
  assert_int_equal(hmb_ptr_alloc(a, 3000, 0, 0, &p1), HMB_OK);
  assert_int_equal(hmb_ptr_alloc(a, 400 * KIB, 0, 0, &p2), HMB_OK);
  hmb_buffer_t *h1 = hmb_ptr_buffer(p1);
  assert_int_equal(hmb_buffer_retain(h1), HMB_OK); /* two references */
  hmb_runner_finish(r, 0, NULL);
  assert_int_equal(ts_pool_stats(pool).held, (int64_t)(3000 + 400 * KIB));
  freer_t f = {p1, -99};
  pthread_t th;
  pthread_create(&th, NULL, free_elsewhere, &f);
  pthread_join(th, NULL);
  assert_int_equal(f.rc, HMB_OK);
  /* Not the last reference: the budget is still held. */
  assert_int_equal(ts_pool_stats(pool).held, (int64_t)(3000 + 400 * KIB));
  f.p = p2;
  pthread_create(&th, NULL, free_elsewhere, &f);
  pthread_join(th, NULL);
  assert_int_equal(f.rc, HMB_OK);
  assert_int_equal(ts_pool_stats(pool).held, 3000);
  assert_int_equal(hmb_ptr_free(p1), HMB_OK); /* the last one */
  assert_int_equal(ts_pool_stats(pool).held, 0);
  assert_int_equal(ts_pool_stats(pool).live_buffers, 0);
  hmb_runner_destroy(r);
  ts_pool_done(pool);
}

typedef struct seen {
  long refs[8];
  int n;
} seen_t;

static void note(void *user, hmb_buffer_t *buf, long refs) {
  (void)buf;
  seen_t *s = user;
  if (s->n < 8)
    s->refs[s->n++] = refs;
}

static void test_ptr_buffer_is_a_handle(void **state) {
  (void)state;
  hmb_pool_t *pool = ts_pool(1 << 20, NULL, NULL);
  hmb_runner_t *r = ts_started_runner(pool, 10000);
  void *p = NULL;
  assert_int_equal(hmb_ptr_alloc(hmb_runner_allocator(r), 256, 32, 0, &p),
                   HMB_OK);
  fill(p, 256, 2);
  hmb_buffer_t *h = hmb_ptr_buffer(p);
  assert_non_null(h);
  assert_ptr_equal(hmb_buffer_data(h), p);
  assert_int_equal(hmb_buffer_size(h), 256);
  assert_int_equal(hmb_buffer_refcount(h), 1);
  assert_null(hmb_buffer_parent(h));
  seen_t seen = {{0}, 0};
  hmb_buffer_handler_t hd = {note, &seen};
  assert_int_equal(hmb_buffer_set_handler(h, &hd, NULL), HMB_OK);
  assert_int_equal(hmb_buffer_retain(h), HMB_OK);
  hmb_buffer_t *s = NULL;
  assert_int_equal(hmb_buffer_slice(h, 100, 50, &s), HMB_OK);
  assert_ptr_equal(hmb_buffer_data(s), (char *)p + 100);
  assert_int_equal(hmb_ptr_free(p), HMB_OK); /* one of three references */
  assert_int_equal(seen.n, 1);
  assert_int_equal(seen.refs[0], 2);
  assert_int_equal(ts_runner_stats(r).live, 256);
  assert_true(filled(hmb_buffer_data(s), 50, 2 + 100 * 7));
  assert_int_equal(hmb_buffer_close(h), HMB_OK);
  assert_int_equal(ts_runner_stats(r).live, 256); /* the slice holds it */
  assert_int_equal(hmb_buffer_close(s), HMB_OK);
  assert_int_equal(seen.n, 3);
  assert_int_equal(seen.refs[2], 0);
  assert_int_equal(ts_runner_stats(r).live, 0);
  hmb_runner_destroy(r);
  ts_pool_done(pool);
}

/* ---- an application vtable without allocate_aligned ---------------------- */

typedef struct counting {
  hmb_allocator_t vt;
  const hmb_allocator_t *inner;
  atomic_int calls;
} counting_t;

static int counting_allocate(void *ctx, size_t bytes, unsigned flags,
                             hmb_buffer_t **out) {
  counting_t *c = ctx;
  atomic_fetch_add(&c->calls, 1);
  return hmb_allocate(c->inner, bytes, flags, out);
}

static void counting_init(counting_t *c, const hmb_allocator_t *inner) {
  memset(c, 0, sizeof *c);
  c->vt.ctx = c;
  c->vt.allocate = counting_allocate;
  c->vt.name = "counting";
  c->vt.allocate_aligned = NULL;
  c->inner = inner;
}

static void test_ptr_through_a_vtable_without_allocate_aligned(void **state) {
  (void)state;
  hmb_pool_t *pool = ts_pool(64 << 20, NULL, NULL);
  hmb_runner_t *r = ts_started_runner(pool, 32 << 20);
  counting_t c;
  counting_init(&c, hmb_runner_allocator(r));
  const size_t sizes[] = {0, 1, 1000, 300 * KIB};
  int calls = 0;
  for (size_t al = 16; al <= HMB_MAX_ALIGN; al *= 2)
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
      void *p = NULL;
      assert_int_equal(hmb_ptr_alloc(&c.vt, sizes[i], al, 0, &p), HMB_OK);
      assert_int_equal(atomic_load(&c.calls), ++calls);
      assert_int_equal((uintptr_t)p % al, 0);
      assert_int_equal(hmb_ptr_size(p), sizes[i]);
      fill(p, sizes[i], 4);
      hmb_buffer_t *h = hmb_ptr_buffer(p);
      assert_non_null(h);
      assert_ptr_equal(hmb_buffer_data(h), p);
      /* The runner is charged what the vtable asked for (more than the
       * request: room to align), and all of it comes back. */
      assert_true(ts_runner_stats(r).live >= (int64_t)sizes[i]);
      assert_int_equal(hmb_ptr_free(p), HMB_OK);
      assert_int_equal(ts_runner_stats(r).live, 0);
    }
  /* hmb_allocate_aligned() through it, and realloc of such a pointer. */
  hmb_buffer_t *b = NULL;
  assert_int_equal(hmb_allocate_aligned(&c.vt, 100, 256, 0, &b), HMB_OK);
  assert_int_equal((uintptr_t)hmb_buffer_data(b) % 256, 0);
  assert_int_equal(hmb_buffer_size(b), 100);
  hmb_buffer_close(b);
  void *p = NULL;
  assert_int_equal(hmb_ptr_alloc(&c.vt, 100, 512, 0, &p), HMB_OK);
  fill(p, 100, 8);
  assert_int_equal(hmb_ptr_realloc(&p, 5000), HMB_OK);
  assert_int_equal((uintptr_t)p % 512, 0);
  assert_int_equal(hmb_ptr_size(p), 5000);
  assert_true(filled(p, 100, 8));
  assert_int_equal(hmb_ptr_realloc(&p, 10), HMB_OK);
  assert_true(filled(p, 10, 8));
  assert_int_equal(hmb_ptr_free(p), HMB_OK);
  assert_int_equal(ts_runner_stats(r).live, 0);
  assert_int_equal(ts_runner_stats(r).live_buffers, 0);
  hmb_runner_destroy(r);
  ts_pool_done(pool);
}

/* hmb_allocate_aligned(alignment 0) means the allocator's default: through
 * a vtable without allocate_aligned that is what its allocate() gives (a
 * runner's: the pool's 64), not the 16 of the pointer API. */
static void
test_allocate_aligned_zero_is_the_default_of_a_plain_vtable(void **state) {
  (void)state;
  hmb_pool_t *pool = ts_pool(1 << 20, NULL, NULL);
  hmb_runner_t *r = ts_started_runner(pool, 1 << 20);
  counting_t c;
  counting_init(&c, hmb_runner_allocator(r));
  int misaligned = 0;
  for (int i = 0; i < 16; i++) {
    hmb_buffer_t *b = NULL, *d = NULL;
    assert_int_equal(hmb_allocate(&c.vt, (size_t)(8 + i), 0, &d), HMB_OK);
    assert_int_equal((uintptr_t)hmb_buffer_data(d) % 64, 0);
    assert_int_equal(hmb_allocate_aligned(&c.vt, (size_t)(8 + i), 0, 0, &b),
                     HMB_OK);
    misaligned += (uintptr_t)hmb_buffer_data(b) % 64 != 0;
    hmb_buffer_close(b);
    hmb_buffer_close(d);
  }
  hmb_runner_destroy(r);
  ts_pool_done(pool);
  assert_int_equal(misaligned, 0);
}

/* ---- the default allocator ----------------------------------------------- */

static void test_default_allocator_charges_no_budget(void **state) {
  (void)state;
  const hmb_allocator_t *d = hmb_default_allocator();
  assert_non_null(d);
  assert_ptr_equal(hmb_default_allocator(), d);
  assert_string_equal(d->name, "default");
  hmb_pool_t *pool = ts_pool(1000, NULL, NULL);
  hmb_memory_stats_t before = default_mem();
  hmb_buffer_t *b = NULL;
  assert_int_equal(hmb_allocate(d, 5000, 0, &b), HMB_OK); /* > any limit */
  assert_int_equal((uintptr_t)hmb_buffer_data(b) % 64, 0);
  fill(hmb_buffer_data(b), 5000, 6);
  hmb_memory_stats_t during = default_mem();
  assert_int_equal(during.pageable_live - before.pageable_live, 5000);
  assert_true(during.pageable_physical - before.pageable_physical >= 5000);
  assert_int_equal(ts_pool_stats(pool).held, 0);
  hmb_buffer_close(b);
  assert_int_equal(default_mem().pageable_live, before.pageable_live);
  assert_int_equal(default_mem().pageable_physical, before.pageable_physical);
  assert_int_equal((hmb_default_memory_stats)(&during), HMB_OK);
  ts_pool_done(pool);
}

/* ---- the bound allocator ------------------------------------------------- */

static void test_bound_allocator_binding_nests(void **state) {
  (void)state;
  assert_null(hmb_bound_allocator(2));
  assert_null(hmb_bound_allocator(-1));
  const hmb_allocator_t *bd = hmb_bound_allocator(HMB_UNBOUND_DEFAULT);
  const hmb_allocator_t *bf = hmb_bound_allocator(HMB_UNBOUND_FAIL);
  assert_non_null(bd);
  assert_non_null(bf);
  assert_ptr_not_equal(bd, bf);
  hmb_pool_t *pool = ts_pool(1 << 20, NULL, NULL);
  hmb_runner_t *r1 = ts_started_runner(pool, 1000);
  hmb_runner_t *r2 = ts_started_runner(pool, 1000);
  assert_null(hmb_runner_bound());
  assert_null(hmb_runner_bind(r1));
  assert_ptr_equal(hmb_runner_bound(), r1);
  hmb_runner_t *prev = hmb_runner_bind(r2); /* nested */
  assert_ptr_equal(prev, r1);
  assert_ptr_equal(hmb_runner_bound(), r2);
  hmb_buffer_t *b = NULL;
  assert_int_equal(hmb_allocate(bf, 100, 0, &b), HMB_OK);
  assert_int_equal(ts_runner_stats(r2).live, 100);
  assert_int_equal(ts_runner_stats(r1).live, 0);
  assert_ptr_equal(hmb_runner_bind(prev), r2); /* restored */
  assert_ptr_equal(hmb_runner_bound(), r1);
  hmb_buffer_t *c = NULL;
  assert_int_equal(hmb_allocate_aligned(bf, 50, 1024, 0, &c), HMB_OK);
  assert_int_equal((uintptr_t)hmb_buffer_data(c) % 1024, 0);
  void *p = NULL;
  assert_int_equal(hmb_ptr_alloc(bd, 30, 0, 0, &p), HMB_OK);
  assert_int_equal(ts_runner_stats(r1).live, 80);
  assert_ptr_equal(hmb_runner_bind(NULL), r1); /* unbinds */
  assert_null(hmb_runner_bound());
  /* Frees go to each buffer's own runner, bound or not. */
  hmb_runner_bind(r2);
  assert_int_equal(hmb_ptr_free(p), HMB_OK);
  assert_int_equal(hmb_buffer_close(c), HMB_OK);
  assert_int_equal(ts_runner_stats(r1).live, 0);
  assert_int_equal(ts_runner_stats(r2).live, 100);
  hmb_runner_bind(NULL);
  assert_int_equal(hmb_buffer_close(b), HMB_OK);
  assert_int_equal(ts_runner_stats(r2).live, 0);
  hmb_runner_destroy(r1);
  hmb_runner_destroy(r2);
  ts_pool_done(pool);
}

static void test_bound_allocator_unbound_modes(void **state) {
  (void)state;
  assert_null(hmb_runner_bound());
  hmb_memory_stats_t before = default_mem();
  hmb_buffer_t *b = (hmb_buffer_t *)1;
  /* Fail: HMB_ESTATE, nothing allocated. */
  assert_int_equal(
      hmb_allocate(hmb_bound_allocator(HMB_UNBOUND_FAIL), 100, 0, &b),
      HMB_ESTATE);
  assert_null(b);
  void *p = (void *)1;
  assert_int_equal(
      hmb_ptr_alloc(hmb_bound_allocator(HMB_UNBOUND_FAIL), 100, 0, 0, &p),
      HMB_ESTATE);
  assert_null(p);
  assert_int_equal(default_mem().pageable_live, before.pageable_live);
  /* Default: served by the default allocator, no budget. */
  assert_int_equal(
      hmb_allocate(hmb_bound_allocator(HMB_UNBOUND_DEFAULT), 100, 0, &b),
      HMB_OK);
  assert_int_equal(default_mem().pageable_live - before.pageable_live, 100);
  assert_int_equal(
      hmb_ptr_alloc(hmb_bound_allocator(HMB_UNBOUND_DEFAULT), 50, 256, 0, &p),
      HMB_OK);
  assert_int_equal((uintptr_t)p % 256, 0);
  assert_int_equal(default_mem().pageable_live - before.pageable_live, 150);
  hmb_buffer_close(b);
  assert_int_equal(hmb_ptr_free(p), HMB_OK);
  assert_int_equal(default_mem().pageable_live, before.pageable_live);
  /* A bound runner that is not running: its error. */
  hmb_pool_t *pool = ts_pool(1 << 20, NULL, NULL);
  hmb_runner_t *r = ts_runner(pool, 100, "created");
  hmb_runner_bind(r);
  assert_int_equal(
      hmb_allocate(hmb_bound_allocator(HMB_UNBOUND_DEFAULT), 10, 0, &b),
      HMB_ESTATE);
  hmb_runner_cancel(r);
  assert_int_equal(
      hmb_allocate(hmb_bound_allocator(HMB_UNBOUND_DEFAULT), 10, 0, &b),
      HMB_ECANCELED);
  hmb_runner_bind(NULL);
  hmb_runner_destroy(r);
  ts_pool_done(pool);
}

typedef struct bound_job {
  hmb_runner_t *bind; /* bound on the thread before the work */
  hmb_buffer_t *close_me;
  hmb_buffer_t *made;
  hmb_runner_t *seen; /* what the thread saw bound at its start */
  int rc;
} bound_job_t;

static void *bound_thread(void *arg) {
  bound_job_t *j = arg;
  j->seen = hmb_runner_bound(); /* bindings are per thread */
  hmb_runner_bind(j->bind);
  if (j->close_me)
    hmb_buffer_close(j->close_me);
  j->rc = hmb_allocate(hmb_bound_allocator(HMB_UNBOUND_FAIL), 77, 0, &j->made);
  hmb_runner_bind(NULL);
  return NULL;
}

static void test_bound_allocator_is_per_thread(void **state) {
  (void)state;
  hmb_pool_t *pool = ts_pool(1 << 20, NULL, NULL);
  hmb_runner_t *r1 = ts_started_runner(pool, 1000);
  hmb_runner_t *r2 = ts_started_runner(pool, 1000);
  hmb_runner_bind(r1);
  hmb_buffer_t *mine = NULL;
  assert_int_equal(
      hmb_allocate(hmb_bound_allocator(HMB_UNBOUND_FAIL), 300, 0, &mine),
      HMB_OK);
  /* Another thread sees no binding; bound to r2 it closes r1's buffer
   * (back to r1) and allocates from r2. */
  bound_job_t j = {r2, mine, NULL, (hmb_runner_t *)1, -99};
  pthread_t th;
  pthread_create(&th, NULL, bound_thread, &j);
  pthread_join(th, NULL);
  assert_null(j.seen);
  assert_int_equal(j.rc, HMB_OK);
  assert_int_equal(ts_runner_stats(r1).live, 0);
  assert_int_equal(ts_runner_stats(r1).spare, 1000);
  assert_int_equal(ts_runner_stats(r2).live, 77);
  assert_ptr_equal(hmb_runner_bound(), r1); /* this thread's is untouched */
  /* Unbound on the other thread: FAIL mode refuses. */
  bound_job_t k = {NULL, j.made, NULL, NULL, -99};
  pthread_create(&th, NULL, bound_thread, &k);
  pthread_join(th, NULL);
  assert_int_equal(k.rc, HMB_ESTATE);
  assert_null(k.made);
  assert_int_equal(ts_runner_stats(r2).live, 0);
  hmb_runner_bind(NULL);
  hmb_runner_destroy(r1);
  hmb_runner_destroy(r2);
  ts_pool_done(pool);
}

/* ---- what realloc asks the backend for ----------------------------------- */

/* A backend whose blocks put the data on a 64 KiB boundary, so that the
 * address of every pointer is far more aligned than was asked for. */
typedef struct aligned_backend {
  hmb_backend_t vt;
  pthread_mutex_t mu;
  struct {
    void *raw, *base;
  } blocks[64];
  int n;
  size_t last_size, last_align;
} aligned_backend_t;

static int ab_alloc(void *ctx, size_t size, size_t align, int pp, void **ptr,
                    int *pinned) {
  (void)pp;
  aligned_backend_t *ab = ctx;
  void *base = NULL;
  if (posix_memalign(&base, HMB_MAX_ALIGN, size + HMB_MAX_ALIGN) != 0)
    return HMB_ENOMEM;
  /* The library puts the data `align` (its prefix, >= 16) after raw. */
  char *raw = (char *)base + HMB_MAX_ALIGN - align;
  pthread_mutex_lock(&ab->mu);
  ab->blocks[ab->n].raw = raw;
  ab->blocks[ab->n].base = base;
  ab->n++;
  ab->last_size = size;
  ab->last_align = align;
  pthread_mutex_unlock(&ab->mu);
  *ptr = raw;
  *pinned = 0;
  return 0;
}

static void ab_free(void *ctx, void *ptr, size_t size, int pinned) {
  (void)size;
  (void)pinned;
  aligned_backend_t *ab = ctx;
  pthread_mutex_lock(&ab->mu);
  for (int i = 0; i < ab->n; i++)
    if (ab->blocks[i].raw == ptr) {
      free(ab->blocks[i].base);
      ab->blocks[i] = ab->blocks[--ab->n];
      break;
    }
  pthread_mutex_unlock(&ab->mu);
}

/*
 * A reallocated block keeps the alignment it was asked with, and its
 * overhead stays max(16, alignment) (allocator.h): realloc must not ask for
 * the alignment the old address happened to have. Here every address is
 * 64 KiB-aligned, so a realloc that derives the alignment from the address
 * asks the backend for 64 KiB more than the request.
 */
static void test_ptr_realloc_asks_for_the_alignment_of_the_block(void **state) {
  (void)state;
  aligned_backend_t ab;
  memset(&ab, 0, sizeof ab);
  pthread_mutex_init(&ab.mu, NULL);
  ab.vt.ctx = &ab;
  ab.vt.alloc = ab_alloc;
  ab.vt.free = ab_free;
  hmb_pool_t *pool = ts_pool(1 << 20, &ab.vt, NULL);
  hmb_runner_t *r = ts_started_runner(pool, 1 << 20);
  void *p = NULL;
  assert_int_equal(hmb_ptr_alloc(hmb_runner_allocator(r), 100, 16, 0, &p),
                   HMB_OK);
  assert_int_equal(ab.last_size, 100 + 16);
  assert_int_equal((uintptr_t)p % HMB_MAX_ALIGN, 0); /* by the backend */
  fill(p, 100, 3);
  assert_int_equal(hmb_ptr_realloc(&p, 5000), HMB_OK);
  assert_true(filled(p, 100, 3));
  size_t asked = ab.last_size, asked_align = ab.last_align;
  fprintf(stderr,
          "realloc of a 16-aligned block to 5000 bytes asked the "
          "backend for %zu bytes aligned to %zu\n",
          asked, asked_align);
  assert_int_equal(hmb_ptr_free(p), HMB_OK);
  hmb_runner_destroy(r);
  ts_pool_done(pool);
  assert_int_equal(ab.n, 0);
  pthread_mutex_destroy(&ab.mu);
  assert_int_equal(asked, 5000 + 16);
  assert_int_equal(asked_align, 16);
}

/*
 * A block closed on its thread is kept with its handle and reused by the
 * next allocation of its size class there. Each allocation still gets the
 * alignment it asks for, whatever the block's last one was, and a realloc
 * that moves the block keeps the alignment of the allocation (not of the
 * block's earlier use). The counters are exact after each round.
 */
static void test_reused_blocks_keep_each_allocation_alignment(void **state) {
  (void)state;
  hmb_pool_t *pool = ts_pool(64 << 20, NULL, NULL);
  hmb_runner_t *r = ts_started_runner(pool, 32 << 20);
  const hmb_allocator_t *a = hmb_runner_allocator(r);
  const size_t sizes[] = {1, 24, 48, 100, 200, 1000, 3000, 9000};
  const size_t aligns[] = {16, 64, 16, 256, 32, 16, 4096, 64, 0};
  for (int round = 0; round < 3; round++) {
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
      size_t n = sizes[i];
      for (size_t k = 0; k < sizeof aligns / sizeof aligns[0]; k++) {
        size_t al = aligns[k], want = al ? al : 64; /* 0: the pool's 64 */
        /* The pointer API, then a move to a larger block. */
        void *p = NULL;
        assert_int_equal(hmb_ptr_alloc(a, n, al, 0, &p), HMB_OK);
        assert_int_equal((uintptr_t)p % (al ? al : 16), 0);
        fill(p, n, (unsigned)(n + k));
        assert_int_equal(hmb_ptr_realloc(&p, n + 70 * KIB), HMB_OK);
        assert_int_equal((uintptr_t)p % (al ? al : 16), 0);
        assert_true(filled(p, n, (unsigned)(n + k)));
        assert_int_equal(hmb_ptr_free(p), HMB_OK);
        assert_int_equal(hmb_ptr_alloc(a, n, al, 0, &p), HMB_OK);
        assert_int_equal((uintptr_t)p % (al ? al : 16), 0);
        assert_int_equal(hmb_ptr_size(p), n);
        assert_int_equal(hmb_ptr_free(p), HMB_OK);
        /* The handle API. */
        hmb_buffer_t *b = NULL;
        assert_int_equal(hmb_allocate_aligned(a, n, al, 0, &b), HMB_OK);
        assert_int_equal((uintptr_t)hmb_buffer_data(b) % want, 0);
        assert_int_equal(hmb_buffer_size(b), n);
        fill(hmb_buffer_data(b), n, (unsigned)k);
        hmb_buffer_close(b);
        assert_int_equal(hmb_allocate(a, n, 0, &b), HMB_OK);
        assert_int_equal((uintptr_t)hmb_buffer_data(b) % 64, 0);
        hmb_buffer_close(b);
        hmb_runner_stats_t rs = ts_runner_stats(r);
        assert_int_equal(rs.live, 0);
        hmb_memory_stats_t ms = ts_memory_stats(pool);
        assert_int_equal(ms.pageable_live, 0);
        assert_int_equal(ms.pageable_physical, 0);
      }
    }
  }
  hmb_runner_destroy(r);
  ts_pool_done(pool);
}

int main(void) {
  ts_watchdog_arm("test_allocator", 120);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_allocate_arguments),
      cmocka_unit_test(test_allocate_aligned_through_a_runner),
      cmocka_unit_test(test_ptr_zero_bytes),
      cmocka_unit_test(test_ptr_alignments),
      cmocka_unit_test(test_ptr_realloc_keeps_bytes_and_charges_the_difference),
      cmocka_unit_test(test_ptr_realloc_shrink_gives_the_block_back),
      cmocka_unit_test(test_ptr_realloc_refusals_change_nothing),
      cmocka_unit_test(test_ptr_free_null_and_foreign),
      cmocka_unit_test(test_ptr_free_from_another_thread_returns_the_budget),
      cmocka_unit_test(test_ptr_buffer_is_a_handle),
      cmocka_unit_test(test_ptr_through_a_vtable_without_allocate_aligned),
      cmocka_unit_test(
          test_allocate_aligned_zero_is_the_default_of_a_plain_vtable),
      cmocka_unit_test(test_ptr_realloc_asks_for_the_alignment_of_the_block),
      cmocka_unit_test(test_reused_blocks_keep_each_allocation_alignment),
      cmocka_unit_test(test_ptr_on_runners_refuses_bad_input_and_charges_right),
      cmocka_unit_test(test_default_allocator_charges_no_budget),
      cmocka_unit_test(test_bound_allocator_binding_nests),
      cmocka_unit_test(test_bound_allocator_unbound_modes),
      cmocka_unit_test(test_bound_allocator_is_per_thread),
  };
  int rc = cmocka_run_group_tests(tests, NULL, NULL);
  ts_watchdog_disarm();
  return rc;
}
