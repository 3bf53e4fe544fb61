/*
 * test_faults.c - fault injection: every failed physical allocation leaves
 * exact books (hmb/pool.h, I6), wherever it happens.
 *
 * Each scenario is a whole scan, run once without faults to count its
 * physical allocations C, then for N = 1, 2, ... with the Nth of them
 * failing, until a run meets no failure (N = C + 1). At the failure the
 * scenario checks HMB_ENOMEM, a NULL out-pointer (or the pointer and bytes
 * of a realloc unchanged) and that nothing moved: every budget counter and
 * peak of the pool and of the runner (its spare, beyond and wait_ns
 * included), the live and physical memory counters, the backend's live
 * blocks; then the self-check at rest; then it unwinds and the pool must be
 * back at rest with nothing leaked.
 *
 *   - allocation: a failing custom backend (the Nth call fails, or every
 *     call from the Nth), through the hot path, borrows, a borrow beyond
 *     the limit (R4), slices keeping parents alive, reservations, a
 *     declared need, a finish with live buffers, pinned requests, the
 *     pointer API (alloc, realloc growth), and the view the pointer API
 *     places inside a buffer of a vtable without allocate_aligned;
 *   - warm cache and pinned region: the built-in backends cannot be told
 *     to fail, so the Nth request of the scenario asks for 2^50 bytes,
 *     which no mapping can provide: the budget is granted (the limit is
 *     HMB_MAX_ALLOC), the warm cache or the pinned region is tried, the
 *     mapping fails, and everything is rolled back;
 *   - executor: tasks whose allocations fail report HMB_ENOMEM through
 *     their handle and their callback, and leak no budget.
 */
#define _POSIX_C_SOURCE 200809L
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testsupport.h"

#define KIB ((size_t)1024)
#define MIB ((size_t)1024 * 1024)
#define IMPOSSIBLE ((size_t)1 << 50) /* beyond any address space */

/* ---- snapshots ----------------------------------------------------------- */

typedef struct snap {
  hmb_pool_stats_t ps;
  hmb_runner_stats_t rs;
  hmb_memory_stats_t ms;
  long backend_live;
} snap_t;

typedef struct fi {
  hmb_pool_t *pool;
  ts_failing_backend_t fb;
  int builtin;    /* the built-in backends: inject IMPOSSIBLE sizes */
  long inject_at; /* built-in: the request number that is impossible */
  long requests;  /* built-in: requests made so far */
  int failures;   /* requests that failed in this run */
  hmb_buffer_t *bufs[48];
  int nbufs;
  void *ptrs[8];
  int nptrs;
} fi_t;

static void take(fi_t *f, hmb_runner_t *r, snap_t *s) {
  memset(s, 0, sizeof *s);
  s->ps = ts_pool_stats(f->pool);
  s->rs = ts_runner_stats(r);
  s->ms = ts_memory_stats(f->pool);
  s->backend_live = __atomic_load_n(&f->fb.live, __ATOMIC_SEQ_CST);
}

#define SAME(a, b, field) assert_int_equal((a)->field, (b)->field)

/*
 * Nothing may differ after a failure but the time of failed waits, the
 * progress role (the admission decision of R4 stands) and the counters of
 * what the memory layer tried (cache misses, pinned fallbacks).
 */
