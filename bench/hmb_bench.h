/*
 * hmb_bench.h - declarations shared by the files of the hmb_bench program.
 *
 *   hmb_bench.c        command line, output (table, CSV, JSON), sweep, chart
 *   hmb_bench_env.c    the run's environment (build, host, date, load),
 *                      output-path checks, helper programs, progress ticker
 *   hmb_bench_scan.c   the scan scenario: splits, policies, scan tasks on the
 *                      executor, the consumer stage, invariant checks
 *   hmb_bench_micro.c  microbenchmarks (runner fast path vs raw backend,
 *                      pool acquire/release and borrow under contention)
 *
 * Units used everywhere: sizes in bytes (printed in MiB = 2^20 bytes),
 * rates in bytes per second (given and printed as MB/s and GB/s, powers of
 * ten), times in nanoseconds (printed in seconds or ns/op).
 */
#ifndef HMB_BENCH_H
#define HMB_BENCH_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#if defined(__GNUC__)
#define BENCH_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define BENCH_PRINTF(f, a)
#endif

#define BENCH_MIB ((size_t)1 << 20)
#define BENCH_KIB ((size_t)1 << 10)

/* Ways of using the library, in the order they run. */
typedef enum bench_policy {
  BENCH_UNLIMITED = 0, /* no budget: the throughput ceiling */
  BENCH_VIRTUAL = 1,   /* estimate reserved until consumed; memory unbound */
  BENCH_BOUND = 2,     /* buffers through the runner; over-claim at finish */
  BENCH_EARLY = 3,     /* bound + set-need once the footer is read */
  BENCH_ORACLE = 4,    /* estimate = exact real need */
  BENCH_NPOLICIES = 5
} bench_policy_t;

/* Consumer order. */
enum { BENCH_ORDER_SPLIT = 0, BENCH_ORDER_COMPLETION = 1 };

/* Every parameter of a run; bench_opts_defaults() fills the built-in one. */
typedef struct bench_opts {
  uint64_t seed;
  int splits;
  size_t split_min, split_max;   /* split length: log-uniform in [min, max] */
  size_t chunk;                  /* column chunk size */
  double keep;                   /* probability that a chunk is kept */
  size_t footer_min, footer_max; /* footer size: log-uniform */
  double footer_outside;         /* probability that the footer is outside */
  int threads;                   /* scan threads (executor workers) */
  double latency_ms;             /* storage latency per read request */
  double stream_mbps;            /* per-stream storage bandwidth (MB/s) */
  double sink_mbps;              /* consumer copy rate (MB/s); 0: unpaced */
  int gpu;       /* consumer copies to the GPU: -1 auto, 0 never, 1 required */
  size_t pinned; /* pinned region of each pool (0: none); buffers prefer it */
  size_t budget; /* pool limit of the budgeted policies */
  double acquire_timeout_ms; /* one admission attempt of the executor */
  int order;                 /* BENCH_ORDER_* */
  unsigned policies;         /* bit mask of bench_policy_t */
  int fail_split;            /* self-test: this split's task fails (-1: none) */
  int quick;
  int quiet;
  int progress; /* -1: auto (stderr is a terminal), 0: off, 1: on */
  const char *csv, *json;
  const char *sweep; /* NULL: no sweep; else a comma list of MiB or "" */
  const char *sweep_csv, *sweep_png;
  /* microbenchmarks */
  int micro;
  double micro_ms;           /* measured time per case */
  const char *micro_threads; /* comma list, e.g. "1,2" */
} bench_opts_t;

/* Results of one policy run. */
typedef struct bench_result {
  int policy;
  int64_t limit;          /* pool limit used (huge for unlimited) */
  double wall_s;          /* first submit to last buffer closed */
  uint64_t delivered;     /* bytes copied into the sink */
  uint64_t pieces;        /* buffers consumed */
  double gbps;            /* delivered / wall, 1e9 bytes/s */
  double ratio;           /* gbps / gbps of unlimited (0 if not run) */
  int64_t peak_live;      /* pool: peak bytes of live runner buffers */
  int64_t peak_held;      /* pool: peak budget held */
  int64_t peak_over;      /* pool: peak over-committed budget */
  int64_t phys_peak;      /* bench-counted peak of live data bytes */
  int64_t lib_phys_peak;  /* library's pageable peak (see scan.c) */
  double mean_running;    /* integrated task time / wall */
  double sampled_running; /* mean of periodic executor samples */
  double wait_s;          /* executor: time tasks waited for budget, summed */
  double wait_max_s;      /* executor: longest single wait */
  uint64_t borrows, borrow_waits, borrow_overcommits;
  uint64_t acquire_overcommits, requeues;
  uint64_t released_early; /* bytes returned by set-need */
  uint64_t failed;         /* tasks that did not finish with status 0 */
  uint64_t log_warnings;   /* library warnings (over-commit, long waits) */
  int ok;                  /* every invariant held */
  char error[512];         /* first broken invariant, if !ok */
} bench_result_t;

