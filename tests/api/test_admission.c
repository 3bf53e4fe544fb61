/*
 * test_admission.c - the admission rules and the over-commit bound of
 * hmb/pool.h (R1-R5, I1-I6), through the public API and the library's
 * self-check.
 *
 *   - over-commit goes to one runner at a time, and only real bytes;
 *   - the rotation pattern (every runner borrowing in turn) and the idle
 *     start pattern print their figures and stay within limit + one need;
 *   - queue order: a start of 0 bytes cannot bypass a waiting start, and a
 *     large start is not starved by a stream of small ones that borrow;
 *   - failures change nothing; a need declared before start caps it;
 *   - the over-commit cap; staged admission; pressure handlers (the join
 *     pattern: a consumer releases finished buffers on the signal); runtime
 *     limit changes; wait hooks; quiet timeouts; the top-holder description.
 */
#define _POSIX_C_SOURCE 200809L
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "testsupport.h"

#define KIB ((size_t)1024)
#define MIB ((size_t)1024 * 1024)
#define MS INT64_C(1000000)

static void snooze_us(long us) {
  struct timespec ts = {us / 1000000, (us % 1000000) * 1000L};
  nanosleep(&ts, NULL);
}

static hmb_pool_t *pool_with(size_t limit, unsigned flags, size_t cap) {
  hmb_pool_config_t c;
  hmb_pool_config_init(&c);
  c.limit = limit;
  c.flags = flags;
  c.overcommit_cap = cap;
  hmb_pool_t *p = NULL;
  assert_int_equal(hmb_pool_create(&c, &p), 0);
  return p;
}

static void pool_done(hmb_pool_t *p) {
  ts_check(p, HMB_CHECK_QUIESCENT);
  ts_assert_pool_idle(p);
  assert_int_equal(hmb_pool_destroy(p), 0);
}

/* ---- the rotation pattern
 * ---------------------------------------------------- */

typedef struct holder {
  hmb_pool_t *pool;
  size_t estimate, piece;
  int pieces;
  long think_us;
  pthread_barrier_t *barrier;
  int64_t peak_live;
  int rc;
} holder_t;

/* A task that allocates `pieces` buffers one by one, holds them, then closes
 * them and finishes (its buffers do not outlive it). */
static void *holder_main(void *arg) {
  holder_t *h = arg;
  hmb_runner_t *r = ts_runner(h->pool, h->estimate, "holder");
  if (h->barrier)
    pthread_barrier_wait(h->barrier);
  h->rc = hmb_runner_start(r, HMB_WAIT_FOREVER);
  hmb_buffer_t **b = calloc((size_t)h->pieces, sizeof *b);
  for (int i = 0; i < h->pieces && h->rc == 0; i++) {
    h->rc = hmb_runner_alloc(r, h->piece, 0, &b[i]);
    if (h->rc == 0)
      memset(hmb_buffer_data(b[i]), 0x5a, h->piece);
    snooze_us(h->think_us);
  }
  h->peak_live = ts_runner_stats(r).peak_live;
  for (int i = 0; i < h->pieces; i++)
    if (b[i])
      hmb_buffer_close(b[i]);
  free(b);
  hmb_runner_finish(r, 0, NULL);
  hmb_runner_destroy(r);
  return NULL;
}

static void rotation(int n) {
  const size_t limit = MIB, piece = 64 * KIB;
  const int pieces = 64; /* a task's real need: 4 MiB */
  hmb_pool_t *p = pool_with(limit, 0, 0);
  pthread_t t[8];
  holder_t h[8];
  pthread_barrier_t bar;
  pthread_barrier_init(&bar, NULL, (unsigned)n);
  for (int i = 0; i < n; i++) {
    h[i] = (holder_t){p, limit / (size_t)n, piece, pieces, 200, &bar, 0, 0};
    pthread_create(&t[i], NULL, holder_main, &h[i]);
  }
  int64_t need = 0;
  for (int i = 0; i < n; i++) {
    pthread_join(t[i], NULL);
    assert_int_equal(h[i].rc, 0);
    if (h[i].peak_live > need)
      need = h[i].peak_live;
  }
  pthread_barrier_destroy(&bar);
  hmb_pool_stats_t st = ts_pool_stats(p);
  printf("rotation, %d runners: peak held %.2f x limit (limit + one task's "
         "need = %.2f x), peak over %" PRId64 " bytes, %" PRIu64
         " progress runners, %" PRIu64 " borrows beyond the limit\n",
         n, (double)st.peak_held / (double)limit,
         (double)(limit + (size_t)need) / (double)limit, st.peak_overcommitted,
         st.progress_grants, st.borrow_overcommits);
  assert_int_equal(need, (int64_t)(piece * (size_t)pieces));
  /* I3: nothing outlives its task here, so held <= limit + one need. */
  assert_true(st.peak_held <= (int64_t)limit + need);
  assert_true(st.progress_grants >= 1);
  pool_done(p);
}

static void test_rotation_2(void **s) {
  (void)s;
  rotation(2);
}
static void test_rotation_4(void **s) {
  (void)s;
  rotation(4);
}
static void test_rotation_8(void **s) {
  (void)s;
  rotation(8);
}

/* ---- real bytes, never estimates
 * ----------------------------------------------- */

/* A start with nothing running gets what is available (its estimate capped
 * by the limit), becomes the progress runner, and a task whose real need
 * fits never over-commits (I4). */
static void test_idle_start_gets_available_not_estimate(void **s) {
  (void)s;
  const size_t limit = MIB;
  hmb_pool_t *p = pool_with(limit, 0, 0);
  hmb_runner_t *r = ts_runner(p, 2 * limit, "big estimate");
  assert_int_equal(hmb_runner_start(r, 0), 0);
  hmb_runner_stats_t rs = ts_runner_stats(r);
  assert_int_equal(rs.held, (int64_t)limit);
  assert_int_equal(rs.progress, 1);
  hmb_buffer_t *b[4];
  for (int i = 0; i < 4; i++) /* real need 0.4 x limit */
    assert_int_equal(hmb_runner_alloc(r, limit / 10, 0, &b[i]), 0);
  ts_check(p, 0);
  hmb_pool_stats_t st = ts_pool_stats(p);
  printf("idle start: estimate 2 x limit, real need 0.4 x limit: peak held "
         "%.2f x limit, peak over %" PRId64 "\n",
         (double)st.peak_held / (double)limit, st.peak_overcommitted);
  assert_int_equal(st.peak_held, (int64_t)limit);
  assert_int_equal(st.peak_overcommitted, 0);
  assert_int_equal(st.acquire_overcommits, 1); /* granted by R3 */
  assert_int_equal(st.borrow_overcommits, 0);
  assert_int_equal(st.progress_runner, rs.id);
  for (int i = 0; i < 4; i++)
    hmb_buffer_close(b[i]);
  hmb_runner_finish(r, 0, NULL);
  hmb_runner_destroy(r);
  pool_done(p);
}

/* The idle pattern of a real reader: each split starts while nothing runs,
 * finds the budget held by the finished buffers of earlier splits, and
 * over-commits only the bytes it really allocates, one task at a time. */
static void test_idle_start_pattern(void **s) {
  (void)s;
  const size_t limit = MIB, piece = 64 * KIB;
  hmb_pool_t *p = pool_with(limit, 0, 0);
  enum { SPLITS = 4, PIECES = 6 }; /* real need 384 KiB per split */
  hmb_buffer_t *keep[SPLITS][PIECES];
  int64_t stuck = 0;
  for (int k = 0; k < SPLITS; k++) {
    hmb_runner_t *r = ts_runner(p, 4 * limit, "split"); /* estimate 4 MiB */
    assert_int_equal(hmb_runner_start(r, 0), 0);
    for (int i = 0; i < PIECES; i++)
      assert_int_equal(hmb_runner_alloc(r, piece, 0, &keep[k][i]), 0);
    ts_check(p, 0);
    hmb_pool_stats_t st = ts_pool_stats(p);
    /* I3: held <= limit + beyond of stopped runners + this one's need. */
    assert_true(st.held <=
                (int64_t)limit + st.beyond_stopped + (int64_t)(PIECES * piece));
    assert_true(st.beyond_running <= (int64_t)(PIECES * piece));
    hmb_runner_finish(r, 0, NULL); /* the consumer keeps its buffers */
    hmb_runner_destroy(r);
    stuck = ts_pool_stats(p).beyond_stopped;
  }
  hmb_pool_stats_t st = ts_pool_stats(p);
  printf("idle starts, %d splits of estimate 4 x limit and need %zu KiB, "
         "buffers kept: held %.2f x limit, all of it live (%" PRId64
         " beyond, held by finished buffers)\n",
         SPLITS, (size_t)PIECES * piece / KIB, (double)st.held / (double)limit,
         stuck);
  /* Estimates never counted: held is exactly the live bytes. */
  assert_int_equal(st.held, st.live_bytes);
  assert_int_equal(st.held, (int64_t)(SPLITS * PIECES * piece));
  assert_int_equal(st.overcommitted, stuck);
  for (int k = 0; k < SPLITS; k++)
    for (int i = 0; i < PIECES; i++)
      hmb_buffer_close(keep[k][i]);
  pool_done(p);
}

/* ---- one runner beyond the limit at a time
 * ------------------------------------ */

typedef struct sampler {
  hmb_pool_t *pool;
  hmb_runner_t **runners;
  int n;
  _Atomic int stop;
  int max_beyond_running;
  int checks;
} sampler_t;

static void *sampler_main(void *arg) {
  sampler_t *sm = arg;
  while (!atomic_load(&sm->stop)) {
    ts_check(sm->pool, 0); /* I1-I3 and I5 at any instant */
    sm->checks++;
    snooze_us(100);
  }
  return NULL;
}

typedef struct borrower {
  hmb_runner_t *r;
  size_t piece;
  int pieces;
  int rc;
} borrower_t;

static void *borrower_main(void *arg) {
  borrower_t *b = arg;
  hmb_buffer_t *bufs[32];
  int n = 0;
  for (int i = 0; i < b->pieces && b->rc == 0; i++) {
    b->rc = hmb_runner_alloc(b->r, b->piece, 0, &bufs[n]);
    if (b->rc == 0)
      n++;
    snooze_us(300);
  }
  for (int i = 0; i < n; i++)
    hmb_buffer_close(bufs[i]);
  hmb_runner_finish(b->r, 0, NULL);
  return NULL;
}

static void test_one_runner_beyond_the_limit(void **s) {
  (void)s;
  const size_t limit = 512 * KIB;
  hmb_pool_t *p = pool_with(limit, 0, 0);
  enum { N = 3 };
  hmb_runner_t *r[N];
  borrower_t b[N];
  pthread_t t[N], ts;
  for (int i = 0; i < N; i++) {
    r[i] = ts_runner(p, limit / N, "borrower");
    assert_int_equal(hmb_runner_start(r[i], 0), 0);
    b[i] = (borrower_t){r[i], 64 * KIB, 16, 0};
  }
  sampler_t sm = {p, r, N, 0, 0, 0};
  pthread_create(&ts, NULL, sampler_main, &sm);
  for (int i = 0; i < N; i++)
    pthread_create(&t[i], NULL, borrower_main, &b[i]);
  for (int i = 0; i < N; i++) {
    pthread_join(t[i], NULL);
    assert_int_equal(b[i].rc, 0);
  }
  atomic_store(&sm.stop, 1);
  pthread_join(ts, NULL);
  assert_true(sm.checks > 0);
  hmb_pool_stats_t st = ts_pool_stats(p);
  assert_true(st.peak_held <= (int64_t)limit + (int64_t)(16 * 64 * KIB));
  for (int i = 0; i < N; i++)
    hmb_runner_destroy(r[i]);
  pool_done(p);
}

