/*
 * hmb_bench_scan.c - the scan scenario, run through the real library API.
 *
 * A split is a byte range of a columnar file. Its estimate is its length.
 * The reader reads the file footer first (sometimes outside the split, so
 * not covered by the estimate), then only the column chunks it keeps after
 * pruning. Real need = footer + kept chunks: usually far below the estimate,
 * above it for short splits whose footer lies outside.
 *
 * One scan task per split runs on an hmb executor. For each piece (the
 * footer, then each kept chunk) the task allocates a buffer, sleeps for the
 * storage latency plus size / per-stream bandwidth (the transfer into that
 * buffer), writes real bytes with a stamp, and hands the buffer to the
 * consumer. One consumer thread (the "copy to GPU" side) takes buffers in
 * split order (default; a split's buffers are consumed as they arrive, and
 * the next split is started only after the end of the previous one) or in
 * completion order, verifies the stamp, copies the bytes into a sink at a
 * paced rate and closes the buffer.
 *
 * Policies differ only in how the task uses the library (see bench_policy_t
 * and docs/BENCHMARKS.md); splits, threads, storage and consumer are the
 * same, and every pool has the default configuration with only its limit
 * set. Task priority is the reverse split index, so admission follows split
 * order and the head split is always first in line. `staged` is admitted
 * for its first piece only (hmb_task_desc_t::staged, initial = min(split
 * length, --staged-first-kib): the footer as a planner would guess it), and
 * once the footer is read declares its need and grows to it.
 *
 * A sampler thread (every 5 ms) reads the executor and the pool: the
 * over-commit bound I3 (held <= limit + beyond_stopped + beyond_running),
 * who holds the over-commit at its sampled peak, where the consumer waits
 * (the phase of the split it is blocked on), and every 10 ms the library's
 * own hmb_pool_check() (I1-I3, I5; in particular I2: at most one runner,
 * the progress runner, beyond the limit). hmb_pool_check() with
 * HMB_CHECK_QUIESCENT runs once more at the end.
 *
 * Invariants checked after every run (a failure makes the bench exit
 * nonzero): every task finished with status 0; every byte arrived with its
 * stamp; for runner-bound policies, peak live bytes <= limit + peak
 * over-committed (usage peaks within their documented fold error); peak
 * held <= limit + peak over-committed; every sampled check passed; the pool
 * is back at rest (held 0, live 0, no runner left), passes the quiescent
 * check and is destroyable; the default allocator is back to its live bytes
 * before the run; the oracle borrows only after a short idle start (R3) and
 * never waits to; the unlimited pool never waits.
 */
#define _POSIX_C_SOURCE 200809L

#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench_gpu.h"
#include "hmb.h"
#include "hmb_bench.h"

/*
 * Usage peaks (live bytes, pageable and pinned peaks) are folded from
 * per-thread shards, so with several threads a recorded peak may be off by
 * up to (S - 1) x HMB_STATS_PEAK_STEP, S being the shards with changes not
 * folded (hmb/stats.h, "Exactness"): for a runner at most HMB_STATS_SHARDS;
 * for the memory layer at most the threads that allocate or close (the
 * workers, the consumer and this thread) plus its shared shard. The pool's
 * peak held and over-commit are exact. Checks that compare a usage peak
 * with a budget figure allow that much.
 */
#define BENCH_PEAK_SLACK ((int64_t)(HMB_STATS_SHARDS - 1) * HMB_STATS_PEAK_STEP)
static int64_t bench_memory_peak_slack(const bench_opts_t *o) {
  int64_t s = (int64_t)o->threads + 2; /* + the consumer and this thread */
  if (s > HMB_STATS_MEMORY_SHARDS - 1)
    s = HMB_STATS_MEMORY_SHARDS - 1;
  s *= HMB_STATS_PEAK_STEP;
  return s > BENCH_PEAK_SLACK ? s : BENCH_PEAK_SLACK;
}

/* ---- scenario ------------------------------------------------------------ */

typedef struct bench_split {
  size_t len;    /* the estimate */
  size_t footer; /* footer bytes (read first) */
  int footer_outside;
  size_t need; /* footer + kept chunks */
  int nkept;
  size_t *kept; /* sizes of the kept chunks, in file order */
} bench_split_t;

struct bench_scenario {
  int n;
  bench_split_t *splits;
};

/* splitmix64: small, deterministic, good enough for a scenario. */
static uint64_t bench_rand(uint64_t *s) {
  uint64_t z = (*s += UINT64_C(0x9e3779b97f4a7c15));
  z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
  z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
  return z ^ (z >> 31);
}

static double bench_unit(uint64_t *s) {
  return (double)(bench_rand(s) >> 11) / 9007199254740992.0; /* [0, 1) */
}

/* Log-uniform in [lo, hi], rounded down to 4 KiB, at least 4 KiB. */
static size_t bench_loguniform(uint64_t *s, size_t lo, size_t hi) {
  if (hi <= lo)
    return lo < 4096 ? 4096 : lo;
  double v = exp(log((double)lo) + bench_unit(s) * log((double)hi / lo));
  size_t r = (size_t)v & ~(size_t)4095;
  return r < 4096 ? 4096 : r;
}