/* Scenario summary, for printing. */
typedef struct bench_scenario_info {
  int splits;
  uint64_t total_estimate, total_need;
  size_t max_estimate, max_need;
  int need_above_estimate; /* splits whose need exceeds their estimate */
  uint64_t pieces;
} bench_scenario_info_t;

typedef struct bench_scenario bench_scenario_t;

/*
 * Where the consumer copies: 1 to GPU memory (cudaMemcpy through
 * bench_gpu.h), 0 to a host sink. With gpu == 1 and no usable
 * GPU, returns -1. *why says what was chosen and why.
 */
int bench_gpu_target(const bench_opts_t *o, const char **why);

/* Clock and sleep (monotonic). */
uint64_t bench_now_ns(void);
void bench_sleep_ns(uint64_t ns);

const char *bench_policy_name(int policy);

/* Build the splits of `o` (deterministic for a seed); NULL on no memory. */
bench_scenario_t *bench_scenario_create(const bench_opts_t *o);
void bench_scenario_destroy(bench_scenario_t *sc);
void bench_scenario_describe(const bench_scenario_t *sc,
                             bench_scenario_info_t *out);

/*
 * Run one policy on the scenario with a fresh pool of `limit` bytes (ignored
 * for unlimited). Fills *out; returns 0 when the run finished and every
 * invariant held, 1 when an invariant broke (out->error says which), or a
 * negative HMB_E* code when the run could not be set up.
 */
int bench_run_policy(const bench_opts_t *o, const bench_scenario_t *sc,
                     int policy, size_t limit, bench_result_t *out);

/* Microbenchmarks; returns the process exit status. */
int bench_micro_main(const bench_opts_t *o);

/* ---- the run's environment and command-line services (hmb_bench_env.c) */

/* Where and how the bench runs, for the JSON output and the load warning. */
typedef struct bench_env {
  char build_type[32];    /* CMake build type, "none" if unset */
  char compiler[96];      /* e.g. "gcc 12.2.0" */
  char git_commit[48];    /* at configure time; "unknown" outside a checkout */
  char sanitizers[64];    /* HMB_SANITIZE of the build, "" if none */
  char library[32];       /* hmb_version_string() of the library in use */
  char host[128];         /* host name */
  char date[32];          /* start of the run, UTC, ISO 8601 */
  int cpus;               /* online CPUs */
  double load1;           /* 1-minute load average before the run; -1 unknown */
  char load_warning[192]; /* "" unless load1 > cpus / 2 */
} bench_env_t;

void bench_env_collect(bench_env_t *e);
/* Print the load warning on stderr, if there is one. */
void bench_env_warn(const bench_env_t *e);
/* Write "build": {...}, "host": {...}, "date": "..." (no trailing comma). */
void bench_env_json(FILE *f, const bench_env_t *e);
/* A JSON string, with quotes, backslashes and control characters escaped. */
void bench_json_str(FILE *f, const char *s);
/* The --help text (bench/hmb_bench.usage, compiled in). */
const char *bench_usage_text(void);

/*
 * 0 if `path` can be written (an existing writable file, or a new file in a
 * writable directory), else -1 with a message on stderr naming `option`.
 */
int bench_output_check(const char *option, const char *path);

/* Look `name` up on PATH: 1 with its path in out[0..len), or 0. */
int bench_find_program(const char *name, char *out, size_t len);
/* Run `path` with `argv` (no shell) and wait: its exit status, or -1. */
int bench_run_program(const char *path, char *const argv[]);

/* Show "label: N s elapsed" on stderr every second until stopped. */
void bench_ticker_start(const char *label);
void bench_ticker_stop(void);

#endif /* HMB_BENCH_H */