static void assert_unchanged(const snap_t *a, const snap_t *b) {
  SAME(a, b, ps.limit);
  SAME(a, b, ps.available);
  SAME(a, b, ps.held);
  SAME(a, b, ps.peak_held);
  SAME(a, b, ps.overcommitted);
  SAME(a, b, ps.peak_overcommitted);
  SAME(a, b, ps.live_bytes);
  SAME(a, b, ps.peak_live_bytes);
  SAME(a, b, ps.live_buffers);
  SAME(a, b, ps.runners);
  SAME(a, b, ps.running);
  SAME(a, b, ps.acquire_waiters);
  SAME(a, b, ps.borrow_waiters);
  SAME(a, b, ps.acquires);
  SAME(a, b, ps.borrows);
  SAME(a, b, ps.borrow_waits);
  SAME(a, b, ps.borrow_overcommits);
  SAME(a, b, ps.borrow_timeouts);
  SAME(a, b, ps.overcommitted_total);
  SAME(a, b, ps.released_early);
  SAME(a, b, ps.beyond_stopped);
  SAME(a, b, ps.limit_rejects);
  SAME(a, b, ps.grows);
  SAME(a, b, rs.state);
  SAME(a, b, rs.held);
  SAME(a, b, rs.peak_held);
  SAME(a, b, rs.live);
  SAME(a, b, rs.peak_live);
  SAME(a, b, rs.live_buffers);
  SAME(a, b, rs.borrowed);
  SAME(a, b, rs.borrows);
  SAME(a, b, rs.allocations);
  SAME(a, b, rs.returned_early);
  SAME(a, b, rs.wait_ns);
  SAME(a, b, rs.spare);
  SAME(a, b, rs.beyond);
  SAME(a, b, ms.pageable_live);
  SAME(a, b, ms.pageable_physical);
  SAME(a, b, ms.pinned_live);
  SAME(a, b, ms.cached_bytes);
  SAME(a, b, ms.huge_bytes);
  SAME(a, b, backend_live);
}

static long backend_failures(fi_t *f) {
  return __atomic_load_n(&f->fb.failures, __ATOMIC_SEQ_CST);
}

/* The size to ask for: the real one, or (built-in) IMPOSSIBLE when this is
 * the request chosen to fail. */
static size_t fi_size(fi_t *f, size_t n) {
  if (!f->builtin)
    return n;
  return ++f->requests == f->inject_at ? IMPOSSIBLE : n;
}

static int fi_failed(fi_t *f, long fails_before, size_t asked) {
  if (f->builtin)
    return asked == IMPOSSIBLE;
  return backend_failures(f) > fails_before;
}

/* Allocate `n` bytes through `alloc` (charged to `r`); 1 on success (the
 * buffer is kept for the unwind), 0 after an injected failure (checked). */
static int fi_alloc(fi_t *f, hmb_runner_t *r, const hmb_allocator_t *alloc,
                    size_t n, unsigned flags) {
  snap_t before, after;
  size_t asked = fi_size(f, n);
  take(f, r, &before);
  long fails = backend_failures(f);
  hmb_buffer_t *b = (hmb_buffer_t *)&b; /* must come back NULL on error */
  int rc = hmb_allocate(alloc, asked, flags, &b);
  take(f, r, &after);
  if (fi_failed(f, fails, asked)) {
    assert_int_equal(rc, HMB_ENOMEM);
    assert_null(b);
    if (!f->builtin)
      assert_int_equal(backend_failures(f), fails + 1);
    assert_unchanged(&before, &after);
    ts_check(f->pool, HMB_CHECK_QUIESCENT);
    f->failures++;
    return 0;
  }
  assert_int_equal(rc, HMB_OK);
  assert_non_null(b);
  assert_int_equal(hmb_buffer_size(b), n);
  memset(hmb_buffer_data(b), 0x5a, n);
  assert_int_equal(after.rs.live, before.rs.live + (int64_t)n);
  assert_true(after.rs.held >= after.rs.live);
  assert_true(f->nbufs < 48);
  f->bufs[f->nbufs++] = b;
  return 1;
}

