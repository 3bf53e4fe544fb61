/*
 * test_stats.c - what the snapshots guarantee (hmb/stats.h) and the sizes
 * that travel with struct-taking calls.
 *
 *   - ABI: every *_stats_sized() call given the 0.1 size of its struct
 *     (offsetof its first field "appended in 0.2") writes exactly that
 *     many bytes (a canary after them is untouched) and fills them as the
 *     full call does; a smaller size is HMB_EINVAL; a larger one is zero
 *     filled. Inputs: a larger struct is accepted when its unknown bytes
 *     are zero and refused with HMB_ENOTSUP otherwise; a struct of the 0.1
 *     size is read only that far (garbage after it is ignored).
 *   - Cumulative counters saturate at UINT64_MAX instead of wrapping.
 *   - Executor stats: submitted == queued + running + finishing +
 *     completed + failed + cancelled in every snapshot, sampled from inside
 *     task functions and completion callbacks (also of tasks cancelled in
 *     the queue, while admitting, and by a CANCEL shutdown, whose callbacks
 *     run on the cancelling thread) and by a sampler thread during runs,
 *     requeues and shutdown.
 */
#define _POSIX_C_SOURCE 200809L
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "testsupport.h"

#define KIB ((size_t)1024)
#define MIB ((size_t)1024 * 1024)
#define MS INT64_C(1000000)

enum { CANARY = 64, FILLB = 0xA5 };

static int all_bytes(const void *p, size_t n, int v) {
  const unsigned char *c = p;
  for (size_t i = 0; i < n; i++)
    if (c[i] != (unsigned char)v)
      return 0;
  return 1;
}

/* ---- outputs ------------------------------------------------------------- */

typedef struct pool_out {
  hmb_pool_stats_t st;
  unsigned char canary[CANARY];
} pool_out_t;

static void test_stats_pool_sized_writes_only_its_size(void **state) {
  (void)state;
  hmb_pool_t *pool = ts_pool(10000, NULL, NULL);
  hmb_runner_t *r = ts_started_runner(pool, 3000);
  hmb_buffer_t *b = NULL;
  assert_int_equal(hmb_runner_alloc(r, 1234, 0, &b), HMB_OK);
  hmb_pool_stats_t full = ts_pool_stats(pool);
  const size_t v01 = offsetof(hmb_pool_stats_t, progress_runner);
  pool_out_t o;
  memset(&o, FILLB, sizeof o);
  assert_int_equal(hmb_pool_stats_sized(pool, &o.st, v01), HMB_OK);
  assert_memory_equal(&o.st, &full, v01);
  assert_true(all_bytes((char *)&o + v01, sizeof o - v01, FILLB));
  assert_int_equal(o.st.held, 3000);
  assert_int_equal(o.st.live_bytes, 1234);
  /* Below the 0.1 size: refused, nothing written. */
  memset(&o, FILLB, sizeof o);
  assert_int_equal(hmb_pool_stats_sized(pool, &o.st, v01 - 1), HMB_EINVAL);
  assert_int_equal(hmb_pool_stats_sized(pool, &o.st, 0), HMB_EINVAL);
  assert_true(all_bytes(&o, sizeof o, FILLB));
  /* Larger (a newer caller): this release's fields, then zeros. */
  assert_int_equal(hmb_pool_stats_sized(pool, &o.st, sizeof o.st + 16), HMB_OK);
  assert_memory_equal(&o.st, &full, sizeof full);
  assert_true(all_bytes(o.canary, 16, 0));
  assert_true(all_bytes(o.canary + 16, CANARY - 16, FILLB));
  hmb_buffer_close(b);
  hmb_runner_destroy(r);
  ts_pool_done(pool);
}

typedef struct runner_out {
  hmb_runner_stats_t st;
  unsigned char canary[CANARY];
} runner_out_t;

static void test_stats_runner_sized_writes_only_its_size(void **state) {
  (void)state;
  hmb_pool_t *pool = ts_pool(10000, NULL, NULL);
  hmb_runner_t *r = ts_started_runner(pool, 3000);
  hmb_buffer_t *b = NULL;
  assert_int_equal(hmb_runner_alloc(r, 4000, 0, &b), HMB_OK);
  hmb_runner_stats_t full = ts_runner_stats(r);
  const size_t v01 = offsetof(hmb_runner_stats_t, spare);
  runner_out_t o;
  memset(&o, FILLB, sizeof o);
  assert_int_equal(hmb_runner_stats_sized(r, &o.st, v01), HMB_OK);
  /* wait_ns (the last 0.1 field) is time: compare up to it, then it. */
  assert_memory_equal(&o.st, &full, offsetof(hmb_runner_stats_t, wait_ns));
  assert_true(all_bytes((char *)&o + v01, sizeof o - v01, FILLB));
  assert_int_equal(o.st.held, 4000);
  assert_int_equal(o.st.borrowed, 1000);
  memset(&o, FILLB, sizeof o);
  assert_int_equal(hmb_runner_stats_sized(r, &o.st, v01 - 1), HMB_EINVAL);
  assert_true(all_bytes(&o, sizeof o, FILLB));
  assert_int_equal(hmb_runner_stats_sized(r, &o.st, sizeof o.st + 8), HMB_OK);
  assert_int_equal(o.st.spare, full.spare);
  assert_true(all_bytes(o.canary, 8, 0));
  assert_true(all_bytes(o.canary + 8, CANARY - 8, FILLB));
  assert_int_equal(o.st.reserved0, 0);
  hmb_buffer_close(b);
  hmb_runner_destroy(r);
  ts_pool_done(pool);
}

typedef struct memory_out {
  hmb_memory_stats_t st;
  unsigned char canary[CANARY];
} memory_out_t;

static void test_stats_memory_sized_writes_only_its_size(void **state) {
  (void)state;
  hmb_pool_t *pool = ts_pool(1 << 20, NULL, NULL);
  hmb_runner_t *r = ts_started_runner(pool, 1 << 20);
  hmb_buffer_t *b = NULL;
  assert_int_equal(hmb_runner_alloc(r, 777, 0, &b), HMB_OK);
  hmb_memory_stats_t full = ts_memory_stats(pool);
  const size_t v01 = offsetof(hmb_memory_stats_t, huge_bytes);
  memory_out_t o;
  memset(&o, FILLB, sizeof o);
  assert_int_equal(hmb_pool_memory_stats_sized(pool, &o.st, v01), HMB_OK);
  assert_memory_equal(&o.st, &full, v01);
  assert_true(all_bytes((char *)&o + v01, sizeof o - v01, FILLB));
  assert_int_equal(o.st.pageable_live, 777);
  memset(&o, FILLB, sizeof o);
  assert_int_equal(hmb_pool_memory_stats_sized(pool, &o.st, v01 - 1),
                   HMB_EINVAL);
  assert_true(all_bytes(&o, sizeof o, FILLB));
  /* The default allocator's counters, the same way. */
  assert_int_equal(hmb_default_memory_stats_sized(&o.st, v01), HMB_OK);
  assert_true(all_bytes((char *)&o + v01, sizeof o - v01, FILLB));
  assert_non_null(o.st.pinned_reason);
  memset(&o, FILLB, sizeof o);
  assert_int_equal(hmb_default_memory_stats_sized(&o.st, v01 - 1), HMB_EINVAL);
  assert_true(all_bytes(&o, sizeof o, FILLB));
  assert_int_equal(hmb_pool_memory_stats_sized(pool, &o.st, sizeof o.st + 24),
                   HMB_OK);
  assert_true(all_bytes(o.canary, 24, 0));
  assert_true(all_bytes(o.canary + 24, CANARY - 24, FILLB));
  hmb_buffer_close(b);
  hmb_runner_destroy(r);
  ts_pool_done(pool);
}

typedef struct exec_out {
  hmb_executor_stats_t st;
  unsigned char canary[CANARY];
} exec_out_t;

static int nop_task(void *user, hmb_runner_t *r) {
  (void)user;
  (void)r;
  return 0;
}