/* R4 picks the waiting runner that holds the most. */
typedef struct alloc_job {
  hmb_runner_t *r;
  size_t bytes;
  hmb_buffer_t *out;
  int rc;
} alloc_job_t;

static void *alloc_main(void *arg) {
  alloc_job_t *j = arg;
  j->rc = hmb_runner_alloc(j->r, j->bytes, 0, &j->out);
  return NULL;
}

static int runner_waits(void *arg) {
  hmb_pool_t *p = arg;
  return ts_pool_stats(p).borrow_waiters >= 1;
}

static void test_progress_runner_holds_the_most(void **s) {
  (void)s;
  const size_t limit = 300 * KIB;
  hmb_pool_t *p = pool_with(limit, 0, 0);
  hmb_runner_t *small = ts_runner(p, 100 * KIB, "small");
  hmb_runner_t *big = ts_runner(p, 200 * KIB, "big");
  assert_int_equal(hmb_runner_start(small, 0), 0);
  assert_int_equal(hmb_runner_start(big, 0), 0);
  alloc_job_t js = {small, 150 * KIB, NULL, -99};
  pthread_t t1, t2;
  pthread_create(&t1, NULL, alloc_main, &js);
  assert_true(ts_wait_for(runner_waits, p, 5000)); /* small waits */
  assert_int_equal(ts_runner_stats(small).progress, 0);
  alloc_job_t jb = {big, 250 * KIB, NULL, -99};
  pthread_create(&t2, NULL, alloc_main, &jb); /* now both wait: R4 */
  pthread_join(t2, NULL);
  assert_int_equal(jb.rc, 0);
  assert_int_equal(ts_runner_stats(big).progress, 1);
  assert_int_equal(ts_runner_stats(small).progress, 0);
  ts_check(p, 0);
  /* small still waits: no other grant goes beyond the limit (R5). */
  assert_int_equal(ts_pool_stats(p).borrow_waiters, 1);
  hmb_buffer_close(jb.out);
  hmb_runner_finish(big, 0, NULL); /* the role passes on: small is served */
  pthread_join(t1, NULL);
  assert_int_equal(js.rc, 0);
  hmb_buffer_close(js.out);
  hmb_runner_finish(small, 0, NULL);
  hmb_runner_destroy(small);
  hmb_runner_destroy(big);
  pool_done(p);
}

/* ---- queue order
 * ---------------------------------------------------------------- */

typedef struct start_job {
  hmb_runner_t *r;
  size_t bytes;
  int64_t timeout;
  int rc;
  _Atomic int done;
} start_job_t;

static void *start_main(void *arg) {
  start_job_t *j = arg;
  j->rc = hmb_runner_start_partial(j->r, j->bytes, j->timeout);
  atomic_store(&j->done, 1);
  return NULL;
}

static int start_waiting(void *arg) {
  return ts_pool_stats(arg).acquire_waiters >= 1;
}

static void test_zero_start_cannot_bypass_a_waiting_start(void **s) {
  (void)s;
  const size_t limit = MIB;
  hmb_pool_t *p = pool_with(limit, 0, 0);
  hmb_runner_t *a = ts_runner(p, limit, "a");
  assert_int_equal(hmb_runner_start(a, 0), 0);
  hmb_runner_t *big = ts_runner(p, limit, "big");
  start_job_t jb = {big, limit, HMB_WAIT_FOREVER, -99, 0};
  pthread_t t;
  pthread_create(&t, NULL, start_main, &jb);
  assert_true(ts_wait_for(start_waiting, p, 5000));
  hmb_runner_t *zero = ts_runner(p, 0, "zero");
  /* R2: the head blocks those behind it, whatever their size. */
  assert_int_equal(hmb_runner_start(zero, 20 * MS), HMB_ETIMEDOUT);
  assert_int_equal(hmb_runner_state(zero), HMB_RUNNER_CREATED);
  hmb_runner_finish(a, 0, NULL);
  pthread_join(t, NULL);
  assert_int_equal(jb.rc, 0);
  hmb_runner_finish(big, 0, NULL);
  assert_int_equal(hmb_runner_start(zero, 0), 0);
  hmb_runner_finish(zero, 0, NULL);
  hmb_runner_destroy(a);
  hmb_runner_destroy(big);
  hmb_runner_destroy(zero);
  pool_done(p);
}

typedef struct stream {
  hmb_pool_t *pool;
  size_t borrow;
  _Atomic int stop;
  _Atomic long started;
} stream_t;

static void *stream_main(void *arg) {
  stream_t *st = arg;
  while (!atomic_load(&st->stop)) {
    hmb_runner_t *r = ts_runner(st->pool, 0, "stream");
    if (hmb_runner_start(r, 2 * MS) == 0) {
      atomic_fetch_add(&st->started, 1);
      hmb_buffer_t *b;
      if (hmb_runner_alloc(r, st->borrow, 0, &b) == 0)
        hmb_buffer_close(b);
      hmb_runner_finish(r, 0, NULL);
    }
    hmb_runner_destroy(r);
  }
  return NULL;
}

static void test_large_start_not_starved_by_zero_starts(void **s) {
  (void)s;
  const size_t limit = MIB;
  hmb_pool_t *p = pool_with(limit, 0, 0);
  hmb_runner_t *a = ts_runner(p, limit / 2, "a");
  assert_int_equal(hmb_runner_start(a, 0), 0);
  hmb_runner_t *big = ts_runner(p, 3 * limit / 4, "big");
  start_job_t jb = {big, 3 * limit / 4, 5000 * MS, -99, 0};
  pthread_t tb, t1, t2;
  pthread_create(&tb, NULL, start_main, &jb);
  assert_true(ts_wait_for(start_waiting, p, 5000));
  stream_t st = {p, limit / 8, 0, 0};
  pthread_create(&t1, NULL, stream_main, &st);
  pthread_create(&t2, NULL, stream_main, &st);
  ts_sleep_ms(50);
  /* Behind the waiting start, none of the small ones got in. */
  assert_int_equal(atomic_load(&st.started), 0);
  hmb_runner_finish(a, 0, NULL);
  pthread_join(tb, NULL);
  assert_int_equal(jb.rc, 0);
  ts_sleep_ms(20);
  hmb_runner_finish(big, 0, NULL);
  ts_sleep_ms(20);
  atomic_store(&st.stop, 1);
  pthread_join(t1, NULL);
  pthread_join(t2, NULL);
  assert_true(atomic_load(&st.started) > 0); /* and they run after it */
  hmb_runner_destroy(a);
  hmb_runner_destroy(big);
  pool_done(p);
}

/* ---- failures change nothing
 * ------------------------------------------------------- */

static void assert_same_budget(const hmb_runner_stats_t *x,
                               const hmb_runner_stats_t *y) {
  assert_int_equal(x->held, y->held);
  assert_int_equal(x->spare, y->spare);
  assert_int_equal(x->live, y->live);
  assert_int_equal(x->beyond, y->beyond);
  assert_int_equal(x->borrowed, y->borrowed);
  assert_int_equal(x->borrows, y->borrows);
  assert_int_equal(x->allocations, y->allocations);
  assert_int_equal(x->returned_early, y->returned_early);
  assert_int_equal(x->wait_ns, y->wait_ns);
  assert_int_equal(x->peak_held, y->peak_held);
}

static void assert_same_pool(const hmb_pool_stats_t *x,
                             const hmb_pool_stats_t *y) {
  assert_int_equal(x->held, y->held);
  assert_int_equal(x->peak_held, y->peak_held);
  assert_int_equal(x->peak_overcommitted, y->peak_overcommitted);
  assert_int_equal(x->borrows, y->borrows);
  assert_int_equal(x->borrow_overcommits, y->borrow_overcommits);
  assert_int_equal(x->overcommitted_total, y->overcommitted_total);
  assert_int_equal(x->released_early, y->released_early);
}

static void test_failed_allocation_changes_nothing(void **s) {
  (void)s;
  ts_failing_backend_t fb;
  ts_failing_backend_init(&fb, 1, 1); /* every physical allocation fails */
  hmb_pool_t *p = ts_pool(MIB, &fb.vtable, NULL);
  hmb_runner_t *r = ts_runner(p, 256 * KIB, "r");
  size_t ret = 1;
  assert_int_equal(hmb_runner_set_need(r, 128 * KIB, &ret), 0);
  assert_int_equal(ret, 0);
  assert_int_equal(hmb_runner_start(r, 0), 0);
  /* Declared before start, the need capped what start acquired. */
  assert_int_equal(ts_runner_stats(r).held, (int64_t)(128 * KIB));
  hmb_runner_stats_t before = ts_runner_stats(r);
  hmb_pool_stats_t pbefore = ts_pool_stats(p);
  hmb_buffer_t *b = (hmb_buffer_t *)1;
  /* Within spare, then with a borrow: both fail physically. */
  assert_int_equal(hmb_runner_alloc(r, 64 * KIB, 0, &b), HMB_ENOMEM);
  assert_null(b);
  assert_int_equal(hmb_runner_alloc(r, 512 * KIB, 0, &b), HMB_ENOMEM);
  hmb_runner_stats_t after = ts_runner_stats(r);
  hmb_pool_stats_t pafter = ts_pool_stats(p);
  assert_same_budget(&before, &after);
  assert_same_pool(&pbefore, &pafter);
  ts_check(p, HMB_CHECK_QUIESCENT);
  hmb_runner_finish(r, 0, NULL);
  hmb_runner_destroy(r);
  pool_done(p);
}

static void test_timed_out_borrow_changes_nothing(void **s) {
  (void)s;
  const size_t limit = MIB;
  hmb_pool_t *p = pool_with(limit, 0, 0);
  hmb_runner_t *other = ts_runner(p, limit / 2, "other");
  assert_int_equal(hmb_runner_start(other, 0), 0);
  hmb_runner_config_t rc;
  hmb_runner_config_init(&rc);
  rc.estimate = limit / 2;
  rc.borrow_timeout_ns = 20 * MS;
  hmb_runner_t *r;
  assert_int_equal(hmb_runner_create(p, &rc, &r), 0);
  assert_int_equal(hmb_runner_set_need(r, limit / 4, NULL), 0);
  assert_int_equal(hmb_runner_start(r, 0), 0);
  assert_int_equal(ts_runner_stats(r).held, (int64_t)(limit / 4));
  hmb_buffer_t *keep;
  assert_int_equal(hmb_runner_alloc(r, limit / 8, 0, &keep), 0);
  hmb_runner_stats_t before = ts_runner_stats(r);
  hmb_pool_stats_t pbefore = ts_pool_stats(p);
  hmb_buffer_t *b;
  /* `other` is running and not waiting: no progress rule applies. */
  assert_int_equal(hmb_runner_alloc(r, limit, 0, &b), HMB_ETIMEDOUT);
  hmb_runner_stats_t after = ts_runner_stats(r);
  assert_same_budget(&before, &after);
  assert_true(after.failed_wait_ns > 0);
  hmb_pool_stats_t pafter = ts_pool_stats(p);
  assert_same_pool(&pbefore, &pafter);
  assert_int_equal(pafter.borrow_timeouts, pbefore.borrow_timeouts + 1);
  ts_check(p, HMB_CHECK_QUIESCENT);
  hmb_buffer_close(keep);
  hmb_runner_finish(r, 0, NULL);
  hmb_runner_finish(other, 0, NULL);
  hmb_runner_destroy(r);
  hmb_runner_destroy(other);
  pool_done(p);
}

typedef struct canceller {
  hmb_pool_t *pool;
  hmb_runner_t *r;
} canceller_t;

static void *cancel_when_waiting(void *arg) {
  canceller_t *c = arg;
  while (ts_pool_stats(c->pool).borrow_waiters == 0)
    snooze_us(200);
  hmb_runner_cancel(c->r);
  return NULL;
}