bench_scenario_t *bench_scenario_create(const bench_opts_t *o) {
  bench_scenario_t *sc = calloc(1, sizeof *sc);
  if (!sc)
    return NULL;
  sc->n = o->splits;
  sc->splits = calloc((size_t)o->splits, sizeof *sc->splits);
  if (!sc->splits) {
    free(sc);
    return NULL;
  }
  uint64_t st = o->seed;
  for (int i = 0; i < o->splits; i++) {
    bench_split_t *sp = &sc->splits[i];
    sp->len = bench_loguniform(&st, o->split_min, o->split_max);
    sp->footer = bench_loguniform(&st, o->footer_min, o->footer_max);
    sp->footer_outside =
        bench_unit(&st) < o->footer_outside || sp->footer >= sp->len;
    size_t data = sp->footer_outside ? sp->len : sp->len - sp->footer;
    size_t nchunks = (data + o->chunk - 1) / o->chunk;
    sp->kept = calloc(nchunks ? nchunks : 1, sizeof *sp->kept);
    if (!sp->kept) {
      bench_scenario_destroy(sc);
      return NULL;
    }
    sp->need = sp->footer;
    for (size_t c = 0; c < nchunks; c++) {
      size_t sz = c + 1 < nchunks ? o->chunk : data - c * o->chunk;
      if (bench_unit(&st) < o->keep && sz >= 64) {
        sp->kept[sp->nkept++] = sz;
        sp->need += sz;
      }
    }
  }
  return sc;
}

void bench_scenario_destroy(bench_scenario_t *sc) {
  if (!sc)
    return;
  for (int i = 0; i < sc->n && sc->splits; i++)
    free(sc->splits[i].kept);
  free(sc->splits);
  free(sc);
}

void bench_scenario_describe(const bench_scenario_t *sc,
                             bench_scenario_info_t *out) {
  memset(out, 0, sizeof *out);
  out->splits = sc->n;
  for (int i = 0; i < sc->n; i++) {
    const bench_split_t *sp = &sc->splits[i];
    out->total_estimate += sp->len;
    out->total_need += sp->need;
    if (sp->len > out->max_estimate)
      out->max_estimate = sp->len;
    if (sp->need > out->max_need)
      out->max_need = sp->need;
    if (sp->need > sp->len)
      out->need_above_estimate++;
    out->pieces += 1 + (uint64_t)sp->nkept;
  }
}

/* ---- one run ------------------------------------------------------------- */

/* A buffer on its way to the consumer, or a split's end marker (buf NULL). */
typedef struct bench_piece {
  struct bench_piece *next;
  hmb_buffer_t *buf;
  int split;
  int seq; /* 0: footer, k: k-th kept chunk */
  int end; /* end marker: the split's task has completed */
} bench_piece_t;

typedef struct bench_queue {
  bench_piece_t *head, *tail;
} bench_queue_t;

typedef struct bench_run bench_run_t;

typedef struct bench_slot {
  bench_run_t *run;
  int idx;
  bench_queue_t q;            /* split order: this split's pieces */
  hmb_buffer_t *reservation;  /* virtual: the budget-only buffer */
  int status;                 /* task status, set by the done callback */
  _Atomic uint64_t runner_id; /* its runner's id, once admitted */
  _Atomic int phase;          /* BENCH_PH_* */
  _Atomic int grown;          /* staged: its grow has returned */
} bench_slot_t;

struct bench_run {
  const bench_opts_t *o;
  const bench_scenario_t *sc;
  int policy;
  hmb_pool_t *pool;
  hmb_executor_t *ex;
  bench_slot_t *slots;
  bench_queue_t global; /* completion order: every piece */
  pthread_mutex_t mu;   /* queues, slot status and reservation */
  pthread_cond_t cv;

  _Atomic int64_t live, peak; /* bench-counted live data bytes */
  _Atomic uint64_t delivered, pieces, bad_stamps, splits_done;
  _Atomic uint64_t run_ns; /* time inside task functions, summed */
  _Atomic uint64_t failed;
  _Atomic int first_error;
  _Atomic uint64_t log_warnings;

  /* sampler: executor samples, the library's self-check, over-commit */
  _Atomic int stop;
  double running_sum;
  uint64_t samples;
  uint64_t checks;       /* hmb_pool_check calls that passed */
  char check_error[704]; /* the first broken check ("" if none) */
  int64_t sampled_over;  /* highest over-commit sampled ... */
  uint64_t over_runner;  /* ... the progress runner then ... */
  int64_t over_beyond_running, over_beyond_stopped; /* ... and the beyonds */
  _Atomic int cons_waits_for; /* split the consumer is blocked on, or -1 */
  double stall_ns[BENCH_PHASES];
  uint64_t grow_stall_samples; /* samples of the consumer's head in grow */
  uint64_t later_grown;        /* later splits already grown, summed */
  uint64_t t0;
  int progress;
};