static void test_stats_executor_sized_writes_only_its_size(void **state) {
  (void)state;
  hmb_pool_t *pool = ts_pool(1 << 20, NULL, NULL);
  hmb_executor_config_t ec;
  hmb_executor_config_init(&ec);
  ec.threads = 1;
  hmb_executor_t *ex = NULL;
  assert_int_equal(hmb_executor_create(pool, &ec, &ex), HMB_OK);
  hmb_task_desc_t d;
  hmb_task_desc_init(&d);
  d.run = nop_task;
  for (int i = 0; i < 3; i++) {
    hmb_task_t *t = NULL;
    assert_int_equal(hmb_executor_submit(ex, &d, &t), HMB_OK);
    assert_int_equal(hmb_task_wait(t, HMB_WAIT_FOREVER, NULL), HMB_OK);
    hmb_task_release(t);
  }
  hmb_executor_stats_t full;
  assert_int_equal(hmb_executor_stats(ex, &full), HMB_OK);
  const size_t v01 = offsetof(hmb_executor_stats_t, finishing);
  exec_out_t o;
  memset(&o, FILLB, sizeof o);
  assert_int_equal(hmb_executor_stats_sized(ex, &o.st, v01), HMB_OK);
  assert_memory_equal(&o.st, &full, v01);
  assert_true(all_bytes((char *)&o + v01, sizeof o - v01, FILLB));
  assert_int_equal(o.st.submitted, 3);
  assert_int_equal(o.st.completed, 3);
  memset(&o, FILLB, sizeof o);
  assert_int_equal(hmb_executor_stats_sized(ex, &o.st, v01 - 1), HMB_EINVAL);
  assert_true(all_bytes(&o, sizeof o, FILLB));
  assert_int_equal(hmb_executor_stats_sized(ex, &o.st, sizeof o.st + 8),
                   HMB_OK);
  assert_int_equal(o.st.finishing, 0);
  assert_true(all_bytes(o.canary, 8, 0));
  assert_true(all_bytes(o.canary + 8, CANARY - 8, FILLB));
  hmb_executor_destroy(ex);
  ts_pool_done(pool);
}

/* ---- inputs -------------------------------------------------------------- */

typedef struct pool_in {
  hmb_pool_config_t cfg;
  unsigned char extra[16];
} pool_in_t;

static void test_stats_pool_create_sized_inputs(void **state) {
  (void)state;
  pool_in_t in;
  memset(&in, 0, sizeof in);
  in.cfg.limit = 4096;
  hmb_pool_t *pool = (hmb_pool_t *)1;
  /* Larger, unknown bytes zero: accepted. */
  assert_int_equal(hmb_pool_create_sized(&in.cfg, sizeof in, &pool), HMB_OK);
  assert_int_equal(hmb_pool_limit(pool), 4096);
  ts_pool_done(pool);
  /* A nonzero byte this library does not know: refused. */
  for (size_t i = 0; i < sizeof in.extra; i += 5) {
    memset(in.extra, 0, sizeof in.extra);
    in.extra[i] = 1;
    pool = (hmb_pool_t *)1;
    assert_int_equal(hmb_pool_create_sized(&in.cfg, sizeof in, &pool),
                     HMB_ENOTSUP);
    assert_null(pool);
  }
  memset(in.extra, 0, sizeof in.extra);
  /* The 0.1 layout: read up to long_wait_ns only; what follows is ignored
   * (an unknown flag or a bad cap there would be refused if it were read). */
  const size_t v01 = offsetof(hmb_pool_config_t, flags);
  memset((char *)&in.cfg + v01, 0xff, sizeof in.cfg - v01);
  assert_int_equal(hmb_pool_create_sized(&in.cfg, v01, &pool), HMB_OK);
  hmb_pool_stats_t st = ts_pool_stats(pool);
  assert_int_equal(st.limit, 4096);
  assert_int_equal(st.overcommit_cap, -1); /* the flag was not read */
  hmb_memory_stats_t ms = ts_memory_stats(pool);
  assert_true(ms.cache_cap > 0);           /* HMB_POOL_NO_CACHE was not read */
  assert_int_equal(ms.pinned_capacity, 0); /* pinned_base was not read */
  ts_pool_done(pool);
  /* Smaller than the first release's: not one of our structs. */
  pool = (hmb_pool_t *)1;
  assert_int_equal(hmb_pool_create_sized(&in.cfg, v01 - 1, &pool), HMB_EINVAL);
  assert_null(pool);
  assert_int_equal(hmb_pool_create_sized(&in.cfg, 0, &pool), HMB_EINVAL);
}

typedef struct runner_in {
  hmb_runner_config_t cfg;
  unsigned char extra[8];
} runner_in_t;

static void test_stats_runner_and_executor_create_sized_inputs(void **state) {
  (void)state;
  hmb_pool_t *pool = ts_pool(4096, NULL, NULL);
  runner_in_t rin;
  memset(&rin, 0, sizeof rin);
  rin.cfg.estimate = 100;
  hmb_runner_t *r = (hmb_runner_t *)1;
  assert_int_equal(hmb_runner_create_sized(pool, &rin.cfg, sizeof rin, &r),
                   HMB_OK);
  assert_int_equal(ts_runner_stats(r).estimate, 100);
  hmb_runner_destroy(r);
  rin.extra[7] = 9;
  r = (hmb_runner_t *)1;
  assert_int_equal(hmb_runner_create_sized(pool, &rin.cfg, sizeof rin, &r),
                   HMB_ENOTSUP);
  assert_null(r);
  assert_int_equal(
      hmb_runner_create_sized(pool, &rin.cfg, sizeof rin.cfg - 1, &r),
      HMB_EINVAL);
  assert_null(r);
  assert_int_equal((hmb_runner_create)(pool, &rin.cfg, &r), HMB_OK);
  hmb_runner_destroy(r);

  struct {
    hmb_executor_config_t cfg;
    unsigned char extra[8];
  } ein;
  memset(&ein, 0, sizeof ein);
  ein.cfg.threads = 1;
  hmb_executor_t *ex = (hmb_executor_t *)1;
  assert_int_equal(hmb_executor_create_sized(pool, &ein.cfg, sizeof ein, &ex),
                   HMB_OK);
  hmb_executor_destroy(ex);
  ein.extra[0] = 1;
  ex = (hmb_executor_t *)1;
  assert_int_equal(hmb_executor_create_sized(pool, &ein.cfg, sizeof ein, &ex),
                   HMB_ENOTSUP);
  assert_null(ex);
  assert_int_equal(
      hmb_executor_create_sized(pool, &ein.cfg, sizeof ein.cfg - 1, &ex),
      HMB_EINVAL);
  assert_null(ex);
  /* NULL config: defaults, whatever the size. */
  assert_int_equal(hmb_executor_create_sized(pool, NULL, 0, &ex), HMB_OK);
  hmb_executor_destroy(ex);
  ts_pool_done(pool);
}

typedef struct held_probe {
  int64_t held;
  atomic_int calls;
} held_probe_t;

static int held_task(void *user, hmb_runner_t *r) {
  held_probe_t *h = user;
  h->held = ts_runner_stats(r).held;
  return 0;
}

static void held_done(void *user, hmb_task_t *t, int status) {
  (void)t;
  (void)status;
  atomic_fetch_add(&((held_probe_t *)user)->calls, 1);
}

