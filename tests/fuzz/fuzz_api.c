/*
 * fuzz_api.c - libFuzzer target: byte strings become API call sequences,
 * through the public API only (and the library's self-check).
 *
 * Each input is decoded into up to a few hundred calls on one small pool:
 * runner create/start (plain and staged: start_partial, then grow)/finish/
 * cancel/destroy/wait-idle, allocate (handles, aligned, the bound
 * allocator), the pointer API (hmb_ptr_alloc/realloc/free), reserve,
 * slice, retain, close, try-free, set-need, run-time limit changes, stats,
 * describe, pool destroy, cache trim, close-event handlers (installed,
 * replaced, chained to the previous one, removed), pressure handlers
 * (added, removed; they close buffers the target holds), and an injected
 * physical allocation failure. The last byte of the input picks the pool:
 * the failing custom backend, the built-in backends (warm cache), the
 * built-in backends with ordinary memory given as the pinned region
 * (pinned_base), or a pool with the over-commit cap (the byte before sets
 * the cap). Bad input is mixed in on purpose: NULL handles, zero, huge and
 * SIZE_MAX sizes, unknown flags, bad alignments, slices out of range or
 * overflowing, starts and finishes in the wrong state (double finish),
 * allocation after finish or cancel, reallocs of shared buffers.
 *
 * It runs on one thread and every wait is bounded (start and grow timeouts
 * 0 or 1 ns, borrow timeout 1 ns), so an input always takes the same path,
 * and the target can say what each call must return: with nothing else in
 * flight a start is granted iff what it asks fits the limit or nothing runs
 * (R3), a borrow or grow iff it fits, or its runner is the progress runner,
 * or it is the only runner running (R4); the cap turns a borrow beyond it
 * into HMB_ELIMIT. It keeps its own model (runners and their state and
 * declared need; every root buffer, its owner, size and tag; the
 * references it holds) and after every call checks, aborting on violation:
 *   - the status is the one the headers give for that input and state, and
 *     what was granted is exactly what the rules say;
 *   - hmb_pool_check(HMB_CHECK_QUIESCENT) finds every invariant sound;
 *   - I1: pool held == the runners' held + the live bytes of detached
 *     runners; available == limit - held; nothing queued; running ==
 *     runners in RUNNING; the runner count;
 *   - I2: a running runner other than the progress runner holds nothing
 *     beyond the limit; one progress runner at most;
 *   - I3: held <= limit + beyond_stopped + beyond_running (+ what lowered
 *     limits left above them), beyond_running <= the most the progress
 *     runner ever had live; I5: the over-commit within the cap;
 *   - per runner: held == live + spare, live and buffers == its roots;
 *   - live bytes/buffers == the roots referenced; memory pageable + pinned
 *     == the roots with data, the custom backend's blocks == them; the
 *     physical bytes within the live blocks and their rounding (prefix,
 *     size class, page; hmb/stats.h); the cache within its cap, which is
 *     limit - held; every root's contents intact (no overlap);
 *   - every handler was called once per close of its buffer (and of the
 *     buffers chained to it), with the count after that close; every
 *     buffer's count == references held + live slices on it.
 * At the end of an input everything is closed; the pool must be at rest and
 * destroyable, and LeakSanitizer checks that nothing leaked.
 *
 * The findings of docs/fuzzing.md (tests/stress/storm_findings.c,
 * physical_findings.c) are all fixed, and the target walks into them:
 * pinned requests aligned beyond 256 bytes, lowering a capped pool's limit
 * below what is held, and the literal forms of I3 (beyond_running <= the
 * progress runner's live bytes) and of the physical bound (the current
 * sizes' rounding). HMB_FUZZ_AVOID_KNOWN=1 steers clear of them again.
 */
#define _POSIX_C_SOURCE 200809L
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hmb.h"
#include "storm_support.h"

#define KIB ((size_t)1024)
#define LIMIT ((size_t)1024 * 1024)
#define MAX_REQ ((size_t)4 * 1024 * 1024)
#define NSLOT 4
#define NREF 24
#define NROOT (2 * NREF + 8)
#define NHREC 32
#define CACHE_CAP ((size_t)2 * 1024 * 1024)
#define PINNED ((size_t)256 * 1024)
#define LARGE_MIN ((size_t)256 * 1024)

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
    return (k & 8) ? SIZE_MAX : HMB_MAX_ALLOC + 1;
  case 2:
    return MAX_REQ + 1 + byte(r);
  case 3:
    return LIMIT + (size_t)byte(r) * 4096; /* beyond the limit, allowed */
  case 4:
    return LARGE_MIN + (size_t)byte(r) * 4096; /* a mapping */
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

static int known = 1; /* 0 (HMB_FUZZ_AVOID_KNOWN=1): steer clear of them */

/* ---- backend: fails when told to ------------------------------------------
 */

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

/* ---- the model ------------------------------------------------------------
 */

typedef struct slot {
  hmb_runner_t *r;
  uint64_t id;
  int finished;
  int64_t need; /* declared need, -1: none */
  int64_t peak; /* most bytes its roots ever had live */
} slot_t;

typedef struct root {
  hmb_buffer_t *b;
  uint64_t owner; /* runner id */
  int slot;       /* -1 once its runner is destroyed (detached) */
  size_t size, basis, prefix, align;
  int reservation, ptr, pinned;
  uint8_t tag;
} root_t;

typedef struct ref {
  hmb_buffer_t *b;
  void *p; /* a pointer of hmb_ptr_alloc(): closed with hmb_ptr_free() */
} ref_t;

