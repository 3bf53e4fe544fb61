/*
 * hmb_bench_micro.c - microbenchmarks of the library's own cost, against
 * the C library and other allocators in the same run.
 *
 *   alloc     allocate + touch + close of one block, 64 B .. 64 MiB, on 1
 *             thread, on 2 threads with a runner each, and on 2 threads
 *             sharing one runner. Baseline: glibc malloc + touch + free.
 *             Rows (impls):
 *               malloc          glibc malloc/free (the baseline)
 *               posix_memalign  glibc posix_memalign(64)/free
 *               hmb             a runner holding the budget (handle API:
 *                               hmb_runner_alloc / hmb_buffer_close) on a
 *                               pool with the default configuration (only
 *                               `limit` set)
 *               hmb-ptr         the same runner through the pointer API
 *                               (hmb_ptr_alloc / hmb_ptr_free)
 *               hmb/glibc       hmb over an hmb_backend_t calling
 *                               posix_memalign/free (hmb's bookkeeping
 *                               without its memory layer)
 *               jemalloc, mimalloc, tcmalloc
 *                               the peer itself, raw (loaded with dlopen,
 *                               RTLD_LOCAL, and called through its own
 *                               entry points, so it never replaces malloc)
 *               hmb/jemalloc, hmb/mimalloc, hmb/tcmalloc
 *                               hmb over an hmb_backend_t calling the
 *                               peer's aligned entry points
 *             Two touch patterns: "page" writes one byte per 4 KiB page and
 *             the last byte (page faults, little bandwidth); "fill" is a
 *             memset of the whole block (what a reader's read() does).
 *   acquire   runner create + start + finish + destroy with a 64 KiB
 *             estimate, on a pool that fits every thread, and half of them;
 *   borrow    a runner holding nothing allocates 64 KiB (a borrow), closes
 *             it and returns the budget with try-free (contended);
 *   executor  a tiny task (an empty function) through an hmb executor
 *             against a bare pthread pool (one mutex + condvar queue, the
 *             same number of workers, the same empty task).
 *
 * Interleaving: the machine this runs on is shared, so every comparison is
 * made inside a "cell" (one size, touch and thread layout; or one executor
 * layout) whose cases run one after the other, R rounds in a rotated order
 * (round r starts with case r). Each round's ratio is taken against the
 * baseline of the same round; the tables give the median ns/op and the
 * median of those ratios.
 *
 * --callgrind runs a fixed number of iterations of each allocator at 64 B,
 * 4 KiB and 64 KiB (allocate, write the first and last byte, free), each in
 * its own non-inlined function hmb_cg_<impl>_<size>, so that
 * scripts/callgrind.sh can count instructions per operation with
 * valgrind --tool=callgrind --toggle-collect=hmb_cg_*.
 *
 * A sink receives bytes read back (through a compiler barrier on every
 * block), so no allocation or touch can be dropped. Counters are checked
 * after every hmb case: with a runner per thread the fast path never
 * borrows, and every pool ends at rest (and passes hmb_pool_check with
 * HMB_CHECK_QUIESCENT); a broken check makes the program exit nonzero.
 * Timings never do.
 */
#define _GNU_SOURCE /* RTLD_* and getenv/setenv are POSIX; ffs too */

#include <dlfcn.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "bench_compat.h"
#include "hmb.h"
#include "hmb_bench.h"

#ifndef HMB_BENCH_BUILD_TYPE
#define HMB_BENCH_BUILD_TYPE "unknown"
#endif

/* Written by every thread: atomic, so the sum is observable and race-free. */
static _Atomic uint64_t bench_micro_sink;

/* The compiler must assume `p` escapes and its bytes are read. */
#define MICRO_ESCAPE(p) __asm__ volatile("" : : "r"(p) : "memory")

/* ---- peers: other allocators, loaded at run time ------------------------- */

enum { PEER_JEMALLOC, PEER_MIMALLOC, PEER_TCMALLOC, PEER_GLIBC, NPEERS };

typedef struct micro_peer {
  const char *name;   /* "jemalloc" */
  const char *soname; /* what is dlopen'd */
  const char *pkg;    /* the Debian package that provides it */
  int loaded;
  char why[256]; /* why not loaded */
  void *(*raw_alloc)(size_t size);
  void *(*al_alloc)(size_t align, size_t size);
  void (*free_fn)(void *p);
} micro_peer_t;

static micro_peer_t micro_peers[NPEERS] = {
    {"jemalloc", "libjemalloc.so.2", "libjemalloc-dev", 0, "", 0, 0, 0},
    {"mimalloc", "libmimalloc.so.2", "libmimalloc-dev", 0, "", 0, 0, 0},
    {"tcmalloc", "libtcmalloc_minimal.so.4", "libgoogle-perftools-dev", 0, "",
     0, 0, 0},
    {"glibc", "", "", 0, "", 0, 0, 0}};

/* jemalloc's non-standard API: mallocx/dallocx with MALLOCX_ALIGN flags. */
static void *(*je_mallocx)(size_t, int);
static void (*je_dallocx)(void *, int);
static void *je_raw(size_t n) {
  return je_mallocx(n, 0);
}
static void *je_al(size_t a, size_t n) {
  return je_mallocx(n, ffs((int)a) - 1); /* MALLOCX_ALIGN(a) */
}
static void je_free(void *p) {
  je_dallocx(p, 0);
}
/* mimalloc: mi_malloc, mi_malloc_aligned(size, align), mi_free. */
static void *(*mi_al_fn)(size_t, size_t);
static void *mi_al(size_t a, size_t n) {
  return mi_al_fn(n, a);
}
/* glibc's aligned entry point, for hmb/glibc. */
static void *glibc_al(size_t a, size_t n) {
  void *p = NULL;
  return posix_memalign(&p, a, n) == 0 ? p : NULL;
}

/* dlsym into a function pointer without an object-to-function cast. */
static int micro_sym(void *h, const char *name, void *fnptr, size_t size,
                     micro_peer_t *p) {
  void *s = dlsym(h, name);
  if (!s) {
    snprintf(p->why, sizeof p->why, "%s has no %s", p->soname, name);
    return -1;
  }
  memcpy(fnptr, &s, size);
  return 0;
}
#define MICRO_SYM(h, name, fn, p) micro_sym((h), (name), &(fn), sizeof(fn), (p))

static int micro_peers_done;

/* Sanitizer builds: the peers' memory is not instrumented, their
 * allocations would be reported as leaks, and timings mean nothing there. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define MICRO_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define MICRO_SANITIZED 1
#endif
#endif
#ifndef MICRO_SANITIZED
#define MICRO_SANITIZED 0
#endif

/*
 * Load the peers. Debian's jemalloc uses initial-exec TLS, which a dlopen
 * can only place in glibc's spare static TLS; when there is not enough,
 * the program runs itself again with glibc.rtld.optional_static_tls raised
 * (once: HMB_BENCH_TLS_REEXEC marks the second run). Before any thread
 * starts.
 */
