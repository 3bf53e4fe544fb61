/*
 * stress_random.c - randomized multi-threaded stress with invariant checks.
 *
 * Worker threads run random sequences of every public operation on one small
 * pool: runner create/start/finish/cancel/destroy, allocation (hot path and
 * borrow), reservations, slices, retain, close, buffer hand-over between
 * threads, try-free,
 * set-need, stats and describe. Runners live in a shared table, so several
 * threads allocate from, cancel and close buffers of the same runner at once.
 * A backend fails some physical allocations so that rollback runs under
 * contention too.
 *
 * Every `phase` operations the workers meet at a barrier (all waits in the
 * library are bounded by timeouts, so every thread gets there) and one thread
 * checks, with nothing in flight:
 *   - budget conservation: pool held == sum of runner held, available ==
 *     limit - held, no waiter left queued;
 *   - per runner: held, live, spare >= 0, spare == held - live, live <= held;
 *   - live bytes/buffers of the pool == sums over runners == what the backend
 *     holds == the distinct root buffers the threads reference;
 *   - the reference count of every buffer == references the threads hold +
 *     live slices viewing it.
 * After everything is closed every counter is back at its initial value and
 * the pool can be destroyed.
 *
 * Sizes: HMB_STRESS_THREADS (default 8, 4 under sanitizers) and
 * HMB_STRESS_OPS (operations per thread; default 50000, a quarter under
 * sanitizers). The seed is printed; HMB_TEST_SEED replays its random choices
 * (the thread interleaving is up to the scheduler).
 *
 * Two deterministic tests pin the borrow rules with several threads of one
 * runner: the all-borrowing rule counts runners, not requests, and cancel
 * wakes every borrow request of the runner.
 */
#define _POSIX_C_SOURCE 200809L
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testsupport.h"

#include "core/internal.h"

/* ---- configuration and shared state --------------------------------- */

enum {
  LIMIT = 64 * 1024,
  MAX_THREADS = 64,
  MAX_REFS = 48,   /* references one thread holds at most */
  XCHG_SLOTS = 64, /* references in transit between threads */
  FAIL_EVERY = 53  /* about one physical allocation in FAIL_EVERY fails */
};

typedef struct ref {
  hmb_buffer_t *b;
  unsigned char tag; /* every byte of the root was set to this */
} ref_t;

typedef struct entry {
  pthread_rwlock_t lk; /* write: start/finish/destroy; read: the rest */
  hmb_runner_t *r;     /* NULL: empty slot */
  int finished;        /* finish succeeded (written under the write lock) */
} entry_t;

typedef struct worker {
  int id;
  uint64_t rng;
  pthread_t th;
  ref_t refs[MAX_REFS];
  int nrefs;
  long ops_done[16];
} worker_t;

static struct {
  hmb_pool_t *pool;
  uint64_t seed;
  int nthreads;
  long ops;
  long phase;
  int nentries;
  entry_t entries[2 * MAX_THREADS];
  worker_t workers[MAX_THREADS];
  pthread_barrier_t barrier;
  pthread_mutex_t xmu;
  ref_t xchg[XCHG_SLOTS];
  int nx;
  atomic_long checks;
  atomic_long log_lines;
  /* 1: built-in backends (warm cache + pinned region or its fallback);
   * 0: the failing custom backend below. */
  int builtin;
  /* References held outside the workers (the executor phase), also counted
   * by the checker. */
  ref_t *extra;
  int nextra;
  /* backend */
  atomic_long be_calls, be_fail, be_live_blocks;
  atomic_llong be_live_bytes;
  int be_fail_every;
} G;

#define FAILF(...)                                                             \
  do {                                                                         \
    fprintf(stderr, "stress_random FAILED (seed %" PRIu64 "): ", G.seed);      \
    fprintf(stderr, __VA_ARGS__);                                              \
    fprintf(stderr, "\n");                                                     \
    fflush(stderr);                                                            \
    abort();                                                                   \
  } while (0)