static hmb_pool_t *pool;
static int variant; /* 0 custom backend; 1 built-in; 2 + region; 3 capped */
static int64_t cap;
static size_t cur_limit;
static int64_t debt_allow; /* shrinks of the limit not undone by growth */
static unsigned char region[2 * PINNED] __attribute__((aligned(4096)));
static slot_t slots[NSLOT];
static ref_t refs[NREF];
static int nrefs;
static root_t roots[NROOT];
static int nroots;
static int npressure, pressure_ids[2];
static long pressure_calls;

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
    if (variant == 2) {
      cfg.pinned_bytes = sizeof region;
      cfg.pinned_base = region;
    }
    if (variant == 3) {
      cfg.flags = HMB_POOL_CAP_OVERCOMMIT;
      cfg.overcommit_cap = (size_t)cap;
    }
  }
  cfg.log_fn = sink;
  cfg.log_level = HMB_LOG_DEBUG;
  cfg.long_wait_ns = -1;
  hmb_pool_t *p = NULL;
  CHECK(hmb_pool_create(&cfg, &p) == 0 && p);
  hmb_memory_stats_t ms;
  CHECK(hmb_pool_memory_stats(p, &ms) == 0);
  CHECK(ms.cache_cap ==
            (variant ? (int64_t)(LIMIT < CACHE_CAP ? LIMIT : CACHE_CAP) : 0) &&
        ms.cached_bytes == 0);
  CHECK((ms.pinned_capacity > 0) == (variant == 2));
  cur_limit = LIMIT;
  debt_allow = 0;
  npressure = 0;
  return p;
}

static hmb_pool_stats_t pool_stats(void) {
  hmb_pool_stats_t st;
  CHECK(hmb_pool_stats(pool, &st) == 0);
  return st;
}

static hmb_runner_stats_t runner_stats(const hmb_runner_t *r) {
  hmb_runner_stats_t st;
  CHECK(hmb_runner_stats(r, &st) == 0);
  return st;
}

static int running_count(void) {
  int n = 0;
  for (int i = 0; i < NSLOT; i++)
    n += slots[i].r && hmb_runner_state(slots[i].r) == HMB_RUNNER_RUNNING;
  return n;
}

/* ---- roots and their contents -----------------------------------------------
 */

/* What a block may occupy: the prefix, the size class (< 1/8, or < 16 bytes
 * up to 128), the page rounding of mappings (storm_support.c, shared with
 * the storm and the physical-bound stress). */
static size_t phys_bound(size_t size, size_t prefix) {
  return sts_phys_bound(size, prefix);
}

static void tag_fill(const root_t *rt) {
  void *d = hmb_buffer_data(rt->b);
  if (!d || !rt->size)
    return;
  size_t n = rt->size < 16 ? rt->size : 16;
  memset(d, rt->tag, n);
  memset((char *)d + rt->size - n, rt->tag, n);
}

static void tag_check(const root_t *rt) {
  const unsigned char *d = hmb_buffer_data(rt->b);
  if (!d || !rt->size)
    return;
  size_t n = rt->size < 16 ? rt->size : 16;
  for (size_t i = 0; i < n; i++)
    CHECK(d[i] == rt->tag && d[rt->size - 1 - i] == rt->tag);
}

static root_t *root_of_handle(hmb_buffer_t *b) {
  for (int i = 0; i < nroots; i++)
    if (roots[i].b == b)
      return &roots[i];
  return NULL;
}

static int slot_index(const slot_t *s) {
  return (int)(s - slots);
}

/* A new root of `s`'s runner: any older entry for the same handle is dead
 * (the handle was reused). */
static root_t *root_add(slot_t *s, hmb_buffer_t *b, size_t align, int ptr,
                        uint8_t tag) {
  root_t *rt = root_of_handle(b);
  if (!rt) {
    CHECK(nroots < NROOT);
    rt = &roots[nroots++];
  }
  rt->b = b;
  rt->owner = s->id;
  rt->slot = slot_index(s);
  rt->size = rt->basis = hmb_buffer_size(b);
  rt->align = align;
  rt->prefix = align > 16 ? align : 16;
  rt->reservation = hmb_buffer_data(b) == NULL;
  rt->ptr = ptr;
  rt->pinned = hmb_buffer_is_pinned(b);
  rt->tag = tag;
  tag_fill(rt);
  return rt;
}

/* ---- close-event handlers ---------------------------------------------------
 */

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