static void micro_load_peers(char **argv) {
  if (micro_peers_done)
    return;
  micro_peers_done = 1;
  micro_peer_t *g = &micro_peers[PEER_GLIBC];
  g->loaded = 1;
  g->raw_alloc = malloc;
  g->al_alloc = glibc_al;
  g->free_fn = free;
  for (int i = 0; i < PEER_GLIBC; i++) {
    micro_peer_t *p = &micro_peers[i];
    if (MICRO_SANITIZED) {
      snprintf(p->why, sizeof p->why, "not loaded in a sanitizer build");
      continue;
    }
    void *h = dlopen(p->soname, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
      const char *e = dlerror();
      if (e && strstr(e, "static TLS") && argv &&
          !getenv("HMB_BENCH_TLS_REEXEC")) {
        const char *old = getenv("GLIBC_TUNABLES");
        char t[1024];
        snprintf(t, sizeof t, "%s%sglibc.rtld.optional_static_tls=65536",
                 old ? old : "", old && *old ? ":" : "");
        setenv("GLIBC_TUNABLES", t, 1);
        setenv("HMB_BENCH_TLS_REEXEC", "1", 1);
        fflush(NULL);
        execv("/proc/self/exe", argv);
        /* Could not run again: carry on without this peer. */
      }
      snprintf(p->why, sizeof p->why, "not installed (%s: %s; Debian: %s)",
               p->soname, e ? e : "dlopen failed", p->pkg);
      continue;
    }
    int bad = 0;
    if (i == PEER_JEMALLOC) {
      bad |= MICRO_SYM(h, "mallocx", je_mallocx, p);
      bad |= MICRO_SYM(h, "dallocx", je_dallocx, p);
      p->raw_alloc = je_raw;
      p->al_alloc = je_al;
      p->free_fn = je_free;
    } else if (i == PEER_MIMALLOC) {
      bad |= MICRO_SYM(h, "mi_malloc", p->raw_alloc, p);
      bad |= MICRO_SYM(h, "mi_malloc_aligned", mi_al_fn, p);
      bad |= MICRO_SYM(h, "mi_free", p->free_fn, p);
      p->al_alloc = mi_al;
    } else {
      bad |= MICRO_SYM(h, "tc_malloc", p->raw_alloc, p);
      bad |= MICRO_SYM(h, "tc_memalign", p->al_alloc, p);
      bad |= MICRO_SYM(h, "tc_free", p->free_fn, p);
    }
    if (bad) {
      dlclose(h);
      continue;
    }
    p->loaded = 1; /* never closed: blocks may outlive a case */
  }
}

/* hmb_backend_t over a peer's aligned entry points. */
static int micro_backend_alloc(void *ctx, size_t size, size_t align,
                               int prefer_pinned, void **ptr, int *pinned) {
  (void)prefer_pinned;
  micro_peer_t *p = ctx;
  void *q = p->al_alloc(align, size);
  if (!q)
    return HMB_ENOMEM;
  *ptr = q;
  *pinned = 0;
  return 0;
}

static void micro_backend_free(void *ctx, void *ptr, size_t size, int pinned) {
  (void)size;
  (void)pinned;
  micro_peer_t *p = ctx;
  p->free_fn(ptr);
}

/* ---- what is compared ------------------------------------------------------
 */

enum {
  K_MALLOC,      /* glibc malloc/free */
  K_MEMALIGN,    /* glibc posix_memalign/free */
  K_PEER,        /* a peer's own malloc/free */
  K_HMB,         /* runner, handle API, built-in memory */
  K_HMB_PTR,     /* runner, pointer API, built-in memory */
  K_HMB_BACKEND, /* runner, handle API, over a peer's hmb_backend_t */
};

typedef struct micro_impl {
  const char *name; /* table column */
  const char *cg;   /* callgrind function infix */
  int kind;
  int peer; /* K_PEER, K_HMB_BACKEND: index in micro_peers */
} micro_impl_t;

enum { NIMPLS = 11 };
static const micro_impl_t micro_impls[NIMPLS] = {
    {"malloc", "malloc", K_MALLOC, -1},
    {"posix_memalign", "memalign", K_MEMALIGN, -1},
    {"hmb", "hmb", K_HMB, -1},
    {"hmb-ptr", "hmb_ptr", K_HMB_PTR, -1},
    {"hmb/glibc", "hmb_glibc", K_HMB_BACKEND, PEER_GLIBC},
    {"jemalloc", "jemalloc", K_PEER, PEER_JEMALLOC},
    {"mimalloc", "mimalloc", K_PEER, PEER_MIMALLOC},
    {"tcmalloc", "tcmalloc", K_PEER, PEER_TCMALLOC},
    {"hmb/jemalloc", "hmb_jemalloc", K_HMB_BACKEND, PEER_JEMALLOC},
    {"hmb/mimalloc", "hmb_mimalloc", K_HMB_BACKEND, PEER_MIMALLOC},
    {"hmb/tcmalloc", "hmb_tcmalloc", K_HMB_BACKEND, PEER_TCMALLOC},
};

static int micro_is_hmb(int kind) {
  return kind == K_HMB || kind == K_HMB_PTR || kind == K_HMB_BACKEND;
}

/* NULL when the impl can run here, else why not (static storage). */
static const char *micro_unavailable(const micro_impl_t *im) {
  if (im->kind == K_HMB_PTR && !BENCH_HMB_02)
    return "n/a (hmb 0.1 has no pointer API)";
  if (im->peer >= 0 && !micro_peers[im->peer].loaded)
    return micro_peers[im->peer].why[0] ? micro_peers[im->peer].why
                                        : "not installed";
  return NULL;
}

/* ---- one alloc case ------------------------------------------------------ */

enum { TOUCH_PAGE = 0, TOUCH_FILL = 1, TOUCH_ENDS = 2 };
static const char *const micro_touch_names[] = {"page", "fill", "ends"};

typedef struct micro_ctx {
  const micro_impl_t *im;
  size_t size;
  int touch;
  const micro_peer_t *peer;
  hmb_runner_t *runner;         /* this thread's (or the shared one) */
  const hmb_allocator_t *alloc; /* hmb_runner_allocator(runner) */
  uint64_t sink;
  int err;
} micro_ctx_t;

static void micro_touch(micro_ctx_t *c, unsigned char *p) {
  size_t n = c->size;
  MICRO_ESCAPE(p);
  if (c->touch == TOUCH_FILL) {
    memset(p, (int)(c->sink & 0x7f) + 1, n);
  } else if (c->touch == TOUCH_PAGE) {
    for (size_t i = 0; i < n; i += 4096)
      p[i] = (unsigned char)(i >> 12);
    p[n - 1] = 1;
  } else {
    p[0] = 1;
    p[n - 1] = 1;
  }
  MICRO_ESCAPE(p);
  c->sink += (uint64_t)p[0] + p[n - 1];
}

/* One allocate + touch + free. Not inlined: every impl pays the same call. */
__attribute__((noinline)) static void micro_op(micro_ctx_t *c) {
  unsigned char *p = NULL;
  switch (c->im->kind) {
  case K_MALLOC:
    p = malloc(c->size);
    if (!p)
      goto fail;
    micro_touch(c, p);
    free(p);
    return;
  case K_MEMALIGN: {
    void *q = NULL;
    if (posix_memalign(&q, 64, c->size) != 0)
      goto fail;
    micro_touch(c, q);
    free(q);
    return;
  }
  case K_PEER:
    p = c->peer->raw_alloc(c->size);
    if (!p)
      goto fail;
    micro_touch(c, p);
    c->peer->free_fn(p);
    return;
#if BENCH_HMB_02
  case K_HMB_PTR: {
    void *q = NULL;
    if (hmb_ptr_alloc(c->alloc, c->size, 0, 0, &q) != 0)
      goto fail;
    micro_touch(c, q);
    if (hmb_ptr_free(q) != 0)
      goto fail;
    return;
  }
#endif
  default: { /* K_HMB, K_HMB_BACKEND */
    hmb_buffer_t *b;
    if (hmb_runner_alloc(c->runner, c->size, 0, &b) != 0)
      goto fail;
    micro_touch(c, hmb_buffer_data(b));
    if (hmb_buffer_close(b) != 0)
      goto fail;
    return;
  }
  }
fail:
  c->err = 1;
}