static void test_cancelled_borrow_changes_nothing(void **s) {
  (void)s;
  const size_t limit = MIB;
  hmb_pool_t *p = pool_with(limit, 0, 0);
  hmb_runner_t *other = ts_runner(p, limit / 2, "other");
  assert_int_equal(hmb_runner_start(other, 0), 0);
  hmb_runner_t *r = ts_runner(p, limit / 2, "r");
  assert_int_equal(hmb_runner_set_need(r, limit / 4, NULL), 0);
  assert_int_equal(hmb_runner_start(r, 0), 0);
  hmb_runner_stats_t before = ts_runner_stats(r);
  hmb_pool_stats_t pbefore = ts_pool_stats(p);
  canceller_t c = {p, r};
  pthread_t t;
  pthread_create(&t, NULL, cancel_when_waiting, &c);
  hmb_buffer_t *b;
  assert_int_equal(hmb_runner_alloc(r, limit, 0, &b), HMB_ECANCELED);
  pthread_join(t, NULL);
  hmb_runner_stats_t after = ts_runner_stats(r);
  assert_same_budget(&before, &after);
  hmb_pool_stats_t pafter = ts_pool_stats(p);
  assert_same_pool(&pbefore, &pafter);
  hmb_runner_finish(r, 0, NULL);
  hmb_runner_finish(other, 0, NULL);
  hmb_runner_destroy(r);
  hmb_runner_destroy(other);
  pool_done(p);
}

static void test_refused_start_changes_nothing(void **s) {
  (void)s;
  hmb_pool_config_t c;
  hmb_pool_config_init(&c);
  c.limit = MIB;
  c.max_request = 2 * MIB;
  hmb_pool_t *p;
  assert_int_equal(hmb_pool_create(&c, &p), 0);
  hmb_runner_t *a = ts_runner(p, MIB, "a");
  assert_int_equal(hmb_runner_start(a, 0), 0);
  hmb_pool_stats_t before = ts_pool_stats(p);
  hmb_runner_t *r = ts_runner(p, MIB, "r");
  assert_int_equal(hmb_runner_start(r, 0), HMB_ETIMEDOUT);
  assert_int_equal(hmb_runner_start_partial(r, 3 * MIB, 0), HMB_ETOOBIG);
  assert_int_equal(hmb_runner_state(r), HMB_RUNNER_CREATED);
  hmb_runner_stats_t rs = ts_runner_stats(r);
  assert_int_equal(rs.held, 0);
  assert_int_equal(rs.wait_ns, 0);
  hmb_pool_stats_t after = ts_pool_stats(p);
  assert_int_equal(after.held, before.held);
  assert_int_equal(after.acquires, before.acquires);
  assert_int_equal(after.acquire_timeouts, before.acquire_timeouts + 1);
  hmb_runner_finish(a, 0, NULL);
  hmb_runner_destroy(a);
  hmb_runner_destroy(r);
  pool_done(p);
}

/* ---- the cap
 * ------------------------------------------------------------------------ */

static void test_cap_zero_never_beyond_the_limit(void **s) {
  (void)s;
  const size_t limit = 256 * KIB;
  hmb_pool_t *p = pool_with(limit, HMB_POOL_CAP_OVERCOMMIT, 0);
  assert_int_equal(ts_pool_stats(p).overcommit_cap, 0);
  hmb_runner_t *r = ts_runner(p, 4 * limit, "r");
  assert_int_equal(hmb_runner_start(r, 0), 0); /* gets the limit */
  hmb_buffer_t *b[4];
  for (int i = 0; i < 4; i++)
    assert_int_equal(hmb_runner_alloc(r, 64 * KIB, 0, &b[i]), 0);
  hmb_runner_stats_t before = ts_runner_stats(r);
  hmb_pool_stats_t pbefore = ts_pool_stats(p);
  hmb_buffer_t *x = NULL;
  /* Alone and running, it would be the progress runner: the cap says no,
   * at once. */
  assert_int_equal(hmb_runner_alloc(r, 1, 0, &x), HMB_ELIMIT);
  assert_null(x);
  hmb_runner_stats_t after = ts_runner_stats(r);
  assert_same_budget(&before, &after);
  hmb_pool_stats_t pafter = ts_pool_stats(p);
  assert_same_pool(&pbefore, &pafter);
  assert_int_equal(pafter.limit_rejects, pbefore.limit_rejects + 1);
  assert_int_equal(pafter.peak_held, (int64_t)limit);
  assert_int_equal(pafter.peak_overcommitted, 0);
  /* Closing one buffer makes room again: not a permanent failure. */
  hmb_buffer_close(b[0]);
  assert_int_equal(hmb_runner_alloc(r, 1, 0, &x), 0);
  hmb_buffer_close(x);
  for (int i = 1; i < 4; i++)
    hmb_buffer_close(b[i]);
  hmb_runner_finish(r, 0, NULL);
  hmb_runner_destroy(r);
  pool_done(p);
}

static void test_cap_bounds_the_overcommit(void **s) {
  (void)s;
  const size_t limit = 256 * KIB, cap = 100 * KIB;
  hmb_pool_t *p = pool_with(limit, HMB_POOL_CAP_OVERCOMMIT, cap);
  hmb_runner_t *r = ts_runner(p, limit, "r");
  assert_int_equal(hmb_runner_start(r, 0), 0);
  hmb_buffer_t *all, *extra, *more = NULL;
  assert_int_equal(hmb_runner_alloc(r, limit, 0, &all), 0);
  assert_int_equal(hmb_runner_alloc(r, 96 * KIB, 0, &extra), 0); /* fits */
  assert_int_equal(hmb_runner_alloc(r, 8 * KIB, 0, &more), HMB_ELIMIT);
  hmb_pool_stats_t st = ts_pool_stats(p);
  assert_int_equal(st.peak_overcommitted, (int64_t)(96 * KIB));
  assert_true(st.peak_overcommitted <= (int64_t)cap);
  ts_check(p, 0);
  hmb_buffer_close(all);
  hmb_buffer_close(extra);
  hmb_runner_finish(r, 0, NULL);
  hmb_runner_destroy(r);
  pool_done(p);
}

/* ---- staged admission
 * ------------------------------------------------------------ */

typedef struct grow_job {
  hmb_runner_t *r;
  size_t bytes;
  int rc;
} grow_job_t;

static void *grow_main(void *arg) {
  grow_job_t *g = arg;
  g->rc = hmb_runner_grow(g->r, g->bytes, HMB_WAIT_FOREVER);
  return NULL;
}

static void test_staged_grow_served_before_new_starts(void **s) {
  (void)s;
  const size_t limit = MIB;
  hmb_pool_t *p = pool_with(limit, 0, 0);
  hmb_runner_t *x = ts_runner(p, limit / 2, "x");
  assert_int_equal(hmb_runner_start(x, 0), 0);
  hmb_runner_t *a = ts_runner(p, 4 * limit, "staged");
  assert_int_equal(hmb_runner_start_partial(a, 64 * KIB, 0), 0);
  assert_int_equal(ts_runner_stats(a).held, (int64_t)(64 * KIB));
  /* B waits: it does not fit beside x and a. */
  hmb_runner_t *b = ts_runner(p, limit / 2, "b");
  start_job_t jb = {b, limit / 2, HMB_WAIT_FOREVER, -99, 0};
  pthread_t tb, tg;
  pthread_create(&tb, NULL, start_main, &jb);
  assert_true(ts_wait_for(start_waiting, p, 5000));
  /* A grows to its real need; it waits too (no room), as a borrow. */
  grow_job_t g = {a, limit / 2 - 64 * KIB + 128 * KIB, -99};
  pthread_create(&tg, NULL, grow_main, &g);
  assert_true(ts_wait_for(runner_waits, p, 5000));
  /* x gives back part of its budget: it goes to the grow, not the start. */
  size_t ret = 0;
  assert_int_equal(hmb_runner_try_free(x, limit / 2, &ret), 0);
  pthread_join(tg, NULL);
  assert_int_equal(g.rc, 0);
  assert_int_equal(ts_runner_stats(a).held, (int64_t)g.bytes);
  assert_int_equal(atomic_load(&jb.done), 0); /* still waiting */
  hmb_runner_finish(a, 0, NULL);
  pthread_join(tb, NULL);
  assert_int_equal(jb.rc, 0);
  hmb_runner_finish(b, 0, NULL);
  hmb_runner_finish(x, 0, NULL);
  hmb_runner_destroy(a);
  hmb_runner_destroy(b);
  hmb_runner_destroy(x);
  pool_done(p);
}

static void test_progress_grow_gets_only_what_is_available(void **s) {
  (void)s;
  const size_t limit = MIB;
  hmb_pool_t *p = pool_with(limit, 0, 0);
  hmb_runner_t *r = ts_runner(p, limit, "r");
  assert_int_equal(hmb_runner_start(r, 0), 0);
  /* Alone: it is the progress runner once it waits; a grow is not a real
   * allocation, so it is granted only what is available (I4). */
  assert_int_equal(hmb_runner_grow(r, 3 * limit, HMB_WAIT_FOREVER), 0);
  hmb_runner_stats_t rs = ts_runner_stats(r);
  assert_int_equal(rs.held, (int64_t)limit);
  assert_int_equal(rs.beyond, 0);
  assert_int_equal(ts_pool_stats(p).peak_overcommitted, 0);
  assert_int_equal(hmb_runner_grow(r, limit / 2, 0), 0); /* holds it already */
  hmb_runner_finish(r, 0, NULL);
  assert_int_equal(hmb_runner_grow(r, limit, 0), HMB_ESTATE);
  hmb_runner_destroy(r);
  pool_done(p);
}

/* ---- pressure
 * ---------------------------------------------------------------------- */

typedef struct join_side {
  hmb_buffer_t *kept[32];
  int nkept;
  int calls, wait_calls;
  size_t last_wanted;
} join_side_t;

/* The holder of a join's finished build side: on pressure, close enough of
 * its buffers to cover what is wanted. */
static void release_on_pressure(void *user, hmb_pool_t *pool,
                                const hmb_pressure_t *ev) {
  (void)pool;
  join_side_t *j = user;
  j->calls++;
  if (ev->kind == HMB_PRESSURE_WAIT)
    j->wait_calls++;
  j->last_wanted = ev->wanted;
  size_t freed = 0;
  while (freed < ev->wanted && j->nkept > 0) {
    hmb_buffer_t *b = j->kept[--j->nkept];
    freed += hmb_buffer_size(b);
    hmb_buffer_close(b);
  }
}

