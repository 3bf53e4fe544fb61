/*
 * bench_handoff.c - buffers allocated on one thread and freed on another.
 *
 * A scan thread allocates and writes a buffer, then hands it through a
 * ring of 1024 slots to a consumer thread, which frees it: the pattern of
 * a reader whose batches are released downstream. Measured per buffer
 * (first allocation to last free, divided by the count) for
 *   malloc   malloc + free (the baseline);
 *   hmb      hmb_runner_alloc on the producer, hmb_buffer_close on the
 *            consumer, on a pool with the default configuration (only a
 *            limit set) and a runner that holds the budget;
 *   hmb-ptr  hmb_ptr_alloc + hmb_ptr_free on the same runner.
 * Each round runs every case once, in a rotated order; the printed figure
 * is the median over the rounds of each case's ns per buffer and of its
 * ratio to malloc in the same round.
 *
 * Usage: bench_handoff [--sizes 64,4096,65536] [--count N] [--rounds R]
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hmb/allocator.h"
#include "hmb/buffer.h"
#include "hmb/errors.h"
#include "hmb/pool.h"
#include "hmb/runner.h"

enum { RING = 1024, MAX_SIZES = 16, MAX_ROUNDS = 99, NIMPL = 3 };
static const char *const impl_names[NIMPL] = {"malloc", "hmb", "hmb-ptr"};

typedef struct handoff {
  int impl;
  size_t size;
  long count;
  hmb_runner_t *runner;
  void *ring[RING];
  _Atomic unsigned long head, tail;
  _Atomic long produced; /* set when the producer stopped early */
  int failed;            /* the producer's */
  int cfailed;           /* the consumer's (a free or close refused) */
} handoff_t;

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static void *consumer(void *arg) {
  handoff_t *h = arg;
  for (long i = 0; i < h->count; i++) {
    /* Relaxed: only this thread writes tail. Acquire: pairs with the
     * producer's release of head, so the slot's pointer is visible. */
    unsigned long t = atomic_load_explicit(&h->tail, memory_order_relaxed);
    while (atomic_load_explicit(&h->head, memory_order_acquire) == t) {
      if ((long)t >= atomic_load(&h->produced))
        return NULL; /* the producer stopped early */
      sched_yield();
    }
    void *p = h->ring[t % RING];
    /* Release: pairs with the producer's acquire of tail (slot reuse). */
    atomic_store_explicit(&h->tail, t + 1, memory_order_release);
    if (h->impl == 0)
      free(p);
    else if (h->impl == 1)
      h->cfailed |= hmb_buffer_close(p) != 0;
    else
      h->cfailed |= hmb_ptr_free(p) != 0;
  }
  return NULL;
}