static void bench_live_add(bench_run_t *r, int64_t d) {
  int64_t v = atomic_fetch_add(&r->live, d) + d;
  int64_t p = atomic_load(&r->peak);
  while (v > p && !atomic_compare_exchange_weak(&r->peak, &p, v)) {
  }
}

static void bench_push(bench_run_t *r, bench_slot_t *s, bench_piece_t *pc) {
  bench_queue_t *q = r->o->order == BENCH_ORDER_SPLIT ? &s->q : &r->global;
  pthread_mutex_lock(&r->mu);
  if (q->tail)
    q->tail->next = pc;
  else
    q->head = pc;
  q->tail = pc;
  pthread_cond_broadcast(&r->cv);
  pthread_mutex_unlock(&r->mu);
}

static uint64_t bench_stamp(int split, int seq) {
  return UINT64_C(0x686d625f62656e63) ^ ((uint64_t)split << 24) ^ (uint64_t)seq;
}

static unsigned char bench_fill_byte(int split, int seq) {
  return (unsigned char)(split * 31 + seq * 7 + 1);
}

/*
 * Read one piece: allocate the buffer, wait for the simulated transfer into
 * it, write its bytes, hand it over. The buffer is live during the transfer,
 * as it would be with a real asynchronous read.
 */
static int bench_read_piece(bench_slot_t *s, const hmb_allocator_t *alloc,
                            size_t bytes, int seq) {
  bench_run_t *r = s->run;
  bench_piece_t *pc = calloc(1, sizeof *pc);
  if (!pc)
    return HMB_ENOMEM;
  atomic_store_explicit(&s->phase, BENCH_PH_ALLOC, memory_order_relaxed);
  int rc =
      hmb_allocate(alloc, bytes, r->o->pinned ? HMB_ALLOC_PINNED : 0, &pc->buf);
  atomic_store_explicit(&s->phase, BENCH_PH_READ, memory_order_relaxed);
  if (rc) {
    free(pc);
    return rc;
  }
  bench_live_add(r, (int64_t)bytes);
  double secs = r->o->latency_ms / 1e3 +
                (r->o->stream_mbps > 0 ? bytes / (r->o->stream_mbps * 1e6) : 0);
  if (secs > 0)
    bench_sleep_ns((uint64_t)(secs * 1e9));
  unsigned char *d = hmb_buffer_data(pc->buf);
  memset(d, bench_fill_byte(s->idx, seq), bytes);
  uint64_t st = bench_stamp(s->idx, seq);
  memcpy(d, &st, sizeof st);
  memcpy(d + bytes - sizeof st, &st, sizeof st);
  pc->split = s->idx;
  pc->seq = seq;
  bench_push(r, s, pc);
  return 0;
}

/* The scan task: one split, read the way the policy says. */
static int bench_scan_task(void *user, hmb_runner_t *runner) {
  bench_slot_t *s = user;
  bench_run_t *r = s->run;
  const bench_split_t *sp = &r->sc->splits[s->idx];
  uint64_t t = bench_now_ns();
  const hmb_allocator_t *alloc = hmb_runner_allocator(runner);
  int rc = 0;
  hmb_runner_stats_t rs;
  if (hmb_runner_stats(runner, &rs) == 0) /* for the over-commit report */
    atomic_store_explicit(&s->runner_id, rs.id, memory_order_relaxed);
  if (r->policy == BENCH_VIRTUAL) {
    /* Budget = the estimate, held by the consumer until it has closed every
     * buffer of the split; the bytes themselves are not bound to it. */
    hmb_buffer_t *res = NULL;
    rc = hmb_runner_reserve(runner, sp->len, &res);
    if (rc)
      goto out;
    pthread_mutex_lock(&r->mu);
    s->reservation = res;
    pthread_mutex_unlock(&r->mu);
    alloc = hmb_default_allocator();
  }
  rc = bench_read_piece(s, alloc, sp->footer, 0);
  if (rc)
    goto out;
  if (r->policy == BENCH_EARLY || r->policy == BENCH_STAGED) {
    /* The footer tells which chunks are kept: the real need is known. */
    rc = hmb_runner_set_need(runner, sp->need, NULL);
    if (rc)
      goto out;
  }
  if (r->policy == BENCH_STAGED) {
    /* Staged admission, second stage: reserve the real need now (served
     * like a borrow, before new starts), so that the chunks read without
     * borrowing piece by piece. */
    atomic_store_explicit(&s->phase, BENCH_PH_GROW, memory_order_relaxed);
    rc = hmb_runner_grow(runner, sp->need, HMB_WAIT_FOREVER);
    atomic_store_explicit(&s->grown, 1, memory_order_relaxed);
    atomic_store_explicit(&s->phase, BENCH_PH_READ, memory_order_relaxed);
    if (rc)
      goto out;
  }
  if (s->idx == r->o->fail_split) {
    rc = HMB_EFAILED; /* harness self-test: the run must be reported */
    goto out;
  }
  for (int k = 0; k < sp->nkept && !rc; k++) {
    if (hmb_runner_is_cancelled(runner))
      rc = HMB_ECANCELED;
    else
      rc = bench_read_piece(s, alloc, sp->kept[k], k + 1);
  }
out:
  atomic_store_explicit(&s->phase, BENCH_PH_DONE, memory_order_relaxed);
  atomic_fetch_add(&r->run_ns, bench_now_ns() - t);
  return rc;
}

