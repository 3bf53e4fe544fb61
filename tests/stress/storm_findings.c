/*
 * storm_findings.c - deterministic reproductions of what hmb_storm found,
 * each a small sequence of public calls whose result contradicted the
 * headers; they are kept as regression tests (each failed before its fix).
 * The storm can still steer clear of them with --avoid (docs/fuzzing.md).
 *
 *   - pinned blocks aligned beyond the region's granule overlap the next
 *     block (memory.c, hmb__alloc_pinned: the block is size + alignment
 *     long, but the data is placed at the next aligned address past the
 *     prefix, which lies up to alignment - granule bytes further on);
 *   - a borrow whose physical allocation fails is undone after its runner
 *     was cancelled: the stopped runners' `beyond` in the ledger keeps the
 *     undone bytes (hmb_pool_check: "beyond of stopped runners ... !=
 *     ledger"), and after a try-free repaid part of it the runner's
 *     `beyond` goes negative (R-I3) (ledger.c, hmb__ledger_unborrow undoes
 *     the grant as it was, not as it is now);
 *   - with the over-commit cap, lowering the limit below what is held
 *     (which hmb_pool_set_limit() allows) makes hmb_pool_check() report I5
 *     broken, and pool.h says held - limit never exceeds the cap;
 *   - the progress runner's `beyond` outlives the buffers it was granted
 *     for: pool.h I3 says it is "at most its real need: the live bytes it
 *     allocated", yet after they are closed it still holds the budget beyond
 *     the limit, with nothing live, while other starts wait;
 *   - hmb_ptr_realloc() reads the reference count relaxed: a close of the
 *     other reference on another thread does not happen before the
 *     realloc's writes to the handle (a data race under ThreadSanitizer;
 *     the test passes in other builds);
 *   - a borrow that finds enough spare in the runner's other shards takes
 *     it all and gives the rest back without looking at the state
 *     (ledger.c, hmb__ledger_borrow): when finish (or destroy) drained the
 *     spare in between, the rest stays with the stopped runner. After a
 *     finish racing an allocation (which runner.h allows) the finished
 *     runner holds budget with nothing live until it is destroyed; after a
 *     destroy racing a realloc of one of its buffers the runner is freed
 *     with the budget still counted as held, and stays in the heap of
 *     holders that hmb_pool_describe() reads (a use after free). Both
 *     races are tried in a loop, the stop a little later each time, until
 *     they show.
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "hmb.h"

#define KIB ((size_t)1024)
#define MIB ((size_t)1024 * 1024)

static hmb_runner_t *runner(hmb_pool_t *pool, size_t estimate) {
  hmb_runner_config_t c;
  hmb_runner_config_init(&c);
  c.estimate = estimate;
  hmb_runner_t *r = NULL;
  assert_int_equal(hmb_runner_create(pool, &c, &r), 0);
  return r;
}

static void assert_sound(hmb_pool_t *pool, unsigned flags) {
  char why[256];
  int rc = hmb_pool_check(pool, flags, why, sizeof why);
  if (rc)
    print_message("hmb_pool_check: %s\n", why);
  assert_int_equal(rc, 0);
}

/* ---- pinned blocks aligned beyond the granule --------------------------- */

static void pinned_aligned_blocks_do_not_overlap(void **state) {
  (void)state;
  size_t region = 1 * MIB;
  void *base = aligned_alloc(4096, region);
  assert_non_null(base);
  hmb_pool_config_t cfg;
  hmb_pool_config_init(&cfg);
  cfg.limit = 1 * MIB;
  cfg.pinned_bytes = region;
  cfg.pinned_base = base;
  hmb_pool_t *pool = NULL;
  assert_int_equal(hmb_pool_create(&cfg, &pool), 0);
  hmb_runner_t *r = runner(pool, 1 * MIB);
  assert_int_equal(hmb_runner_start(r, 0), 0);
  /* A small block first, so that the next one does not start on a page. */
  hmb_buffer_t *b[3];
  assert_int_equal(hmb_runner_alloc(r, 100, HMB_ALLOC_PINNED, &b[0]), 0);
  assert_int_equal(hmb_allocate_aligned(hmb_runner_allocator(r), 4096, 4096,
                                        HMB_ALLOC_PINNED, &b[1]),
                   0);
  assert_int_equal(hmb_runner_alloc(r, 4096, HMB_ALLOC_PINNED, &b[2]), 0);
  for (int i = 0; i < 3; i++)
    assert_true(hmb_buffer_is_pinned(b[i]));
  assert_int_equal((uintptr_t)hmb_buffer_data(b[1]) % 4096, 0);
  /* Every two live blocks are disjoint. */
  for (int i = 0; i < 3; i++)
    for (int j = i + 1; j < 3; j++) {
      uintptr_t a0 = (uintptr_t)hmb_buffer_data(b[i]);
      uintptr_t a1 = a0 + hmb_buffer_size(b[i]);
      uintptr_t c0 = (uintptr_t)hmb_buffer_data(b[j]);
      uintptr_t c1 = c0 + hmb_buffer_size(b[j]);
      if (a0 < c1 && c0 < a1)
        print_message("pinned blocks %d [%p, +%zu) and %d [%p, +%zu) "
                      "overlap\n",
                      i, hmb_buffer_data(b[i]), hmb_buffer_size(b[i]), j,
                      hmb_buffer_data(b[j]), hmb_buffer_size(b[j]));
      assert_false(a0 < c1 && c0 < a1);
    }
  for (int i = 0; i < 3; i++)
    assert_int_equal(hmb_buffer_close(b[i]), 0);
  hmb_runner_destroy(r);
  assert_int_equal(hmb_pool_destroy(pool), 0);
  free(base);
}

