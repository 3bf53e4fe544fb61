/*
 * stress_pool.c - randomized multi-threaded stress of a pool, its runners
 * and buffers, with the library's self-check after random steps.
 *
 * Worker threads run random sequences of every public operation on one small
 * pool: runner create/start/start_partial/grow/finish/cancel/destroy,
 * allocation (hot path and borrow, 0 bytes included), reservations, the
 * pointer API (alloc, realloc, free), slices, retain, close, buffer hand-over
 * between threads, try-free, set-need, stats, describe and trim. Runners live
 * in a shared table, so several threads allocate from, cancel and close
 * buffers of the same runner at once. A backend fails some physical
 * allocations so that rollback runs under contention too.
 *
 * After random steps a worker runs hmb_pool_check(pool, 0): the invariants
 * that hold at any instant (I1-I3, I5, the progress runner, queues, heap).
 * Every `phase` operations the workers meet at a barrier (all waits in the
 * library are bounded by timeouts, so every thread gets there) and one
 * thread checks, with nothing in flight:
 *   - hmb_pool_check(pool, HMB_CHECK_QUIESCENT): conservation, held == live
 *     + spare for every runner, no request queued, the memory counters;
 *   - every runner in the table: held == live + spare, beyond <= held;
 *   - live bytes/buffers of the pool == what the backend holds == the
 *     distinct root buffers the threads reference;
 *   - the reference count of every buffer == references the threads hold +
 *     live slices viewing it.
 * After everything is closed every counter is back at its initial value and
 * the pool can be destroyed.
 *
 * Three pools: the failing custom backend; the built-in backends (warm
 * cache, a pinned region the pool makes, or its fallback); the built-in
 * backends with an application region passed as pinned_base.
 *
 * Sizes: HMB_STRESS_THREADS (default 8, 4 under sanitizers) and
 * HMB_STRESS_OPS (operations per thread; default 50000, a quarter under
 * sanitizers). The seed is printed; HMB_TEST_SEED replays its random choices
 * (the thread interleaving is up to the scheduler).
 */
#define _POSIX_C_SOURCE 200809L
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storm_support.h"
#include "testsupport.h"

/* ---- configuration and shared state --------------------------------- */

enum {
  MAX_THREADS = 64,
  MAX_REFS = 48,   /* references one thread holds at most */
  XCHG_SLOTS = 64, /* references in transit between threads */
  FAIL_EVERY = 53  /* about one physical allocation in FAIL_EVERY fails */
};

typedef struct entry {
  pthread_rwlock_t lk; /* write: start/finish/destroy; read: the rest */
  hmb_runner_t *r;     /* NULL: empty slot */
  int finished;        /* finish succeeded (written under the write lock) */
} entry_t;

typedef struct ref {
  hmb_buffer_t *b;
  unsigned char tag; /* every byte of the root was set to this */
  unsigned char ptr; /* a block of hmb_ptr_alloc() (may be realloc'd) */
  entry_t *e;        /* ptr: the slot of the runner it was charged to; a
                        realloc (a call on that runner) holds its read lock */
} ref_t;

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
  /* backend */
  atomic_long be_calls, be_fail, be_live_blocks;
  atomic_llong be_live_bytes;
  int be_fail_every;
  size_t limit; /* the pool's limit: sizes are drawn relative to it */
} G;

/* 64 KiB with the custom backend; 2 MiB with the built-in ones, so that
 * the largest requests are mappings that go through the warm cache. */
#define LIMIT (G.limit)

#define FAILF(...) sts_failf("stress_pool", G.seed, __VA_ARGS__)
#define fail_detail(line, cond, detail)                                        \
  sts_fail_at("stress_pool", G.seed, (line), (cond), (detail))