/* Called once per task after its runner finished: end the split's stream. */
static void bench_task_done(void *user, hmb_task_t *task, int status) {
  (void)task;
  bench_slot_t *s = user;
  bench_run_t *r = s->run;
  if (status != 0) {
    atomic_fetch_add(&r->failed, 1);
    int zero = 0;
    atomic_compare_exchange_strong(&r->first_error, &zero, status);
  }
  pthread_mutex_lock(&r->mu);
  s->status = status;
  pthread_mutex_unlock(&r->mu);
  bench_piece_t *pc = calloc(1, sizeof *pc);
  if (!pc) { /* the consumer would wait for this marker forever */
    fprintf(stderr, "hmb_bench: out of memory ending split %d\n", s->idx);
    abort();
  }
  pc->split = s->idx;
  pc->end = 1;
  bench_push(r, s, pc);
}

/* ---- consumer ------------------------------------------------------------ */

typedef struct bench_consumer {
  bench_run_t *run;
  unsigned char *sink;
  size_t sink_size;
  void *dev;       /* GPU sink when the consumer copies to the device */
  double clock_ns; /* the link's virtual clock (pacing) */
  uint64_t checksum;
} bench_consumer_t;

static _Atomic uint64_t bench_scan_sink; /* keeps the copies observable */

static void bench_consume(bench_consumer_t *c, bench_piece_t *pc) {
  bench_run_t *r = c->run;
  const bench_split_t *sp = &r->sc->splits[pc->split];
  size_t bytes = hmb_buffer_size(pc->buf);
  const unsigned char *d = hmb_buffer_data(pc->buf);
  size_t want = pc->seq == 0 ? sp->footer : sp->kept[pc->seq - 1];
  uint64_t st = bench_stamp(pc->split, pc->seq), a, b;
  memcpy(&a, d, sizeof a);
  memcpy(&b, d + bytes - sizeof b, sizeof b);
  if (bytes != want || a != st || b != st ||
      (bytes > 32 && d[bytes / 2] != bench_fill_byte(pc->split, pc->seq)))
    atomic_fetch_add(&r->bad_stamps, 1);

  /* The link: a fixed-rate pipe. Idle time is not banked. */
  double now = (double)bench_now_ns();
  if (c->clock_ns < now)
    c->clock_ns = now;
  for (size_t off = 0; off < bytes; off += c->sink_size) {
    size_t n = bytes - off < c->sink_size ? bytes - off : c->sink_size;
    if (c->dev) {
      if (bench_gpu_copy(c->dev, d + off, n) != 0)
        atomic_fetch_add(&r->bad_stamps, 1); /* a failed copy is an error */
      c->checksum += d[off + n - 1];
    } else {
      memcpy(c->sink, d + off, n);
      c->checksum += c->sink[n - 1];
    }
  }
  if (r->o->sink_mbps > 0) {
    c->clock_ns += bytes / (r->o->sink_mbps * 1e6) * 1e9;
    now = (double)bench_now_ns();
    if (c->clock_ns > now)
      bench_sleep_ns((uint64_t)(c->clock_ns - now));
  }
  bench_live_add(r, -(int64_t)bytes);
  hmb_buffer_close(pc->buf);
  atomic_fetch_add(&r->delivered, bytes);
  atomic_fetch_add(&r->pieces, 1);
}

/* A split's stream ended: give its budget back (virtual), count it. */
static void bench_end_split(bench_run_t *r, int idx) {
  pthread_mutex_lock(&r->mu);
  hmb_buffer_t *res = r->slots[idx].reservation;
  r->slots[idx].reservation = NULL;
  pthread_mutex_unlock(&r->mu);
  if (res)
    hmb_buffer_close(res);
  atomic_fetch_add(&r->splits_done, 1);
}

static bench_piece_t *bench_pop(bench_run_t *r, bench_queue_t *q, int split) {
  pthread_mutex_lock(&r->mu);
  if (!q->head)
    atomic_store_explicit(&r->cons_waits_for, split, memory_order_relaxed);
  while (!q->head)
    pthread_cond_wait(&r->cv, &r->mu);
  atomic_store_explicit(&r->cons_waits_for, -1, memory_order_relaxed);
  bench_piece_t *pc = q->head;
  q->head = pc->next;
  if (!q->head)
    q->tail = NULL;
  pthread_mutex_unlock(&r->mu);
  return pc;
}