/* Abort with the seed, the failed condition and what was seen. */
static void fail_detail(int line, const char *cond, const char *detail) {
  FAILF("line %d: %s (%s)", line, cond, detail);
}
#define CHECK(cond, detail)                                                    \
  do {                                                                         \
    if (!(cond))                                                               \
      fail_detail(__LINE__, #cond, detail);                                    \
  } while (0)

#define CHECK_RC(rc, allowed_mask, what)                                       \
  do {                                                                         \
    int rc_ = (rc);                                                            \
    if (rc_ > 0 || rc_ < -31 || !((allowed_mask) & (1u << -rc_))) {            \
      char d_[128];                                                            \
      snprintf(d_, sizeof d_, "%s returned %s", what, hmb_errname(rc_));       \
      fail_detail(__LINE__, "status allowed", d_);                             \
    }                                                                          \
  } while (0)

#define OK_ (1u << 0)
#define BIT(e) (1u << -(e))

static uint64_t rnd(worker_t *w, uint64_t n) {
  return n ? ts_rand(&w->rng) % n : 0;
}

/* ---- backend: fails a pseudo-random share of allocations ----------- */

static int be_alloc(void *ctx, size_t size, size_t align, int prefer_pinned,
                    void **ptr, int *pinned) {
  (void)ctx;
  (void)prefer_pinned;
  uint64_t n = (uint64_t)atomic_fetch_add(&G.be_calls, 1) + 1;
  uint64_t h = (n ^ G.seed) * 0x9E3779B97F4A7C15ull;
  if (G.be_fail_every && (h >> 33) % (uint64_t)G.be_fail_every == 0) {
    atomic_fetch_add(&G.be_fail, 1);
    return HMB_ENOMEM;
  }
  void *p = NULL;
  if (posix_memalign(&p, align, size) != 0)
    return HMB_ENOMEM;
  atomic_fetch_add(&G.be_live_blocks, 1);
  atomic_fetch_add(&G.be_live_bytes, (long long)size);
  *ptr = p;
  *pinned = 0;
  return 0;
}

static void be_free(void *ctx, void *ptr, size_t size, int pinned) {
  (void)ctx;
  (void)pinned;
  atomic_fetch_sub(&G.be_live_blocks, 1);
  atomic_fetch_sub(&G.be_live_bytes, (long long)size);
  free(ptr);
}

static void count_log(void *user, int level, const char *msg) {
  (void)user;
  (void)level;
  /* One line, never empty. */
  if (!msg[0] || strchr(msg, '\n'))
    FAILF("bad log line '%s'", msg);
  atomic_fetch_add(&G.log_lines, 1);
}

/* ---- references held by a worker ------------------------------------ */

static void check_tag(const ref_t *rf) {
  const unsigned char *d = hmb_buffer_data(rf->b);
  size_t n = hmb_buffer_size(rf->b);
  CHECK(n > 0, "live buffer has a size");
  if (!d)
    return; /* a reservation (budget without memory) */
  CHECK(d[0] == rf->tag && d[n - 1] == rf->tag, "buffer bytes intact");
}

static void add_ref(worker_t *w, hmb_buffer_t *b, unsigned char tag) {
  if (w->nrefs == MAX_REFS) {
    /* Full: close the new reference at once. */
    ref_t tmp = {b, tag};
    check_tag(&tmp);
    CHECK(hmb_buffer_close(b) == 0, "close");
    return;
  }
  w->refs[w->nrefs].b = b;
  w->refs[w->nrefs].tag = tag;
  w->nrefs++;
}

static ref_t take_ref(worker_t *w, int i) {
  ref_t rf = w->refs[i];
  w->refs[i] = w->refs[--w->nrefs];
  return rf;
}

/* ---- operations -------------------------------------------------------- */

enum {
  OP_CREATE,
  OP_START,
  OP_ALLOC,
  OP_SLICE,
  OP_RETAIN,
  OP_CLOSE,
  OP_XFER,
  OP_TRYFREE,
  OP_SETNEED,
  OP_FINISH,
  OP_CANCEL,
  OP_DESTROY,
  OP_STATS,
  OP_DESCRIBE,
  OP_COUNT
};

/* Weights out of 100. */
static int pick_op(worker_t *w) {
  static const int weight[OP_COUNT] = {5, 8, 25, 6, 6, 16, 6,
                                       4, 4, 5,  3, 4, 2,  2};
  int x = (int)rnd(w, 100), acc = 0;
  for (int i = 0; i < OP_COUNT; i++) {
    acc += weight[i];
    if (x < acc)
      return i;
  }
  return OP_ALLOC;
}

static entry_t *pick_entry(worker_t *w) {
  return &G.entries[rnd(w, (uint64_t)G.nentries)];
}

static void op_create(worker_t *w, entry_t *e) {
  pthread_rwlock_wrlock(&e->lk);
  if (!e->r) {
    hmb_runner_config_t rc = {0};
    uint64_t k = rnd(w, 20);
    rc.estimate = k == 0   ? 0
                  : k == 1 ? LIMIT + LIMIT / 2 /* only fits when idle */
                           : (size_t)rnd(w, LIMIT / 3) + 1;
    rc.priority = (int)rnd(w, 4);
    rc.borrow_timeout_ns = 200000 + (int64_t)rnd(w, 2000000);
    char name[32];
    snprintf(name, sizeof name, "t%d-%" PRIu64, w->id, rnd(w, 1000));
    rc.name = name;
    hmb_runner_t *r = NULL;
    CHECK_RC(hmb_runner_create(G.pool, &rc, &r), OK_, "create");
    CHECK(hmb_runner_state(r) == HMB_RUNNER_CREATED, "created");
    e->r = r;
    e->finished = 0;
  }
  pthread_rwlock_unlock(&e->lk);
}

static void op_start(worker_t *w, entry_t *e) {
  pthread_rwlock_wrlock(&e->lk);
  if (e->r && hmb_runner_state(e->r) == HMB_RUNNER_CREATED) {
    int64_t t = rnd(w, 2) ? 0 : (int64_t)rnd(w, 1000000);
    int rc = hmb_runner_start(e->r, t);
    CHECK_RC(rc, OK_ | BIT(HMB_ETIMEDOUT), "start");
    int st = hmb_runner_state(e->r);
    CHECK(rc == 0 ? st == HMB_RUNNER_RUNNING : st == HMB_RUNNER_CREATED,
          "state after start");
  } else if (e->r && rnd(w, 4) == 0) {
    /* Wrong state: a second start never takes budget. */
    CHECK_RC(hmb_runner_start(e->r, 0), BIT(HMB_ESTATE) | BIT(HMB_ECANCELED),
             "start (wrong state)");
  }
  pthread_rwlock_unlock(&e->lk);
}

static void op_alloc(worker_t *w, entry_t *e) {
  pthread_rwlock_rdlock(&e->lk);
  if (e->r) {
    size_t size = rnd(w, 8) == 0 ? (size_t)rnd(w, LIMIT / 2) + 1
                                 : (size_t)rnd(w, LIMIT / 16) + 1;
    unsigned flags = rnd(w, 4) == 0 ? HMB_ALLOC_PINNED : 0;
    hmb_buffer_t *b = NULL;
    int reserve = rnd(w, 8) == 0;
    int rc = reserve ? hmb_runner_reserve(e->r, size, &b)
                     : hmb_runner_alloc(e->r, size, flags, &b);
    /* Only the failing custom backend runs out of memory. */
    CHECK_RC(rc,
             OK_ | (G.builtin ? 0u : BIT(HMB_ENOMEM)) | BIT(HMB_ETIMEDOUT) |
                 BIT(HMB_ECANCELED) | BIT(HMB_ESTATE),
             "alloc");
    if (rc == 0) {
      CHECK(b && hmb_buffer_size(b) == size && hmb_buffer_refcount(b) == 1,
            "new buffer");
      unsigned char tag = (unsigned char)rnd(w, 256);
      if (reserve) {
        CHECK(hmb_buffer_data(b) == NULL, "reservation has no memory");
      } else {
        CHECK(((uintptr_t)hmb_buffer_data(b) & 63) == 0, "aligned");
        if (hmb_buffer_is_pinned(b)) {
          CHECK(flags & HMB_ALLOC_PINNED, "pinned only when asked");
          CHECK(((uintptr_t)hmb_buffer_data(b) & 255) == 0, "pinned aligned");
        }
        memset(hmb_buffer_data(b), tag, size);
      }
      add_ref(w, b, tag);
    } else {
      CHECK(b == NULL, "out NULL on error");
      if (rc == HMB_ECANCELED)
        CHECK(hmb_runner_is_cancelled(e->r), "ECANCELED means cancelled");
      if (rc == HMB_ESTATE)
        CHECK(hmb_runner_state(e->r) != HMB_RUNNER_RUNNING,
              "ESTATE means not running");
    }
  }
  pthread_rwlock_unlock(&e->lk);
}

static void op_slice(worker_t *w) {
  if (!w->nrefs)
    return;
  ref_t *rf = &w->refs[rnd(w, (uint64_t)w->nrefs)];
  size_t n = hmb_buffer_size(rf->b);
  hmb_buffer_t *s = (hmb_buffer_t *)&s; /* must be reset to NULL */
  if (rnd(w, 6) == 0) {
    size_t off, len;
    switch (rnd(w, 4)) {
    case 0:
      off = 0, len = 0;
      break;
    case 1:
      off = n, len = 1;
      break;
    case 2:
      off = (size_t)rnd(w, n), len = n - off + 1;
      break;
    default:
      off = SIZE_MAX - 1, len = 4; /* off + len overflows */
      break;
    }
    CHECK_RC(hmb_buffer_slice(rf->b, off, len, &s), BIT(HMB_EINVAL),
             "slice out of range");
    CHECK(s == NULL, "out NULL on error");
    return;
  }
  size_t off = (size_t)rnd(w, n);
  size_t len = (size_t)rnd(w, n - off) + 1;
  CHECK_RC(hmb_buffer_slice(rf->b, off, len, &s), OK_, "slice");
  CHECK(hmb_buffer_parent(s) == rf->b && hmb_buffer_size(s) == len, "slice");
  char *pd = hmb_buffer_data(rf->b);
  CHECK((char *)hmb_buffer_data(s) == (pd ? pd + off : NULL), "slice data");
  add_ref(w, s, rf->tag);
}

static void op_retain(worker_t *w) {
  if (!w->nrefs)
    return;
  ref_t rf = w->refs[rnd(w, (uint64_t)w->nrefs)];
  CHECK_RC(hmb_buffer_retain(rf.b), OK_, "retain");
  add_ref(w, rf.b, rf.tag);
}

static void op_close(worker_t *w) {
  if (!w->nrefs)
    return;
  ref_t rf = take_ref(w, (int)rnd(w, (uint64_t)w->nrefs));
  check_tag(&rf);
  CHECK_RC(hmb_buffer_close(rf.b), OK_, "close");
}

static void op_xfer(worker_t *w) {
  pthread_mutex_lock(&G.xmu);
  if (w->nrefs && G.nx < XCHG_SLOTS && rnd(w, 2)) {
    G.xchg[G.nx++] = take_ref(w, (int)rnd(w, (uint64_t)w->nrefs));
  } else if (G.nx && w->nrefs < MAX_REFS) {
    int i = (int)rnd(w, (uint64_t)G.nx);
    w->refs[w->nrefs++] = G.xchg[i];
    G.xchg[i] = G.xchg[--G.nx];
  }
  pthread_mutex_unlock(&G.xmu);
}

static void op_try_free(worker_t *w, entry_t *e) {
  pthread_rwlock_rdlock(&e->lk);
  if (e->r) {
    size_t max = rnd(w, 3) == 0 ? SIZE_MAX : (size_t)rnd(w, LIMIT);
    size_t ret = 12345;
    CHECK_RC(hmb_runner_try_free(e->r, max, &ret), OK_, "try_free");
    CHECK(ret <= max, "try_free returns at most max");
  }
  pthread_rwlock_unlock(&e->lk);
}

static void op_set_need(worker_t *w, entry_t *e) {
  pthread_rwlock_rdlock(&e->lk);
  if (e->r) {
    size_t ret = 12345;
    size_t need = (size_t)rnd(w, LIMIT / 2);
    CHECK_RC(hmb_runner_set_need(e->r, need, &ret), OK_, "set_need");
    CHECK(ret <= (size_t)LIMIT * 4, "set_need returned a sane amount");
  }
  pthread_rwlock_unlock(&e->lk);
}

static void op_finish(worker_t *w, entry_t *e) {
  pthread_rwlock_wrlock(&e->lk);
  if (e->r) {
    int st = hmb_runner_state(e->r);
    int expect = (st == HMB_RUNNER_RUNNING ||
                  (st == HMB_RUNNER_CANCELLED && !e->finished))
                     ? 0
                     : HMB_ESTATE;
    int status = rnd(w, 4) == 0 ? HMB_EFAILED : 0;
    size_t ret = 12345;
    int rc = hmb_runner_finish(e->r, status, &ret);
    if (rc != expect) {
      char d[96];
      snprintf(d, sizeof d, "finish in %s returned %s",
               hmb_runner_state_name(st), hmb_errname(rc));
      fail_detail(__LINE__, "finish status", d);
    }
    if (rc == 0) {
      e->finished = 1;
      int now = hmb_runner_state(e->r);
      int want = st == HMB_RUNNER_CANCELLED ? HMB_RUNNER_CANCELLED
                 : status == 0              ? HMB_RUNNER_COMPLETED
                                            : HMB_RUNNER_FAILED;
      CHECK(now == want, "state after finish");
    } else {
      CHECK(ret == 0, "nothing returned on error");
    }
  }
  pthread_rwlock_unlock(&e->lk);
}

static void op_cancel(entry_t *e) {
  pthread_rwlock_rdlock(&e->lk);
  if (e->r) {
    int st = hmb_runner_state(e->r);
    int rc = hmb_runner_cancel(e->r);
    if (st == HMB_RUNNER_COMPLETED || st == HMB_RUNNER_FAILED)
      CHECK_RC(rc, BIT(HMB_ESTATE), "cancel after finish");
    else
      CHECK_RC(rc, OK_, "cancel");
    if (rc == 0)
      CHECK(hmb_runner_is_cancelled(e->r) &&
                hmb_runner_state(e->r) == HMB_RUNNER_CANCELLED,
            "cancelled");
  }
  pthread_rwlock_unlock(&e->lk);
}

static void op_destroy(entry_t *e) {
  pthread_rwlock_wrlock(&e->lk);
  hmb_runner_destroy(e->r); /* NULL is a no-op */
  e->r = NULL;
  pthread_rwlock_unlock(&e->lk);
}

static void op_stats(entry_t *e) {
  hmb_pool_stats_t ps;
  CHECK_RC(hmb_pool_stats(G.pool, &ps), OK_, "pool stats");
  CHECK(ps.held >= 0 && ps.available == ps.limit - ps.held, "pool budget");
  CHECK(ps.live_bytes >= 0 && ps.live_buffers >= 0, "pool live");
  CHECK(ps.running >= 0 && ps.running <= ps.runners, "running count");
  CHECK(ps.acquire_waiters >= 0 && ps.borrow_waiters >= 0, "waiters");
  CHECK(ps.peak_held >= ps.held && ps.peak_overcommitted >= ps.overcommitted,
        "peaks");
  pthread_rwlock_rdlock(&e->lk);
  if (e->r) {
    hmb_runner_stats_t rs;
    CHECK_RC(hmb_runner_stats(e->r, &rs), OK_, "runner stats");
    CHECK(rs.held >= 0 && rs.live >= 0 && rs.live_buffers >= 0,
          "runner counters never negative");
    CHECK(rs.peak_held >= 0 && rs.peak_live >= 0 && rs.borrowed >= 0,
          "runner peaks");
  }
  pthread_rwlock_unlock(&e->lk);
}

static void op_describe(void) {
  char buf[512];
  int n = hmb_pool_describe(G.pool, 3, buf, sizeof buf);
  CHECK(n > 0 && strncmp(buf, "pool: held ", 11) == 0, "describe");
  CHECK(strlen(buf) == ((size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1),
        "describe length");
}

/* Give warm blocks back while other threads allocate and free. */
static void op_trim(worker_t *w) {
  size_t keep = rnd(w, 2) ? 0 : (size_t)rnd(w, LIMIT);
  CHECK_RC(hmb_pool_trim(G.pool, keep), OK_, "trim");
  hmb_memory_stats_t ms;
  CHECK_RC(hmb_pool_memory_stats(G.pool, &ms), OK_, "memory stats");
  CHECK(ms.cached_bytes >= 0 && ms.cached_bytes <= ms.cache_cap,
        "cache within its cap");
}

static void run_op(worker_t *w) {
  int op = pick_op(w);
  w->ops_done[op]++;
  switch (op) {
  case OP_CREATE:
    op_create(w, pick_entry(w));
    break;
  case OP_START:
    op_start(w, pick_entry(w));
    break;
  case OP_ALLOC:
    op_alloc(w, pick_entry(w));
    break;
  case OP_SLICE:
    op_slice(w);
    break;
  case OP_RETAIN:
    op_retain(w);
    break;
  case OP_CLOSE:
    op_close(w);
    break;
  case OP_XFER:
    op_xfer(w);
    break;
  case OP_TRYFREE:
    op_try_free(w, pick_entry(w));
    break;
  case OP_SETNEED:
    op_set_need(w, pick_entry(w));
    break;
  case OP_FINISH:
    op_finish(w, pick_entry(w));
    break;
  case OP_CANCEL:
    op_cancel(pick_entry(w));
    break;
  case OP_DESTROY:
    op_destroy(pick_entry(w));
    break;
  case OP_STATS:
    op_stats(pick_entry(w));
    break;
  default:
    if (G.builtin && rnd(w, 8) == 0)
      op_trim(w);
    else
      op_describe();
    break;
  }
}

/* ---- the quiescent checker -------------------------------------------- */

static int cmp_ptr(const void *a, const void *b) {
  uintptr_t x = (uintptr_t) * (hmb_buffer_t *const *)a;
  uintptr_t y = (uintptr_t) * (hmb_buffer_t *const *)b;
  return x < y ? -1 : x > y;
}

/* Called by one thread while every other thread waits at the barrier. */
static void check_quiescent(void) {
  hmb_pool_t *p = G.pool;
  int64_t sum_held = 0, sum_live = 0, sum_bufs = 0;
  int32_t running = 0, nr = 0;

  pthread_mutex_lock(&p->lock);
  for (hmb_runner_t *r = p->runners; r; r = r->next) {
    int64_t held = atomic_load(&r->held), live = atomic_load(&r->live);
    int64_t spare = atomic_load(&r->spare);
    int64_t bufs = atomic_load(&r->live_buffers);
    char d[160];
    snprintf(d, sizeof d,
             "runner #%" PRIu64 " %s: held %" PRId64 " live %" PRId64
             " spare %" PRId64 " buffers %" PRId64,
             r->id, hmb_runner_state_name(atomic_load(&r->state)), held, live,
             spare, bufs);
    CHECK(held >= 0 && live >= 0 && spare >= 0 && bufs >= 0, d);
    CHECK(live <= held, d);
    CHECK(spare == held - live, d);
    CHECK(atomic_load(&r->peak_live) >= live, d);
    CHECK(atomic_load(&r->peak_held) >= held, d);
    CHECK(r->nwait == 0 && atomic_load(&r->bor_queued) == 0, d);
    if (atomic_load(&r->returning))
      CHECK(spare == 0, d); /* finished runners keep no unused budget */
    if (bufs == 0)
      CHECK(live == 0, d);
    if (atomic_load(&r->state) == HMB_RUNNER_RUNNING)
      running++;
    sum_held += held;
    sum_live += live;
    sum_bufs += bufs;
    nr++;
  }
  char d[256];
  snprintf(d, sizeof d,
           "pool held %" PRId64 " sum %" PRId64 "; running %d counted %d; "
           "runners %d counted %d; waiters %d/%d",
           p->held, sum_held, p->running, running, p->nrunners, nr,
           p->acq_waiters, p->bor_waiters);
  CHECK(p->held == sum_held, d);
  CHECK(p->running == running, d);
  CHECK(p->nrunners == nr, d);
  CHECK(p->acq_waiters == 0 && p->bor_waiters == 0 && p->bor_runners == 0, d);
  CHECK(p->acq_head == NULL && p->bor_head == NULL, d);
  pthread_mutex_unlock(&p->lock);

  hmb_pool_stats_t st;
  CHECK_RC(hmb_pool_stats(p, &st), OK_, "stats");
  snprintf(d, sizeof d,
           "stats held %" PRId64 " available %" PRId64 " live %" PRId64
           " (sum %" PRId64 ") buffers %" PRId64 " (sum %" PRId64
           "); backend blocks %ld bytes %lld",
           st.held, st.available, st.live_bytes, sum_live, st.live_buffers,
           sum_bufs, atomic_load(&G.be_live_blocks),
           atomic_load(&G.be_live_bytes));
  CHECK(st.available == st.limit - st.held, d);
  CHECK(st.overcommitted == (st.held > st.limit ? st.held - st.limit : 0), d);
  CHECK(st.live_bytes == sum_live && st.live_buffers == sum_bufs, d);
  CHECK(st.peak_live_bytes >= st.live_bytes, d);

  /* What the threads reference must match the library's view. */
  static hmb_buffer_t *all[MAX_THREADS * MAX_REFS + XCHG_SLOTS + 4096];
  size_t n = 0;
  for (int t = 0; t < G.nthreads; t++)
    for (int i = 0; i < G.workers[t].nrefs; i++)
      all[n++] = G.workers[t].refs[i].b;
  for (int i = 0; i < G.nx; i++)
    all[n++] = G.xchg[i].b;
  CHECK(n + (size_t)G.nextra <= sizeof all / sizeof all[0], "checker capacity");
  for (int i = 0; i < G.nextra; i++)
    all[n++] = G.extra[i].b;
  qsort(all, n, sizeof all[0], cmp_ptr);
  /* Distinct live handles: those referenced, plus parents kept by slices. */
  static hmb_buffer_t *live[1 << 15];
  size_t nl = 0;
  for (size_t i = 0; i < n; i++)
    if (i == 0 || all[i] != all[i - 1])
      live[nl++] = all[i];
  for (size_t i = 0; i < nl; i++) { /* nl grows: parents of parents too */
    hmb_buffer_t *par = hmb_buffer_parent(live[i]);
    int seen = par == NULL;
    for (size_t j = 0; j < nl && !seen; j++)
      seen = live[j] == par;
    if (!seen) {
      CHECK(nl < sizeof live / sizeof live[0], "checker capacity");
      live[nl++] = par;
    }
  }
  int64_t root_bytes = 0, roots = 0, mem_bytes = 0, mem_roots = 0;
  int64_t pinned_bytes = 0;
  for (size_t i = 0; i < nl; i++) {
    hmb_buffer_t *b = live[i];
    long expect = 0;
    for (size_t j = 0; j < n; j++)
      expect += all[j] == b;
    for (size_t j = 0; j < nl; j++)
      expect += hmb_buffer_parent(live[j]) == b;
    snprintf(d, sizeof d, "buffer %p refcount %ld, expected %ld", (void *)b,
             hmb_buffer_refcount(b), expect);
    CHECK(hmb_buffer_refcount(b) == expect, d);
    if (!hmb_buffer_parent(b)) {
      roots++;
      root_bytes += (int64_t)hmb_buffer_size(b);
      if (hmb_buffer_data(b)) { /* not a reservation */
        mem_roots++;
        mem_bytes += (int64_t)hmb_buffer_size(b);
        if (hmb_buffer_is_pinned(b))
          pinned_bytes += (int64_t)hmb_buffer_size(b);
      }
    }
  }
  snprintf(d, sizeof d,
           "threads reference %" PRId64 " roots (%" PRId64
           " bytes); pool has %" PRId64 " (%" PRId64 ")",
           roots, root_bytes, st.live_buffers, st.live_bytes);
  CHECK(roots == st.live_buffers && root_bytes == st.live_bytes, d);
  /* Physical memory: exactly the non-reservation roots. */
  hmb_memory_stats_t ms;
  CHECK_RC(hmb_pool_memory_stats(p, &ms), OK_, "memory stats");
  snprintf(d, sizeof d,
           "backend %ld blocks %lld bytes; memory stats %" PRId64
           "; roots with memory %" PRId64 " (%" PRId64 " bytes)",
           atomic_load(&G.be_live_blocks), atomic_load(&G.be_live_bytes),
           ms.pageable_live + ms.pinned_live, mem_roots, mem_bytes);
  if (!G.builtin) {
    CHECK(mem_bytes == (int64_t)atomic_load(&G.be_live_bytes), d);
    CHECK(mem_roots == (int64_t)atomic_load(&G.be_live_blocks), d);
  }
  CHECK(ms.pageable_live + ms.pinned_live == mem_bytes, d);
  CHECK(ms.pinned_live == pinned_bytes, d);
  snprintf(d, sizeof d,
           "pageable live %" PRId64 " physical %" PRId64 " cached %" PRId64
           " cap %" PRId64 "; pinned live %" PRId64 " capacity %" PRId64,
           ms.pageable_live, ms.pageable_physical, ms.cached_bytes,
           ms.cache_cap, ms.pinned_live, ms.pinned_capacity);
  /* The physical bound: each block below 9/8 of its request, the warm
   * cache within its cap, the region within its capacity. */
  CHECK(ms.pageable_physical >= ms.pageable_live, d);
  CHECK(ms.pageable_physical * 8 <= ms.pageable_live * 9, d);
  CHECK(ms.cached_bytes >= 0 && ms.cached_bytes <= ms.cache_cap, d);
  CHECK(ms.pinned_live <= ms.pinned_capacity, d);
  atomic_fetch_add(&G.checks, 1);
}

static void *worker_main(void *arg) {
  worker_t *w = arg;
  for (long i = 1; i <= G.ops; i++) {
    run_op(w);
    if (i % G.phase == 0 || i == G.ops) {
      if (pthread_barrier_wait(&G.barrier) == PTHREAD_BARRIER_SERIAL_THREAD)
        check_quiescent();
      pthread_barrier_wait(&G.barrier);
    }
  }
  return NULL;
}

/*
 * mode 0: the failing custom backend. mode 1: the built-in backends, a warm
 * cache and a pinned region (served pageable, as fallbacks, where the
 * machine has no GPU). mode 2: as 1, with ordinary memory attached as the
 * pinned region when none could be created, so that the region's
 * sub-allocator and its full-region fallback run under contention too.
 */
static void run_random_stress(int mode) {
  static unsigned char region[16 * 1024] __attribute__((aligned(4096)));
  memset(&G, 0, sizeof G);
  G.seed = ts_seed(mode == 0   ? "stress_random"
                   : mode == 1 ? "stress_random (built-in backends)"
                               : "stress_random (built-in, region)");
  G.builtin = mode != 0;
  const char *tv = getenv("HMB_STRESS_THREADS");
  G.nthreads =
      (tv && *tv) ? (int)strtol(tv, NULL, 0) : (ts_under_sanitizer() ? 4 : 8);
  if (G.nthreads < 1)
    G.nthreads = 1;
  if (G.nthreads > MAX_THREADS)
    G.nthreads = MAX_THREADS;
  G.ops = ts_env_long("HMB_STRESS_OPS", 50000);
  if (mode != 0)
    G.ops /= 2;
  if (G.ops < 1)
    G.ops = 1;
  G.phase = 250;
  G.nentries = G.nthreads + G.nthreads / 2 + 1;
  G.be_fail_every = mode == 0 ? FAIL_EVERY : 0;
  fprintf(stderr, "stress_random: %d threads x %ld ops, %d runner slots\n",
          G.nthreads, G.ops, G.nentries);

  hmb_backend_t be = {NULL, be_alloc, be_free};
  hmb_pool_config_t cfg;
  hmb_pool_config_init(&cfg);
  cfg.limit = LIMIT;
  cfg.max_request = 4 * LIMIT;
  if (mode == 0) {
    cfg.backend = &be;
  } else {
    cfg.cache_bytes = LIMIT / 2;
    cfg.pinned_bytes = LIMIT / 2;
  }
  cfg.log_fn = count_log;
  cfg.log_level = HMB_LOG_DEBUG;
  assert_int_equal(hmb_pool_create(&cfg, &G.pool), HMB_OK);
  hmb_memory_stats_t ms0;
  assert_int_equal(hmb_pool_memory_stats(G.pool, &ms0), HMB_OK);
  if (mode == 2 && ms0.pinned_capacity == 0) {
    assert_int_equal(
        hmb__memory_attach_region(G.pool->mem, region, sizeof region), HMB_OK);
    assert_int_equal(hmb_pool_memory_stats(G.pool, &ms0), HMB_OK);
    assert_int_equal(ms0.pinned_capacity, (int64_t)sizeof region);
  }
  if (mode != 0)
    fprintf(stderr,
            "stress_random: cache cap %" PRId64 ", pinned capacity %" PRId64
            " (%s)\n",
            ms0.cache_cap, ms0.pinned_capacity,
            ms0.pinned_reason[0] ? ms0.pinned_reason : "region available");
  hmb_pool_stats_t initial;
  assert_int_equal(hmb_pool_stats(G.pool, &initial), HMB_OK);

  for (int i = 0; i < G.nentries; i++)
    pthread_rwlock_init(&G.entries[i].lk, NULL);
  pthread_mutex_init(&G.xmu, NULL);
  pthread_barrier_init(&G.barrier, NULL, (unsigned)G.nthreads);

  ts_watchdog_arm("stress_random", 240);
  for (int t = 0; t < G.nthreads; t++) {
    worker_t *w = &G.workers[t];
    w->id = t;
    w->rng = G.seed ^ (0x9E3779B97F4A7C15ull * (uint64_t)(t + 1));
    if (!w->rng)
      w->rng = 1;
    assert_int_equal(pthread_create(&w->th, NULL, worker_main, w), 0);
  }
  for (int t = 0; t < G.nthreads; t++)
    pthread_join(G.workers[t].th, NULL);

  /* Tear down in a random order: runners first or buffers first. */
  uint64_t rng = G.seed;
  int runners_first = (int)(ts_rand(&rng) & 1);
  if (runners_first)
    for (int i = 0; i < G.nentries; i++)
      hmb_runner_destroy(G.entries[i].r), G.entries[i].r = NULL;
  for (int t = 0; t < G.nthreads; t++)
    while (G.workers[t].nrefs)
      op_close(&G.workers[t]);
  for (int i = 0; i < G.nx; i++)
    assert_int_equal(hmb_buffer_close(G.xchg[i].b), HMB_OK);
  G.nx = 0;
  check_quiescent();
  for (int i = 0; i < G.nentries; i++)
    hmb_runner_destroy(G.entries[i].r), G.entries[i].r = NULL;
  ts_watchdog_disarm();

  /* Every counter back at its initial value. */
  hmb_pool_stats_t st;
  assert_int_equal(hmb_pool_stats(G.pool, &st), HMB_OK);
  ts_assert_pool_idle(G.pool);
  assert_int_equal(st.held, initial.held);
  assert_int_equal(st.available, initial.available);
  assert_int_equal(st.live_bytes, initial.live_bytes);
  assert_int_equal(st.live_buffers, initial.live_buffers);
  assert_int_equal(st.runners, 0);
  assert_int_equal(st.running, 0);
  assert_int_equal(atomic_load(&G.be_live_blocks), 0);
  assert_int_equal(atomic_load(&G.be_live_bytes), 0);
  hmb_memory_stats_t ms;
  assert_int_equal(hmb_pool_memory_stats(G.pool, &ms), HMB_OK);
  assert_int_equal(ms.pageable_live, 0);
  assert_int_equal(ms.pinned_live, 0);
  assert_int_equal(ms.pageable_physical, 0);
  assert_true(ms.cached_bytes <= ms.cache_cap);
  if (mode != 0) {
    /* The mix reached the cache, and pinned requests were served. */
    assert_true(ms.cache_hits + ms.cache_misses > 0);
    if (ms.pinned_capacity == 0)
      assert_true(ms.pinned_fallbacks > 0);
    else
      assert_true(ms.pinned_peak > 0);
    assert_true(ms.pinned_full_fallbacks <= ms.pinned_fallbacks);
    /* A trim to 0 empties the warm cache and counts what it gave back. */
    int64_t cached = ms.cached_bytes;
    uint64_t trimmed = ms.cache_trimmed;
    assert_int_equal(hmb_pool_trim(G.pool, 0), HMB_OK);
    assert_int_equal(hmb_pool_memory_stats(G.pool, &ms), HMB_OK);
    assert_int_equal(ms.cached_bytes, 0);
    assert_true(ms.cache_trimmed >= trimmed + (uint64_t)cached);
    fprintf(stderr,
            "stress_random: cache hits %" PRIu64 " misses %" PRIu64
            " rejects %" PRIu64 " trimmed %" PRIu64 "; pinned peak %" PRId64
            ", fallbacks %" PRIu64 " (region full %" PRIu64 ")\n",
            ms.cache_hits, ms.cache_misses, ms.cache_rejects, ms.cache_trimmed,
            ms.pinned_peak, ms.pinned_fallbacks, ms.pinned_full_fallbacks);
  }
  assert_int_equal(hmb_pool_destroy(G.pool), HMB_OK);

  long tot[OP_COUNT] = {0};
  for (int t = 0; t < G.nthreads; t++)
    for (int o = 0; o < OP_COUNT; o++)
      tot[o] += G.workers[t].ops_done[o];
  fprintf(stderr,
          "stress_random: %ld checks; ops create %ld start %ld alloc %ld "
          "slice %ld retain %ld close %ld xfer %ld try-free %ld set-need %ld "
          "finish %ld cancel %ld destroy %ld; acquires %" PRIu64
          " (over-commit %" PRIu64 ", timeouts %" PRIu64 "), borrows %" PRIu64
          " (waited %" PRIu64 ", over-commit %" PRIu64 ", timeouts %" PRIu64
          ", cancelled %" PRIu64 "); backend failures %ld; log lines %ld\n",
          atomic_load(&G.checks), tot[OP_CREATE], tot[OP_START], tot[OP_ALLOC],
          tot[OP_SLICE], tot[OP_RETAIN], tot[OP_CLOSE], tot[OP_XFER],
          tot[OP_TRYFREE], tot[OP_SETNEED], tot[OP_FINISH], tot[OP_CANCEL],
          tot[OP_DESTROY], st.acquires, st.acquire_overcommits,
          st.acquire_timeouts, st.borrows, st.borrow_waits,
          st.borrow_overcommits, st.borrow_timeouts, st.borrow_cancels,
          atomic_load(&G.be_fail), atomic_load(&G.log_lines));
  /* The mix must really have reached the contended paths. */
  assert_true(st.acquires > 0 && st.borrows > 0);
  assert_true(atomic_load(&G.checks) >= 2);
}

static void test_random_stress(void **state) {
  (void)state;
  run_random_stress(0);
}

static void test_random_stress_builtin(void **state) {
  (void)state;
  run_random_stress(1);
}

static void test_random_stress_region(void **state) {
  (void)state;
  run_random_stress(2);
}

/* ---- several threads borrowing for one runner ------------------------ */

typedef struct borrow_arg {
  hmb_runner_t *r;
  size_t bytes;
  int rc;
  hmb_buffer_t *b;
} borrow_arg_t;

static void *borrow_main(void *arg) {
  borrow_arg_t *a = arg;
  a->rc = hmb_runner_alloc(a->r, a->bytes, 0, &a->b);
  return NULL;
}

static int borrowers_are(hmb_pool_t *p, int n) {
  hmb_pool_stats_t st;
  hmb_pool_stats(p, &st);
  return st.borrow_waiters == n;
}

static int one_borrower(void *p) {
  return borrowers_are(p, 1);
}

static int two_borrowers(void *p) {
  return borrowers_are(p, 2);
}

/*
 * Runner A and B each hold half the pool. Two threads of A borrow. B is
 * running and not borrowing, so the all-borrowing rule must not apply: both
 * requests wait (two requests of one runner are not two runners). When B
 * finishes, the first fits and the second is granted beyond the limit, now
 * rightly, because A is the only running runner and it waits to borrow.
 */
static void test_two_borrows_of_one_runner(void **state) {
  (void)state;
  ts_watchdog_arm("two borrows of one runner", 60);
  ts_log_t log;
  memset(&log, 0, sizeof log);
  hmb_pool_t *p = ts_pool(1000, NULL, &log);
  hmb_runner_t *a = ts_started_runner(p, 500);
  hmb_runner_t *b = ts_started_runner(p, 500);
  borrow_arg_t x = {a, 600, 1, NULL}, y = {a, 600, 1, NULL};
  pthread_t tx, ty;
  pthread_create(&tx, NULL, borrow_main, &x);
  /* x first: it takes A's 500 spare and waits for 100 more. */
  assert_true(ts_wait_for(one_borrower, p, 5000));
  pthread_create(&ty, NULL, borrow_main, &y);
  int both = ts_wait_for(two_borrowers, p, 5000);
  hmb_pool_stats_t st;
  assert_int_equal(hmb_pool_stats(p, &st), HMB_OK);
  /* B is running and not borrowing: nothing may go beyond the limit. */
  assert_int_equal(st.borrow_overcommits, 0);
  assert_true(st.held <= st.limit);
  assert_true(both);

  assert_int_equal(hmb_runner_finish(b, 0, NULL), HMB_OK);
  pthread_join(tx, NULL);
  pthread_join(ty, NULL);
  assert_int_equal(x.rc, HMB_OK);
  assert_int_equal(y.rc, HMB_OK);
  assert_int_equal(hmb_pool_stats(p, &st), HMB_OK);
  assert_int_equal(st.borrow_overcommits, 1);
  assert_int_equal(st.held, 1200); /* A: 500 + 100 + 600; B gave back */
  assert_true(ts_log_contains(&log, "deadlock prevention"));
  assert_int_equal(hmb_buffer_close(x.b), HMB_OK);
  assert_int_equal(hmb_buffer_close(y.b), HMB_OK);
  hmb_runner_destroy(a);
  hmb_runner_destroy(b);
  ts_assert_pool_idle(p);
  assert_int_equal(hmb_pool_destroy(p), HMB_OK);
  ts_watchdog_disarm();
}

/* Cancel wakes every borrow request of the runner, not only the last. */
static void test_cancel_wakes_every_borrow(void **state) {
  (void)state;
  ts_watchdog_arm("cancel wakes every borrow", 60);
  hmb_pool_t *p = ts_pool(1000, NULL, NULL);
  hmb_runner_t *a = ts_started_runner(p, 500);
  hmb_runner_t *b = ts_started_runner(p, 500);
  borrow_arg_t x = {a, 600, 1, NULL}, y = {a, 700, 1, NULL};
  pthread_t tx, ty;
  pthread_create(&tx, NULL, borrow_main, &x);
  pthread_create(&ty, NULL, borrow_main, &y);
  int both = ts_wait_for(two_borrowers, p, 5000);
  assert_int_equal(hmb_runner_cancel(a), HMB_OK);
  pthread_join(tx, NULL);
  pthread_join(ty, NULL);
  assert_true(both);
  assert_int_equal(x.rc, HMB_ECANCELED);
  assert_int_equal(y.rc, HMB_ECANCELED);
  assert_null(x.b);
  assert_null(y.b);
  hmb_pool_stats_t st;
  assert_int_equal(hmb_pool_stats(p, &st), HMB_OK);
  assert_int_equal(st.borrows, 0);
  assert_int_equal(st.borrow_cancels, 2);
  assert_int_equal(st.borrow_overcommits, 0);
  assert_int_equal(st.held, 1000); /* A kept its 500 (spare restored) */
  hmb_runner_stats_t rs;
  assert_int_equal(hmb_runner_stats(a, &rs), HMB_OK);
  assert_int_equal(rs.held, 500);
  assert_int_equal(rs.live, 0);
  /* finish is allowed again: no request of A is queued any more. */
  size_t ret = 0;
  assert_int_equal(hmb_runner_finish(a, 0, &ret), HMB_OK);
  assert_int_equal(ret, 500);
  hmb_runner_destroy(a);
  hmb_runner_destroy(b);
  ts_assert_pool_idle(p);
  assert_int_equal(hmb_pool_destroy(p), HMB_OK);
  ts_watchdog_disarm();
}

/* ---- the executor under concurrent submit, cancel, close, shutdown ---- */

/*
 * Tasks of random estimates run on an executor over a small pool with the
 * built-in backends. A task allocates (often beyond its estimate, so it
 * borrows), reserves, slices, sometimes declares its real need, sometimes
 * waits to be cancelled, sometimes submits a follow-up task, hands some
 * buffers out to closer threads and sometimes fails. Submitter threads
 * queue tasks and cancel earlier ones (queued, admitting or running) while
 * the main thread shuts the executor down in DRAIN or CANCEL mode (or
 * both, from two threads). Then: every task's callback fired exactly once,
 * its status agrees with what the task returned and with every cancel, the
 * executor's counters add up, and once the handed-out buffers are closed
 * every budget and memory counter is back at rest.
 */

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
  hmb_task_t *h;  /* handle (NULL: detached or released) */
  int submitted;  /* submit returned 0 */
  int parent_run; /* submitted from inside another task */
  atomic_int done_calls;
  atomic_int status;
  atomic_int ran;      /* its function was entered */
  atomic_int returned; /* its function is about to return ret */
  atomic_int ret;
  atomic_int cancel_ok; /* an hmb_task_cancel() returned 0 */
} xtask_t;

static struct {
  hmb_executor_t *ex;
  xtask_t *t;
  atomic_int next;              /* records handed out */
  atomic_int shutdown_called;   /* set just before the first shutdown */
  atomic_int shutdown_returned; /* set once it has returned */
  atomic_int cancel_shutdown;   /* a CANCEL shutdown was called */
  atomic_long callbacks;
  atomic_int stop_closers;
  atomic_long submitted_ok, children_ok, handed_out, closed_by_closers;
  atomic_long alloc_timeouts, alloc_cancels;
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
  const hmb_allocator_t *al = hmb_runner_allocator(runner);
  CHECK(al != NULL, "runner allocator");
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
  int rc = hmb_task_cancel(t->h);
  CHECK_RC(rc, OK_ | BIT(HMB_ESTATE), "cancel");
  if (rc == 0) {
    atomic_store(&t->cancel_ok, 1);
  } else {
    /* HMB_ESTATE: finished, or its function has returned. */
    CHECK(atomic_load(&t->returned) ||
              (!atomic_load(&t->ran) && atomic_load(&X.cancel_shutdown)) ||
              atomic_load(&t->done_calls),
          "cancel refused only once the function returned");
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

typedef struct xshut {
  pthread_t th;
  int mode;
} xshut_t;

static void *xt_shutdown_main(void *arg) {
  xshut_t *a = arg;
  CHECK_RC(hmb_executor_shutdown(X.ex, a->mode), OK_, "concurrent shutdown");
  return NULL;
}

static void test_executor_stress(void **state) {
  (void)state;
  memset(&G, 0, sizeof G);
  memset(&X, 0, sizeof X);
  G.seed = ts_seed("stress_random (executor)");
  G.builtin = 1;
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
          "stress_random: executor: %ld tasks, %d workers, shutdown %s after "
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

  ts_watchdog_arm("stress_random (executor)", 120);
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
          "stress_random: executor: submitted %" PRIu64 " (children %ld), ran "
          "%" PRIu64 ", completed %" PRIu64 ", failed %" PRIu64
          ", cancelled %" PRIu64 ", requeues %" PRIu64
          "; allocation timeouts %ld, cancels %ld; handed out %ld\n",
          es.submitted, atomic_load(&X.children_ok), ran, es.completed,
          es.failed, es.cancelled, es.requeues, atomic_load(&X.alloc_timeouts),
          atomic_load(&X.alloc_cancels), atomic_load(&X.handed_out));
  assert_int_equal(es.queued, 0);
  assert_int_equal(es.running, 0);
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
  G.extra = X.out;
  G.nextra = X.nout;
  check_quiescent();
  G.extra = NULL;
  G.nextra = 0;

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

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_two_borrows_of_one_runner),
      cmocka_unit_test(test_cancel_wakes_every_borrow),
      cmocka_unit_test(test_random_stress),
      cmocka_unit_test(test_random_stress_builtin),
      cmocka_unit_test(test_random_stress_region),
      cmocka_unit_test(test_executor_stress),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