/* ---- a failed allocation undone after the runner changed ------------------
 */

/* A backend whose next allocation blocks until released, then fails. */
static struct {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int arm, entered, release;
} gate = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0};

static int gate_alloc(void *ctx, size_t size, size_t align, int pin, void **ptr,
                      int *pinned) {
  (void)ctx;
  (void)pin;
  pthread_mutex_lock(&gate.mu);
  int armed = gate.arm;
  if (armed) {
    gate.arm = 0;
    gate.entered = 1;
    pthread_cond_broadcast(&gate.cv);
    while (!gate.release)
      pthread_cond_wait(&gate.cv, &gate.mu);
  }
  pthread_mutex_unlock(&gate.mu);
  if (armed)
    return HMB_ENOMEM;
  void *p = NULL;
  if (posix_memalign(&p, align, size) != 0)
    return HMB_ENOMEM;
  *ptr = p;
  *pinned = 0;
  return 0;
}

static void gate_free(void *ctx, void *ptr, size_t size, int pinned) {
  (void)ctx;
  (void)size;
  (void)pinned;
  free(ptr);
}

static const hmb_backend_t gate_backend = {NULL, gate_alloc, gate_free};

typedef struct alloc_job {
  hmb_runner_t *r;
  size_t bytes;
  int rc;
} alloc_job_t;

static void *alloc_thread(void *arg) {
  alloc_job_t *j = arg;
  hmb_buffer_t *b = NULL;
  j->rc = hmb_runner_alloc(j->r, j->bytes, 0, &b);
  if (b)
    hmb_buffer_close(b);
  return NULL;
}

/* Start an allocation of `bytes` on another thread and return once the
 * backend holds it (the budget is granted, the memory not yet). */
static pthread_t gated_alloc(alloc_job_t *j) {
  pthread_mutex_lock(&gate.mu);
  gate.arm = 1;
  gate.entered = 0;
  gate.release = 0;
  pthread_mutex_unlock(&gate.mu);
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, alloc_thread, j), 0);
  pthread_mutex_lock(&gate.mu);
  while (!gate.entered)
    pthread_cond_wait(&gate.cv, &gate.mu);
  pthread_mutex_unlock(&gate.mu);
  return th;
}

static void gate_open(pthread_t th) {
  pthread_mutex_lock(&gate.mu);
  gate.release = 1;
  pthread_cond_broadcast(&gate.cv);
  pthread_mutex_unlock(&gate.mu);
  pthread_join(th, NULL);
}

static hmb_pool_t *gated_pool(size_t limit) {
  hmb_pool_config_t cfg;
  hmb_pool_config_init(&cfg);
  cfg.limit = limit;
  cfg.backend = &gate_backend;
  hmb_pool_t *pool = NULL;
  assert_int_equal(hmb_pool_create(&cfg, &pool), 0);
  return pool;
}