static void *bench_consumer_main(void *arg) {
  bench_consumer_t *c = arg;
  bench_run_t *r = c->run;
  int n = r->sc->n;
  if (r->o->order == BENCH_ORDER_SPLIT) {
    for (int i = 0; i < n; i++) {
      for (;;) {
        bench_piece_t *pc = bench_pop(r, &r->slots[i].q, i);
        int end = pc->end;
        if (!end)
          bench_consume(c, pc);
        free(pc);
        if (end)
          break;
      }
      bench_end_split(r, i);
    }
  } else {
    for (int ended = 0; ended < n;) {
      bench_piece_t *pc = bench_pop(r, &r->global, -1);
      if (pc->end) {
        bench_end_split(r, pc->split);
        ended++;
      } else {
        bench_consume(c, pc);
      }
      free(pc);
    }
  }
  atomic_fetch_add_explicit(&bench_scan_sink, c->checksum,
                            memory_order_relaxed);
  return NULL;
}

/* ---- sampler and progress -------------------------------------------- */

/*
 * One sample of the pool's budget: the over-commit bound (hmb/pool.h, I3:
 * held <= limit + beyond of the stopped runners + beyond of the progress
 * runner, all read together under the budget lock), who holds the
 * over-commit at its highest, and every second sample the library's own
 * self-check, which verifies I1-I3 and I5 among others (in particular I2:
 * only the progress runner may hold budget beyond the limit while running).
 */
static void bench_sample_pool(bench_run_t *r, const hmb_pool_stats_t *ps) {
  if (ps->held > ps->limit + ps->beyond_stopped + ps->beyond_running &&
      !r->check_error[0])
    snprintf(r->check_error, sizeof r->check_error,
             "I3: held %" PRId64 " > limit %" PRId64
             " + beyond_stopped %" PRId64 " + beyond_running %" PRId64,
             ps->held, ps->limit, ps->beyond_stopped, ps->beyond_running);
  if (ps->beyond_running > 0 && ps->progress_runner == 0 && !r->check_error[0])
    snprintf(r->check_error, sizeof r->check_error,
             "I2: %" PRId64 " bytes beyond the limit held by running runners "
             "while none is the progress runner",
             ps->beyond_running);
  if (ps->overcommitted > r->sampled_over) {
    r->sampled_over = ps->overcommitted;
    r->over_runner = ps->progress_runner;
    r->over_beyond_running = ps->beyond_running;
    r->over_beyond_stopped = ps->beyond_stopped;
  }
  if (r->samples % 2 == 0) {
    char why[512];
    if (hmb_pool_check(r->pool, 0, why, sizeof why) == 0)
      r->checks++;
    else if (!r->check_error[0])
      snprintf(r->check_error, sizeof r->check_error, "hmb_pool_check: %s",
               why);
  }
}

static void *bench_sampler_main(void *arg) {
  bench_run_t *r = arg;
  uint64_t last_print = 0;
  const uint64_t period = 5000000; /* 5 ms */
  uint64_t prev = bench_now_ns();
  while (!atomic_load(&r->stop)) {
    bench_sleep_ns(period);
    /* Where the consumer waits: the phase of the split it is blocked on,
     * charged with the time since the last sample. */
    uint64_t t = bench_now_ns();
    int w = atomic_load_explicit(&r->cons_waits_for, memory_order_relaxed);
    if (w >= 0) {
      int ph = atomic_load_explicit(&r->slots[w].phase, memory_order_relaxed);
      r->stall_ns[ph] += (double)(t - prev);
      if (ph == BENCH_PH_GROW) {
        /* Grows are served first come, first served (R1): count the later
         * splits whose grow was served while the head's still waits. */
        r->grow_stall_samples++;
        for (int j = w + 1; j < r->sc->n; j++)
          if (atomic_load_explicit(&r->slots[j].grown, memory_order_relaxed))
            r->later_grown++;
      }
    }
    prev = t;
    hmb_executor_stats_t es;
    if (hmb_executor_stats(r->ex, &es) == 0) {
      r->running_sum += (double)es.running;
      r->samples++;
    }
    hmb_pool_stats_t ps;
    hmb_pool_stats(r->pool, &ps);
    bench_sample_pool(r, &ps);
    uint64_t now = bench_now_ns();
    if (r->progress && now - r->t0 > 2000000000u &&
        now - last_print > 250000000u) {
      fprintf(stderr,
              "\r\033[K  %-9s %5.1fs  splits %" PRIu64 "/%d  delivered %7.1f "
              "MiB  running %2" PRId64 "  queued %4" PRId64 "  held %7.1f MiB",
              bench_policy_name(r->policy), (now - r->t0) / 1e9,
              atomic_load(&r->splits_done), r->sc->n,
              atomic_load(&r->delivered) / (double)BENCH_MIB, es.running,
              es.queued, ps.held / (double)BENCH_MIB);
      last_print = now;
    }
  }
  if (last_print)
    fprintf(stderr, "\r\033[K");
  return NULL;
}

/* Library log sink of the bench: count warnings, print errors. */
static void bench_log(void *user, int level, const char *msg) {
  bench_run_t *r = user;
  if (level <= HMB_LOG_WARN)
    atomic_fetch_add(&r->log_warnings, 1);
  if (level == HMB_LOG_ERROR)
    fprintf(stderr, "hmb_bench: library error: %s\n", msg);
}