/* ns per buffer, or -1 on failure. */
static double run_case(handoff_t *h) {
  atomic_store(&h->head, 0);
  atomic_store(&h->tail, 0);
  atomic_store(&h->produced, h->count);
  h->failed = h->cfailed = 0;
  const hmb_allocator_t *a = hmb_runner_allocator(h->runner);
  pthread_t th;
  if (pthread_create(&th, NULL, consumer, h) != 0)
    return -1;
  double t0 = now_s();
  for (long i = 0; i < h->count; i++) {
    void *p = NULL;
    unsigned char *data = NULL;
    if (h->impl == 0) {
      p = data = malloc(h->size);
    } else if (h->impl == 1) {
      hmb_buffer_t *b = NULL;
      if (hmb_runner_alloc(h->runner, h->size, 0, &b) == 0) {
        p = b;
        data = hmb_buffer_data(b);
      }
    } else if (hmb_ptr_alloc(a, h->size, 0, 0, &p) == 0) {
      data = p;
    }
    if (!p) { /* the consumer frees what it was handed, then returns */
      h->failed = 1;
      atomic_store(&h->produced, i);
      break;
    }
    data[0] = 1;
    data[h->size - 1] = 1;
    unsigned long hd = atomic_load_explicit(&h->head, memory_order_relaxed);
    while (hd - atomic_load_explicit(&h->tail, memory_order_acquire) >= RING)
      sched_yield();
    h->ring[hd % RING] = p;
    atomic_store_explicit(&h->head, hd + 1, memory_order_release);
  }
  pthread_join(th, NULL);
  double dt = now_s() - t0;
  return h->failed || h->cfailed ? -1 : dt * 1e9 / (double)h->count;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double median(double *v, int n) {
  qsort(v, (size_t)n, sizeof *v, cmp_double);
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static int parse_sizes(const char *s, size_t *out) {
  int n = 0;
  while (*s && n < MAX_SIZES) {
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (end == s || v == 0 || v > (1ull << 26))
      return -1;
    out[n++] = (size_t)v;
    if (*end == ',')
      end++;
    else if (*end)
      return -1;
    s = end;
  }
  return n;
}

int main(int argc, char **argv) {
  size_t sizes[MAX_SIZES] = {64, 4096, 65536};
  int nsizes = 3, rounds = 5;
  long count = 200000;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--sizes") && i + 1 < argc) {
      if ((nsizes = parse_sizes(argv[++i], sizes)) <= 0) {
        fprintf(stderr, "bench_handoff: bad --sizes '%s'\n", argv[i]);
        return 2;
      }
    } else if (!strcmp(argv[i], "--count") && i + 1 < argc) {
      count = atol(argv[++i]);
    } else if (!strcmp(argv[i], "--rounds") && i + 1 < argc) {
      rounds = atoi(argv[++i]);
    } else {
      fprintf(stderr,
              "usage: bench_handoff [--sizes 64,4096,65536] [--count N] "
              "[--rounds R]\n");
      return 2;
    }
  }
  if (count < 1 || rounds < 1 || rounds > MAX_ROUNDS) {
    fprintf(stderr, "bench_handoff: --count >= 1, 1 <= --rounds <= %d\n",
            MAX_ROUNDS);
    return 2;
  }
  hmb_pool_config_t pc;
  hmb_pool_config_init(&pc);
  pc.limit = (size_t)1 << 36;
  hmb_pool_t *pool = NULL;
  hmb_runner_config_t rc;
  hmb_runner_config_init(&rc);
  rc.estimate = (size_t)1 << 32; /* RING buffers of the largest size fit */
  rc.name = "producer";
  hmb_runner_t *runner = NULL;
  if (hmb_pool_create(&pc, &pool) != 0 ||
      hmb_runner_create(pool, &rc, &runner) != 0 ||
      hmb_runner_start(runner, 0) != 0) {
    fprintf(stderr, "bench_handoff: could not set up the pool\n");
    return 1;
  }
  static handoff_t h;
  h.runner = runner;
  h.count = count;
  printf("handoff: %ld buffers allocated and written on one thread, freed on "
         "another (a ring of %d), %d rounds, rotated; medians\n",
         count, RING, rounds);
  printf("%-10s %-8s %10s %10s\n", "size", "impl", "ns/buffer", "x malloc");
  int bad = 0;
  for (int si = 0; si < nsizes; si++) {
    double ns[NIMPL][MAX_ROUNDS], ratio[NIMPL][MAX_ROUNDS];
    h.size = sizes[si];
    for (int r = 0; r < rounds; r++) {
      double t[NIMPL];
      for (int k = 0; k < NIMPL; k++) {
        int impl = (k + r) % NIMPL;
        h.impl = impl;
        t[impl] = run_case(&h);
        if (t[impl] < 0) {
          fprintf(stderr, "bench_handoff: %s at %zu bytes failed\n",
                  impl_names[impl], h.size);
          bad = 1;
        }
      }
      for (int k = 0; k < NIMPL; k++) {
        ns[k][r] = t[k];
        ratio[k][r] = t[k] / t[0];
      }
    }
    for (int k = 0; k < NIMPL; k++)
      printf("%-10zu %-8s %10.1f %9.2fx\n", h.size, impl_names[k],
             median(ns[k], rounds), median(ratio[k], rounds));
  }
  hmb_runner_finish(runner, 0, NULL);
  hmb_runner_destroy(runner);
  if (hmb_pool_destroy(pool) != 0)
    bad = 1;
  return bad;
}