static void failed_borrow_after_cancel_keeps_the_ledger(void **state) {
  (void)state;
  hmb_pool_t *pool = gated_pool(64 * KIB);
  hmb_runner_t *r = runner(pool, 64 * KIB);
  /* Idle start: granted the limit, and the progress runner (R3). */
  assert_int_equal(hmb_runner_start(r, 0), 0);
  /* 128 KiB: 64 KiB of spare, 64 KiB borrowed beyond the limit (R5); the
   * backend then holds the allocation while the runner is cancelled. */
  alloc_job_t j = {r, 128 * KIB, 0};
  pthread_t th = gated_alloc(&j);
  assert_int_equal(hmb_runner_cancel(r), 0);
  gate_open(th);
  assert_int_equal(j.rc, HMB_ENOMEM);
  /* The failure changed nothing: nothing is beyond the limit any more. */
  hmb_runner_stats_t rs;
  assert_int_equal(hmb_runner_stats(r, &rs), 0);
  hmb_pool_stats_t st;
  assert_int_equal(hmb_pool_stats(pool, &st), 0);
  print_message("runner held %lld beyond %lld; pool held %lld, "
                "beyond_stopped %lld\n",
                (long long)rs.held, (long long)rs.beyond, (long long)st.held,
                (long long)st.beyond_stopped);
  assert_sound(pool, HMB_CHECK_QUIESCENT);
  assert_int_equal(st.beyond_stopped, rs.beyond);
  size_t ret;
  assert_int_equal(hmb_runner_finish(r, 0, &ret), 0);
  hmb_runner_destroy(r);
  assert_int_equal(hmb_pool_stats(pool, &st), 0);
  assert_int_equal(st.held, 0);
  assert_int_equal(st.beyond_stopped, 0);
  assert_int_equal(hmb_pool_destroy(pool), 0);
}

static void failed_borrow_after_try_free_keeps_beyond(void **state) {
  (void)state;
  hmb_pool_t *pool = gated_pool(64 * KIB);
  hmb_runner_t *r = runner(pool, 64 * KIB);
  assert_int_equal(hmb_runner_start(r, 0), 0);
  hmb_buffer_t *x = NULL;
  assert_int_equal(hmb_runner_alloc(r, 32 * KIB, 0, &x), 0);
  /* 96 KiB: the other 32 KiB of spare and 64 KiB beyond the limit. */
  alloc_job_t j = {r, 96 * KIB, 0};
  pthread_t th = gated_alloc(&j);
  /* Meanwhile a buffer closes: the progress runner's close gives back what
   * it frees of its over-commit at once (pool.h), so the try-free that
   * follows finds nothing spare; together they returned 32 KiB, which
   * repaid `beyond`. */
  hmb_pool_stats_t before;
  assert_int_equal(hmb_pool_stats(pool, &before), 0);
  assert_int_equal(before.held, (int64_t)(128 * KIB));
  assert_int_equal(hmb_buffer_close(x), 0);
  size_t ret = 0;
  assert_int_equal(hmb_runner_try_free(r, SIZE_MAX, &ret), 0);
  assert_int_equal(ret, 0);
  hmb_pool_stats_t after;
  assert_int_equal(hmb_pool_stats(pool, &after), 0);
  assert_int_equal(after.held, (int64_t)(96 * KIB));
  gate_open(th);
  assert_int_equal(j.rc, HMB_ENOMEM);
  hmb_runner_stats_t rs;
  assert_int_equal(hmb_runner_stats(r, &rs), 0);
  print_message("runner held %lld spare %lld beyond %lld\n", (long long)rs.held,
                (long long)rs.spare, (long long)rs.beyond);
  assert_sound(pool, HMB_CHECK_QUIESCENT);
  /* The failed borrow repaid what was still beyond; the runner keeps the
   * rest, and the pool holds exactly that. */
  assert_int_equal(rs.beyond, 0);
  assert_int_equal(hmb_pool_stats(pool, &after), 0);
  assert_int_equal(after.held, rs.held);
  assert_true(rs.held <= (int64_t)(64 * KIB));
  hmb_runner_destroy(r);
  assert_int_equal(hmb_pool_destroy(pool), 0);
}

/* ---- the cap and a lowered limit ----------------------------------------- */

static void lowered_limit_with_cap_stays_sound(void **state) {
  (void)state;
  hmb_pool_config_t cfg;
  hmb_pool_config_init(&cfg);
  cfg.limit = 1 * MIB;
  cfg.flags = HMB_POOL_CAP_OVERCOMMIT;
  cfg.overcommit_cap = 0;
  hmb_pool_t *pool = NULL;
  assert_int_equal(hmb_pool_create(&cfg, &pool), 0);
  hmb_runner_t *r = runner(pool, 1 * MIB);
  assert_int_equal(hmb_runner_start(r, 0), 0);
  /* Allowed: "Shrinking never fails ... budget already held above the new
   * limit stays with its runners". */
  assert_int_equal(hmb_pool_set_limit(pool, 512 * KIB), 0);
  hmb_pool_stats_t st;
  assert_int_equal(hmb_pool_stats(pool, &st), 0);
  print_message("held %lld, limit %lld, over-committed %lld, cap %lld\n",
                (long long)st.held, (long long)st.limit,
                (long long)st.overcommitted, (long long)st.overcommit_cap);
  assert_sound(pool, 0);
  hmb_runner_destroy(r);
  assert_int_equal(hmb_pool_destroy(pool), 0);
}