/* ---- invariants -------------------------------------------------------- */

BENCH_PRINTF(2, 3)
static void bench_fail(bench_result_t *res, const char *fmt, ...) {
  if (!res->ok)
    return; /* keep the first */
  res->ok = 0;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(res->error, sizeof res->error, fmt, ap);
  va_end(ap);
}

static int bench_bound_policy(int policy) {
  return policy != BENCH_VIRTUAL;
}

static void bench_check(bench_run_t *r, bench_result_t *res,
                        const hmb_pool_stats_t *ps,
                        const hmb_memory_stats_t *ms,
                        const hmb_executor_stats_t *es) {
  bench_scenario_info_t info;
  bench_scenario_describe(r->sc, &info);
  if (res->failed || es->failed || es->cancelled ||
      es->completed != (uint64_t)r->sc->n)
    bench_fail(res,
               "every task completes with status 0: %" PRIu64 " failed (first "
               "status %d: %s), executor completed %" PRIu64 " of %d",
               res->failed, atomic_load(&r->first_error),
               hmb_strerror(atomic_load(&r->first_error)), es->completed,
               r->sc->n);
  if (res->delivered != info.total_need || res->pieces != info.pieces)
    bench_fail(res,
               "every byte is delivered: %" PRIu64 " of %" PRIu64
               " bytes, %" PRIu64 " of %" PRIu64 " buffers",
               res->delivered, info.total_need, res->pieces, info.pieces);
  if (atomic_load(&r->bad_stamps))
    bench_fail(res, "data arrives intact: %" PRIu64 " buffers had wrong bytes",
               atomic_load(&r->bad_stamps));
  if (bench_bound_policy(r->policy)) {
    if (ps->peak_live_bytes > ps->limit + ps->peak_overcommitted)
      bench_fail(res,
                 "peak live <= limit + peak over-committed: %" PRId64
                 " > %" PRId64 " + %" PRId64,
                 ps->peak_live_bytes, ps->limit, ps->peak_overcommitted);
    int64_t mslack = bench_memory_peak_slack(r->o);
    if (ms->pageable_peak + ms->pinned_peak >
        ps->limit + ps->peak_overcommitted + mslack)
      bench_fail(res,
                 "physical peak <= limit + peak over-committed (+ the "
                 "documented fold error %" PRId64 "): %" PRId64 " > %" PRId64
                 " + %" PRId64,
                 mslack, ms->pageable_peak + ms->pinned_peak, ps->limit,
                 ps->peak_overcommitted);
    if (res->phys_peak > ps->peak_live_bytes + BENCH_PEAK_SLACK)
      bench_fail(res,
                 "bench-counted peak <= library peak live (+ the documented "
                 "fold error %" PRId64 "): %" PRId64 " > %" PRId64,
                 BENCH_PEAK_SLACK, res->phys_peak, ps->peak_live_bytes);
  }
  if (ps->peak_held > ps->limit + ps->peak_overcommitted)
    bench_fail(res,
               "peak held <= limit + peak over-committed: %" PRId64
               " > %" PRId64 " + %" PRId64,
               ps->peak_held, ps->limit, ps->peak_overcommitted);
  if (ps->held != 0 || ps->live_bytes != 0 || ps->live_buffers != 0 ||
      ps->running != 0 || ps->runners != 0 || ps->acquire_waiters != 0 ||
      ps->borrow_waiters != 0)
    bench_fail(res,
               "pool back at rest: held %" PRId64 ", live %" PRId64
               " bytes in %" PRId64 " buffers, %d running, %d runners",
               ps->held, ps->live_bytes, ps->live_buffers, ps->running,
               ps->runners);
  if (ms->pageable_live != 0 || ms->pinned_live != 0)
    bench_fail(res, "pool memory back at rest: %" PRId64 " bytes live",
               ms->pageable_live + ms->pinned_live);
  if (atomic_load(&r->live) != 0)
    bench_fail(res, "bench live counter back at 0: %" PRId64,
               atomic_load(&r->live));
  /* The oracle's estimate is its exact need, so it borrows only when an
   * idle start was granted less than it asked (R3: capped at what nobody
   * holds); that runner is the progress runner, whose borrows never wait. */
  if (r->policy == BENCH_ORACLE && ps->borrows != 0 &&
      (ps->acquire_overcommits == 0 || ps->borrow_waits != 0))
    bench_fail(res,
               "oracle borrows only after a short idle start (R3), and never "
               "waits: %" PRIu64 " borrows, %" PRIu64 " idle starts, %" PRIu64
               " borrow waits",
               ps->borrows, ps->acquire_overcommits, ps->borrow_waits);
  if (r->policy == BENCH_UNLIMITED &&
      (ps->borrow_waits || es->requeues || ps->acquire_overcommits))
    bench_fail(res,
               "unlimited never waits: %" PRIu64 " borrow waits, %" PRIu64
               " requeues",
               ps->borrow_waits, es->requeues);
  if (r->policy == BENCH_EARLY && info.total_need < info.total_estimate &&
      ps->released_early == 0)
    bench_fail(res, "early returns over-claim: nothing released early");
  if (r->check_error[0])
    bench_fail(res, "the library's invariants hold during the run: %s",
               r->check_error);
}

