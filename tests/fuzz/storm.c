/*
 * storm.c - hmb_storm: a seeded, multi-threaded storm over the public API,
 * in the spirit of an engine's memory-arbitration fuzzer.
 *
 * Rounds. Each round makes one small pool (limit 256 KiB .. 4 MiB, drawn
 * per round) and alternates between a custom backend that fails a drawn
 * share of its allocations (with it the pool has no warm cache and no
 * pinned region) and the built-in backends (warm cache on, a pinned region
 * given as pinned_base, sometimes an extra cache cap, no huge pages, a
 * larger alignment). Some rounds cap the over-commit, register pressure
 * handlers, change the limit at run time, log at DEBUG.
 *
 * Threads. `--threads` workers and one "grabber" share a table of runner
 * slots. Each step a worker does one thing: create, start (plain or staged:
 * start_partial, then grow), allocate (handles, aligned, pointers with
 * hmb_ptr_alloc / hmb_ptr_realloc / hmb_ptr_free, reservations, the bound
 * allocator; sizes 0 .. 2 MiB, skewed small; some HMB_ALLOC_PINNED), slice,
 * retain, close, hand a reference to another thread (an exchange table),
 * leave one where pressure handlers may close it (the spill list),
 * set-need, try-free, grow, cancel any runner at any moment (the grabber's
 * included), finish, destroy a runner with buffers still live (it is
 * detached), change the limit, trim the cache, read stats, or run a whole
 * task on a runner no other thread sees (a "solo" task: there every failed
 * allocation must leave the runner exactly as it was, I6). The grabber
 * takes all the memory it can (allocates with a 1 ns borrow timeout until
 * it would wait), holds it a while, then lets it all go.
 *
 * Checks.
 *   - After every step (or every `--check-every` steps) the thread that
 *     did it runs hmb_pool_check(pool, 0): the any-instant invariants (I1,
 *     I2: at most one runner beyond the limit, I3, I5, the queues, the
 *     heap), while the others keep going.
 *   - Every returned status is one the headers allow for that call, input
 *     and what the thread knows; buffer sizes, alignment, pinned-ness and
 *     contents (every root is tagged, and the tag checked on close, on
 *     hand-over and across a realloc) are checked.
 *   - Every `--barrier` steps all threads meet; with nothing in flight one
 *     thread checks hmb_pool_check(HMB_CHECK_QUIESCENT) and its own
 *     bookkeeping against the counters, which must then be exact: live
 *     bytes and buffers of the pool, of each runner (and its allocations),
 *     of the memory layer (pageable + pinned, or the custom backend's
 *     blocks), every reference count, the runner count (detached runners
 *     included), the wait hook's begin/end pairs, the pressure rounds;
 *     held <= limit + beyond_stopped + beyond_running (+ what lowered
 *     limits left above them, bounded by the sum of the shrinks not yet
 *     undone by growth), beyond_running <= the progress runner's peak live
 *     bytes and at rest its current live bytes, the cache within limit -
 *     held, and the physical bound per block (hmb/stats.h, with the class
 *     rounding: storm_support.h).
 *   - At the end of a round everything is closed: every counter must be
 *     back at zero, and the pool destroyable.
 * Known findings, now fixed and reproduced by tests/stress/storm_findings.c
 * and physical_findings.c, can still be steered clear of (--avoid LIST,
 * --avoid-known), for instance to look for something else in a build that
 * predates a fix.
 *
 * Waits are all bounded (start, borrow and grow timeouts of 1 ns .. 250 us),
 * so the barriers cannot deadlock; timeouts are counted. A watchdog turns
 * a hang (no step anywhere for `--watchdog` seconds) into a failure.
 *
 * Reproducing. Every random choice of a thread derives from the seed, the
 * round and its number (the interleaving is up to the scheduler). A failure
 * prints the first broken invariant, hmb_pool_describe(), the seed and a
 * command that replays the round.
 */
#define _POSIX_C_SOURCE 200809L
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "hmb.h"
#include "storm_support.h"

#define KIB ((size_t)1024)
#define MIB ((size_t)1024 * 1024)

enum {
  MAX_THREADS = 64,
  MAX_REFS = 48,        /* references one thread holds */
  NXCHG = 64,           /* the exchange table */
  NSPILL = 48,          /* the spill list */
  MAX_GRAB = 48,        /* blocks the grabber holds at most */
  MAX_RUNNERS = 1 << 16 /* runner ids per round (bookkeeping table) */
};

/* ---- options ----------------------------------------------------------- */

static struct {
  int threads;
  uint64_t seed;
  double seconds;
  long ops;         /* steps per worker; 0 with --seconds: unbounded */
  long round_ops;   /* steps per worker per round */
  long barrier;     /* steps between barriers */
  long check_every; /* hmb_pool_check(0) every N steps */
  long start_round;
  int quick, verbose, watchdog_s;
  unsigned avoid; /* AVOID_*: the known findings steered clear of */
  const char *argv0;
  int ops_given, seconds_given;
} O;

/* The library's known findings (tests/stress/storm_findings.c), which
 * --avoid (or --avoid-known: all of them) steers clear of. */
enum {
  AVOID_PINNED = 1u << 0,   /* pinned blocks aligned beyond the granule */
  AVOID_UNBORROW = 1u << 1, /* faults undone after their runner changed */
  AVOID_REALLOC = 1u << 2,  /* realloc after another thread's close */
  AVOID_GIVEBACK = 1u << 3, /* a borrow's rest given back after a stop */
  AVOID_ALL = (1u << 4) - 1
};
enum { NAVOID = 4 };
static const char *const avoid_names[NAVOID] = {
    "pinned-align", "unborrow", "shared-realloc", "realloc-destroy"};

/* ---- bookkeeping --------------------------------------------------------- */

/* One runner, by id: what the threads know of its buffers. */
typedef struct rrec {
  _Atomic int64_t live; /* >= its live bytes at every instant; == at rest */
  _Atomic int64_t peak; /* highest `live` */
  _Atomic int64_t bufs; /* live roots (== at rest) */
  _Atomic uint64_t allocs;
  _Atomic int used, destroyed;
  int slot; /* its slot in the table, -1: a solo task's */
} rrec_t;

/* One root buffer: freed by its close handler at the last close. */
typedef struct rootrec {
  rrec_t *owner;
  size_t size;   /* current size (a realloc changes it; sole owner) */
  size_t basis;  /* the size its block was made for (in-place reallocs) */
  size_t prefix; /* its block's prefix (worst case after a moving realloc) */
  size_t align;  /* the data alignment asked for */
  unsigned char tag, reservation, pinned, moved;
  _Atomic int shared; /* a reference of it went to another thread */
} rootrec_t;

enum { REF_HANDLE = 0, REF_PTR = 1 };

typedef struct ref {
  hmb_buffer_t *b; /* the handle (REF_PTR: hmb_ptr_buffer(p)) */
  void *p;         /* REF_PTR: the pointer */
  rootrec_t *root; /* its root's record */
  size_t off;      /* offset of its data in the root's */
  unsigned char kind, used;
} ref_t;

typedef struct slot {
  pthread_mutex_t life; /* lifecycle calls: create/start/finish/destroy */
  pthread_rwlock_t rw;  /* read: any call on the handle; write: r changes */
  hmb_runner_t *r;
  rrec_t *rec;
  uint64_t id;
  int started, finished; /* under life */
} slot_t;

enum { OPS_NAMES = 32 };
static const char *const op_names[OPS_NAMES] = {
    "idle",    "create",  "start",    "grow",  "finish",  "destroy",
    "cancel",  "tryfree", "setneed",  "alloc", "aligned", "ptralloc",
    "realloc", "reserve", "bound",    "slice", "retain",  "close",
    "handoff", "spill",   "setlimit", "trim",  "stats",   "pressure",
    "grab",    "barrier", "teardown", "check", "solo",    "",
    "",        ""};
enum {
  OP_IDLE,
  OP_CREATE,
  OP_START,
  OP_GROW,
  OP_FINISH,
  OP_DESTROY,
  OP_CANCEL,
  OP_TRYFREE,
  OP_SETNEED,
  OP_ALLOC,
  OP_ALIGNED,
  OP_PTR,
  OP_REALLOC,
  OP_RESERVE,
  OP_BOUND,
  OP_SLICE,
  OP_RETAIN,
  OP_CLOSE,
  OP_HANDOFF,
  OP_SPILL,
  OP_SETLIMIT,
  OP_TRIM,
  OP_STATS,
  OP_PRESSURE,
  OP_GRAB,
  OP_BARRIER,
  OP_TEARDOWN,
  OP_CHECK,
  OP_SOLO
};

typedef struct thr {
  int id;
  uint64_t rng;
  pthread_t th;
  ref_t refs[MAX_REFS];
  int nrefs;
  uint64_t steps;
  _Atomic int op;      /* what it is doing (for reports) */
  _Atomic uint64_t at; /* its step */
} thr_t;

typedef struct round_cfg {
  uint64_t round;
  size_t limit, max_request, align, pinned_bytes, cache_bytes, cap;
  int custom, capped, pressure, limit_changes, log_level;
  unsigned fail_per_1024, flags;
} round_cfg_t;

/* Counters reported in the summary (all rounds). */
typedef struct totals {
  _Atomic uint64_t steps, checks, barriers, rounds, start_timeouts,
      borrow_timeouts, grow_timeouts, faults, enomem, elimit, etoobig, cancels,
      detached, limit_changes, pressure_calls, pressure_closed, grabs,
      grab_bytes, handoffs, reallocs, realloc_moves, waits, waits_granted,
      quiescent_destroys;
  _Atomic int64_t max_phys_milli; /* (physical + cached) / limit x 1000 */
  _Atomic int64_t max_over_milli; /* held / limit x 1000 */
} totals_t;

static totals_t T;

static struct {
  round_cfg_t rc;
  hmb_pool_t *pool;
  pthread_mutex_t pool_mu; /* the watchdog reads `pool` under it */
  int nthr;                /* workers + the grabber */
  thr_t thr[MAX_THREADS + 1];
  slot_t *slots;
  int nslots; /* the last one is the grabber's */
  rrec_t *recs;
  _Atomic int ncreated;
  pthread_barrier_t bar;
  pthread_mutex_t xmu;
  ref_t xchg[NXCHG];
  pthread_mutex_t smu;
  ref_t spill[NSPILL];
  pthread_mutex_t lmu; /* limit changes, and what they allow */
  size_t cur_limit, debt_allow;
  _Atomic int stop;
  uint64_t deadline_ns;
  /* the custom backend */
  _Atomic int64_t be_blocks, be_bytes;
  _Atomic uint64_t be_calls;
  unsigned char *pinned_region;
  /* hooks */
  _Atomic uint64_t wait_begin, wait_end, press_a, press_b, press_rng;
  pthread_mutex_t pmu;
  int press_b_id;
  /* log */
  pthread_mutex_t logmu;
  char first_error[512];
  _Atomic int errors, expect_errors;
  /* roots */
  _Atomic uint64_t roots_made, roots_closed;
  _Atomic uint64_t progress; /* the watchdog's heartbeat */
} G;

/* ---- failure ------------------------------------------------------------- */

static _Thread_local thr_t *tl_thr;
static pthread_mutex_t fail_mu = PTHREAD_MUTEX_INITIALIZER;

static void print_replay(FILE *f) {
  fprintf(f,
          "  replay: %s --seed %" PRIu64 " --threads %d --start-round %" PRIu64,
          O.argv0, O.seed, O.threads, G.rc.round);
  fprintf(f, " --round-ops %ld --barrier %ld --check-every %ld", O.round_ops,
          O.barrier, O.check_every);
  if (O.seconds_given)
    fprintf(f, " --seconds %g", O.seconds);
  else
    fprintf(f, " --ops %ld", O.ops);
  if (O.avoid == AVOID_ALL) {
    fprintf(f, " --avoid-known");
  } else if (!O.avoid) {
    fprintf(f, " --avoid none");
  } else {
    fprintf(f, " --avoid ");
    for (int i = 0, n = 0; i < NAVOID; i++)
      if (O.avoid & (1u << i))
        fprintf(f, "%s%s", n++ ? "," : "", avoid_names[i]);
  }
  fprintf(f, "\n");
}

static void describe_to(FILE *f, hmb_pool_t *pool) {
  if (!pool)
    return;
  char buf[4096];
  char why[512];
  int rc = hmb_pool_check(pool, 0, why, sizeof why);
  fprintf(f, "  hmb_pool_check(0): %s%s\n", rc ? "BROKEN: " : "sound",
          rc ? why : "");
  if (hmb_pool_describe(pool, 8, buf, sizeof buf) > 0)
    fprintf(f, "  hmb_pool_describe():\n%s\n", buf);
}

