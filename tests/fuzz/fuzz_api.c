/*
 * fuzz_api.c - libFuzzer target: byte strings become API call sequences.
 *
 * Each input is decoded into up to a few hundred calls on one small pool:
 * runner create/start/finish/cancel/destroy/wait-idle, allocate, reserve,
 * slice, retain, close, try-free, set-need, stats, describe, pool destroy,
 * cache trim, close-event handlers (installed, replaced, chained to the
 * previous one, removed), and an injected physical allocation failure.
 * The last byte of the input picks the pool: the failing custom backend,
 * the built-in backends (warm cache and pinned region, served pageable
 * where no GPU is usable), or the built-in backends with ordinary memory
 * attached as the pinned region when none could be created. Bad input is mixed
 * in on purpose: NULL handles, zero, huge and SIZE_MAX sizes, unknown flags,
 * slices out of range or overflowing, starts and finishes in the wrong
 * state (double finish), allocation after finish or cancel.
 *
 * It runs on one thread and every wait is bounded (start timeout 0, borrow
 * timeout 1 ns), so a given input always takes the same path. The target
 * keeps its own model (which runners exist and in what state, which buffer
 * references it holds) and after every call checks, aborting on violation:
 *   - the status is one the documentation allows for that input and state;
 *   - pool held == sum of runner held, available == limit - held, nothing
 *     queued, running == runners in RUNNING;
 *   - per runner: spare == held - live >= 0, live <= held;
 *   - live bytes/buffers == distinct roots referenced == backend blocks
 *     (custom backend) or == the pool's pageable + pinned live bytes, with
 *     the warm cache within its cap and after a trim within what was kept;
 *   - every handler was called once per close of its buffer (and of the
 *     buffers chained to it), with the count after that close;
 *   - every buffer's count == references held + live slices on it;
 *   - the over-commit bound: a start goes beyond the limit only when no
 *     runner was running, a borrow only when its runner was the only one
 *     running (single thread: the only one that can be waiting to borrow).
 * At the end of an input everything is closed; the pool must be at rest and
 * destroyable, and LeakSanitizer checks that nothing leaked.
 */
#define _POSIX_C_SOURCE 200809L
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"

#define LIMIT 4096
#define MAX_REQ 16384
#define NSLOT 4
#define NREF 24
#define NHREC 32
#define CACHE_CAP 8192
#define PINNED 8192

typedef struct rd {
  const uint8_t *p;
  size_t n;
} rd_t;

static uint8_t byte(rd_t *r) {
  if (!r->n)
    return 0;
  r->n--;
  return *r->p++;
}

static size_t pick_size(rd_t *r) {
  uint8_t k = byte(r);
  switch (k & 7) {
  case 0:
    return 0;
  case 1:
    return SIZE_MAX;
  case 2:
    return HMB_MAX_ALLOC + 1;
  case 3:
    return MAX_REQ + 1 + byte(r);
  case 4:
    return LIMIT + (size_t)byte(r) * 16; /* beyond the limit, allowed */
  default:
    return 1 + (size_t)byte(r) * 8 + (k >> 3);
  }
}