static void test_pressure_lets_a_join_proceed_without_overcommit(void **s) {
  (void)s;
  const size_t limit = MIB, piece = 64 * KIB;
  hmb_pool_t *p = pool_with(limit, 0, 0);
  join_side_t j;
  memset(&j, 0, sizeof j);
  /* The build side fills the budget, finishes, and its buffers stay with
   * the consumer. */
  hmb_runner_t *build = ts_runner(p, limit, "build");
  assert_int_equal(hmb_runner_start(build, 0), 0);
  for (int i = 0; i < 16; i++)
    assert_int_equal(hmb_runner_alloc(build, piece, 0, &j.kept[j.nkept++]), 0);
  hmb_runner_finish(build, 0, NULL);
  hmb_runner_destroy(build);
  int id = 0;
  assert_int_equal(
      hmb_pool_add_pressure_handler(p, release_on_pressure, &j, &id), 0);
  assert_true(id > 0);
  /* The probe side starts with nothing available and allocates: before
   * each borrow beyond the limit the handler runs, frees a build buffer,
   * and the borrow is served within the limit. */
  hmb_runner_t *probe = ts_runner(p, 4 * piece, "probe");
  assert_int_equal(hmb_runner_start(probe, 0), 0);
  assert_int_equal(ts_runner_stats(probe).held, 0);
  hmb_buffer_t *pb[4];
  for (int i = 0; i < 4; i++) {
    assert_int_equal(hmb_runner_alloc(probe, piece, 0, &pb[i]), 0);
    ts_check(p, 0);
  }
  hmb_pool_stats_t st = ts_pool_stats(p);
  printf("join: probe side allocated %zu KiB at a full pool; the build side "
         "released on %d pressure calls; over-commit %" PRId64 "\n",
         4 * piece / KIB, j.calls, st.peak_overcommitted);
  assert_int_equal(j.calls, 4);
  assert_int_equal(j.last_wanted, piece);
  assert_int_equal(j.nkept, 12);
  assert_int_equal(st.borrow_overcommits, 0);
  assert_int_equal(st.peak_overcommitted, 0);
  assert_int_equal(st.pressure_calls, 4);
  assert_int_equal(hmb_pool_remove_pressure_handler(p, id), 0);
  assert_int_equal(hmb_pool_remove_pressure_handler(p, id), HMB_EINVAL);
  /* Without a handler the same allocation goes beyond, as the progress
   * runner may. */
  hmb_buffer_t *over;
  assert_int_equal(hmb_runner_alloc(probe, limit, 0, &over), 0);
  assert_true(ts_pool_stats(p).borrow_overcommits == 1);
  hmb_buffer_close(over);
  for (int i = 0; i < 4; i++)
    hmb_buffer_close(pb[i]);
  while (j.nkept)
    hmb_buffer_close(j.kept[--j.nkept]);
  hmb_runner_finish(probe, 0, NULL);
  hmb_runner_destroy(probe);
  pool_done(p);
}

/* A pressure handler closes the progress runner's own buffers while its
 * borrow waits, then the allocation fails: what the closes left beyond the
 * limit with nothing live goes back too (I3 at rest: beyond <= live). */
static void test_failed_borrow_after_pressure_closes_returns_beyond(void **s) {
  (void)s;
  const size_t limit = MIB, extra = 64 * KIB;
  ts_failing_backend_t fb;
  ts_failing_backend_init(&fb, 0, 0);
  hmb_pool_t *p = ts_pool(limit, &fb.vtable, NULL);
  hmb_runner_t *r = ts_runner(p, limit, "scan");
  assert_int_equal(hmb_runner_start(r, 0), 0);
  join_side_t j;
  memset(&j, 0, sizeof j);
  assert_int_equal(hmb_runner_alloc(r, limit, 0, &j.kept[j.nkept++]), 0);
  assert_int_equal(hmb_runner_alloc(r, extra, 0, &j.kept[j.nkept++]), 0);
  hmb_runner_stats_t rs = ts_runner_stats(r);
  assert_true(rs.progress);
  assert_int_equal(rs.beyond, (int64_t)extra);
  int id = 0;
  assert_int_equal(
      hmb_pool_add_pressure_handler(p, release_on_pressure, &j, &id), 0);
  /* limit + extra / 2: the handler closes both buffers, the request takes
   * all but extra / 2 of the freed spare, the close gives that back; then
   * the physical allocation fails. */
  fb.fail_at = fb.calls + 1;
  hmb_buffer_t *b = NULL;
  assert_int_equal(hmb_runner_alloc(r, limit + extra / 2, 0, &b), HMB_ENOMEM);
  assert_null(b);
  assert_int_equal(j.nkept, 0);
  rs = ts_runner_stats(r);
  hmb_pool_stats_t st = ts_pool_stats(p);
  printf("after the failed borrow: runner held %" PRId64 " beyond %" PRId64
         " live %" PRId64 "; pool over-committed %" PRId64 "\n",
         rs.held, rs.beyond, rs.live, st.overcommitted);
  assert_int_equal(rs.live, 0);
  assert_int_equal(rs.beyond, 0);
  assert_int_equal(st.overcommitted, 0);
  assert_int_equal(st.beyond_running, 0);
  assert_int_equal(rs.held, (int64_t)limit); /* what it was admitted with */
  ts_check(p, HMB_CHECK_QUIESCENT);
  assert_int_equal(hmb_pool_remove_pressure_handler(p, id), 0);
  hmb_runner_finish(r, 0, NULL);
  hmb_runner_destroy(r);
  pool_done(p);
}

static void test_pressure_after_a_long_wait(void **s) {
  (void)s;
  const size_t limit = MIB;
  hmb_pool_config_t c;
  hmb_pool_config_init(&c);
  c.limit = limit;
  c.pressure_wait_ns = 20 * MS;
  hmb_pool_t *p;
  assert_int_equal(hmb_pool_create(&c, &p), 0);
  join_side_t j;
  memset(&j, 0, sizeof j);
  hmb_runner_t *a = ts_runner(p, limit, "a");
  assert_int_equal(hmb_runner_start(a, 0), 0);
  for (int i = 0; i < 4; i++)
    assert_int_equal(hmb_runner_alloc(a, limit / 4, 0, &j.kept[j.nkept++]), 0);
  assert_int_equal(
      hmb_pool_add_pressure_handler(p, release_on_pressure, &j, NULL), 0);
  hmb_runner_finish(a, 0, NULL);
  hmb_runner_destroy(a);
  /* Something runs (so R3 does not apply) and holds nothing. */
  hmb_runner_t *idle = ts_runner(p, 0, "idle");
  assert_int_equal(hmb_runner_start(idle, 0), 0);
  hmb_runner_t *b = ts_runner(p, limit / 2, "b");
  assert_int_equal(hmb_runner_start(b, 2000 * MS), 0);
  assert_int_equal(j.wait_calls, 1);
  assert_int_equal(j.last_wanted, limit / 2);
  assert_int_equal(j.nkept, 2);
  hmb_runner_finish(b, 0, NULL);
  hmb_runner_finish(idle, 0, NULL);
  hmb_runner_destroy(b);
  hmb_runner_destroy(idle);
  while (j.nkept)
    hmb_buffer_close(j.kept[--j.nkept]);
  pool_done(p);
}

/* ---- the limit at run time
 * ------------------------------------------------------------- */

static void test_set_limit_grow_and_shrink(void **s) {
  (void)s;
  const size_t limit = MIB;
  hmb_pool_t *p = pool_with(limit, 0, 0);
  hmb_runner_t *a = ts_runner(p, limit, "a");
  assert_int_equal(hmb_runner_start(a, 0), 0);
  hmb_runner_t *b = ts_runner(p, limit, "b");
  start_job_t jb = {b, limit, HMB_WAIT_FOREVER, -99, 0};
  pthread_t t;
  pthread_create(&t, NULL, start_main, &jb);
  assert_true(ts_wait_for(start_waiting, p, 5000));
  assert_int_equal(hmb_pool_set_limit(p, 2 * limit), 0); /* admits b */
  pthread_join(t, NULL);
  assert_int_equal(jb.rc, 0);
  assert_int_equal(hmb_pool_limit(p), 2 * limit);
  /* Shrink below what is held: nothing fails, nothing is taken away. */
  assert_int_equal(hmb_pool_set_limit(p, limit / 2), 0);
  hmb_pool_stats_t st = ts_pool_stats(p);
  assert_int_equal(st.limit, (int64_t)(limit / 2));
  assert_int_equal(st.held, (int64_t)(2 * limit));
  assert_int_equal(st.limit_changes, 2);
  ts_check(p, 0);
  /* Later grants respect the new limit: c waits until enough came back. */
  hmb_runner_t *c = ts_runner(p, limit / 4, "c");
  assert_int_equal(hmb_runner_start(c, 10 * MS), HMB_ETIMEDOUT);
  hmb_runner_finish(a, 0, NULL);
  assert_int_equal(hmb_runner_start(c, 10 * MS), HMB_ETIMEDOUT);
  hmb_runner_finish(b, 0, NULL);
  assert_int_equal(hmb_runner_start(c, 0), 0);
  hmb_runner_finish(c, 0, NULL);
  assert_int_equal(hmb_pool_set_limit(p, 0), HMB_EINVAL);
  hmb_runner_destroy(a);
  hmb_runner_destroy(b);
  hmb_runner_destroy(c);
  pool_done(p);
}

/* ---- wait hooks and quiet waiting
 * -------------------------------------------------------- */

typedef struct hook_log {
  _Atomic int begins, ends;
  int last_result;
  int last_request;
} hook_log_t;

static void hook(void *user, const hmb_wait_event_t *ev) {
  hook_log_t *h = user;
  if (ev->phase == HMB_WAIT_BEGIN) {
    atomic_fetch_add(&h->begins, 1);
  } else {
    h->last_result = ev->result;
    h->last_request = ev->request;
    atomic_fetch_add(&h->ends, 1);
  }
}

static void test_wait_hooks_and_zero_timeouts(void **s) {
  (void)s;
  hook_log_t h;
  memset(&h, 0, sizeof h);
  ts_log_t log;
  memset(&log, 0, sizeof log);
  hmb_pool_config_t c;
  hmb_pool_config_init(&c);
  c.limit = MIB;
  c.wait_hook = hook;
  c.wait_hook_user = &h;
  c.log_fn = ts_log_capture;
  c.log_user = &log;
  c.log_level = HMB_LOG_WARN;
  hmb_pool_t *p;
  assert_int_equal(hmb_pool_create(&c, &p), 0);
  hmb_runner_t *a = ts_runner(p, MIB, "a");
  assert_int_equal(hmb_runner_start(a, 0), 0);
  hmb_runner_t *b = ts_runner(p, MIB, "b");
  /* A start with timeout 0 that cannot be granted does not sleep: no wait
   * begins. */
  for (int i = 0; i < 100; i++)
    assert_int_equal(hmb_runner_start(b, 0), HMB_ETIMEDOUT);
  assert_int_equal(atomic_load(&h.begins), 0);
  /* A start that times out is the normal retry path: no warning. */
  assert_int_equal(hmb_runner_start(b, 5 * MS), HMB_ETIMEDOUT);
  assert_int_equal(atomic_load(&h.begins), 1);
  assert_int_equal(atomic_load(&h.ends), 1);
  assert_int_equal(h.last_result, HMB_ETIMEDOUT);
  assert_int_equal(h.last_request, HMB_REQUEST_START);
  assert_int_equal(log.count, 0);
  start_job_t jb = {b, MIB, HMB_WAIT_FOREVER, -99, 0};
  pthread_t t;
  pthread_create(&t, NULL, start_main, &jb);
  assert_true(ts_wait_for(start_waiting, p, 5000));
  hmb_runner_finish(a, 0, NULL);
  pthread_join(t, NULL);
  assert_int_equal(jb.rc, 0);
  assert_int_equal(atomic_load(&h.begins), 2);
  assert_int_equal(atomic_load(&h.ends), 2);
  assert_int_equal(h.last_result, 0);
  hmb_runner_finish(b, 0, NULL);
  hmb_runner_destroy(a);
  hmb_runner_destroy(b);
  pool_done(p);
}

/* Several threads of one runner waiting count as one borrow waiter. */
static void test_borrow_waiters_count_runners(void **s) {
  (void)s;
  const size_t limit = MIB;
  hmb_pool_t *p = pool_with(limit, 0, 0);
  hmb_runner_t *other = ts_runner(p, limit / 2, "other");
  assert_int_equal(hmb_runner_start(other, 0), 0);
  hmb_runner_t *r = ts_runner(p, limit / 2, "r");
  assert_int_equal(hmb_runner_start(r, 0), 0);
  alloc_job_t j1 = {r, limit, NULL, -99}, j2 = {r, limit, NULL, -99};
  pthread_t t1, t2;
  pthread_create(&t1, NULL, alloc_main, &j1);
  pthread_create(&t2, NULL, alloc_main, &j2);
  while (ts_runner_stats(r).spare != 0 || ts_pool_stats(p).borrow_waiters < 1)
    snooze_us(200);
  ts_sleep_ms(20);
  assert_int_equal(ts_pool_stats(p).borrow_waiters, 1);
  hmb_runner_cancel(r);
  pthread_join(t1, NULL);
  pthread_join(t2, NULL);
  assert_int_equal(j1.rc, HMB_ECANCELED);
  assert_int_equal(j2.rc, HMB_ECANCELED);
  hmb_runner_finish(r, 0, NULL);
  hmb_runner_finish(other, 0, NULL);
  hmb_runner_destroy(r);
  hmb_runner_destroy(other);
  pool_done(p);
}

