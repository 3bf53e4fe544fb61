/*
 * hmb_bench.h - declarations shared by the files of the hmb_bench program.
 *
 *   hmb_bench.c        command line, output (table, CSV, JSON), sweep, chart
 *   hmb_bench_env.c    the run's environment (build, host, date, load),
 *                      output-path checks, helper programs, progress ticker
 *   hmb_bench_scan.c   the scan scenario: splits, policies, scan tasks on the
 *                      executor, the consumer stage, invariant checks
 *   hmb_bench_micro.c  microbenchmarks (the allocation path against glibc
 *                      malloc and peer allocators, pool acquire/release and
 *                      borrow under contention, the executor against a bare
 *                      thread pool, fixed-iteration cases for callgrind)
 *   bench_compat.h     what the bench needs over hmb 0.2 and 0.1
 *   compat_noscan.c    stands in for hmb_bench_scan.c against hmb 0.1
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
  BENCH_STAGED = 4,    /* admitted for the footer, then grow to the need */
  BENCH_ORACLE = 5,    /* estimate = exact real need */
  BENCH_NPOLICIES = 6
} bench_policy_t;

/* Phases of a split's task, as the consumer's stall breakdown sees them. */
enum {
  BENCH_PH_QUEUED = 0, /* not admitted yet */
  BENCH_PH_ALLOC = 1,  /* in an allocation (a borrow may wait there) */
  BENCH_PH_GROW = 2,   /* staged: in hmb_runner_grow() */
  BENCH_PH_READ = 3,   /* reading (the simulated transfer) */
  BENCH_PH_DONE = 4,   /* the task has returned */
  BENCH_PHASES = 5
};

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
  size_t staged_first;       /* staged: first piece cap (footer guess) */
  int repeat;                /* runs of each policy (medians reported) */
  int isolate;               /* each run in a process of its own */
  int tight;                 /* the tight-limit table (fractions of the
                                largest split) instead of --budget-mib */
  int child_fd;              /* internal: a child run writes its result here */
  int child_policy;          /* internal: the child's policy */
  int64_t child_budget;      /* internal: the child's limit in bytes */
  int argc;
  char **argv; /* the command line (to run children) */
  int quick;
  int quiet;
  int progress; /* -1: auto (stderr is a terminal), 0: off, 1: on */
  const char *csv, *json;
  const char *sweep; /* NULL: no sweep; else a comma list of MiB or "" */
  const char *sweep_csv, *sweep_png;
  /* microbenchmarks */
  int micro;
  double micro_ms;           /* measured time per case */
  const char *micro_threads; /* comma list of layouts, e.g. "1,2,2s" */
  const char *micro_sizes;   /* comma list of sizes (k/m suffixes) or NULL */
  const char *micro_groups;  /* comma list of alloc,pool,executor or NULL */
  int micro_touch;           /* 0 page, 1 fill, 2 both */
  int micro_rounds;          /* rotated rounds of every cell */
  int callgrind;             /* fixed iterations for scripts/callgrind.sh */
  uint64_t callgrind_iters;
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
  /* Where the consumer waited (split order; sampled every 5 ms): the
   * phase of the split it waited for. BENCH_PHASES entries. */
  double stall_s[5];
  double later_grown; /* staged: mean later splits already grown while the
                         consumer's head split waited in its grow */
  uint64_t borrows, borrow_waits, borrow_overcommits;
  uint64_t acquire_overcommits, requeues;
  uint64_t released_early; /* bytes returned by set-need */
  uint64_t failed;         /* tasks that did not finish with status 0 */
  uint64_t log_warnings;   /* library warnings (over-commit, long waits) */
  /* over-commit and the self-check (0.2) */
  uint64_t progress_grants; /* runners that became the progress runner */
  uint64_t grows;           /* grows granted */
  int64_t sampled_over;     /* highest over-commit the sampler saw */
  int over_split;           /* progress runner's split at that sample, -1 */
  int64_t over_beyond_running, over_beyond_stopped; /* at that sample */
  uint64_t checks;           /* hmb_pool_check calls made during the run */
  double gbps_min, gbps_max; /* over the repeats (== gbps for one run) */
  int64_t peak_over_max;     /* highest peak_over of the repeats */
  int runs;                  /* repeats behind the figures */
  int ok;                    /* every invariant held */
  char error[512];           /* first broken invariant, if !ok */
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

/* Clock and sleep (monotonic; hmb_bench_env.c). */
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
/* Before any thread starts: load the peer allocators (may run the program
 * again with more static TLS, see hmb_bench_micro.c); 0 or a usage error. */
int bench_micro_prepare(const bench_opts_t *o, char **argv);

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
