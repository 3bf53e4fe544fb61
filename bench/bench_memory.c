/*
 * bench_memory.c - the memory backends, measured against raw alternatives in
 * one run.
 *
 *   1. alloc + fill + close through a runner, 4 KiB .. 64 MiB: the default
 *      configuration (warm cache) vs HMB_POOL_NO_CACHE vs raw malloc/free,
 *      in rotated order every repetition, with ratios;
 *   2. a fresh 8 MiB mapping (mmap + fill + munmap) vs refilling a reused
 *      8 MiB buffer: the price of a cold page;
 *   3. with a usable GPU: region set-up time for both creation methods,
 *      whether pool blocks are really pinned, and host-to-device copy speed
 *      from a pinned vs a pageable buffer (the copies need this program to
 *      be built with the CUDA toolkit, see bench_gpu.h). Without a GPU, the
 *      section says it was skipped and why (the pinned reason a pool reports).
 *
 * Each figure is the median of REPS timed repetitions after one warm-up
 * repetition; a sink keeps the fills alive. The human table goes to stdout,
 * followed by the same figures as CSV lines starting with "csv,".
 * Environment: HMB_BENCH_QUICK=1 runs about 8x less work.
 */
#define _DEFAULT_SOURCE /* MAP_ANONYMOUS; clock_gettime and sysconf are POSIX  \
                         */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "bench_gpu.h"
#include "hmb.h"

/* The bench's own clock and mappings: it uses only the public API. */
static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static unsigned char *map_fresh(size_t size) {
  void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  return p == MAP_FAILED ? NULL : p;
}

enum { REPS = 5 };

static volatile uint64_t sink;
static char csv[16384];
static size_t csv_len;