typedef struct micro_case {
  const micro_impl_t *im;
  size_t size;
  int touch;
  int threads;
  int shared; /* the threads share one runner */
  uint64_t warm_ns, run_ns;
  uint64_t min_ops; /* per thread and phase, whatever the time */
  hmb_pool_t *pool;
  hmb_runner_t *shared_runner;
  size_t estimate; /* of each runner */
  pthread_barrier_t barrier;
  _Atomic uint64_t ops;
  _Atomic int errors;
} micro_case_t;

static int micro_runner_new(hmb_pool_t *pool, size_t estimate,
                            hmb_runner_t **out) {
  hmb_runner_config_t rc;
  memset(&rc, 0, sizeof rc);
  rc.estimate = estimate;
  rc.name = "micro";
  *out = NULL;
  if (hmb_runner_create(pool, &rc, out) != 0)
    return -1;
  if (hmb_runner_start(*out, HMB_WAIT_FOREVER) != 0) {
    hmb_runner_destroy(*out);
    *out = NULL;
    return -1;
  }
  return 0;
}

static void micro_runner_end(hmb_runner_t *r) {
  if (r) {
    hmb_runner_finish(r, 0, NULL);
    hmb_runner_destroy(r);
  }
}

static void *micro_alloc_thread(void *arg) {
  micro_case_t *k = arg;
  micro_ctx_t c;
  memset(&c, 0, sizeof c);
  c.im = k->im;
  c.size = k->size;
  c.touch = k->touch;
  c.peer = k->im->peer >= 0 ? &micro_peers[k->im->peer] : NULL;
  hmb_runner_t *own = NULL;
  if (micro_is_hmb(k->im->kind)) {
    if (k->shared)
      c.runner = k->shared_runner;
    else if (micro_runner_new(k->pool, k->estimate, &own) == 0)
      c.runner = own;
    else
      atomic_fetch_add(&k->errors, 1);
    c.alloc = hmb_runner_allocator(c.runner);
  }
  int ok = atomic_load(&k->errors) == 0;
  /* Warm-up, then measure; the clock is read every few operations. */
  for (int phase = 0; phase < 2; phase++) {
    pthread_barrier_wait(&k->barrier);
    uint64_t t0 = bench_now_ns(), t = t0, n = 0;
    uint64_t dur = phase ? k->run_ns : k->warm_ns;
    uint64_t check = k->size >= BENCH_MIB ? 1 : 64;
    while (ok && (t - t0 < dur || n < k->min_ops)) {
      for (uint64_t i = 0; i < check; i++, n++) {
        micro_op(&c);
        if (c.err) {
          atomic_fetch_add(&k->errors, 1);
          ok = 0;
          break;
        }
      }
      t = bench_now_ns();
    }
    if (phase == 1)
      atomic_fetch_add(&k->ops, n);
  }
  pthread_barrier_wait(&k->barrier);
  micro_runner_end(own);
  atomic_fetch_add_explicit(&bench_micro_sink, c.sink, memory_order_relaxed);
  return NULL;
}

/* Pool of an hmb case: the default configuration with only `limit` set
 * (plus the backend for hmb over a peer). */
static int micro_pool_new(const micro_impl_t *im, size_t limit,
                          hmb_backend_t *be, hmb_pool_t **out) {
  hmb_pool_config_t pc;
  bench_pool_config_init(&pc);
  pc.limit = limit;
  if (im->kind == K_HMB_BACKEND) {
    be->ctx = &micro_peers[im->peer];
    be->alloc = micro_backend_alloc;
    be->free = micro_backend_free;
    pc.backend = be;
  }
  return hmb_pool_create(&pc, out);
}

/* Checks of an hmb pool at the end of a case: 0, or 1 (reported). */
static int micro_pool_end(hmb_pool_t *pool, const char *what, int fast_path,
                          uint64_t *borrows) {
  int bad = 0;
  hmb_pool_stats_t ps;
  hmb_pool_stats(pool, &ps);
  if (borrows)
    *borrows = ps.borrows;
  if (fast_path && ps.borrows != 0) {
    fprintf(stderr,
            "hmb_bench: invariant broken: %s: the fast path borrowed (%" PRIu64
            " borrows)\n",
            what, ps.borrows);
    bad = 1;
  }
  if (ps.held != 0 || ps.live_bytes != 0 || ps.runners != 0) {
    fprintf(stderr,
            "hmb_bench: invariant broken: %s: pool not at rest (held %" PRId64
            ", live %" PRId64 ", runners %d)\n",
            what, ps.held, ps.live_bytes, (int)ps.runners);
    bad = 1;
  }
#if BENCH_HMB_02
  char why[512];
  if (hmb_pool_check(pool, HMB_CHECK_QUIESCENT, why, sizeof why) != 0) {
    fprintf(stderr, "hmb_bench: invariant broken: %s: hmb_pool_check: %s\n",
            what, why);
    bad = 1;
  }
#endif
  if (hmb_pool_destroy(pool) != 0) {
    fprintf(stderr, "hmb_bench: %s: the pool could not be destroyed\n", what);
    bad = 1;
  }
  return bad;
}

/* Run one alloc case; *ns_per_op; 0, or 1 when it failed (reported). */
static int micro_alloc_case(const micro_impl_t *im, size_t size, int touch,
                            int threads, int shared, const bench_opts_t *o,
                            double *ns_per_op, uint64_t *borrows) {
  micro_case_t k;
  memset(&k, 0, sizeof k);
  k.im = im;
  k.size = size;
  k.touch = touch;
  k.threads = threads;
  k.shared = shared;
  k.run_ns = (uint64_t)(o->micro_ms * 1e6);
  k.warm_ns = k.run_ns / 4;
  k.min_ops = o->quick ? 1 : 3;
  hmb_backend_t be;
  memset(&be, 0, sizeof be);
  /* Each runner holds twice its threads' blocks; the pool has room for the
   * warm cache besides (a scan pool's limit is far above one task's). */
  k.estimate = 2 * size * (size_t)(shared ? threads : 1);
  int bad = 0;
  *borrows = 0;
  if (micro_is_hmb(im->kind)) {
    if (micro_pool_new(im, (size_t)1 << 30, &be, &k.pool) != 0) {
      fprintf(stderr, "hmb_bench: %s: pool creation failed\n", im->name);
      return 1;
    }
    if (shared && micro_runner_new(k.pool, k.estimate, &k.shared_runner) != 0)
      atomic_fetch_add(&k.errors, 1);
  }
  pthread_barrier_init(&k.barrier, NULL, (unsigned)threads + 1);
  pthread_t tid[64];
  for (int i = 0; i < threads; i++)
    if (pthread_create(&tid[i], NULL, micro_alloc_thread, &k) != 0) {
      fprintf(stderr, "hmb_bench: cannot start a thread\n");
      exit(1);
    }
  pthread_barrier_wait(&k.barrier); /* start warm-up */
  pthread_barrier_wait(&k.barrier); /* start measuring */
  uint64_t t0 = bench_now_ns();
  pthread_barrier_wait(&k.barrier); /* every thread done */
  uint64_t t1 = bench_now_ns();
  for (int i = 0; i < threads; i++)
    pthread_join(tid[i], NULL);
  pthread_barrier_destroy(&k.barrier);
  micro_runner_end(k.shared_runner);
  uint64_t ops = atomic_load(&k.ops);
  *ns_per_op = ops ? (double)(t1 - t0) * threads / (double)ops : 0;
  if (atomic_load(&k.errors)) {
    fprintf(stderr, "hmb_bench: micro case failed: %s, %zu B, %d thread(s)\n",
            im->name, size, threads);
    bad = 1;
  }
  if (k.pool) {
    char what[96];
    snprintf(what, sizeof what, "%s %zu B %d thread(s)%s", im->name, size,
             threads, shared ? " on one runner" : "");
    bad |= micro_pool_end(k.pool, what, !shared, borrows);
  }
  return bad;
}