/* hmb_ptr_alloc() through `alloc`, kept in f->ptrs. */
static int fi_ptr_alloc(fi_t *f, hmb_runner_t *r, const hmb_allocator_t *alloc,
                        size_t n, size_t align) {
  snap_t before, after;
  size_t asked = fi_size(f, n);
  take(f, r, &before);
  long fails = backend_failures(f);
  void *p = (void *)&p;
  int rc = hmb_ptr_alloc(alloc, asked, align, 0, &p);
  take(f, r, &after);
  if (fi_failed(f, fails, asked)) {
    assert_int_equal(rc, HMB_ENOMEM);
    assert_null(p);
    assert_unchanged(&before, &after);
    ts_check(f->pool, HMB_CHECK_QUIESCENT);
    f->failures++;
    return 0;
  }
  assert_int_equal(rc, HMB_OK);
  assert_int_equal((uintptr_t)p % align, 0);
  memset(p, 0x3c, n);
  f->ptrs[f->nptrs++] = p;
  return 1;
}

/* Grow the last pointer to `n` bytes; a failure leaves it and its bytes. */
static int fi_ptr_grow(fi_t *f, hmb_runner_t *r, size_t n) {
  void **pp = &f->ptrs[f->nptrs - 1];
  void *old = *pp;
  size_t old_n = hmb_ptr_size(old);
  snap_t before, after;
  size_t asked = fi_size(f, n);
  take(f, r, &before);
  long fails = backend_failures(f);
  int rc = hmb_ptr_realloc(pp, asked);
  take(f, r, &after);
  if (fi_failed(f, fails, asked)) {
    assert_int_equal(rc, HMB_ENOMEM);
    assert_ptr_equal(*pp, old);
    assert_int_equal(hmb_ptr_size(old), old_n);
    for (size_t i = 0; i < old_n; i++)
      assert_int_equal(((unsigned char *)old)[i], 0x3c);
    assert_unchanged(&before, &after);
    ts_check(f->pool, HMB_CHECK_QUIESCENT);
    f->failures++;
    return 0;
  }
  assert_int_equal(rc, HMB_OK);
  assert_int_equal(hmb_ptr_size(*pp), n);
  for (size_t i = 0; i < old_n; i++)
    assert_int_equal(((unsigned char *)*pp)[i], 0x3c);
  memset(*pp, 0x3c, n);
  return 1;
}

static void close_all(fi_t *f) {
  while (f->nbufs)
    assert_int_equal(hmb_buffer_close(f->bufs[--f->nbufs]), HMB_OK);
  while (f->nptrs)
    assert_int_equal(hmb_ptr_free(f->ptrs[--f->nptrs]), HMB_OK);
}

static hmb_runner_t *start(fi_t *f, size_t estimate, const char *name) {
  hmb_runner_config_t rc;
  hmb_runner_config_init(&rc);
  rc.estimate = estimate;
  rc.name = name;
  rc.borrow_timeout_ns = 2000000000; /* never reached: bounded just in case */
  hmb_runner_t *r = NULL;
  assert_int_equal(hmb_runner_create(f->pool, &rc, &r), HMB_OK);
  assert_int_equal(hmb_runner_start(r, 0), HMB_OK);
  return r;
}

/* A vtable without allocate_aligned over a runner: the pointer API places
 * a view inside its buffers. */
static int plain_allocate(void *ctx, size_t bytes, unsigned flags,
                          hmb_buffer_t **out) {
  return hmb_allocate(hmb_runner_allocator(ctx), bytes, flags, out);
}

/* ---- the scan, through a failing backend --------------------------------- */

/*
 * Returns when done or at the first injected failure (like a reader that
 * gives up on HMB_ENOMEM), leaving the unwind to the caller.
 */
