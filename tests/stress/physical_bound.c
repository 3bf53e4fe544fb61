/*
 * physical_bound.c - the pool's physical memory against hmb/stats.h, with
 * the warm cache on (the default pool configuration), and the exactness of
 * every counter at rest after a multi-threaded run.
 *
 * The bound checked: with L the limit, O the over-commit (held - limit, or
 * 0), C the cached bytes and, for each live block of s bytes with prefix p,
 * R(s, p) = sts_phys_bound(s, p) - s (the prefix, the class rounding and
 * the page rounding; storm_support.h),
 *   pageable_physical + cached_bytes <= L + O + sum R(s, p),
 *   live <= pageable_physical <= sum (s + R(s, p)),
 *   C <= cache_cap == max(0, L - held) whenever no grant is pending.
 * hmb/stats.h states the same bound without the class rounding; the
 * difference is measured and printed here, and shown failing in
 * physical_findings.c.
 *
 * Instants. The memory counters are exact only while no allocation or close
 * is in flight, so the threads of a scenario take part in a sequence count:
 * odd while a thread may move memory, even while it sleeps, waits for its
 * turn or is blocked in the pool (the wait hook's BEGIN and END flip it). A
 * monitor takes a snapshot between two equal, even readings of every count:
 * nothing moved meanwhile, so the snapshot is exact, although the other
 * threads keep going before and after. A grant made to a blocked thread by
 * another's return lowers the room before the blocked thread has given
 * cache back (it does, before it uses the budget); such snapshots are
 * recognised (fewer requests queued than threads blocked) and checked for
 * the total bound only.
 *
 * Scenarios:
 *   (a) a deep consumer backlog: producers start runners, allocate blocks of
 *       256 KiB .. 8 MiB, finish the runner and queue the blocks (their
 *       budget returns as they close); a slow consumer closes them;
 *   (b) the same with another thread trimming the cache all the while;
 *   (c) hmb_pool_set_limit() shrinking while blocks are cached: after each
 *       call, cached_bytes <= cache_cap == max(0, limit - held);
 *   (d) an idle runner after a burst: its spare is budget too, so the cache
 *       keeps at most limit - held;
 *   (e) exactness: threads allocate and free through one shared runner and
 *       their own; once they stop every usage counter equals their
 *       bookkeeping, and everything is 0 once closed; peaks lie between the
 *       single-threaded phase's (exact) peak and peak held.
 * Sizes: HMB_PHYS_BLOCKS (blocks produced in (a)/(b); default 1200, 500
 * under sanitizers) and HMB_PHYS_OPS (operations per thread in (e); default
 * 40000, 5000 under sanitizers). HMB_TEST_SEED replays a seed.
 */
#define _POSIX_C_SOURCE 200809L
#include <inttypes.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "hmb.h"
#include "storm_support.h"

#define KIB ((size_t)1024)
#define MIB ((size_t)1024 * 1024)
#define MS INT64_C(1000000)
#define PREFIX ((size_t)64) /* the default alignment's prefix */

static uint64_t seed;

/* cmocka's assertions jump back into the test, which only the thread that
 * runs it may do: the other threads check with this and abort. */