static void test_stats_submit_sized_inputs(void **state) {
  (void)state;
  hmb_pool_t *pool = ts_pool(1 << 20, NULL, NULL);
  hmb_executor_config_t ec;
  hmb_executor_config_init(&ec);
  ec.threads = 1;
  hmb_executor_t *ex = NULL;
  assert_int_equal(hmb_executor_create(pool, &ec, &ex), HMB_OK);
  struct {
    hmb_task_desc_t d;
    unsigned char extra[8];
  } in;
  held_probe_t hp;
  memset(&hp, 0, sizeof hp);
  memset(&in, 0, sizeof in);
  in.d.estimate = 5000;
  in.d.run = held_task;
  in.d.done = held_done;
  in.d.user = &hp;
  /* The 0.1 layout ends before `staged`: garbage there is not read, so the
   * task is admitted for its whole estimate, not staged. */
  const size_t v01 = offsetof(hmb_task_desc_t, staged);
  memset((char *)&in.d + v01, 0x5a, sizeof in.d - v01);
  hmb_task_t *t = (hmb_task_t *)1;
  assert_int_equal(hmb_executor_submit_sized(ex, &in.d, v01, &t), HMB_OK);
  int status = 1;
  assert_int_equal(hmb_task_wait(t, HMB_WAIT_FOREVER, &status), HMB_OK);
  assert_int_equal(status, 0);
  hmb_task_release(t);
  assert_int_equal(hp.held, 5000);
  assert_int_equal(atomic_load(&hp.calls), 1);
  /* Smaller than that: refused. */
  t = (hmb_task_t *)1;
  assert_int_equal(hmb_executor_submit_sized(ex, &in.d, v01 - 1, &t),
                   HMB_EINVAL);
  assert_null(t);
  /* Larger with a nonzero unknown byte: refused, the callback never fires. */
  in.d.staged = 0;
  in.d.initial = 0;
  in.extra[3] = 1;
  assert_int_equal(hmb_executor_submit_sized(ex, &in.d, sizeof in, &t),
                   HMB_ENOTSUP);
  assert_null(t);
  in.extra[3] = 0;
  assert_int_equal(hmb_executor_submit_sized(ex, &in.d, sizeof in, &t), HMB_OK);
  assert_int_equal(hmb_task_wait(t, HMB_WAIT_FOREVER, NULL), HMB_OK);
  hmb_task_release(t);
  assert_int_equal(hmb_executor_shutdown(ex, HMB_SHUTDOWN_DRAIN), HMB_OK);
  assert_int_equal(atomic_load(&hp.calls), 2);
  hmb_executor_stats_t es;
  assert_int_equal(hmb_executor_stats(ex, &es), HMB_OK);
  assert_int_equal(es.submitted, 2);
  hmb_executor_destroy(ex);
  ts_pool_done(pool);
}

/* ---- cumulative counters saturate ---------------------------------------- */

/*
 * Reservations carry no memory, so a progress runner in a pool whose limit
 * is HMB_MAX_ALLOC can be given INT64_MAX bytes (2^62 within the limit and
 * 2^62 - 1 beyond it); closing them returns what was beyond, and one
 * try-free the rest, round after round: five rounds add about 5 x 2^63 to
 * the borrowed bytes, 5 x 2^62 to the early releases and to the
 * over-commit sum, beyond UINT64_MAX. Each must stop at UINT64_MAX
 * (a wrap would show a small number). Event counts (borrows, acquires...)
 * cannot reach 2^64 in a test; they use the same saturating add.
 */
static void test_stats_cumulative_counters_saturate(void **state) {
  (void)state;
  hmb_pool_t *pool = ts_pool(HMB_MAX_ALLOC, NULL, NULL);
  hmb_runner_t *r = ts_started_runner(pool, 0);
  const uint64_t round = (uint64_t)INT64_MAX;
  uint64_t want_released = 0, want_over = 0, want_borrowed = 0;
  for (int i = 0; i < 5; i++) {
    hmb_buffer_t *a = NULL, *b = NULL;
    assert_int_equal(hmb_runner_reserve(r, HMB_MAX_ALLOC, &a), HMB_OK);
    assert_int_equal(hmb_runner_reserve(r, HMB_MAX_ALLOC - 1, &b), HMB_OK);
    hmb_buffer_close(a);
    hmb_buffer_close(b);
    /* The closes gave the 2^62 - 1 beyond the limit back at once (the
     * progress runner keeps beyond the limit only what is live); the
     * try-free returns the 2^62 within it. */
    size_t ret = 0;
    assert_int_equal(hmb_runner_try_free(r, SIZE_MAX, &ret), HMB_OK);
    const uint64_t within = HMB_MAX_ALLOC;
    assert_int_equal(ret, (size_t)within);
    want_released = want_released > UINT64_MAX - within
                        ? UINT64_MAX
                        : want_released + within;
    want_borrowed =
        want_borrowed > UINT64_MAX - round ? UINT64_MAX : want_borrowed + round;
    uint64_t o = HMB_MAX_ALLOC - 1;
    want_over = want_over > UINT64_MAX - o ? UINT64_MAX : want_over + o;
    hmb_pool_stats_t st = ts_pool_stats(pool);
    hmb_runner_stats_t rs = ts_runner_stats(r);
    assert_int_equal(st.released_early, want_released);
    assert_int_equal(st.overcommitted_total, want_over);
    assert_int_equal(rs.returned_early, want_released);
    assert_int_equal(rs.borrowed, want_borrowed);
    assert_int_equal(st.borrows, (uint64_t)(2 * (i + 1)));
    assert_int_equal(st.held, 0);
  }
  hmb_pool_stats_t st = ts_pool_stats(pool);
  hmb_runner_stats_t rs = ts_runner_stats(r);
  assert_int_equal(st.released_early, UINT64_MAX);
  assert_int_equal(st.overcommitted_total, UINT64_MAX);
  assert_int_equal(rs.returned_early, UINT64_MAX);
  assert_int_equal(rs.borrowed, UINT64_MAX);
  /* Saturated, they stay there. */
  hmb_buffer_t *a = NULL;
  assert_int_equal(hmb_runner_reserve(r, 1000, &a), HMB_OK);
  hmb_buffer_close(a);
  assert_int_equal(hmb_runner_set_need(r, 0, NULL), HMB_OK);
  assert_int_equal(ts_pool_stats(pool).released_early, UINT64_MAX);
  assert_int_equal(ts_runner_stats(r).returned_early, UINT64_MAX);
  hmb_runner_destroy(r);
  ts_pool_done(pool);
}

/* ---- the executor identity ----------------------------------------------- */

typedef struct ident {
  hmb_executor_t *ex;
  atomic_long samples, broken;
  atomic_long finishing_seen; /* samples with finishing >= 1 */
  atomic_int stop;
  char first[256];
  pthread_mutex_t mu;
} ident_t;

static ident_t I;

/* One snapshot; a broken identity is recorded with its figures. */
static hmb_executor_stats_t ident_sample(const char *where) {
  hmb_executor_stats_t st;
  assert_int_equal(hmb_executor_stats(I.ex, &st), HMB_OK);
  atomic_fetch_add(&I.samples, 1);
  if (st.finishing > 0)
    atomic_fetch_add(&I.finishing_seen, 1);
  int64_t parts = st.queued + st.running + st.finishing +
                  (int64_t)(st.completed + st.failed + st.cancelled);
  if (st.queued < 0 || st.running < 0 || st.finishing < 0 ||
      (int64_t)st.submitted != parts) {
    if (atomic_fetch_add(&I.broken, 1) == 0) {
      pthread_mutex_lock(&I.mu);
      snprintf(I.first, sizeof I.first,
               "%s: submitted %" PRIu64 " != queued %" PRId64
               " + running %" PRId64 " + finishing %" PRId64
               " + completed %" PRIu64 " + failed %" PRIu64
               " + cancelled %" PRIu64,
               where, st.submitted, st.queued, st.running, st.finishing,
               st.completed, st.failed, st.cancelled);
      pthread_mutex_unlock(&I.mu);
    }
  }
  return st;
}

static void ident_reset(hmb_executor_t *ex) {
  I.ex = ex;
  atomic_store(&I.samples, 0);
  atomic_store(&I.broken, 0);
  atomic_store(&I.finishing_seen, 0);
  atomic_store(&I.stop, 0);
  I.first[0] = '\0';
}

static void ident_assert_sound(void) {
  if (atomic_load(&I.broken)) {
    fprintf(stderr, "%ld of %ld samples broke the identity; first: %s\n",
            atomic_load(&I.broken), atomic_load(&I.samples), I.first);
    fail();
  }
  assert_true(atomic_load(&I.samples) > 0);
}

