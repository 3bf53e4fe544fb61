/*
 * hmb_bench_micro.c - microbenchmarks of the budget layer's own cost.
 *
 *   alloc   allocate + touch + close of one buffer through a runner that
 *           already holds the budget (the lock-free fast path), against the
 *           raw C library (posix_memalign + free), for sizes 64 B .. 64 MiB,
 *           with 1 and more threads, in one run. "hmb" is a pool with the
 *           default configuration (no warm cache: blocks of 256 KiB or more
 *           are mapped and unmapped each time, so every page faults again);
 *           "hmb+cache" gives the pool a warm cache of twice the threads'
 *           blocks, which is what the C library's heap does for "raw";
 *   acquire runner create + start + finish + destroy (pool admission and
 *           release) with a budget that fits every thread, and one that
 *           fits half of them (waiting);
 *   borrow  a runner holding nothing allocates (borrowing the whole size),
 *           closes and returns the budget with try-free, on a pool that
 *           fits half the threads' buffers (contended borrowing).
 *
 * Every case warms up first, then runs for a fixed time; ns/op is wall time
 * * threads / operations (the mean latency of one operation on one thread).
 * "Touched" means one write per 4 KiB page plus the last byte, so page
 * faults are paid as a reader writing the buffer would pay them. The sum of
 * bytes read back goes to an atomic sink so no work can be dropped.
 * Counters are checked after each case (the fast path never borrows, pools
 * end at rest): a broken check makes the program exit nonzero.
 */
#define _POSIX_C_SOURCE 200809L

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hmb.h"
#include "hmb_bench.h"

/* Written by every thread: atomic, so the sum is observable and race-free. */
static _Atomic uint64_t bench_micro_sink;

enum { MICRO_RAW, MICRO_HMB, MICRO_HMB_CACHE, MICRO_ACQUIRE, MICRO_BORROW };

typedef struct micro_row {
  const char *group; /* "alloc", "acquire", "borrow" */
  const char *impl;  /* "raw", "hmb", "hmb+cache", "fits-all", "fits-half" */
  int threads;
  size_t size;
  uint64_t ops;
  double ns_per_op;
  double ratio;     /* hmb / raw for alloc rows; 0 otherwise */
  uint64_t waits;   /* borrow requests that had to wait */
  uint64_t overcom; /* grants beyond the limit */
} micro_row_t;

typedef struct micro_case {
  int kind;
  size_t size;
  int threads;
  uint64_t warm_ns, run_ns;
  hmb_pool_t *pool;
  pthread_barrier_t barrier;
  _Atomic uint64_t ops;
  _Atomic int errors;
} micro_case_t;

static uint64_t micro_touch(unsigned char *p, size_t n) {
  for (size_t i = 0; i < n; i += 4096)
    p[i] = (unsigned char)(i >> 12);
  p[n - 1] = 1;
  return (uint64_t)p[0] + p[n - 1];
}

/* One operation of the case; returns 0 or an HMB_E* code. */
static int micro_op(micro_case_t *c, hmb_runner_t *r, uint64_t *sink) {
  switch (c->kind) {
  case MICRO_RAW: {
    void *p = NULL;
    if (posix_memalign(&p, 64, c->size) != 0)
      return HMB_ENOMEM;
    *sink += micro_touch(p, c->size);
    free(p);
    return 0;
  }
  case MICRO_HMB:
  case MICRO_HMB_CACHE:
  case MICRO_BORROW: {
    hmb_buffer_t *b;
    int rc = hmb_runner_alloc(r, c->size, 0, &b);
    if (rc)
      return rc;
    *sink += micro_touch(hmb_buffer_data(b), c->size);
    rc = hmb_buffer_close(b);
    if (!rc && c->kind == MICRO_BORROW)
      rc = hmb_runner_try_free(r, c->size, NULL);
    return rc;
  }
  default: { /* MICRO_ACQUIRE */
    hmb_runner_config_t rcfg;
    memset(&rcfg, 0, sizeof rcfg);
    rcfg.estimate = c->size;
    hmb_runner_t *x;
    int rc = hmb_runner_create(c->pool, &rcfg, &x);
    if (rc)
      return rc;
    rc = hmb_runner_start(x, HMB_WAIT_FOREVER);
    if (!rc)
      rc = hmb_runner_finish(x, 0, NULL);
    hmb_runner_destroy(x);
    *sink += 1;
    return rc;
  }
  }
}