static void scenario_scan(fi_t *f, hmb_runner_t **rs, int *nr) {
  hmb_runner_t *a = start(f, 4096, "scan-a");
  rs[(*nr)++] = a;
  const hmb_allocator_t *al = hmb_runner_allocator(a);
  /* Hot path: within the estimate. */
  if (!fi_alloc(f, a, al, 1000, 0) || !fi_alloc(f, a, al, 2000, 0))
    return;
  /* A slice keeps its parent alive; no physical allocation. */
  hmb_buffer_t *s = NULL;
  assert_int_equal(hmb_buffer_slice(f->bufs[0], 10, 100, &s), HMB_OK);
  f->bufs[f->nbufs++] = s;
  /* A reservation takes budget but no memory. */
  hmb_buffer_t *res = NULL;
  assert_int_equal(hmb_runner_reserve(a, 500, &res), HMB_OK);
  f->bufs[f->nbufs++] = res;
  /* Spare is 596: this borrows 1404 from the pool (limit 16384). */
  if (!fi_alloc(f, a, al, 2000, 0))
    return;
  /* A pinned request, served pageable by this backend (a fallback). */
  if (!fi_alloc(f, a, al, 300, HMB_ALLOC_PINNED))
    return;
  /* The pointer API: an aligned block, then a realloc that grows it (the
   * backend cannot grow in place: a new block, then the copy). */
  if (!fi_ptr_alloc(f, a, al, 100, 256) || !fi_ptr_grow(f, a, 900))
    return;
  /* The view inside a buffer of a vtable without allocate_aligned. */
  hmb_allocator_t plain = {a, plain_allocate, "plain", NULL};
  if (!fi_ptr_alloc(f, a, &plain, 200, 128) || !fi_alloc(f, a, &plain, 50, 0))
    return;
  hmb_runner_t *b = start(f, 1000, "scan-b");
  rs[(*nr)++] = b;
  if (!fi_alloc(f, b, hmb_runner_allocator(b), 600, 0))
    return;
  /* The early release: b's real need is what it has; 400 go back. */
  size_t ret = 0;
  assert_int_equal(hmb_runner_set_need(b, 600, &ret), HMB_OK);
  assert_int_equal(ret, 400);
  /* b finishes with its buffer still live (handed to a consumer). */
  assert_int_equal(hmb_runner_finish(b, 0, &ret), HMB_OK);
  assert_int_equal(ret, 0);
  hmb_runner_destroy(b);
  rs[--(*nr)] = NULL;
  /* a is the only running runner: waiting to borrow, it becomes the
   * progress runner and goes beyond the limit (R4). */
  if (!fi_alloc(f, a, al, 16384, 0))
    return;
  hmb_pool_stats_t ps = ts_pool_stats(f->pool);
  assert_int_equal(ps.borrow_overcommits, 1);
  assert_true(ps.held > ps.limit);
  /* Small ones on the hot path again after closing a big one. */
  assert_int_equal(hmb_buffer_close(f->bufs[--f->nbufs]), HMB_OK);
  for (int i = 0; i < 4; i++)
    if (!fi_alloc(f, a, al, 512, 0))
      return;
  assert_int_equal(hmb_runner_finish(a, 0, NULL), HMB_OK);
}

/* One run; returns the failures it met. */
static int run_scan(long fail_at, int sticky, long *calls) {
  fi_t f;
  memset(&f, 0, sizeof f);
  ts_failing_backend_init(&f.fb, fail_at, sticky);
  f.pool = ts_pool(16384, &f.fb.vtable, NULL);
  hmb_runner_t *rs[4] = {0};
  int nr = 0;
  scenario_scan(&f, rs, &nr);
  if (calls)
    *calls = f.fb.calls;
  /* Unwind in the order a reader would: runners first, then buffers. */
  for (int i = 0; i < nr; i++)
    hmb_runner_destroy(rs[i]);
  close_all(&f);
  assert_int_equal(ts_pool_stats(f.pool).runners, 0);
  ts_pool_done(f.pool);
  assert_int_equal(f.fb.live, 0);
  return f.failures;
}

static void loop_until_success(int sticky) {
  long calls = 0;
  assert_int_equal(run_scan(0, 0, &calls), 0);
  assert_true(calls >= 12);
  int runs = 0;
  for (long n = 1; n < 1000; n++) {
    int failed = run_scan(n, sticky, NULL);
    runs++;
    if (!failed)
      break;
    assert_int_equal(failed, 1); /* the scenario stops at its first one */
  }
  fprintf(stderr, "test_faults: scan (%s): %ld allocations, %d runs\n",
          sticky ? "every call from the Nth" : "the Nth call", calls, runs);
  /* The Nth call fails for N = 1..calls; N = calls + 1 meets none. */
  assert_int_equal(runs, calls + 1);
}