/* ---- medians ------------------------------------------------------------- */

static int micro_cmp_d(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double micro_median(const double *v, int n) {
  double s[64];
  if (n <= 0)
    return 0;
  if (n > 64)
    n = 64;
  memcpy(s, v, (size_t)n * sizeof *s);
  qsort(s, (size_t)n, sizeof *s, micro_cmp_d);
  return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

/* ---- the alloc group ------------------------------------------------------
 */

enum { MAX_ROUNDS = 64, MAX_LAYOUTS = 8, MAX_SIZES = 16 };

typedef struct micro_layout {
  int threads;
  int shared;
  char name[16]; /* "1", "2", "2 shared" */
} micro_layout_t;

typedef struct micro_alloc_row {
  size_t size;
  int touch;
  int layout;
  int impl;
  const char *why; /* not run: why (NULL: run) */
  int rounds;
  double ns[MAX_ROUNDS];
  double ratio[MAX_ROUNDS];
  double med_ns, med_ratio, min_ratio, max_ratio;
  uint64_t borrows;
} micro_alloc_row_t;

/* The impls of a layout: raw allocators do not share runners, so a layout
 * of threads sharing one runner has only the baseline and the hmb rows. */
static int micro_impl_in_layout(const micro_impl_t *im,
                                const micro_layout_t *l) {
  return !l->shared || im->kind == K_MALLOC || micro_is_hmb(im->kind);
}

static void micro_size_name(size_t s, char *buf, size_t len) {
  if (s >= BENCH_MIB && s % BENCH_MIB == 0)
    snprintf(buf, len, "%zu MiB", s / BENCH_MIB);
  else if (s >= BENCH_KIB && s % BENCH_KIB == 0)
    snprintf(buf, len, "%zu KiB", s / BENCH_KIB);
  else
    snprintf(buf, len, "%zu B", s);
}

/* The goal of issue "fast by default": hmb / malloc at most this. */
static double micro_goal(const micro_layout_t *l) {
  return l->threads == 1 ? 1.3 : 1.5;
}

static void micro_print_alloc(const micro_alloc_row_t *rows, int nrows,
                              const micro_layout_t *lay, int nlay,
                              const size_t *sizes, int nsizes,
                              const int *touches, int ntouch, int rounds) {
  printf("\nalloc: allocate + touch + free; ns/op of malloc (the baseline), "
         "then each impl's time / malloc's\n(median of %d round%s, each "
         "ratio taken against malloc in the same round). '!' marks an hmb\n"
         "row above the goal (1.3x on 1 thread, 1.5x on 2).\n",
         rounds, rounds == 1 ? "" : "s");
  for (int t = 0; t < ntouch; t++)
    for (int l = 0; l < nlay; l++) {
      printf("\ntouch %s, threads %s\n%-8s %9s", micro_touch_names[touches[t]],
             lay[l].name, "size", "malloc ns");
      for (int i = 1; i < NIMPLS; i++)
        if (micro_impl_in_layout(&micro_impls[i], &lay[l]))
          printf(" %*s", i == 1 ? 14 : 12, micro_impls[i].name);
      printf("\n");
      for (int s = 0; s < nsizes; s++) {
        char sz[32];
        micro_size_name(sizes[s], sz, sizeof sz);
        printf("%-8s", sz);
        for (int i = 0; i < NIMPLS; i++) {
          if (!micro_impl_in_layout(&micro_impls[i], &lay[l]))
            continue;
          const micro_alloc_row_t *r = NULL;
          for (int k = 0; k < nrows; k++)
            if (rows[k].size == sizes[s] && rows[k].touch == touches[t] &&
                rows[k].layout == l && rows[k].impl == i)
              r = &rows[k];
          int w = i == 0 ? 10 : i == 1 ? 15 : 13;
          char cell[32];
          if (!r || r->why)
            snprintf(cell, sizeof cell, "%s",
                     r && strncmp(r->why, "not installed", 13) == 0
                         ? "not inst."
                         : "n/a");
          else if (i == 0)
            snprintf(cell, sizeof cell, "%.1f", r->med_ns);
          else
            snprintf(cell, sizeof cell, "%.2fx%s", r->med_ratio,
                     micro_is_hmb(micro_impls[i].kind) &&
                             r->med_ratio > micro_goal(&lay[l])
                         ? "!"
                         : " ");
          printf("%*s", w, cell);
        }
        printf("\n");
      }
    }
  for (int i = 0; i < NIMPLS; i++) {
    const char *why = micro_unavailable(&micro_impls[i]);
    if (why)
      printf("%s: %s\n", micro_impls[i].name, why);
  }
}

static int micro_alloc_group(const bench_opts_t *o, const size_t *sizes,
                             int nsizes, const micro_layout_t *lay, int nlay,
                             micro_alloc_row_t **out_rows, int *out_n) {
  int touches[2], ntouch = 0;
  if (o->micro_touch != 1)
    touches[ntouch++] = TOUCH_PAGE;
  if (o->micro_touch != 0)
    touches[ntouch++] = TOUCH_FILL;
  int rounds = o->micro_rounds > MAX_ROUNDS ? MAX_ROUNDS : o->micro_rounds;
  int max = nsizes * ntouch * nlay * NIMPLS;
  micro_alloc_row_t *rows = calloc((size_t)max, sizeof *rows);
  if (!rows)
    return 1;
  int n = 0, bad = 0;
  for (int t = 0; t < ntouch; t++)
    for (int l = 0; l < nlay; l++)
      for (int s = 0; s < nsizes; s++) {
        /* One cell: the impls of this layout, R rounds, rotated. */
        int idx[NIMPLS], ni = 0;
        micro_alloc_row_t *cell = &rows[n];
        for (int i = 0; i < NIMPLS; i++) {
          if (!micro_impl_in_layout(&micro_impls[i], &lay[l]))
            continue;
          micro_alloc_row_t *r = &rows[n++];
          r->size = sizes[s];
          r->touch = touches[t];
          r->layout = l;
          r->impl = i;
          r->why = micro_unavailable(&micro_impls[i]);
          idx[ni++] = i;
        }
        for (int rd = 0; rd < rounds; rd++) {
          for (int j = 0; j < ni; j++) {
            micro_alloc_row_t *r = &cell[(j + rd) % ni];
            if (r->why)
              continue;
            uint64_t borrows = 0;
            bad |= micro_alloc_case(&micro_impls[r->impl], r->size, r->touch,
                                    lay[l].threads, lay[l].shared, o,
                                    &r->ns[r->rounds], &borrows);
            r->rounds++;
            if (borrows > r->borrows)
              r->borrows = borrows;
          }
          for (int j = 0; j < ni; j++) /* ratios of this round */
            if (!cell[j].why && cell[0].ns[rd] > 0)
              cell[j].ratio[rd] = cell[j].ns[rd] / cell[0].ns[rd];
        }
        (void)idx;
        for (int j = 0; j < ni; j++) {
          micro_alloc_row_t *r = &cell[j];
          if (r->why)
            continue;
          r->med_ns = micro_median(r->ns, r->rounds);
          r->med_ratio = micro_median(r->ratio, r->rounds);
          r->min_ratio = r->max_ratio = r->ratio[0];
          for (int k = 1; k < r->rounds; k++) {
            if (r->ratio[k] < r->min_ratio)
              r->min_ratio = r->ratio[k];
            if (r->ratio[k] > r->max_ratio)
              r->max_ratio = r->ratio[k];
          }
        }
      }
  micro_print_alloc(rows, n, lay, nlay, sizes, nsizes, touches, ntouch, rounds);
  *out_rows = rows;
  *out_n = n;
  return bad;
}

/* ---- acquire and borrow -----------------------------------------------------
 */

enum { POOLOP_ACQUIRE, POOLOP_BORROW };

typedef struct micro_poolcase {
  int kind;
  size_t size;
  uint64_t warm_ns, run_ns;
  hmb_pool_t *pool;
  pthread_barrier_t barrier;
  _Atomic uint64_t ops;
  _Atomic int errors;
} micro_poolcase_t;

static int micro_poolop(micro_poolcase_t *c, hmb_runner_t *r, uint64_t *sink) {
  if (c->kind == POOLOP_BORROW) {
    hmb_buffer_t *b;
    int rc = hmb_runner_alloc(r, c->size, 0, &b);
    if (rc)
      return rc;
    unsigned char *p = hmb_buffer_data(b);
    p[0] = 1;
    *sink += p[0];
    rc = hmb_buffer_close(b);
    if (!rc)
      rc = hmb_runner_try_free(r, c->size, NULL);
    return rc;
  }
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

static void *micro_pool_thread(void *arg) {
  micro_poolcase_t *c = arg;
  hmb_runner_t *r = NULL;
  uint64_t sink = 0;
  if (c->kind == POOLOP_BORROW && micro_runner_new(c->pool, 0, &r) != 0)
    atomic_fetch_add(&c->errors, 1);
  int ok = atomic_load(&c->errors) == 0;
  for (int phase = 0; phase < 2; phase++) {
    pthread_barrier_wait(&c->barrier);
    uint64_t t0 = bench_now_ns(), t = t0, n = 0;
    uint64_t dur = phase ? c->run_ns : c->warm_ns;
    while (ok && (t - t0 < dur || n < 3)) {
      for (int k = 0; k < 64; k++, n++)
        if (micro_poolop(c, r, &sink) != 0) {
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
  micro_runner_end(r);
  atomic_fetch_add_explicit(&bench_micro_sink, sink, memory_order_relaxed);
  return NULL;
}

typedef struct micro_pool_row {
  const char *group, *impl;
  int threads;
  double ns_per_op;
  uint64_t waits, overcom;
} micro_pool_row_t;

static int micro_pool_case(int kind, int threads, size_t limit,
                           const bench_opts_t *o, micro_pool_row_t *row) {
  micro_poolcase_t c;
  memset(&c, 0, sizeof c);
  c.kind = kind;
  c.size = 64 * BENCH_KIB;
  c.run_ns = (uint64_t)(o->micro_ms * 1e6);
  c.warm_ns = c.run_ns / 4;
  hmb_pool_config_t pc;
  bench_pool_config_init(&pc);
  pc.limit = limit;
  pc.long_wait_ns = -1; /* contention is the point here: no wait logs */
  if (hmb_pool_create(&pc, &c.pool) != 0)
    return 1;
  pthread_barrier_init(&c.barrier, NULL, (unsigned)threads + 1);
  pthread_t tid[64];
  for (int i = 0; i < threads; i++)
    if (pthread_create(&tid[i], NULL, micro_pool_thread, &c) != 0) {
      fprintf(stderr, "hmb_bench: cannot start a thread\n");
      exit(1);
    }
  pthread_barrier_wait(&c.barrier);
  pthread_barrier_wait(&c.barrier);
  uint64_t t0 = bench_now_ns();
  pthread_barrier_wait(&c.barrier);
  uint64_t t1 = bench_now_ns();
  for (int i = 0; i < threads; i++)
    pthread_join(tid[i], NULL);
  pthread_barrier_destroy(&c.barrier);
  uint64_t ops = atomic_load(&c.ops);
  row->threads = threads;
  row->ns_per_op = ops ? (double)(t1 - t0) * threads / (double)ops : 0;
  hmb_pool_stats_t ps;
  hmb_pool_stats(c.pool, &ps);
  row->waits = kind == POOLOP_BORROW ? ps.borrow_waits : 0;
  row->overcom = ps.acquire_overcommits + ps.borrow_overcommits;
  int bad = atomic_load(&c.errors) != 0;
  if (bad)
    fprintf(stderr, "hmb_bench: micro %s case failed (%d threads)\n",
            kind == POOLOP_BORROW ? "borrow" : "acquire", threads);
  bad |= micro_pool_end(c.pool, kind == POOLOP_BORROW ? "borrow" : "acquire", 0,
                        NULL);
  return bad;
}

static int micro_pool_group(const bench_opts_t *o, micro_pool_row_t *rows,
                            int *nrows) {
  static const int nthr[] = {1, 2, 4, 8};
  size_t est = 64 * BENCH_KIB;
  int n = 0, bad = 0;
  for (int t = 0; t < 4; t++) {
    int k = nthr[t];
    rows[n].group = "acquire";
    rows[n].impl = "fits-all";
    bad |= micro_pool_case(POOLOP_ACQUIRE, k, est * (size_t)k, o, &rows[n++]);
    if (k > 1) {
      rows[n].group = "acquire";
      rows[n].impl = "fits-half";
      bad |= micro_pool_case(POOLOP_ACQUIRE, k, est * (size_t)(k / 2), o,
                             &rows[n++]);
    }
  }
  for (int t = 0; t < 4; t++) {
    int k = nthr[t];
    rows[n].group = "borrow";
    rows[n].impl = k > 1 ? "fits-half" : "fits-all";
    bad |= micro_pool_case(POOLOP_BORROW, k, est * (size_t)(k > 1 ? k / 2 : 1),
                           o, &rows[n++]);
  }
  printf("\n%-8s %-10s %7s %12s %8s %8s\n", "group", "impl", "threads", "ns/op",
         "waits", "overcom");
  for (int i = 0; i < n; i++)
    printf("%-8s %-10s %7d %12.1f %8" PRIu64 " %8" PRIu64 "\n", rows[i].group,
           rows[i].impl, rows[i].threads, rows[i].ns_per_op, rows[i].waits,
           rows[i].overcom);
  printf("(acquire: runner create + start + finish + destroy, 64 KiB "
         "estimate; borrow: allocate 64 KiB\nbeyond what the runner holds, "
         "close, try-free; waits: borrows that had to wait.)\n");
  *nrows = n;
  return bad;
}

/* ---- executor overhead ------------------------------------------------------
 */

/* The bare pool: a mutex + condvar FIFO of malloc'd nodes and W workers. */
typedef struct xnode {
  struct xnode *next;
  int (*fn)(void *);
  void *arg;
} xnode_t;

typedef struct xdone {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  _Atomic uint64_t done;
  _Atomic uint64_t failed; /* tasks that did not end with status 0 */
  uint64_t want;
  int finished; /* under mu */
} xdone_t;

typedef struct xbare {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  xnode_t *head, *tail;
  int stop;
  xdone_t *done;
} xbare_t;

static void xdone_one(xdone_t *d) {
  if (atomic_fetch_add(&d->done, 1) + 1 == d->want) {
    pthread_mutex_lock(&d->mu);
    d->finished = 1;
    pthread_cond_signal(&d->cv);
    pthread_mutex_unlock(&d->mu);
  }
}

static void xdone_wait(xdone_t *d) {
  pthread_mutex_lock(&d->mu);
  while (!d->finished)
    pthread_cond_wait(&d->cv, &d->mu);
  pthread_mutex_unlock(&d->mu);
}

/* The tiny task: nothing at all (the same function for both). */
__attribute__((noinline)) static int micro_empty_task(void *arg) {
  MICRO_ESCAPE(arg);
  return 0;
}

static void *xbare_worker(void *arg) {
  xbare_t *q = arg;
  pthread_mutex_lock(&q->mu);
  for (;;) {
    while (!q->head && !q->stop)
      pthread_cond_wait(&q->cv, &q->mu);
    xnode_t *n = q->head;
    if (!n)
      break;
    q->head = n->next;
    if (!q->head)
      q->tail = NULL;
    pthread_mutex_unlock(&q->mu);
    n->fn(n->arg);
    free(n);
    xdone_one(q->done);
    pthread_mutex_lock(&q->mu);
  }
  pthread_mutex_unlock(&q->mu);
  return NULL;
}

/* ns per task through the bare pool; -1 on failure. */
static double micro_bare_pool(int workers, uint64_t tasks) {
  xbare_t q;
  xdone_t d;
  memset(&q, 0, sizeof q);
  memset(&d, 0, sizeof d);
  pthread_mutex_init(&q.mu, NULL);
  pthread_cond_init(&q.cv, NULL);
  pthread_mutex_init(&d.mu, NULL);
  pthread_cond_init(&d.cv, NULL);
  d.want = tasks;
  q.done = &d;
  pthread_t tid[64];
  for (int i = 0; i < workers; i++)
    if (pthread_create(&tid[i], NULL, xbare_worker, &q) != 0)
      exit(1);
  uint64_t t0 = bench_now_ns();
  for (uint64_t i = 0; i < tasks; i++) {
    xnode_t *n = malloc(sizeof *n);
    if (!n)
      exit(1);
    n->next = NULL;
    n->fn = micro_empty_task;
    n->arg = &q;
    pthread_mutex_lock(&q.mu);
    if (q.tail)
      q.tail->next = n;
    else
      q.head = n;
    q.tail = n;
    pthread_cond_signal(&q.cv);
    pthread_mutex_unlock(&q.mu);
  }
  xdone_wait(&d);
  uint64_t t1 = bench_now_ns();
  pthread_mutex_lock(&q.mu);
  q.stop = 1;
  pthread_cond_broadcast(&q.cv);
  pthread_mutex_unlock(&q.mu);
  for (int i = 0; i < workers; i++)
    pthread_join(tid[i], NULL);
  pthread_mutex_destroy(&q.mu);
  pthread_cond_destroy(&q.cv);
  pthread_mutex_destroy(&d.mu);
  pthread_cond_destroy(&d.cv);
  return (double)(t1 - t0) / (double)tasks;
}

static int micro_hmb_task(void *user, hmb_runner_t *runner) {
  (void)runner;
  return micro_empty_task(user);
}

static void micro_hmb_done(void *user, hmb_task_t *task, int status) {
  (void)task;
  xdone_t *d = user;
  if (status != 0)
    atomic_fetch_add(&d->failed, 1);
  xdone_one(d);
}

/* ns per task through an hmb executor; -1 on failure (reported). */
static double micro_hmb_executor(int workers, uint64_t tasks, size_t estimate) {
  hmb_pool_config_t pc;
  bench_pool_config_init(&pc);
  pc.limit = (size_t)1 << 40;
  hmb_pool_t *pool;
  if (hmb_pool_create(&pc, &pool) != 0)
    return -1;
  hmb_executor_config_t ec;
  memset(&ec, 0, sizeof ec);
  ec.threads = workers;
  ec.name = "micro";
  hmb_executor_t *ex;
  if (hmb_executor_create(pool, &ec, &ex) != 0) {
    hmb_pool_destroy(pool);
    return -1;
  }
  xdone_t d;
  memset(&d, 0, sizeof d);
  pthread_mutex_init(&d.mu, NULL);
  pthread_cond_init(&d.cv, NULL);
  d.want = tasks;
  int bad = 0;
  uint64_t t0 = bench_now_ns();
  for (uint64_t i = 0; i < tasks; i++) {
    hmb_task_desc_t td;
    memset(&td, 0, sizeof td);
    td.estimate = estimate;
    td.run = micro_hmb_task;
    td.user = &d;
    td.done = micro_hmb_done;
    if (hmb_executor_submit(ex, &td, NULL) != 0) {
      bad = 1;
      xdone_one(&d); /* keep the count */
    }
  }
  xdone_wait(&d);
  uint64_t t1 = bench_now_ns();
  if (atomic_load(&d.failed))
    bad = 1;
  hmb_executor_destroy(ex);
  bad |= micro_pool_end(pool, "executor", 0, NULL);
  pthread_mutex_destroy(&d.mu);
  pthread_cond_destroy(&d.cv);
  if (bad) {
    fprintf(stderr, "hmb_bench: executor case failed (%d workers)\n", workers);
    return -1;
  }
  return (double)(t1 - t0) / (double)tasks;
}

typedef struct micro_exec_row {
  int workers;
  size_t estimate;
  int rounds;
  double bare[MAX_ROUNDS], hmb[MAX_ROUNDS], ratio[MAX_ROUNDS];
  double med_bare, med_hmb, med_ratio;
} micro_exec_row_t;

static int micro_exec_group(const bench_opts_t *o, micro_exec_row_t *rows,
                            int *nrows) {
  static const int workers[] = {2, 16};
  static const size_t est[] = {0, 64 * 1024};
  uint64_t tasks = o->quick ? 2000 : 20000;
  int rounds = o->micro_rounds > MAX_ROUNDS ? MAX_ROUNDS : o->micro_rounds;
  int n = 0, bad = 0;
  for (int w = 0; w < 2; w++)
    for (int e = 0; e < 2; e++) {
      micro_exec_row_t *r = &rows[n++];
      memset(r, 0, sizeof *r);
      r->workers = workers[w];
      r->estimate = est[e];
      micro_bare_pool(r->workers, tasks / 10); /* warm-up */
      micro_hmb_executor(r->workers, tasks / 10, r->estimate);
      for (int rd = 0; rd < rounds; rd++) {
        double b, h;
        if (rd % 2 == 0) { /* A B, then B A */
          b = micro_bare_pool(r->workers, tasks);
          h = micro_hmb_executor(r->workers, tasks, r->estimate);
        } else {
          h = micro_hmb_executor(r->workers, tasks, r->estimate);
          b = micro_bare_pool(r->workers, tasks);
        }
        if (h < 0 || b <= 0) {
          bad = 1;
          continue;
        }
        r->bare[r->rounds] = b;
        r->hmb[r->rounds] = h;
        r->ratio[r->rounds] = h / b;
        r->rounds++;
      }
      r->med_bare = micro_median(r->bare, r->rounds);
      r->med_hmb = micro_median(r->hmb, r->rounds);
      r->med_ratio = micro_median(r->ratio, r->rounds);
    }
  printf("\nexecutor: %" PRIu64 " empty tasks submitted at once, first submit "
         "to last completion; ns per task\n(median of %d rounds, A B / B A)\n",
         tasks, rounds);
  printf("%7s %9s %12s %12s %8s\n", "workers", "estimate", "bare pool", "hmb",
         "ratio");
  for (int i = 0; i < n; i++) {
    char e[32];
    micro_size_name(rows[i].estimate, e, sizeof e);
    printf("%7d %9s %12.1f %12.1f %7.2fx%s\n", rows[i].workers, e,
           rows[i].med_bare, rows[i].med_hmb, rows[i].med_ratio,
           rows[i].med_ratio > 2.0 ? "  (goal <= 2x)" : "");
  }
  *nrows = n;
  return bad;
}

/* ---- callgrind: fixed iterations in functions of their own ------------------
 */

typedef void (*micro_cg_fn)(micro_ctx_t *c, uint64_t n);

/* The tag makes every wrapper's body distinct, so that no two are folded
 * into one symbol (identical code folding) and each keeps its name. */
static const char *volatile micro_cg_tag;

#define CG_SIZES(X, impl) X(impl, 64) X(impl, 4k) X(impl, 64k)
#define CG_IMPLS(X)                                                            \
  CG_SIZES(X, malloc)                                                          \
  CG_SIZES(X, memalign)                                                        \
  CG_SIZES(X, hmb)                                                             \
  CG_SIZES(X, hmb_ptr)                                                         \
  CG_SIZES(X, hmb_glibc)                                                       \
  CG_SIZES(X, jemalloc)                                                        \
  CG_SIZES(X, mimalloc)                                                        \
  CG_SIZES(X, tcmalloc)                                                        \
  CG_SIZES(X, hmb_jemalloc)                                                    \
  CG_SIZES(X, hmb_mimalloc)                                                    \
  CG_SIZES(X, hmb_tcmalloc)

#define CG_DEFINE(impl, sz)                                                    \
  void hmb_cg_##impl##_##sz(micro_ctx_t *c, uint64_t n);                       \
  __attribute__((noinline)) void hmb_cg_##impl##_##sz(micro_ctx_t *c,          \
                                                      uint64_t n) {            \
    micro_cg_tag = "hmb_cg_" #impl "_" #sz;                                    \
    for (uint64_t i = 0; i < n; i++)                                           \
      micro_op(c);                                                             \
  }
CG_IMPLS(CG_DEFINE)

#define CG_ENTRY(impl, sz) {"hmb_cg_" #impl "_" #sz, hmb_cg_##impl##_##sz},
static const struct {
  const char *name;
  micro_cg_fn fn;
} micro_cg_table[NIMPLS * 3] = {CG_IMPLS(CG_ENTRY)};

static int micro_callgrind(const bench_opts_t *o) {
  static const size_t sizes[3] = {64, 4096, 65536};
  uint64_t iters = o->callgrind_iters;
  int bad = 0;
  printf("callgrind: %" PRIu64 " iterations per case (allocate, write the "
         "first and last byte, free); build type %s, hmb %s\n",
         iters, HMB_BENCH_BUILD_TYPE, bench_hmb_library_version());
  for (int i = 0; i < NIMPLS; i++)
    for (int s = 0; s < 3; s++) {
      const micro_impl_t *im = &micro_impls[i];
      const char *fname = micro_cg_table[i * 3 + s].name;
      const char *why = micro_unavailable(im);
      if (why) {
        printf("cg %-14s %6zu %-24s skipped: %s\n", im->name, sizes[s], fname,
               why);
        continue;
      }
      micro_ctx_t c;
      memset(&c, 0, sizeof c);
      c.im = im;
      c.size = sizes[s];
      c.touch = TOUCH_ENDS;
      c.peer = im->peer >= 0 ? &micro_peers[im->peer] : NULL;
      hmb_pool_t *pool = NULL;
      hmb_backend_t be;
      memset(&be, 0, sizeof be);
      if (micro_is_hmb(im->kind)) {
        if (micro_pool_new(im, (size_t)1 << 30, &be, &pool) != 0 ||
            micro_runner_new(pool, 2 * sizes[s], &c.runner) != 0) {
          fprintf(stderr, "hmb_bench: callgrind %s: set-up failed\n", im->name);
          return 1;
        }
        c.alloc = hmb_runner_allocator(c.runner);
      }
      for (int w = 0; w < 1000; w++) /* warm-up, not collected */
        micro_op(&c);
      micro_cg_table[i * 3 + s].fn(&c, iters);
      if (c.err) {
        fprintf(stderr, "hmb_bench: callgrind %s %zu: an operation failed\n",
                im->name, sizes[s]);
        bad = 1;
      }
      micro_runner_end(c.runner);
      if (pool)
        bad |= micro_pool_end(pool, im->name, 1, NULL);
      atomic_fetch_add(&bench_micro_sink, c.sink);
      printf("cg %-14s %6zu %-24s %" PRIu64 "\n", im->name, sizes[s], fname,
             iters);
    }
  return bad;
}

/* ---- options and outputs --------------------------------------------------
 */

static int micro_parse_layouts(const char *s, micro_layout_t *out, int max) {
  int n = 0;
  while (s && *s && n < max) {
    char *end;
    long v = strtol(s, &end, 10);
    if (end == s || v < 1 || v > 64)
      return -1;
    out[n].threads = (int)v;
    out[n].shared = 0;
    if (*end == 's') {
      out[n].shared = 1;
      end++;
    }
    snprintf(out[n].name, sizeof out[n].name, "%ld%s", v,
             out[n].shared ? " shared" : "");
    n++;
    s = *end == ',' ? end + 1 : end;
    if (*end && *end != ',')
      return -1;
  }
  return n;
}

/* "64,4k,1m": bytes with an optional k/m suffix (powers of two). */
static int micro_parse_sizes(const char *s, size_t *out, int max) {
  int n = 0;
  while (s && *s && n < max) {
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (end == s || v == 0)
      return -1;
    if (*end == 'k' || *end == 'K') {
      v <<= 10;
      end++;
    } else if (*end == 'm' || *end == 'M') {
      v <<= 20;
      end++;
    }
    if (v > (1ull << 30))
      return -1;
    out[n++] = (size_t)v;
    s = *end == ',' ? end + 1 : end;
    if (*end && *end != ',')
      return -1;
  }
  return n;
}

static int micro_write_csv(const char *path, const micro_alloc_row_t *ar,
                           int na, const micro_layout_t *lay,
                           const micro_pool_row_t *pr, int np,
                           const micro_exec_row_t *er, int ne) {
  FILE *f = fopen(path, "w");
  if (!f) {
    perror(path);
    return -1;
  }
  fprintf(f, "group,impl,touch,threads,shared_runner,size_bytes,rounds,"
             "ns_per_op,ratio_vs_malloc,ratio_min,ratio_max,borrows,waits,"
             "overcommits,note\n");
  for (int i = 0; i < na; i++) {
    const micro_alloc_row_t *r = &ar[i];
    fprintf(f, "alloc,%s,%s,%d,%d,%zu,%d,%.2f,%.4f,%.4f,%.4f,%" PRIu64 ",,,",
            micro_impls[r->impl].name, micro_touch_names[r->touch],
            lay[r->layout].threads, lay[r->layout].shared, r->size, r->rounds,
            r->med_ns, r->med_ratio, r->min_ratio, r->max_ratio, r->borrows);
    if (r->why)
      fprintf(f, "\"%s\"", r->why);
    fprintf(f, "\n");
  }
  for (int i = 0; i < np; i++)
    fprintf(f, "%s,%s,,%d,0,%zu,1,%.2f,,,,,%" PRIu64 ",%" PRIu64 ",\n",
            pr[i].group, pr[i].impl, pr[i].threads, (size_t)64 * BENCH_KIB,
            pr[i].ns_per_op, pr[i].waits, pr[i].overcom);
  for (int i = 0; i < ne; i++) {
    fprintf(f, "executor,bare-pool,,%d,0,%zu,%d,%.2f,,,,,,,\n", er[i].workers,
            er[i].estimate, er[i].rounds, er[i].med_bare);
    fprintf(f, "executor,hmb,,%d,0,%zu,%d,%.2f,%.4f,,,,,,\n", er[i].workers,
            er[i].estimate, er[i].rounds, er[i].med_hmb, er[i].med_ratio);
  }
  return fclose(f) == 0 ? 0 : -1;
}

static int micro_write_json(const char *path, const micro_alloc_row_t *ar,
                            int na, const micro_layout_t *lay,
                            const micro_pool_row_t *pr, int np,
                            const micro_exec_row_t *er, int ne) {
  FILE *f = fopen(path, "w");
  if (!f) {
    perror(path);
    return -1;
  }
  bench_env_t env;
  bench_env_collect(&env);
  fprintf(f, "{\n  \"version\": ");
  bench_json_str(f, BENCH_HMB_VERSION);
  fprintf(f, ",\n  ");
  bench_env_json(f, &env);
  fprintf(f, ",\n  \"alloc\": [\n");
  for (int i = 0; i < na; i++) {
    const micro_alloc_row_t *r = &ar[i];
    fprintf(f, "    {\"impl\": ");
    bench_json_str(f, micro_impls[r->impl].name);
    fprintf(f,
            ", \"touch\": \"%s\", \"threads\": %d, \"shared_runner\": %s, "
            "\"size_bytes\": %zu, \"rounds\": %d, \"ns_per_op\": %.2f, "
            "\"ratio_vs_malloc\": %.4f, \"borrows\": %" PRIu64 ", \"note\": ",
            micro_touch_names[r->touch], lay[r->layout].threads,
            lay[r->layout].shared ? "true" : "false", r->size, r->rounds,
            r->med_ns, r->med_ratio, r->borrows);
    bench_json_str(f, r->why ? r->why : "");
    fprintf(f, "}%s\n", i + 1 < na ? "," : "");
  }
  fprintf(f, "  ],\n  \"pool\": [\n");
  for (int i = 0; i < np; i++)
    fprintf(f,
            "    {\"group\": \"%s\", \"impl\": \"%s\", \"threads\": %d, "
            "\"ns_per_op\": %.2f, \"waits\": %" PRIu64
            ", \"overcommits\": %" PRIu64 "}%s\n",
            pr[i].group, pr[i].impl, pr[i].threads, pr[i].ns_per_op,
            pr[i].waits, pr[i].overcom, i + 1 < np ? "," : "");
  fprintf(f, "  ],\n  \"executor\": [\n");
  for (int i = 0; i < ne; i++)
    fprintf(f,
            "    {\"workers\": %d, \"estimate_bytes\": %zu, \"rounds\": %d, "
            "\"bare_ns_per_task\": %.2f, \"hmb_ns_per_task\": %.2f, "
            "\"ratio\": %.4f}%s\n",
            er[i].workers, er[i].estimate, er[i].rounds, er[i].med_bare,
            er[i].med_hmb, er[i].med_ratio, i + 1 < ne ? "," : "");
  fprintf(f, "  ]\n}\n");
  return fclose(f) == 0 ? 0 : -1;
}

/* Which groups run: a comma list of alloc, acquire, borrow, executor. */
static unsigned micro_groups(const char *s) {
  if (!s)
    return 15;
  unsigned m = 0;
  static const char *const names[] = {"alloc", "pool", "executor"};
  while (*s) {
    size_t n = strcspn(s, ",");
    int found = 0;
    for (int i = 0; i < 3; i++)
      if (strlen(names[i]) == n && strncmp(s, names[i], n) == 0) {
        m |= 1u << i;
        found = 1;
      }
    if (!found)
      return 0;
    s += n;
    if (*s == ',')
      s++;
  }
  return m;
}

int bench_micro_prepare(const bench_opts_t *o, char **argv) {
  unsigned g = micro_groups(o->micro_groups);
  if (g == 0) {
    fprintf(stderr,
            "hmb_bench: --micro-groups: '%s' is not a comma list of alloc, "
            "pool, executor\n",
            o->micro_groups);
    return 2;
  }
  if (o->callgrind || (g & 1u))
    micro_load_peers(argv);
  return 0;
}

int bench_micro_main(const bench_opts_t *o) {
  if (o->callgrind)
    return micro_callgrind(o);
  static const size_t default_sizes[] = {
      64,        4 * BENCH_KIB, 64 * BENCH_KIB,
      BENCH_MIB, 8 * BENCH_MIB, 64 * BENCH_MIB};
  size_t sizes[MAX_SIZES];
  int nsizes = 6;
  memcpy(sizes, default_sizes, sizeof default_sizes);
  if (o->micro_sizes &&
      (nsizes = micro_parse_sizes(o->micro_sizes, sizes, MAX_SIZES)) <= 0) {
    fprintf(stderr, "hmb_bench: bad --micro-sizes '%s'\n", o->micro_sizes);
    return 2;
  }
  micro_layout_t lay[MAX_LAYOUTS];
  int nlay = micro_parse_layouts(o->micro_threads, lay, MAX_LAYOUTS);
  if (nlay <= 0) {
    fprintf(stderr, "hmb_bench: bad --micro-threads '%s'\n", o->micro_threads);
    return 2;
  }
  unsigned groups = micro_groups(o->micro_groups);
  if (!o->quiet)
    printf("hmb_bench %s micro (hmb %s): %.0f ms per case after %.0f ms "
           "warm-up, %d round%s, threads %s\n",
           BENCH_HMB_VERSION, bench_hmb_library_version(), o->micro_ms,
           o->micro_ms / 4, o->micro_rounds, o->micro_rounds == 1 ? "" : "s",
           o->micro_threads);
  int bad = 0;
  micro_alloc_row_t *ar = NULL;
  int na = 0, np = 0, ne = 0;
  micro_pool_row_t pr[16];
  micro_exec_row_t er[8];
  if (groups & 1u)
    bad |= micro_alloc_group(o, sizes, nsizes, lay, nlay, &ar, &na);
  if (groups & 2u)
    bad |= micro_pool_group(o, pr, &np);
  if (groups & 4u)
    bad |= micro_exec_group(o, er, &ne);
  if (o->csv && micro_write_csv(o->csv, ar, na, lay, pr, np, er, ne) != 0)
    bad = 1;
  if (o->json && micro_write_json(o->json, ar, na, lay, pr, np, er, ne) != 0)
    bad = 1;
  free(ar);
  if (bad) {
    fprintf(stderr, "hmb_bench: a microbenchmark check failed\n");
    return 1;
  }
  return 0;
}