#define CHECK(cond, detail)                                                    \
  STS_CHECK("stress_pool", G.seed, (cond), #cond, detail)
#define CHECK_RC(rc, allowed_mask, what)                                       \
  sts_check_rc("stress_pool", G.seed, __LINE__, (rc), (allowed_mask), (what))

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
  if (!d) {
    CHECK(n > 0, "a reservation has a size");
    return; /* budget without memory */
  }
  if (n == 0)
    return; /* a 0-byte buffer: a distinct pointer, no bytes */
  CHECK(d[0] == rf->tag && d[n - 1] == rf->tag, "buffer bytes intact");
}

/* The self-check at any instant, from any thread. */
static void self_check(unsigned flags) {
  char why[256];
  int rc = hmb_pool_check(G.pool, flags, why, sizeof why);
  if (rc != 0)
    FAILF("hmb_pool_check(%s): %s", flags ? "QUIESCENT" : "0", why);
}

static void add_ref(worker_t *w, hmb_buffer_t *b, unsigned char tag,
                    entry_t *ptr_of) {
  if (w->nrefs == MAX_REFS) {
    /* Full: close the new reference at once. */
    ref_t tmp = {b, tag, 0, NULL};
    check_tag(&tmp);
    CHECK(hmb_buffer_close(b) == 0, "close");
    return;
  }
  w->refs[w->nrefs].b = b;
  w->refs[w->nrefs].tag = tag;
  w->refs[w->nrefs].ptr = ptr_of != NULL;
  w->refs[w->nrefs].e = ptr_of;
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
  OP_GROW,
  OP_PTR,
  OP_COUNT
};

/* Weights out of 100. */
static int pick_op(worker_t *w) {
  static const int weight[OP_COUNT] = {5, 8, 22, 6, 6, 16, 6, 4,
                                       4, 5, 3,  4, 2, 2,  2, 5};
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
    int rc = rnd(w, 4) == 0 /* staged admission of a first piece */
                 ? hmb_runner_start_partial(e->r, (size_t)rnd(w, LIMIT / 4), t)
                 : hmb_runner_start(e->r, t);
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
    if (!reserve && rnd(w, 32) == 0)
      size = 0; /* valid since 0.2: charges nothing */
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
        CHECK(hmb_buffer_data(b) != NULL, "data, even for 0 bytes");
        CHECK(((uintptr_t)hmb_buffer_data(b) & 63) == 0, "aligned");
        if (hmb_buffer_is_pinned(b)) {
          CHECK(flags & HMB_ALLOC_PINNED, "pinned only when asked");
          CHECK(((uintptr_t)hmb_buffer_data(b) & 255) == 0, "pinned aligned");
        }
        memset(hmb_buffer_data(b), tag, size);
      }
      add_ref(w, b, tag, NULL);
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
  if (n == 0 || rnd(w, 6) == 0) {
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
  add_ref(w, s, rf->tag, NULL);
}