static void test_faults_scan_fail_nth(void **state) {
  (void)state;
  loop_until_success(0);
}

static void test_faults_scan_fail_from_nth(void **state) {
  (void)state;
  loop_until_success(1);
}

/*
 * A failed allocation that borrowed beyond the limit undoes the over-commit
 * and its peaks (I6; 0.1 kept the peaks), and the runner can still
 * allocate once memory is back.
 */
static void test_faults_overcommit_borrow_rollback(void **state) {
  (void)state;
  fi_t f;
  memset(&f, 0, sizeof f);
  ts_failing_backend_init(&f.fb, 1, 1); /* every allocation fails */
  f.pool = ts_pool(1000, &f.fb.vtable, NULL);
  hmb_runner_t *a = start(&f, 800, "alone");
  for (int i = 0; i < 3; i++)
    assert_int_equal(fi_alloc(&f, a, hmb_runner_allocator(a), 5000, 0), 0);
  hmb_pool_stats_t ps = ts_pool_stats(f.pool);
  assert_int_equal(ps.held, 800);
  assert_int_equal(ps.borrow_overcommits, 0);
  assert_int_equal(ps.overcommitted_total, 0);
  assert_int_equal(ps.overcommitted, 0);
  assert_int_equal(ps.peak_overcommitted, 0);
  assert_int_equal(ps.peak_held, 800);
  assert_int_equal(ts_runner_stats(a).peak_held, 800);
  /* Memory is back: the same request now succeeds, beyond the limit. */
  f.fb.fail_at = 0;
  assert_int_equal(fi_alloc(&f, a, hmb_runner_allocator(a), 5000, 0), 1);
  ps = ts_pool_stats(f.pool);
  assert_int_equal(ps.held, 5000);
  assert_int_equal(ps.borrow_overcommits, 1);
  assert_int_equal(ps.overcommitted_total, 4000);
  assert_int_equal(ps.peak_overcommitted, 4000);
  close_all(&f);
  hmb_runner_destroy(a);
  ts_pool_done(f.pool);
}

/* After a failed allocation, finish returns the restored spare exactly. */
static void test_faults_failure_then_finish(void **state) {
  (void)state;
  fi_t f;
  memset(&f, 0, sizeof f);
  ts_failing_backend_init(&f.fb, 2, 0);
  f.pool = ts_pool(1000, &f.fb.vtable, NULL);
  hmb_runner_t *a = start(&f, 600, "finisher");
  assert_int_equal(fi_alloc(&f, a, hmb_runner_allocator(a), 100, 0), 1);
  assert_int_equal(fi_alloc(&f, a, hmb_runner_allocator(a), 100, 0), 0);
  size_t ret = 0;
  assert_int_equal(hmb_runner_finish(a, 0, &ret), HMB_OK);
  assert_int_equal(ret, 500);
  assert_int_equal(ts_pool_stats(f.pool).held, 100);
  close_all(&f);
  assert_int_equal(ts_pool_stats(f.pool).held, 0);
  hmb_runner_destroy(a);
  ts_pool_done(f.pool);
}

/* ---- the warm cache and the pinned region (built-in backends) ------------ */

enum { REGION = 256 * 1024 };

/*
 * Requests of every built-in kind; the one numbered f->inject_at asks for
 * IMPOSSIBLE bytes instead. Small pageable blocks, mappings through the
 * warm cache (a miss, then hits of freed blocks), blocks of the pinned
 * region, pinned requests that fall back when the region is full, and a
 * pointer grown into a mapping.
 */