#define TCHECK(c)                                                              \
  do {                                                                         \
    if (!(c)) {                                                                \
      fprintf(stderr, "physical_bound.c:%d: %s (seed %" PRIu64 ")\n",          \
              __LINE__, #c, seed);                                             \
      abort();                                                                 \
    }                                                                          \
  } while (0)

static long env_long(const char *name, long def) {
  const char *v = getenv(name);
  long n = v ? atol(v) : def;
  return n > 0 ? n : def;
}

static void snooze_us(long us) {
  struct timespec ts = {us / 1000000, (us % 1000000) * 1000L};
  nanosleep(&ts, NULL);
}

static void assert_sound(hmb_pool_t *pool, unsigned flags) {
  char why[256];
  int rc = hmb_pool_check(pool, flags, why, sizeof why);
  if (rc)
    print_message("hmb_pool_check: %s\n", why);
  assert_int_equal(rc, 0);
}

static hmb_runner_t *runner(hmb_pool_t *pool, size_t estimate,
                            int64_t borrow_timeout) {
  hmb_runner_config_t c;
  hmb_runner_config_init(&c);
  c.estimate = estimate;
  c.borrow_timeout_ns = borrow_timeout;
  hmb_runner_t *r = NULL;
  TCHECK(hmb_runner_create(pool, &c, &r) == 0); /* from any thread */
  return r;
}

/* ---- the sequence counts ------------------------------------------------- */

enum { MAX_ACTORS = 8 };

static struct {
  _Atomic uint64_t seq[MAX_ACTORS]; /* odd: may move memory */
  _Atomic int blocked[MAX_ACTORS];  /* inside a wait of the pool */
  int n;
} act;

static _Thread_local int tl_actor = -1;

static void act_on(void) {
  atomic_fetch_add(&act.seq[tl_actor], 1);
  atomic_thread_fence(memory_order_seq_cst);
}
static void act_off(void) {
  atomic_fetch_add(&act.seq[tl_actor], 1);
}

static void on_wait(void *user, const hmb_wait_event_t *ev) {
  (void)user;
  if (tl_actor < 0)
    return;
  if (ev->phase == HMB_WAIT_BEGIN) {
    atomic_store(&act.blocked[tl_actor], 1);
    act_off();
  } else {
    act_on();
    atomic_store(&act.blocked[tl_actor], 0);
  }
}

/* What the live blocks of a scenario add up to (written while active). */
static struct { _Atomic int64_t live, blocks, bound, stated; } book;

static void book_add(size_t s, int sign) {
  atomic_fetch_add(&book.live, sign * (int64_t)s);
  atomic_fetch_add(&book.blocks, sign);
  atomic_fetch_add(&book.bound, sign * (int64_t)sts_phys_bound(s, PREFIX));
  atomic_fetch_add(&book.stated, sign * (int64_t)sts_phys_stated(s, PREFIX));
}

/* The figures of the monitor. */
typedef struct figures {
  long samples, exact, torn, pending;
  long pending_above; /* pending a fit, with the cache above limit - held */
  int64_t min_stated_margin; /* least room left under stats.h's term */
  double max_phys_ratio;     /* (physical + cached) / limit */
  double max_over_ratio;     /* held / limit */
  double max_bound_use;      /* (physical + cached) / the bound */
  int64_t max_round;         /* physical - live, at its largest */
  int64_t max_cached, max_held;
} figures_t;

/* One snapshot between two equal, even readings of every count; 1 if it
 * was taken and checked. A broken bound aborts (the other threads of the
 * scenario cannot be stopped from here). */
static int sample(hmb_pool_t *pool, figures_t *f) {
  uint64_t s1[MAX_ACTORS];
  f->samples++;
  for (int i = 0; i < act.n; i++) {
    s1[i] = atomic_load(&act.seq[i]);
    if (s1[i] & 1)
      return 0;
  }
  int blocked = 0;
  for (int i = 0; i < act.n; i++)
    blocked += atomic_load(&act.blocked[i]);
  hmb_pool_stats_t st;
  hmb_memory_stats_t ms;
  TCHECK((hmb_pool_stats(pool, &st)) == (0));
  TCHECK((hmb_pool_memory_stats(pool, &ms)) == (0));
  int64_t live = atomic_load(&book.live), bound = atomic_load(&book.bound);
  int64_t stated = atomic_load(&book.stated);
  atomic_thread_fence(memory_order_seq_cst);
  for (int i = 0; i < act.n; i++)
    if (atomic_load(&act.seq[i]) != s1[i]) {
      f->torn++;
      return 0;
    }
  f->exact++;
  int64_t L = st.limit, over = st.held > L ? st.held - L : 0;
  int64_t phys = ms.pageable_physical, c = ms.cached_bytes;
  /* Usage is exact here, and within the budget (R-I1). */
  TCHECK((st.live_bytes) == (live));
  if (live > st.held)
    fprintf(stderr, "live %" PRId64 " > held %" PRId64 "\n", live, st.held);
  TCHECK(live <= st.held);
  TCHECK((ms.pageable_live) == (live));
  TCHECK(phys >= live && phys <= bound);
  TCHECK(c >= 0);
  int pending = blocked != st.acquire_waiters + st.borrow_waiters;
  int64_t room = L - st.held > 0 ? L - st.held : 0;
  if (pending) {
    f->pending++;
    f->pending_above += c > room;
  } else {
    if (!(ms.cache_cap == room && c <= room))
      fprintf(stderr,
              "cache %" PRId64 ", cap %" PRId64 ", room %" PRId64
              " (blocked %d, waiters %d + %d)\n",
              c, ms.cache_cap, room, blocked, st.acquire_waiters,
              st.borrow_waiters);
    TCHECK((ms.cache_cap) == (room));
    TCHECK(c <= room);
  }
  int64_t rhs = L + over + (bound - live);
  if (phys + c > rhs)
    fprintf(stderr,
            "physical %" PRId64 " + cached %" PRId64 " > limit %" PRId64
            " + over %" PRId64 " + rounding %" PRId64 " (held %" PRId64
            ", live %" PRId64 ", cache cap %" PRId64 ", %d blocked, %d + %d "
            "queued)\n",
            phys, c, L, over, bound - live, st.held, live, ms.cache_cap,
            blocked, st.acquire_waiters, st.borrow_waiters);
  TCHECK(phys + c <= rhs);
  /* hmb/stats.h's own term: limit + over-commit + R, R stated per block. */
  int64_t stated_rhs = L + over + (stated - live);
  TCHECK(phys <= stated);
  TCHECK(phys + c <= stated_rhs);
  if (stated_rhs - (phys + c) < f->min_stated_margin)
    f->min_stated_margin = stated_rhs - (phys + c);
  double r = (double)(phys + c) / (double)L;
  if (r > f->max_phys_ratio)
    f->max_phys_ratio = r;
  r = (double)st.held / (double)L;
  if (r > f->max_over_ratio)
    f->max_over_ratio = r;
  r = (double)(phys + c) / (double)rhs;
  if (r > f->max_bound_use)
    f->max_bound_use = r;
  if (phys - live > f->max_round)
    f->max_round = phys - live;
  if (c > f->max_cached)
    f->max_cached = c;
  if (st.held > f->max_held)
    f->max_held = st.held;
  return 1;
}

static void print_figures(const char *what, int64_t limit, const figures_t *f) {
  print_message(
      "%s: limit %" PRId64 " MiB; %ld instants tried, %ld exact (%ld torn, "
      "%ld with a grant pending its cache fit, %ld of them with the cache "
      "above limit - held); max (physical + cached) / "
      "limit %.3f, max held / limit %.3f, max share of the bound %.3f; max "
      "rounding %" PRId64 " KiB; max cached %" PRId64 " KiB; least room under "
      "stats.h's term %" PRId64 " KiB\n",
      what, limit / (int64_t)MIB, f->samples, f->exact, f->torn, f->pending,
      f->pending_above, f->max_phys_ratio, f->max_over_ratio, f->max_bound_use,
      f->max_round / (int64_t)KIB, f->max_cached / (int64_t)KIB,
      f->min_stated_margin / (int64_t)KIB);
}

/* ---- (a), (b): a deep consumer backlog -------------------------------------
 */

enum { QCAP = 256 };

typedef struct backlog {
  hmb_pool_t *pool;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  hmb_buffer_t *q[QCAP];
  int head, n;
  int64_t qbytes, max_qbytes;
  long target, produced, consumed;
  int producers_left;
  _Atomic int trimming;
  _Atomic long start_timeouts, borrow_timeouts, trims, idle_overcommits;
  int64_t limit;
} backlog_t;

static size_t block_size(uint64_t *rng) {
  /* 256 KiB .. 8 MiB: a power of two and a little more (so that blocks of
   * one size class recur and the cache has hits), now and then any size. */
  unsigned sh = (unsigned)sts_below(rng, 6); /* 256 KiB << 0..5 */
  size_t lo = (256 * KIB) << sh;
  if (sts_below(rng, 4) == 0)
    return lo + sts_below(rng, lo);
  return lo + sts_below(rng, lo / 16);
}

typedef struct producer_arg {
  backlog_t *b;
  int actor;
} producer_arg_t;

static void *producer(void *arg) {
  producer_arg_t *pa = arg;
  backlog_t *b = pa->b;
  tl_actor = pa->actor;
  uint64_t rng = sts_stream(seed, 1, (uint64_t)pa->actor);
  for (;;) {
    pthread_mutex_lock(&b->mu);
    int done = b->produced >= b->target;
    int full = b->qbytes > 3 * b->limit || b->n > QCAP - 8;
    pthread_mutex_unlock(&b->mu);
    if (done)
      break;
    if (full) {
      snooze_us(200);
      continue;
    }
    int k = 1 + (int)sts_below(&rng, 3);
    size_t sizes[3], sum = 0;
    for (int i = 0; i < k; i++)
      sum += sizes[i] = block_size(&rng);
    /* Estimates off both ways: some tasks borrow, some return early. */
    size_t est = sts_below(&rng, 2) ? sum : sts_below(&rng, 2 * sum + 1);
    hmb_runner_t *r = runner(b->pool, est, 20 * MS);
    hmb_buffer_t *got[3];
    int n = 0;
    act_on();
    int rc = hmb_runner_start(r, 20 * MS);
    if (rc == HMB_ETIMEDOUT) {
      atomic_fetch_add(&b->start_timeouts, 1);
    } else {
      TCHECK((rc) == (0));
      hmb_runner_stats_t rs;
      TCHECK((hmb_runner_stats(r, &rs)) == (0));
      if (rs.progress && rs.held < (int64_t)est)
        atomic_fetch_add(&b->idle_overcommits, 1);
      for (int i = 0; i < k; i++) {
        hmb_buffer_t *x = NULL;
        rc = hmb_runner_alloc(r, sizes[i], 0, &x);
        if (rc == HMB_ETIMEDOUT) {
          atomic_fetch_add(&b->borrow_timeouts, 1);
          break;
        }
        TCHECK((rc) == (0));
        unsigned char *d = hmb_buffer_data(x);
        d[0] = d[sizes[i] - 1] = (unsigned char)sizes[i];
        book_add(sizes[i], 1);
        got[n++] = x;
      }
      size_t ret;
      TCHECK((hmb_runner_finish(r, 0, &ret)) == (0));
    }
    hmb_runner_destroy(r); /* detached: the queued blocks keep it */
    act_off();
    pthread_mutex_lock(&b->mu);
    for (int i = 0; i < n; i++) {
      b->q[(b->head + b->n++) % QCAP] = got[i];
      b->qbytes += (int64_t)hmb_buffer_size(got[i]);
    }
    if (b->qbytes > b->max_qbytes)
      b->max_qbytes = b->qbytes;
    b->produced += n;
    pthread_cond_broadcast(&b->cv);
    pthread_mutex_unlock(&b->mu);
  }
  pthread_mutex_lock(&b->mu);
  b->producers_left--;
  pthread_cond_broadcast(&b->cv);
  pthread_mutex_unlock(&b->mu);
  return NULL;
}

static void *consumer(void *arg) {
  backlog_t *b = arg;
  tl_actor = 0;
  for (;;) {
    pthread_mutex_lock(&b->mu);
    while (b->n == 0 && b->producers_left > 0)
      pthread_cond_wait(&b->cv, &b->mu);
    if (b->n == 0) {
      pthread_mutex_unlock(&b->mu);
      break;
    }
    hmb_buffer_t *x = b->q[b->head];
    b->head = (b->head + 1) % QCAP;
    b->n--;
    b->qbytes -= (int64_t)hmb_buffer_size(x);
    pthread_mutex_unlock(&b->mu);
    /* Slow, so that the backlog grows, with a fast spell now and then that
     * drains it below the limit and lets the cache fill. */
    snooze_us(b->consumed % 300 < 200 ? 300 : 0);
    act_on();
    size_t s = hmb_buffer_size(x);
    unsigned char *d = hmb_buffer_data(x);
    TCHECK(d[0] == (unsigned char)s && d[s - 1] == (unsigned char)s);
    book_add(s, -1);
    TCHECK((hmb_buffer_close(x)) == (0));
    act_off();
    pthread_mutex_lock(&b->mu);
    b->consumed++;
    pthread_mutex_unlock(&b->mu);
  }
  return NULL;
}

static void *trimmer(void *arg) {
  backlog_t *b = arg;
  tl_actor = 3;
  uint64_t rng = sts_stream(seed, 2, 3);
  while (atomic_load(&b->trimming)) {
    snooze_us(500);
    act_on();
    size_t keep = sts_below(&rng, 2) ? 0 : sts_below(&rng, (uint64_t)b->limit);
    TCHECK((hmb_pool_trim(b->pool, keep)) == (0));
    act_off();
    atomic_fetch_add(&b->trims, 1);
  }
  return NULL;
}

static hmb_pool_t *default_pool(size_t limit) {
  hmb_pool_config_t cfg;
  hmb_pool_config_init(&cfg); /* warm cache on, huge pages allowed */
  cfg.limit = limit;
  cfg.wait_hook = on_wait;
  cfg.long_wait_ns = -1;
  hmb_pool_t *pool = NULL;
  assert_int_equal(hmb_pool_create(&cfg, &pool), 0);
  return pool;
}

/* One run of the scenario on a fresh pool; the exact samples it saw are
 * added to *f, and its deepest backlog is returned. */
static int64_t backlog_round(int with_trimmer, figures_t *fp) {
  backlog_t b;
  memset(&b, 0, sizeof b);
  b.limit = 32 * (int64_t)MIB;
  b.pool = default_pool((size_t)b.limit);
  pthread_mutex_init(&b.mu, NULL);
  pthread_cond_init(&b.cv, NULL);
  b.target = env_long("HMB_PHYS_BLOCKS", sts_sanitized() ? 500 : 1200);
  b.producers_left = 2;
  memset(&act, 0, sizeof act);
  memset(&book, 0, sizeof book);
  act.n = with_trimmer ? 4 : 3; /* 0 consumer, 1-2 producers, 3 trimmer */
  atomic_store(&b.trimming, with_trimmer);
  pthread_t th[4];
  producer_arg_t pa[2] = {{&b, 1}, {&b, 2}};
  assert_int_equal(pthread_create(&th[0], NULL, consumer, &b), 0);
  for (int i = 0; i < 2; i++)
    assert_int_equal(pthread_create(&th[1 + i], NULL, producer, &pa[i]), 0);
  if (with_trimmer)
    assert_int_equal(pthread_create(&th[3], NULL, trimmer, &b), 0);
  figures_t f = *fp;
  for (;;) {
    pthread_mutex_lock(&b.mu);
    int done = b.producers_left == 0 && b.n == 0 && b.consumed == b.produced;
    pthread_mutex_unlock(&b.mu);
    if (done)
      break;
    sample(b.pool, &f);
    snooze_us(20);
  }
  for (int i = 0; i < 3; i++)
    pthread_join(th[i], NULL);
  atomic_store(&b.trimming, 0);
  if (with_trimmer)
    pthread_join(th[3], NULL);
  print_figures(with_trimmer ? "(b) backlog + trims" : "(a) backlog", b.limit,
                &f);
  print_message("    %ld blocks, deepest backlog %" PRId64 " MiB (%.2f x "
                "limit), %ld start and %ld borrow timeouts, %ld idle starts "
                "granted less than asked, %ld trims\n",
                b.produced, b.max_qbytes / (int64_t)MIB,
                (double)b.max_qbytes / (double)b.limit,
                atomic_load(&b.start_timeouts), atomic_load(&b.borrow_timeouts),
                atomic_load(&b.idle_overcommits), atomic_load(&b.trims));
  *fp = f;
  hmb_memory_stats_t ms;
  assert_int_equal(hmb_pool_memory_stats(b.pool, &ms), 0);
  print_message("    cache: %" PRIu64 " hits, %" PRIu64 " misses, %" PRIu64
                " rejects, %" PRIu64 " KiB given back\n",
                ms.cache_hits, ms.cache_misses, ms.cache_rejects,
                ms.cache_trimmed / KIB);
  /* The cache kept blocks and had to give them back. (Hits are rare here:
   * a grant that takes the room makes the cache give its blocks back before
   * the allocation that follows could reuse one; see docs/fuzzing.md.) */
  assert_true(ms.cache_trimmed > 0 && ms.cache_misses > 0);
  /* At rest: nothing live, the cache within the whole limit, then empty. */
  hmb_pool_stats_t st;
  assert_sound(b.pool, HMB_CHECK_QUIESCENT);
  assert_int_equal(hmb_pool_stats(b.pool, &st), 0);
  assert_int_equal(hmb_pool_memory_stats(b.pool, &ms), 0);
  assert_int_equal(st.held, 0);
  assert_int_equal(st.runners, 0);
  assert_int_equal(ms.pageable_live, 0);
  assert_int_equal(ms.pageable_physical, 0);
  assert_int_equal(ms.cache_cap, b.limit);
  assert_true(ms.cached_bytes <= b.limit);
  assert_int_equal(hmb_pool_trim(b.pool, 0), 0);
  assert_int_equal(hmb_pool_memory_stats(b.pool, &ms), 0);
  assert_int_equal(ms.cached_bytes, 0);
  assert_int_equal(hmb_pool_destroy(b.pool), 0);
  pthread_cond_destroy(&b.cv);
  pthread_mutex_destroy(&b.mu);
  return b.max_qbytes > b.limit ? b.max_qbytes : 0;
}

/* The figures mean something only if the backlog was deep and exact
 * instants were seen while it was. An exact instant needs every thread of
 * the scenario between two operations at once, which a loaded machine (or
 * a sanitizer) can make rare: the scenario runs again, on a fresh pool,
 * until ten were seen (at most five runs). Every run checks the bounds at
 * every sample it takes. */
static void backlog_run(int with_trimmer) {
  figures_t f;
  memset(&f, 0, sizeof f);
  f.min_stated_margin = INT64_MAX;
  int deep = 0, runs = 0;
  while (runs < 5 && (f.exact < 10 || !deep)) {
    deep |= backlog_round(with_trimmer, &f) > 0;
    runs++;
  }
  print_message("    %d run(s), %ld exact samples in all\n", runs, f.exact);
  assert_true(f.exact >= 10);
  assert_true(deep);
}

static void backlog_bound(void **state) {
  (void)state;
  backlog_run(0);
}

static void backlog_bound_with_trims(void **state) {
  (void)state;
  backlog_run(1);
}

/* ---- (c) shrinking the limit while blocks are cached
 * -------------------------- */

static void cache_given_back_on_shrink(void **state) {
  (void)state;
  size_t L = 32 * MIB;
  hmb_pool_t *pool = default_pool(L);
  /* One task keeps 4 MiB held (live), another leaves its blocks cached. */
  hmb_runner_t *keep = runner(pool, 4 * MIB, 0);
  assert_int_equal(hmb_runner_start(keep, 0), 0);
  hmb_buffer_t *k = NULL;
  assert_int_equal(hmb_runner_alloc(keep, 4 * MIB, 0, &k), 0);
  hmb_runner_t *r = runner(pool, 24 * MIB, 0);
  assert_int_equal(hmb_runner_start(r, 0), 0);
  hmb_buffer_t *b[8];
  for (int i = 0; i < 8; i++)
    assert_int_equal(hmb_runner_alloc(r, (1 + (size_t)i % 3) * MIB, 0, &b[i]),
                     0);
  size_t ret;
  assert_int_equal(hmb_runner_finish(r, 0, &ret), 0);
  for (int i = 0; i < 8; i++)
    assert_int_equal(hmb_buffer_close(b[i]), 0);
  hmb_runner_destroy(r);
  hmb_memory_stats_t ms;
  hmb_pool_stats_t st;
  assert_int_equal(hmb_pool_memory_stats(pool, &ms), 0);
  assert_true(ms.cached_bytes > 8 * (int64_t)MIB);
  print_message("(c) cached %" PRId64 " KiB with 4 MiB held, limit 32 MiB\n",
                ms.cached_bytes / (int64_t)KIB);
  static const size_t limits[] = {24 * MIB, 16 * MIB, 9 * MIB + 12345, 6 * MIB,
                                  4 * MIB,  3 * MIB,  64 * MIB,        2 * MIB};
  for (size_t i = 0; i < sizeof limits / sizeof limits[0]; i++) {
    hmb_memory_stats_t before = ms;
    assert_int_equal(hmb_pool_set_limit(pool, limits[i]), 0);
    assert_int_equal(hmb_pool_stats(pool, &st), 0);
    assert_int_equal(hmb_pool_memory_stats(pool, &ms), 0);
    int64_t room = st.limit - st.held > 0 ? st.limit - st.held : 0;
    print_message("    limit %7zu KiB: cached %7" PRId64 " KiB, cap %7" PRId64
                  " KiB (limit - held %" PRId64 " KiB)\n",
                  limits[i] / KIB, ms.cached_bytes / (int64_t)KIB,
                  ms.cache_cap / (int64_t)KIB,
                  (st.limit - st.held) / (int64_t)KIB);
    assert_int_equal(ms.cache_cap, room);
    assert_true(ms.cached_bytes <= ms.cache_cap);
    /* What left the cache was given back to the OS, and nothing else. */
    assert_true(ms.cached_bytes <= before.cached_bytes);
    assert_int_equal(ms.cache_trimmed - before.cache_trimmed,
                     (uint64_t)(before.cached_bytes - ms.cached_bytes));
    assert_true(ms.pageable_physical + ms.cached_bytes <=
                st.limit + st.overcommitted +
                    (int64_t)(sts_phys_bound(4 * MIB, PREFIX) - 4 * MIB));
    assert_sound(pool, 0);
  }
  assert_int_equal(ms.cached_bytes, 0); /* held 4 MiB > limit 2 MiB */
  assert_int_equal(hmb_buffer_close(k), 0);
  hmb_runner_destroy(keep);
  assert_int_equal(hmb_pool_destroy(pool), 0);
}

/* ---- (d) an idle runner after a burst
 * ----------------------------------------- */

static void idle_runner_after_burst(void **state) {
  (void)state;
  size_t L = 16 * MIB;
  hmb_pool_t *pool = default_pool(L);
  hmb_runner_t *r = runner(pool, 2 * MIB, 0);
  assert_int_equal(hmb_runner_start(r, 0), 0);
  hmb_buffer_t *b[12];
  for (int i = 0; i < 12; i++)
    assert_int_equal(hmb_runner_alloc(r, 1 * MIB, 0, &b[i]), 0);
  for (int i = 0; i < 12; i++)
    assert_int_equal(hmb_buffer_close(b[i]), 0);
  /* The runner still runs and keeps its budget as spare: the cache may
   * use only what nobody holds. */
  hmb_pool_stats_t st;
  hmb_memory_stats_t ms;
  hmb_runner_stats_t rs;
  assert_int_equal(hmb_pool_stats(pool, &st), 0);
  assert_int_equal(hmb_pool_memory_stats(pool, &ms), 0);
  assert_int_equal(hmb_runner_stats(r, &rs), 0);
  print_message("(d) idle runner holds %" PRId64 " KiB spare; cached %" PRId64
                " KiB, cap %" PRId64 " KiB, limit - held %" PRId64
                " KiB; %" PRIu64 " blocks went to the OS\n",
                rs.spare / (int64_t)KIB, ms.cached_bytes / (int64_t)KIB,
                ms.cache_cap / (int64_t)KIB,
                (st.limit - st.held) / (int64_t)KIB, ms.cache_rejects);
  assert_int_equal(rs.live, 0);
  assert_int_equal(rs.spare, 12 * (int64_t)MIB);
  assert_int_equal(st.held, 12 * (int64_t)MIB);
  assert_int_equal(ms.cache_cap, st.limit - st.held);
  assert_true(ms.cached_bytes <= st.limit - st.held);
  assert_true(ms.cache_rejects > 0);
  assert_int_equal(ms.pageable_physical, 0);
  assert_true(rs.spare + ms.cached_bytes <= st.limit);
  /* A second burst on the same runner: from its spare, partly warm. */
  for (int i = 0; i < 12; i++)
    assert_int_equal(hmb_runner_alloc(r, 1 * MIB, 0, &b[i]), 0);
  assert_int_equal(hmb_pool_memory_stats(pool, &ms), 0);
  assert_int_equal(hmb_pool_stats(pool, &st), 0);
  assert_true(ms.pageable_physical + ms.cached_bytes <=
              st.limit + 12 * (int64_t)(sts_phys_bound(MIB, PREFIX) - MIB));
  for (int i = 0; i < 12; i++)
    assert_int_equal(hmb_buffer_close(b[i]), 0);
  /* Giving the spare back makes room; the cache does not grow by itself. */
  assert_int_equal(hmb_pool_memory_stats(pool, &ms), 0);
  int64_t cached = ms.cached_bytes;
  size_t ret = 0;
  assert_int_equal(hmb_runner_try_free(r, SIZE_MAX, &ret), 0);
  assert_int_equal(ret, 12 * MIB);
  assert_int_equal(hmb_pool_memory_stats(pool, &ms), 0);
  assert_int_equal(ms.cache_cap, (int64_t)L);
  assert_int_equal(ms.cached_bytes, cached);
  hmb_runner_destroy(r);
  assert_sound(pool, HMB_CHECK_QUIESCENT);
  assert_int_equal(hmb_pool_destroy(pool), 0);
}

/* ---- (e) every counter exact at rest after a multi-threaded run
 * --------------- */

enum { EX_THREADS = 4, EX_KEEP = 64 };

typedef struct ex_thread {
  int id;
  hmb_pool_t *pool;
  hmb_runner_t *shared, *own;
  pthread_barrier_t *bar;
  long ops;
  /* what it holds at the end, and its bookkeeping */
  hmb_buffer_t *keep[EX_KEEP];
  int nkeep;
  int64_t bytes_shared, bytes_own, bufs_shared, bufs_own;
  int64_t pageable, pinned;
  uint64_t allocs_shared, allocs_own;
} ex_thread_t;

static size_t ex_size(uint64_t *rng) {
  uint64_t k = sts_below(rng, 10);
  if (k < 5)
    return sts_below(rng, 4 * KIB);
  if (k < 9)
    return 4 * KIB + sts_below(rng, 200 * KIB);
  return 256 * KIB + sts_below(rng, 768 * KIB);
}

static void ex_account(ex_thread_t *t, hmb_buffer_t *b, int own, int sign) {
  int64_t s = (int64_t)hmb_buffer_size(b);
  if (own) {
    t->bytes_own += sign * s;
    t->bufs_own += sign;
  } else {
    t->bytes_shared += sign * s;
    t->bufs_shared += sign;
  }
  if (hmb_buffer_is_pinned(b))
    t->pinned += sign * s;
  else
    t->pageable += sign * s;
}

static void *ex_main(void *arg) {
  ex_thread_t *t = arg;
  uint64_t rng = sts_stream(seed, 5, (uint64_t)t->id);
  int owner[EX_KEEP];
  pthread_barrier_wait(t->bar);
  for (long i = 0; i < t->ops; i++) {
    if (t->nkeep == EX_KEEP || (t->nkeep && sts_below(&rng, 2))) {
      int j = (int)sts_below(&rng, (uint64_t)t->nkeep);
      ex_account(t, t->keep[j], owner[j], -1);
      TCHECK((hmb_buffer_close(t->keep[j])) == (0));
      t->keep[j] = t->keep[--t->nkeep];
      owner[j] = owner[t->nkeep];
      continue;
    }
    int own = (int)sts_below(&rng, 2);
    unsigned flags = sts_below(&rng, 4) == 0 ? HMB_ALLOC_PINNED : 0;
    hmb_buffer_t *b = NULL;
    assert_int_equal(
        hmb_runner_alloc(own ? t->own : t->shared, ex_size(&rng), flags, &b),
        0);
    if (own)
      t->allocs_own++;
    else
      t->allocs_shared++;
    ex_account(t, b, own, 1);
    owner[t->nkeep] = own;
    t->keep[t->nkeep++] = b;
  }
  return NULL;
}

static void counters_exact_at_rest(void **state) {
  (void)state;
  size_t region = 8 * MIB;
  void *base = aligned_alloc(4096, region);
  assert_non_null(base);
  hmb_pool_config_t cfg;
  hmb_pool_config_init(&cfg);
  cfg.limit = 1024 * MIB; /* nothing waits: the counters are the point */
  cfg.pinned_bytes = region;
  cfg.pinned_base = base;
  hmb_pool_t *pool = NULL;
  assert_int_equal(hmb_pool_create(&cfg, &pool), 0);
  hmb_runner_t *shared = runner(pool, 64 * MIB, 0);
  assert_int_equal(hmb_runner_start(shared, 0), 0);

  /* Single-threaded phase on the shared runner alone: peaks are exact. */
  uint64_t rng = sts_stream(seed, 6, 0);
  hmb_buffer_t *one[40];
  int64_t live = 0, peak = 0, pg = 0, pg_peak = 0, pn = 0, pn_peak = 0;
  for (int i = 0; i < 40; i++) {
    unsigned flags = i % 3 == 0 ? HMB_ALLOC_PINNED : 0;
    assert_int_equal(hmb_runner_alloc(shared, ex_size(&rng), flags, &one[i]),
                     0);
    int64_t s = (int64_t)hmb_buffer_size(one[i]);
    live += s;
    if (hmb_buffer_is_pinned(one[i]))
      pn += s;
    else
      pg += s;
    peak = live > peak ? live : peak;
    pg_peak = pg > pg_peak ? pg : pg_peak;
    pn_peak = pn > pn_peak ? pn : pn_peak;
    if (i % 4 == 3) { /* close one now and then: the peak is not the end */
      int64_t c = (int64_t)hmb_buffer_size(one[i - 1]);
      live -= c;
      if (hmb_buffer_is_pinned(one[i - 1]))
        pn -= c;
      else
        pg -= c;
      assert_int_equal(hmb_buffer_close(one[i - 1]), 0);
      one[i - 1] = NULL;
    }
  }
  hmb_pool_stats_t st;
  hmb_memory_stats_t ms;
  hmb_runner_stats_t rs;
  assert_int_equal(hmb_pool_stats(pool, &st), 0);
  assert_int_equal(hmb_pool_memory_stats(pool, &ms), 0);
  assert_int_equal(hmb_runner_stats(shared, &rs), 0);
  assert_true(pn_peak > 0); /* the region was used */
  assert_int_equal(st.live_bytes, live);
  assert_int_equal(st.peak_live_bytes, peak);
  assert_int_equal(rs.peak_live, peak);
  assert_int_equal(ms.pageable_peak, pg_peak);
  assert_int_equal(ms.pinned_peak, pn_peak);
  for (int i = 0; i < 40; i++)
    if (one[i])
      assert_int_equal(hmb_buffer_close(one[i]), 0);

  /* Multi-threaded phase: the shared runner and one runner each. */
  pthread_barrier_t bar;
  pthread_barrier_init(&bar, NULL, EX_THREADS);
  ex_thread_t t[EX_THREADS];
  memset(t, 0, sizeof t);
  pthread_t th[EX_THREADS];
  long ops = env_long("HMB_PHYS_OPS", sts_sanitized() ? 5000 : 40000);
  for (int i = 0; i < EX_THREADS; i++) {
    t[i].id = i;
    t[i].pool = pool;
    t[i].shared = shared;
    t[i].own = runner(pool, 8 * MIB, 0);
    assert_int_equal(hmb_runner_start(t[i].own, 0), 0);
    t[i].bar = &bar;
    t[i].ops = ops;
    assert_int_equal(pthread_create(&th[i], NULL, ex_main, &t[i]), 0);
  }
  for (int i = 0; i < EX_THREADS; i++)
    pthread_join(th[i], NULL);
  pthread_barrier_destroy(&bar);

  /* At rest: every usage counter is the threads' bookkeeping, exactly. */
  int64_t bytes = 0, bufs = 0, sh_bytes = 0, sh_bufs = 0, pageable = 0,
          pinned = 0;
  uint64_t sh_allocs = 40;
  for (int i = 0; i < EX_THREADS; i++) {
    bytes += t[i].bytes_shared + t[i].bytes_own;
    bufs += t[i].bufs_shared + t[i].bufs_own;
    sh_bytes += t[i].bytes_shared;
    sh_bufs += t[i].bufs_shared;
    sh_allocs += t[i].allocs_shared;
    pageable += t[i].pageable;
    pinned += t[i].pinned;
    assert_int_equal(hmb_runner_stats(t[i].own, &rs), 0);
    assert_int_equal(rs.live, t[i].bytes_own);
    assert_int_equal(rs.live_buffers, t[i].bufs_own);
    assert_int_equal(rs.allocations, t[i].allocs_own);
    assert_int_equal(rs.held, rs.live + rs.spare);
  }
  assert_sound(pool, HMB_CHECK_QUIESCENT);
  assert_int_equal(hmb_pool_stats(pool, &st), 0);
  assert_int_equal(hmb_pool_memory_stats(pool, &ms), 0);
  assert_int_equal(hmb_runner_stats(shared, &rs), 0);
  print_message("(e) %d threads x %ld operations: %" PRId64 " bytes in %" PRId64
                " buffers live (%" PRId64 " pinned); pool peak live %" PRId64
                " KiB, peak held %" PRId64 " KiB\n",
                EX_THREADS, ops, bytes, bufs, pinned,
                st.peak_live_bytes / (int64_t)KIB, st.peak_held / (int64_t)KIB);
  assert_int_equal(st.live_bytes, bytes);
  assert_int_equal(st.live_buffers, bufs);
  assert_int_equal(rs.live, sh_bytes);
  assert_int_equal(rs.live_buffers, sh_bufs);
  assert_int_equal(rs.allocations, sh_allocs);
  assert_int_equal(ms.pageable_live, pageable);
  assert_int_equal(ms.pinned_live, pinned);
  assert_true(ms.pageable_physical >= pageable);
  /* Peaks are not exact under concurrency: at least the exact one of the
   * single-threaded phase, at most peak held. */
  assert_true(st.peak_live_bytes >= peak && st.peak_live_bytes <= st.peak_held);
  assert_true(rs.peak_live >= peak && rs.peak_live <= rs.peak_held);
  assert_true(ms.pageable_peak >= pg_peak);
  /* The memory layer's peaks are not clamped the way the budget's are: a
   * fold error (stats.h: below (S - 1) x HMB_STATS_PEAK_STEP, S the shards
   * that changed: the workers', this thread's and the shared one) may put
   * the pinned peak above the region itself. */
  print_message("    pinned peak %" PRId64 " (single-threaded %" PRId64
                ", region %" PRId64 "); pageable peak %" PRId64
                " (single-threaded %" PRId64 ")\n",
                ms.pinned_peak, pn_peak, ms.pinned_capacity, ms.pageable_peak,
                pg_peak);
  assert_true(ms.pinned_peak >= pn_peak);
  assert_true(ms.pinned_peak <=
              ms.pinned_capacity + (EX_THREADS + 1) * HMB_STATS_PEAK_STEP);
  for (int i = 0; i < EX_THREADS; i++) {
    assert_int_equal(hmb_runner_stats(t[i].own, &rs), 0);
    assert_true(rs.peak_live <= rs.peak_held);
  }

  /* Everything closed: every counter is 0 (the budget of the runners stays
   * with them until they finish). */
  for (int i = 0; i < EX_THREADS; i++)
    for (int j = 0; j < t[i].nkeep; j++)
      assert_int_equal(hmb_buffer_close(t[i].keep[j]), 0);
  assert_int_equal(hmb_pool_stats(pool, &st), 0);
  assert_int_equal(hmb_pool_memory_stats(pool, &ms), 0);
  assert_int_equal(st.live_bytes, 0);
  assert_int_equal(st.live_buffers, 0);
  assert_int_equal(ms.pageable_live, 0);
  assert_int_equal(ms.pinned_live, 0);
  assert_int_equal(ms.pageable_physical, 0);
  assert_int_equal(hmb_runner_stats(shared, &rs), 0);
  assert_int_equal(rs.live, 0);
  assert_int_equal(rs.live_buffers, 0);
  assert_int_equal(rs.held, rs.spare);
  for (int i = 0; i < EX_THREADS; i++)
    hmb_runner_destroy(t[i].own);
  hmb_runner_destroy(shared);
  assert_sound(pool, HMB_CHECK_QUIESCENT);
  assert_int_equal(hmb_pool_stats(pool, &st), 0);
  assert_int_equal(st.held, 0);
  assert_int_equal(st.runners, 0);
  assert_int_equal(hmb_pool_destroy(pool), 0);
  free(base);
}

int main(void) {
  const char *s = getenv("HMB_TEST_SEED");
  seed = s ? strtoull(s, NULL, 0) : sts_mix((uint64_t)time(NULL));
  fprintf(stderr, "physical_bound: seed %" PRIu64 " (HMB_TEST_SEED replays)\n",
          seed);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(backlog_bound),
      cmocka_unit_test(backlog_bound_with_trims),
      cmocka_unit_test(cache_given_back_on_shrink),
      cmocka_unit_test(idle_runner_after_burst),
      cmocka_unit_test(counters_exact_at_rest),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