static void on_close(void *user, hmb_buffer_t *buf, long left) {
  hrec_t *h = user;
  CHECK(h >= hrecs && h < hrecs + nhrecs);
  CHECK(!h->dead && buf == h->buf && left >= 0);
  h->calls++;
  h->last_refs = left;
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
static void close_ref(ref_t r) {
  root_t *rt = root_of_handle(r.b);
  if (rt)
    tag_check(rt);
  expect_close(r.b);
  CHECK((r.p ? hmb_ptr_free(r.p) : hmb_buffer_close(r.b)) == 0);
  check_handlers();
}

static void add_ref(hmb_buffer_t *b, void *p) {
  if (nrefs == NREF) {
    ref_t old = refs[0];
    refs[0] = refs[--nrefs];
    close_ref(old);
  }
  refs[nrefs].b = b;
  refs[nrefs].p = p;
  nrefs++;
}

/* ---- pressure handlers: close what the target holds ---------------------- */

static void on_pressure(void *user, hmb_pool_t *p, const hmb_pressure_t *ev) {
  (void)user;
  CHECK(p == pool);
  CHECK(ev->kind == HMB_PRESSURE_OVERCOMMIT || ev->kind == HMB_PRESSURE_WAIT);
  CHECK(ev->request >= HMB_REQUEST_START && ev->request <= HMB_REQUEST_GROW);
  CHECK(ev->runner_id > 0 && ev->runner_name &&
        ev->limit == (int64_t)cur_limit);
  if (ev->kind == HMB_PRESSURE_OVERCOMMIT)
    CHECK(ev->request == HMB_REQUEST_BORROW && ev->wanted > 0);
  pressure_calls++;
  /* Flush the oldest reference, as an engine spills a finished buffer. */
  if (nrefs) {
    ref_t r = refs[0];
    refs[0] = refs[--nrefs];
    close_ref(r);
  }
}

/* ---- the check after every call
 * ---------------------------------------------- */

static void prune_roots(void) {
  /* Roots no reference reaches any more were closed. */
  for (int i = 0; i < nroots;) {
    int reached = 0;
    for (int j = 0; j < nrefs && !reached; j++) {
      hmb_buffer_t *b = refs[j].b;
      while (hmb_buffer_parent(b))
        b = hmb_buffer_parent(b);
      reached = b == roots[i].b;
    }
    if (reached)
      i++;
    else
      roots[i] = roots[--nroots];
  }
}

static void check_all(void) {
  char why[256];
  if (hmb_pool_check(pool, HMB_CHECK_QUIESCENT, why, sizeof why) != 0) {
    fprintf(stderr, "fuzz_api: hmb_pool_check: %s\n", why);
    CHECK(!"hmb_pool_check(HMB_CHECK_QUIESCENT)");
  }
  prune_roots();
  hmb_pool_stats_t st = pool_stats();
  CHECK(st.available == st.limit - st.held && st.held >= 0);
  CHECK(st.limit == (int64_t)cur_limit);
  CHECK(st.acquire_waiters == 0 && st.borrow_waiters == 0);
  CHECK(st.running == running_count());
  /* References: counts and distinct handles. */
  hmb_buffer_t *live[NREF * 64];
  int nl = 0;
  for (int i = 0; i < nrefs; i++) {
    for (hmb_buffer_t *b = refs[i].b; b; b = hmb_buffer_parent(b)) {
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
      expect += refs[j].b == live[i];
    for (int j = 0; j < nl; j++)
      expect += hmb_buffer_parent(live[j]) == live[i];
    CHECK(hmb_buffer_refcount(live[i]) == expect);
  }
  /* Roots: usage per runner, per pool, per memory layer. */
  int64_t bytes = 0, data_bytes = 0, pinned = 0, data_roots = 0;
  int64_t pageable = 0, phys_hi = 0, phys_now = 0, detached = 0;
  int64_t slot_live[NSLOT] = {0}, slot_bufs[NSLOT] = {0};
  uint64_t det_owner[NROOT];
  int ndet = 0;
  for (int i = 0; i < nroots; i++) {
    root_t *rt = &roots[i];
    CHECK(!hmb_buffer_parent(rt->b) && hmb_buffer_size(rt->b) == rt->size);
    CHECK(hmb_buffer_is_pinned(rt->b) == rt->pinned);
    tag_check(rt);
    bytes += (int64_t)rt->size;
    if (rt->slot >= 0) {
      slot_live[rt->slot] += (int64_t)rt->size;
      slot_bufs[rt->slot]++;
    } else {
      detached += (int64_t)rt->size;
      int seen = 0;
      for (int j = 0; j < ndet && !seen; j++)
        seen = det_owner[j] == rt->owner;
      if (!seen)
        det_owner[ndet++] = rt->owner;
    }
    if (rt->reservation)
      continue;
    data_roots++;
    data_bytes += (int64_t)rt->size;
    if (rt->pinned) {
      pinned += (int64_t)rt->size;
    } else {
      pageable += (int64_t)rt->size;
      phys_hi += (int64_t)phys_bound(rt->basis, rt->prefix);
      phys_now += (int64_t)phys_bound(rt->size, rt->prefix);
    }
  }
  CHECK(st.live_buffers == nroots && st.live_bytes == bytes);
  /* Runners: each one's figures, I1 and I2. */
  int64_t sum_held = detached, beyond_stopped = 0;
  int nrun = ndet, progress = 0;
  for (int i = 0; i < NSLOT; i++) {
    slot_t *s = &slots[i];
    if (!s->r)
      continue;
    nrun++;
    hmb_runner_stats_t rs = runner_stats(s->r);
    CHECK(rs.id == s->id);
    CHECK(rs.held >= 0 && rs.spare >= 0 && rs.held == rs.live + rs.spare);
    CHECK(rs.live == slot_live[i] && rs.live_buffers == slot_bufs[i]);
    CHECK(rs.beyond >= 0 && rs.beyond <= rs.held);
    CHECK(rs.peak_live <= rs.peak_held && rs.peak_live >= rs.live);
    CHECK(rs.real_need == s->need);
    if (slot_live[i] > s->peak)
      s->peak = slot_live[i];
    sum_held += rs.held;
    if (rs.state == HMB_RUNNER_RUNNING) {
      if (rs.progress) {
        progress++;
        CHECK(st.progress_runner == rs.id && st.beyond_running == rs.beyond);
        /* I3: the progress runner's beyond is at most its real need. */
        CHECK(rs.beyond <= s->peak);
        if (known)
          CHECK(rs.beyond <= rs.live);
      } else {
        CHECK(rs.beyond == 0); /* I2 */
      }
    } else {
      CHECK(!rs.progress);
      beyond_stopped += rs.beyond;
    }
  }
  CHECK(progress == (st.progress_runner != 0));
  CHECK(st.progress_runner || st.beyond_running == 0);
  CHECK(st.runners == nrun);
  CHECK(st.held == sum_held); /* detached runners hold just their live */
  CHECK(beyond_stopped <= st.beyond_stopped);
  CHECK(st.held <=
        st.limit + st.beyond_stopped + st.beyond_running + debt_allow); /* I3 */
  if (variant == 3)
    CHECK(st.overcommit_cap == cap &&
          st.overcommitted <= cap + debt_allow); /* I5 (a lowered limit) */
  else
    CHECK(st.overcommit_cap == -1);
  /* Memory. */
  hmb_memory_stats_t ms;
  CHECK(hmb_pool_memory_stats(pool, &ms) == 0);
  CHECK(ms.pageable_live + ms.pinned_live == data_bytes);
  CHECK(ms.pinned_live == pinned && ms.pinned_live <= ms.pinned_capacity);
  CHECK(ms.cached_bytes >= 0 && ms.cached_bytes <= ms.cache_cap);
  if (variant == 0) {
    CHECK(data_roots == be_live && ms.cache_cap == 0);
    CHECK(ms.pageable_physical >= pageable);
  } else {
    CHECK(be_live == 0);
    int64_t room = st.limit - st.held > 0 ? st.limit - st.held : 0;
    CHECK(ms.cache_cap ==
          (room < (int64_t)CACHE_CAP ? room : (int64_t)CACHE_CAP));
    CHECK(ms.pageable_physical >= pageable && ms.pageable_physical <= phys_hi);
    if (known)
      CHECK(ms.pageable_physical <= phys_now);
  }
  check_handlers();
}

/* ---- one call
 * ---------------------------------------------------------------- */

/* What a borrow of `deficit` more bytes for runner `s` must return, with
 * nothing else in flight (see the file comment), or 1 for "0 or
 * HMB_ELIMIT" when pressure handlers may free budget first. */
static int borrow_expect(slot_t *s, int64_t deficit) {
  if (deficit <= 0)
    return 0;
  hmb_pool_stats_t st = pool_stats();
  int64_t avail = st.limit - st.held;
  hmb_runner_stats_t rs = runner_stats(s->r);
  int progress = rs.progress || (avail < deficit && st.running == 1);
  if (avail >= deficit)
    return 0;
  if (!progress)
    return HMB_ETIMEDOUT;
  if (npressure)
    return 1;
  if (variant == 3 && st.held + deficit - st.limit > cap)
    return HMB_ELIMIT;
  return 0;
}

/* The most bytes `s`'s roots have had live, kept up to date (the beyond of
 * a progress runner is bounded by it, I3). */
static void note_peak(slot_t *s) {
  int64_t live = 0;
  for (int i = 0; i < nroots; i++)
    if (roots[i].slot == slot_index(s))
      live += (int64_t)roots[i].size;
  if (live > s->peak)
    s->peak = live;
}

static int state_expect(slot_t *s) {
  int st = hmb_runner_state(s->r);
  if (st == HMB_RUNNER_RUNNING)
    return 0;
  return hmb_runner_is_cancelled(s->r) ? HMB_ECANCELED : HMB_ESTATE;
}

static size_t pick_align(rd_t *in, int *bad) {
  static const size_t al[] = {0, 16, 64, 256, 4096, 65536, 3, (size_t)1 << 17};
  size_t a = al[byte(in) & 7];
  *bad = a == 3 || a > HMB_MAX_ALIGN;
  return a;
}

/* kind: 0 alloc, 1 aligned, 2 pointer, 3 reserve, 4 bound allocator. */
static void op_alloc(rd_t *in, slot_t *s, int kind) {
  size_t n = pick_size(in);
  uint8_t f = byte(in);
  unsigned flags = (f & 1) ? HMB_ALLOC_PINNED : 0;
  if ((f & 6) == 6 && kind != 3)
    flags |= 0x40u; /* unknown flag */
  int bad_align = 0;
  size_t align = kind == 1 || kind == 2 ? pick_align(in, &bad_align) : 0;
  size_t eff = kind == 2 ? (align ? align : 16) : (align ? align : 64);
  if (!known && eff > 256)
    flags &= ~(unsigned)HMB_ALLOC_PINNED; /* known: overlapping blocks */
  int injected = (f & 0x18) == 0x18;
  fail_next = injected && variant == 0;
  int expect;
  if (!s->r || (flags & 0x40u) || bad_align || (kind == 3 && n == 0))
    expect = HMB_EINVAL;
  else if (n > HMB_MAX_ALLOC)
    expect = HMB_ETOOBIG;
  else if (state_expect(s))
    expect = state_expect(s);
  else if (n > MAX_REQ)
    expect = HMB_ETOOBIG;
  else
    expect = borrow_expect(s, (int64_t)n - runner_stats(s->r).spare);
  if (kind == 4 && !s->r)
    expect = HMB_ESTATE; /* the bound allocator, with nothing bound */
  hmb_pool_stats_t before = pool_stats();
  hmb_runner_stats_t rb;
  memset(&rb, 0, sizeof rb);
  if (s->r)
    rb = runner_stats(s->r);
  long pc0 = pressure_calls;
  hmb_buffer_t *b = (hmb_buffer_t *)&b;
  void *p = &p;
  int rc;
  switch (kind) {
  case 1:
    rc = hmb_allocate_aligned(s->r ? hmb_runner_allocator(s->r) : NULL, n,
                              align, flags, &b);
    if (!s->r)
      expect = HMB_EINVAL;
    break;
  case 2:
    rc = hmb_ptr_alloc(s->r ? hmb_runner_allocator(s->r) : NULL, n, align,
                       flags, &p);
    if (!s->r)
      expect = HMB_EINVAL;
    b = rc ? NULL : hmb_ptr_buffer(p);
    break;
  case 3:
    rc = hmb_runner_reserve(s->r, n, &b);
    break;
  case 4: {
    hmb_runner_t *prev = hmb_runner_bind(s->r);
    CHECK(prev == NULL && hmb_runner_bound() == s->r);
    rc = hmb_allocate(hmb_bound_allocator(HMB_UNBOUND_FAIL), n, flags, &b);
    CHECK(hmb_runner_bind(NULL) == s->r);
    if ((flags & 0x40u) || n > HMB_MAX_ALLOC)
      expect = (flags & 0x40u) ? HMB_EINVAL : HMB_ETOOBIG;
    break;
  }
  default:
    rc = hmb_runner_alloc(s->r, n, flags, &b);
    break;
  }
  if (expect == 0 && rc == HMB_ENOMEM) {
    CHECK(kind != 3 && injected && variant == 0);
    expect = rc;
  }
  if (expect == 1) { /* pressure handlers ran */
    CHECK(rc == 0 || (rc == HMB_ELIMIT && variant == 3) ||
          (rc == HMB_ENOMEM && injected && variant == 0));
    expect = rc;
  }
  CHECK(rc == expect);
  fail_next = 0;
  if (rc) {
    if (kind == 2)
      CHECK(p == NULL);
    else
      CHECK(b == NULL);
    if (pressure_calls != pc0)
      return; /* the handlers closed buffers meanwhile */
    /* I6: a failure changes nothing. */
    hmb_pool_stats_t after = pool_stats();
    CHECK(after.held == before.held && after.borrows == before.borrows &&
          after.peak_held == before.peak_held &&
          after.borrow_overcommits == before.borrow_overcommits);
    if (s->r) {
      hmb_runner_stats_t ra = runner_stats(s->r);
      CHECK(ra.held == rb.held && ra.spare == rb.spare &&
            ra.borrows == rb.borrows && ra.borrowed == rb.borrowed &&
            ra.beyond == rb.beyond && ra.peak_held == rb.peak_held &&
            ra.allocations == rb.allocations);
    }
    return;
  }
  CHECK(b && hmb_buffer_size(b) == n && hmb_buffer_refcount(b) == 1);
  CHECK(kind == 3 ? hmb_buffer_data(b) == NULL : hmb_buffer_data(b) != NULL);
  uintptr_t d = (uintptr_t)hmb_buffer_data(b);
  if (hmb_buffer_is_pinned(b))
    CHECK((flags & HMB_ALLOC_PINNED) && variant == 2 && d % 256 == 0 &&
          d >= (uintptr_t)region && d + n <= (uintptr_t)region + sizeof region);
  if (kind != 3)
    CHECK(d % eff == 0);
  if (kind == 2)
    CHECK(p == hmb_buffer_data(b) && hmb_ptr_size(p) == n);
  CHECK(runner_stats(s->r).allocations == rb.allocations + 1);
  /* Over-commit: a borrow goes beyond the limit only for the runner that
   * was (or became) the progress runner. */
  hmb_pool_stats_t after = pool_stats();
  if (after.borrow_overcommits > before.borrow_overcommits)
    CHECK(after.progress_runner == s->id);
  root_add(s, b, eff, kind == 2, (uint8_t)(0x11 + byte(in)));
  note_peak(s);
  add_ref(b, kind == 2 ? p : NULL);
}

/* Resize a pointer the target holds. */
static void op_realloc(rd_t *in) {
  int i = -1;
  for (int k = 0; k < nrefs; k++) {
    int c = (int)((byte(in) + k) % (unsigned)nrefs);
    if (refs[c].p) {
      i = c;
      break;
    }
  }
  if (i < 0) {
    void *null = NULL;
    CHECK(hmb_ptr_realloc(NULL, 1) == HMB_EINVAL);
    CHECK(hmb_ptr_free(NULL) == 0);
    CHECK(hmb_ptr_buffer(null) == NULL && hmb_ptr_size(null) == 0);
    return;
  }
  ref_t *r = &refs[i];
  root_t *rt = root_of_handle(r->b);
  CHECK(rt && rt->ptr && hmb_ptr_buffer(r->p) == r->b);
  size_t n = pick_size(in);
  uint8_t f = byte(in);
  /* Known finding: a pinned block always moves, keeping the natural
   * alignment of its old data, which may pass the region's granule. */
  if (!known && rt->pinned)
    return;
  int injected = (f & 3) == 3;
  slot_t *s = rt->slot >= 0 ? &slots[rt->slot] : NULL;
  int64_t delta = (int64_t)n - (int64_t)rt->size;
  int expect;
  if (n > HMB_MAX_ALLOC)
    expect = HMB_ETOOBIG;
  else if (hmb_buffer_refcount(r->b) != 1)
    expect = HMB_EBUSY;
  else if (n > MAX_REQ)
    expect = HMB_ETOOBIG;
  else if (delta > 0 && !s)
    expect = HMB_ESTATE; /* its runner is gone */
  else if (delta > 0 && state_expect(s))
    expect = state_expect(s);
  else if (delta > 0)
    expect = borrow_expect(s, delta - runner_stats(s->r).spare);
  else
    expect = 0;
  fail_next = injected && variant == 0;
  /* Out of the list while it runs: a pressure handler must not close the
   * reference being resized (the caller owns it). */
  ref_t mine = *r;
  *r = refs[--nrefs];
  void *p = mine.p;
  int rc = hmb_ptr_realloc(&p, n);
  refs[nrefs++] = mine;
  r = &refs[nrefs - 1];
  if (rc == HMB_ENOMEM && (expect == 0 || expect == 1)) {
    CHECK(injected && variant == 0);
    expect = rc;
  }
  if (expect == 1) {
    CHECK(rc == 0 || (rc == HMB_ELIMIT && variant == 3));
    expect = rc;
  }
  fail_next = 0;
  CHECK(rc == expect);
  if (rc) {
    CHECK(p == r->p);
    return;
  }
  CHECK(hmb_ptr_buffer(p) == r->b && hmb_ptr_size(p) == n);
  CHECK((uintptr_t)p % (rt->align > 16 ? rt->align : 16) == 0);
  size_t keep = n < rt->size ? n : rt->size, k = keep < 16 ? keep : 16;
  for (size_t j = 0; j < k; j++)
    CHECK(((unsigned char *)p)[j] == rt->tag);
  if (p != r->p) {
    rt->basis = n;
    rt->prefix = 65536; /* the natural alignment of the old data, at most */
  } else if (n > rt->basis) {
    rt->basis = n;
  }
  rt->size = n;
  rt->pinned = hmb_buffer_is_pinned(r->b);
  r->p = p;
  tag_fill(rt);
  if (s)
    note_peak(s);
}

static void op_slice(rd_t *in) {
  hmb_buffer_t *src = nrefs ? refs[byte(in) % nrefs].b : NULL;
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
  CHECK(hmb_buffer_data(src)
            ? hmb_buffer_data(s) == (char *)hmb_buffer_data(src) + off
            : hmb_buffer_data(s) == NULL);
  add_ref(s, NULL);
}

/* Install, replace (chaining or not) or remove a close-event handler. */
static void op_handler(rd_t *in) {
  uint8_t k = byte(in), m = byte(in);
  if (!nrefs) {
    hmb_buffer_handler_t h = {on_close, NULL};
    CHECK(hmb_buffer_set_handler(NULL, &h, NULL) == HMB_EINVAL);
    return;
  }
  hmb_buffer_t *b = refs[k % nrefs].b;
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
  size_t keep = (k & 1) ? 0 : (k & 2) ? SIZE_MAX : (size_t)byte(in) * 16384;
  hmb_memory_stats_t a, b;
  CHECK(hmb_pool_memory_stats(pool, &a) == 0);
  CHECK(hmb_pool_trim(pool, keep) == 0);
  CHECK(hmb_pool_memory_stats(pool, &b) == 0);
  if ((uint64_t)a.cached_bytes <= keep)
    CHECK(b.cached_bytes == a.cached_bytes);
  else
    CHECK((uint64_t)b.cached_bytes <= keep);
  CHECK(b.cache_trimmed - a.cache_trimmed ==
        (uint64_t)(a.cached_bytes - b.cached_bytes));
  CHECK(hmb_pool_trim(NULL, 0) == HMB_EINVAL);
}

/* Start: plain, staged (a first piece), or with a bad timeout. */
static void op_start(rd_t *in, slot_t *s) {
  uint8_t k = byte(in);
  int bad_timeout = k % 5 == 0, staged = k % 5 == 1 || k % 5 == 2;
  size_t bytes = staged ? pick_size(in) : 0;
  int64_t timeout = bad_timeout ? -7 : (k & 8) ? 1 : 0;
  hmb_pool_stats_t before = pool_stats();
  int expect;
  int64_t want = 0;
  if (!s->r || bad_timeout) {
    expect = HMB_EINVAL;
  } else if (staged && bytes > MAX_REQ) {
    expect = HMB_ETOOBIG;
  } else if (hmb_runner_is_cancelled(s->r)) {
    expect = HMB_ECANCELED;
  } else if (hmb_runner_state(s->r) != HMB_RUNNER_CREATED) {
    expect = HMB_ESTATE;
  } else {
    want = staged ? (int64_t)bytes : runner_stats(s->r).estimate;
    if (s->need >= 0 && s->need < want)
      want = s->need; /* a need declared before start caps it */
    int64_t avail = before.limit - before.held;
    expect = avail >= want || before.running == 0 ? 0 : HMB_ETIMEDOUT;
  }
  int rc = staged ? hmb_runner_start_partial(s->r, bytes, timeout)
                  : hmb_runner_start(s->r, timeout);
  CHECK(rc == expect);
  hmb_pool_stats_t after = pool_stats();
  if (rc) {
    CHECK(after.held == before.held && after.acquires == before.acquires &&
          after.peak_held == before.peak_held);
    if (rc == HMB_ETIMEDOUT)
      CHECK(hmb_runner_state(s->r) == HMB_RUNNER_CREATED);
    return;
  }
  CHECK(hmb_runner_state(s->r) == HMB_RUNNER_RUNNING);
  int64_t avail = before.limit - before.held;
  int64_t granted = avail >= want ? want : (avail > 0 ? avail : 0);
  CHECK(after.held - before.held == granted);
  CHECK(runner_stats(s->r).spare == granted);
  /* R3: an idle start becomes the progress runner; a start never goes
   * beyond the limit (I4). */
  if (before.running == 0 && avail < want)
    CHECK(after.progress_runner == s->id);
  CHECK(after.overcommitted <= before.overcommitted);
}

/* Grow to `bytes` (staged admission). */
static void op_grow(rd_t *in, slot_t *s) {
  size_t bytes = pick_size(in);
  int64_t timeout = (byte(in) & 1) ? 1 : 0;
  hmb_pool_stats_t before = pool_stats();
  int expect;
  int64_t granted = 0;
  if (!s->r) {
    expect = HMB_EINVAL;
  } else if (bytes > MAX_REQ) {
    expect = HMB_ETOOBIG;
  } else if (state_expect(s)) {
    expect = state_expect(s);
  } else {
    hmb_runner_stats_t rs = runner_stats(s->r);
    int64_t d = (int64_t)bytes - rs.held;
    int64_t avail = before.limit - before.held;
    if (d <= 0) {
      expect = 0;
    } else if (avail >= d) {
      expect = 0;
      granted = d;
    } else if (rs.progress || before.running == 1) {
      expect = 0; /* the progress runner gets what is available (I4) */
      granted = avail > 0 ? avail : 0;
    } else {
      expect = HMB_ETIMEDOUT;
    }
  }
  int rc = hmb_runner_grow(s->r, bytes, timeout);
  CHECK(rc == expect);
  hmb_pool_stats_t after = pool_stats();
  CHECK(after.held - before.held == granted);
  CHECK(after.overcommitted <= before.overcommitted);
}

static void op_set_limit(rd_t *in) {
  size_t nl = LIMIT / 4 + (size_t)byte(in) * (LIMIT / 128);
  if (variant == 3 && !known && nl < cur_limit)
    nl = cur_limit; /* known: a capped pool below what it holds breaks I5 */
  CHECK(hmb_pool_set_limit(pool, nl) == 0);
  if (nl < cur_limit)
    debt_allow += (int64_t)(cur_limit - nl);
  else
    debt_allow = debt_allow > (int64_t)(nl - cur_limit)
                     ? debt_allow - (int64_t)(nl - cur_limit)
                     : 0;
  cur_limit = nl;
  CHECK(hmb_pool_limit(pool) == nl);
  CHECK(hmb_pool_set_limit(pool, 0) == HMB_EINVAL);
  CHECK(hmb_pool_set_limit(NULL, LIMIT) == HMB_EINVAL);
  CHECK(hmb_pool_set_limit(pool, HMB_MAX_ALLOC + 1) == HMB_EINVAL);
}

static void op_pressure(rd_t *in) {
  uint8_t k = byte(in);
  if (npressure && (k & 1)) {
    CHECK(hmb_pool_remove_pressure_handler(pool, pressure_ids[--npressure]) ==
          0);
    CHECK(hmb_pool_remove_pressure_handler(pool, 999999) == HMB_EINVAL);
  } else if (npressure < 2) {
    int id = 0;
    CHECK(hmb_pool_add_pressure_handler(pool, on_pressure, NULL, &id) == 0 &&
          id > 0);
    pressure_ids[npressure++] = id;
    CHECK(hmb_pool_add_pressure_handler(pool, NULL, NULL, &id) == HMB_EINVAL);
  }
}

static void op_inspect(rd_t *in, slot_t *s) {
  char d[200];
  int n = hmb_pool_describe(pool, byte(in) % 4, d, byte(in) % sizeof d);
  CHECK(n > 0);
  CHECK(hmb_pool_describe(pool, -1, d, sizeof d) == HMB_EINVAL);
  hmb_runner_stats_t rs;
  CHECK(hmb_runner_stats(s->r, &rs) == (s->r ? 0 : HMB_EINVAL));
  if (s->r)
    CHECK(hmb_runner_wait_idle(s->r, 0) ==
          (rs.live_buffers ? HMB_ETIMEDOUT : 0));
  CHECK(hmb_runner_start(NULL, 0) == HMB_EINVAL);
  CHECK(hmb_allocate(NULL, 1, 0, NULL) == HMB_EINVAL);
  CHECK(hmb_pool_check(pool, 0x80u, NULL, 0) == HMB_EINVAL);
  CHECK(hmb_pool_check(NULL, 0, NULL, 0) == HMB_EINVAL);
  CHECK(hmb_pool_check(pool, 0, NULL, 0) == 0);
}

static int trace; /* HMB_FUZZ_TRACE=1: each call and the pool after it */

static void one_call(rd_t *in) {
  uint8_t op = byte(in);
  slot_t *s = &slots[(op >> 4) % NSLOT];
  if (trace)
    fprintf(stderr, "fuzz_api: op %u on slot %d\n", op % 16u,
            (int)((op >> 4) % NSLOT));
  switch (op % 16) {
  case 0: { /* create */
    if (s->r)
      break;
    hmb_runner_config_t c;
    hmb_runner_config_init(&c);
    c.estimate = pick_size(in);
    c.priority = (int8_t)byte(in);
    c.borrow_timeout_ns = 1;
    c.name = "fuzz";
    hmb_runner_t *r = (hmb_runner_t *)&r;
    int rc = hmb_runner_create(pool, &c, &r);
    CHECK(rc == (c.estimate > MAX_REQ ? HMB_ETOOBIG : 0));
    if (rc == 0) {
      s->r = r;
      s->id = runner_stats(r).id;
      s->finished = 0;
      s->need = -1;
      s->peak = 0;
    } else {
      CHECK(r == NULL);
    }
    break;
  }
  case 1:
    op_start(in, s);
    break;
  case 2:
    op_alloc(in, s, byte(in) & 1); /* plain or aligned */
    break;
  case 3: /* the pointer API */
    switch (byte(in) % 3) {
    case 0:
      op_alloc(in, s, 2);
      break;
    case 1:
      op_realloc(in);
      break;
    default:
      for (int i = 0; i < nrefs; i++)
        if (refs[i].p) {
          ref_t r = refs[i];
          refs[i] = refs[--nrefs];
          close_ref(r);
          break;
        }
      break;
    }
    break;
  case 4:
    op_alloc(in, s, 3);
    break;
  case 5:
    op_slice(in);
    break;
  case 6: /* retain */
    if (nrefs) {
      ref_t r = refs[byte(in) % nrefs];
      CHECK(hmb_buffer_retain(r.b) == 0);
      add_ref(r.b, r.p);
    } else {
      CHECK(hmb_buffer_retain(NULL) == HMB_EINVAL);
    }
    break;
  case 7:
  case 8: /* close */
    if (nrefs) {
      int i = byte(in) % nrefs;
      ref_t r = refs[i];
      refs[i] = refs[--nrefs];
      close_ref(r);
    } else {
      CHECK(hmb_buffer_close(NULL) == HMB_EINVAL);
    }
    break;
  case 9: { /* try-free */
    size_t max = pick_size(in), ret = 99;
    int64_t spare = s->r ? runner_stats(s->r).spare : 0;
    int rc = hmb_runner_try_free(s->r, max, &ret);
    CHECK(rc == (s->r ? 0 : HMB_EINVAL) && ret <= max);
    if (s->r)
      CHECK((int64_t)ret == ((uint64_t)spare < max ? spare : (int64_t)max));
    break;
  }
  case 10: { /* set-need */
    size_t need = pick_size(in), ret = 99;
    int rc = hmb_runner_set_need(s->r, need, &ret);
    CHECK(rc == (!s->r ? HMB_EINVAL : need > HMB_MAX_ALLOC ? HMB_ETOOBIG : 0));
    if (rc == 0) {
      s->need = (int64_t)need;
      hmb_runner_stats_t rs = runner_stats(s->r);
      CHECK(rs.held <= (rs.live > (int64_t)need ? rs.live : (int64_t)need));
    }
    break;
  }
  case 11: { /* finish (possibly twice) */
    int st = s->r ? hmb_runner_state(s->r) : -1;
    int64_t spare = s->r ? runner_stats(s->r).spare : 0;
    size_t ret = 99;
    int rc = hmb_runner_finish(s->r, byte(in) & 1, &ret);
    int expect = !s->r ? HMB_EINVAL
                 : (st == HMB_RUNNER_RUNNING ||
                    (st == HMB_RUNNER_CANCELLED && !s->finished))
                     ? 0
                     : HMB_ESTATE;
    CHECK(rc == expect);
    if (rc == 0) {
      s->finished = 1;
      CHECK((int64_t)ret == spare);
    } else {
      CHECK(ret == 0);
    }
    break;
  }
  case 12: { /* cancel */
    int st = s->r ? hmb_runner_state(s->r) : -1;
    int rc = hmb_runner_cancel(s->r);
    CHECK(rc == (!s->r ? HMB_EINVAL
                 : (st == HMB_RUNNER_COMPLETED || st == HMB_RUNNER_FAILED ||
                    (st == HMB_RUNNER_CANCELLED && s->finished))
                     ? HMB_ESTATE
                     : 0));
    break;
  }
  case 13: /* destroy (live buffers stay valid) */
    if (s->r)
      for (int i = 0; i < nroots; i++)
        if (roots[i].slot == slot_index(s))
          roots[i].slot = -1;
    hmb_runner_destroy(s->r);
    s->r = NULL;
    break;
  case 14:
    if (byte(in) & 1)
      op_grow(in, s);
    else
      op_set_limit(in);
    break;
  default: /* one byte more picks among the rarer calls */
    switch (byte(in) % 6) {
    case 0: { /* pool destroy: refused while anything is alive */
      int busy = pool_stats().runners > 0;
      int rc = hmb_pool_destroy(pool);
      CHECK(rc == (busy ? HMB_EBUSY : 0));
      if (!busy)
        pool = make_pool();
      break;
    }
    case 1:
      op_handler(in);
      break;
    case 2:
      op_trim(in);
      break;
    case 3:
      op_pressure(in);
      break;
    case 4:
      op_alloc(in, s, 4);
      break;
    default:
      op_inspect(in, s);
      break;
    }
    break;
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static int init;
  if (!init) {
    const char *k = getenv("HMB_FUZZ_AVOID_KNOWN");
    known = !(k && k[0] == '1');
    k = getenv("HMB_FUZZ_TRACE");
    trace = k && k[0] == '1';
    init = 1;
  }
  rd_t in = {data, size};
  variant = size ? data[size - 1] % 4 : 0;
  cap = size > 1 ? (int64_t)data[size - 2] * 8192 : 0;
  nhrecs = 0;
  nroots = 0;
  pressure_calls = 0;
  memset(slots, 0, sizeof slots);
  nrefs = 0;
  fail_next = 0;
  pool = make_pool();
  for (int calls = 0; in.n && calls < 400; calls++) {
    one_call(&in);
    if (trace) {
      char d[1024];
      hmb_pool_describe(pool, 8, d, sizeof d);
      fprintf(stderr, "  %s\n", d);
    }
    check_all();
  }
  /* Unwind: order taken from the input's first byte. */
  int runners_first = size && (data[0] & 1);
  while (npressure)
    CHECK(hmb_pool_remove_pressure_handler(pool, pressure_ids[--npressure]) ==
          0);
  if (runners_first)
    for (int i = 0; i < NSLOT; i++)
      hmb_runner_destroy(slots[i].r), slots[i].r = NULL;
  while (nrefs) {
    ref_t r = refs[--nrefs];
    close_ref(r);
  }
  for (int i = 0; i < NSLOT; i++)
    hmb_runner_destroy(slots[i].r), slots[i].r = NULL;
  nroots = 0;
  check_all();
  hmb_pool_stats_t st = pool_stats();
  CHECK(st.held == 0 && st.live_bytes == 0 && st.running == 0 &&
        st.runners == 0 && be_live == 0 && st.beyond_stopped == 0 &&
        st.progress_runner == 0);
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