static void scenario_builtin(fi_t *f, hmb_runner_t **out) {
  hmb_runner_t *r = start(f, 8 * MIB, "builtin");
  *out = r;
  const hmb_allocator_t *al = hmb_runner_allocator(r);
  if (!fi_alloc(f, r, al, 1000, 0) || !fi_alloc(f, r, al, 300 * KIB, 0) ||
      !fi_alloc(f, r, al, 3 * MIB, 0))
    return;
  /* Free the mappings into the warm cache, then get them back as hits. */
  assert_int_equal(hmb_buffer_close(f->bufs[--f->nbufs]), HMB_OK);
  assert_int_equal(hmb_buffer_close(f->bufs[--f->nbufs]), HMB_OK);
  assert_true(ts_memory_stats(f->pool).cached_bytes > 0);
  uint64_t hits = ts_memory_stats(f->pool).cache_hits;
  if (!fi_alloc(f, r, al, 300 * KIB, 0) || !fi_alloc(f, r, al, 3 * MIB, 0))
    return;
  assert_true(ts_memory_stats(f->pool).cache_hits >= hits + 1);
  /* The pinned region, until it is full; then fallbacks. */
  for (int i = 0; i < 4; i++) {
    if (!fi_alloc(f, r, al, 50 * KIB, HMB_ALLOC_PINNED))
      return;
    assert_int_equal(hmb_buffer_is_pinned(f->bufs[f->nbufs - 1]), 1);
  }
  if (!fi_alloc(f, r, al, 100 * KIB, HMB_ALLOC_PINNED)) /* falls back */
    return;
  assert_int_equal(hmb_buffer_is_pinned(f->bufs[f->nbufs - 1]), 0);
  /* A pointer, grown from a small block into a mapping. */
  if (!fi_ptr_alloc(f, r, al, 4000, 64) || !fi_ptr_grow(f, r, 600 * KIB))
    return;
  /* A borrow well beyond the estimate. */
  if (!fi_alloc(f, r, al, 12 * MIB, 0))
    return;
  assert_int_equal(hmb_runner_finish(r, 0, NULL), HMB_OK);
}

static int run_builtin(long inject_at, long *requests) {
  static _Alignas(4096) unsigned char region[REGION];
  fi_t f;
  memset(&f, 0, sizeof f);
  f.builtin = 1;
  f.inject_at = inject_at;
  hmb_pool_config_t cfg;
  hmb_pool_config_init(&cfg);
  /* The impossible request is granted its budget within the limit, so the
   * room of the warm cache stays far above its cap: the cache has no
   * reason to give anything back, and must not lose its blocks. */
  cfg.limit = HMB_MAX_ALLOC;
  cfg.cache_bytes = 8 * MIB;
  cfg.pinned_base = region;
  cfg.pinned_bytes = sizeof region;
  f.pool = ts_pool_cfg(&cfg);
  hmb_runner_t *r = NULL;
  scenario_builtin(&f, &r);
  if (requests)
    *requests = f.requests;
  hmb_runner_destroy(r);
  close_all(&f);
  hmb_memory_stats_t ms = ts_memory_stats(f.pool);
  assert_int_equal(ms.pageable_live, 0);
  assert_int_equal(ms.pinned_live, 0);
  assert_int_equal(ms.pageable_physical, 0);
  assert_true(ms.cached_bytes <= ms.cache_cap);
  ts_pool_done(f.pool);
  return f.failures;
}

static void test_faults_warm_cache_and_pinned_region(void **state) {
  (void)state;
  long requests = 0;
  assert_int_equal(run_builtin(0, &requests), 0);
  assert_true(requests >= 12);
  int runs = 0;
  for (long n = 1; n < 100; n++) {
    int failed = run_builtin(n, NULL);
    runs++;
    if (!failed)
      break;
    assert_int_equal(failed, 1);
  }
  fprintf(stderr, "test_faults: built-in backends: %ld requests, %d runs\n",
          requests, runs);
  assert_int_equal(runs, requests + 1);
}

/* ---- through the executor ------------------------------------------------ */