static void storm_fail(int line, const char *fmt, ...)
    __attribute__((format(printf, 2, 3), noreturn));
static void storm_fail(int line, const char *fmt, ...) {
  pthread_mutex_lock(&fail_mu); /* the first failure reports; never unlocked */
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "\nhmb_storm: FAILED (storm.c:%d): ", line);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fprintf(stderr, "\n  seed %" PRIu64 ", round %" PRIu64, O.seed, G.rc.round);
  if (tl_thr)
    fprintf(stderr, ", thread %d, step %" PRIu64 ", op %s", tl_thr->id,
            tl_thr->steps, op_names[atomic_load(&tl_thr->op)]);
  fprintf(stderr,
          "\n  round: limit %zu, %s backend (faults %u/1024), cap %s %zu, "
          "pressure %d, limit changes %d, max_request %zu, align %zu, "
          "pinned %zu, cache_bytes %zu\n",
          G.rc.limit, G.rc.custom ? "custom" : "built-in", G.rc.fail_per_1024,
          G.rc.capped ? "on" : "off", G.rc.cap, G.rc.pressure,
          G.rc.limit_changes, G.rc.max_request, G.rc.align, G.rc.pinned_bytes,
          G.rc.cache_bytes);
  describe_to(stderr, G.pool);
  print_replay(stderr);
  fflush(stderr);
  _exit(1);
}

#define FAIL(...) storm_fail(__LINE__, __VA_ARGS__)
/* CHECK(cond, "") or CHECK(cond, "format", args...): the condition's text and
 * the details are both reported. */