static void op_retain(worker_t *w) {
  if (!w->nrefs)
    return;
  ref_t rf = w->refs[rnd(w, (uint64_t)w->nrefs)];
  CHECK_RC(hmb_buffer_retain(rf.b), OK_, "retain");
  add_ref(w, rf.b, rf.tag, NULL); /* another reference: no realloc */
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
    /* Finished (also after a cancel): HMB_ESTATE; else idempotent. */
    if (st == HMB_RUNNER_COMPLETED || st == HMB_RUNNER_FAILED || e->finished)
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

/* Staged admission's second stage: reserve up to a need (or refuse). */
static void op_grow(worker_t *w, entry_t *e) {
  pthread_rwlock_rdlock(&e->lk);
  if (e->r) {
    size_t want = (size_t)rnd(w, LIMIT / 2);
    int64_t t = rnd(w, 2) ? 0 : (int64_t)rnd(w, 1000000);
    int st = hmb_runner_state(e->r);
    int rc = hmb_runner_grow(e->r, want, t);
    CHECK_RC(rc,
             OK_ | BIT(HMB_ETIMEDOUT) | BIT(HMB_ECANCELED) | BIT(HMB_ESTATE),
             "grow");
    if (rc == HMB_ESTATE)
      CHECK(st != HMB_RUNNER_RUNNING ||
                hmb_runner_state(e->r) != HMB_RUNNER_RUNNING,
            "ESTATE means not running");
  }
  pthread_rwlock_unlock(&e->lk);
}

/* The pointer API on a runner: alloc, realloc of a block this thread owns
 * alone (or refused when shared), free. */
static void op_ptr(worker_t *w, entry_t *e) {
  for (int i = 0; i < w->nrefs; i++) {
    ref_t *rf = &w->refs[i];
    if (!rf->ptr || rnd(w, 3) != 0)
      continue;
    void *p = hmb_buffer_data(rf->b);
    CHECK(hmb_ptr_buffer(p) == rf->b, "a pointer finds its handle");
    check_tag(rf);
    size_t n = hmb_buffer_size(rf->b);
    long refs = hmb_buffer_refcount(rf->b);
    size_t nn =
        rnd(w, 4) == 0 ? (size_t)rnd(w, LIMIT / 4) : (size_t)rnd(w, 4096);
    /* A call on the block's runner: not concurrent with its lifecycle
     * calls (hmb/runner.h), so under its slot's read lock. */
    pthread_rwlock_rdlock(&rf->e->lk);
    int rc = hmb_ptr_realloc(&p, nn);
    pthread_rwlock_unlock(&rf->e->lk);
    if (refs > 1) {
      /* Shared (a slice or another reference): refused, unless the other
       * reference closed meanwhile. */
      CHECK_RC(rc,
               OK_ | BIT(HMB_EBUSY) | BIT(HMB_ETIMEDOUT) | BIT(HMB_ECANCELED) |
                   BIT(HMB_ESTATE) | (G.builtin ? 0u : BIT(HMB_ENOMEM)),
               "realloc of a shared block");
    } else {
      CHECK_RC(rc,
               OK_ | BIT(HMB_ETIMEDOUT) | BIT(HMB_ECANCELED) | BIT(HMB_ESTATE) |
                   (G.builtin ? 0u : BIT(HMB_ENOMEM)),
               "realloc");
    }
    if (rc == 0) {
      CHECK(hmb_ptr_buffer(p) == rf->b, "realloc keeps the handle");
      CHECK(hmb_ptr_size(p) == nn && hmb_buffer_size(rf->b) == nn,
            "realloc size");
      size_t keep = n < nn ? n : nn;
      const unsigned char *d = p;
      CHECK(keep == 0 || (d[0] == rf->tag && d[keep - 1] == rf->tag),
            "realloc keeps the bytes");
      memset(p, rf->tag, nn);
    } else {
      CHECK(hmb_buffer_data(rf->b) == p && hmb_buffer_size(rf->b) == n,
            "a failed realloc changes nothing");
      check_tag(rf);
    }
    return;
  }
  pthread_rwlock_rdlock(&e->lk);
  if (e->r) {
    size_t al = (size_t)16 << rnd(w, 9); /* 16 .. 4096 */
    size_t size = (size_t)rnd(w, LIMIT / 16);
    void *p = (void *)&p; /* must be reset to NULL */
    int rc = hmb_ptr_alloc(hmb_runner_allocator(e->r), size, al, 0, &p);
    CHECK_RC(rc,
             OK_ | (G.builtin ? 0u : BIT(HMB_ENOMEM)) | BIT(HMB_ETIMEDOUT) |
                 BIT(HMB_ECANCELED) | BIT(HMB_ESTATE),
             "ptr alloc");
    if (rc == 0) {
      CHECK(p && ((uintptr_t)p & (al - 1)) == 0, "pointer aligned");
      hmb_buffer_t *b = hmb_ptr_buffer(p);
      CHECK(b && hmb_buffer_refcount(b) == 1 && hmb_ptr_size(p) == size,
            "pointer's handle");
      unsigned char tag = (unsigned char)rnd(w, 256);
      memset(p, tag, size);
      add_ref(w, b, tag, e);
    } else {
      CHECK(p == NULL, "out NULL on error");
    }
  }
  pthread_rwlock_unlock(&e->lk);
}

static void op_stats(entry_t *e) {
  hmb_pool_stats_t ps;
  CHECK_RC(hmb_pool_stats(G.pool, &ps), OK_, "pool stats");
  CHECK(ps.held >= 0 && ps.available == ps.limit - ps.held, "pool budget");
  /* Usage figures are exact only at rest (stats.h); the bound while
   * operations are in flight is tested in test_stats.c. Buffer counts are
   * never negative. */
  CHECK(ps.live_buffers >= 0, "pool live buffers");
  /* running (budget lock) and runners (registry) are read one after the
   * other, so only their own ranges. */
  CHECK(ps.running >= 0 && ps.runners >= 0, "running count");
  CHECK(ps.acquire_waiters >= 0 && ps.borrow_waiters >= 0, "waiters");
  CHECK(ps.peak_held >= ps.held && ps.peak_overcommitted >= ps.overcommitted,
        "peaks");
  CHECK(ps.beyond_running >= 0 && ps.beyond_stopped >= 0, "beyond");
  CHECK(ps.overcommitted <= ps.beyond_running + ps.beyond_stopped ||
            ps.limit_changes > 0,
        "over-commit within the beyond of the runners (I3)");
  pthread_rwlock_rdlock(&e->lk);
  if (e->r) {
    hmb_runner_stats_t rs;
    CHECK_RC(hmb_runner_stats(e->r, &rs), OK_, "runner stats");
    CHECK(rs.held >= 0 && rs.live_buffers >= 0,
          "runner counters never negative");
    CHECK(rs.peak_held >= 0 && rs.peak_live >= 0, "runner peaks");
    /* Fields read one by one: only each one's own range (the relations
     * between them are the self-check's, under the lock). */
    CHECK(rs.spare >= 0 && rs.beyond >= 0, "spare and beyond (R-I1, R-I3)");
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
  /* Other threads free into the cache meanwhile: the bound after a trim
   * is checked at the barriers (cached <= cache_cap). */
  CHECK(ms.cached_bytes >= 0, "cached bytes");
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
  case OP_GROW:
    op_grow(w, pick_entry(w));
    break;
  case OP_PTR:
    op_ptr(w, pick_entry(w));
    break;
  default:
    if (G.builtin && rnd(w, 8) == 0)
      op_trim(w);
    else
      op_describe();
    break;
  }
  /* The invariants that hold at any instant, after random steps. */
  if (rnd(w, 16) == 0 || op == OP_FINISH || op == OP_CANCEL || op == OP_DESTROY)
    self_check(0);
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
  char d[256];
  /* The library's own check of everything that holds at rest. */
  self_check(HMB_CHECK_QUIESCENT);
  hmb_pool_stats_t st;
  CHECK_RC(hmb_pool_stats(p, &st), OK_, "stats");
  snprintf(
      d, sizeof d,
      "held %" PRId64 " available %" PRId64 " limit %" PRId64 "; waiters %d/%d",
      st.held, st.available, st.limit, st.acquire_waiters, st.borrow_waiters);
  CHECK(st.available == st.limit - st.held, d);
  CHECK(st.overcommitted == (st.held > st.limit ? st.held - st.limit : 0), d);
  CHECK(st.acquire_waiters == 0 && st.borrow_waiters == 0, d);
  CHECK(st.peak_live_bytes >= st.live_bytes && st.peak_held >= st.held, d);
  /* Every runner of the table, through its own stats: at rest held is
   * exactly live + spare (R-I2), beyond within held (R-I3). */
  int32_t running = 0;
  for (int i = 0; i < G.nentries; i++) {
    hmb_runner_t *r = G.entries[i].r;
    if (!r)
      continue;
    hmb_runner_stats_t rs;
    CHECK_RC(hmb_runner_stats(r, &rs), OK_, "runner stats");
    snprintf(d, sizeof d,
             "runner #%" PRIu64 " %s: held %" PRId64 " live %" PRId64
             " spare %" PRId64 " beyond %" PRId64 " buffers %" PRId64,
             rs.id, hmb_runner_state_name(rs.state), rs.held, rs.live, rs.spare,
             rs.beyond, rs.live_buffers);
    CHECK(rs.held >= 0 && rs.live >= 0 && rs.spare >= 0 && rs.live_buffers >= 0,
          d);
    CHECK(rs.held == rs.live + rs.spare, d);
    CHECK(rs.beyond >= 0 && rs.beyond <= rs.held, d);
    CHECK(rs.peak_live >= rs.live && rs.peak_held >= rs.held, d);
    if (rs.state != HMB_RUNNER_RUNNING && rs.state != HMB_RUNNER_CREATED &&
        rs.state != HMB_RUNNER_CANCELLED)
      CHECK(rs.spare == 0, d); /* finished runners keep no unused budget */
    if (rs.live_buffers == 0)
      CHECK(rs.live == 0, d);
    CHECK(rs.progress == (st.progress_runner == rs.id), d);
    running += rs.state == HMB_RUNNER_RUNNING;
  }
  CHECK(st.running == running, "every running runner is in the table");

  /* What the threads reference must match the library's view. */
  static hmb_buffer_t *all[MAX_THREADS * MAX_REFS + XCHG_SLOTS + 4096];
  size_t n = 0;
  for (int t = 0; t < G.nthreads; t++)
    for (int i = 0; i < G.workers[t].nrefs; i++)
      all[n++] = G.workers[t].refs[i].b;
  for (int i = 0; i < G.nx; i++)
    all[n++] = G.xchg[i].b;
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
  /* Physical memory: exactly the non-reservation roots; the backend holds
   * what the pool says. */
  hmb_memory_stats_t ms;
  CHECK_RC(hmb_pool_memory_stats(p, &ms), OK_, "memory stats");
  snprintf(d, sizeof d,
           "backend %ld blocks %lld bytes; memory stats %" PRId64
           "; roots with memory %" PRId64 " (%" PRId64 " bytes)",
           atomic_load(&G.be_live_blocks), atomic_load(&G.be_live_bytes),
           ms.pageable_live + ms.pinned_live, mem_roots, mem_bytes);
  if (!G.builtin) {
    CHECK(mem_roots == (int64_t)atomic_load(&G.be_live_blocks), d);
    /* The backend is asked for each block's size plus its prefix (at
     * most HMB_MAX_ALIGN; test_allocator.c checks the prefix itself). */
    CHECK((int64_t)atomic_load(&G.be_live_bytes) >= mem_bytes, d);
    CHECK((int64_t)atomic_load(&G.be_live_bytes) <=
              mem_bytes + mem_roots * (int64_t)HMB_MAX_ALIGN,
          d);
  }
  CHECK(ms.pageable_live + ms.pinned_live == mem_bytes, d);
  CHECK(ms.pinned_live == pinned_bytes, d);
  snprintf(d, sizeof d,
           "pageable live %" PRId64 " physical %" PRId64 " cached %" PRId64
           " cap %" PRId64 "; pinned live %" PRId64 " capacity %" PRId64,
           ms.pageable_live, ms.pageable_physical, ms.cached_bytes,
           ms.cache_cap, ms.pinned_live, ms.pinned_capacity);
  /* The warm cache lives in the budget nobody holds (stats.h). */
  CHECK(ms.pageable_physical >= ms.pageable_live, d);
  CHECK(ms.cached_bytes >= 0 && ms.cached_bytes <= ms.cache_cap, d);
  CHECK(ms.cache_cap <= (st.limit > st.held ? st.limit - st.held : 0), d);
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
 * cache and a pinned region the pool makes (served pageable, as fallbacks,
 * where the machine has no GPU). mode 2: as 1, with ordinary memory passed
 * as the application's pinned region, so that the region's sub-allocator
 * and its full-region fallback run under contention too.
 */
static void run_random_stress(int mode) {
  static unsigned char region[256 * 1024] __attribute__((aligned(4096)));
  memset(&G, 0, sizeof G);
  G.limit = mode == 0 ? 64 * 1024 : 2 * 1024 * 1024;
  G.seed = ts_seed(mode == 0   ? "stress_pool"
                   : mode == 1 ? "stress_pool (built-in backends)"
                               : "stress_pool (built-in, pinned_base)");
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
  fprintf(stderr, "stress_pool: %d threads x %ld ops, %d runner slots\n",
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
    cfg.pinned_bytes = mode == 2 ? sizeof region : LIMIT / 2;
    if (mode == 2)
      cfg.pinned_base = region;
  }
  cfg.log_fn = count_log;
  cfg.log_level = HMB_LOG_DEBUG;
  assert_int_equal(hmb_pool_create(&cfg, &G.pool), HMB_OK);
  hmb_memory_stats_t ms0;
  assert_int_equal(hmb_pool_memory_stats(G.pool, &ms0), HMB_OK);
  if (mode == 2)
    assert_int_equal(ms0.pinned_capacity, (int64_t)sizeof region);
  if (mode != 0)
    fprintf(stderr,
            "stress_pool: cache cap %" PRId64 ", pinned capacity %" PRId64
            " (%s)\n",
            ms0.cache_cap, ms0.pinned_capacity,
            ms0.pinned_reason[0] ? ms0.pinned_reason : "region available");
  hmb_pool_stats_t initial;
  assert_int_equal(hmb_pool_stats(G.pool, &initial), HMB_OK);

  for (int i = 0; i < G.nentries; i++)
    pthread_rwlock_init(&G.entries[i].lk, NULL);
  pthread_mutex_init(&G.xmu, NULL);
  pthread_barrier_init(&G.barrier, NULL, (unsigned)G.nthreads);

  ts_watchdog_arm("stress_pool", 240);
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
  self_check(HMB_CHECK_QUIESCENT);
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
            "stress_pool: cache hits %" PRIu64 " misses %" PRIu64
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
  fprintf(
      stderr,
      "stress_pool: %ld checks; ops create %ld start %ld alloc %ld "
      "slice %ld retain %ld close %ld xfer %ld try-free %ld set-need %ld "
      "finish %ld cancel %ld destroy %ld grow %ld ptr %ld; acquires %" PRIu64
      " (over-commit %" PRIu64 ", timeouts %" PRIu64 "), borrows %" PRIu64
      " (waited %" PRIu64 ", over-commit %" PRIu64 ", timeouts %" PRIu64
      ", cancelled %" PRIu64 "); backend failures %ld; log lines %ld\n",
      atomic_load(&G.checks), tot[OP_CREATE], tot[OP_START], tot[OP_ALLOC],
      tot[OP_SLICE], tot[OP_RETAIN], tot[OP_CLOSE], tot[OP_XFER],
      tot[OP_TRYFREE], tot[OP_SETNEED], tot[OP_FINISH], tot[OP_CANCEL],
      tot[OP_DESTROY], tot[OP_GROW], tot[OP_PTR], st.acquires,
      st.acquire_overcommits, st.acquire_timeouts, st.borrows, st.borrow_waits,
      st.borrow_overcommits, st.borrow_timeouts, st.borrow_cancels,
      atomic_load(&G.be_fail), atomic_load(&G.log_lines));
  /* The mix must really have reached the contended paths. */
  assert_true(st.acquires > 0 && st.borrows > 0);
  assert_true(atomic_load(&G.checks) >= 2);
}

static void test_stress_pool_failing_backend(void **state) {
  (void)state;
  run_random_stress(0);
}

static void test_stress_pool_builtin_backends(void **state) {
  (void)state;
  run_random_stress(1);
}

static void test_stress_pool_application_region(void **state) {
  (void)state;
  run_random_stress(2);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_stress_pool_failing_backend),
      cmocka_unit_test(test_stress_pool_builtin_backends),
      cmocka_unit_test(test_stress_pool_application_region),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

/* ---- several threads borrowing for one runner ------------------------ */