/* ---- describe
 * ------------------------------------------------------------------------------
 */

static void test_describe_lists_the_top_holders(void **s) {
  (void)s;
  enum { N = 2000 };
  hmb_pool_t *p = pool_with((size_t)N * N * 8, 0, 0);
  hmb_runner_t **r = calloc(N, sizeof *r);
  for (int i = 0; i < N; i++) {
    char name[16];
    snprintf(name, sizeof name, "r%d", i);
    /* holdings in a shuffled order: i * 7919 mod N */
    r[i] = ts_runner(p, (size_t)((i * 7919) % N + 1) * 8, name);
    assert_int_equal(hmb_runner_start(r[i], 0), 0);
  }
  char d[4096];
  int n = hmb_pool_describe(p, 3, d, sizeof d);
  assert_true(n > 0);
  /* The three largest: estimates N*8, (N-1)*8, (N-2)*8. */
  char want[64];
  for (int k = 0; k < 3; k++) {
    snprintf(want, sizeof want, "held %d ", (N - k) * 8);
    assert_non_null(strstr(d, want));
  }
  /* ... largest first. */
  snprintf(want, sizeof want, "held %d ", N * 8);
  const char *first = strstr(d, want);
  snprintf(want, sizeof want, "held %d ", (N - 1) * 8);
  assert_true(first < strstr(d, want));
  for (int i = 0; i < N; i++) {
    hmb_runner_finish(r[i], 0, NULL);
    hmb_runner_destroy(r[i]);
  }
  free(r);
  pool_done(p);
}

/* ---- the 0.1 admission tests, on the 0.2 rules ------------------------- */

/* A thread that runs one blocking call on a runner. */
typedef struct op {
  pthread_t th;
  hmb_runner_t *runner;
  int kind; /* 0: start, 1: allocate `bytes` */
  size_t bytes;
  int64_t timeout_ns;
  int rc;
  hmb_buffer_t *buf;
  atomic_int done;
  int *order; /* optional: append runner tag here when granted */
  int tag;
  pthread_mutex_t *order_mu;
  int *order_n;
  int finish_after; /* finish the runner right after start succeeds */
} op_t;

static void *op_main(void *arg) {
  op_t *op = arg;
  if (op->kind == 0) {
    op->rc = hmb_runner_start(op->runner, op->timeout_ns);
    if (op->rc == HMB_OK && op->order) {
      pthread_mutex_lock(op->order_mu);
      op->order[(*op->order_n)++] = op->tag;
      pthread_mutex_unlock(op->order_mu);
    }
    if (op->rc == HMB_OK && op->finish_after)
      hmb_runner_finish(op->runner, 0, NULL);
  } else {
    op->rc = hmb_runner_alloc(op->runner, op->bytes, 0, &op->buf);
  }
  atomic_store(&op->done, 1);
  return NULL;
}

static void op_run(op_t *op, hmb_runner_t *r, int kind, size_t bytes,
                   int64_t timeout_ns) {
  op->runner = r;
  op->kind = kind;
  op->bytes = bytes;
  op->timeout_ns = timeout_ns;
  atomic_init(&op->done, 0);
  assert_int_equal(pthread_create(&op->th, NULL, op_main, op), 0);
}

static void op_join(op_t *op) {
  pthread_join(op->th, NULL);
}

typedef struct waitcond {
  hmb_pool_t *pool;
  int acq, bor;
} waitcond_t;

static int waiters_are(void *arg) {
  waitcond_t *w = arg;
  hmb_pool_stats_t st = ts_pool_stats(w->pool);
  return st.acquire_waiters == w->acq && st.borrow_waiters == w->bor;
}

/* Block until the pool shows exactly `acq` start and `bor` borrow waiters. */
static void await_waiters(hmb_pool_t *pool, int acq, int bor) {
  waitcond_t w = {pool, acq, bor};
  assert_true(ts_wait_for(waiters_are, &w, 20000));
}

/* R3: with nothing running a start gets what is available, not its whole
 * estimate (0.1 granted the estimate, 4x the limit here), and its runner is
 * the progress runner; a second start then waits. */
static void test_idle_start_is_capped_at_the_limit(void **s) {
  (void)s;
  ts_log_t log = {0};
  hmb_pool_t *pool = ts_pool(1000, NULL, &log);
  hmb_runner_t *big = ts_runner(pool, 5000, NULL);
  assert_int_equal(hmb_runner_start(big, 0), HMB_OK); /* nothing running */
  hmb_pool_stats_t st = ts_pool_stats(pool);
  assert_int_equal(st.held, 1000);
  assert_int_equal(st.available, 0);
  assert_int_equal(st.overcommitted, 0);
  assert_int_equal(st.peak_overcommitted, 0);
  assert_int_equal(st.acquire_overcommits, 1);
  assert_int_equal(st.overcommitted_total, 0);
  assert_int_equal(st.progress_runner, ts_runner_stats(big).id);
  assert_int_equal(ts_runner_stats(big).progress, 1);
  assert_true(ts_log_contains(&log, "is now the progress runner (no runner "
                                    "was running)"));
  /* Its later borrows are granted at once, beyond the limit. */
  hmb_buffer_t *b = NULL;
  assert_int_equal(hmb_runner_alloc(big, 4000, 0, &b), HMB_OK);
  st = ts_pool_stats(pool);
  assert_int_equal(st.held, 4000);
  assert_int_equal(st.overcommitted, 3000);
  assert_int_equal(st.beyond_running, 3000);
  assert_int_equal(st.borrow_overcommits, 1);
  assert_int_equal(st.overcommitted_total, 3000);
  ts_check(pool, 0);
  /* Someone is running now: a second request must wait (here: not wait). */
  hmb_runner_t *small = ts_runner(pool, 10, NULL);
  assert_int_equal(hmb_runner_start(small, 0), HMB_ETIMEDOUT);
  assert_int_equal(hmb_runner_state(small), HMB_RUNNER_CREATED);
  /* The close gives the 3000 beyond the limit back at once (I3: the
   * progress runner holds beyond the limit only what is live); finish then
   * returns the rest of its spare. */
  hmb_buffer_close(b);
  st = ts_pool_stats(pool);
  assert_int_equal(st.held, 1000);
  assert_int_equal(st.overcommitted, 0);
  assert_int_equal(st.beyond_running, 0);
  size_t ret = 0;
  assert_int_equal(hmb_runner_finish(big, 0, &ret), HMB_OK);
  assert_int_equal(ret, 1000);
  assert_int_equal(hmb_runner_start(small, 0), HMB_OK);
  st = ts_pool_stats(pool);
  assert_int_equal(st.held, 10);
  assert_int_equal(st.overcommitted, 0);
  hmb_runner_destroy(small);
  hmb_runner_destroy(big);
  pool_done(pool);
}

/* R3 with finished buffers holding the budget: a waiting start is admitted
 * the moment the last runner stops, with what is left (200 of its 900). */
static void test_prompt_wakeup_when_last_runner_stops(void **s) {
  (void)s;
  hmb_pool_t *pool = ts_pool(1000, NULL, NULL);
  hmb_runner_t *r1 = ts_runner(pool, 800, NULL);
  assert_int_equal(hmb_runner_start(r1, 0), HMB_OK);
  hmb_buffer_t *kept = NULL;
  assert_int_equal(hmb_runner_alloc(r1, 800, 0, &kept), HMB_OK);
  hmb_runner_t *r2 = ts_runner(pool, 900, NULL);
  op_t op = {0};
  op_run(&op, r2, 0, 0, HMB_WAIT_FOREVER); /* only a wake-up can end it */
  await_waiters(pool, 1, 0);
  assert_int_equal(hmb_runner_state(r2), HMB_RUNNER_WAITING);
  /* r1 stops running; its buffer (800) stays live with a consumer. */
  assert_int_equal(hmb_runner_finish(r1, 0, NULL), HMB_OK);
  op_join(&op);
  assert_int_equal(op.rc, HMB_OK);
  assert_int_equal(hmb_runner_state(r2), HMB_RUNNER_RUNNING);
  hmb_pool_stats_t st = ts_pool_stats(pool);
  assert_int_equal(ts_runner_stats(r2).held, 200);
  assert_int_equal(st.held, 1000);
  assert_int_equal(st.overcommitted, 0);
  assert_int_equal(st.acquire_overcommits, 1);
  assert_int_equal(st.progress_runner, ts_runner_stats(r2).id);
  hmb_buffer_close(kept);
  hmb_runner_destroy(r1);
  hmb_runner_destroy(r2);
  pool_done(pool);
}

/* R1: a waiting borrow is served before a waiting start, even when the
 * start would fit and the borrow does not. */
static void test_borrowers_before_acquirers(void **s) {
  (void)s;
  hmb_pool_t *pool = ts_pool(1000, NULL, NULL);
  hmb_runner_t *r1 = ts_runner(pool, 600, NULL);
  hmb_runner_t *r2 = ts_runner(pool, 300, NULL);
  assert_int_equal(hmb_runner_start(r1, 0), HMB_OK);
  assert_int_equal(hmb_runner_start(r2, 0), HMB_OK); /* available: 100 */
  /* An acquirer arrives first and waits for 150 (highest priority). */
  hmb_runner_t *r3 = ts_runner_prio(pool, 150, 100, NULL);
  op_t acq = {0};
  op_run(&acq, r3, 0, 0, HMB_WAIT_FOREVER);
  await_waiters(pool, 1, 0);
  /* Then a running runner needs 250 more than it holds. */
  op_t bor = {0};
  op_run(&bor, r1, 1, 850, HMB_WAIT_FOREVER);
  await_waiters(pool, 1, 1);
  /* 200 free: enough for the acquirer, not for the borrower. The borrower
   * is first, so nobody is served (grants are decided inside try-free). */
  size_t ret = 0;
  assert_int_equal(hmb_runner_try_free(r2, 100, &ret), HMB_OK);
  assert_int_equal(ret, 100);
  hmb_pool_stats_t st = ts_pool_stats(pool);
  assert_int_equal(st.acquire_waiters, 1);
  assert_int_equal(st.borrow_waiters, 1);
  assert_int_equal(st.held, 800);
  /* 300 free: the borrower takes its 250; the acquirer still waits. */
  assert_int_equal(hmb_runner_try_free(r2, 100, &ret), HMB_OK);
  op_join(&bor);
  assert_int_equal(bor.rc, HMB_OK);
  hmb_runner_stats_t rs = ts_runner_stats(r1);
  assert_int_equal(rs.held, 850);
  assert_int_equal(rs.borrowed, 250);
  assert_int_equal(rs.live, 850);
  st = ts_pool_stats(pool);
  assert_int_equal(st.acquire_waiters, 1);
  assert_int_equal(st.borrow_waiters, 0);
  assert_int_equal(atomic_load(&acq.done), 0);
  /* The rest of r2's budget admits the acquirer. */
  assert_int_equal(hmb_runner_try_free(r2, SIZE_MAX, &ret), HMB_OK);
  assert_int_equal(ret, 100);
  op_join(&acq);
  assert_int_equal(acq.rc, HMB_OK);
  st = ts_pool_stats(pool);
  assert_int_equal(st.held, 1000);
  assert_int_equal(st.overcommitted, 0);
  assert_int_equal(st.borrows, 1);
  assert_int_equal(st.borrow_waits, 1);
  assert_int_equal(st.released_early, 300);
  assert_int_equal(st.progress_grants, 0);
  hmb_buffer_close(bor.buf);
  hmb_runner_destroy(r1);
  hmb_runner_destroy(r2);
  hmb_runner_destroy(r3);
  pool_done(pool);
}