static void *micro_thread(void *arg) {
  micro_case_t *c = arg;
  hmb_runner_t *r = NULL;
  uint64_t sink = 0;
  if (c->kind != MICRO_RAW && c->kind != MICRO_ACQUIRE) {
    hmb_runner_config_t rcfg;
    memset(&rcfg, 0, sizeof rcfg);
    rcfg.estimate = c->kind == MICRO_BORROW ? 0 : c->size;
    if (hmb_runner_create(c->pool, &rcfg, &r) != 0 ||
        hmb_runner_start(r, HMB_WAIT_FOREVER) != 0)
      atomic_fetch_add(&c->errors, 1);
  }
  int ok = atomic_load(&c->errors) == 0;
  /* Warm-up, then measure; the clock is checked every few operations. */
  for (int phase = 0; phase < 2; phase++) {
    pthread_barrier_wait(&c->barrier);
    uint64_t t0 = bench_now_ns(), t = t0, n = 0;
    uint64_t dur = phase ? c->run_ns : c->warm_ns;
    uint64_t check = c->size >= BENCH_MIB ? 1 : 64;
    while (ok && (t - t0 < dur || n < 3)) {
      for (uint64_t k = 0; k < check; k++, n++)
        if (micro_op(c, r, &sink) != 0) {
          atomic_fetch_add(&c->errors, 1);
          ok = 0;
          break;
        }
      t = bench_now_ns();
    }
    if (phase == 1)
      atomic_fetch_add(&c->ops, n);
  }
  pthread_barrier_wait(&c->barrier);
  if (r) {
    hmb_runner_finish(r, 0, NULL);
    hmb_runner_destroy(r);
  }
  atomic_fetch_add_explicit(&bench_micro_sink, sink, memory_order_relaxed);
  return NULL;
}

/* Run one case; 0 or an error message through stderr and nonzero. */
static int micro_run(int kind, size_t size, int threads, size_t limit,
                     const bench_opts_t *o, micro_row_t *row) {
  micro_case_t c;
  memset(&c, 0, sizeof c);
  c.kind = kind;
  c.size = size;
  c.threads = threads;
  c.run_ns = (uint64_t)(o->micro_ms * 1e6);
  c.warm_ns = c.run_ns / 4;
  if (kind != MICRO_RAW) {
    hmb_pool_config_t pc;
    hmb_pool_config_init(&pc);
    pc.limit = limit;
    pc.long_wait_ns = -1;
    pc.log_level = HMB_LOG_ERROR;
    if (kind == MICRO_HMB_CACHE) /* room for every thread's block, twice */
      pc.cache_bytes = size * (size_t)threads * 2;
    if (hmb_pool_create(&pc, &c.pool) != 0)
      return 1;
  }
  pthread_barrier_init(&c.barrier, NULL, (unsigned)threads + 1);
  pthread_t tid[64];
  for (int i = 0; i < threads; i++)
    if (pthread_create(&tid[i], NULL, micro_thread, &c) != 0) {
      fprintf(stderr, "hmb_bench: cannot start thread\n");
      exit(1);
    }
  pthread_barrier_wait(&c.barrier); /* start warm-up */
  pthread_barrier_wait(&c.barrier); /* start measuring */
  uint64_t t0 = bench_now_ns();
  pthread_barrier_wait(&c.barrier); /* every thread done */
  uint64_t t1 = bench_now_ns();
  for (int i = 0; i < threads; i++)
    pthread_join(tid[i], NULL);
  pthread_barrier_destroy(&c.barrier);

  memset(row, 0, sizeof *row);
  row->threads = threads;
  row->size = size;
  row->ops = atomic_load(&c.ops);
  row->ns_per_op = row->ops ? (double)(t1 - t0) * threads / row->ops : 0;
  int bad = atomic_load(&c.errors) != 0;
  if (bad)
    fprintf(stderr, "hmb_bench: micro case failed (kind %d, %zu B, %d thr)\n",
            kind, size, threads);
  if (c.pool) {
    hmb_pool_stats_t ps;
    hmb_pool_stats(c.pool, &ps);
    row->waits = kind == MICRO_BORROW ? ps.borrow_waits : 0;
    row->overcom = ps.acquire_overcommits + ps.borrow_overcommits;
    if ((kind == MICRO_HMB || kind == MICRO_HMB_CACHE) && ps.borrows != 0) {
      fprintf(stderr,
              "hmb_bench: invariant broken: the fast path borrowed (%" PRIu64
              " borrows)\n",
              ps.borrows);
      bad = 1;
    }
    if (ps.held != 0 || ps.live_bytes != 0 || ps.runners != 0) {
      fprintf(stderr,
              "hmb_bench: invariant broken: pool not at rest after a micro "
              "case (held %" PRId64 ", live %" PRId64 ")\n",
              ps.held, ps.live_bytes);
      bad = 1;
    }
    if (hmb_pool_destroy(c.pool) != 0)
      bad = 1;
  }
  return bad;
}