static void *ident_sampler(void *arg) {
  (void)arg;
  /* Yields between samples: a busy sampler starves the workers where
   * threads take turns on one core (valgrind runs one at a time), and the
   * requeue phase then took minutes. */
  while (!atomic_load(&I.stop)) {
    ident_sample("sampler");
    sched_yield();
  }
  return NULL;
}

typedef struct itask {
  int spin; /* poll the cancel flag instead of returning */
  int fail; /* return this */
  atomic_int entered;
  atomic_int in_done; /* running count seen inside the callback */
  int64_t finishing_in_done;
  int64_t running_in_task;
  int status;
  pthread_t done_thread;
} itask_t;

static int ident_run(void *user, hmb_runner_t *r) {
  itask_t *t = user;
  atomic_store(&t->entered, 1);
  hmb_executor_stats_t st = ident_sample("task function");
  t->running_in_task = st.running;
  while (t->spin && !hmb_runner_is_cancelled(r))
    ts_sleep_ms(1);
  return t->fail;
}

static void ident_done(void *user, hmb_task_t *task, int status) {
  itask_t *t = user;
  (void)task;
  t->status = status;
  t->done_thread = pthread_self();
  hmb_executor_stats_t st = ident_sample("completion callback");
  t->finishing_in_done = st.finishing;
  atomic_store(&t->in_done, 1);
}

static hmb_executor_t *ident_exec(hmb_pool_t *pool, int threads,
                                  int64_t acquire_timeout_ns) {
  hmb_executor_config_t ec;
  hmb_executor_config_init(&ec);
  ec.threads = threads;
  ec.acquire_timeout_ns = acquire_timeout_ns;
  hmb_executor_t *ex = NULL;
  assert_int_equal(hmb_executor_create(pool, &ec, &ex), HMB_OK);
  return ex;
}

static hmb_task_t *ident_submit(hmb_executor_t *ex, itask_t *t, size_t est) {
  hmb_task_desc_t d;
  hmb_task_desc_init(&d);
  d.estimate = est;
  d.run = ident_run;
  d.done = ident_done;
  d.user = t;
  hmb_task_t *h = NULL;
  assert_int_equal(hmb_executor_submit(ex, &d, &h), HMB_OK);
  return h;
}

static int entered(void *arg) {
  return atomic_load(&((itask_t *)arg)->entered);
}

/* A normal run: tasks that succeed and fail, a sampler thread throughout. */
static void test_stats_executor_identity_during_a_run(void **state) {
  (void)state;
  hmb_pool_t *pool = ts_pool(64 * KIB, NULL, NULL);
  hmb_executor_t *ex = ident_exec(pool, 3, 0);
  ident_reset(ex);
  pthread_t sampler;
  pthread_create(&sampler, NULL, ident_sampler, NULL);
  enum { N = 60 };
  itask_t t[N];
  hmb_task_t *h[N];
  memset(t, 0, sizeof t);
  for (int i = 0; i < N; i++) {
    t[i].fail = i % 5 == 0 ? HMB_EFAILED : 0;
    h[i] = ident_submit(ex, &t[i], (size_t)(i % 7) * 8 * KIB);
  }
  for (int i = 0; i < N; i++) {
    assert_int_equal(hmb_task_wait(h[i], HMB_WAIT_FOREVER, NULL), HMB_OK);
    assert_int_equal(atomic_load(&t[i].in_done), 1);
    assert_true(t[i].running_in_task >= 1);
    assert_true(t[i].finishing_in_done >= 1); /* itself */
    hmb_task_release(h[i]);
  }
  atomic_store(&I.stop, 1);
  pthread_join(sampler, NULL);
  ident_assert_sound();
  hmb_executor_stats_t st = ident_sample("after");
  assert_int_equal(st.completed, N - N / 5);
  assert_int_equal(st.failed, N / 5);
  assert_int_equal(st.finishing, 0);
  hmb_executor_destroy(ex);
  ts_pool_done(pool);
}

/* A task cancelled in the queue: its callback runs on the cancelling
 * thread, with the task counted as finishing (0.1 had it in no count). */
static void
test_stats_executor_identity_in_a_cancelled_tasks_callback(void **state) {
  (void)state;
  hmb_pool_t *pool = ts_pool(64 * KIB, NULL, NULL);
  hmb_executor_t *ex = ident_exec(pool, 1, 0);
  ident_reset(ex);
  itask_t busy;
  memset(&busy, 0, sizeof busy);
  busy.spin = 1;
  hmb_task_t *hb = ident_submit(ex, &busy, 0);
  assert_true(ts_wait_for(entered, &busy, 20000)); /* the worker is taken */
  enum { N = 8 };
  itask_t t[N];
  hmb_task_t *h[N];
  memset(t, 0, sizeof t);
  for (int i = 0; i < N; i++)
    h[i] = ident_submit(ex, &t[i], 1000);
  for (int i = 0; i < N; i++) {
    assert_int_equal(hmb_task_cancel(h[i]), HMB_OK);
    assert_int_equal(atomic_load(&t[i].in_done), 1); /* fired already */
    assert_true(pthread_equal(t[i].done_thread, pthread_self()));
    assert_int_equal(t[i].status, HMB_ECANCELED);
    assert_int_equal(t[i].finishing_in_done, 1);
    hmb_executor_stats_t st = ident_sample("after a cancel");
    assert_int_equal(st.cancelled, (uint64_t)(i + 1));
    assert_int_equal(st.queued, N - i - 1);
    assert_int_equal(st.finishing, 0);
  }
  assert_int_equal(hmb_task_cancel(hb), HMB_OK);
  assert_int_equal(hmb_task_wait(hb, HMB_WAIT_FOREVER, NULL), HMB_OK);
  ident_assert_sound();
  for (int i = 0; i < N; i++)
    hmb_task_release(h[i]);
  hmb_task_release(hb);
  hmb_executor_destroy(ex);
  ts_pool_done(pool);
}

static int one_start_waiter(void *arg) {
  return ts_pool_stats(arg).acquire_waiters == 1;
}

/* Admission that fails: a task cancelled while its worker waits for its
 * budget completes on the worker; tasks that time out go back in line
 * (requeues) while a sampler watches. */
static void test_stats_executor_identity_when_admission_fails(void **state) {
  (void)state;
  hmb_pool_t *pool = ts_pool(1000, NULL, NULL);
  hmb_runner_t *blocker = ts_started_runner(pool, 1000);
  /* Cancelled while admitting (acquisition timeout: one hour). */
  hmb_executor_t *ex = ident_exec(pool, 1, 3600 * 1000 * MS);
  ident_reset(ex);
  itask_t a;
  memset(&a, 0, sizeof a);
  hmb_task_t *ha = ident_submit(ex, &a, 500);
  assert_true(ts_wait_for(one_start_waiter, pool, 20000));
  hmb_executor_stats_t st = ident_sample("admitting");
  assert_int_equal(st.queued, 1);
  assert_int_equal(hmb_task_cancel(ha), HMB_OK);
  assert_int_equal(hmb_task_wait(ha, HMB_WAIT_FOREVER, NULL), HMB_OK);
  assert_int_equal(a.status, HMB_ECANCELED);
  assert_int_equal(a.finishing_in_done, 1);
  assert_int_equal(atomic_load(&a.entered), 0);
  hmb_task_release(ha);
  hmb_executor_destroy(ex);
  ident_assert_sound();
  /* Requeues: 1 ms attempts that all time out, sampled throughout. */
  ex = ident_exec(pool, 2, MS);
  ident_reset(ex);
  pthread_t sampler;
  pthread_create(&sampler, NULL, ident_sampler, NULL);
  enum { N = 6 };
  itask_t t[N];
  hmb_task_t *h[N];
  memset(t, 0, sizeof t);
  for (int i = 0; i < N; i++)
    h[i] = ident_submit(ex, &t[i], 600);
  for (;;) {
    hmb_executor_stats_t s = ident_sample("requeues");
    if (s.requeues >= 20)
      break;
    ts_sleep_ms(1);
  }
  hmb_runner_finish(blocker, 0, NULL); /* now they run */
  for (int i = 0; i < N; i++) {
    assert_int_equal(hmb_task_wait(h[i], HMB_WAIT_FOREVER, NULL), HMB_OK);
    assert_int_equal(t[i].status, 0);
    hmb_task_release(h[i]);
  }
  atomic_store(&I.stop, 1);
  pthread_join(sampler, NULL);
  ident_assert_sound();
  hmb_executor_destroy(ex);
  hmb_runner_destroy(blocker);
  ts_pool_done(pool);
}