/* R4 and R5: when every running runner waits to borrow, one of them (the
 * one holding the most; the first on a tie) becomes the progress runner and
 * only its borrows go beyond the limit; the other waits for budget. */
static void test_all_borrowers_rule(void **s) {
  (void)s;
  ts_log_t log = {0};
  hmb_pool_t *pool = ts_pool(1000, NULL, &log);
  hmb_runner_t *r1 = ts_runner(pool, 500, NULL);
  hmb_runner_t *r2 = ts_runner(pool, 500, NULL);
  assert_int_equal(hmb_runner_start(r1, 0), HMB_OK);
  assert_int_equal(hmb_runner_start(r2, 0), HMB_OK);
  op_t b1 = {0}, b2 = {0};
  op_run(&b1, r1, 1, 700, HMB_WAIT_FOREVER); /* deficit 200: waits */
  await_waiters(pool, 0, 1);
  assert_int_equal(atomic_load(&b1.done), 0);
  /* Now every running runner waits to borrow: the first one proceeds. */
  op_run(&b2, r2, 1, 600, HMB_WAIT_FOREVER);
  op_join(&b1);
  assert_int_equal(b1.rc, HMB_OK);
  await_waiters(pool, 0, 1); /* r2 still waits: r1 alone may go beyond */
  hmb_pool_stats_t st = ts_pool_stats(pool);
  assert_int_equal(st.borrow_overcommits, 1);
  assert_int_equal(st.held, 1200);
  assert_int_equal(st.overcommitted, 200);
  assert_int_equal(st.progress_runner, ts_runner_stats(r1).id);
  assert_int_equal(st.progress_grants, 1);
  char want[160];
  snprintf(want, sizeof want,
           "runner #%llu '' is now the progress runner (every running runner "
           "waited to borrow)",
           (unsigned long long)ts_runner_stats(r1).id);
  assert_true(ts_log_contains(&log, want));
  ts_check(pool, 0);
  /* r1 finishes and its buffer closes: r2 gets its 100 within the limit. */
  hmb_buffer_close(b1.buf);
  assert_int_equal(hmb_runner_finish(r1, 0, NULL), HMB_OK);
  op_join(&b2);
  assert_int_equal(b2.rc, HMB_OK);
  st = ts_pool_stats(pool);
  assert_int_equal(st.held, 600);
  assert_int_equal(st.borrow_overcommits, 1);
  assert_int_equal(st.peak_overcommitted, 200);
  /* A lone running runner becomes the progress runner when it waits. */
  hmb_buffer_t *huge = NULL;
  assert_int_equal(hmb_runner_alloc(r2, 5000, 0, &huge), HMB_OK);
  st = ts_pool_stats(pool);
  assert_int_equal(st.borrow_overcommits, 2);
  assert_int_equal(st.held, 5600);
  assert_int_equal(st.progress_runner, ts_runner_stats(r2).id);
  hmb_buffer_close(huge);
  hmb_buffer_close(b2.buf);
  hmb_runner_destroy(r1);
  hmb_runner_destroy(r2);
  pool_done(pool);
}

/* A timed-out start or borrow takes nothing; a start timeout is the normal
 * retry path and is logged at DEBUG, without the pool description. */
static void test_timeout_leaves_nothing_taken(void **s) {
  (void)s;
  ts_log_t log = {0};
  hmb_pool_t *pool = ts_pool(1000, NULL, &log);
  hmb_runner_t *r1 = ts_runner(pool, 900, NULL);
  assert_int_equal(hmb_runner_start(r1, 0), HMB_OK);
  hmb_runner_t *r2 = ts_runner(pool, 200, NULL);
  assert_int_equal(hmb_runner_start(r2, 20 * MS), HMB_ETIMEDOUT);
  hmb_pool_stats_t st = ts_pool_stats(pool);
  assert_int_equal(st.held, 900);
  assert_int_equal(st.acquire_waiters, 0);
  assert_int_equal(st.acquire_timeouts, 1);
  assert_int_equal(hmb_runner_state(r2), HMB_RUNNER_CREATED);
  hmb_runner_stats_t rs = ts_runner_stats(r2);
  assert_int_equal(rs.held, 0);
  assert_int_equal(rs.wait_ns, 0);
  assert_true(rs.failed_wait_ns > 0);
  char want[128];
  snprintf(want, sizeof want,
           "timeout: runner #%llu '' could not start 200 bytes within 20000 us",
           (unsigned long long)rs.id);
  assert_true(ts_log_contains(&log, want));
  assert_int_equal(log.last_level, HMB_LOG_DEBUG);
  assert_false(ts_log_contains(&log, "held 900 of limit"));
  /* Borrow timeout: r3 runs beside r1 and cannot borrow 150 more. */
  hmb_runner_config_t rc;
  hmb_runner_config_init(&rc);
  rc.estimate = 100;
  rc.borrow_timeout_ns = 20 * MS;
  hmb_runner_t *r3 = NULL;
  assert_int_equal(hmb_runner_create(pool, &rc, &r3), HMB_OK);
  assert_int_equal(hmb_runner_start(r3, 0), HMB_OK);
  hmb_buffer_t *b = NULL;
  assert_int_equal(hmb_runner_alloc(r3, 250, 0, &b), HMB_ETIMEDOUT);
  assert_null(b);
  rs = ts_runner_stats(r3);
  assert_int_equal(rs.held, 100); /* kept what it held */
  assert_int_equal(rs.spare, 100);
  assert_int_equal(rs.live, 0);
  assert_int_equal(rs.borrowed, 0);
  st = ts_pool_stats(pool);
  assert_int_equal(st.held, 1000);
  assert_int_equal(st.borrow_timeouts, 1);
  assert_int_equal(st.borrow_waiters, 0);
  /* and the budget it kept is still usable on the fast path */
  assert_int_equal(hmb_runner_alloc(r3, 100, 0, &b), HMB_OK);
  hmb_buffer_close(b);
  /* A timed-out start can be retried and succeeds once budget frees. */
  hmb_runner_destroy(r1);
  assert_int_equal(hmb_runner_start(r2, 0), HMB_OK);
  hmb_runner_destroy(r2);
  hmb_runner_destroy(r3);
  pool_done(pool);
}

static int no_borrower_waits(void *arg) {
  return ts_pool_stats(arg).borrow_waiters == 0;
}

static int two_borrowers_wait(void *arg) {
  return ts_pool_stats(arg).borrow_waiters >= 2;
}

/* R1: borrows (and grows) are served by their runner's priority, then
 * arrival: a later borrow of a higher priority goes first. */
static void test_borrows_served_by_priority(void **s) {
  (void)s;
  const size_t limit = MIB, piece = 256 * KIB;
  hmb_pool_t *p = pool_with(limit, 0, 0);
  hmb_runner_t *holder = ts_runner(p, limit - 2 * piece, NULL);
  hmb_runner_t *low = ts_runner(p, piece, NULL);
  hmb_runner_t *high = ts_runner_prio(p, piece, 5, NULL);
  assert_int_equal(hmb_runner_start(holder, 0), 0);
  assert_int_equal(hmb_runner_start(low, 0), 0);
  assert_int_equal(hmb_runner_start(high, 0), 0);
  hmb_buffer_t *hb = NULL;
  assert_int_equal(hmb_runner_alloc(holder, limit - 2 * piece, 0, &hb), 0);
  /* low, then high, ask for a piece more than they hold: both wait. */
  alloc_job_t jl = {low, 2 * piece, NULL, -99};
  alloc_job_t jh = {high, 2 * piece, NULL, -99};
  pthread_t tl, th;
  pthread_create(&tl, NULL, alloc_main, &jl);
  assert_true(ts_wait_for(runner_waits, p, 5000));
  pthread_create(&th, NULL, alloc_main, &jh);
  assert_true(ts_wait_for(two_borrowers_wait, p, 5000));
  /* One piece comes back: it goes to high, which arrived second. */
  assert_int_equal(hmb_buffer_close(hb), 0);
  size_t ret = 0;
  assert_int_equal(hmb_runner_try_free(holder, piece, &ret), 0);
  assert_int_equal(ret, piece);
  pthread_join(th, NULL);
  assert_int_equal(jh.rc, 0);
  assert_int_equal(ts_pool_stats(p).borrow_waiters, 1);
  assert_int_equal(ts_runner_stats(low).live, 0);
  ts_check(p, 0);
  /* The rest comes back: low is served, within the limit. */
  hmb_runner_finish(holder, 0, NULL);
  pthread_join(tl, NULL);
  assert_int_equal(jl.rc, 0);
  hmb_pool_stats_t st = ts_pool_stats(p);
  assert_int_equal(st.peak_overcommitted, 0);
  assert_int_equal(st.held, (int64_t)(4 * piece));
  hmb_buffer_close(jl.out);
  hmb_buffer_close(jh.out);
  hmb_runner_finish(low, 0, NULL);
  hmb_runner_finish(high, 0, NULL);
  hmb_runner_destroy(holder);
  hmb_runner_destroy(low);
  hmb_runner_destroy(high);
  pool_done(p);
}

/* A close by one thread of a runner partly serves another thread's queued
 * borrow of the same runner from the freed spare; the rest of that borrow
 * now fits in what is available and must be granted at once, not when some
 * other runner happens to return budget. */
static void test_partial_serve_by_a_close_lets_the_rest_fit(void **s) {
  (void)s;
  const size_t limit = 2 * MIB;
  hmb_pool_t *p = pool_with(limit, 0, 0);
  hmb_runner_t *b = ts_runner(p, 0, "other");
  assert_int_equal(hmb_runner_start(b, 0), 0); /* keeps running */
  hmb_runner_t *a = ts_runner(p, 0, "two threads");
  assert_int_equal(hmb_runner_start(a, 0), 0);
  hmb_buffer_t *one = NULL;
  assert_int_equal(hmb_runner_alloc(a, MIB, 0, &one), 0);
  alloc_job_t j = {a, limit, NULL, -99};
  pthread_t t;
  pthread_create(&t, NULL, alloc_main, &j);
  assert_true(ts_wait_for(runner_waits, p, 5000));
  /* available 1 MiB; the waiter wants 2 MiB: 1 MiB from this close's
   * spare, 1 MiB from the pool. */
  assert_int_equal(hmb_buffer_close(one), 0);
  assert_true(ts_wait_for(no_borrower_waits, p, 5000));
  pthread_join(t, NULL);
  assert_int_equal(j.rc, 0);
  hmb_pool_stats_t st = ts_pool_stats(p);
  assert_int_equal(st.held, (int64_t)limit);
  assert_int_equal(st.peak_overcommitted, 0);
  hmb_buffer_close(j.out);
  hmb_runner_finish(a, 0, NULL);
  hmb_runner_finish(b, 0, NULL);
  hmb_runner_destroy(a);
  hmb_runner_destroy(b);
  pool_done(p);
}

/* R2: starts are served by priority, then arrival. */
static void test_priority_then_arrival_order(void **s) {
  (void)s;
  hmb_pool_t *pool = ts_pool(100, NULL, NULL);
  hmb_runner_t *blocker = ts_runner(pool, 100, NULL);
  assert_int_equal(hmb_runner_start(blocker, 0), HMB_OK);
  static const int prios[] = {1, 5, 5, 3, 5};
  enum { N = 5 };
  op_t ops[N];
  hmb_runner_t *rs[N];
  int order[N], order_n = 0;
  pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
  memset(ops, 0, sizeof ops);
  for (int i = 0; i < N; i++) {
    rs[i] = ts_runner_prio(pool, 100, prios[i], NULL);
    ops[i].order = order;
    ops[i].order_mu = &mu;
    ops[i].order_n = &order_n;
    ops[i].tag = i;
    ops[i].finish_after = 1;
    op_run(&ops[i], rs[i], 0, 0, HMB_WAIT_FOREVER);
    await_waiters(pool, i + 1, 0); /* arrival order is the creation order */
  }
  hmb_runner_finish(blocker, 0, NULL);
  for (int i = 0; i < N; i++)
    op_join(&ops[i]);
  assert_int_equal(order_n, N);
  static const int expect[] = {1, 2, 4, 3, 0};
  for (int i = 0; i < N; i++)
    assert_int_equal(order[i], expect[i]);
  for (int i = 0; i < N; i++)
    hmb_runner_destroy(rs[i]);
  hmb_runner_destroy(blocker);
  pool_done(pool);
}