/* ---- the progress runner's beyond and its live bytes ----------------------
 */

static void progress_beyond_is_at_most_its_live_bytes(void **state) {
  (void)state;
  hmb_pool_config_t cfg;
  hmb_pool_config_init(&cfg);
  cfg.limit = 1 * MIB;
  hmb_pool_t *pool = NULL;
  assert_int_equal(hmb_pool_create(&cfg, &pool), 0);
  hmb_runner_t *p = runner(pool, 512 * KIB);
  assert_int_equal(hmb_runner_start(p, 0), 0);
  hmb_buffer_t *b = NULL;
  /* 2 MiB: 512 KiB held, 512 KiB more within the limit, 1 MiB beyond. */
  assert_int_equal(hmb_runner_alloc(p, 2 * MIB, 0, &b), 0);
  assert_int_equal(hmb_buffer_close(b), 0);
  hmb_pool_stats_t st;
  assert_int_equal(hmb_pool_stats(pool, &st), 0);
  hmb_runner_stats_t rs;
  assert_int_equal(hmb_runner_stats(p, &rs), 0);
  /* Another task cannot start while nothing at all is live. */
  hmb_runner_t *q = runner(pool, 4 * KIB);
  int rc = hmb_runner_start(q, 1000000);
  print_message("progress runner: beyond %lld, live %lld, held %lld; pool "
                "held %lld of %lld; a 4 KiB start: %s\n",
                (long long)st.beyond_running, (long long)rs.live,
                (long long)rs.held, (long long)st.held, (long long)st.limit,
                hmb_errname(rc));
  assert_int_equal(st.progress_runner, rs.id);
  assert_true(st.beyond_running <= rs.live);
  hmb_runner_destroy(q);
  hmb_runner_destroy(p);
  assert_int_equal(hmb_pool_destroy(pool), 0);
}

/* ---- realloc after another thread's close ----------------------------------
 */

typedef struct share {
  hmb_buffer_t *b;
  _Atomic int sum;
} share_t;

static void *reader_then_close(void *arg) {
  share_t *s = arg;
  /* Read the buffer through the handle, then drop this reference. */
  const unsigned char *d = hmb_buffer_data(s->b);
  atomic_store(&s->sum, d[0] + (int)hmb_buffer_size(s->b));
  hmb_buffer_close(s->b);
  return NULL;
}

static void ptr_realloc_after_other_thread_close(void **state) {
  (void)state;
  hmb_pool_config_t cfg;
  hmb_pool_config_init(&cfg);
  cfg.limit = 1 * MIB;
  hmb_pool_t *pool = NULL;
  assert_int_equal(hmb_pool_create(&cfg, &pool), 0);
  hmb_runner_t *r = runner(pool, 1 * MIB);
  assert_int_equal(hmb_runner_start(r, 0), 0);
  for (int round = 0; round < 200; round++) {
    void *p = NULL;
    assert_int_equal(hmb_ptr_alloc(hmb_runner_allocator(r), 64, 0, 0, &p), 0);
    memset(p, 1, 64);
    share_t s = {hmb_ptr_buffer(p), 0};
    assert_int_equal(hmb_buffer_retain(s.b), 0);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, reader_then_close, &s), 0);
    /* The only synchronisation with that thread: its close, as seen by
     * the reference count (what hmb_ptr_realloc() itself relies on). */
    while (hmb_buffer_refcount(s.b) != 1)
      ;
    assert_int_equal(hmb_ptr_realloc(&p, 64 * KIB), 0);
    assert_int_equal(hmb_ptr_free(p), 0);
    pthread_join(th, NULL);
  }
  hmb_runner_destroy(r);
  assert_int_equal(hmb_pool_destroy(pool), 0);
}

/* ---- the rest of a borrow given back after a stop ------------------------ */

typedef struct giveback {
  hmb_runner_t *r;
  pthread_barrier_t bar;
  _Atomic int go;
  void *p;
  int realloc_it;
} giveback_t;

