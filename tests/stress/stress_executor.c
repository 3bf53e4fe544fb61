/*
 * stress_executor.c - the executor under concurrent submit, cancel, close
 * and shutdown, split out of the 0.1 random stress.
 *
 * Tasks of random estimates run on an executor over a small pool with the
 * built-in backends. A task allocates (often beyond its estimate, so it
 * borrows), reserves, slices, sometimes through the bound allocator,
 * sometimes declares its real need, sometimes is staged (admitted for a
 * first piece, then grown), sometimes waits to be cancelled, sometimes
 * submits a follow-up task, hands some buffers out to closer threads and
 * sometimes fails. Submitter threads queue tasks and cancel earlier ones
 * (queued, admitting or running) while the main thread shuts the executor
 * down in DRAIN or CANCEL mode (or both, from two threads). Throughout, a
 * sampler thread checks the executor identity (submitted == queued +
 * running + finishing + completed + failed + cancelled) and runs
 * hmb_pool_check(pool, 0). Then: every task's callback fired exactly once,
 * its status agrees with what the task returned and with every cancel, the
 * executor's counters add up, the self-check holds at rest, the reference
 * count of every handed-out buffer is what the test holds, and once they
 * are closed every budget and memory counter is back at rest.
 *
 * Sizes: HMB_STRESS_TASKS (default 2000, a quarter under sanitizers). The
 * seed is printed; HMB_TEST_SEED replays the random choices.
 */
#define _POSIX_C_SOURCE 200809L
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "storm_support.h"
#include "testsupport.h"

enum { LIMIT = 64 * 1024 };

typedef struct ref {
  hmb_buffer_t *b;
  unsigned char tag; /* every byte of the root was set to this */
} ref_t;

static struct {
  hmb_pool_t *pool;
  uint64_t seed;
  atomic_long log_lines;
} G;

#define FAILF(...) sts_failf("stress_executor", G.seed, __VA_ARGS__)
#define fail_detail(line, cond, detail)                                        \
  sts_fail_at("stress_executor", G.seed, (line), (cond), (detail))