typedef struct shut_arg {
  hmb_executor_t *ex;
  int mode;
  int rc;
} shut_arg_t;

static void *shut_main(void *arg) {
  shut_arg_t *s = arg;
  s->rc = hmb_executor_shutdown(s->ex, s->mode);
  return NULL;
}

/* Shutdown: CANCEL fires the callbacks of the queued tasks on the thread
 * that shuts down, and DRAIN runs them; sampled inside and outside. */
static void run_identity_during_shutdown(int mode) {
  hmb_pool_t *pool = ts_pool(64 * KIB, NULL, NULL);
  hmb_executor_t *ex = ident_exec(pool, 2, MS);
  ident_reset(ex);
  itask_t spin[2];
  memset(spin, 0, sizeof spin);
  hmb_task_t *hs[2];
  for (int i = 0; i < 2; i++) {
    spin[i].spin = mode == HMB_SHUTDOWN_CANCEL;
    hs[i] = ident_submit(ex, &spin[i], 8 * KIB);
    assert_true(ts_wait_for(entered, &spin[i], 20000));
  }
  enum { N = 30 };
  itask_t t[N];
  hmb_task_t *h[N];
  memset(t, 0, sizeof t);
  for (int i = 0; i < N; i++)
    h[i] = ident_submit(ex, &t[i], (size_t)(i % 4) * 16 * KIB);
  pthread_t sampler;
  pthread_create(&sampler, NULL, ident_sampler, NULL);
  shut_arg_t sa = {ex, mode, -99};
  pthread_t th;
  pthread_create(&th, NULL, shut_main, &sa);
  pthread_join(th, NULL);
  atomic_store(&I.stop, 1);
  pthread_join(sampler, NULL);
  assert_int_equal(sa.rc, HMB_OK);
  for (int i = 0; i < N; i++) {
    assert_int_equal(hmb_task_done(h[i]), 1);
    assert_int_equal(atomic_load(&t[i].in_done), 1);
    assert_true(t[i].finishing_in_done >= 1);
    if (mode == HMB_SHUTDOWN_CANCEL) {
      /* Both workers were busy: every queued task was dropped by the
       * shutdown, and called back on its thread. */
      assert_int_equal(t[i].status, HMB_ECANCELED);
      assert_int_equal(atomic_load(&t[i].entered), 0);
      assert_true(pthread_equal(t[i].done_thread, th));
    } else {
      assert_int_equal(t[i].status, 0);
    }
    hmb_task_release(h[i]);
  }
  for (int i = 0; i < 2; i++)
    hmb_task_release(hs[i]);
  ident_assert_sound();
  hmb_executor_stats_t st = ident_sample("after shutdown");
  assert_int_equal(st.submitted, N + 2);
  assert_int_equal(st.queued + st.running + st.finishing, 0);
  if (mode == HMB_SHUTDOWN_DRAIN)
    assert_int_equal(st.completed, N + 2);
  else
    assert_true(st.cancelled >= 2);
  hmb_executor_destroy(ex);
  ts_pool_done(pool);
}

static void test_stats_executor_identity_during_cancel_shutdown(void **state) {
  (void)state;
  run_identity_during_shutdown(HMB_SHUTDOWN_CANCEL);
}

static void test_stats_executor_identity_during_drain_shutdown(void **state) {
  (void)state;
  run_identity_during_shutdown(HMB_SHUTDOWN_DRAIN);
}

/* ---- exactness of the usage figures -------------------------------------- */

enum { RING = 64, PIECE = 1000 };

typedef struct handoff {
  hmb_runner_t *r;
  hmb_buffer_t *_Atomic ring[RING];
  atomic_int stop;
  atomic_int failed;
  atomic_long allocated, closed; /* completed operations */
} handoff_t;

/* Allocates on its thread (its shard) and hands the buffers over. */
static void *handoff_producer(void *arg) {
  handoff_t *h = arg;
  unsigned i = 0;
  while (!atomic_load(&h->stop)) {
    if (atomic_load(&h->ring[i % RING]))
      continue;
    hmb_buffer_t *b = NULL;
    if (hmb_runner_alloc(h->r, PIECE, 0, &b) != 0) {
      atomic_store(&h->failed, 1);
      break;
    }
    atomic_fetch_add(&h->allocated, 1);
    atomic_store(&h->ring[i % RING], b);
    i++;
  }
  return NULL;
}

/* Closes them on another thread (another shard). */
static void *handoff_consumer(void *arg) {
  handoff_t *h = arg;
  unsigned i = 0;
  while (!atomic_load(&h->stop)) {
    hmb_buffer_t *b = atomic_exchange(&h->ring[i % RING], NULL);
    if (!b)
      continue;
    hmb_buffer_close(b);
    atomic_fetch_add(&h->closed, 1);
    i++;
  }
  return NULL;
}

/*
 * stats.h: while allocations or closes run, live bytes are "off by at most
 * the bytes of the operations that run while the snapshot is taken". One
 * thread allocates 1000-byte buffers and another closes them, counting
 * what completed. With a0, c0 the completed allocations and closes before
 * a snapshot and a1, c1 after it (and one of each partly done at either
 * end), every snapshot of the runner's (and the pool's) live bytes must lie
 * in [(a0 - c1 - 1) x 1000, (a1 + 1 - c0) x 1000]. (A snapshot that raced a
 * fold of another thread's part into the shared total used to miss, or
 * count twice, up to the fold step, whatever ran meanwhile.)
 * Probabilistic: until a snapshot is out of range, or 20 million snapshots
 * (a quarter under sanitizers), or 5 s.
 */
static void
test_stats_live_bytes_off_by_at_most_the_operations_in_flight(void **state) {
  (void)state;
  hmb_pool_t *pool = ts_pool(64 * MIB, NULL, NULL);
  handoff_t h;
  memset(&h, 0, sizeof h);
  h.r = ts_started_runner(pool, 64 * MIB); /* all within its spare */
  pthread_t tp, tc;
  pthread_create(&tp, NULL, handoff_producer, &h);
  pthread_create(&tc, NULL, handoff_consumer, &h);
  const int64_t lo = -2 * PIECE, hi = (RING + 1) * PIECE + 2 * PIECE;
  long snapshots = ts_env_long("HMB_EXACTNESS_SNAPSHOTS", 20000000);
  long outside = 0;
  int64_t seen_lo = 0, seen_hi = 0;
  struct timespec t0, t;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  long taken = 0;
  for (long i = 0; i < snapshots && outside == 0; i++, taken++) {
    long a0 = atomic_load(&h.allocated), c0 = atomic_load(&h.closed);
    hmb_runner_stats_t rs;
    hmb_runner_stats(h.r, &rs);
    int64_t v = rs.live;
    if ((i & 63) == 0) {
      hmb_pool_stats_t ps;
      hmb_pool_stats(pool, &ps);
      v = ps.live_bytes;
    }
    long a1 = atomic_load(&h.allocated), c1 = atomic_load(&h.closed);
    if (v < (int64_t)(a0 - c1 - 1) * PIECE ||
        v > (int64_t)(a1 + 1 - c0) * PIECE)
      outside++;
    if (v < seen_lo)
      seen_lo = v;
    if (v > seen_hi)
      seen_hi = v;
    if ((i & 4095) == 0) {
      clock_gettime(CLOCK_MONOTONIC, &t);
      if (t.tv_sec - t0.tv_sec >= 5)
        break;
    }
  }
  atomic_store(&h.stop, 1);
  pthread_join(tp, NULL);
  pthread_join(tc, NULL);
  for (int i = 0; i < RING; i++)
    if (h.ring[i])
      hmb_buffer_close(h.ring[i]);
  fprintf(stderr,
          "live bytes seen in [%" PRId64 ", %" PRId64 "] in %ld snapshots, "
          "%ld outside [%" PRId64 ", %" PRId64 "]\n",
          seen_lo, seen_hi, taken, outside, lo, hi);
  assert_int_equal(atomic_load(&h.failed), 0);
  assert_int_equal(ts_runner_stats(h.r).live, 0); /* exact at rest */
  hmb_runner_destroy(h.r);
  ts_pool_done(pool);
  assert_int_equal(outside, 0);
}