/* Leave spare on this thread's shard: a buffer allocated and closed. */
static void *spare_maker(void *arg) {
  giveback_t *g = arg;
  hmb_buffer_t *x = NULL;
  if (hmb_runner_alloc(g->r, 8 * KIB, 0, &x) == 0)
    hmb_buffer_close(x);
  pthread_barrier_wait(&g->bar);
  return NULL;
}

/* Borrow from the other shards' spare once told to: an allocation, or a
 * realloc growing the buffer the test allocated. */
static void *borrower(void *arg) {
  giveback_t *g = arg;
  pthread_barrier_wait(&g->bar);
  while (!atomic_load(&g->go))
    ;
  if (g->realloc_it) {
    hmb_ptr_realloc(&g->p, 6 * KIB);
  } else {
    hmb_buffer_t *x = NULL;
    if (hmb_runner_alloc(g->r, 2 * KIB, 0, &x) == 0)
      hmb_buffer_close(x);
  }
  return NULL;
}

/* One try: a runner holding its 4 KiB estimate in a live buffer, 8 KiB of
 * spare on another thread's shard, and a borrow of 2 KiB racing `stop`
 * (finish, or destroy). Returns the budget the pool still holds once
 * everything is closed (0 unless the race showed). */
static int64_t giveback_try(hmb_pool_t *pool, int destroy, int delay) {
  giveback_t g;
  memset(&g, 0, sizeof g);
  g.r = runner(pool, 4 * KIB);
  g.realloc_it = destroy;
  assert_int_equal(hmb_runner_start(g.r, 0), 0);
  assert_int_equal(
      hmb_ptr_alloc(hmb_runner_allocator(g.r), 4 * KIB, 0, 0, &g.p), 0);
  pthread_barrier_init(&g.bar, NULL, 3);
  pthread_t t1, t2;
  assert_int_equal(pthread_create(&t1, NULL, spare_maker, &g), 0);
  assert_int_equal(pthread_create(&t2, NULL, borrower, &g), 0);
  pthread_barrier_wait(&g.bar);
  atomic_store(&g.go, 1);
  /* A delay that changes from try to try sweeps the stop across the
   * borrow's window. */
  for (volatile int spin = 0; spin < delay; spin++)
    ;
  size_t ret;
  if (destroy)
    hmb_runner_destroy(g.r);
  else
    assert_int_equal(hmb_runner_finish(g.r, 0, &ret), 0);
  pthread_join(t1, NULL);
  pthread_join(t2, NULL);
  pthread_barrier_destroy(&g.bar);
  assert_int_equal(hmb_ptr_free(g.p), 0);
  hmb_pool_stats_t st;
  assert_int_equal(hmb_pool_stats(pool, &st), 0);
  if (!destroy) {
    hmb_runner_stats_t rs;
    assert_int_equal(hmb_runner_stats(g.r, &rs), 0);
    if (rs.held)
      print_message("finished runner, nothing live: held %lld (spare %lld)\n",
                    (long long)rs.held, (long long)rs.spare);
    hmb_runner_destroy(g.r);
    return rs.held;
  }
  if (st.held)
    print_message("runner destroyed, everything closed: the pool holds %lld "
                  "for %d runners\n",
                  (long long)st.held, st.runners);
  return st.held;
}

static void giveback_loop(int destroy) {
  hmb_pool_config_t cfg;
  hmb_pool_config_init(&cfg);
  cfg.limit = 1 * MIB;
  hmb_pool_t *pool = NULL;
  assert_int_equal(hmb_pool_create(&cfg, &pool), 0);
  int64_t left = 0;
  int tries = 0;
  for (; tries < 5000 && left == 0; tries++)
    left = giveback_try(pool, destroy, (tries * 7) % 400);
  print_message("%d tries\n", tries);
  assert_int_equal(left, 0);
  assert_int_equal(hmb_pool_destroy(pool), 0);
}

static void finish_racing_a_borrow_returns_all(void **state) {
  (void)state;
  giveback_loop(0);
}

static void destroy_racing_a_realloc_returns_all(void **state) {
  (void)state;
  giveback_loop(1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(pinned_aligned_blocks_do_not_overlap),
      cmocka_unit_test(failed_borrow_after_cancel_keeps_the_ledger),
      cmocka_unit_test(failed_borrow_after_try_free_keeps_beyond),
      cmocka_unit_test(lowered_limit_with_cap_stays_sound),
      cmocka_unit_test(progress_beyond_is_at_most_its_live_bytes),
      cmocka_unit_test(ptr_realloc_after_other_thread_close),
      cmocka_unit_test(finish_racing_a_borrow_returns_all),
      cmocka_unit_test(destroy_racing_a_realloc_returns_all),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