static void csv_add(const char *line) {
  int n = snprintf(csv + csv_len, sizeof csv - csv_len, "csv,%s\n", line);
  if (n > 0 && (size_t)n < sizeof csv - csv_len)
    csv_len += (size_t)n;
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

static uint64_t median(uint64_t *v, int n) {
  qsort(v, (size_t)n, sizeof *v, cmp_u64);
  return v[n / 2];
}

static void die(const char *what, int rc) {
  fprintf(stderr, "bench_memory: %s failed: %s\n", what, hmb_strerror(rc));
  exit(1);
}

/* ---- 1. alloc + fill + close ------------------------------------------------
 */

enum { MODE_CACHE = 0, MODE_NOCACHE = 1, MODE_MALLOC = 2, NMODES = 3 };
static const char *const mode_names[NMODES] = {"warm cache", "no cache",
                                               "malloc"};

/* One mode's pool and runner (none for malloc). */
typedef struct mode_ctx {
  hmb_pool_t *pool;
  hmb_runner_t *runner;
} mode_ctx_t;

/* "warm cache": the default configuration, only the limit set (the cache
 * keeps freed blocks of 256 KiB or more in the budget nobody holds);
 * "no cache": HMB_POOL_NO_CACHE, every such block is mapped and unmapped. */
static void mode_open(int mode, size_t size, mode_ctx_t *c) {
  memset(c, 0, sizeof *c);
  if (mode == MODE_MALLOC)
    return;
  hmb_pool_config_t cfg;
  hmb_pool_config_init(&cfg);
  cfg.limit = (size_t)1 << 30;
  if (mode == MODE_NOCACHE)
    cfg.flags = HMB_POOL_NO_CACHE;
  int rc = hmb_pool_create(&cfg, &c->pool);
  if (rc)
    die("hmb_pool_create", rc);
  hmb_runner_config_t rcfg = {0};
  rcfg.estimate = size;
  rcfg.name = "bench";
  if ((rc = hmb_runner_create(c->pool, &rcfg, &c->runner)) != 0)
    die("hmb_runner_create", rc);
  if ((rc = hmb_runner_start(c->runner, 0)) != 0)
    die("hmb_runner_start", rc);
}

static void mode_close(mode_ctx_t *c) {
  if (!c->pool)
    return;
  hmb_runner_finish(c->runner, 0, NULL);
  hmb_runner_destroy(c->runner);
  int rc = hmb_pool_destroy(c->pool);
  if (rc)
    die("hmb_pool_destroy", rc);
}

/* ns of `iters` alloc + fill + close of `size` in one mode. */
static uint64_t mode_time(int mode, mode_ctx_t *c, size_t size, long iters) {
  uint64_t t0 = now_ns();
  for (long i = 0; i < iters; i++) {
    unsigned char *p;
    hmb_buffer_t *b = NULL;
    if (mode == MODE_MALLOC) {
      p = malloc(size);
      if (!p)
        die("malloc", HMB_ENOMEM);
    } else {
      int rc = hmb_runner_alloc(c->runner, size, 0, &b);
      if (rc)
        die("hmb_runner_alloc", rc);
      p = hmb_buffer_data(b);
    }
    memset(p, (int)(i & 0x7f) + 1, size);
    sink += p[0] + p[size - 1];
    if (mode == MODE_MALLOC)
      free(p);
    else
      hmb_buffer_close(b);
  }
  return now_ns() - t0;
}

/*
 * ns per alloc + fill + close of `size` for every mode: one warm-up
 * repetition, then REPS, each running the modes one after the other in an
 * order rotated every repetition (so that no mode always runs first on a
 * machine whose load drifts); the median of each mode's repetitions.
 */
static void run_modes(size_t size, long iters, uint64_t *ns) {
  mode_ctx_t c[NMODES];
  uint64_t t[NMODES][REPS];
  for (int m = 0; m < NMODES; m++)
    mode_open(m, size, &c[m]);
  for (int rep = -1; rep < REPS; rep++)
    for (int k = 0; k < NMODES; k++) {
      int m = (k + (rep < 0 ? 0 : rep)) % NMODES;
      uint64_t dt = mode_time(m, &c[m], size, iters);
      if (rep >= 0)
        t[m][rep] = dt;
    }
  for (int m = 0; m < NMODES; m++) {
    mode_close(&c[m]);
    ns[m] = median(t[m], REPS) / (uint64_t)iters;
  }
}

static void bench_alloc_fill_close(size_t work) {
  static const size_t sizes[] = {4 << 10, 16 << 10, 64 << 10, 256 << 10,
                                 1 << 20, 4 << 20,  16 << 20, 64 << 20};
  printf("\n1. alloc + fill + close through a runner (ns per operation, "
         "median of %d)\n",
         REPS);
  printf("%10s %8s %12s %12s %12s %10s %10s\n", "size", "iters", mode_names[0],
         mode_names[1], mode_names[2], "nocache/", "malloc/");
  printf("%10s %8s %12s %12s %12s %10s %10s\n", "", "", "", "", "", "cache",
         "cache");
  csv_add("alloc_fill_close,size,iters,cache_ns,nocache_ns,malloc_ns,"
          "nocache_over_cache,malloc_over_cache");
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    size_t size = sizes[i];
    long iters = (long)(work / size);
    if (iters < 4)
      iters = 4;
    if (iters > 50000)
      iters = 50000;
    uint64_t ns[NMODES];
    run_modes(size, iters, ns);
    double r1 = (double)ns[MODE_NOCACHE] / (double)ns[MODE_CACHE];
    double r2 = (double)ns[MODE_MALLOC] / (double)ns[MODE_CACHE];
    char label[32];
    if (size >= (1 << 20))
      snprintf(label, sizeof label, "%zu MiB", size >> 20);
    else
      snprintf(label, sizeof label, "%zu KiB", size >> 10);
    printf("%10s %8ld %12" PRIu64 " %12" PRIu64 " %12" PRIu64
           " %9.2fx %9.2fx\n",
           label, iters, ns[0], ns[1], ns[2], r1, r2);
    char line[256];
    snprintf(line, sizeof line,
             "alloc_fill_close,%zu,%ld,%" PRIu64 ",%" PRIu64 ",%" PRIu64
             ",%.3f,%.3f",
             size, iters, ns[0], ns[1], ns[2], r1, r2);
    csv_add(line);
  }
}

/* ---- 2. fresh mapping vs reused buffer
 * --------------------------------------- */