#define CHECK(c, ...)                                                          \
  do {                                                                         \
    if (!(c))                                                                  \
      storm_fail_c(__LINE__, #c, " " __VA_ARGS__);                             \
  } while (0)

static void storm_fail_c(int line, const char *cond, const char *fmt, ...)
    __attribute__((format(printf, 3, 4), noreturn));
static void storm_fail_c(int line, const char *cond, const char *fmt, ...) {
  char detail[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(detail, sizeof detail, fmt, ap);
  va_end(ap);
  storm_fail(line, "%s:%s", cond, detail);
}

static uint64_t rnd(thr_t *t, uint64_t n) {
  return sts_below(&t->rng, n);
}

static void count_max(_Atomic int64_t *m, int64_t v) {
  int64_t cur = atomic_load_explicit(m, memory_order_relaxed);
  while (v > cur && !atomic_compare_exchange_weak_explicit(
                        m, &cur, v, memory_order_relaxed, memory_order_relaxed))
    ;
}

static void bump(_Atomic uint64_t *c) {
  atomic_fetch_add_explicit(c, 1, memory_order_relaxed);
}

/* ---- the custom backend: fails a drawn share of allocations ------------- */

/* Set while a thread allocates for a runner only it uses (op_solo). */
static _Thread_local int tl_solo;

static int be_alloc(void *ctx, size_t size, size_t align, int prefer_pinned,
                    void **ptr, int *pinned) {
  (void)ctx;
  (void)prefer_pinned;
  uint64_t n = atomic_fetch_add_explicit(&G.be_calls, 1, memory_order_relaxed);
  if (G.rc.fail_per_1024 && (!(O.avoid & AVOID_UNBORROW) || tl_solo) &&
      sts_mix(O.seed ^ (G.rc.round << 40) ^ n) % 1024 < G.rc.fail_per_1024) {
    bump(&T.faults);
    return HMB_ENOMEM;
  }
  if (align < 16 || (align & (align - 1)))
    FAIL("backend asked for alignment %zu", align);
  void *p = NULL;
  if (posix_memalign(&p, align, size ? size : 1) != 0)
    return HMB_ENOMEM;
  atomic_fetch_add_explicit(&G.be_blocks, 1, memory_order_relaxed);
  atomic_fetch_add_explicit(&G.be_bytes, (int64_t)size, memory_order_relaxed);
  *ptr = p;
  *pinned = 0;
  return 0;
}

static void be_free(void *ctx, void *ptr, size_t size, int pinned) {
  (void)ctx;
  if (pinned)
    FAIL("backend freed a block as pinned that it never pinned");
  atomic_fetch_sub_explicit(&G.be_blocks, 1, memory_order_relaxed);
  atomic_fetch_sub_explicit(&G.be_bytes, (int64_t)size, memory_order_relaxed);
  free(ptr);
}

static const hmb_backend_t be_vtable = {NULL, be_alloc, be_free};

/* ---- hooks: log, wait, pressure, close --------------------------------- */

static void on_log(void *user, int level, const char *msg) {
  (void)user;
  if (!msg || !msg[0] || strchr(msg, '\n') || level < HMB_LOG_ERROR ||
      level > HMB_LOG_DEBUG)
    FAIL("log message of level %d is not one line: \"%s\"", level,
         msg ? msg : "(null)");
  if (level == HMB_LOG_ERROR && !atomic_load(&G.expect_errors)) {
    pthread_mutex_lock(&G.logmu);
    if (atomic_fetch_add(&G.errors, 1) == 0)
      snprintf(G.first_error, sizeof G.first_error, "%s", msg);
    pthread_mutex_unlock(&G.logmu);
  }
}

static _Thread_local int tl_waiting;

static void on_wait(void *user, const hmb_wait_event_t *ev) {
  (void)user;
  if (ev->request < HMB_REQUEST_START || ev->request > HMB_REQUEST_GROW ||
      ev->runner_id == 0 || !ev->runner_name)
    FAIL("wait event with request %d, runner %" PRIu64, ev->request,
         ev->runner_id);
  if (ev->phase == HMB_WAIT_BEGIN) {
    if (tl_waiting || ev->result != 0 || ev->waited_ns != 0)
      FAIL("wait BEGIN nested (%d) or with result %d / waited %" PRId64,
           tl_waiting, ev->result, ev->waited_ns);
    tl_waiting = 1;
    bump(&G.wait_begin);
  } else if (ev->phase == HMB_WAIT_END) {
    int r = ev->result;
    if (!tl_waiting || ev->waited_ns < 0 ||
        !(r == 0 || r == HMB_ETIMEDOUT || r == HMB_ECANCELED ||
          r == HMB_ELIMIT || r == HMB_ETOOBIG || r == HMB_ENOMEM))
      FAIL("wait END without BEGIN (%d), result %s, waited %" PRId64,
           tl_waiting, hmb_errname(r), ev->waited_ns);
    tl_waiting = 0;
    bump(&G.wait_end);
    bump(&T.waits);
    if (r == 0)
      bump(&T.waits_granted);
  } else {
    FAIL("wait event phase %d", ev->phase);
  }
}

/* Close up to `n` references of the spill list (outside its lock). */
static int spill_close(int n) {
  ref_t got[4];
  int k = 0;
  if (n > 4)
    n = 4;
  pthread_mutex_lock(&G.smu);
  uint64_t at = atomic_fetch_add(&G.press_rng, 1);
  for (int i = 0; i < NSPILL && k < n; i++) {
    ref_t *s = &G.spill[(at + (uint64_t)i) % NSPILL];
    if (s->used) {
      got[k++] = *s;
      s->used = 0;
    }
  }
  pthread_mutex_unlock(&G.smu);
  for (int i = 0; i < k; i++) {
    int rc = got[i].kind == REF_PTR ? hmb_ptr_free(got[i].p)
                                    : hmb_buffer_close(got[i].b);
    if (rc)
      FAIL("pressure handler: close returned %s", hmb_errname(rc));
  }
  return k;
}

static void check_pressure_event(hmb_pool_t *pool, const hmb_pressure_t *ev) {
  if (pool != G.pool ||
      (ev->kind != HMB_PRESSURE_WAIT && ev->kind != HMB_PRESSURE_OVERCOMMIT) ||
      ev->request < HMB_REQUEST_START || ev->request > HMB_REQUEST_GROW ||
      ev->runner_id == 0 || !ev->runner_name || ev->held < 0 ||
      ev->limit <= 0 || ev->waited_ns < 0)
    FAIL("pressure event: kind %d request %d runner %" PRIu64 " held %" PRId64
         " limit %" PRId64,
         ev->kind, ev->request, ev->runner_id, ev->held, ev->limit);
  if (ev->kind == HMB_PRESSURE_OVERCOMMIT && ev->request != HMB_REQUEST_BORROW)
    FAIL("over-commit pressure for a %d request (only borrows go beyond)",
         ev->request);
}

static void on_pressure_a(void *user, hmb_pool_t *pool,
                          const hmb_pressure_t *ev) {
  (void)user;
  check_pressure_event(pool, ev);
  bump(&G.press_a);
  int n = spill_close(1 + (int)(atomic_load(&G.press_rng) % 3));
  atomic_fetch_add(&T.pressure_closed, (uint64_t)n);
}

static void on_pressure_b(void *user, hmb_pool_t *pool,
                          const hmb_pressure_t *ev) {
  (void)user;
  check_pressure_event(pool, ev);
  bump(&G.press_b);
  atomic_fetch_add(&T.pressure_closed, (uint64_t)spill_close(1));
}

/* The close handler of every root: its last close ends its bookkeeping. */
static void on_root_close(void *user, hmb_buffer_t *buf, long refs) {
  rootrec_t *rr = user;
  (void)buf;
  if (refs < 0)
    FAIL("close handler with refs %ld", refs);
  if (refs > 0)
    return;
  atomic_fetch_sub(&rr->owner->live, (int64_t)rr->size);
  atomic_fetch_sub(&rr->owner->bufs, 1);
  bump(&G.roots_closed);
  free(rr);
}

/* ---- small helpers ------------------------------------------------------- */

static size_t pick_size(thr_t *t) {
  uint64_t k = rnd(t, 100);
  if (k < 5)
    return 0;
  if (k < 55)
    return 1 + rnd(t, 512);
  if (k < 80)
    return 513 + rnd(t, 16 * KIB);
  if (k < 94)
    return 16 * KIB + rnd(t, 240 * KIB);
  return 256 * KIB + rnd(t, 2 * MIB - 256 * KIB + 1);
}

static size_t pick_budget(thr_t *t) {
  uint64_t k = rnd(t, 10);
  size_t lim = G.rc.limit;
  if (k == 0)
    return 0;
  if (k < 5)
    return 1 + rnd(t, 64 * KIB);
  if (k < 9)
    return rnd(t, lim + 1);
  return lim + rnd(t, lim + 1);
}

static int64_t pick_timeout(thr_t *t) {
  static const int64_t to[] = {0, 1, 10000, 50000, 250000};
  return to[rnd(t, 5)];
}

static int64_t pick_borrow_timeout(thr_t *t) {
  static const int64_t to[] = {1, 1, 10000, 50000, 250000};
  return to[rnd(t, 5)];
}

static void tag_fill(void *data, size_t size, unsigned char tag) {
  if (!data || !size)
    return;
  size_t n = size < 64 ? size : 64;
  memset(data, tag, n);
  if (size > 64)
    memset((char *)data + size - n, tag, n);
}

/* The tag is in the first and last 64 bytes of [0, size): -1 if so, else
 * the offset of the first byte that differs. */
static long tag_bad(const void *data, size_t size, unsigned char tag) {
  if (!data || !size)
    return -1;
  const unsigned char *d = data;
  size_t n = size < 64 ? size : 64;
  for (size_t i = 0; i < n; i++) {
    if (d[i] != tag)
      return (long)i;
    if (d[size - 1 - i] != tag)
      return (long)(size - 1 - i);
  }
  return -1;
}

static hmb_buffer_t *root_of(hmb_buffer_t *b) {
  while (hmb_buffer_parent(b))
    b = hmb_buffer_parent(b);
  return b;
}

/* A reference's view is where its record says, and a root's tag holds. */
static void verify_ref(const ref_t *r) {
  if (r->kind == REF_PTR) {
    hmb_buffer_t *h = hmb_ptr_buffer(r->p);
    if (h != r->b || hmb_ptr_size(r->p) != r->root->size)
      FAIL("hmb_ptr_buffer(%p) = %p (expected %p), size %zu (expected %zu)",
           r->p, (void *)h, (void *)r->b, hmb_ptr_size(r->p), r->root->size);
  }
  hmb_buffer_t *root = root_of(r->b);
  void *rd = hmb_buffer_data(root);
  void *d = hmb_buffer_data(r->b);
  if (r->root->reservation ? (rd || d) : (!rd || d != (char *)rd + r->off))
    FAIL("view data %p != root data %p + %zu (reservation %d)", d, rd, r->off,
         r->root->reservation);
  long bad = root == r->b ? tag_bad(rd, r->root->size, r->root->tag) : -1;
  if (bad >= 0)
    FAIL("contents of a live buffer changed: byte %ld of %zu is %02x, not "
         "its tag %02x (data %p, %s, pinned %d, realloc-moved %d, refs %ld, "
         "owner runner state %s): another allocation overlaps it",
         bad, r->root->size, ((unsigned char *)rd)[bad], r->root->tag, rd,
         r->kind == REF_PTR ? "pointer" : "handle", r->root->pinned,
         r->root->moved, hmb_buffer_refcount(root),
         atomic_load(&r->root->owner->destroyed) ? "destroyed" : "alive");
}

static void ref_close(ref_t *r) {
  verify_ref(r);
  int rc = r->kind == REF_PTR ? hmb_ptr_free(r->p) : hmb_buffer_close(r->b);
  if (rc)
    FAIL("close returned %s", hmb_errname(rc));
}

static void drop_ref(thr_t *t, int i) {
  ref_t r = t->refs[i];
  t->refs[i] = t->refs[--t->nrefs];
  ref_close(&r);
}

static void add_ref(thr_t *t, const ref_t *r) {
  if (t->nrefs == MAX_REFS)
    drop_ref(t, (int)rnd(t, MAX_REFS));
  t->refs[t->nrefs] = *r;
  t->refs[t->nrefs].used = 1;
  t->nrefs++;
}

/* The slot table: workers' slots and, last, the grabber's. */
static slot_t *pick_slot(thr_t *t, int with_private) {
  int n = with_private ? G.nslots : G.nslots - 1;
  return &G.slots[rnd(t, (uint64_t)n)];
}

/* ---- runner operations --------------------------------------------------- */

static void op_create(thr_t *t) {
  slot_t *s = pick_slot(t, 0);
  if (pthread_mutex_trylock(&s->life))
    return;
  if (pthread_rwlock_trywrlock(&s->rw)) {
    pthread_mutex_unlock(&s->life);
    return;
  }
  if (!s->r && atomic_fetch_add(&G.ncreated, 1) < MAX_RUNNERS - 4) {
    static const char *const names[] = {"scan", "footer", "split\nname", "",
                                        NULL};
    hmb_runner_config_t c;
    hmb_runner_config_init(&c);
    c.estimate = pick_budget(t);
    c.priority = (int)rnd(t, 5) - 2;
    c.borrow_timeout_ns = pick_borrow_timeout(t);
    c.name = names[rnd(t, 5)];
    hmb_runner_t *r = (hmb_runner_t *)&c;
    int rc = hmb_runner_create(G.pool, &c, &r);
    int expect = c.estimate > G.rc.max_request ? HMB_ETOOBIG : 0;
    if (rc != expect)
      FAIL("create (estimate %zu, max_request %zu) returned %s", c.estimate,
           G.rc.max_request, hmb_errname(rc));
    if (rc == 0) {
      hmb_runner_stats_t st;
      CHECK(hmb_runner_stats(r, &st) == 0, "");
      CHECK(st.state == HMB_RUNNER_CREATED && st.held == 0 &&
                st.estimate == (int64_t)c.estimate && st.id > 0 &&
                st.id < MAX_RUNNERS && st.real_need == -1,
            "fresh runner: state %d held %" PRId64 " id %" PRIu64, st.state,
            st.held, st.id);
      rrec_t *rec = &G.recs[st.id];
      CHECK(!atomic_exchange(&rec->used, 1), "runner id %" PRIu64 " reused",
            st.id);
      rec->slot = (int)(s - G.slots);
      s->r = r;
      s->rec = rec;
      s->id = st.id;
      s->started = s->finished = 0;
    } else {
      CHECK(r == NULL, "a failed create left *out set");
    }
  }
  pthread_rwlock_unlock(&s->rw);
  pthread_mutex_unlock(&s->life);
}

static void op_start(thr_t *t) {
  slot_t *s = pick_slot(t, 0);
  if (pthread_mutex_trylock(&s->life))
    return;
  pthread_rwlock_rdlock(&s->rw);
  hmb_runner_t *r = s->r;
  if (r && !s->started) {
    int staged = rnd(t, 3) == 0;
    size_t bytes = staged ? rnd(t, 64 * KIB) : 0;
    if (staged && rnd(t, 20) == 0)
      bytes = G.rc.max_request + 1;
    int64_t to = pick_timeout(t);
    int rc = staged ? hmb_runner_start_partial(r, bytes, to)
                    : hmb_runner_start(r, to);
    int st = hmb_runner_state(r);
    if (staged && bytes > G.rc.max_request) {
      CHECK(rc == HMB_ETOOBIG, "start_partial above max_request: %s",
            hmb_errname(rc));
    } else if (rc == 0) {
      s->started = 1;
      CHECK(st == HMB_RUNNER_RUNNING || st == HMB_RUNNER_CANCELLED,
            "started runner in state %s", hmb_runner_state_name(st));
    } else if (rc == HMB_ECANCELED) {
      s->started = 1; /* CANCELLED: finish is allowed */
      CHECK(st == HMB_RUNNER_CANCELLED, "cancelled start left state %s",
            hmb_runner_state_name(st));
    } else if (rc == HMB_ETIMEDOUT) {
      bump(&T.start_timeouts);
      CHECK(st == HMB_RUNNER_CREATED || st == HMB_RUNNER_CANCELLED,
            "timed-out start left state %s", hmb_runner_state_name(st));
    } else {
      FAIL("start returned %s", hmb_errname(rc));
    }
  }
  pthread_rwlock_unlock(&s->rw);
  pthread_mutex_unlock(&s->life);
}

static void op_finish(thr_t *t) {
  slot_t *s = pick_slot(t, 0);
  if (pthread_mutex_trylock(&s->life))
    return;
  pthread_rwlock_rdlock(&s->rw);
  hmb_runner_t *r = s->r;
  if (r) {
    size_t ret = 7;
    int rc = hmb_runner_finish(r, rnd(t, 4) == 0, &ret);
    if (s->finished)
      CHECK(rc == HMB_ESTATE, "second finish returned %s", hmb_errname(rc));
    else
      CHECK(rc == 0 || rc == HMB_ESTATE, "finish returned %s", hmb_errname(rc));
    if (rc == 0) {
      s->finished = 1;
      int st = hmb_runner_state(r);
      CHECK(st == HMB_RUNNER_COMPLETED || st == HMB_RUNNER_FAILED ||
                st == HMB_RUNNER_CANCELLED,
            "finished runner in state %s", hmb_runner_state_name(st));
    } else {
      CHECK(ret == 0, "a refused finish returned %zu bytes", ret);
    }
  }
  pthread_rwlock_unlock(&s->rw);
  pthread_mutex_unlock(&s->life);
}

static void destroy_slot(slot_t *s) {
  if (atomic_load(&s->rec->bufs) > 0)
    bump(&T.detached);
  atomic_store(&s->rec->destroyed, 1);
  hmb_runner_destroy(s->r);
  s->r = NULL;
  s->rec = NULL;
}

static void op_destroy(thr_t *t) {
  slot_t *s = pick_slot(t, 0);
  if (pthread_mutex_trylock(&s->life))
    return;
  if (pthread_rwlock_trywrlock(&s->rw) == 0) {
    if (s->r)
      destroy_slot(s);
    pthread_rwlock_unlock(&s->rw);
  }
  pthread_mutex_unlock(&s->life);
}

/* Calls that any thread may make at any time on a runner that exists. */
static void op_runner_call(thr_t *t, int op) {
  slot_t *s = pick_slot(t, op == OP_CANCEL);
  pthread_rwlock_rdlock(&s->rw);
  hmb_runner_t *r = s->r;
  if (!r) {
    pthread_rwlock_unlock(&s->rw);
    return;
  }
  size_t lim = G.rc.limit;
  switch (op) {
  case OP_CANCEL: {
    int rc = hmb_runner_cancel(r);
    CHECK(rc == 0 || rc == HMB_ESTATE, "cancel returned %s", hmb_errname(rc));
    if (rc == 0) {
      bump(&T.cancels);
      CHECK(hmb_runner_is_cancelled(r), "cancel did not stick");
    }
    break;
  }
  case OP_TRYFREE: {
    size_t max = rnd(t, 3) == 0 ? SIZE_MAX : rnd(t, lim + 1), ret = 7;
    int rc = hmb_runner_try_free(r, max, &ret);
    CHECK(rc == 0 && ret <= max, "try_free(%zu) returned %s, %zu", max,
          hmb_errname(rc), ret);
    break;
  }
  case OP_SETNEED: {
    size_t need = rnd(t, lim + 1), ret = 7;
    int rc = hmb_runner_set_need(r, need, &ret);
    CHECK(rc == 0, "set_need returned %s", hmb_errname(rc));
    hmb_runner_stats_t st;
    CHECK(hmb_runner_stats(r, &st) == 0, "");
    CHECK(st.real_need >= 0, "declared need reads %" PRId64, st.real_need);
    break;
  }
  case OP_GROW: {
    size_t bytes = rnd(t, lim + 1);
    if (rnd(t, 20) == 0)
      bytes = G.rc.max_request + 1;
    int rc = hmb_runner_grow(r, bytes, pick_timeout(t));
    if (bytes > G.rc.max_request)
      CHECK(rc == HMB_ETOOBIG, "grow above max_request: %s", hmb_errname(rc));
    else if (rc == HMB_ETIMEDOUT)
      bump(&T.grow_timeouts);
    else
      CHECK(rc == 0 || rc == HMB_ECANCELED || rc == HMB_ESTATE,
            "grow returned %s", hmb_errname(rc));
    break;
  }
  default: {
    hmb_runner_stats_t st;
    CHECK(hmb_runner_stats(r, &st) == 0, "");
    CHECK(st.id == s->id && st.held >= 0 && st.beyond >= 0 &&
              st.peak_held >= 0 && st.live_buffers >= 0,
          "runner stats: id %" PRIu64 " held %" PRId64 " beyond %" PRId64,
          st.id, st.held, st.beyond);
    break;
  }
  }
  pthread_rwlock_unlock(&s->rw);
}

/* ---- allocation ---------------------------------------------------------- */

static int alloc_rc_allowed(int rc, size_t size, int reserve, int ptr) {
  switch (rc) {
  case 0:
  case HMB_ESTATE:
  case HMB_ECANCELED:
  case HMB_ETIMEDOUT:
    return 1;
  case HMB_ELIMIT:
    return G.rc.capped;
  case HMB_ETOOBIG:
    return size > G.rc.max_request;
  case HMB_ENOMEM:
    return !reserve && G.rc.custom && G.rc.fail_per_1024 > 0;
  case HMB_EINVAL:
    return reserve && size == 0;
  default:
    (void)ptr;
    return 0;
  }
}

static void count_alloc_failure(int rc) {
  if (rc == HMB_ETIMEDOUT)
    bump(&T.borrow_timeouts);
  else if (rc == HMB_ENOMEM)
    bump(&T.enomem);
  else if (rc == HMB_ELIMIT)
    bump(&T.elimit);
  else if (rc == HMB_ETOOBIG)
    bump(&T.etoobig);
}

static void live_add(rrec_t *rec, int64_t d) {
  int64_t v = atomic_fetch_add(&rec->live, d) + d;
  if (d > 0)
    count_max(&rec->peak, v);
}

/* Allocate through runner `r` (slot read-locked): op says which way. Adds
 * the reference to `t` and returns 0, or returns the status. */
static int alloc_into(thr_t *t, hmb_runner_t *r, rrec_t *rec, int op,
                      size_t size, unsigned flags, ref_t *out) {
  size_t align = 0;        /* asked */
  size_t eff = G.rc.align; /* what the data must be aligned to */
  if (op == OP_ALIGNED) {
    static const size_t al[] = {0, 16, 32, 128, 512, 4096, 65536};
    align = al[rnd(t, 7)];
    eff = align ? align : G.rc.align;
  } else if (op == OP_PTR) {
    static const size_t al[] = {0, 0, 16, 64, 256, 4096};
    align = al[rnd(t, 6)];
    eff = align ? align : 16;
  }
  /* Known finding: a pinned block aligned beyond the region's granule
   * (max(256, pool alignment)) overruns into the next block. */
  if ((O.avoid & AVOID_PINNED) && eff > (G.rc.align > 256 ? G.rc.align : 256))
    flags &= ~(unsigned)HMB_ALLOC_PINNED;
  rootrec_t *rr = malloc(sizeof *rr);
  CHECK(rr != NULL, "");
  live_add(rec, (int64_t)size);
  hmb_buffer_t *b = (hmb_buffer_t *)rr;
  void *p = rr;
  int rc;
  hmb_runner_t *prev = NULL;
  switch (op) {
  case OP_ALIGNED:
    rc = hmb_allocate_aligned(hmb_runner_allocator(r), size, align, flags, &b);
    break;
  case OP_PTR:
    rc = hmb_ptr_alloc(hmb_runner_allocator(r), size, align, flags, &p);
    if (rc == 0) {
      b = hmb_ptr_buffer(p);
      CHECK(b != NULL, "hmb_ptr_buffer() of a fresh pointer is NULL");
    } else {
      CHECK(p == NULL, "a failed hmb_ptr_alloc left *out set");
      b = NULL;
    }
    break;
  case OP_RESERVE:
    rc = hmb_runner_reserve(r, size, &b);
    break;
  case OP_BOUND:
    prev = hmb_runner_bind(r);
    CHECK(prev == NULL && hmb_runner_bound() == r, "binding did not take");
    rc = hmb_allocate(hmb_bound_allocator(HMB_UNBOUND_FAIL), size, flags, &b);
    CHECK(hmb_runner_bind(NULL) == r && hmb_runner_bound() == NULL,
          "unbinding did not take");
    break;
  default:
    rc = hmb_runner_alloc(r, size, flags, &b);
    break;
  }
  int reserve = op == OP_RESERVE;
  if (reserve && size == 0)
    CHECK(rc == HMB_EINVAL, "reserve(0) returned %s", hmb_errname(rc));
  if (rc) {
    live_add(rec, -(int64_t)size);
    free(rr);
    if (!alloc_rc_allowed(rc, size, reserve, op == OP_PTR))
      FAIL("%s of %zu bytes (flags %u, align %zu) returned %s", op_names[op],
           size, flags, align, hmb_errname(rc));
    if (op != OP_PTR)
      CHECK(b == NULL, "a failed allocation left *out set");
    count_alloc_failure(rc);
    return rc;
  }
  atomic_fetch_add(&rec->allocs, 1);
  atomic_fetch_add(&rec->bufs, 1);
  bump(&G.roots_made);
  void *data = hmb_buffer_data(b);
  CHECK(hmb_buffer_size(b) == size && hmb_buffer_refcount(b) == 1 &&
            !hmb_buffer_parent(b),
        "fresh buffer: size %zu (asked %zu), refs %ld", hmb_buffer_size(b),
        size, hmb_buffer_refcount(b));
  int pinned = hmb_buffer_is_pinned(b);
  if (reserve) {
    CHECK(data == NULL && !pinned, "a reservation has data %p", data);
  } else {
    CHECK(data != NULL, "an allocation of %zu bytes has no data", size);
    size_t need = pinned ? (eff > 256 ? eff : 256) : eff;
    CHECK(((uintptr_t)data & (need - 1)) == 0,
          "data %p not aligned to %zu (%s, pinned %d)", data, need,
          op_names[op], pinned);
    CHECK(!pinned ||
              ((flags & HMB_ALLOC_PINNED) && !G.rc.custom && G.rc.pinned_bytes),
          "a buffer is pinned that cannot be");
    if (op == OP_PTR)
      CHECK(p == data && hmb_ptr_size(p) == size, "pointer %p vs data %p", p,
            data);
  }
  rr->owner = rec;
  rr->size = rr->basis = size;
  rr->align = eff;
  rr->prefix = sts_prefix(eff);
  rr->tag = (unsigned char)(1 + rnd(t, 255));
  rr->reservation = (unsigned char)reserve;
  rr->pinned = (unsigned char)pinned;
  rr->moved = 0;
  atomic_init(&rr->shared, 0);
  hmb_buffer_handler_t h = {on_root_close, rr}, old = {on_root_close, rr};
  CHECK(hmb_buffer_set_handler(b, &h, &old) == 0 && old.fn == NULL,
        "a fresh buffer has a handler");
  tag_fill(data, size, rr->tag);
  memset(out, 0, sizeof *out);
  out->b = b;
  out->p = op == OP_PTR ? p : NULL;
  out->kind = op == OP_PTR ? REF_PTR : REF_HANDLE;
  out->root = rr;
  out->off = 0;
  return 0;
}

static void op_alloc(thr_t *t, int op) {
  slot_t *s = pick_slot(t, 0);
  pthread_rwlock_rdlock(&s->rw);
  if (s->r) {
    size_t size = pick_size(t);
    if (op == OP_RESERVE && rnd(t, 8))
      size += 1; /* mostly valid */
    unsigned flags = rnd(t, 6) == 0 ? HMB_ALLOC_PINNED : 0;
    ref_t nr;
    if (t->nrefs == MAX_REFS)
      drop_ref(t, (int)rnd(t, MAX_REFS));
    if (alloc_into(t, s->r, s->rec, op, size, flags, &nr) == 0)
      add_ref(t, &nr);
  } else if (op == OP_BOUND && rnd(t, 4) == 0) {
    hmb_buffer_t *b = NULL;
    int rc = hmb_allocate(hmb_bound_allocator(HMB_UNBOUND_FAIL), 1, 0, &b);
    CHECK(rc == HMB_ESTATE && b == NULL,
          "unbound allocation in FAIL mode returned %s", hmb_errname(rc));
  }
  pthread_rwlock_unlock(&s->rw);
}

/* Refs of `t` other than index `i` on the same root. */
static int own_others(const thr_t *t, int i) {
  int n = 0;
  for (int j = 0; j < t->nrefs; j++)
    n += j != i && t->refs[j].root == t->refs[i].root;
  return n;
}

static void op_realloc(thr_t *t) {
  int i = -1;
  for (int k = 0; k < 4 && t->nrefs; k++) {
    int c = (int)rnd(t, (uint64_t)t->nrefs);
    if (t->refs[c].kind == REF_PTR) {
      i = c;
      break;
    }
  }
  if (i < 0)
    return;
  ref_t *r = &t->refs[i];
  rootrec_t *rr = r->root;
  verify_ref(r);
  /* Known finding: a pinned block moved by realloc keeps the old data's
   * natural alignment, which may pass the region's granule (see above). */
  if ((O.avoid & AVOID_PINNED) && rr->pinned)
    return;
  /* Known finding: hmb_ptr_realloc() reads the reference count relaxed, so
   * a close of the last other reference on another thread does not happen
   * before its writes (a data race ThreadSanitizer reports). */
  if ((O.avoid & AVOID_REALLOC) && atomic_load(&rr->shared))
    return;
  size_t old = rr->size;
  size_t n = rnd(t, 3) == 0 ? rnd(t, old + 1) : pick_size(t);
  int mine = own_others(t, i);
  long refs = hmb_buffer_refcount(r->b);
  int64_t delta = (int64_t)n - (int64_t)old;
  if (delta > 0)
    live_add(rr->owner, delta);
  /* Known finding: a borrow that took all spare gives the rest back without
   * looking at the state, so one racing the runner's destroy leaves budget
   * with a runner that is freed with it. Here the owner's slot is held
   * while the runner lives, so that a realloc never races its destroy. */
  slot_t *os = NULL;
  if ((O.avoid & AVOID_GIVEBACK) && rr->owner->slot >= 0) {
    os = &G.slots[rr->owner->slot];
    pthread_rwlock_rdlock(&os->rw);
    if (os->rec != rr->owner) {
      pthread_rwlock_unlock(&os->rw); /* destroyed already */
      os = NULL;
    }
  }
  void *p = r->p;
  int rc = hmb_ptr_realloc(&p, n);
  if (os)
    pthread_rwlock_unlock(&os->rw);
  bump(&T.reallocs);
  if (rc) {
    if (delta > 0)
      live_add(rr->owner, -delta);
    CHECK(p == r->p, "a failed realloc moved the pointer");
    if (mine)
      CHECK(rc == HMB_EBUSY, "realloc with another reference held returned %s",
            hmb_errname(rc));
    else if (rc == HMB_EBUSY)
      CHECK(refs > 1, "realloc of the only reference returned HMB_EBUSY");
    else if (!alloc_rc_allowed(rc, n, 0, 1))
      FAIL("realloc %zu -> %zu returned %s", old, n, hmb_errname(rc));
    if (rc != HMB_EBUSY) {
      CHECK(delta > 0 || rc == HMB_ENOMEM, "a shrinking realloc failed with %s",
            hmb_errname(rc));
      count_alloc_failure(rc);
    }
    verify_ref(r);
    return;
  }
  CHECK(!mine, "realloc succeeded while this thread holds another reference");
  CHECK(hmb_ptr_buffer(p) == r->b && hmb_ptr_size(p) == n,
        "realloc: handle %p (was %p), size %zu (asked %zu)",
        (void *)hmb_ptr_buffer(p), (void *)r->b, hmb_ptr_size(p), n);
  CHECK(((uintptr_t)p & (rr->align - 1)) == 0,
        "realloc lost the alignment %zu: %p", rr->align, p);
  size_t keep = old < n ? old : n;
  size_t k = keep < 64 ? keep : 64;
  for (size_t j = 0; j < k; j++)
    CHECK(((unsigned char *)p)[j] == rr->tag,
          "realloc %zu -> %zu lost byte %zu", old, n, j);
  if (delta < 0)
    live_add(rr->owner, delta);
  if (p != r->p) {
    bump(&T.realloc_moves);
    rr->moved = 1;
    rr->basis = n;
    /* The new block keeps the old data's natural alignment (up to 64 KiB),
     * so its prefix is not known here: take the largest. */
    rr->prefix = sts_prefix(65536);
  } else if (n > rr->basis) {
    rr->basis = n;
  }
  rr->size = n;
  rr->pinned = (unsigned char)hmb_buffer_is_pinned(r->b);
  r->p = p;
  tag_fill(p, n, rr->tag);
  verify_ref(r);
}

static void op_slice(thr_t *t) {
  if (!t->nrefs)
    return;
  ref_t *r = &t->refs[rnd(t, (uint64_t)t->nrefs)];
  size_t size = hmb_buffer_size(r->b);
  hmb_buffer_t *s = (hmb_buffer_t *)r;
  uint64_t k = rnd(t, 16);
  if (k == 0 || size == 0) { /* invalid: empty, or outside */
    size_t off = k == 0 ? size + 1 : 0;
    int rc = hmb_buffer_slice(r->b, off, k == 0 ? 1 : 0, &s);
    CHECK(rc == HMB_EINVAL && s == NULL, "invalid slice returned %s",
          hmb_errname(rc));
    return;
  }
  size_t off = rnd(t, size);
  size_t len = 1 + rnd(t, size - off);
  int rc = hmb_buffer_slice(r->b, off, len, &s);
  CHECK(rc == 0, "slice [%zu, +%zu) of %zu returned %s", off, len, size,
        hmb_errname(rc));
  CHECK(hmb_buffer_parent(s) == r->b && hmb_buffer_size(s) == len &&
            hmb_buffer_is_pinned(s) == hmb_buffer_is_pinned(r->b),
        "slice: parent %p, size %zu", (void *)hmb_buffer_parent(s),
        hmb_buffer_size(s));
  ref_t nr = *r;
  nr.b = s;
  nr.p = NULL;
  nr.kind = REF_HANDLE;
  nr.off = r->off + off;
  verify_ref(&nr);
  add_ref(t, &nr);
}

static void op_retain(thr_t *t) {
  if (!t->nrefs)
    return;
  ref_t nr = t->refs[rnd(t, (uint64_t)t->nrefs)];
  CHECK(hmb_buffer_retain(nr.b) == 0, "retain failed");
  add_ref(t, &nr);
}

static void op_close(thr_t *t) {
  if (t->nrefs)
    drop_ref(t, (int)rnd(t, (uint64_t)t->nrefs));
}

/* Move a reference between `t` and a shared table (the exchange table or
 * the spill list, whose references pressure handlers may close). */
static void op_share(thr_t *t, ref_t *table, int n, pthread_mutex_t *mu) {
  int put = t->nrefs && (rnd(t, 2) || t->nrefs >= MAX_REFS - 1);
  uint64_t at = rnd(t, (uint64_t)n);
  pthread_mutex_lock(mu);
  for (int k = 0; k < n; k++) {
    ref_t *x = &table[(at + (uint64_t)k) % (uint64_t)n];
    if (put && !x->used) {
      int i = (int)rnd(t, (uint64_t)t->nrefs);
      atomic_store(&t->refs[i].root->shared, 1);
      *x = t->refs[i];
      x->used = 1;
      t->refs[i] = t->refs[--t->nrefs];
      break;
    }
    if (!put && x->used && t->nrefs < MAX_REFS) {
      verify_ref(x);
      t->refs[t->nrefs++] = *x;
      x->used = 0;
      bump(&T.handoffs);
      break;
    }
  }
  pthread_mutex_unlock(mu);
}

/* ---- pool operations ----------------------------------------------------- */

static void op_setlimit(thr_t *t) {
  pthread_mutex_lock(&G.lmu);
  size_t old = G.cur_limit;
  size_t lo = G.rc.limit / 2, hi = G.rc.limit * 2;
  /* With the cap, a shrink below what is held makes hmb_pool_check()
   * report I5 broken (held - limit > cap): a known finding, reproduced by
   * tests/stress/storm_findings.c. Capped rounds only raise the limit. */
  if (G.rc.capped)
    lo = old;
  size_t nl = lo + rnd(t, hi > lo ? hi - lo + 1 : 1);
  CHECK(hmb_pool_set_limit(G.pool, nl) == 0, "");
  if (nl < old)
    G.debt_allow += old - nl;
  else
    G.debt_allow = G.debt_allow > nl - old ? G.debt_allow - (nl - old) : 0;
  G.cur_limit = nl;
  CHECK(hmb_pool_limit(G.pool) == nl, "limit reads %zu after setting %zu",
        hmb_pool_limit(G.pool), nl);
  pthread_mutex_unlock(&G.lmu);
  bump(&T.limit_changes);
  CHECK(hmb_pool_set_limit(G.pool, 0) == HMB_EINVAL, "");
}

static void op_pool_stats(thr_t *t) {
  hmb_pool_stats_t st;
  CHECK(hmb_pool_stats(G.pool, &st) == 0, "");
  int64_t over = st.held > st.limit ? st.held - st.limit : 0;
  CHECK(st.available == st.limit - st.held && st.overcommitted == over &&
            st.held >= 0 && st.peak_held >= st.held &&
            st.peak_overcommitted >= over && st.running >= 0 &&
            st.beyond_running >= 0 && st.beyond_stopped >= 0 &&
            (st.progress_runner != 0 || st.beyond_running == 0) &&
            st.peak_live_bytes <= st.peak_held,
        "pool stats: limit %" PRId64 " held %" PRId64 " available %" PRId64
        " over %" PRId64 " beyond %" PRId64 "/%" PRId64,
        st.limit, st.held, st.available, st.overcommitted, st.beyond_running,
        st.beyond_stopped);
  CHECK(st.overcommit_cap == (G.rc.capped ? (int64_t)G.rc.cap : -1),
        "overcommit_cap reads %" PRId64, st.overcommit_cap);
  if (G.rc.capped)
    CHECK(over <= (int64_t)G.rc.cap, "over-commit %" PRId64 " above cap %zu",
          over, G.rc.cap);
  char buf[512];
  int n = hmb_pool_describe(G.pool, (int)rnd(t, 6), buf, sizeof buf);
  CHECK(n > 0 && strlen(buf) ==
                     (size_t)(n < (int)sizeof buf ? n : (int)sizeof buf - 1),
        "describe returned %d", n);
  hmb_memory_stats_t ms;
  CHECK(hmb_pool_memory_stats(G.pool, &ms) == 0, "");
  CHECK(ms.cached_bytes >= 0 && ms.pinned_capacity >= 0 && ms.pinned_reason &&
            ms.cuda_runtime,
        "memory stats: cached %" PRId64, ms.cached_bytes);
}

static void op_trim(thr_t *t) {
  size_t keep = rnd(t, 2) ? 0 : rnd(t, G.rc.limit);
  CHECK(hmb_pool_trim(G.pool, keep) == 0, "");
}

static void op_pressure_b(thr_t *t) {
  pthread_mutex_lock(&G.pmu);
  if (G.press_b_id) {
    CHECK(hmb_pool_remove_pressure_handler(G.pool, G.press_b_id) == 0, "");
    G.press_b_id = 0;
  } else {
    CHECK(hmb_pool_add_pressure_handler(G.pool, on_pressure_b, NULL,
                                        &G.press_b_id) == 0 &&
              G.press_b_id > 0,
          "");
  }
  pthread_mutex_unlock(&G.pmu);
  (void)t;
}

/*
 * A task on a runner no other thread sees: create, start, a few allocations
 * (backend faults are injected here even with --avoid-known), close, finish,
 * destroy. With one thread on the runner, every failed allocation must leave
 * the runner's figures exactly as they were (I6), and finish must return
 * all it holds.
 */
static void op_solo(thr_t *t) {
  if (atomic_fetch_add(&G.ncreated, 1) >= MAX_RUNNERS - 4)
    return;
  hmb_runner_config_t c;
  hmb_runner_config_init(&c);
  c.estimate = rnd(t, G.rc.limit / 2 + 1);
  c.borrow_timeout_ns = pick_borrow_timeout(t);
  c.name = "solo";
  hmb_runner_t *r = NULL;
  CHECK(hmb_runner_create(G.pool, &c, &r) == 0, "");
  hmb_runner_stats_t a, b;
  CHECK(hmb_runner_stats(r, &a) == 0 && a.id < MAX_RUNNERS, "");
  rrec_t *rec = &G.recs[a.id];
  CHECK(!atomic_exchange(&rec->used, 1), "");
  rec->slot = -1;
  int rc = hmb_runner_start(r, pick_timeout(t));
  CHECK(rc == 0 || rc == HMB_ETIMEDOUT, "solo start: %s", hmb_errname(rc));
  ref_t mine[8];
  int n = 0;
  if (rc == HMB_ETIMEDOUT)
    bump(&T.start_timeouts);
  for (int k = rc == 0 ? 1 + (int)rnd(t, 8) : 0; k > 0; k--) {
    static const int ops[] = {OP_ALLOC, OP_ALIGNED, OP_PTR, OP_RESERVE};
    int op = ops[rnd(t, 4)];
    size_t size = pick_size(t) + (op == OP_RESERVE);
    CHECK(hmb_runner_stats(r, &a) == 0, "");
    tl_solo = 1;
    ref_t nr;
    rc = alloc_into(t, r, rec, op, size, rnd(t, 6) ? 0 : HMB_ALLOC_PINNED, &nr);
    tl_solo = 0;
    CHECK(hmb_runner_stats(r, &b) == 0, "");
    if (rc == 0) {
      mine[n++] = nr;
      continue;
    }
    CHECK(b.held == a.held && b.spare == a.spare && b.live == a.live &&
              b.live_buffers == a.live_buffers && b.borrows == a.borrows &&
              b.borrowed == a.borrowed && b.allocations == a.allocations &&
              b.peak_held == a.peak_held && b.beyond == a.beyond &&
              b.wait_ns == a.wait_ns && b.returned_early == a.returned_early,
          "a failed allocation (%s) changed its runner: held %" PRId64
          " -> %" PRId64 ", spare %" PRId64 " -> %" PRId64 ", borrows %" PRIu64
          " -> %" PRIu64 ", peak held %" PRId64 " -> %" PRId64
          ", beyond %" PRId64 " -> %" PRId64 " (I6)",
          hmb_errname(rc), a.held, b.held, a.spare, b.spare, a.borrows,
          b.borrows, a.peak_held, b.peak_held, a.beyond, b.beyond);
  }
  while (n > 0) {
    int i = (int)rnd(t, (uint64_t)n);
    ref_t x = mine[i];
    mine[i] = mine[--n];
    ref_close(&x);
  }
  CHECK(hmb_runner_stats(r, &a) == 0 && a.live == 0 && a.live_buffers == 0,
        "solo runner: %" PRId64 " live after closing all", a.live);
  size_t ret = 0;
  rc = hmb_runner_finish(r, 0, &ret);
  if (a.state == HMB_RUNNER_RUNNING)
    CHECK(rc == 0 && ret == (size_t)a.held,
          "solo finish: %s, returned %zu of %" PRId64, hmb_errname(rc), ret,
          a.held);
  else
    CHECK(rc == HMB_ESTATE, "finish before start: %s", hmb_errname(rc));
  CHECK(hmb_runner_stats(r, &b) == 0 && b.held == 0, "");
  atomic_store(&rec->destroyed, 1);
  hmb_runner_destroy(r);
}

/* ---- the worker's step
 * ------------------------------------------------------- */

typedef struct weight {
  int op, w;
} weight_t;

static const weight_t weights[] = {
    {OP_CREATE, 4},  {OP_START, 5},   {OP_GROW, 2},     {OP_FINISH, 3},
    {OP_DESTROY, 2}, {OP_CANCEL, 1},  {OP_TRYFREE, 2},  {OP_SETNEED, 2},
    {OP_ALLOC, 14},  {OP_ALIGNED, 2}, {OP_PTR, 6},      {OP_REALLOC, 4},
    {OP_RESERVE, 2}, {OP_BOUND, 1},   {OP_SLICE, 4},    {OP_RETAIN, 3},
    {OP_CLOSE, 20},  {OP_HANDOFF, 6}, {OP_SPILL, 3},    {OP_SETLIMIT, 1},
    {OP_TRIM, 1},    {OP_STATS, 2},   {OP_PRESSURE, 1}, {OP_SOLO, 2}};
enum { NWEIGHTS = (int)(sizeof weights / sizeof weights[0]) };

static int weights_total; /* set by main before any thread starts */

static int pick_op(thr_t *t) {
  int x = (int)rnd(t, (uint64_t)weights_total);
  for (int i = 0; i < NWEIGHTS; i++) {
    if (x < weights[i].w)
      return weights[i].op;
    x -= weights[i].w;
  }
  return OP_CLOSE;
}

static void worker_step(thr_t *t) {
  int op = pick_op(t);
  if ((op == OP_SETLIMIT && !G.rc.limit_changes) ||
      (op == OP_TRIM && G.rc.custom) || (op == OP_PRESSURE && !G.rc.pressure))
    op = OP_STATS;
  atomic_store_explicit(&t->op, op, memory_order_relaxed);
  switch (op) {
  case OP_CREATE:
    op_create(t);
    break;
  case OP_START:
    op_start(t);
    break;
  case OP_FINISH:
    op_finish(t);
    break;
  case OP_DESTROY:
    op_destroy(t);
    break;
  case OP_GROW:
  case OP_CANCEL:
  case OP_TRYFREE:
  case OP_SETNEED:
    op_runner_call(t, op);
    break;
  case OP_ALLOC:
  case OP_ALIGNED:
  case OP_PTR:
  case OP_RESERVE:
  case OP_BOUND:
    op_alloc(t, op);
    break;
  case OP_REALLOC:
    op_realloc(t);
    break;
  case OP_SLICE:
    op_slice(t);
    break;
  case OP_RETAIN:
    op_retain(t);
    break;
  case OP_CLOSE:
    op_close(t);
    break;
  case OP_HANDOFF:
    op_share(t, G.xchg, NXCHG, &G.xmu);
    break;
  case OP_SPILL:
    op_share(t, G.spill, NSPILL, &G.smu);
    break;
  case OP_SETLIMIT:
    op_setlimit(t);
    break;
  case OP_TRIM:
    op_trim(t);
    break;
  case OP_PRESSURE:
    op_pressure_b(t);
    break;
  case OP_SOLO:
    op_solo(t);
    break;
  default:
    if (rnd(t, 2))
      op_pool_stats(t);
    else
      op_runner_call(t, OP_STATS);
    break;
  }
}

/* ---- the grabber
 * --------------------------------------------------------------- */

enum { G_IDLE, G_GRAB, G_HOLD, G_RELEASE };

typedef struct grab {
  int state, hold, n;
  int64_t taken;
} grab_t;

static void grab_release(thr_t *t, slot_t *s) {
  while (t->nrefs)
    drop_ref(t, t->nrefs - 1);
  pthread_mutex_lock(&s->life);
  if (pthread_rwlock_trywrlock(&s->rw) == 0) {
    if (s->r) {
      size_t ret;
      int rc = hmb_runner_finish(s->r, 0, &ret);
      CHECK(rc == 0 || rc == HMB_ESTATE, "grabber finish: %s", hmb_errname(rc));
      destroy_slot(s);
    }
    pthread_rwlock_unlock(&s->rw);
  }
  pthread_mutex_unlock(&s->life);
}

static void grabber_step(thr_t *t, grab_t *g) {
  slot_t *s = &G.slots[G.nslots - 1];
  atomic_store_explicit(&t->op, OP_GRAB, memory_order_relaxed);
  switch (g->state) {
  case G_IDLE: {
    pthread_mutex_lock(&s->life);
    pthread_rwlock_wrlock(&s->rw);
    if (!s->r && atomic_fetch_add(&G.ncreated, 1) < MAX_RUNNERS - 4) {
      hmb_runner_config_t c;
      hmb_runner_config_init(&c);
      c.estimate = rnd(t, G.rc.limit / 4 + 1);
      c.borrow_timeout_ns = 1; /* "would wait" */
      c.name = "grabber";
      hmb_runner_t *r = NULL;
      CHECK(hmb_runner_create(G.pool, &c, &r) == 0, "");
      hmb_runner_stats_t st;
      CHECK(hmb_runner_stats(r, &st) == 0 && st.id < MAX_RUNNERS, "");
      CHECK(!atomic_exchange(&G.recs[st.id].used, 1), "");
      G.recs[st.id].slot = G.nslots - 1;
      s->r = r;
      s->rec = &G.recs[st.id];
      s->id = st.id;
    }
    pthread_rwlock_unlock(&s->rw);
    pthread_rwlock_rdlock(&s->rw);
    if (s->r) {
      int rc = hmb_runner_start(s->r, rnd(t, 2) ? 0 : 250000);
      if (rc == 0) {
        g->state = G_GRAB;
        g->n = 0;
        g->taken = 0;
      } else if (rc == HMB_ETIMEDOUT) {
        bump(&T.start_timeouts);
      } else {
        CHECK(rc == HMB_ECANCELED, "grabber start: %s", hmb_errname(rc));
        g->state = G_RELEASE;
      }
    }
    pthread_rwlock_unlock(&s->rw);
    pthread_mutex_unlock(&s->life);
    break;
  }
  case G_GRAB: {
    pthread_rwlock_rdlock(&s->rw);
    ref_t nr;
    size_t size = 64 * KIB + rnd(t, 960 * KIB);
    int rc = alloc_into(t, s->r, s->rec, OP_ALLOC, size, 0, &nr);
    pthread_rwlock_unlock(&s->rw);
    if (rc == 0) {
      add_ref(t, &nr);
      g->n++;
      g->taken += (int64_t)size;
      atomic_fetch_add(&T.grab_bytes, size);
    }
    if (rc == HMB_ECANCELED || rc == HMB_ESTATE) {
      g->state = G_RELEASE;
    } else if (rc || g->n >= MAX_GRAB || g->taken >= 2 * (int64_t)G.rc.limit) {
      g->state = G_HOLD;
      g->hold = 5 + (int)rnd(t, 60);
      bump(&T.grabs);
    }
    break;
  }
  case G_HOLD:
    if (--g->hold <= 0)
      g->state = G_RELEASE;
    break;
  default:
    grab_release(t, s);
    if (!s->r)
      g->state = G_IDLE;
    break;
  }
}

/* ---- checks at a barrier
 * ------------------------------------------------------ */

static int cmp_ptr(const void *a, const void *b) {
  uintptr_t x = (uintptr_t) * (void *const *)a,
            y = (uintptr_t) * (void *const *)b;
  return x < y ? -1 : x > y;
}

static int find_ptr(void **v, size_t n, const void *p) {
  size_t lo = 0, hi = n;
  while (lo < hi) {
    size_t m = (lo + hi) / 2;
    if ((uintptr_t)v[m] < (uintptr_t)p)
      lo = m + 1;
    else
      hi = m;
  }
  return lo < n && v[lo] == p ? (int)lo : -1;
}

/* What every reference of the storm adds up to. */
typedef struct tally {
  int64_t roots, bytes, data_roots, data_bytes, pinned_bytes;
  int64_t pageable_sizes, phys_max, phys_stated, phys_now;
} tally_t;

static int collect_refs(ref_t ***out) {
  int n = 0, cap = G.nthr * MAX_REFS + NXCHG + NSPILL;
  ref_t **v = malloc(sizeof *v * (size_t)cap);
  CHECK(v != NULL, "");
  for (int i = 0; i < G.nthr; i++)
    for (int j = 0; j < G.thr[i].nrefs; j++)
      v[n++] = &G.thr[i].refs[j];
  for (int i = 0; i < NXCHG; i++)
    if (G.xchg[i].used)
      v[n++] = &G.xchg[i];
  for (int i = 0; i < NSPILL; i++)
    if (G.spill[i].used)
      v[n++] = &G.spill[i];
  *out = v;
  return n;
}

/* Reference counts, roots and their sums, from the references alone. */
static void tally_refs(tally_t *ta) {
  memset(ta, 0, sizeof *ta);
  ref_t **refs;
  int n = collect_refs(&refs);
  /* Every handle referenced, and their ancestors, once. */
  size_t cap = (size_t)n * 8 + 8, nh = 0;
  void **h = malloc(sizeof *h * cap);
  CHECK(h != NULL, "");
  for (int i = 0; i < n; i++) {
    verify_ref(refs[i]);
    for (hmb_buffer_t *b = refs[i]->b; b; b = hmb_buffer_parent(b)) {
      if (nh == cap) {
        cap *= 2;
        h = realloc(h, sizeof *h * cap);
        CHECK(h != NULL, "");
      }
      h[nh++] = b;
    }
  }
  qsort(h, nh, sizeof *h, cmp_ptr);
  size_t u = 0;
  for (size_t i = 0; i < nh; i++)
    if (u == 0 || h[u - 1] != h[i])
      h[u++] = h[i];
  long *expect = calloc(u + 1, sizeof *expect);
  rootrec_t **rec = calloc(u + 1, sizeof *rec);
  CHECK(expect && rec, "");
  for (int i = 0; i < n; i++) {
    int at = find_ptr(h, u, refs[i]->b);
    expect[at]++;
    int ra = find_ptr(h, u, root_of(refs[i]->b));
    if (rec[ra] && rec[ra] != refs[i]->root)
      FAIL("two records for one root buffer");
    rec[ra] = refs[i]->root;
  }
  for (size_t i = 0; i < u; i++) {
    hmb_buffer_t *p = hmb_buffer_parent(h[i]);
    if (p)
      expect[find_ptr(h, u, p)]++;
  }
  for (size_t i = 0; i < u; i++) {
    hmb_buffer_t *b = h[i];
    if (hmb_buffer_refcount(b) != expect[i])
      FAIL("buffer %p has %ld references; the storm holds %ld (references "
           "and slices)",
           (void *)b, hmb_buffer_refcount(b), expect[i]);
    if (hmb_buffer_parent(b))
      continue;
    rootrec_t *rr = rec[i];
    CHECK(rr != NULL, "a root without a record");
    CHECK(hmb_buffer_size(b) == rr->size, "root size %zu, record %zu",
          hmb_buffer_size(b), rr->size);
    CHECK(hmb_buffer_is_pinned(b) == rr->pinned, "root pinned %d, record %d",
          hmb_buffer_is_pinned(b), rr->pinned);
    ta->roots++;
    ta->bytes += (int64_t)rr->size;
    if (!rr->reservation) {
      ta->data_roots++;
      ta->data_bytes += (int64_t)rr->size;
      if (hmb_buffer_is_pinned(b)) {
        ta->pinned_bytes += (int64_t)rr->size;
      } else {
        ta->pageable_sizes += (int64_t)rr->size;
        ta->phys_max += (int64_t)sts_phys_bound(rr->basis, rr->prefix);
        ta->phys_stated += (int64_t)sts_phys_stated(rr->size, rr->prefix);
        ta->phys_now += (int64_t)sts_phys_bound(rr->size, rr->prefix);
      }
    }
  }
  free(rec);
  free(expect);
  free(h);
  free(refs);
}

static void barrier_check(int final) {
  char why[512];
  hmb_pool_t *pool = G.pool;
  if (hmb_pool_check(pool, HMB_CHECK_QUIESCENT, why, sizeof why) != 0)
    FAIL("hmb_pool_check(QUIESCENT): %s", why);
  bump(&T.barriers);
  if (atomic_load(&G.errors))
    FAIL("the library logged an error: %s", G.first_error);
  tally_t ta;
  tally_refs(&ta);
  hmb_pool_stats_t st;
  CHECK(hmb_pool_stats(pool, &st) == 0, "");
  hmb_memory_stats_t ms;
  CHECK(hmb_pool_memory_stats(pool, &ms) == 0, "");
  /* Usage: exact at rest. */
  CHECK(st.live_bytes == ta.bytes && st.live_buffers == ta.roots,
        "pool live %" PRId64 " bytes / %" PRId64 " buffers; the storm holds "
        "%" PRId64 " / %" PRId64,
        st.live_bytes, st.live_buffers, ta.bytes, ta.roots);
  CHECK((int64_t)(atomic_load(&G.roots_made) - atomic_load(&G.roots_closed)) ==
            ta.roots,
        "roots made %" PRIu64 " - closed %" PRIu64 " != %" PRId64 " held",
        atomic_load(&G.roots_made), atomic_load(&G.roots_closed), ta.roots);
  CHECK(st.acquire_waiters == 0 && st.borrow_waiters == 0,
        "waiters at rest: %d / %d", st.acquire_waiters, st.borrow_waiters);
  CHECK(ms.pageable_live + ms.pinned_live == ta.data_bytes &&
            ms.pinned_live == ta.pinned_bytes,
        "memory: pageable %" PRId64 " + pinned %" PRId64 " live; the storm "
        "holds %" PRId64 " (%" PRId64 " pinned)",
        ms.pageable_live, ms.pinned_live, ta.data_bytes, ta.pinned_bytes);
  CHECK(ms.pinned_live <= ms.pinned_capacity, "pinned live above the region");
  if (G.rc.custom) {
    CHECK(atomic_load(&G.be_blocks) == ta.data_roots,
          "backend holds %" PRId64 " blocks, the storm %" PRId64 " roots",
          atomic_load(&G.be_blocks), ta.data_roots);
    CHECK(ms.cached_bytes == 0 && ms.pinned_capacity == 0,
          "a custom backend with a cache or a region");
  } else {
    CHECK(ms.pageable_physical >= ta.pageable_sizes &&
              ms.pageable_physical <= ta.phys_max,
          "pageable_physical %" PRId64 " outside [%" PRId64 ", %" PRId64
          "] (the live blocks and their rounding)",
          ms.pageable_physical, ta.pageable_sizes, ta.phys_max);
    CHECK(ms.pageable_physical <= ta.phys_now,
          "pageable_physical %" PRId64 " above %" PRId64 " (the blocks' "
          "current sizes with their rounding)",
          ms.pageable_physical, ta.phys_now);
    CHECK(ms.pageable_physical <= ta.phys_stated,
          "pageable_physical %" PRId64 " above %" PRId64 " (hmb/stats.h: "
          "the live blocks, prefixes and class and page rounding)",
          ms.pageable_physical, ta.phys_stated);
    int64_t room = st.limit - st.held > 0 ? st.limit - st.held : 0;
    int64_t cap = G.rc.cache_bytes && (int64_t)G.rc.cache_bytes < room
                      ? (int64_t)G.rc.cache_bytes
                      : room;
    CHECK(ms.cache_cap == cap && ms.cached_bytes <= cap,
          "cache %" PRId64 " bytes, cap %" PRId64 "; expected cap %" PRId64
          " (limit %" PRId64 " - held %" PRId64 ")",
          ms.cached_bytes, ms.cache_cap, cap, st.limit, st.held);
    int64_t over = st.held > st.limit ? st.held - st.limit : 0;
    CHECK(ms.pageable_physical + ms.cached_bytes <=
              st.limit + over + (ta.phys_max - ta.pageable_sizes),
          "physical %" PRId64 " + cached %" PRId64 " above limit %" PRId64
          " + over-commit %" PRId64 " + rounding %" PRId64,
          ms.pageable_physical, ms.cached_bytes, st.limit, over,
          ta.phys_max - ta.pageable_sizes);
    count_max(&T.max_phys_milli,
              (ms.pageable_physical + ms.cached_bytes) * 1000 / st.limit);
  }
  count_max(&T.max_over_milli, st.held * 1000 / st.limit);
  /* Runners: the table, and what the storm knows of each. */
  int64_t expect_runners = 0;
  int running = 0;
  for (int i = 1; i < MAX_RUNNERS && i < atomic_load(&G.ncreated) + 8; i++) {
    rrec_t *rec = &G.recs[i];
    if (!atomic_load(&rec->used))
      continue;
    CHECK(atomic_load(&rec->bufs) >= 0 && atomic_load(&rec->live) >= 0,
          "runner #%d: bookkeeping below zero", i);
    expect_runners +=
        !atomic_load(&rec->destroyed) || atomic_load(&rec->bufs) > 0;
  }
  int64_t beyond_stopped_seen = 0;
  for (int i = 0; i < G.nslots; i++) {
    slot_t *s = &G.slots[i];
    if (!s->r)
      continue;
    hmb_runner_stats_t rs;
    CHECK(hmb_runner_stats(s->r, &rs) == 0, "");
    rrec_t *rec = s->rec;
    CHECK(rs.live == atomic_load(&rec->live) &&
              rs.live_buffers == atomic_load(&rec->bufs) &&
              rs.allocations == atomic_load(&rec->allocs),
          "runner #%" PRIu64 ": live %" PRId64 " bytes / %" PRId64
          " buffers / %" PRIu64 " allocations; the storm counts %" PRId64
          " / %" PRId64 " / %" PRIu64,
          rs.id, rs.live, rs.live_buffers, rs.allocations,
          atomic_load(&rec->live), atomic_load(&rec->bufs),
          atomic_load(&rec->allocs));
    CHECK(rs.held == rs.live + rs.spare && rs.spare >= 0 &&
              rs.beyond <= rs.held && rs.peak_live <= rs.peak_held &&
              rs.peak_live >= rs.live,
          "runner #%" PRIu64 " at rest: held %" PRId64 " live %" PRId64
          " spare %" PRId64 " beyond %" PRId64,
          rs.id, rs.held, rs.live, rs.spare, rs.beyond);
    if (rs.state == HMB_RUNNER_RUNNING) {
      running++;
      CHECK(rs.beyond == 0 || (rs.progress && st.progress_runner == rs.id),
            "runner #%" PRIu64 " runs beyond the limit (%" PRId64
            ") and is not the progress runner (I2)",
            rs.id, rs.beyond);
    } else {
      CHECK(!rs.progress, "a stopped runner is the progress runner");
      beyond_stopped_seen += rs.beyond;
    }
  }
  CHECK(st.runners == expect_runners,
        "pool counts %d runners; the storm %" PRId64 " (handles + detached "
        "runners with live buffers)",
        st.runners, expect_runners);
  CHECK(st.running == running, "pool says %d running, the slots %d", st.running,
        running);
  CHECK(beyond_stopped_seen <= st.beyond_stopped,
        "stopped runners hold %" PRId64 " beyond; the pool says %" PRId64,
        beyond_stopped_seen, st.beyond_stopped);
  /* I3, from the stats (and what lowered limits may have left above). */
  pthread_mutex_lock(&G.lmu);
  int64_t allow = (int64_t)G.debt_allow;
  CHECK(st.limit == (int64_t)G.cur_limit, "limit %" PRId64 ", set %zu",
        st.limit, G.cur_limit);
  pthread_mutex_unlock(&G.lmu);
  CHECK(st.held <= st.limit + st.beyond_stopped + st.beyond_running + allow,
        "held %" PRId64 " > limit %" PRId64 " + beyond stopped %" PRId64
        " + beyond running %" PRId64 " + lowered-limit allowance %" PRId64
        " (I3)",
        st.held, st.limit, st.beyond_stopped, st.beyond_running, allow);
  if (st.progress_runner) {
    CHECK(st.progress_runner < MAX_RUNNERS, "");
    rrec_t *pr = &G.recs[st.progress_runner];
    CHECK(st.beyond_running <= atomic_load(&pr->peak),
          "the progress runner #%" PRIu64 " holds %" PRId64
          " beyond the limit, above the most it ever had live (%" PRId64
          ") (I3)",
          st.progress_runner, st.beyond_running, atomic_load(&pr->peak));
    CHECK(st.beyond_running <= atomic_load(&pr->live),
          "the progress runner #%" PRIu64 " holds %" PRId64 " beyond the "
          "limit at rest, above its live bytes %" PRId64 " (I3)",
          st.progress_runner, st.beyond_running, atomic_load(&pr->live));
  } else {
    CHECK(st.beyond_running == 0, "beyond_running without a progress runner");
  }
  if (G.rc.capped)
    CHECK(st.overcommitted <= (int64_t)G.rc.cap,
          "over-commit %" PRId64 " above the cap %zu (I5)", st.overcommitted,
          G.rc.cap);
  CHECK(atomic_load(&G.wait_begin) == atomic_load(&G.wait_end),
        "wait hook: %" PRIu64 " begins, %" PRIu64 " ends",
        atomic_load(&G.wait_begin), atomic_load(&G.wait_end));
  if (G.rc.pressure)
    CHECK(atomic_load(&G.press_a) == st.pressure_calls,
          "pressure handler A ran %" PRIu64 " times, rounds %" PRIu64,
          atomic_load(&G.press_a), st.pressure_calls);
  if (final) {
    CHECK(st.held == 0 && st.live_bytes == 0 && st.live_buffers == 0 &&
              st.runners == 0 && st.running == 0 && st.beyond_running == 0 &&
              st.beyond_stopped == 0 && st.progress_runner == 0,
          "not at zero after the round: held %" PRId64 " live %" PRId64
          " runners %d",
          st.held, st.live_bytes, st.runners);
    CHECK(ms.pageable_live == 0 && ms.pinned_live == 0 &&
              ms.pageable_physical == 0 && atomic_load(&G.be_blocks) == 0 &&
              atomic_load(&G.be_bytes) == 0,
          "memory not at zero: pageable %" PRId64 " physical %" PRId64
          " pinned %" PRId64 " backend %" PRId64,
          ms.pageable_live, ms.pageable_physical, ms.pinned_live,
          atomic_load(&G.be_blocks));
  }
  /* Now and then: the pool refuses destruction while runners remain. */
  if (!final && st.runners > 0 &&
      sts_mix(O.seed ^ atomic_load(&T.barriers)) % 16 == 0) {
    atomic_store(&G.expect_errors, 1);
    int rc = hmb_pool_destroy(pool);
    atomic_store(&G.expect_errors, 0);
    CHECK(rc == HMB_EBUSY, "destroying a pool with %d runners returned %s",
          st.runners, hmb_errname(rc));
    bump(&T.quiescent_destroys);
  }
}

/* ---- threads and rounds
 * ------------------------------------------------------------ */

static void check_instant(thr_t *t) {
  if (O.check_every <= 0 || t->steps % (uint64_t)O.check_every)
    return;
  char why[512];
  int rc = hmb_pool_check(G.pool, 0, why, sizeof why);
  if (rc)
    FAIL("hmb_pool_check(0): %s", why);
  bump(&T.checks);
}

static void meet(thr_t *t, int final) {
  atomic_store_explicit(&t->op, final ? OP_TEARDOWN : OP_BARRIER,
                        memory_order_relaxed);
  pthread_barrier_wait(&G.bar);
  if (t->id == 0) {
    barrier_check(final);
    if (!final && G.deadline_ns && sts_now_ns() >= G.deadline_ns)
      atomic_store(&G.stop, 1);
  }
  pthread_barrier_wait(&G.bar);
}

static void *thread_main(void *arg) {
  thr_t *t = arg;
  tl_thr = t;
  int grabber = t->id == G.nthr - 1;
  grab_t g = {G_IDLE, 0, 0, 0};
  for (long step = 1; step <= O.round_ops; step++) {
    if (grabber)
      grabber_step(t, &g);
    else
      worker_step(t);
    t->steps++;
    atomic_store_explicit(&t->at, t->steps, memory_order_relaxed);
    atomic_fetch_add_explicit(&G.progress, 1, memory_order_relaxed);
    if (!grabber)
      atomic_fetch_add_explicit(&T.steps, 1, memory_order_relaxed);
    atomic_store_explicit(&t->op, OP_CHECK, memory_order_relaxed);
    check_instant(t);
    if (step % O.barrier == 0 || step == O.round_ops) {
      meet(t, 0);
      if (atomic_load(&G.stop))
        break;
    }
  }
  /* Teardown: every thread closes what it holds; thread 0 the rest. */
  while (t->nrefs)
    drop_ref(t, t->nrefs - 1);
  pthread_barrier_wait(&G.bar);
  if (t->id == 0) {
    for (int i = 0; i < NXCHG; i++)
      if (G.xchg[i].used) {
        G.xchg[i].used = 0;
        ref_close(&G.xchg[i]);
      }
    for (int i = 0; i < NSPILL; i++)
      if (G.spill[i].used) {
        G.spill[i].used = 0;
        ref_close(&G.spill[i]);
      }
    for (int i = 0; i < G.nslots; i++)
      if (G.slots[i].r)
        destroy_slot(&G.slots[i]);
  }
  meet(t, 1);
  return NULL;
}

static void round_config(uint64_t round) {
  uint64_t s = sts_stream(O.seed, round, 1000);
  round_cfg_t *c = &G.rc;
  memset(c, 0, sizeof *c);
  c->round = round;
  c->limit = 256 * KIB + sts_below(&s, 4 * MIB - 256 * KIB + 1);
  c->custom = round % 2 == 0;
  c->max_request = sts_below(&s, 3) == 0 ? 2 * c->limit : 0;
  if (!c->max_request)
    c->max_request = HMB_MAX_ALLOC;
  static const size_t al[] = {0, 0, 0, 128, 4096};
  c->align = al[sts_below(&s, 5)];
  if (c->custom) {
    static const unsigned fr[] = {0, 4, 16, 64};
    c->fail_per_1024 = fr[sts_below(&s, 4)];
  } else {
    c->pinned_bytes = sts_below(&s, 4) ? 256 * KIB + sts_below(&s, 2 * MIB) : 0;
    c->cache_bytes = sts_below(&s, 4) == 0 ? sts_below(&s, 2 * MIB) + 1 : 0;
    if (sts_below(&s, 3) == 0)
      c->flags |= HMB_POOL_NO_HUGEPAGES;
  }
  c->capped = sts_below(&s, 4) == 0;
  if (c->capped) {
    c->flags |= HMB_POOL_CAP_OVERCOMMIT;
    c->cap = sts_below(&s, 2) ? 0 : sts_below(&s, c->limit + 1);
  }
  c->pressure = sts_below(&s, 2) == 0;
  c->limit_changes = sts_below(&s, 3) == 0;
  c->log_level = sts_below(&s, 4) == 0 ? HMB_LOG_DEBUG : HMB_LOG_INFO;
  /* Effective data alignment of hmb_allocate(). */
  if (c->align < 64)
    c->align = 64;
}

static void round_run(uint64_t round) {
  round_config(round);
  hmb_pool_config_t cfg;
  hmb_pool_config_init(&cfg);
  cfg.limit = G.rc.limit;
  cfg.max_request = G.rc.max_request == HMB_MAX_ALLOC ? 0 : G.rc.max_request;
  cfg.alignment = G.rc.align;
  cfg.flags = G.rc.flags;
  cfg.overcommit_cap = G.rc.cap;
  cfg.log_fn = on_log;
  cfg.log_level = G.rc.log_level;
  cfg.long_wait_ns = 2000000;
  cfg.pressure_wait_ns = 1000000;
  cfg.wait_hook = on_wait;
  G.pinned_region = NULL;
  if (G.rc.custom) {
    cfg.backend = &be_vtable;
  } else {
    cfg.cache_bytes = G.rc.cache_bytes;
    if (G.rc.pinned_bytes) {
      G.pinned_region =
          aligned_alloc(4096, (G.rc.pinned_bytes + 4095) & ~(size_t)4095);
      CHECK(G.pinned_region != NULL, "");
      cfg.pinned_bytes = G.rc.pinned_bytes;
      cfg.pinned_base = G.pinned_region;
    }
  }
  memset(G.recs, 0, sizeof *G.recs * MAX_RUNNERS);
  atomic_store(&G.ncreated, 0);
  memset(G.xchg, 0, sizeof G.xchg);
  memset(G.spill, 0, sizeof G.spill);
  atomic_store(&G.be_blocks, 0);
  atomic_store(&G.be_bytes, 0);
  atomic_store(&G.be_calls, 0);
  atomic_store(&G.wait_begin, 0);
  atomic_store(&G.wait_end, 0);
  atomic_store(&G.press_a, 0);
  atomic_store(&G.press_b, 0);
  atomic_store(&G.roots_made, 0);
  atomic_store(&G.roots_closed, 0);
  G.cur_limit = G.rc.limit;
  G.debt_allow = 0;
  G.press_b_id = 0;
  hmb_pool_t *pool = NULL;
  int rc = hmb_pool_create(&cfg, &pool);
  if (rc)
    FAIL("pool create: %s", hmb_errname(rc));
  pthread_mutex_lock(&G.pool_mu);
  G.pool = pool;
  pthread_mutex_unlock(&G.pool_mu);
  if (G.rc.pressure)
    CHECK(hmb_pool_add_pressure_handler(pool, on_pressure_a, NULL, NULL) == 0,
          "");
  hmb_memory_stats_t ms;
  CHECK(hmb_pool_memory_stats(pool, &ms) == 0, "");
  if (!G.rc.custom && G.rc.pinned_bytes)
    CHECK(ms.pinned_capacity > 0 && ms.pinned_reason[0] == '\0',
          "the given pinned region is not used: %s", ms.pinned_reason);
  for (int i = 0; i < G.nslots; i++) {
    G.slots[i].r = NULL;
    G.slots[i].rec = NULL;
  }
  pthread_barrier_init(&G.bar, NULL, (unsigned)G.nthr);
  for (int i = 0; i < G.nthr; i++) {
    thr_t *t = &G.thr[i];
    t->id = i;
    t->rng = sts_stream(O.seed, round, (uint64_t)i);
    t->nrefs = 0;
    t->steps = 0;
    if (pthread_create(&t->th, NULL, thread_main, t) != 0)
      FAIL("pthread_create");
  }
  for (int i = 0; i < G.nthr; i++)
    pthread_join(G.thr[i].th, NULL);
  pthread_barrier_destroy(&G.bar);
  /* The threads are gone, and their caches with them. */
  CHECK(hmb_pool_trim(pool, 0) == 0, "");
  CHECK(hmb_pool_memory_stats(pool, &ms) == 0, "");
  CHECK(ms.cached_bytes == 0, "%" PRId64 " bytes cached after trim(0)",
        ms.cached_bytes);
  CHECK(atomic_load(&G.roots_made) == atomic_load(&G.roots_closed),
        "close handlers: %" PRIu64 " roots made, %" PRIu64 " closed",
        atomic_load(&G.roots_made), atomic_load(&G.roots_closed));
  hmb_pool_stats_t st;
  CHECK(hmb_pool_stats(pool, &st) == 0, "");
  atomic_fetch_add(&T.pressure_calls, st.pressure_calls);
  pthread_mutex_lock(&G.pool_mu);
  rc = hmb_pool_destroy(pool);
  G.pool = NULL;
  pthread_mutex_unlock(&G.pool_mu);
  if (rc)
    FAIL("destroying the pool at the end of the round: %s", hmb_errname(rc));
  if (atomic_load(&G.errors))
    FAIL("the library logged an error: %s", G.first_error);
  free(G.pinned_region);
  G.pinned_region = NULL;
  bump(&T.rounds);
  if (O.verbose)
    fprintf(stderr,
            "round %" PRIu64 ": limit %zu %s faults %u cap %d pressure %d "
            "limits %d: %" PRIu64 " steps so far\n",
            round, G.rc.limit, G.rc.custom ? "custom" : "built-in",
            G.rc.fail_per_1024, G.rc.capped, G.rc.pressure, G.rc.limit_changes,
            atomic_load(&T.steps));
}

/* ---- the watchdog
 * ------------------------------------------------------------------- */

static void *watchdog_main(void *arg) {
  (void)arg;
  uint64_t last = atomic_load(&G.progress);
  int still = 0;
  for (;;) {
    sleep(1);
    uint64_t now = atomic_load(&G.progress);
    if (now != last) {
      last = now;
      still = 0;
      continue;
    }
    if (++still < O.watchdog_s)
      continue;
    pthread_mutex_lock(&fail_mu);
    fprintf(stderr,
            "\nhmb_storm: FAILED: no step for %d s (a hang); seed %" PRIu64
            ", round %" PRIu64 "\n",
            O.watchdog_s, O.seed, G.rc.round);
    for (int i = 0; i < G.nthr; i++)
      fprintf(stderr, "  thread %d: step %" PRIu64 ", in %s\n", i,
              atomic_load(&G.thr[i].at), op_names[atomic_load(&G.thr[i].op)]);
    if (pthread_mutex_trylock(&G.pool_mu) == 0) {
      describe_to(stderr, G.pool);
      pthread_mutex_unlock(&G.pool_mu);
    }
    print_replay(stderr);
    fflush(stderr);
    _exit(1);
  }
  return NULL;
}

/* ---- main
 * -----------------------------------------------------------------------------
 */

static void usage(void) {
  fprintf(
      stderr,
      "usage: hmb_storm [--threads N] [--seed S] [--seconds T] [--ops N]\n"
      "                 [--quick] [--round-ops N] [--barrier K]\n"
      "                 [--check-every N] [--start-round R]\n"
      "                 [--watchdog S] [--avoid-known] [--avoid LIST]\n"
      "                 [--verbose]\n"
      "  --threads N      worker threads (default 8), plus one grabber\n"
      "  --seed S         seed (default: from the clock; printed)\n"
      "  --seconds T      run for T seconds\n"
      "  --ops N          steps per worker in all (default 20000)\n"
      "  --quick          CI size: 4 threads, 100000 steps each, rounds of "
      "1000,\n                   barrier every 50\n"
      "  --round-ops N    steps per worker per round (default 2000)\n"
      "  --barrier K      steps between barriers (default 100)\n"
      "  --check-every N  hmb_pool_check(0) every N steps (default 1; 0: "
      "never)\n"
      "  --start-round R  begin at round R (replays a failing round)\n"
      "  --watchdog S     fail when no step is made for S seconds\n"
      "  --avoid-known    steer clear of the findings of docs/fuzzing.md\n"
      "                   (all fixed; the default walks into them): no\n"
      "                   pinned alignment above the region's granule,\n"
      "                   no realloc of pinned blocks or of blocks other\n"
      "                   threads held, backend faults only in solo tasks,\n"
      "                   no realloc while its runner is destroyed\n"
      "  --avoid LIST     only some of them: pinned-align, unborrow,\n"
      "                   shared-realloc, realloc-destroy (comma-\n"
      "                   separated); none: walk into all of them\n"
      "  HMB_STRESS_THREADS, HMB_STRESS_OPS: default threads and steps\n");
  exit(2);
}

int main(int argc, char **argv) {
  O.argv0 = argv[0];
  O.threads = 8;
  O.round_ops = 2000;
  O.barrier = 100;
  O.check_every = 1;
  O.watchdog_s = sts_sanitized() ? 240 : 60;
  O.seed = sts_mix((uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32));
  /* Every known finding is fixed: runs walk into all of them unless told
   * otherwise (--avoid). */
  O.avoid = 0;
  /* Stress sizes from the environment, as for the other stress tests. */
  const char *env = getenv("HMB_STRESS_THREADS");
  if (env && atoi(env) > 0)
    O.threads = atoi(env);
  env = getenv("HMB_STRESS_OPS");
  if (env && atol(env) > 0)
    O.ops = atol(env), O.ops_given = 1;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "--quick")) {
      O.quick = 1;
    } else if (!strcmp(a, "--avoid-known")) {
      O.avoid = AVOID_ALL;
    } else if (!strcmp(a, "--avoid") && v) {
      O.avoid = 0;
      for (int k = 0; k < NAVOID; k++)
        if (strstr(v, avoid_names[k]))
          O.avoid |= 1u << k;
      if (!O.avoid && strcmp(v, "none"))
        usage();
      i++;
    } else if (!strcmp(a, "--verbose")) {
      O.verbose = 1;
    } else if (!v) {
      usage();
    } else if (!strcmp(a, "--threads")) {
      O.threads = atoi(v), i++;
    } else if (!strcmp(a, "--seed")) {
      O.seed = strtoull(v, NULL, 0), i++;
    } else if (!strcmp(a, "--seconds")) {
      O.seconds = atof(v), O.seconds_given = 1, i++;
    } else if (!strcmp(a, "--ops")) {
      O.ops = atol(v), O.ops_given = 1, i++;
    } else if (!strcmp(a, "--round-ops")) {
      O.round_ops = atol(v), i++;
    } else if (!strcmp(a, "--barrier")) {
      O.barrier = atol(v), i++;
    } else if (!strcmp(a, "--check-every")) {
      O.check_every = atol(v), i++;
    } else if (!strcmp(a, "--start-round")) {
      O.start_round = atol(v), i++;
    } else if (!strcmp(a, "--watchdog")) {
      O.watchdog_s = atoi(v), i++;
    } else {
      usage();
    }
  }
  if (O.quick) {
    if (O.threads == 8)
      O.threads = 4;
    if (!O.ops_given && !O.seconds_given)
      O.ops = 100000, O.ops_given = 1;
    if (O.round_ops == 2000)
      O.round_ops = 1000;
    if (O.barrier == 100)
      O.barrier = 50;
  }
  if (!O.ops_given && !O.seconds_given)
    O.ops = 20000;
  if (O.threads < 1 || O.threads > MAX_THREADS || O.round_ops < 1 ||
      O.barrier < 1 || O.check_every < 0 || O.watchdog_s < 1)
    usage();
  if (O.ops_given && O.ops < O.round_ops)
    O.round_ops = O.ops;
  for (int i = 0; i < NWEIGHTS; i++)
    weights_total += weights[i].w;
  G.nthr = O.threads + 1;
  G.nslots = 2 * O.threads + 3;
  G.slots = calloc((size_t)G.nslots, sizeof *G.slots);
  G.recs = calloc(MAX_RUNNERS, sizeof *G.recs);
  if (!G.slots || !G.recs)
    return 1;
  for (int i = 0; i < G.nslots; i++) {
    pthread_mutex_init(&G.slots[i].life, NULL);
    pthread_rwlock_init(&G.slots[i].rw, NULL);
  }
  pthread_mutex_init(&G.pool_mu, NULL);
  pthread_mutex_init(&G.xmu, NULL);
  pthread_mutex_init(&G.smu, NULL);
  pthread_mutex_init(&G.lmu, NULL);
  pthread_mutex_init(&G.pmu, NULL);
  pthread_mutex_init(&G.logmu, NULL);
  printf("hmb_storm: seed %" PRIu64 ", %d threads + grabber, %s, rounds of "
         "%ld steps, barrier every %ld, check every %ld step(s)%s\n",
         O.seed, O.threads, O.seconds_given ? "timed" : "counted", O.round_ops,
         O.barrier, O.check_every,
         O.avoid == AVOID_ALL ? ", known findings avoided"
         : O.avoid            ? ", some known findings avoided"
                              : "");
  fflush(stdout);
  pthread_t wd;
  pthread_create(&wd, NULL, watchdog_main, NULL);
  pthread_detach(wd);
  uint64_t t0 = sts_now_ns();
  if (O.seconds_given)
    G.deadline_ns = t0 + (uint64_t)(O.seconds * 1e9);
  uint64_t round = (uint64_t)O.start_round;
  long done = 0;
  for (;;) {
    if (O.ops_given && done >= O.ops)
      break;
    if (O.seconds_given && sts_now_ns() >= G.deadline_ns)
      break;
    if (O.ops_given && O.ops - done < O.round_ops)
      O.round_ops = O.ops - done;
    round_run(round++);
    done += O.round_ops;
    if (atomic_load(&G.stop))
      break;
  }
  double secs = (double)(sts_now_ns() - t0) / 1e9;
  uint64_t steps = atomic_load(&T.steps);
  printf("hmb_storm: PASSED: seed %" PRIu64 ", %" PRIu64 " rounds, %" PRIu64
         " operations (%d threads) in %.1f s = %.0f ops/s\n",
         O.seed, atomic_load(&T.rounds), steps, O.threads, secs,
         secs > 0 ? (double)steps / secs : 0.0);
  printf("  checks: %" PRIu64 " hmb_pool_check(0) (every %ld step(s)), %" PRIu64
         " quiescent barriers, %" PRIu64 " refused pool destroys\n",
         atomic_load(&T.checks), O.check_every, atomic_load(&T.barriers),
         atomic_load(&T.quiescent_destroys));
  printf("  waits in the pool %" PRIu64 " (%" PRIu64
         " granted); timeouts: %" PRIu64 " start, %" PRIu64 " borrow, %" PRIu64
         " grow; %" PRIu64 " HMB_ELIMIT, %" PRIu64 " HMB_ETOOBIG\n",
         atomic_load(&T.waits), atomic_load(&T.waits_granted),
         atomic_load(&T.start_timeouts), atomic_load(&T.borrow_timeouts),
         atomic_load(&T.grow_timeouts), atomic_load(&T.elimit),
         atomic_load(&T.etoobig));
  printf("  faults injected %" PRIu64 " (HMB_ENOMEM seen %" PRIu64
         "); cancels %" PRIu64 "; runners detached with live buffers %" PRIu64
         "; limit changes %" PRIu64 "\n",
         atomic_load(&T.faults), atomic_load(&T.enomem),
         atomic_load(&T.cancels), atomic_load(&T.detached),
         atomic_load(&T.limit_changes));
  printf("  pressure rounds %" PRIu64 " (buffers closed by handlers %" PRIu64
         "); grabber holds %" PRIu64 " (%" PRIu64 " bytes); hand-overs %" PRIu64
         "; reallocs %" PRIu64 " (%" PRIu64 " moved)\n",
         atomic_load(&T.pressure_calls), atomic_load(&T.pressure_closed),
         atomic_load(&T.grabs), atomic_load(&T.grab_bytes),
         atomic_load(&T.handoffs), atomic_load(&T.reallocs),
         atomic_load(&T.realloc_moves));
  printf("  at barriers: held <= %.3f x limit; physical + cached <= %.3f x "
         "limit (built-in rounds)\n",
         (double)atomic_load(&T.max_over_milli) / 1000.0,
         (double)atomic_load(&T.max_phys_milli) / 1000.0);
  return 0;
}