/* R2: a retried start keeps the place of its first try. */
static void test_retried_start_keeps_its_place(void **s) {
  (void)s;
  hmb_pool_t *pool = ts_pool(100, NULL, NULL);
  hmb_runner_t *blocker = ts_runner(pool, 100, NULL);
  assert_int_equal(hmb_runner_start(blocker, 0), HMB_OK);
  hmb_runner_t *old = ts_runner(pool, 100, NULL);
  hmb_runner_t *young = ts_runner(pool, 100, NULL);
  /* `old` asks first and times out; `young` then queues. */
  assert_int_equal(hmb_runner_start(old, MS), HMB_ETIMEDOUT);
  int order[2], order_n = 0;
  pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
  op_t ops[2];
  memset(ops, 0, sizeof ops);
  hmb_runner_t *rs[2] = {young, old};
  for (int i = 0; i < 2; i++) {
    ops[i].order = order;
    ops[i].order_mu = &mu;
    ops[i].order_n = &order_n;
    ops[i].tag = i;
    ops[i].finish_after = 1;
    op_run(&ops[i], rs[i], 0, 0, HMB_WAIT_FOREVER);
    await_waiters(pool, i + 1, 0);
  }
  /* The retry of `old` is served before `young`, which arrived later. */
  hmb_runner_finish(blocker, 0, NULL);
  for (int i = 0; i < 2; i++)
    op_join(&ops[i]);
  assert_int_equal(order_n, 2);
  assert_int_equal(order[0], 1);
  assert_int_equal(order[1], 0);
  hmb_runner_destroy(old);
  hmb_runner_destroy(young);
  hmb_runner_destroy(blocker);
  pool_done(pool);
}

/* R2: the head blocks smaller starts behind it; priority still goes first. */
static void test_large_request_not_bypassed(void **s) {
  (void)s;
  hmb_pool_t *pool = ts_pool(1000, NULL, NULL);
  hmb_runner_t *r0 = ts_runner(pool, 600, NULL);
  assert_int_equal(hmb_runner_start(r0, 0), HMB_OK);
  hmb_runner_t *big = ts_runner(pool, 800, NULL);
  op_t op = {0};
  op_run(&op, big, 0, 0, HMB_WAIT_FOREVER);
  await_waiters(pool, 1, 0);
  /* 400 is free and 100 would fit, but the large head request is first. */
  hmb_runner_t *small = ts_runner(pool, 100, NULL);
  assert_int_equal(hmb_runner_start(small, 0), HMB_ETIMEDOUT);
  /* A higher priority is served first, though: priority beats arrival. */
  hmb_runner_t *urgent = ts_runner_prio(pool, 100, 9, NULL);
  assert_int_equal(hmb_runner_start(urgent, 0), HMB_OK);
  hmb_runner_destroy(urgent);
  hmb_runner_destroy(r0);
  op_join(&op);
  assert_int_equal(op.rc, HMB_OK);
  hmb_pool_stats_t st = ts_pool_stats(pool);
  assert_int_equal(st.held, 800);
  assert_int_equal(st.acquire_overcommits, 0); /* it fitted */
  assert_int_equal(hmb_runner_start(small, 0), HMB_OK);
  hmb_runner_destroy(small);
  hmb_runner_destroy(big);
  pool_done(pool);
}

/* Cancel wakes a waiting start and a waiting borrow at once; a cancelled
 * runner keeps what it held until finish. */
static void test_cancel_wakes_waiters(void **s) {
  (void)s;
  hmb_pool_t *pool = ts_pool(1000, NULL, NULL);
  hmb_runner_t *r0 = ts_runner(pool, 900, NULL);
  assert_int_equal(hmb_runner_start(r0, 0), HMB_OK);
  hmb_runner_t *w = ts_runner(pool, 500, NULL);
  op_t op = {0};
  op_run(&op, w, 0, 0, HMB_WAIT_FOREVER);
  await_waiters(pool, 1, 0);
  assert_int_equal(hmb_runner_cancel(w), HMB_OK);
  op_join(&op);
  assert_int_equal(op.rc, HMB_ECANCELED);
  assert_int_equal(hmb_runner_state(w), HMB_RUNNER_CANCELLED);
  assert_int_equal(hmb_runner_is_cancelled(w), 1);
  assert_int_equal(hmb_runner_cancel(w), HMB_OK); /* idempotent */
  assert_int_equal(hmb_runner_start(w, 0), HMB_ECANCELED);
  hmb_pool_stats_t st = ts_pool_stats(pool);
  assert_int_equal(st.acquire_cancels, 1);
  assert_int_equal(st.acquire_waiters, 0);
  assert_int_equal(st.held, 900);
  /* Cancelling a borrower: it keeps what it held until finish/destroy. */
  hmb_runner_t *b = ts_runner(pool, 100, NULL);
  assert_int_equal(hmb_runner_start(b, 0), HMB_OK);
  hmb_buffer_t *kept = NULL;
  assert_int_equal(hmb_runner_alloc(b, 40, 0, &kept), HMB_OK);
  op_t bop = {0};
  op_run(&bop, b, 1, 500, HMB_WAIT_FOREVER);
  await_waiters(pool, 0, 1);
  assert_int_equal(hmb_runner_cancel(b), HMB_OK);
  op_join(&bop);
  assert_int_equal(bop.rc, HMB_ECANCELED);
  assert_null(bop.buf);
  hmb_runner_stats_t rs = ts_runner_stats(b);
  assert_int_equal(rs.held, 100);
  assert_int_equal(rs.spare, 60);
  assert_int_equal(rs.live, 40);
  st = ts_pool_stats(pool);
  assert_int_equal(st.running, 1); /* only r0 */
  assert_int_equal(st.borrow_cancels, 1);
  hmb_buffer_t *no = NULL;
  assert_int_equal(hmb_runner_alloc(b, 8, 0, &no), HMB_ECANCELED);
  size_t ret = 0;
  assert_int_equal(hmb_runner_finish(b, 0, &ret), HMB_OK); /* after cancel */
  assert_int_equal(ret, 60);
  assert_int_equal(hmb_runner_state(b), HMB_RUNNER_CANCELLED);
  assert_int_equal(hmb_runner_finish(b, 0, &ret), HMB_ESTATE);
  hmb_buffer_close(kept); /* straight back to the pool */
  assert_int_equal(ts_runner_stats(b).held, 0);
  hmb_runner_destroy(b);
  hmb_runner_destroy(w);
  hmb_runner_destroy(r0);
  pool_done(pool);
}

/* A start of 0 bytes is granted when nothing waits ahead of it, even at a
 * full pool; it is no longer granted at once past a waiting borrower, nor
 * while the pool is over-committed with a runner running (0.1 granted every
 * 0-byte start at once). */
static void test_zero_start_waits_like_any_start(void **s) {
  (void)s;
  hmb_pool_t *pool = ts_pool(100, NULL, NULL);
  hmb_runner_t *r0 = ts_runner(pool, 500, NULL);
  assert_int_equal(hmb_runner_start(r0, 0), HMB_OK); /* gets the limit */
  hmb_runner_t *z = ts_runner(pool, 0, NULL);
  assert_int_equal(hmb_runner_start(z, 0), HMB_OK); /* full, nobody ahead */
  assert_int_equal(hmb_runner_state(z), HMB_RUNNER_RUNNING);
  hmb_pool_stats_t st = ts_pool_stats(pool);
  assert_int_equal(st.running, 2);
  assert_int_equal(st.held, 100);
  hmb_runner_finish(r0, 0, NULL);
  /* r1 waits to borrow; z runs without borrowing, so R4 does not apply. */
  hmb_runner_t *r1 = ts_runner(pool, 100, NULL);
  assert_int_equal(hmb_runner_start(r1, 0), HMB_OK);
  op_t bop = {0};
  op_run(&bop, r1, 1, 150, HMB_WAIT_FOREVER);
  await_waiters(pool, 0, 1);
  hmb_runner_t *z2 = ts_runner(pool, 0, NULL);
  assert_int_equal(hmb_runner_start(z2, 0), HMB_ETIMEDOUT); /* R1 */
  assert_int_equal(hmb_runner_start(z2, 5 * MS), HMB_ETIMEDOUT);
  assert_int_equal(hmb_runner_state(z2), HMB_RUNNER_CREATED);
  /* z stops: r1 runs alone and waits, so it becomes the progress runner
   * and goes beyond the limit. */
  hmb_runner_finish(z, 0, NULL);
  op_join(&bop);
  assert_int_equal(bop.rc, HMB_OK);
  st = ts_pool_stats(pool);
  assert_int_equal(st.held, 150);
  assert_int_equal(st.overcommitted, 50);
  /* Over-committed with r1 running: the 0-byte start waits (no grant goes
   * beyond the limit but the progress runner's borrows). */
  assert_int_equal(hmb_runner_start(z2, 0), HMB_ETIMEDOUT);
  /* The close returns what was beyond the limit at once; r1 keeps the rest
   * as spare, the pool is back at its limit, and the 0-byte start (now the
   * head, nothing else waiting) fits. */
  hmb_buffer_close(bop.buf);
  st = ts_pool_stats(pool);
  assert_int_equal(st.held, 100);
  assert_int_equal(st.overcommitted, 0);
  assert_int_equal(hmb_runner_start(z2, 0), HMB_OK);
  assert_int_equal(ts_runner_stats(z2).held, 0);
  hmb_runner_finish(r1, 0, NULL);
  hmb_runner_destroy(z);
  hmb_runner_destroy(z2);
  hmb_runner_destroy(r0);
  hmb_runner_destroy(r1);
  pool_done(pool);
}

/* Regression: two grants beyond the limit of 2^62 each would put held at
 * 2^63, past INT64_MAX; the second is refused and changes nothing. */
static void test_overcommit_cannot_overflow_the_counters(void **s) {
  (void)s;
  hmb_pool_t *pool = ts_pool(1, NULL, NULL);
  hmb_runner_t *r = ts_started_runner(pool, 0);
  hmb_buffer_t *a = NULL, *b = (hmb_buffer_t *)1;
  /* The progress runner borrows: granted beyond the limit. */
  assert_int_equal(hmb_runner_reserve(r, HMB_MAX_ALLOC, &a), HMB_OK);
  hmb_pool_stats_t before = ts_pool_stats(pool);
  hmb_runner_stats_t rbefore = ts_runner_stats(r);
  assert_int_equal(before.held, (int64_t)HMB_MAX_ALLOC);
  assert_int_equal(hmb_runner_reserve(r, HMB_MAX_ALLOC, &b), HMB_ETOOBIG);
  assert_null(b);
  hmb_pool_stats_t after = ts_pool_stats(pool);
  hmb_runner_stats_t rafter = ts_runner_stats(r);
  assert_same_pool(&before, &after);
  assert_same_budget(&rbefore, &rafter);
  assert_int_equal(after.available, 1 - (int64_t)HMB_MAX_ALLOC);
  ts_check(pool, HMB_CHECK_QUIESCENT);
  /* What is representable still is granted. */
  assert_int_equal(hmb_runner_reserve(r, HMB_MAX_ALLOC - 1, &b), HMB_OK);
  assert_int_equal(ts_pool_stats(pool).held, INT64_MAX);
  hmb_buffer_close(b);
  hmb_buffer_close(a);
  hmb_runner_destroy(r);
  pool_done(pool);
}