enum { EX_TASKS = 6, EX_ALLOCS = 4 };

typedef struct ex_task {
  fi_t *f;
  int status; /* from the callback */
  int callbacks;
  int ret;            /* what the function returned */
  int enomem;         /* allocations that failed */
  hmb_buffer_t *kept; /* handed to the consumer (closed by the test) */
} ex_task_t;

/*
 * A scan task: allocations within the estimate, then beyond it (borrows).
 * At the first HMB_ENOMEM it checks that its runner's books did not move,
 * closes what it has and returns the error, like a reader that gives up.
 * A task that succeeds hands its first buffer to the consumer.
 */
static int ex_run(void *user, hmb_runner_t *r) {
  ex_task_t *t = user;
  static const size_t sizes[EX_ALLOCS] = {600, 300, 900, 2500};
  hmb_buffer_t *bufs[EX_ALLOCS];
  int n = 0, rc = 0;
  for (int i = 0; i < EX_ALLOCS; i++) {
    hmb_runner_stats_t before = ts_runner_stats(r);
    hmb_buffer_t *b = (hmb_buffer_t *)&b;
    rc = hmb_runner_alloc(r, sizes[i], 0, &b);
    if (rc == HMB_ENOMEM) {
      assert_null(b);
      hmb_runner_stats_t after = ts_runner_stats(r);
      assert_int_equal(after.held, before.held);
      assert_int_equal(after.spare, before.spare);
      assert_int_equal(after.live, before.live);
      assert_int_equal(after.live_buffers, before.live_buffers);
      assert_int_equal(after.allocations, before.allocations);
      assert_int_equal(after.borrowed, before.borrowed);
      assert_int_equal(after.peak_held, before.peak_held);
      t->enomem++;
      break;
    }
    assert_int_equal(rc, HMB_OK);
    memset(hmb_buffer_data(b), 0x3c, sizes[i]);
    bufs[n++] = b;
  }
  int first = rc == 0 ? 1 : 0; /* keep bufs[0] when the task succeeds */
  if (rc == 0 && n > 0)
    t->kept = bufs[0];
  for (int i = first; i < n; i++)
    assert_int_equal(hmb_buffer_close(bufs[i]), HMB_OK);
  t->ret = rc;
  return rc;
}

static void ex_done(void *user, hmb_task_t *task, int status) {
  ex_task_t *t = user;
  (void)task;
  t->status = status;
  t->callbacks++;
}