/* ---- exactness at rest after cross-thread closes --------------------------
 */

enum { XN = 512, XROUNDS = 6 };

typedef struct xrun {
  hmb_runner_t *r;
  hmb_buffer_t *b[XN];
  size_t size[XN];
  int from, to; /* the slice [from, to) this thread works on */
  unsigned seed;
  int failed;
} xrun_t;

/* Sizes across the path: small classes, 4 KiB, 64 KiB, a mapping, and some
 * reservations (budget without memory). */
static size_t xsize(unsigned k) {
  static const size_t sz[] = {1,    64,    100,       4096,      4000,
                              8192, 65536, 65536 + 7, 300 * KIB, 777};
  return sz[k % (sizeof sz / sizeof sz[0])];
}

static void *xalloc_main(void *arg) {
  xrun_t *x = arg;
  for (int i = x->from; i < x->to; i++) {
    unsigned k = x->seed + (unsigned)i * 7u;
    x->size[i] = xsize(k);
    int rc = k % 13 == 0 ? hmb_runner_reserve(x->r, x->size[i], &x->b[i])
                         : hmb_runner_alloc(x->r, x->size[i], 0, &x->b[i]);
    if (rc != 0)
      x->failed = 1;
  }
  return NULL;
}

static void *xclose_main(void *arg) {
  xrun_t *x = arg;
  for (int i = x->from; i < x->to; i++) {
    if (x->b[i] && hmb_buffer_close(x->b[i]) != 0)
      x->failed = 1;
    x->b[i] = NULL;
  }
  return NULL;
}

/* Run fn over [0, XN) on `threads` new threads (they take over the indices
 * of the threads before them, and the shards those owned; a close on a
 * thread that does not own the allocation's shard counts in the shared
 * one). */
static void xon_threads(xrun_t *x, void *(*fn)(void *), int threads) {
  pthread_t t[8];
  xrun_t part[8];
  for (int i = 0; i < threads; i++) {
    part[i] = *x;
    part[i].from = XN * i / threads;
    part[i].to = XN * (i + 1) / threads;
  }
  for (int i = 0; i < threads; i++)
    pthread_create(&t[i], NULL, fn, &part[i]);
  for (int i = 0; i < threads; i++) {
    pthread_join(t[i], NULL);
    for (int j = part[i].from; j < part[i].to; j++) {
      x->b[j] = part[i].b[j];
      x->size[j] = part[i].size[j];
    }
    x->failed |= part[i].failed;
  }
}

/*
 * stats.h: the usage figures are exact whenever nothing is in flight. The
 * buffers are allocated on some threads and closed on others (a close
 * counts back into the shard of the allocation, not the closer's), in
 * rounds; between rounds, with the buffers of a round all live, then all
 * closed, every current figure is checked exactly: runner and pool live
 * bytes and buffers, allocations, the memory layer's pageable live bytes
 * and physical bytes (0 once all are closed), and held == live + spare.
 */
static void test_stats_exact_at_rest_after_cross_thread_closes(void **state) {
  (void)state;
  hmb_pool_t *pool = ts_pool(256 * MIB, NULL, NULL);
  hmb_runner_t *r = ts_started_runner(pool, 64 * MIB);
  static xrun_t x;
  uint64_t allocs = 0;
  for (int round = 0; round < XROUNDS; round++) {
    memset(&x, 0, sizeof x);
    x.r = r;
    x.seed = (unsigned)round * 31u;
    xon_threads(&x, xalloc_main, 1 + round % 3);
    assert_int_equal(x.failed, 0);
    int64_t live = 0, pageable = 0;
    for (int i = 0; i < XN; i++) {
      live += (int64_t)x.size[i];
      if (hmb_buffer_data(x.b[i]))
        pageable += (int64_t)x.size[i];
    }
    allocs += XN;
    hmb_runner_stats_t rs = ts_runner_stats(r);
    hmb_pool_stats_t ps = ts_pool_stats(pool);
    hmb_memory_stats_t ms = ts_memory_stats(pool);
    assert_int_equal(rs.live, live);
    assert_int_equal(rs.live_buffers, XN);
    assert_int_equal(rs.allocations, allocs);
    assert_int_equal(rs.held, rs.live + rs.spare);
    assert_int_equal(ps.live_bytes, live);
    assert_int_equal(ps.live_buffers, XN);
    assert_int_equal(ms.pageable_live, pageable);
    assert_true(ms.pageable_physical > ms.pageable_live);
    xon_threads(&x, xclose_main, 1 + (round + 1) % 4);
    assert_int_equal(x.failed, 0);
    rs = ts_runner_stats(r);
    ps = ts_pool_stats(pool);
    ms = ts_memory_stats(pool);
    assert_int_equal(rs.live, 0);
    assert_int_equal(rs.live_buffers, 0);
    assert_int_equal(rs.allocations, allocs);
    assert_int_equal(rs.spare, rs.held);
    assert_int_equal(ps.live_bytes, 0);
    assert_int_equal(ps.live_buffers, 0);
    assert_int_equal(ms.pageable_live, 0);
    assert_int_equal(ms.pageable_physical, 0);
  }
  /* The peak: at least the largest round, never above the peak held. */
  hmb_runner_stats_t rs = ts_runner_stats(r);
  assert_true(rs.peak_live > 0 && rs.peak_live <= rs.peak_held);
  size_t back = 0;
  assert_int_equal(hmb_runner_finish(r, 0, &back), HMB_OK);
  assert_int_equal((int64_t)back, rs.held);
  assert_int_equal(ts_pool_stats(pool).held, 0);
  hmb_runner_destroy(r);
  ts_pool_done(pool);
}

/*
 * The same with more threads than a runner has thread shards, all running
 * at once: threads whose indices agree modulo the shard count share a
 * thread shard, which only its owner writes (with plain stores), so the
 * others count in the shared shard; and a thread that exits passes its
 * index, and what it owned, to a later thread. MT_THREADS threads share
 * one runner and each also has one of its own; each allocates and closes
 * in random order (small blocks, 4 KiB, 64 KiB, mappings, reservations)
 * and hands some buffers of the shared runner to the next thread through a
 * slot, which closes them. Twice they stop, with buffers live, and every
 * current figure is checked exactly against what they counted; then all is
 * closed and everything is 0. Two generations of threads run it, the second
 * after the first exited, on the same runners.
 */
enum { MT_THREADS = 9, MT_SLOTS = 48, MT_OPS = 6000 };

typedef struct mt_shared {
  hmb_runner_t *common;
  hmb_runner_t *own[MT_THREADS];
  _Atomic(hmb_buffer_t *) handoff[MT_THREADS];
  pthread_barrier_t stop, go;
  atomic_int failed;
  int64_t live_all, bufs_all; /* every runner's, at the last check */
} mt_shared_t;

typedef struct mt_thread {
  mt_shared_t *sh;
  int id;
  unsigned gen;
  hmb_buffer_t *b[MT_SLOTS];
  int on_common[MT_SLOTS];
  /* what this thread's buffers add up to, per runner (own, common) */
  int64_t live[2], bufs[2];
  uint64_t allocs[2];
} mt_thread_t;