/* Two threads of one runner waiting to borrow are one waiting runner: with
 * another runner running and not borrowing, R4 must not apply. When the
 * other finishes, the first fits and the second goes beyond the limit. */
static atomic_int sleepers;
static void count_sleepers(void *user, const hmb_wait_event_t *ev) {
  (void)user;
  if (ev->phase == HMB_WAIT_BEGIN)
    atomic_fetch_add(&sleepers, 1);
}
static int n_sleepers(void *arg) {
  return atomic_load(&sleepers) >= *(int *)arg;
}

static void test_two_borrows_of_one_runner_are_one_waiter(void **s) {
  (void)s;
  ts_log_t log = {0};
  hmb_pool_config_t cfg;
  hmb_pool_config_init(&cfg);
  cfg.limit = 1000;
  cfg.log_fn = ts_log_capture;
  cfg.log_user = &log;
  cfg.log_level = HMB_LOG_DEBUG;
  cfg.wait_hook = count_sleepers; /* BEGIN: queued and about to sleep */
  atomic_store(&sleepers, 0);
  hmb_pool_t *p = ts_pool_cfg(&cfg);
  hmb_runner_t *a = ts_started_runner(p, 500);
  hmb_runner_t *b = ts_started_runner(p, 500);
  op_t x = {0}, y = {0};
  op_run(&x, a, 1, 600, HMB_WAIT_FOREVER);
  /* x first: it takes A's 500 spare and waits for 100 more. */
  int one = 1, two = 2;
  assert_true(ts_wait_for(n_sleepers, &one, 20000));
  assert_int_equal(ts_runner_stats(a).spare, 0);
  op_run(&y, a, 1, 600, HMB_WAIT_FOREVER);
  /* y queues too; no progress may result from it */
  assert_true(ts_wait_for(n_sleepers, &two, 20000));
  hmb_pool_stats_t st = ts_pool_stats(p);
  assert_int_equal(st.borrow_waiters, 1); /* runners, not requests */
  assert_int_equal(st.borrow_overcommits, 0);
  assert_int_equal(st.progress_runner, 0);
  assert_true(st.held <= st.limit);
  assert_int_equal(hmb_runner_finish(b, 0, NULL), HMB_OK);
  op_join(&x);
  op_join(&y);
  assert_int_equal(x.rc, HMB_OK);
  assert_int_equal(y.rc, HMB_OK);
  st = ts_pool_stats(p);
  assert_int_equal(st.borrow_overcommits, 1);
  assert_int_equal(st.held, 1200); /* A: 500 + 100 + 600; B gave back */
  assert_int_equal(st.progress_runner, ts_runner_stats(a).id);
  assert_true(ts_log_contains(&log, "is now the progress runner"));
  assert_int_equal(hmb_buffer_close(x.buf), HMB_OK);
  assert_int_equal(hmb_buffer_close(y.buf), HMB_OK);
  hmb_runner_destroy(a);
  hmb_runner_destroy(b);
  pool_done(p);
}

/* A pool whose wait hook counts the requests that went to sleep. */
static hmb_pool_t *pool_counting_sleepers(size_t limit) {
  hmb_pool_config_t cfg;
  hmb_pool_config_init(&cfg);
  cfg.limit = limit;
  cfg.wait_hook = count_sleepers;
  atomic_store(&sleepers, 0);
  return ts_pool_cfg(&cfg);
}

/* A grow granted to a runner whose other thread waits to borrow serves that
 * borrow from the grown spare (runner.h: a waiting borrow is served by
 * budget that reaches its runner), instead of leaving it to wait for the
 * pool while its runner holds the spare. */
static void test_grown_spare_serves_the_runners_waiting_borrow(void **s) {
  (void)s;
  const size_t limit = MIB, piece = 256 * KIB;
  int one = 1, two = 2;
  hmb_pool_t *p = pool_counting_sleepers(limit);
  hmb_runner_t *b = ts_runner(p, limit - piece, "other");
  hmb_runner_t *a = ts_runner(p, piece, "two threads");
  assert_int_equal(hmb_runner_start(b, 0), 0);
  assert_int_equal(hmb_runner_start(a, 0), 0);
  hmb_buffer_t *bb = NULL, *ab = NULL;
  assert_int_equal(hmb_runner_alloc(b, limit - 2 * piece, 0, &bb), 0);
  assert_int_equal(hmb_runner_alloc(a, piece, 0, &ab), 0);
  grow_job_t jg = {a, 2 * piece, -99};
  pthread_t tg, tb;
  pthread_create(&tg, NULL, grow_main, &jg);
  assert_true(ts_wait_for(n_sleepers, &one, 20000));
  alloc_job_t jb = {a, piece, NULL, -99};
  pthread_create(&tb, NULL, alloc_main, &jb);
  assert_true(ts_wait_for(n_sleepers, &two, 20000));
  /* b returns a piece: the grow (first in the queue) gets it, and the
   * borrow of a's other thread is served from a's grown spare. */
  size_t ret = 0;
  assert_int_equal(hmb_runner_try_free(b, piece, &ret), 0);
  assert_int_equal(ret, piece);
  pthread_join(tg, NULL);
  assert_int_equal(jg.rc, 0);
  int served = ts_wait_for(no_borrower_waits, p, 5000);
  if (!served) { /* let the borrow through so that the test ends */
    hmb_buffer_close(bb);
    bb = NULL;
    assert_int_equal(hmb_runner_try_free(b, SIZE_MAX, &ret), 0);
  }
  pthread_join(tb, NULL);
  assert_true(served);
  assert_int_equal(jb.rc, 0);
  hmb_pool_stats_t st = ts_pool_stats(p);
  assert_int_equal(st.held, (int64_t)limit);
  assert_int_equal(st.peak_overcommitted, 0);
  assert_int_equal(ts_runner_stats(a).held, (int64_t)(2 * piece));
  ts_check(p, 0);
  hmb_buffer_close(jb.out);
  hmb_buffer_close(ab);
  if (bb)
    hmb_buffer_close(bb);
  hmb_runner_finish(a, 0, NULL);
  hmb_runner_finish(b, 0, NULL);
  hmb_runner_destroy(a);
  hmb_runner_destroy(b);
  pool_done(p);
}

/* A borrow that carried its runner's spare and timed out puts the spare
 * back; a borrow of another thread of the runner, waiting beside it, is
 * served from it. The second borrow starts 500 ms after the first, so it
 * is still waiting (timeout 1 s) when the first times out. */
static void test_timed_out_borrow_spare_serves_the_other_borrow(void **s) {
  (void)s;
  const size_t limit = MIB, piece = 256 * KIB;
  int one = 1, two = 2;
  hmb_pool_t *p = pool_counting_sleepers(limit);
  hmb_runner_t *b = ts_runner(p, limit - piece, "other");
  hmb_runner_config_t rc;
  hmb_runner_config_init(&rc);
  rc.estimate = piece;
  rc.borrow_timeout_ns = 1000 * 1000 * 1000;
  hmb_runner_t *a = NULL;
  assert_int_equal(hmb_runner_create(p, &rc, &a), 0);
  assert_int_equal(hmb_runner_start(b, 0), 0);
  assert_int_equal(hmb_runner_start(a, 0), 0);
  hmb_buffer_t *bb = NULL;
  assert_int_equal(hmb_runner_alloc(b, limit - piece, 0, &bb), 0);
  /* t0 takes a's piece of spare and waits for one more: it times out. */
  alloc_job_t j0 = {a, 2 * piece, NULL, -99};
  alloc_job_t j1 = {a, piece, NULL, -99};
  pthread_t t0, t1;
  pthread_create(&t0, NULL, alloc_main, &j0);
  assert_true(ts_wait_for(n_sleepers, &one, 20000));
  ts_sleep_ms(500);
  pthread_create(&t1, NULL, alloc_main, &j1);
  assert_true(ts_wait_for(n_sleepers, &two, 20000));
  pthread_join(t0, NULL);
  assert_int_equal(j0.rc, HMB_ETIMEDOUT);
  pthread_join(t1, NULL);
  assert_int_equal(j1.rc, 0); /* served from the piece t0 put back */
  hmb_pool_stats_t st = ts_pool_stats(p);
  assert_int_equal(st.held, (int64_t)limit);
  assert_int_equal(st.peak_overcommitted, 0);
  assert_int_equal(st.borrow_waiters, 0);
  ts_check(p, 0);
  hmb_buffer_close(j1.out);
  hmb_buffer_close(bb);
  hmb_runner_finish(a, 0, NULL);
  hmb_runner_finish(b, 0, NULL);
  hmb_runner_destroy(a);
  hmb_runner_destroy(b);
  pool_done(p);
}

int main(void) {
  ts_watchdog_arm("test_admission", 110);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_rotation_2),
      cmocka_unit_test(test_rotation_4),
      cmocka_unit_test(test_rotation_8),
      cmocka_unit_test(test_idle_start_gets_available_not_estimate),
      cmocka_unit_test(test_idle_start_pattern),
      cmocka_unit_test(test_one_runner_beyond_the_limit),
      cmocka_unit_test(test_progress_runner_holds_the_most),
      cmocka_unit_test(test_zero_start_cannot_bypass_a_waiting_start),
      cmocka_unit_test(test_large_start_not_starved_by_zero_starts),
      cmocka_unit_test(test_failed_allocation_changes_nothing),
      cmocka_unit_test(test_timed_out_borrow_changes_nothing),
      cmocka_unit_test(test_cancelled_borrow_changes_nothing),
      cmocka_unit_test(test_refused_start_changes_nothing),
      cmocka_unit_test(test_cap_zero_never_beyond_the_limit),
      cmocka_unit_test(test_cap_bounds_the_overcommit),
      cmocka_unit_test(test_staged_grow_served_before_new_starts),
      cmocka_unit_test(test_progress_grow_gets_only_what_is_available),
      cmocka_unit_test(test_pressure_lets_a_join_proceed_without_overcommit),
      cmocka_unit_test(test_failed_borrow_after_pressure_closes_returns_beyond),
      cmocka_unit_test(test_pressure_after_a_long_wait),
      cmocka_unit_test(test_set_limit_grow_and_shrink),
      cmocka_unit_test(test_wait_hooks_and_zero_timeouts),
      cmocka_unit_test(test_borrow_waiters_count_runners),
      cmocka_unit_test(test_describe_lists_the_top_holders),
      cmocka_unit_test(test_idle_start_is_capped_at_the_limit),
      cmocka_unit_test(test_prompt_wakeup_when_last_runner_stops),
      cmocka_unit_test(test_borrowers_before_acquirers),
      cmocka_unit_test(test_all_borrowers_rule),
      cmocka_unit_test(test_timeout_leaves_nothing_taken),
      cmocka_unit_test(test_borrows_served_by_priority),
      cmocka_unit_test(test_partial_serve_by_a_close_lets_the_rest_fit),
      cmocka_unit_test(test_priority_then_arrival_order),
      cmocka_unit_test(test_retried_start_keeps_its_place),
      cmocka_unit_test(test_large_request_not_bypassed),
      cmocka_unit_test(test_cancel_wakes_waiters),
      cmocka_unit_test(test_zero_start_waits_like_any_start),
      cmocka_unit_test(test_overcommit_cannot_overflow_the_counters),
      cmocka_unit_test(test_two_borrows_of_one_runner_are_one_waiter),
      cmocka_unit_test(test_grown_spare_serves_the_runners_waiting_borrow),
      cmocka_unit_test(test_timed_out_borrow_spare_serves_the_other_borrow),
  };
  int rc = cmocka_run_group_tests(tests, NULL, NULL);
  ts_watchdog_disarm();
  return rc;
}