#define CHECK(c)                                                               \
  do {                                                                         \
    if (!(c)) {                                                                \
      fprintf(stderr, "fuzz_api: invariant failed at line %d: %s\n", __LINE__, \
              #c);                                                             \
      abort();                                                                 \
    }                                                                          \
  } while (0)

/* ---- backend: fails when told to ---------------------------------------- */

static int fail_next;
static long be_live;

static int be_alloc(void *ctx, size_t size, size_t align, int pin, void **ptr,
                    int *pinned) {
  (void)ctx, (void)pin;
  if (fail_next) {
    fail_next = 0;
    return HMB_ENOMEM;
  }
  void *q = NULL;
  if (posix_memalign(&q, align, size) != 0)
    return HMB_ENOMEM;
  be_live++;
  *ptr = q;
  *pinned = 0;
  return 0;
}

static void be_free(void *ctx, void *ptr, size_t size, int pinned) {
  (void)ctx, (void)size, (void)pinned;
  be_live--;
  free(ptr);
}

static void sink(void *user, int level, const char *msg) {
  (void)user, (void)level;
  CHECK(msg[0] && !strchr(msg, '\n'));
}

/* ---- the model ------------------------------------------------------------*/

typedef struct slot {
  hmb_runner_t *r;
  int finished;
} slot_t;

static hmb_pool_t *pool;
static int variant; /* 0: custom backend; 1: built-in; 2: built-in + region */
static unsigned char region[2 * PINNED] __attribute__((aligned(4096)));
static slot_t slots[NSLOT];
static hmb_buffer_t *refs[NREF];
static int nrefs;

static hmb_pool_t *make_pool(void) {
  static const hmb_backend_t be = {NULL, be_alloc, be_free};
  hmb_pool_config_t cfg;
  hmb_pool_config_init(&cfg);
  cfg.limit = LIMIT;
  cfg.max_request = MAX_REQ;
  if (variant == 0) {
    cfg.backend = &be;
  } else {
    cfg.cache_bytes = CACHE_CAP;
    cfg.pinned_bytes = PINNED;
  }
  cfg.log_fn = sink;
  cfg.log_level = HMB_LOG_DEBUG;
  cfg.long_wait_ns = -1;
  hmb_pool_t *p = NULL;
  CHECK(hmb_pool_create(&cfg, &p) == 0 && p);
  hmb_memory_stats_t ms;
  CHECK(hmb_pool_memory_stats(p, &ms) == 0);
  CHECK(ms.cache_cap == (variant ? CACHE_CAP : 0) && ms.cached_bytes == 0);
  if (variant == 2 && ms.pinned_capacity == 0) {
    CHECK(hmb__memory_attach_region(p->mem, region, sizeof region) == 0);
    CHECK(hmb_pool_memory_stats(p, &ms) == 0);
    CHECK(ms.pinned_capacity == (int64_t)sizeof region);
  }
  return p;
}

/* ---- close-event handlers ---------------------------------------------- */

/* One installed handler and what the model expects of it. */
typedef struct hrec {
  hmb_buffer_t *buf;         /* the buffer it was installed on */
  int current;               /* the buffer's handler now */
  int chain;                 /* calls the handler it replaced */
  int dead;                  /* was called with refs 0 */
  hmb_buffer_handler_t prev; /* what it replaced */
  struct hrec *prev_rec;     /* the record behind prev, when chaining */
  long calls, last_refs;
  long expect_calls, expect_last;
} hrec_t;

static hrec_t hrecs[NHREC];
static int nhrecs;
static long handler_calls;

static void on_close(void *user, hmb_buffer_t *buf, long left) {
  hrec_t *h = user;
  CHECK(h >= hrecs && h < hrecs + nhrecs);
  CHECK(!h->dead && buf == h->buf && left >= 0);
  h->calls++;
  h->last_refs = left;
  handler_calls++;
  if (left == 0) {
    /* The memory and the budget are already back; the handle goes next. */
    h->dead = 1;
    CHECK(hmb_buffer_data(buf) == NULL);
  } else {
    CHECK(hmb_buffer_refcount(buf) == left);
  }
  if (h->chain)
    hmb_buffer_handler_invoke(&h->prev, buf, left);
}

/* The record installed on `b` now, or NULL. */
static hrec_t *current_rec(hmb_buffer_t *b) {
  for (int i = 0; i < nhrecs; i++)
    if (hrecs[i].buf == b && hrecs[i].current && !hrecs[i].dead)
      return &hrecs[i];
  return NULL;
}

/* Book the handler calls a close of `b` must make (slices that reach 0
 * close their parent too). */
static void expect_close(hmb_buffer_t *b) {
  for (hmb_buffer_t *cur = b; cur;) {
    long left = hmb_buffer_refcount(cur) - 1;
    for (hrec_t *h = current_rec(cur); h; h = h->chain ? h->prev_rec : NULL) {
      h->expect_calls++;
      h->expect_last = left;
    }
    if (left > 0)
      break;
    cur = hmb_buffer_parent(cur);
  }
}

static void check_handlers(void) {
  for (int i = 0; i < nhrecs; i++) {
    CHECK(hrecs[i].calls == hrecs[i].expect_calls);
    if (hrecs[i].calls)
      CHECK(hrecs[i].last_refs == hrecs[i].expect_last);
    CHECK(hrecs[i].dead == (hrecs[i].calls && hrecs[i].last_refs == 0));
  }
}

/* Every close of the target goes through here. */
static void close_ref(hmb_buffer_t *b) {
  expect_close(b);
  CHECK(hmb_buffer_close(b) == 0);
  check_handlers();
}

static int running_count(void) {
  int n = 0;
  for (hmb_runner_t *r = pool->runners; r; r = r->next)
    n += atomic_load(&r->state) == HMB_RUNNER_RUNNING;
  return n;
}

static void check_all(void) {
  int64_t sh = 0, sl = 0, sb = 0;
  int nr = 0;
  for (hmb_runner_t *r = pool->runners; r; r = r->next, nr++) {
    int64_t h = atomic_load(&r->held), l = atomic_load(&r->live);
    int64_t s = atomic_load(&r->spare);
    CHECK(h >= 0 && l >= 0 && s >= 0 && l <= h && s == h - l);
    CHECK(atomic_load(&r->live_buffers) >= 0 && r->nwait == 0);
    if (atomic_load(&r->returning))
      CHECK(s == 0);
    sh += h, sl += l, sb += atomic_load(&r->live_buffers);
  }
  CHECK(pool->held == sh && pool->nrunners == nr);
  CHECK(pool->running == running_count());
  CHECK(!pool->acq_head && !pool->bor_head && !pool->bor_runners);
  hmb_pool_stats_t st;
  CHECK(hmb_pool_stats(pool, &st) == 0);
  CHECK(st.available == st.limit - st.held && st.held >= 0);
  CHECK(st.live_bytes == sl && st.live_buffers == sb);
  CHECK(st.acquire_waiters == 0 && st.borrow_waiters == 0);
  /* References: counts and distinct roots. */
  int64_t roots = 0, mem_roots = 0, bytes = 0, mem_bytes = 0;
  int64_t pinned_bytes = 0;
  /* Walk all distinct live handles: referenced ones and their ancestors. */
  hmb_buffer_t *live[NREF * 64];
  int nl = 0;
  for (int i = 0; i < nrefs; i++) {
    for (hmb_buffer_t *b = refs[i]; b; b = hmb_buffer_parent(b)) {
      int seen = 0;
      for (int j = 0; j < nl && !seen; j++)
        seen = live[j] == b;
      if (seen)
        break;
      CHECK(nl < NREF * 64);
      live[nl++] = b;
    }
  }
  for (int i = 0; i < nl; i++) {
    long expect = 0;
    for (int j = 0; j < nrefs; j++)
      expect += refs[j] == live[i];
    for (int j = 0; j < nl; j++)
      expect += hmb_buffer_parent(live[j]) == live[i];
    CHECK(hmb_buffer_refcount(live[i]) == expect);
    if (!hmb_buffer_parent(live[i])) {
      roots++;
      bytes += (int64_t)hmb_buffer_size(live[i]);
      if (hmb_buffer_data(live[i])) {
        mem_roots++;
        mem_bytes += (int64_t)hmb_buffer_size(live[i]);
        if (hmb_buffer_is_pinned(live[i]))
          pinned_bytes += (int64_t)hmb_buffer_size(live[i]);
      }
    }
  }
  CHECK(roots == st.live_buffers && bytes == st.live_bytes);
  hmb_memory_stats_t ms;
  CHECK(hmb_pool_memory_stats(pool, &ms) == 0);
  CHECK(ms.pageable_live + ms.pinned_live == mem_bytes);
  CHECK(ms.pinned_live == pinned_bytes && ms.pinned_live <= ms.pinned_capacity);
  CHECK(ms.pageable_physical >= ms.pageable_live &&
        ms.pageable_physical * 8 <= ms.pageable_live * 9);
  CHECK(ms.cached_bytes >= 0 && ms.cached_bytes <= ms.cache_cap);
  if (variant == 0)
    CHECK(mem_roots == be_live);
  else
    CHECK(be_live == 0);
  check_handlers();
}

static void add_ref(hmb_buffer_t *b) {
  if (nrefs < NREF) {
    refs[nrefs++] = b;
    return;
  }
  close_ref(b);
}

/* ---- one call ---------------------------------------------------------- */

static void op_alloc(rd_t *in, slot_t *s, int reserve) {
  size_t n = pick_size(in);
  uint8_t f = byte(in);
  unsigned flags = (f & 1) ? HMB_ALLOC_PINNED : 0;
  if ((f & 6) == 6)
    flags |= 0x40u; /* unknown flag */
  int injected = (f & 0x18) == 0x18;
  fail_next = injected;
  hmb_pool_stats_t before;
  CHECK(hmb_pool_stats(pool, &before) == 0);
  int running_before = running_count();
  int st = s->r ? atomic_load(&s->r->state) : -1;
  hmb_buffer_t *b = (hmb_buffer_t *)&b;
  int rc = reserve ? hmb_runner_reserve(s->r, n, &b)
                   : hmb_runner_alloc(s->r, n, flags, &b);
  int expect;
  if (!s->r || n == 0 || (!reserve && (flags & 0x40u)))
    expect = HMB_EINVAL;
  else if (n > HMB_MAX_ALLOC)
    expect = HMB_ETOOBIG;
  else if (st != HMB_RUNNER_RUNNING)
    expect = hmb_runner_is_cancelled(s->r) ? HMB_ECANCELED : HMB_ESTATE;
  else if (n > MAX_REQ)
    expect = HMB_ETOOBIG;
  else
    expect = 0; /* or ENOMEM / ETIMEDOUT, checked below */
  if (expect == 0 && rc == HMB_ENOMEM) {
    CHECK(!reserve && injected && variant == 0);
    expect = rc;
  }
  if (expect == 0 && rc == HMB_ETIMEDOUT) {
    CHECK(running_before > 1); /* others could release: a real wait */
    expect = rc;
  }
  CHECK(rc == expect);
  fail_next = 0;
  if (rc) {
    CHECK(b == NULL);
    return;
  }
  CHECK(hmb_buffer_size(b) == n && hmb_buffer_refcount(b) == 1);
  CHECK(reserve ? hmb_buffer_data(b) == NULL : hmb_buffer_data(b) != NULL);
  if (hmb_buffer_is_pinned(b))
    CHECK((flags & HMB_ALLOC_PINNED) && variant != 0 &&
          ((uintptr_t)hmb_buffer_data(b) & 255) == 0);
  if (!reserve)
    memset(hmb_buffer_data(b), 0xa5, n < 64 ? n : 64);
  hmb_pool_stats_t after;
  CHECK(hmb_pool_stats(pool, &after) == 0);
  /* Over-commit bound: beyond the limit only if it was the only runner
   * running (every running runner was waiting to borrow). */
  if (after.borrow_overcommits > before.borrow_overcommits)
    CHECK(running_before == 1);
  add_ref(b);
}

static void op_slice(rd_t *in) {
  hmb_buffer_t *src = nrefs ? refs[byte(in) % nrefs] : NULL;
  uint8_t k = byte(in);
  size_t size = hmb_buffer_size(src);
  size_t off = (size_t)byte(in) * (size / 256 + 1);
  size_t len = (size_t)byte(in) * (size / 256 + 1) + 1;
  if (k % 7 == 0)
    off = SIZE_MAX - (k >> 4);
  if (k % 11 == 0)
    len = SIZE_MAX;
  if (k % 13 == 0)
    len = 0;
  hmb_buffer_t *s = (hmb_buffer_t *)&s;
  int rc = hmb_buffer_slice(src, off, len, (k % 17 == 0) ? NULL : &s);
  int valid = src && k % 17 != 0 && len > 0 && off <= size && len <= size - off;
  CHECK(rc == (valid ? 0 : HMB_EINVAL));
  if (rc) {
    if (k % 17 != 0)
      CHECK(s == NULL);
    return;
  }
  CHECK(hmb_buffer_parent(s) == src && hmb_buffer_size(s) == len);
  add_ref(s);
}

/* Install, replace (chaining or not) or remove a close-event handler. */
static void op_handler(rd_t *in) {
  uint8_t k = byte(in), m = byte(in);
  if (!nrefs) {
    hmb_buffer_handler_t h = {on_close, NULL};
    CHECK(hmb_buffer_set_handler(NULL, &h, NULL) == HMB_EINVAL);
    return;
  }
  hmb_buffer_t *b = refs[k % nrefs];
  hrec_t *cur = current_rec(b);
  hmb_buffer_handler_t prev = {on_close, &prev}; /* must be overwritten */
  if (m % 4 == 0 || nhrecs == NHREC) {
    /* Remove: a NULL handler or one with no function. */
    hmb_buffer_handler_t none = {NULL, &prev};
    CHECK(hmb_buffer_set_handler(b, (m & 4) ? NULL : &none,
                                 (m & 8) ? NULL : &prev) == 0);
    if (!(m & 8))
      CHECK(cur ? prev.fn == on_close && prev.user == cur : prev.fn == NULL);
    if (cur)
      cur->current = 0;
    return;
  }
  hrec_t *h = &hrecs[nhrecs++];
  memset(h, 0, sizeof *h);
  h->buf = b;
  h->chain = m & 1;
  h->prev = prev;
  hmb_buffer_handler_t nh = {on_close, h};
  CHECK(hmb_buffer_set_handler(b, &nh, &h->prev) == 0);
  CHECK(cur ? h->prev.fn == on_close && h->prev.user == cur
            : h->prev.fn == NULL);
  h->prev_rec = h->chain ? cur : NULL;
  if (cur)
    cur->current = 0;
  h->current = 1;
}

/* Give warm blocks back; at most `keep` bytes stay cached. */
static void op_trim(rd_t *in) {
  uint8_t k = byte(in);
  size_t keep = (k & 1) ? 0 : (k & 2) ? SIZE_MAX : (size_t)byte(in) * 64;
  hmb_memory_stats_t a, b;
  CHECK(hmb_pool_memory_stats(pool, &a) == 0);
  CHECK(hmb_pool_trim(pool, keep) == 0);
  CHECK(hmb_pool_memory_stats(pool, &b) == 0);
  CHECK(b.cached_bytes <= a.cached_bytes);
  CHECK((uint64_t)b.cached_bytes <= keep || b.cached_bytes == a.cached_bytes);
  if ((uint64_t)a.cached_bytes <= keep)
    CHECK(b.cached_bytes == a.cached_bytes);
  else
    CHECK((uint64_t)b.cached_bytes <= keep);
  CHECK(b.cache_trimmed - a.cache_trimmed ==
        (uint64_t)(a.cached_bytes - b.cached_bytes));
  CHECK(hmb_pool_trim(NULL, 0) == HMB_EINVAL);
}

static void one_call(rd_t *in) {
  uint8_t op = byte(in);
  slot_t *s = &slots[(op >> 4) % NSLOT];
  switch (op % 16) {
  case 0: { /* create */
    if (s->r)
      break;
    hmb_runner_config_t c = {0};
    c.estimate = pick_size(in);
    c.priority = (int8_t)byte(in);
    c.borrow_timeout_ns = 1;
    c.name = "fuzz";
    hmb_runner_t *r = (hmb_runner_t *)&r;
    int rc = hmb_runner_create(pool, &c, &r);
    CHECK(rc == (c.estimate > MAX_REQ ? HMB_ETOOBIG : 0));
    if (rc == 0) {
      s->r = r;
      s->finished = 0;
    } else {
      CHECK(r == NULL);
    }
    break;
  }
  case 1: { /* start */
    int st = s->r ? atomic_load(&s->r->state) : -1;
    int idle = running_count() == 0;
    hmb_pool_stats_t before, after;
    CHECK(hmb_pool_stats(pool, &before) == 0);
    int bad_timeout = byte(in) % 5 == 0;
    int rc = hmb_runner_start(s->r, bad_timeout ? -7 : 0);
    CHECK(hmb_pool_stats(pool, &after) == 0);
    if (!s->r || bad_timeout) {
      CHECK(rc == HMB_EINVAL);
    } else if (hmb_runner_is_cancelled(s->r)) {
      CHECK(rc == HMB_ECANCELED);
    } else if (st != HMB_RUNNER_CREATED) {
      CHECK(rc == HMB_ESTATE);
    } else {
      CHECK(rc == 0 || rc == HMB_ETIMEDOUT);
      CHECK(rc == 0 ? atomic_load(&s->r->state) == HMB_RUNNER_RUNNING
                    : atomic_load(&s->r->state) == HMB_RUNNER_CREATED);
      /* Over-commit bound for starts: only when nothing was running. */
      if (after.acquire_overcommits > before.acquire_overcommits)
        CHECK(idle);
      if (rc == HMB_ETIMEDOUT)
        CHECK(!idle);
    }
    break;
  }
  case 2:
  case 3:
    op_alloc(in, s, 0);
    break;
  case 4:
    op_alloc(in, s, 1);
    break;
  case 5:
    op_slice(in);
    break;
  case 6: /* retain */
    if (nrefs) {
      hmb_buffer_t *b = refs[byte(in) % nrefs];
      CHECK(hmb_buffer_retain(b) == 0);
      add_ref(b);
    } else {
      CHECK(hmb_buffer_retain(NULL) == HMB_EINVAL);
    }
    break;
  case 7:
  case 8: /* close */
    if (nrefs) {
      int i = byte(in) % nrefs;
      hmb_buffer_t *b = refs[i];
      refs[i] = refs[--nrefs];
      close_ref(b);
    } else {
      CHECK(hmb_buffer_close(NULL) == HMB_EINVAL);
    }
    break;
  case 9: { /* try-free */
    size_t max = pick_size(in), ret = 99;
    int rc = hmb_runner_try_free(s->r, max, &ret);
    CHECK(rc == (s->r ? 0 : HMB_EINVAL) && ret <= max);
    if (s->r) {
      CHECK(atomic_load(&s->r->spare) == 0 || ret == max);
    }
    break;
  }
  case 10: { /* set-need */
    size_t need = pick_size(in), ret = 99;
    int rc = hmb_runner_set_need(s->r, need, &ret);
    CHECK(rc == (!s->r ? HMB_EINVAL : need > HMB_MAX_ALLOC ? HMB_ETOOBIG : 0));
    if (rc == 0) {
      int64_t l = atomic_load(&s->r->live), h = atomic_load(&s->r->held);
      CHECK(h <= (l > (int64_t)need ? l : (int64_t)need));
    }
    break;
  }
  case 11: { /* finish (possibly twice) */
    int st = s->r ? atomic_load(&s->r->state) : -1;
    size_t ret = 99;
    int rc = hmb_runner_finish(s->r, byte(in) & 1, &ret);
    int expect = !s->r ? HMB_EINVAL
                 : (st == HMB_RUNNER_RUNNING ||
                    (st == HMB_RUNNER_CANCELLED && !s->finished))
                     ? 0
                     : HMB_ESTATE;
    CHECK(rc == expect);
    if (rc == 0)
      s->finished = 1;
    else
      CHECK(ret == 0);
    break;
  }
  case 12: { /* cancel */
    int st = s->r ? atomic_load(&s->r->state) : -1;
    int rc = hmb_runner_cancel(s->r);
    CHECK(rc == (!s->r ? HMB_EINVAL
                 : (st == HMB_RUNNER_COMPLETED || st == HMB_RUNNER_FAILED)
                     ? HMB_ESTATE
                     : 0));
    break;
  }
  case 13: /* destroy (live buffers stay valid) */
    hmb_runner_destroy(s->r);
    s->r = NULL;
    break;
  case 14: { /* inspection and NULLs */
    char d[200];
    int n = hmb_pool_describe(pool, byte(in) % 4, d, byte(in) % sizeof d);
    CHECK(n > 0);
    CHECK(hmb_pool_describe(pool, -1, d, sizeof d) == HMB_EINVAL);
    hmb_runner_stats_t rs;
    CHECK(hmb_runner_stats(s->r, &rs) == (s->r ? 0 : HMB_EINVAL));
    if (s->r) {
      CHECK(rs.live <= rs.held && rs.peak_live >= rs.live);
      CHECK(hmb_runner_wait_idle(s->r, 0) ==
            (rs.live_buffers ? HMB_ETIMEDOUT : 0));
    }
    CHECK(hmb_runner_start(NULL, 0) == HMB_EINVAL);
    CHECK(hmb_allocate(NULL, 1, 0, NULL) == HMB_EINVAL);
    break;
  }
  default: /* one byte more picks among the rarer calls */
    switch (byte(in) % 3) {
    case 0: { /* pool destroy: refused while anything is alive */
      int busy = pool->nrunners > 0;
      int rc = hmb_pool_destroy(pool);
      CHECK(rc == (busy ? HMB_EBUSY : 0));
      if (!busy)
        pool = make_pool();
      break;
    }
    case 1:
      op_handler(in);
      break;
    default:
      op_trim(in);
      break;
    }
    break;
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  rd_t in = {data, size};
  variant = size ? data[size - 1] % 3 : 0;
  nhrecs = 0;
  handler_calls = 0;
  pool = make_pool();
  memset(slots, 0, sizeof slots);
  nrefs = 0;
  fail_next = 0;
  for (int calls = 0; in.n && calls < 400; calls++) {
    one_call(&in);
    check_all();
  }
  /* Unwind: order taken from the input's first byte. */
  int runners_first = size && (data[0] & 1);
  if (runners_first)
    for (int i = 0; i < NSLOT; i++)
      hmb_runner_destroy(slots[i].r), slots[i].r = NULL;
  while (nrefs)
    close_ref(refs[--nrefs]);
  for (int i = 0; i < NSLOT; i++)
    hmb_runner_destroy(slots[i].r), slots[i].r = NULL;
  check_all();
  hmb_pool_stats_t st;
  CHECK(hmb_pool_stats(pool, &st) == 0);
  CHECK(st.held == 0 && st.live_bytes == 0 && st.running == 0 &&
        st.runners == 0 && be_live == 0);
  hmb_memory_stats_t ms;
  CHECK(hmb_pool_memory_stats(pool, &ms) == 0);
  CHECK(ms.pageable_live == 0 && ms.pinned_live == 0 &&
        ms.pageable_physical == 0 && ms.cached_bytes <= ms.cache_cap);
  /* Every handler saw its buffer's last close. */
  for (int i = 0; i < nhrecs; i++)
    CHECK(hrecs[i].dead || !hrecs[i].current);
  CHECK(hmb_pool_destroy(pool) == 0);
  pool = NULL;
  return 0;
}