static size_t mt_size(uint64_t v) {
  switch (v % 7) {
  case 0:
  case 1:
  case 2:
    return 1 + (size_t)(v >> 8) % 200; /* small classes */
  case 3:
    return 4096;
  case 4:
    return 1 + (size_t)(v >> 8) % (64 * KIB);
  case 5:
    return 256 * KIB + (size_t)(v >> 8) % (64 * KIB); /* a mapping */
  default:
    return 4000;
  }
}

static void mt_steps(mt_thread_t *t, uint64_t *rng, int ops) {
  mt_shared_t *sh = t->sh;
  for (int n = 0; n < ops; n++) {
    uint64_t v = ts_rand(rng);
    int i = (int)(v % MT_SLOTS);
    if (t->b[i]) {
      int c = t->on_common[i];
      int64_t sz = (int64_t)hmb_buffer_size(t->b[i]);
      if (c && v % 5 == 0) {
        /* hand it to the next thread, which closes it; a buffer already in
         * the slot comes back here and is closed by this thread */
        int to = (t->id + 1) % MT_THREADS;
        hmb_buffer_t *old = atomic_exchange(&sh->handoff[to], t->b[i]);
        if (old && hmb_buffer_close(old) != HMB_OK)
          atomic_store(&sh->failed, 1);
      } else if (hmb_buffer_close(t->b[i]) != HMB_OK) {
        atomic_store(&sh->failed, 1);
      }
      t->b[i] = NULL;
      t->live[c] -= sz;
      t->bufs[c]--;
    } else {
      int c = (v >> 3) % 2 == 0;
      hmb_runner_t *r = c ? sh->common : sh->own[t->id];
      size_t sz = mt_size(v >> 4);
      int rc = (v >> 40) % 11 == 0 ? hmb_runner_reserve(r, sz, &t->b[i])
                                   : hmb_runner_alloc(r, sz, 0, &t->b[i]);
      if (rc != HMB_OK) {
        atomic_store(&sh->failed, 1);
        continue;
      }
      t->on_common[i] = c;
      t->live[c] += (int64_t)sz;
      t->bufs[c]++;
      t->allocs[c]++;
    }
    hmb_buffer_t *in = atomic_exchange(&sh->handoff[t->id], NULL);
    if (in && hmb_buffer_close(in) != HMB_OK)
      atomic_store(&sh->failed, 1);
  }
}

static void *mt_main(void *arg) {
  mt_thread_t *t = arg;
  uint64_t rng = 0x9e3779b97f4a7c15ull * (uint64_t)(t->id + 1) + t->gen;
  for (int phase = 0; phase < 2; phase++) {
    mt_steps(t, &rng, MT_OPS);
    /* stop with buffers live; the hand-off slots are drained below by the
     * checking thread's count (the buffers in them are still live) */
    pthread_barrier_wait(&t->sh->stop);
    pthread_barrier_wait(&t->sh->go);
  }
  for (int i = 0; i < MT_SLOTS; i++)
    if (t->b[i]) {
      int c = t->on_common[i];
      t->live[c] -= (int64_t)hmb_buffer_size(t->b[i]);
      t->bufs[c]--;
      if (hmb_buffer_close(t->b[i]) != HMB_OK)
        atomic_store(&t->sh->failed, 1);
      t->b[i] = NULL;
    }
  return NULL;
}

/* The exact figures while every thread waits at the stop barrier. */
static void mt_check_at_rest(mt_shared_t *sh, mt_thread_t *t,
                             const uint64_t *allocs0) {
  int64_t live_c = 0, bufs_c = 0, live_all = 0, bufs_all = 0;
  uint64_t allocs_c = allocs0[MT_THREADS];
  for (int k = 0; k < MT_THREADS; k++) {
    live_c += t[k].live[1];
    bufs_c += t[k].bufs[1];
    allocs_c += t[k].allocs[1];
  }
  /* The buffers waiting in hand-off slots (the shared runner's) were
   * counted out by the thread that handed them over, but are still live. */
  for (int k = 0; k < MT_THREADS; k++) {
    hmb_buffer_t *h = atomic_load(&sh->handoff[k]);
    if (h) {
      live_c += (int64_t)hmb_buffer_size(h);
      bufs_c++;
    }
  }
  hmb_runner_stats_t rs = ts_runner_stats(sh->common);
  assert_int_equal(rs.live, live_c);
  assert_int_equal(rs.live_buffers, bufs_c);
  assert_int_equal(rs.allocations, allocs_c);
  assert_int_equal(rs.held, rs.live + rs.spare);
  live_all = live_c;
  bufs_all = bufs_c;
  for (int k = 0; k < MT_THREADS; k++) {
    rs = ts_runner_stats(sh->own[k]);
    assert_int_equal(rs.live, t[k].live[0]);
    assert_int_equal(rs.live_buffers, t[k].bufs[0]);
    assert_int_equal(rs.allocations, allocs0[k] + t[k].allocs[0]);
    assert_int_equal(rs.held, rs.live + rs.spare);
  }
  for (int k = 0; k < MT_THREADS; k++) {
    live_all += t[k].live[0];
    bufs_all += t[k].bufs[0];
  }
  sh->live_all = live_all;
  sh->bufs_all = bufs_all;
}

static void
test_stats_exact_at_rest_with_more_threads_than_shards(void **state) {
  (void)state;
  hmb_pool_t *pool = ts_pool(1024 * MIB, NULL, NULL);
  static mt_shared_t sh;
  static mt_thread_t t[MT_THREADS];
  memset(&sh, 0, sizeof sh);
  sh.common = ts_started_runner(pool, 256 * MIB);
  for (int k = 0; k < MT_THREADS; k++)
    sh.own[k] = ts_started_runner(pool, 16 * MIB);
  uint64_t allocs0[MT_THREADS + 1] = {0};
  for (unsigned gen = 0; gen < 2; gen++) {
    memset(t, 0, sizeof t);
    pthread_barrier_init(&sh.stop, NULL, MT_THREADS + 1);
    pthread_barrier_init(&sh.go, NULL, MT_THREADS + 1);
    pthread_t th[MT_THREADS];
    for (int k = 0; k < MT_THREADS; k++) {
      t[k].sh = &sh;
      t[k].id = k;
      t[k].gen = gen;
      assert_int_equal(pthread_create(&th[k], NULL, mt_main, &t[k]), 0);
    }
    for (int phase = 0; phase < 2; phase++) {
      pthread_barrier_wait(&sh.stop);
      mt_check_at_rest(&sh, t, allocs0);
      hmb_pool_stats_t ps = ts_pool_stats(pool);
      hmb_memory_stats_t ms = ts_memory_stats(pool);
      assert_int_equal(ps.live_bytes, sh.live_all);
      assert_int_equal(ps.live_buffers, sh.bufs_all);
      assert_true(ms.pageable_live <= sh.live_all);
      assert_true(ms.pageable_physical >= ms.pageable_live);
      pthread_barrier_wait(&sh.go);
    }
    for (int k = 0; k < MT_THREADS; k++)
      assert_int_equal(pthread_join(th[k], NULL), 0);
    /* what is left in the hand-off slots is closed here */
    for (int k = 0; k < MT_THREADS; k++) {
      hmb_buffer_t *h = atomic_exchange(&sh.handoff[k], NULL);
      if (h)
        assert_int_equal(hmb_buffer_close(h), HMB_OK);
    }
    assert_int_equal(atomic_load(&sh.failed), 0);
    pthread_barrier_destroy(&sh.stop);
    pthread_barrier_destroy(&sh.go);
    for (int k = 0; k < MT_THREADS; k++) {
      allocs0[k] += t[k].allocs[0];
      allocs0[MT_THREADS] += t[k].allocs[1];
    }
    /* Everything closed: every figure is 0, and the allocations add up. */
    hmb_runner_stats_t rs = ts_runner_stats(sh.common);
    assert_int_equal(rs.live, 0);
    assert_int_equal(rs.live_buffers, 0);
    assert_int_equal(rs.allocations, allocs0[MT_THREADS]);
    assert_int_equal(rs.spare, rs.held);
    for (int k = 0; k < MT_THREADS; k++) {
      rs = ts_runner_stats(sh.own[k]);
      assert_int_equal(rs.live, 0);
      assert_int_equal(rs.live_buffers, 0);
      assert_int_equal(rs.allocations, allocs0[k]);
      assert_int_equal(rs.spare, rs.held);
    }
    hmb_pool_stats_t ps = ts_pool_stats(pool);
    hmb_memory_stats_t ms = ts_memory_stats(pool);
    assert_int_equal(ps.live_bytes, 0);
    assert_int_equal(ps.live_buffers, 0);
    assert_int_equal(ms.pageable_live, 0);
    assert_int_equal(ms.pageable_physical, 0);
  }
  for (int k = 0; k <= MT_THREADS; k++) {
    hmb_runner_t *r = k < MT_THREADS ? sh.own[k] : sh.common;
    assert_int_equal(hmb_runner_finish(r, 0, NULL), HMB_OK);
    hmb_runner_destroy(r);
  }
  assert_int_equal(ts_pool_stats(pool).held, 0);
  ts_pool_done(pool);
}