/* Runs EX_TASKS tasks on `threads` workers; returns the failures seen. */
static int run_executor(long fail_at, int sticky, int threads) {
  fi_t f;
  memset(&f, 0, sizeof f);
  ts_failing_backend_init(&f.fb, fail_at, sticky);
  f.pool = ts_pool(8192, &f.fb.vtable, NULL);
  hmb_executor_config_t ec;
  hmb_executor_config_init(&ec);
  ec.threads = threads;
  ec.acquire_timeout_ns = 1000000;
  hmb_executor_t *ex = NULL;
  assert_int_equal(hmb_executor_create(f.pool, &ec, &ex), HMB_OK);
  ex_task_t tasks[EX_TASKS];
  hmb_task_t *h[EX_TASKS];
  memset(tasks, 0, sizeof tasks);
  for (int i = 0; i < EX_TASKS; i++) {
    tasks[i].f = &f;
    tasks[i].status = 1;
    hmb_task_desc_t d;
    hmb_task_desc_init(&d);
    d.estimate = 1000 + 500 * (size_t)i;
    d.priority = i % 3;
    d.run = ex_run;
    d.user = &tasks[i];
    d.done = ex_done;
    d.name = "fi-task";
    assert_int_equal(hmb_executor_submit(ex, &d, &h[i]), HMB_OK);
  }
  int failures = 0, enomem_tasks = 0;
  for (int i = 0; i < EX_TASKS; i++) {
    int st = 1;
    assert_int_equal(hmb_task_wait(h[i], HMB_WAIT_FOREVER, &st), HMB_OK);
    assert_int_equal(hmb_task_done(h[i]), 1);
    /* The handle and the callback report what the function returned. */
    assert_int_equal(tasks[i].callbacks, 1);
    assert_int_equal(st, tasks[i].status);
    assert_int_equal(st, tasks[i].ret);
    assert_true(st == HMB_OK || st == HMB_ENOMEM);
    assert_int_equal(st == HMB_ENOMEM, tasks[i].enomem == 1);
    assert_int_equal(st == HMB_OK, tasks[i].kept != NULL);
    failures += tasks[i].enomem;
    enomem_tasks += st == HMB_ENOMEM;
    hmb_task_release(h[i]);
  }
  hmb_executor_stats_t es;
  assert_int_equal(hmb_executor_stats(ex, &es), HMB_OK);
  assert_int_equal(es.submitted, EX_TASKS);
  assert_int_equal(es.failed, (uint64_t)enomem_tasks);
  assert_int_equal(es.completed, (uint64_t)(EX_TASKS - enomem_tasks));
  assert_int_equal(es.cancelled, 0);
  assert_int_equal(es.finishing, 0);
  assert_int_equal(failures, (int)backend_failures(&f));
  hmb_executor_destroy(ex);
  /* Every runner is finished: the pool holds exactly the kept buffers. */
  hmb_pool_stats_t ps = ts_pool_stats(f.pool);
  int64_t kept = 0;
  for (int i = 0; i < EX_TASKS; i++)
    kept += tasks[i].kept ? 600 : 0;
  assert_int_equal(ps.running, 0);
  assert_int_equal(ps.held, kept);
  assert_int_equal(ps.live_bytes, kept);
  ts_check(f.pool, HMB_CHECK_QUIESCENT);
  assert_int_equal(__atomic_load_n(&f.fb.live, __ATOMIC_SEQ_CST),
                   (long)(EX_TASKS - enomem_tasks));
  for (int i = 0; i < EX_TASKS; i++)
    if (tasks[i].kept)
      assert_int_equal(hmb_buffer_close(tasks[i].kept), HMB_OK);
  assert_int_equal(ts_pool_stats(f.pool).runners, 0);
  ts_pool_done(f.pool);
  assert_int_equal(f.fb.live, 0);
  return failures;
}

/*
 * Tasks whose allocations fail report HMB_ENOMEM through their handle and
 * their callback, and leak no budget: the Nth allocation fails (one task
 * fails, whichever worker made it), every allocation from the Nth fails, or
 * none does.
 */
static void test_faults_executor_enomem(void **state) {
  (void)state;
  /* The tasks make EX_TASKS * EX_ALLOCS allocations in all. */
  for (long n = 1; n <= EX_TASKS * EX_ALLOCS; n += 3)
    assert_int_equal(run_executor(n, 0, 1 + (int)(n % 3)), 1);
  assert_int_equal(run_executor(EX_TASKS * EX_ALLOCS + 1, 0, 2), 0);
  /* Sticky from the start: every task fails at its first allocation. */
  assert_int_equal(run_executor(1, 1, 3), EX_TASKS);
  /* Sticky from the 5th: at least one task fails, and so do all later. */
  int f = run_executor(5, 1, 2);
  assert_true(f >= 1 && f <= EX_TASKS);
}

int main(void) {
  ts_watchdog_arm("test_faults", 120);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_faults_scan_fail_nth),
      cmocka_unit_test(test_faults_scan_fail_from_nth),
      cmocka_unit_test(test_faults_overcommit_borrow_rollback),
      cmocka_unit_test(test_faults_failure_then_finish),
      cmocka_unit_test(test_faults_warm_cache_and_pinned_region),
      cmocka_unit_test(test_faults_executor_enomem),
  };
  int rc = cmocka_run_group_tests(tests, NULL, NULL);
  ts_watchdog_disarm();
  return rc;
}