/* ---- the run ------------------------------------------------------------- */

int bench_run_policy(const bench_opts_t *o, const bench_scenario_t *sc,
                     int policy, size_t limit, bench_result_t *res) {
  memset(res, 0, sizeof *res);
  res->policy = policy;
  res->ok = 1;
  bench_run_t *r = calloc(1, sizeof *r);
  if (!r)
    return HMB_ENOMEM;
  r->o = o;
  r->sc = sc;
  r->policy = policy;
  r->progress = o->progress;
  r->slots = calloc((size_t)sc->n, sizeof *r->slots);
  bench_consumer_t cons;
  memset(&cons, 0, sizeof cons);
  cons.run = r;
  cons.sink_size = 4 * BENCH_MIB;
  cons.sink = malloc(cons.sink_size);
  if (!r->slots || !cons.sink) {
    bench_gpu_free(cons.dev);
    free(cons.sink);
    free(r->slots);
    free(r);
    return HMB_ENOMEM;
  }
  memset(cons.sink, 0, cons.sink_size); /* fault it in before timing */
  if (bench_gpu_target(o, NULL) == 1 &&
      bench_gpu_alloc(cons.sink_size, &cons.dev) != 0)
    cons.dev = NULL; /* reported by bench_gpu_target(); copy to the host */
  pthread_mutex_init(&r->mu, NULL);
  pthread_cond_init(&r->cv, NULL);
  atomic_init(&r->cons_waits_for, -1);

  hmb_memory_stats_t dm0, dm1;
  hmb_default_memory_stats(&dm0);

  hmb_pool_config_t pc;
  hmb_pool_config_init(&pc);
  /* The default configuration for every policy: only the limit is set
   * (the warm cache, huge pages and no over-commit cap are the defaults).
   * The log sink only counts warnings and prints errors; a pinned region
   * only when --pinned-mib asks for one. */
  pc.limit = policy == BENCH_UNLIMITED ? (size_t)1 << 60 : limit;
  pc.pinned_bytes = o->pinned;
  pc.log_fn = bench_log;
  pc.log_user = r;
  int rc = hmb_pool_create(&pc, &r->pool);
  if (rc)
    goto fail_pool;
  res->limit = (int64_t)pc.limit;

  hmb_executor_config_t ec;
  memset(&ec, 0, sizeof ec);
  ec.threads = o->threads;
  ec.acquire_timeout_ns = (int64_t)(o->acquire_timeout_ms * 1e6);
  if (ec.acquire_timeout_ns <= 0)
    ec.acquire_timeout_ns = 1;
  ec.name = bench_policy_name(policy);
  rc = hmb_executor_create(r->pool, &ec, &r->ex);
  if (rc)
    goto fail_ex;

  pthread_t consumer, sampler;
  r->t0 = bench_now_ns();
  if (pthread_create(&consumer, NULL, bench_consumer_main, &cons) != 0) {
    rc = HMB_ENOMEM;
    goto fail_threads;
  }
  if (pthread_create(&sampler, NULL, bench_sampler_main, r) != 0) {
    /* The consumer would wait forever: there is no clean way out. */
    fprintf(stderr, "hmb_bench: cannot start the sampler thread\n");
    abort();
  }
  for (int i = 0; i < sc->n; i++) {
    const bench_split_t *sp = &sc->splits[i];
    bench_slot_t *s = &r->slots[i];
    char name[32];
    snprintf(name, sizeof name, "split-%d", i);
    s->run = r;
    s->idx = i;
    hmb_task_desc_t d;
    memset(&d, 0, sizeof d);
    d.estimate = policy == BENCH_ORACLE ? sp->need : sp->len;
    if (policy == BENCH_STAGED) {
      /* Admitted for the first piece only: the footer, as a planner would
       * guess it before reading it (it knows the split, not the footer). */
      d.staged = 1;
      d.initial = sp->len < o->staged_first ? sp->len : o->staged_first;
    }
    d.priority = sc->n - i;
    d.run = bench_scan_task;
    d.user = s;
    d.done = bench_task_done;
    d.name = name;
    int src = hmb_executor_submit(r->ex, &d, NULL);
    if (src) {
      /* End the split's stream so the consumer still terminates. */
      bench_task_done(s, NULL, src);
    }
  }
  pthread_join(consumer, NULL);
  uint64_t t1 = bench_now_ns();

  hmb_executor_stats_t es;
  hmb_executor_shutdown(r->ex, HMB_SHUTDOWN_DRAIN);
  hmb_executor_stats(r->ex, &es);
  atomic_store(&r->stop, 1);
  pthread_join(sampler, NULL);
  hmb_executor_destroy(r->ex);
  r->ex = NULL;

  hmb_pool_stats_t ps;
  hmb_memory_stats_t ms;
  hmb_pool_stats(r->pool, &ps);
  hmb_pool_memory_stats(r->pool, &ms);
  {
    /* Everything is closed and every thread of the run is joined. */
    char why[512];
    if (hmb_pool_check(r->pool, HMB_CHECK_QUIESCENT, why, sizeof why) != 0 &&
        !r->check_error[0])
      snprintf(r->check_error, sizeof r->check_error,
               "hmb_pool_check(HMB_CHECK_QUIESCENT) at the end: %s", why);
  }
  hmb_default_memory_stats(&dm1);

  res->wall_s = (t1 - r->t0) / 1e9;
  res->delivered = atomic_load(&r->delivered);
  res->pieces = atomic_load(&r->pieces);
  res->gbps = res->wall_s > 0 ? res->delivered / res->wall_s / 1e9 : 0;
  res->peak_live = ps.peak_live_bytes;
  res->peak_held = ps.peak_held;
  res->peak_over = ps.peak_overcommitted;
  res->phys_peak = atomic_load(&r->peak);
  /* Runner policies: this pool's own pageable peak. Virtual: the default
   * allocator's, which is process-wide and cannot be reset (so it is the
   * highest of every virtual run so far in this process). */
  res->lib_phys_peak = policy == BENCH_VIRTUAL
                           ? dm1.pageable_peak + dm1.pinned_peak
                           : ms.pageable_peak + ms.pinned_peak;
  res->mean_running =
      res->wall_s > 0 ? atomic_load(&r->run_ns) / 1e9 / res->wall_s : 0;
  res->sampled_running = r->samples ? r->running_sum / r->samples : 0;
  res->wait_s = es.wait_ns_total / 1e9;
  res->wait_max_s = es.wait_ns_max / 1e9;
  res->borrows = ps.borrows;
  res->borrow_waits = ps.borrow_waits;
  res->borrow_overcommits = ps.borrow_overcommits;
  res->acquire_overcommits = ps.acquire_overcommits;
  res->requeues = es.requeues;
  res->released_early = ps.released_early;
  res->failed = atomic_load(&r->failed);
  res->log_warnings = atomic_load(&r->log_warnings);
  res->progress_grants = ps.progress_grants;
  res->grows = ps.grows;
  res->checks = r->checks;
  res->sampled_over = r->sampled_over;
  res->over_beyond_running = r->over_beyond_running;
  res->over_beyond_stopped = r->over_beyond_stopped;
  res->over_split = -1;
  for (int i = 0; i < sc->n && r->over_runner; i++)
    if (atomic_load(&r->slots[i].runner_id) == r->over_runner)
      res->over_split = i;
  for (int k = 0; k < BENCH_PHASES; k++)
    res->stall_s[k] = r->stall_ns[k] / 1e9;
  res->later_grown = r->grow_stall_samples ? (double)r->later_grown /
                                                 (double)r->grow_stall_samples
                                           : 0;
  res->runs = 1;
  res->gbps_min = res->gbps_max = res->gbps;
  res->peak_over_max = res->peak_over;

  bench_check(r, res, &ps, &ms, &es);
  if (dm1.pageable_live != dm0.pageable_live)
    bench_fail(res,
               "default allocator back to its live bytes: %" PRId64
               " before, %" PRId64 " after",
               dm0.pageable_live, dm1.pageable_live);
  int drc = hmb_pool_destroy(r->pool);
  if (drc)
    bench_fail(res, "pool destroyable at the end: %s", hmb_strerror(drc));
  /* A refused destroy leaves the pool alive; it is leaked on purpose. */
  for (int i = -1; i < sc->n; i++) /* leftovers only after a failure */
    for (bench_piece_t *p = i < 0 ? r->global.head : r->slots[i].q.head, *nx; p;
         p = nx) {
      nx = p->next;
      free(p);
    }
  pthread_cond_destroy(&r->cv);
  pthread_mutex_destroy(&r->mu);
  bench_gpu_free(cons.dev);
  free(cons.sink);
  free(r->slots);
  free(r);
  return res->ok ? 0 : 1;

fail_threads:
  hmb_executor_destroy(r->ex);
fail_ex:
  hmb_pool_destroy(r->pool);
fail_pool:
  pthread_cond_destroy(&r->cv);
  pthread_mutex_destroy(&r->mu);
  bench_gpu_free(cons.dev);
  free(cons.sink);
  free(r->slots);
  free(r);
  return rc;
}

int bench_gpu_target(const bench_opts_t *o, const char **why) {
  static char text[320]; /* the bench's main thread only */
  const char *reason = "";
  int usable = o->gpu != 0 && bench_gpu_usable(&reason);
  if (usable)
    snprintf(text, sizeof text,
             "GPU memory (synchronous host-to-device "
             "copies)");
  else if (o->gpu == 0)
    snprintf(text, sizeof text, "host memory sink (--gpu off)");
  else
    snprintf(text, sizeof text, "host memory sink (no GPU copy: %s)", reason);
  if (why)
    *why = text;
  if (usable)
    return 1;
  return o->gpu == 1 ? -1 : 0;
}