/*
 * stats.h: usage peaks are exact when one thread does all the allocating
 * and closing. A walk of allocations (1 B to 600 KiB, small blocks and
 * mappings) and closes in random order, rising and falling across the
 * 1 MiB fold step many times, on one runner and then on a second one after
 * the first is destroyed: after every operation the runner's peak_live,
 * the pool's peak_live_bytes and the memory layer's pageable_peak equal
 * the peaks of the same walk counted here. Then both runners live at once
 * on the one thread: the runners' peaks and pageable_peak stay exact, and
 * the pool's is within one fold step (stats.h: S = 2 shards).
 */
#define PW_BUFS 48
#define PW_OPS 3000

typedef struct peak_walk {
  hmb_buffer_t *b[PW_BUFS];
  size_t size[PW_BUFS];
  int64_t live, peak;
} peak_walk_t;

static size_t pw_size(uint64_t *rng) {
  uint64_t v = ts_rand(rng);
  switch (v % 4) {
  case 0:
    return 1 + (size_t)(v >> 8) % 256; /* small */
  case 1:
    return 1 + (size_t)(v >> 8) % (64 * KIB);
  default:
    return 1 + (size_t)(v >> 8) % (600 * KIB); /* mappings from 256 KiB */
  }
}

/* One step on runner r: allocate into an empty slot or close a full one. */
static void pw_step(peak_walk_t *w, hmb_runner_t *r, uint64_t *rng) {
  int i = (int)(ts_rand(rng) % PW_BUFS);
  if (w->b[i]) {
    assert_int_equal(hmb_buffer_close(w->b[i]), HMB_OK);
    w->b[i] = NULL;
    w->live -= (int64_t)w->size[i];
  } else {
    w->size[i] = pw_size(rng);
    assert_int_equal(hmb_runner_alloc(r, w->size[i], 0, &w->b[i]), HMB_OK);
    w->live += (int64_t)w->size[i];
    if (w->live > w->peak)
      w->peak = w->live;
  }
}

static void pw_close_all(peak_walk_t *w) {
  for (int i = 0; i < PW_BUFS; i++)
    if (w->b[i]) {
      assert_int_equal(hmb_buffer_close(w->b[i]), HMB_OK);
      w->b[i] = NULL;
      w->live -= (int64_t)w->size[i];
    }
  assert_int_equal(w->live, 0);
}

static void test_stats_peaks_exact_on_one_thread(void **state) {
  (void)state;
  hmb_pool_t *pool = ts_pool(256 * MIB, NULL, NULL);
  uint64_t rng = 0x9e3779b97f4a7c15u;
  int64_t pool_peak = 0; /* of the pool's live bytes, all runners */
  for (int turn = 0; turn < 2; turn++) {
    hmb_runner_t *r = ts_started_runner(pool, 64 * MIB);
    static peak_walk_t w;
    memset(&w, 0, sizeof w);
    for (int op = 0; op < PW_OPS; op++) {
      pw_step(&w, r, &rng);
      if (w.live > pool_peak)
        pool_peak = w.live;
      hmb_runner_stats_t rs = ts_runner_stats(r);
      hmb_pool_stats_t ps = ts_pool_stats(pool);
      hmb_memory_stats_t ms = ts_memory_stats(pool);
      assert_int_equal(rs.live, w.live);
      assert_int_equal(rs.peak_live, w.peak);
      assert_int_equal(ps.live_bytes, w.live);
      assert_int_equal(ps.peak_live_bytes, pool_peak);
      assert_int_equal(ms.pageable_live, w.live);
      assert_int_equal(ms.pageable_peak, pool_peak);
    }
    pw_close_all(&w);
    hmb_runner_destroy(r);
  }
  /* Two runners live at once, still one thread. */
  hmb_runner_t *ra = ts_started_runner(pool, 64 * MIB);
  hmb_runner_t *rb = ts_started_runner(pool, 64 * MIB);
  static peak_walk_t wa, wb;
  memset(&wa, 0, sizeof wa);
  memset(&wb, 0, sizeof wb);
  int64_t both_peak = 0;
  for (int op = 0; op < PW_OPS; op++) {
    if (ts_rand(&rng) & 1)
      pw_step(&wa, ra, &rng);
    else
      pw_step(&wb, rb, &rng);
    int64_t sum = wa.live + wb.live;
    if (sum > both_peak)
      both_peak = sum;
    if (sum > pool_peak)
      pool_peak = sum;
    hmb_pool_stats_t ps = ts_pool_stats(pool);
    hmb_memory_stats_t ms = ts_memory_stats(pool);
    assert_int_equal(ps.live_bytes, sum);
    assert_int_equal(ms.pageable_live, sum);
    assert_int_equal(ms.pageable_peak, pool_peak);
    assert_int_equal(ts_runner_stats(ra).peak_live, wa.peak);
    assert_int_equal(ts_runner_stats(rb).peak_live, wb.peak);
    assert_true(ps.peak_live_bytes <= pool_peak + (int64_t)HMB_STATS_PEAK_STEP);
    assert_true(ps.peak_live_bytes >= pool_peak - (int64_t)HMB_STATS_PEAK_STEP);
  }
  assert_true(both_peak > (int64_t)(2 * HMB_STATS_PEAK_STEP));
  pw_close_all(&wa);
  pw_close_all(&wb);
  hmb_runner_destroy(ra);
  hmb_runner_destroy(rb);
  ts_pool_done(pool);
}

int main(void) {
  pthread_mutex_init(&I.mu, NULL);
  ts_watchdog_arm("test_stats", 120);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_stats_pool_sized_writes_only_its_size),
      cmocka_unit_test(test_stats_runner_sized_writes_only_its_size),
      cmocka_unit_test(test_stats_memory_sized_writes_only_its_size),
      cmocka_unit_test(test_stats_executor_sized_writes_only_its_size),
      cmocka_unit_test(test_stats_pool_create_sized_inputs),
      cmocka_unit_test(test_stats_runner_and_executor_create_sized_inputs),
      cmocka_unit_test(test_stats_submit_sized_inputs),
      cmocka_unit_test(test_stats_cumulative_counters_saturate),
      cmocka_unit_test(
          test_stats_live_bytes_off_by_at_most_the_operations_in_flight),
      cmocka_unit_test(test_stats_exact_at_rest_after_cross_thread_closes),
      cmocka_unit_test(test_stats_exact_at_rest_with_more_threads_than_shards),
      cmocka_unit_test(test_stats_peaks_exact_on_one_thread),
      cmocka_unit_test(test_stats_executor_identity_during_a_run),
      cmocka_unit_test(
          test_stats_executor_identity_in_a_cancelled_tasks_callback),
      cmocka_unit_test(test_stats_executor_identity_when_admission_fails),
      cmocka_unit_test(test_stats_executor_identity_during_cancel_shutdown),
      cmocka_unit_test(test_stats_executor_identity_during_drain_shutdown),
  };
  int rc = cmocka_run_group_tests(tests, NULL, NULL);
  ts_watchdog_disarm();
  return rc;
}