static int micro_parse_threads(const char *s, int *out, int max) {
  int n = 0;
  while (s && *s && n < max) {
    char *end;
    long v = strtol(s, &end, 10);
    if (end == s || v < 1 || v > 64)
      return -1;
    out[n++] = (int)v;
    s = *end == ',' ? end + 1 : end;
    if (*end && *end != ',')
      return -1;
  }
  return n;
}

static void micro_size_name(size_t s, char *buf, size_t len) {
  if (s >= BENCH_MIB)
    snprintf(buf, len, "%zu MiB", s / BENCH_MIB);
  else if (s >= BENCH_KIB)
    snprintf(buf, len, "%zu KiB", s / BENCH_KIB);
  else
    snprintf(buf, len, "%zu B", s);
}

int bench_micro_main(const bench_opts_t *o) {
  static const size_t sizes[] = {64,        4 * BENCH_KIB,  64 * BENCH_KIB,
                                 BENCH_MIB, 16 * BENCH_MIB, 64 * BENCH_MIB};
  int thr[8];
  int nthr = micro_parse_threads(o->micro_threads, thr, 8);
  if (nthr <= 0) {
    fprintf(stderr, "hmb_bench: bad --micro-threads '%s'\n", o->micro_threads);
    return 2;
  }
  micro_row_t rows[512];
  int nrows = 0, bad = 0;
  const int nsizes = (int)(sizeof sizes / sizeof sizes[0]);

  if (!o->quiet)
    printf("microbenchmarks: %.0f ms per case after %.0f ms warm-up, threads "
           "%s\n",
           o->micro_ms, o->micro_ms / 4, o->micro_threads);
  for (int t = 0; t < nthr; t++)
    for (int s = 0; s < nsizes; s++) {
      micro_row_t raw, hmb, hc;
      size_t lim = sizes[s] * (size_t)thr[t] * 2;
      bad |= micro_run(MICRO_RAW, sizes[s], thr[t], 0, o, &raw);
      bad |= micro_run(MICRO_HMB, sizes[s], thr[t], lim, o, &hmb);
      bad |= micro_run(MICRO_HMB_CACHE, sizes[s], thr[t], lim, o, &hc);
      raw.group = hmb.group = hc.group = "alloc";
      raw.impl = "raw";
      hmb.impl = "hmb";
      hc.impl = "hmb+cache";
      hmb.ratio = raw.ns_per_op > 0 ? hmb.ns_per_op / raw.ns_per_op : 0;
      hc.ratio = raw.ns_per_op > 0 ? hc.ns_per_op / raw.ns_per_op : 0;
      rows[nrows++] = raw;
      rows[nrows++] = hmb;
      rows[nrows++] = hc;
    }
  static const int pool_threads[] = {1, 2, 4, 8};
  for (int t = 0; t < 4; t++) {
    int n = pool_threads[t];
    size_t est = 64 * BENCH_KIB;
    micro_row_t a;
    bad |= micro_run(MICRO_ACQUIRE, est, n, est * (size_t)n, o, &a);
    a.group = "acquire";
    a.impl = "fits-all";
    rows[nrows++] = a;
    if (n > 1) {
      bad |= micro_run(MICRO_ACQUIRE, est, n, est * (size_t)(n / 2), o, &a);
      a.group = "acquire";
      a.impl = "fits-half";
      rows[nrows++] = a;
    }
  }
  for (int t = 0; t < 4; t++) {
    int n = pool_threads[t];
    size_t sz = 64 * BENCH_KIB;
    micro_row_t b;
    size_t lim = sz * (size_t)(n > 1 ? n / 2 : 1);
    bad |= micro_run(MICRO_BORROW, sz, n, lim, o, &b);
    b.group = "borrow";
    b.impl = n > 1 ? "fits-half" : "fits-all";
    rows[nrows++] = b;
  }

  /* Human table. */
  printf("\n%-8s %-10s %7s %9s %10s %12s %7s %8s %8s\n", "group", "impl",
         "threads", "size", "ops", "ns/op", "ratio", "waits", "overcom");
  for (int i = 0; i < nrows; i++) {
    char sz[32];
    micro_size_name(rows[i].size, sz, sizeof sz);
    printf("%-8s %-10s %7d %9s %10" PRIu64 " %12.1f ", rows[i].group,
           rows[i].impl, rows[i].threads, sz, rows[i].ops, rows[i].ns_per_op);
    if (rows[i].ratio > 0)
      printf("%7.2f", rows[i].ratio);
    else
      printf("%7s", "-");
    printf(" %8" PRIu64 " %8" PRIu64 "\n", rows[i].waits, rows[i].overcom);
  }
  printf("(alloc: allocate + touch + close; ratio = hmb / raw ns per op. "
         "acquire: runner create+start+finish+destroy, 64 KiB estimate. "
         "borrow: alloc 64 KiB beyond held + close + try-free.)\n");

  if (o->csv) {
    FILE *f = fopen(o->csv, "w");
    if (!f) {
      perror(o->csv);
      return 2;
    }
    fprintf(f, "group,impl,threads,size_bytes,ops,ns_per_op,ratio_vs_raw,"
               "waits,overcommits\n");
    for (int i = 0; i < nrows; i++)
      fprintf(f, "%s,%s,%d,%zu,%" PRIu64 ",%.2f,%.4f,%" PRIu64 ",%" PRIu64 "\n",
              rows[i].group, rows[i].impl, rows[i].threads, rows[i].size,
              rows[i].ops, rows[i].ns_per_op, rows[i].ratio, rows[i].waits,
              rows[i].overcom);
    fclose(f);
  }
  if (o->json) {
    FILE *f = fopen(o->json, "w");
    if (!f) {
      perror(o->json);
      return 2;
    }
    fprintf(f, "{\"micro\": [\n");
    for (int i = 0; i < nrows; i++)
      fprintf(f,
              "  {\"group\": \"%s\", \"impl\": \"%s\", \"threads\": %d, "
              "\"size_bytes\": %zu, \"ops\": %" PRIu64
              ", \"ns_per_op\": %.2f, \"ratio_vs_raw\": %.4f, \"waits\": "
              "%" PRIu64 ", \"overcommits\": %" PRIu64 "}%s\n",
              rows[i].group, rows[i].impl, rows[i].threads, rows[i].size,
              rows[i].ops, rows[i].ns_per_op, rows[i].ratio, rows[i].waits,
              rows[i].overcom, i + 1 < nrows ? "," : "");
    fprintf(f, "]}\n");
    fclose(f);
  }
  if (bad) {
    fprintf(stderr, "hmb_bench: a microbenchmark check failed\n");
    return 1;
  }
  return 0;
}