static void bench_fresh_vs_reused(long iters) {
  size_t size = (size_t)8 << 20;
  uint64_t fresh[REPS], reused[REPS];
  unsigned char *keep = map_fresh(size);
  if (!keep)
    die("mmap", HMB_ENOMEM);
  memset(keep, 1, size);
  for (int rep = -1; rep < REPS; rep++) {
    uint64_t t0 = now_ns();
    for (long i = 0; i < iters; i++) {
      unsigned char *p = map_fresh(size);
      if (!p)
        die("mmap", HMB_ENOMEM);
      memset(p, (int)(i & 0x7f) + 1, size);
      sink += p[size - 1];
      munmap(p, size);
    }
    uint64_t t1 = now_ns();
    for (long i = 0; i < iters; i++) {
      memset(keep, (int)(i & 0x7f) + 1, size);
      sink += keep[size - 1];
    }
    uint64_t t2 = now_ns();
    if (rep >= 0) {
      fresh[rep] = (t1 - t0) / (uint64_t)iters;
      reused[rep] = (t2 - t1) / (uint64_t)iters;
    }
  }
  munmap(keep, size);
  uint64_t f = median(fresh, REPS), r = median(reused, REPS);
  size_t pages = size / (size_t)sysconf(_SC_PAGESIZE);
  printf("\n2. 8 MiB: mmap + fill + munmap vs refill of a reused buffer "
         "(median of %d x %ld)\n",
         REPS, iters);
  printf("   fresh mapping %8.3f ms  (%.2f GB/s)\n", (double)f / 1e6,
         (double)size / (double)f);
  printf("   reused buffer %8.3f ms  (%.2f GB/s)\n", (double)r / 1e6,
         (double)size / (double)r);
  printf("   fresh / reused = %.2fx; cost of a cold page ~ %.0f ns "
         "(%zu pages)\n",
         (double)f / (double)r, (double)(f > r ? f - r : 0) / (double)pages,
         pages);
  char line[256];
  csv_add("fresh_vs_reused,size,fresh_ns,reused_ns,ratio,cold_page_ns");
  snprintf(line, sizeof line,
           "fresh_vs_reused,%zu,%" PRIu64 ",%" PRIu64 ",%.3f,%.1f", size, f, r,
           (double)f / (double)r, (double)(f > r ? f - r : 0) / (double)pages);
  csv_add(line);
}

/* ---- 3. GPU
 * ------------------------------------------------------------------ */

static double copy_gbps(void *dev, const void *host, size_t size, int reps) {
  uint64_t t[REPS];
  if (reps > REPS)
    reps = REPS;
  if (bench_gpu_copy(dev, host, size) != 0) /* warm-up */
    return 0.0;
  for (int i = 0; i < reps; i++) {
    uint64_t t0 = now_ns();
    if (bench_gpu_copy(dev, host, size) != 0)
      return 0.0;
    t[i] = now_ns() - t0;
  }
  return (double)size / (double)median(t, reps);
}

/* A pool of `limit` with a pinned region of `pinned` bytes made by
 * `method`; dies if the pool cannot be created (a region that cannot be
 * made is not an error: its reason is in the memory stats). */
static hmb_pool_t *pinned_pool(size_t limit, size_t pinned, int method) {
  hmb_pool_config_t cfg;
  hmb_pool_config_init(&cfg);
  cfg.limit = limit;
  cfg.pinned_bytes = pinned;
  cfg.pinned_method = method;
  hmb_pool_t *pool = NULL;
  int rc = hmb_pool_create(&cfg, &pool);
  if (rc)
    die("hmb_pool_create", rc);
  return pool;
}