#define CHECK(cond, detail)                                                    \
  STS_CHECK("stress_executor", G.seed, (cond), #cond, detail)
#define CHECK_RC(rc, allowed_mask, what)                                       \
  sts_check_rc("stress_executor", G.seed, __LINE__, (rc), (allowed_mask),      \
               (what))

#define OK_ (1u << 0)
#define BIT(e) (1u << -(e))

static void count_log(void *user, int level, const char *msg) {
  (void)user;
  (void)level;
  if (!msg[0] || strchr(msg, '\n'))
    FAILF("bad log line '%s'", msg);
  atomic_fetch_add(&G.log_lines, 1);
}

static void check_tag(const ref_t *rf) {
  const unsigned char *d = hmb_buffer_data(rf->b);
  size_t n = hmb_buffer_size(rf->b);
  if (!d || n == 0)
    return; /* a reservation, or a 0-byte buffer */
  CHECK(d[0] == rf->tag && d[n - 1] == rf->tag, "buffer bytes intact");
}

static void self_check(unsigned flags) {
  char why[256];
  if (hmb_pool_check(G.pool, flags, why, sizeof why) != 0)
    FAILF("hmb_pool_check(%s): %s", flags ? "QUIESCENT" : "0", why);
}

static int cmp_ptr(const void *a, const void *b) {
  uintptr_t x = (uintptr_t) * (hmb_buffer_t *const *)a;
  uintptr_t y = (uintptr_t) * (hmb_buffer_t *const *)b;
  return x < y ? -1 : x > y;
}

/*
 * With nothing in flight: the self-check at rest, and the buffers the test
 * holds are exactly the pool's live buffers, each referenced as counted.
 */
static void check_quiescent(const ref_t *refs, int n) {
  self_check(HMB_CHECK_QUIESCENT);
  static hmb_buffer_t *all[4096], *live[8192];
  CHECK(n <= 4096, "checker capacity");
  for (int i = 0; i < n; i++)
    all[i] = refs[i].b;
  qsort(all, (size_t)n, sizeof all[0], cmp_ptr);
  size_t nl = 0;
  for (int i = 0; i < n; i++)
    if (i == 0 || all[i] != all[i - 1])
      live[nl++] = all[i];
  for (size_t i = 0; i < nl; i++) {
    hmb_buffer_t *par = hmb_buffer_parent(live[i]);
    int seen = par == NULL;
    for (size_t j = 0; j < nl && !seen; j++)
      seen = live[j] == par;
    if (!seen) {
      CHECK(nl < sizeof live / sizeof live[0], "checker capacity");
      live[nl++] = par;
    }
  }
  int64_t roots = 0, bytes = 0;
  char d[160];
  for (size_t i = 0; i < nl; i++) {
    long expect = 0;
    for (int j = 0; j < n; j++)
      expect += all[j] == live[i];
    for (size_t j = 0; j < nl; j++)
      expect += hmb_buffer_parent(live[j]) == live[i];
    snprintf(d, sizeof d, "buffer %p refcount %ld, expected %ld",
             (void *)live[i], hmb_buffer_refcount(live[i]), expect);
    CHECK(hmb_buffer_refcount(live[i]) == expect, d);
    if (!hmb_buffer_parent(live[i])) {
      roots++;
      bytes += (int64_t)hmb_buffer_size(live[i]);
    }
  }
  hmb_pool_stats_t st;
  CHECK_RC(hmb_pool_stats(G.pool, &st), OK_, "stats");
  snprintf(d, sizeof d,
           "held out %" PRId64 " roots (%" PRId64 " bytes); pool %" PRId64
           " (%" PRId64 ")",
           roots, bytes, st.live_buffers, st.live_bytes);
  CHECK(roots == st.live_buffers && bytes == st.live_bytes, d);
}

enum {
  XT_MAX = 16384,   /* task records */
  XT_OUT = 2048,    /* handed-out references */
  XT_LOCAL = 8,     /* buffers one task holds at once */
  XT_STATUS_X = 42, /* a positive failure status, reported as is */
  XT_NONE = 1000,   /* "no status yet" */
  XT_BACKLOG = 48   /* tasks submitted and not yet called back */
};

typedef struct xtask {
  uint64_t plan; /* the task's own random choices */
  size_t estimate;
  int64_t borrow_timeout_ns;
  int staged;
  hmb_task_t *h;  /* handle (NULL: detached or released) */
  int submitted;  /* submit returned 0 */
  int parent_run; /* submitted from inside another task */
  atomic_int done_calls;
  atomic_int status;
  atomic_int ran;      /* its function was entered */
  atomic_int returned; /* its function is about to return ret */
  atomic_int ret;
  atomic_int cancel_ok; /* an hmb_task_cancel() returned 0 */
  atomic_int cancels;   /* hmb_task_cancel() calls begun */
} xtask_t;

static struct {
  hmb_executor_t *ex;
  xtask_t *t;
  atomic_int next;              /* records handed out */
  atomic_int shutdown_called;   /* set just before the first shutdown */
  atomic_int shutdown_returned; /* set once it has returned */
  atomic_int cancel_shutdown;   /* a CANCEL shutdown was called */
  atomic_long callbacks;
  atomic_long late_refusals; /* cancels refused while another one ends it */
  atomic_int stop_closers;
  atomic_long submitted_ok, children_ok, handed_out, closed_by_closers;
  atomic_long alloc_timeouts, alloc_cancels;
  atomic_long identity_samples;
  atomic_int stop_sampler;
  long planned;
  pthread_mutex_t omu;
  ref_t out[XT_OUT];
  int nout;
} X;

static uint64_t xr(uint64_t *s, uint64_t n) {
  return n ? ts_rand(s) % n : 0;
}

static int xt_submit(int idx, uint64_t *rng, int detached, int child);

static void xt_hand_out(hmb_buffer_t *b, unsigned char tag) {
  pthread_mutex_lock(&X.omu);
  if (X.nout < XT_OUT) {
    X.out[X.nout].b = b;
    X.out[X.nout].tag = tag;
    X.nout++;
    b = NULL;
  }
  pthread_mutex_unlock(&X.omu);
  if (b)
    CHECK_RC(hmb_buffer_close(b), OK_, "close (out list full)");
  else
    atomic_fetch_add(&X.handed_out, 1);
}

static int xt_run(void *user, hmb_runner_t *runner) {
  xtask_t *t = user;
  uint64_t rng = t->plan;
  CHECK(atomic_load(&t->done_calls) == 0, "task runs before its callback");
  CHECK(!atomic_exchange(&t->ran, 1), "a task runs once");
  int st = hmb_runner_state(runner);
  CHECK(st == HMB_RUNNER_RUNNING || st == HMB_RUNNER_CANCELLED,
        "task runs with a running runner");
  CHECK(hmb_runner_bound() == runner, "the runner is bound to the worker");
  /* Code that cannot be handed the allocator uses the bound one. */
  const hmb_allocator_t *al = xr(&rng, 4) == 0
                                  ? hmb_bound_allocator(HMB_UNBOUND_FAIL)
                                  : hmb_runner_allocator(runner);
  CHECK(al != NULL, "runner allocator");
  if (t->staged) {
    /* The footer read: now grow to a need near the estimate. */
    size_t need = (size_t)xr(&rng, LIMIT / 4);
    CHECK_RC(hmb_runner_set_need(runner, need, NULL), OK_, "set_need");
    CHECK_RC(hmb_runner_grow(runner, need, (int64_t)xr(&rng, 2000000)),
             OK_ | BIT(HMB_ETIMEDOUT) | BIT(HMB_ECANCELED), "grow");
  }
  ref_t local[XT_LOCAL];
  int nl = 0, ret = 0;
  int nalloc = (int)xr(&rng, XT_LOCAL + 1);
  for (int i = 0; i < nalloc && ret == 0; i++) {
    /* Sizes drawn around the estimate: the sum often exceeds it. */
    size_t size = xr(&rng, 8) == 0 ? (size_t)xr(&rng, LIMIT / 8) + 1
                                   : (size_t)xr(&rng, LIMIT / 32) + 1;
    unsigned flags = xr(&rng, 3) == 0 ? HMB_ALLOC_PINNED : 0;
    int reserve = xr(&rng, 8) == 0;
    hmb_buffer_t *b = NULL;
    int rc = reserve ? hmb_runner_reserve(runner, size, &b)
                     : hmb_allocate(al, size, flags, &b);
    CHECK_RC(rc, OK_ | BIT(HMB_ETIMEDOUT) | BIT(HMB_ECANCELED), "task alloc");
    if (rc == HMB_ETIMEDOUT) {
      CHECK(t->borrow_timeout_ns > 0, "ETIMEDOUT only with a borrow timeout");
      atomic_fetch_add(&X.alloc_timeouts, 1);
    }
    if (rc == HMB_ECANCELED) {
      CHECK(hmb_runner_is_cancelled(runner), "ECANCELED means cancelled");
      atomic_fetch_add(&X.alloc_cancels, 1);
    }
    if (rc) {
      CHECK(b == NULL, "out NULL on error");
      ret = rc; /* give up, like a reader would */
      break;
    }
    unsigned char tag = (unsigned char)xr(&rng, 256);
    CHECK(hmb_buffer_size(b) == size, "task buffer size");
    if (!reserve)
      memset(hmb_buffer_data(b), tag, size);
    local[nl].b = b;
    local[nl].tag = tag;
    nl++;
  }
  if (ret == 0 && xr(&rng, 4) == 0) {
    /* The early release: the real need is what is live. */
    size_t r = 0;
    CHECK_RC(hmb_runner_set_need(runner, 0, &r), OK_, "set_need in task");
  }
  if (ret == 0 && xr(&rng, 32) == 0) {
    /* A long task: it runs until cancelled (bounded). */
    for (int i = 0; i < 10 && !hmb_runner_is_cancelled(runner); i++)
      ts_sleep_ms(1);
  }
  if (xr(&rng, 8) == 0)
    self_check(0); /* from inside a task, with others in flight */
  if (xr(&rng, 16) == 0) {
    int idx = atomic_fetch_add(&X.next, 1);
    if (idx < XT_MAX)
      xt_submit(idx, &rng, 1, 1);
  }
  /* Hand some buffers (or slices of them) out; close the rest. */
  for (int i = 0; i < nl; i++) {
    check_tag(&local[i]);
    uint64_t k = xr(&rng, 4);
    if (k == 0) {
      xt_hand_out(local[i].b, local[i].tag);
    } else if (k == 1) {
      size_t n = hmb_buffer_size(local[i].b);
      size_t off = (size_t)xr(&rng, n);
      hmb_buffer_t *s = NULL;
      CHECK_RC(
          hmb_buffer_slice(local[i].b, off, (size_t)xr(&rng, n - off) + 1, &s),
          OK_, "slice in task");
      CHECK_RC(hmb_buffer_close(local[i].b), OK_, "close parent");
      xt_hand_out(s, local[i].tag);
    } else {
      CHECK_RC(hmb_buffer_close(local[i].b), OK_, "close in task");
    }
  }
  if (ret == 0) {
    uint64_t f = xr(&rng, 16);
    ret = f == 0 ? HMB_EFAILED : f == 1 ? XT_STATUS_X : 0;
  }
  atomic_store(&t->ret, ret);
  atomic_store(&t->returned, 1);
  return ret;
}

static void xt_done(void *user, hmb_task_t *task, int status) {
  xtask_t *t = user;
  (void)task;
  CHECK(atomic_fetch_add(&t->done_calls, 1) == 0, "one callback per task");
  atomic_fetch_add(&X.callbacks, 1);
  atomic_store(&t->status, status);
  if (atomic_load(&t->ran))
    CHECK(atomic_load(&t->returned), "callback after the function returned");
}

/* Fill record idx and submit it; returns the submit status. */
static int xt_submit(int idx, uint64_t *rng, int detached, int child) {
  xtask_t *t = &X.t[idx];
  t->plan = ts_rand(rng) | 1;
  uint64_t k = xr(rng, 32);
  t->estimate = k == 0   ? 0
                : k == 1 ? LIMIT + LIMIT / 2 /* only when nothing runs */
                : k == 2 ? 8 * LIMIT         /* above max_request */
                         : (size_t)xr(rng, LIMIT / 8) + 1;
  t->borrow_timeout_ns = xr(rng, 2) ? 0 : 100000 + (int64_t)xr(rng, 3000000);
  t->staged = xr(rng, 6) == 0;
  t->parent_run = child;
  atomic_store(&t->status, XT_NONE);
  atomic_store(&t->ret, XT_NONE);
  hmb_task_desc_t d = {0};
  d.estimate = t->estimate;
  d.priority = (int)xr(rng, 4);
  d.run = xt_run;
  d.user = t;
  d.done = xt_done;
  d.name = child ? "child" : "task";
  d.borrow_timeout_ns = t->borrow_timeout_ns;
  d.staged = t->staged;
  d.initial = t->staged ? (size_t)xr(rng, LIMIT / 16) : 0;
  hmb_task_t *h = (hmb_task_t *)&h;
  int begun = atomic_load(&X.shutdown_returned);
  int rc = hmb_executor_submit(X.ex, &d, detached ? NULL : &h);
  if (t->estimate > 4 * LIMIT) {
    CHECK_RC(rc, BIT(HMB_ETOOBIG) | BIT(HMB_ESHUTDOWN), "submit (too big)");
  } else if (begun) {
    CHECK_RC(rc, BIT(HMB_ESHUTDOWN), "submit after shutdown");
  } else {
    CHECK_RC(rc, OK_ | BIT(HMB_ESHUTDOWN), "submit");
    if (rc)
      CHECK(atomic_load(&X.shutdown_called), "ESHUTDOWN after shutdown");
  }
  if (!detached)
    CHECK(rc == 0 ? h != NULL : h == NULL, "task handle");
  t->h = rc == 0 && !detached ? h : NULL;
  t->submitted = rc == 0;
  if (rc == 0)
    atomic_fetch_add(child ? &X.children_ok : &X.submitted_ok, 1);
  return rc;
}

typedef struct xsub {
  pthread_t th;
  uint64_t rng;
  int mine[XT_MAX];
  int n;
} xsub_t;

static void xt_cancel(xtask_t *t) {
  atomic_fetch_add(&t->cancels, 1);
  int rc = hmb_task_cancel(t->h);
  CHECK_RC(rc, OK_ | BIT(HMB_ESTATE), "cancel");
  if (rc == 0) {
    atomic_store(&t->cancel_ok, 1);
  } else {
    /* HMB_ESTATE: finished, or its function has returned; or it never ran
     * and is finishing because a CANCEL shutdown or another thread's
     * cancel took it out of the queue or admission (its completion, and
     * so its callback, may still be on the way). */
    char d[160];
    snprintf(d, sizeof d,
             "cancel refused only once the function returned: ran %d "
             "returned %d callbacks %d cancels %d (one returned 0: %d), "
             "CANCEL shutdown %d",
             atomic_load(&t->ran), atomic_load(&t->returned),
             atomic_load(&t->done_calls), atomic_load(&t->cancels),
             atomic_load(&t->cancel_ok), atomic_load(&X.cancel_shutdown));
    CHECK(atomic_load(&t->returned) ||
              (!atomic_load(&t->ran) && (atomic_load(&X.cancel_shutdown) ||
                                         atomic_load(&t->cancels) > 1)) ||
              atomic_load(&t->done_calls),
          d);
    if (!atomic_load(&t->returned) && !atomic_load(&t->done_calls) &&
        !atomic_load(&X.cancel_shutdown))
      atomic_fetch_add(&X.late_refusals, 1);
  }
}

static void nap_us(long us) {
  struct timespec ts = {0, us * 1000L};
  nanosleep(&ts, NULL);
}

static void *xt_submitter(void *arg) {
  xsub_t *s = arg;
  for (;;) {
    int idx = atomic_fetch_add(&X.next, 1);
    if (idx >= XT_MAX || idx >= X.planned)
      break;
    int rc = xt_submit(idx, &s->rng, xr(&s->rng, 8) == 0, 0);
    if (rc == HMB_ESHUTDOWN)
      break;
    if (X.t[idx].h) {
      if (xr(&s->rng, 10) == 0) {
        /* Released at once: the task still runs and calls back. */
        hmb_task_release(X.t[idx].h);
        X.t[idx].h = NULL;
      } else {
        s->mine[s->n++] = idx;
      }
    }
    if (s->n && xr(&s->rng, 6) == 0)
      xt_cancel(&X.t[s->mine[xr(&s->rng, (uint64_t)s->n)]]);
    /* Keep the backlog short so that tasks run while others arrive. */
    while (atomic_load(&X.submitted_ok) + atomic_load(&X.children_ok) -
                   atomic_load(&X.callbacks) >
               XT_BACKLOG &&
           !atomic_load(&X.shutdown_called))
      nap_us(100);
  }
  return NULL;
}

static void *xt_closer(void *arg) {
  uint64_t rng = *(uint64_t *)arg;
  while (!atomic_load(&X.stop_closers)) {
    ref_t rf = {NULL, 0};
    pthread_mutex_lock(&X.omu);
    /* Leave some references for the end-state checks. */
    if (X.nout > 8) {
      int i = (int)xr(&rng, (uint64_t)X.nout);
      rf = X.out[i];
      X.out[i] = X.out[--X.nout];
    }
    pthread_mutex_unlock(&X.omu);
    if (!rf.b) {
      ts_sleep_ms(1);
      continue;
    }
    check_tag(&rf);
    if (xr(&rng, 4) == 0) {
      CHECK_RC(hmb_buffer_retain(rf.b), OK_, "retain by closer");
      CHECK_RC(hmb_buffer_close(rf.b), OK_, "close by closer");
    }
    CHECK_RC(hmb_buffer_close(rf.b), OK_, "close by closer");
    atomic_fetch_add(&X.closed_by_closers, 1);
  }
  return NULL;
}

/* The executor identity and the pool self-check, all along. */
static void *xt_sampler(void *arg) {
  (void)arg;
  while (!atomic_load(&X.stop_sampler)) {
    hmb_executor_stats_t es;
    CHECK_RC(hmb_executor_stats(X.ex, &es), OK_, "executor stats");
    int64_t parts = es.queued + es.running + es.finishing +
                    (int64_t)(es.completed + es.failed + es.cancelled);
    char d[200];
    snprintf(d, sizeof d,
             "submitted %" PRIu64 " queued %" PRId64 " running %" PRId64
             " finishing %" PRId64 " completed %" PRIu64 " failed %" PRIu64
             " cancelled %" PRIu64,
             es.submitted, es.queued, es.running, es.finishing, es.completed,
             es.failed, es.cancelled);
    CHECK((int64_t)es.submitted == parts && es.queued >= 0 && es.running >= 0 &&
              es.finishing >= 0,
          d);
    atomic_fetch_add(&X.identity_samples, 1);
    self_check(0);
    nap_us(200);
  }
  return NULL;
}

typedef struct xshut {
  pthread_t th;
  int mode;
} xshut_t;

static void *xt_shutdown_main(void *arg) {
  xshut_t *a = arg;
  CHECK_RC(hmb_executor_shutdown(X.ex, a->mode), OK_, "concurrent shutdown");
  return NULL;
}

static void run_executor_stress(void) {
  memset(&G, 0, sizeof G);
  memset(&X, 0, sizeof X);
  G.seed = ts_seed("stress_executor");
  uint64_t rng = G.seed;
  X.planned = ts_env_long("HMB_STRESS_TASKS", 2000);
  if (X.planned < 1)
    X.planned = 1;
  if (X.planned > XT_MAX / 2)
    X.planned = XT_MAX / 2;
  int workers = ts_under_sanitizer() ? 3 : 4;
  int nsub = 2, nclose = 2;
  /* 0: DRAIN; 1: CANCEL; 2: DRAIN and CANCEL from two threads at once. */
  int mode = (int)xr(&rng, 3);
  /* Shut down after about this many submissions (or when all are in). */
  long shut_after = X.planned / 3 + (long)xr(&rng, (uint64_t)X.planned);
  int destroy_first = (int)xr(&rng, 2); /* destroy before closing buffers */
  fprintf(stderr,
          "stress_executor: %ld tasks, %d workers, shutdown %s after "
          "%ld submissions\n",
          X.planned, workers,
          mode == 0   ? "DRAIN"
          : mode == 1 ? "CANCEL"
                      : "DRAIN + CANCEL",
          shut_after);

  X.t = calloc(XT_MAX, sizeof *X.t);
  assert_non_null(X.t);
  pthread_mutex_init(&X.omu, NULL);
  hmb_pool_config_t cfg;
  hmb_pool_config_init(&cfg);
  cfg.limit = LIMIT;
  cfg.max_request = 4 * LIMIT;
  cfg.cache_bytes = LIMIT / 2;
  cfg.pinned_bytes = LIMIT / 2;
  cfg.log_fn = count_log;
  cfg.log_level = HMB_LOG_DEBUG;
  assert_int_equal(hmb_pool_create(&cfg, &G.pool), HMB_OK);
  hmb_executor_config_t ec = {0};
  ec.threads = workers;
  ec.acquire_timeout_ns = 500000 + (int64_t)xr(&rng, 2000000);
  ec.name = "stress";
  assert_int_equal(hmb_executor_create(G.pool, &ec, &X.ex), HMB_OK);

  ts_watchdog_arm("stress_executor", 120);
  pthread_t sampler;
  assert_int_equal(pthread_create(&sampler, NULL, xt_sampler, NULL), 0);
  static xsub_t subs[2];
  uint64_t crng[2];
  pthread_t closers[2];
  for (int i = 0; i < nclose; i++) {
    crng[i] = ts_rand(&rng) | 1;
    assert_int_equal(pthread_create(&closers[i], NULL, xt_closer, &crng[i]), 0);
  }
  for (int i = 0; i < nsub; i++) {
    subs[i].rng = ts_rand(&rng) | 1;
    subs[i].n = 0;
    assert_int_equal(pthread_create(&subs[i].th, NULL, xt_submitter, &subs[i]),
                     0);
  }
  /* Let the submissions reach the chosen point, then shut down. */
  while (atomic_load(&X.submitted_ok) < shut_after &&
         atomic_load(&X.next) < X.planned)
    ts_sleep_ms(1);
  atomic_store(&X.shutdown_called, 1);
  xshut_t other = {0, HMB_SHUTDOWN_CANCEL};
  if (mode != 0)
    atomic_store(&X.cancel_shutdown, 1);
  if (mode == 2)
    assert_int_equal(pthread_create(&other.th, NULL, xt_shutdown_main, &other),
                     0);
  assert_int_equal(hmb_executor_shutdown(X.ex, mode == 1 ? HMB_SHUTDOWN_CANCEL
                                                         : HMB_SHUTDOWN_DRAIN),
                   HMB_OK);
  atomic_store(&X.shutdown_returned, 1);
  if (mode == 2)
    pthread_join(other.th, NULL);
  for (int i = 0; i < nsub; i++)
    pthread_join(subs[i].th, NULL);
  /* Shut down: nothing more is accepted, from outside or inside. */
  {
    uint64_t r2 = rng;
    int idx = atomic_fetch_add(&X.next, 1);
    if (idx < XT_MAX)
      assert_int_not_equal(xt_submit(idx, &r2, 0, 0), HMB_OK);
  }
  atomic_store(&X.stop_closers, 1);
  for (int i = 0; i < nclose; i++)
    pthread_join(closers[i], NULL);
  atomic_store(&X.stop_sampler, 1);
  pthread_join(sampler, NULL);

  /* Every task ended exactly once, with a status that fits. */
  int n = atomic_load(&X.next);
  if (n > XT_MAX)
    n = XT_MAX;
  uint64_t ok = 0, completed = 0, failed = 0, cancelled = 0, ran = 0;
  for (int i = 0; i < n; i++) {
    xtask_t *t = &X.t[i];
    char d[160];
    int status = atomic_load(&t->status);
    snprintf(d, sizeof d,
             "task %d: submitted %d, callbacks %d, status %d, ran %d, "
             "returned %d (%d), cancel %d",
             i, t->submitted, atomic_load(&t->done_calls), status,
             atomic_load(&t->ran), atomic_load(&t->returned),
             atomic_load(&t->ret), atomic_load(&t->cancel_ok));
    if (!t->submitted) {
      CHECK(atomic_load(&t->done_calls) == 0 && !atomic_load(&t->ran), d);
      continue;
    }
    ok++;
    CHECK(atomic_load(&t->done_calls) == 1, d);
    CHECK(atomic_load(&t->ran) == atomic_load(&t->returned), d);
    if (atomic_load(&t->ran)) {
      ran++;
      CHECK(status == atomic_load(&t->ret) || status == HMB_ECANCELED, d);
    } else {
      /* Never ran: cancelled, by a call or by a CANCEL shutdown. */
      CHECK(status == HMB_ECANCELED, d);
      CHECK(atomic_load(&t->cancel_ok) || atomic_load(&X.cancel_shutdown), d);
    }
    if (atomic_load(&t->cancel_ok))
      CHECK(status == HMB_ECANCELED, d);
    if (status == HMB_ECANCELED && !atomic_load(&X.cancel_shutdown))
      CHECK(atomic_load(&t->cancel_ok) || atomic_load(&t->ret) == HMB_ECANCELED,
            d);
    completed += status == 0;
    cancelled += status == HMB_ECANCELED;
    failed += status != 0 && status != HMB_ECANCELED;
    if (t->h) {
      CHECK(hmb_task_done(t->h) == 1, d);
      int ws = XT_NONE;
      CHECK_RC(hmb_task_wait(t->h, 0, &ws), OK_, "wait on a finished task");
      CHECK(ws == status, d);
      CHECK_RC(hmb_task_cancel(t->h), BIT(HMB_ESTATE), "cancel when finished");
    }
  }
  hmb_executor_stats_t es;
  assert_int_equal(hmb_executor_stats(X.ex, &es), HMB_OK);
  fprintf(stderr,
          "stress_executor: submitted %" PRIu64 " (children %ld), ran "
          "%" PRIu64 ", completed %" PRIu64 ", failed %" PRIu64
          ", cancelled %" PRIu64 ", requeues %" PRIu64
          "; allocation timeouts %ld, cancels %ld; handed out %ld; %ld "
          "identity samples; %ld log lines; %ld cancels refused while an "
          "earlier one ended the task\n",
          es.submitted, atomic_load(&X.children_ok), ran, es.completed,
          es.failed, es.cancelled, es.requeues, atomic_load(&X.alloc_timeouts),
          atomic_load(&X.alloc_cancels), atomic_load(&X.handed_out),
          atomic_load(&X.identity_samples), atomic_load(&G.log_lines),
          atomic_load(&X.late_refusals));
  assert_true(atomic_load(&X.identity_samples) > 0);
  assert_int_equal(es.queued, 0);
  assert_int_equal(es.running, 0);
  assert_int_equal(es.finishing, 0);
  assert_int_equal(es.submitted, ok);
  assert_int_equal(es.completed, completed);
  assert_int_equal(es.failed, failed);
  assert_int_equal(es.cancelled, cancelled);

  /* Every runner is finished: held budget is exactly the live buffers. */
  hmb_pool_stats_t st;
  assert_int_equal(hmb_pool_stats(G.pool, &st), HMB_OK);
  assert_int_equal(st.running, 0);
  assert_int_equal(st.acquire_waiters, 0);
  assert_int_equal(st.borrow_waiters, 0);
  assert_int_equal(st.held, st.live_bytes);
  check_quiescent(X.out, X.nout);

  if (destroy_first)
    hmb_executor_destroy(X.ex);
  for (int i = 0; i < X.nout; i++) {
    check_tag(&X.out[i]);
    assert_int_equal(hmb_buffer_close(X.out[i].b), HMB_OK);
  }
  X.nout = 0;
  if (!destroy_first)
    hmb_executor_destroy(X.ex);
  /* Handles outlive the executor. */
  for (int i = 0; i < n; i++) {
    xtask_t *t = &X.t[i];
    if (!t->h)
      continue;
    int ws = XT_NONE;
    assert_int_equal(hmb_task_wait(t->h, HMB_WAIT_FOREVER, &ws), HMB_OK);
    assert_int_equal(ws, atomic_load(&t->status));
    assert_int_equal(hmb_task_cancel(t->h), HMB_ESTATE);
    hmb_task_release(t->h);
    t->h = NULL;
  }
  ts_watchdog_disarm();

  ts_assert_pool_idle(G.pool);
  assert_int_equal(hmb_pool_stats(G.pool, &st), HMB_OK);
  assert_int_equal(st.runners, 0);
  hmb_memory_stats_t ms;
  assert_int_equal(hmb_pool_memory_stats(G.pool, &ms), HMB_OK);
  assert_int_equal(ms.pageable_live, 0);
  assert_int_equal(ms.pinned_live, 0);
  assert_int_equal(ms.pageable_physical, 0);
  assert_true(ms.cached_bytes <= ms.cache_cap);
  assert_int_equal(hmb_pool_trim(G.pool, 0), HMB_OK);
  assert_int_equal(hmb_pool_memory_stats(G.pool, &ms), HMB_OK);
  assert_int_equal(ms.cached_bytes, 0);
  assert_int_equal(hmb_pool_destroy(G.pool), HMB_OK);
  pthread_mutex_destroy(&X.omu);
  free(X.t);
  X.t = NULL;
  assert_true(ok > 0);
}

/* Several rounds: each draws its own shutdown mode and timing. */
static void test_stress_executor(void **state) {
  (void)state;
  long rounds = ts_env_long("HMB_STRESS_ROUNDS", 3);
  for (long i = 0; i < (rounds < 1 ? 1 : rounds); i++)
    run_executor_stress();
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_stress_executor),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