static void bench_gpu(void) {
  printf("\n3. pinned memory (CUDA)\n");
  /* The library's view: a pool that asks for a small pinned region loads
   * the runtime and says what it got, or why not. */
  hmb_pool_t *probe =
      pinned_pool((size_t)64 << 20, (size_t)2 << 20, HMB_PINNED_HOST_ALLOC);
  hmb_memory_stats_t ms;
  hmb_pool_memory_stats(probe, &ms);
  int usable = ms.pinned_capacity > 0;
  char reason[256];
  snprintf(reason, sizeof reason, "%s", ms.pinned_reason);
  printf("   CUDA runtime: %s\n", ms.cuda_runtime);
  hmb_pool_destroy(probe);
  if (!usable) {
    printf("   GPU measurements skipped: %s\n", reason);
    printf("   (no region set-up time, pinned check or copy speed was "
           "measured in this run)\n");
    csv_add("gpu,skipped");
    return;
  }
  static const size_t region_sizes[] = {(size_t)256 << 20, (size_t)1 << 30};
  static const char *const methods[] = {"cudaHostAlloc",
                                        "map+pre-touch+cudaHostRegister"};
  csv_add("gpu_setup,method,bytes,ns");
  for (size_t s = 0; s < 2; s++) {
    for (int m = 0; m < 2; m++) {
      /* The set-up time the pool measured for its region. */
      hmb_pool_t *pool = pinned_pool(2 * region_sizes[s], region_sizes[s], m);
      hmb_pool_memory_stats(pool, &ms);
      uint64_t dt = ms.pinned_setup_ns;
      int made = ms.pinned_capacity >= (int64_t)region_sizes[s];
      if (!made)
        printf("   set-up %-31s %5zu MiB: failed: %s\n", methods[m],
               region_sizes[s] >> 20, ms.pinned_reason);
      hmb_pool_destroy(pool);
      if (!made)
        continue;
      printf("   set-up %-31s %5zu MiB: %9.1f ms (%.1f ms per GiB)\n",
             methods[m], region_sizes[s] >> 20, (double)dt / 1e6,
             (double)dt / 1e6 * (double)((size_t)1 << 30) /
                 (double)region_sizes[s]);
      char line[160];
      snprintf(line, sizeof line, "gpu_setup,%d,%zu,%" PRIu64, m,
               region_sizes[s], dt);
      csv_add(line);
    }
  }
  /* A pool with a pinned region: one block pinned, one pageable. */
  size_t size = (size_t)64 << 20;
  hmb_pool_config_t cfg;
  hmb_pool_config_init(&cfg);
  cfg.limit = (size_t)1 << 30;
  cfg.pinned_bytes = (size_t)256 << 20;
  hmb_pool_t *pool = NULL;
  int rc = hmb_pool_create(&cfg, &pool);
  if (rc)
    die("hmb_pool_create", rc);
  hmb_runner_config_t rcfg = {0};
  rcfg.estimate = 2 * size;
  hmb_runner_t *runner = NULL;
  if ((rc = hmb_runner_create(pool, &rcfg, &runner)) != 0 ||
      (rc = hmb_runner_start(runner, 0)) != 0)
    die("runner", rc);
  hmb_buffer_t *pin = NULL, *pag = NULL;
  if ((rc = hmb_runner_alloc(runner, size, HMB_ALLOC_PINNED, &pin)) != 0 ||
      (rc = hmb_runner_alloc(runner, size, 0, &pag)) != 0)
    die("hmb_runner_alloc", rc);
  memset(hmb_buffer_data(pin), 1, size);
  memset(hmb_buffer_data(pag), 2, size);
  int pinned_attr = bench_gpu_is_pinned(hmb_buffer_data(pin));
  int pageable_attr = bench_gpu_is_pinned(hmb_buffer_data(pag));
  printf("   pool block: hmb_buffer_is_pinned=%d, runtime says pinned host=%d;"
         " pageable block: runtime says pinned host=%d\n",
         hmb_buffer_is_pinned(pin), pinned_attr, pageable_attr);
  void *dev = NULL;
  const char *no_copy = "";
  if (!bench_gpu_usable(&no_copy)) {
    printf("   no GPU copy: %s\n", no_copy);
    csv_add("gpu_copy,skipped");
  } else if (bench_gpu_alloc(size, &dev) != 0) {
    die("cudaMalloc", HMB_ENOMEM);
  } else {
    /* The baseline: pinned memory straight from cudaMallocHost. */
    void *mh = NULL;
    double gm = 0;
    if (bench_gpu_host_alloc(size, &mh) == 0) {
      memset(mh, 3, size);
      gm = copy_gbps(dev, mh, size, REPS);
      bench_gpu_host_free(mh);
    }
    double gp = copy_gbps(dev, hmb_buffer_data(pin), size, REPS);
    double gq = copy_gbps(dev, hmb_buffer_data(pag), size, REPS);
    printf("   host-to-device copy of 64 MiB: hmb pinned %.2f GB/s, "
           "cudaMallocHost %.2f GB/s, pageable %.2f GB/s; hmb pinned / "
           "cudaMallocHost %.2fx, / pageable %.2fx\n",
           gp, gm, gq, gm > 0 ? gp / gm : 0.0, gq > 0 ? gp / gq : 0.0);
    char line[160];
    csv_add("gpu_copy,bytes,pinned_gbps,mallochost_gbps,pageable_gbps,"
            "pinned_attr,pageable_attr");
    snprintf(line, sizeof line, "gpu_copy,%zu,%.3f,%.3f,%.3f,%d,%d", size, gp,
             gm, gq, pinned_attr, pageable_attr);
    csv_add(line);
    bench_gpu_free(dev);
  }
  hmb_buffer_close(pin);
  hmb_buffer_close(pag);
  hmb_runner_finish(runner, 0, NULL);
  hmb_runner_destroy(runner);
  hmb_pool_destroy(pool);
}

int main(void) {
  const char *q = getenv("HMB_BENCH_QUICK");
  int quick = q && *q && *q != '0';
  size_t work = quick ? (size_t)32 << 20 : (size_t)256 << 20;
  const char *copies = "";
  int gpu_copies = bench_gpu_usable(&copies);
  printf("bench_memory: hmb %s, page size %ld, %ld online CPUs, GPU copies: "
         "%s%s (the library's CUDA runtime: section 3)\n",
         hmb_version_string(), sysconf(_SC_PAGESIZE),
         sysconf(_SC_NPROCESSORS_ONLN), gpu_copies ? "yes" : copies,
         quick ? " (quick)" : "");
  bench_alloc_fill_close(work);
  bench_fresh_vs_reused(quick ? 4 : 32);
  bench_gpu();
  printf("\n%s", csv);
  printf("sink %" PRIu64 "\n", (uint64_t)sink);
  return 0;
}
