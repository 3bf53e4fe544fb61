/*
 * hmb_bench.c - the benchmark harness: what budget binding buys, measured
 * against the alternatives in one run.
 *
 *   hmb_bench [options]          the scan scenario, every policy in turn
 *   hmb_bench --sweep[=MiB,...]  the same over several budgets (CSV, chart)
 *   hmb_bench --tight            budgets of 0.25, 0.5, 1 x the largest split
 *   hmb_bench micro | --micro    microbenchmarks
 *
 * --repeat N runs every (policy, budget) N times, rotating the order each
 * time, and reports medians; --isolate runs each in a process of its own
 * (this program again, with internal --child-* options, returning its
 * result through a pipe), so that no run inherits another's heap, caches
 * or thread caches.
 *
 * This file holds the command line (getopt_long), the output formats and
 * the sweep; the scenario lives in hmb_bench_scan.c, the microbenchmarks in
 * hmb_bench_micro.c, and the run's environment and OS services in
 * hmb_bench_env.c. The exit status is 0 when every run finished and every
 * invariant held, 1 when an invariant broke, a run failed or an output
 * could not be written (the message names which), 2 for a usage error
 * (an unknown option, a bad value, an output path that cannot be written).
 * Timings never decide the exit status.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench_compat.h"
#include "bench_gpu.h"
#include "hmb.h"
#include "hmb_bench.h"

/* ---- options --------------------------------------------------------- */

static void bench_opts_defaults(bench_opts_t *o) {
  memset(o, 0, sizeof *o);
  o->seed = 42;
  o->splits = 400;
  o->split_min = 1 * BENCH_MIB;
  o->split_max = 64 * BENCH_MIB;
  o->chunk = 1 * BENCH_MIB;
  o->keep = 0.3;
  o->footer_min = 64 * BENCH_KIB;
  o->footer_max = 4 * BENCH_MIB;
  o->footer_outside = 0.5;
  o->threads = 16;
  o->latency_ms = 4;
  o->stream_mbps = 64;
  o->sink_mbps = 1000;
  o->gpu = -1;
  o->budget = 128 * BENCH_MIB;
  o->acquire_timeout_ms = 100;
  o->order = BENCH_ORDER_SPLIT;
  o->policies = (1u << BENCH_NPOLICIES) - 1;
  o->progress = -1;
  o->micro_ms = 200;
  o->micro_threads = "1,2,2s";
  o->micro_touch = 2;
  o->micro_rounds = 3;
  o->callgrind_iters = 20000;
  o->fail_split = -1;
  o->staged_first = 256 * BENCH_KIB;
  o->repeat = 1;
  o->child_fd = -1;
}

const char *bench_policy_name(int policy) {
  static const char *const names[BENCH_NPOLICIES] = {
      "unlimited", "virtual", "bound", "early", "staged", "oracle"};
  return policy >= 0 && policy < BENCH_NPOLICIES ? names[policy] : "?";
}

/* --quick: the same shape, scaled down to a few seconds for CI. */
static void bench_opts_quick(bench_opts_t *o) {
  o->quick = 1;
  o->splits = 64;
  o->split_min = 512 * BENCH_KIB;
  o->split_max = 16 * BENCH_MIB;
  o->chunk = 256 * BENCH_KIB;
  o->footer_max = 2 * BENCH_MIB;
  o->latency_ms = 1;
  o->stream_mbps = 128;
  o->budget = 32 * BENCH_MIB;
  o->acquire_timeout_ms = 20;
  o->micro_ms = 20;
  o->micro_rounds = 1;
  o->callgrind_iters = 2000;
}

static void bench_usage(FILE *f) {
  fputs(bench_usage_text(), f);
}

/* Long options. Values above 255 so that they never look like a short one. */
enum {
  OPT_SEED = 256,
  OPT_SPLITS,
  OPT_SPLIT_MIN,
  OPT_SPLIT_MAX,
  OPT_CHUNK,
  OPT_KEEP,
  OPT_FOOTER_MIN,
  OPT_FOOTER_MAX,
  OPT_FOOTER_OUTSIDE,
  OPT_THREADS,
  OPT_LATENCY,
  OPT_STREAM,
  OPT_SINK,
  OPT_GPU,
  OPT_PINNED,
  OPT_BUDGET,
  OPT_ACQUIRE_TIMEOUT,
  OPT_ORDER,
  OPT_POLICIES,
  OPT_FAIL_SPLIT,
  OPT_CSV,
  OPT_JSON,
  OPT_SWEEP,
  OPT_SWEEP_CSV,
  OPT_SWEEP_PNG,
  OPT_QUICK,
  OPT_QUIET,
  OPT_PROGRESS,
  OPT_NO_PROGRESS,
  OPT_MICRO,
  OPT_MICRO_MS,
  OPT_MICRO_THREADS,
  OPT_MICRO_SIZES,
  OPT_MICRO_TOUCH,
  OPT_MICRO_ROUNDS,
  OPT_MICRO_GROUPS,
  OPT_CALLGRIND,
  OPT_CALLGRIND_ITERS,
  OPT_STAGED_FIRST,
  OPT_REPEAT,
  OPT_ISOLATE,
  OPT_TIGHT,
  OPT_CHILD_FD,
  OPT_CHILD_POLICY,
  OPT_CHILD_BUDGET,
  OPT_VERSION
};

static const struct option bench_options[] = {
    {"seed", required_argument, NULL, OPT_SEED},
    {"splits", required_argument, NULL, OPT_SPLITS},
    {"split-min-mib", required_argument, NULL, OPT_SPLIT_MIN},
    {"split-max-mib", required_argument, NULL, OPT_SPLIT_MAX},
    {"chunk-kib", required_argument, NULL, OPT_CHUNK},
    {"keep", required_argument, NULL, OPT_KEEP},
    {"footer-min-kib", required_argument, NULL, OPT_FOOTER_MIN},
    {"footer-max-kib", required_argument, NULL, OPT_FOOTER_MAX},
    {"footer-outside", required_argument, NULL, OPT_FOOTER_OUTSIDE},
    {"threads", required_argument, NULL, OPT_THREADS},
    {"latency-ms", required_argument, NULL, OPT_LATENCY},
    {"stream-mbps", required_argument, NULL, OPT_STREAM},
    {"sink-mbps", required_argument, NULL, OPT_SINK},
    {"gpu", required_argument, NULL, OPT_GPU},
    {"pinned-mib", required_argument, NULL, OPT_PINNED},
    {"budget-mib", required_argument, NULL, OPT_BUDGET},
    {"acquire-timeout-ms", required_argument, NULL, OPT_ACQUIRE_TIMEOUT},
    {"order", required_argument, NULL, OPT_ORDER},
    {"policies", required_argument, NULL, OPT_POLICIES},
    {"fail-split", required_argument, NULL, OPT_FAIL_SPLIT},
    {"csv", required_argument, NULL, OPT_CSV},
    {"json", required_argument, NULL, OPT_JSON},
    {"sweep", optional_argument, NULL, OPT_SWEEP},
    {"sweep-csv", required_argument, NULL, OPT_SWEEP_CSV},
    {"sweep-png", required_argument, NULL, OPT_SWEEP_PNG},
    {"quick", no_argument, NULL, OPT_QUICK},
    {"quiet", no_argument, NULL, OPT_QUIET},
    {"progress", no_argument, NULL, OPT_PROGRESS},
    {"no-progress", no_argument, NULL, OPT_NO_PROGRESS},
    {"micro", no_argument, NULL, OPT_MICRO},
    {"micro-ms", required_argument, NULL, OPT_MICRO_MS},
    {"micro-threads", required_argument, NULL, OPT_MICRO_THREADS},
    {"micro-sizes", required_argument, NULL, OPT_MICRO_SIZES},
    {"micro-touch", required_argument, NULL, OPT_MICRO_TOUCH},
    {"micro-rounds", required_argument, NULL, OPT_MICRO_ROUNDS},
    {"micro-groups", required_argument, NULL, OPT_MICRO_GROUPS},
    {"callgrind", no_argument, NULL, OPT_CALLGRIND},
    {"callgrind-iters", required_argument, NULL, OPT_CALLGRIND_ITERS},
    {"staged-first-kib", required_argument, NULL, OPT_STAGED_FIRST},
    {"repeat", required_argument, NULL, OPT_REPEAT},
    {"isolate", no_argument, NULL, OPT_ISOLATE},
    {"tight", no_argument, NULL, OPT_TIGHT},
    {"child-fd", required_argument, NULL, OPT_CHILD_FD},
    {"child-policy", required_argument, NULL, OPT_CHILD_POLICY},
    {"child-budget", required_argument, NULL, OPT_CHILD_BUDGET},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, OPT_VERSION},
    {NULL, 0, NULL, 0}};

/* Parse a number in [lo, hi]; on failure say why, naming the option. */
static int bench_num(const char *opt, const char *s, double lo, double hi,
                     double *out) {
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (errno || end == s || *end || !(v >= lo && v <= hi)) {
    fprintf(stderr,
            "hmb_bench: --%s: '%s' is not a number in [%.10g, %.10g] (see "
            "--help)\n",
            opt, s, lo, hi);
    return -1;
  }
  *out = v;
  return 0;
}

static unsigned bench_parse_policies(const char *s) {
  unsigned m = 0;
  while (*s) {
    size_t n = strcspn(s, ",");
    int found = 0;
    for (int p = 0; p < BENCH_NPOLICIES; p++)
      if (strlen(bench_policy_name(p)) == n &&
          strncmp(s, bench_policy_name(p), n) == 0) {
        m |= 1u << p;
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

/* The long option whose id is `id`. */
static const char *bench_opt_name(int id) {
  for (const struct option *op = bench_options; op->name; op++)
    if (op->val == id)
      return op->name;
  return "?";
}

/*
 * getopt_long said '?' or ':' for argv[optind - 1]: say what was wrong.
 * Messages are ours (opterr is 0) so that each case is named precisely.
 */
static void bench_opt_error(int c, const char *arg) {
  if (c == ':') {
    fprintf(stderr, "hmb_bench: option '%s' needs a value (see --help)\n", arg);
    return;
  }
  if (optopt != 0 && strncmp(arg, "--", 2) == 0 && strchr(arg, '=')) {
    fprintf(stderr,
            "hmb_bench: option '--%s' takes no value (got '%s'; see "
            "--help)\n",
            bench_opt_name(optopt), arg);
    return;
  }
  if (strncmp(arg, "--", 2) == 0) {
    /* Unknown, or an abbreviation of more than one option. */
    size_t n = strcspn(arg + 2, "=");
    char list[256] = "";
    int matches = 0;
    for (const struct option *op = bench_options; op->name; op++)
      if (n > 0 && strncmp(op->name, arg + 2, n) == 0) {
        size_t used = strlen(list);
        snprintf(list + used, sizeof list - used, "%s--%s", matches ? ", " : "",
                 op->name);
        matches++;
      }
    if (matches > 1)
      fprintf(stderr, "hmb_bench: option '%.*s' is ambiguous: it could be %s\n",
              (int)(n + 2), arg, list);
    else
      fprintf(stderr, "hmb_bench: unknown option '%.*s' (see --help)\n",
              (int)(n + 2), arg);
    return;
  }
  fprintf(stderr, "hmb_bench: unknown option '-%c' (see --help)\n",
          optopt ? optopt : '?');
}

/* One option with its value: 0, or 2 (the message is printed). */
static int bench_apply(bench_opts_t *o, int c, const char *val) {
  const char *name = bench_opt_name(c);
  double d = 0;
#define NUM(lo, hi)                                                            \
  do {                                                                         \
    if (bench_num(name, val, lo, hi, &d) != 0)                                 \
      return 2;                                                                \
  } while (0)
  switch (c) {
  case OPT_SEED:
    NUM(0, 1.8e19);
    o->seed = (uint64_t)d;
    break;
  case OPT_SPLITS:
    NUM(1, 1e6);
    o->splits = (int)d;
    break;
  case OPT_SPLIT_MIN:
    NUM(0.004, 1e6);
    o->split_min = (size_t)(d * BENCH_MIB);
    break;
  case OPT_SPLIT_MAX:
    NUM(0.004, 1e6);
    o->split_max = (size_t)(d * BENCH_MIB);
    break;
  case OPT_CHUNK:
    NUM(1, 1e7);
    o->chunk = (size_t)(d * BENCH_KIB);
    break;
  case OPT_KEEP:
    NUM(0, 1);
    o->keep = d;
    break;
  case OPT_FOOTER_MIN:
    NUM(1, 1e7);
    o->footer_min = (size_t)(d * BENCH_KIB);
    break;
  case OPT_FOOTER_MAX:
    NUM(1, 1e7);
    o->footer_max = (size_t)(d * BENCH_KIB);
    break;
  case OPT_FOOTER_OUTSIDE:
    NUM(0, 1);
    o->footer_outside = d;
    break;
  case OPT_THREADS:
    NUM(1, 1024);
    o->threads = (int)d;
    break;
  case OPT_LATENCY:
    NUM(0, 1e5);
    o->latency_ms = d;
    break;
  case OPT_STREAM:
    NUM(0, 1e6);
    o->stream_mbps = d;
    break;
  case OPT_SINK:
    NUM(0, 1e6);
    o->sink_mbps = d;
    break;
  case OPT_PINNED:
    NUM(0, 1e7);
    o->pinned = (size_t)(d * BENCH_MIB);
    break;
  case OPT_BUDGET:
    NUM(0.004, 1e9);
    o->budget = (size_t)(d * BENCH_MIB);
    break;
  case OPT_ACQUIRE_TIMEOUT:
    NUM(0.001, 1e7);
    o->acquire_timeout_ms = d;
    break;
  case OPT_FAIL_SPLIT:
    NUM(0, 1e6);
    o->fail_split = (int)d;
    break;
  case OPT_MICRO_MS:
    NUM(1, 1e6);
    o->micro_ms = d;
    break;
  case OPT_MICRO_ROUNDS:
    NUM(1, 64);
    o->micro_rounds = (int)d;
    break;
  case OPT_CALLGRIND_ITERS:
    NUM(1, 1e9);
    o->callgrind_iters = (uint64_t)d;
    break;
  case OPT_STAGED_FIRST:
    NUM(0, 1e7);
    o->staged_first = (size_t)(d * BENCH_KIB);
    break;
  case OPT_REPEAT:
    NUM(1, 99);
    o->repeat = (int)d;
    break;
  case OPT_CHILD_FD:
    NUM(0, 1e6);
    o->child_fd = (int)d;
    break;
  case OPT_CHILD_POLICY:
    NUM(0, BENCH_NPOLICIES - 1);
    o->child_policy = (int)d;
    break;
  case OPT_CHILD_BUDGET:
    NUM(1, 4.6e18);
    o->child_budget = (int64_t)d;
    break;
  case OPT_MICRO_TOUCH:
    if (strcmp(val, "page") == 0)
      o->micro_touch = 0;
    else if (strcmp(val, "fill") == 0)
      o->micro_touch = 1;
    else if (strcmp(val, "both") == 0)
      o->micro_touch = 2;
    else {
      fprintf(stderr,
              "hmb_bench: --micro-touch: '%s' is not one of page, fill, both\n",
              val);
      return 2;
    }
    break;
  case OPT_MICRO_SIZES:
    o->micro_sizes = val;
    break;
  case OPT_MICRO_GROUPS:
    o->micro_groups = val;
    break;
  case OPT_CALLGRIND:
    o->callgrind = 1;
    o->micro = 1;
    break;
  case OPT_ISOLATE:
    o->isolate = 1;
    break;
  case OPT_TIGHT:
    o->tight = 1;
    break;
  case OPT_GPU:
    if (strcmp(val, "auto") == 0)
      o->gpu = -1;
    else if (strcmp(val, "on") == 0)
      o->gpu = 1;
    else if (strcmp(val, "off") == 0)
      o->gpu = 0;
    else {
      fprintf(stderr,
              "hmb_bench: --gpu: '%s' is not one of auto, on, off (see "
              "--help)\n",
              val);
      return 2;
    }
    break;
  case OPT_ORDER:
    if (strcmp(val, "split") == 0)
      o->order = BENCH_ORDER_SPLIT;
    else if (strcmp(val, "completion") == 0)
      o->order = BENCH_ORDER_COMPLETION;
    else {
      fprintf(stderr,
              "hmb_bench: --order: '%s' is not one of split, completion\n",
              val);
      return 2;
    }
    break;
  case OPT_POLICIES:
    o->policies = bench_parse_policies(val);
    if (!o->policies) {
      fprintf(stderr,
              "hmb_bench: --policies: '%s' is not a comma list of "
              "unlimited, virtual, bound, early, staged, oracle\n",
              val);
      return 2;
    }
    break;
  case OPT_MICRO_THREADS:
    o->micro_threads = val;
    break;
  case OPT_CSV:
    o->csv = val;
    break;
  case OPT_JSON:
    o->json = val;
    break;
  case OPT_SWEEP:
    o->sweep = val ? val : "";
    break;
  case OPT_SWEEP_CSV:
    o->sweep_csv = val;
    break;
  case OPT_SWEEP_PNG:
    o->sweep_png = val;
    break;
  case OPT_QUICK: /* applied before every other option */
    break;
  case OPT_QUIET:
    o->quiet = 1;
    break;
  case OPT_PROGRESS:
    o->progress = 1;
    break;
  case OPT_NO_PROGRESS:
    o->progress = 0;
    break;
  case OPT_MICRO:
    o->micro = 1;
    break;
  default:
    fprintf(stderr, "hmb_bench: option %d is not handled\n", c);
    return 2;
  }
#undef NUM
  return 0;
}

/* Parse argv into *o; 0, or 2 for a usage error, 3 for --help, 4 for
 * --version. Two passes: --quick sets the scaled-down defaults first, so
 * that every explicit option overrides them wherever it stands. */
static int bench_parse(int argc, char **argv, bench_opts_t *o) {
  int quick = 0, help = 0, version = 0;
  opterr = 0;
  for (int pass = 0; pass < 2; pass++) {
    if (pass == 1) {
      bench_opts_defaults(o);
      if (quick)
        bench_opts_quick(o);
    }
    optind = 0; /* restart getopt (GNU: a full re-initialisation) */
    int c;
    while ((c = getopt_long(argc, argv, ":h", bench_options, NULL)) != -1) {
      if (c == '?' || c == ':') {
        if (pass == 0)
          bench_opt_error(c, argv[optind - 1]);
        return 2;
      }
      if (pass == 0) {
        quick |= c == OPT_QUICK;
        help |= c == 'h';
        version |= c == OPT_VERSION;
        continue;
      }
      if (c == 'h' || c == OPT_VERSION)
        continue;
      int rc = bench_apply(o, c, optarg);
      if (rc)
        return rc;
    }
    if (pass == 0 && (help || version))
      return help ? 3 : 4;
  }
  /* Operands: only "micro" (the same as --micro). */
  for (int i = optind; i < argc; i++) {
    if (strcmp(argv[i], "micro") == 0) {
      o->micro = 1;
      continue;
    }
    fprintf(stderr, "hmb_bench: unexpected argument '%s' (see --help)\n",
            argv[i]);
    return 2;
  }
  if (o->split_min > o->split_max || o->footer_min > o->footer_max) {
    fprintf(stderr, "hmb_bench: a minimum is above its maximum\n");
    return 2;
  }
  if (o->progress < 0)
    o->progress = !o->quiet && isatty(STDERR_FILENO);
  return 0;
}

/* ---- output -------------------------------------------------------- */

static double mib(int64_t b) {
  return (double)b / (double)BENCH_MIB;
}

static void bench_print_scenario(const bench_opts_t *o,
                                 const bench_scenario_t *sc) {
  bench_scenario_info_t in;
  bench_scenario_describe(sc, &in);
  printf("hmb_bench %s: scan scenario%s\n", BENCH_HMB_VERSION,
         o->quick ? " (--quick)" : "");
  printf("  splits %d (seed %" PRIu64 "), lengths %.2f..%.1f MiB "
         "log-uniform, chunk %zu KiB, keep %.2f\n",
         o->splits, o->seed, mib((int64_t)o->split_min),
         mib((int64_t)o->split_max), o->chunk / BENCH_KIB, o->keep);
  printf("  footer %zu..%zu KiB log-uniform, outside the split with "
         "p=%.2f\n",
         o->footer_min / BENCH_KIB, o->footer_max / BENCH_KIB,
         o->footer_outside);
  printf("  estimate %.1f MiB total (max %.1f), real need %.1f MiB total "
         "(max %.1f, %.0f%% of the estimate), %d splits need more than "
         "their estimate, %" PRIu64 " buffers\n",
         mib((int64_t)in.total_estimate), mib((int64_t)in.max_estimate),
         mib((int64_t)in.total_need), mib((int64_t)in.max_need),
         100.0 * in.total_need / (double)in.total_estimate,
         in.need_above_estimate, in.pieces);
  printf("  scan threads %d, storage latency %.1f ms + %.0f MB/s per "
         "stream, consumer %s%.0f MB/s in %s order\n",
         o->threads, o->latency_ms, o->stream_mbps,
         o->sink_mbps > 0 ? "" : "unpaced ", o->sink_mbps,
         o->order == BENCH_ORDER_SPLIT ? "split" : "completion");
  const char *why = "";
  bench_gpu_target(o, &why);
  printf("  consumer target: %s; pinned region per pool %.1f MiB\n", why,
         mib((int64_t)o->pinned));
  printf("  budget %.1f MiB for the budgeted policies (pool: default "
         "configuration, only the limit set), acquire timeout %.0f ms; "
         "staged: first piece min(split, %zu KiB)\n",
         mib((int64_t)o->budget), o->acquire_timeout_ms,
         o->staged_first / BENCH_KIB);
  if (o->repeat > 1 || o->isolate)
    printf("  %d run%s of each policy%s, in an order rotated every run; "
           "figures are medians\n",
           o->repeat, o->repeat == 1 ? "" : "s",
           o->isolate ? ", each in a process of its own" : "");
  fflush(stdout);
}

/* The split of the progress runner at the sampled over-commit peak. */
static void bench_over_split(const bench_result_t *r, char *buf, size_t len) {
  if (r->sampled_over <= 0)
    snprintf(buf, len, "-");
  else if (r->over_split < 0)
    snprintf(buf, len, "?");
  else
    snprintf(buf, len, "%d", r->over_split);
}

static void bench_print_table(const bench_result_t *r, int n) {
  printf("\n%-9s %7s %7s %6s %6s %9s %9s %7s %9s %7s %8s %7s %5s %8s %5s\n",
         "policy", "budget", "wall_s", "GB/s", "vs_unl", "peak_live",
         "peak_held", "over", "phys_peak", "running", "wait_s", "borrows",
         "grows", "requeues", "prog");
  printf("%-9s %7s %7s %6s %6s %9s %9s %7s %9s %7s %8s %7s %5s %8s %5s\n", "",
         "MiB", "", "", "", "MiB", "MiB", "MiB", "MiB", "mean", "sum", "", "",
         "", "");
  for (int i = 0; i < n; i++) {
    char budget[32];
    if (r[i].policy == BENCH_UNLIMITED)
      snprintf(budget, sizeof budget, "inf");
    else
      snprintf(budget, sizeof budget, "%.0f", mib(r[i].limit));
    char ratio[16] = "-";
    if (r[i].ratio > 0)
      snprintf(ratio, sizeof ratio, "%.2f", r[i].ratio);
    printf("%-9s %7s %7.2f %6.3f %6s %9.1f %9.1f %7.1f %9.1f %7.2f %8.2f "
           "%7" PRIu64 " %5" PRIu64 " %8" PRIu64 " %5" PRIu64 "%s\n",
           bench_policy_name(r[i].policy), budget, r[i].wall_s, r[i].gbps,
           ratio, mib(r[i].peak_live), mib(r[i].peak_held), mib(r[i].peak_over),
           mib(r[i].phys_peak), r[i].mean_running, r[i].wait_s, r[i].borrows,
           r[i].grows, r[i].requeues, r[i].progress_grants,
           r[i].ok ? "" : "  FAIL");
  }
  printf("peak_live: bytes of live runner buffers (library); phys_peak: data "
         "bytes alive at once,\ncounted by the bench for every policy (virtual "
         "reads outside the budget: its\npeak_live is its reservations). "
         "over: peak over-committed budget (the pool's exact\npeak). prog: "
         "runners that became the progress runner (the only one that may be\n"
         "granted budget beyond the limit).\n");
}

/* Over-commit: the exact peak, and who held it at the sampled peak. */
static void bench_print_overcommit(const bench_result_t *r, int n) {
  printf("\nover-commit (held beyond the limit):\n");
  printf("%-9s %7s %9s %9s %10s %11s %11s %10s %7s\n", "policy", "budget",
         "peak MiB", "max MiB", "sampled", "split (prog)", "beyond run",
         "beyond stop", "checks");
  for (int i = 0; i < n; i++) {
    if (r[i].policy == BENCH_UNLIMITED)
      continue;
    char sp[32];
    bench_over_split(&r[i], sp, sizeof sp);
    printf("%-9s %7.0f %9.1f %9.1f %10.1f %11s %11.1f %10.1f %7" PRIu64 "\n",
           bench_policy_name(r[i].policy), mib(r[i].limit), mib(r[i].peak_over),
           mib(r[i].peak_over_max), mib(r[i].sampled_over), sp,
           mib(r[i].over_beyond_running), mib(r[i].over_beyond_stopped),
           r[i].checks);
  }
  printf("peak: the pool's peak_overcommitted (median over the runs; max: "
         "the highest run). sampled:\nthe highest over-commit seen by the "
         "5 ms sampler, with the split of the progress runner\nat that "
         "moment and the pool's beyond_running / beyond_stopped then. "
         "checks: hmb_pool_check\ncalls during the run (every 10 ms), all of "
         "which passed, plus one HMB_CHECK_QUIESCENT at the end.\n");
}

static void bench_csv_header(FILE *f, int with_budget_col) {
  fprintf(f,
          "%spolicy,limit_bytes,wall_s,delivered_bytes,gbps,ratio_vs_"
          "unlimited,peak_live_bytes,peak_held_bytes,peak_overcommitted_"
          "bytes,phys_peak_bytes,lib_phys_peak_bytes,mean_running,sampled_"
          "running,wait_s,wait_max_s,borrows,borrow_waits,borrow_"
          "overcommits,acquire_overcommits,requeues,released_early_bytes,"
          "failed,progress_grants,grows,sampled_over_bytes,over_split,"
          "over_beyond_running,over_beyond_stopped,peak_over_max_bytes,"
          "checks,runs,gbps_min,gbps_max,stall_queued_s,stall_alloc_s,"
          "stall_grow_s,stall_read_s,stall_done_s,ok\n",
          with_budget_col ? "budget_bytes," : "");
}

/* with_budget: a leading budget column (empty for unlimited: no budget). */
static void bench_csv_row(FILE *f, const bench_result_t *r, int with_budget,
                          int64_t budget) {
  if (with_budget && budget >= 0)
    fprintf(f, "%" PRId64 ",", budget);
  else if (with_budget)
    fputc(',', f);
  fprintf(
      f,
      "%s,%" PRId64 ",%.4f,%" PRIu64 ",%.5f,%.4f,%" PRId64 ",%" PRId64
      ",%" PRId64 ",%" PRId64 ",%" PRId64 ",%.3f,%.3f,%.4f,%.4f,%" PRIu64
      ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64
      ",%" PRIu64 ",%" PRIu64 ",%" PRId64 ",%d,%" PRId64 ",%" PRId64 ",%" PRId64
      ",%" PRIu64 ",%d,%.5f,%.5f,%.3f,%.3f,%.3f,%.3f,%.3f,%d\n",
      bench_policy_name(r->policy), r->limit, r->wall_s, r->delivered, r->gbps,
      r->ratio, r->peak_live, r->peak_held, r->peak_over, r->phys_peak,
      r->lib_phys_peak, r->mean_running, r->sampled_running, r->wait_s,
      r->wait_max_s, r->borrows, r->borrow_waits, r->borrow_overcommits,
      r->acquire_overcommits, r->requeues, r->released_early, r->failed,
      r->progress_grants, r->grows, r->sampled_over, r->over_split,
      r->over_beyond_running, r->over_beyond_stopped, r->peak_over_max,
      r->checks, r->runs, r->gbps_min, r->gbps_max, r->stall_s[0],
      r->stall_s[1], r->stall_s[2], r->stall_s[3], r->stall_s[4], r->ok);
}

/* Open an output file; NULL with the reason on stderr. */
static FILE *bench_open_output(const char *option, const char *path) {
  FILE *f = fopen(path, "w");
  if (!f)
    fprintf(stderr, "hmb_bench: could not write %s '%s': %s\n", option, path,
            strerror(errno));
  return f;
}

/* Close an output file: 0, or -1 when writing it failed (reported). */
static int bench_close_output(FILE *f, const char *option, const char *path) {
  int bad = ferror(f);
  if (fclose(f) != 0 || bad) {
    fprintf(stderr, "hmb_bench: could not write %s '%s': %s\n", option, path,
            bad ? "write error" : strerror(errno));
    return -1;
  }
  return 0;
}

static int bench_write_csv(const char *path, const bench_result_t *r, int n) {
  FILE *f = bench_open_output("--csv", path);
  if (!f)
    return -1;
  bench_csv_header(f, 0);
  for (int i = 0; i < n; i++)
    bench_csv_row(f, &r[i], 0, 0);
  return bench_close_output(f, "--csv", path);
}

static int bench_write_json(const char *path, const bench_opts_t *o,
                            const bench_env_t *env, const bench_scenario_t *sc,
                            const bench_result_t *r, int n) {
  FILE *f = bench_open_output("--json", path);
  if (!f)
    return -1;
  bench_scenario_info_t in;
  bench_scenario_describe(sc, &in);
  fprintf(f, "{\n  \"version\": ");
  bench_json_str(f, BENCH_HMB_VERSION);
  fprintf(f, ",\n  ");
  bench_env_json(f, env);
  fprintf(f,
          ",\n  \"scenario\": {\"seed\": %" PRIu64 ", \"splits\": %d, "
          "\"split_min_bytes\": %zu, \"split_max_bytes\": %zu, "
          "\"chunk_bytes\": %zu, \"keep\": %.4f, \"footer_min_bytes\": %zu, "
          "\"footer_max_bytes\": %zu, \"footer_outside\": %.4f, "
          "\"threads\": %d, \"latency_ms\": %.3f, \"stream_mbps\": %.3f, "
          "\"sink_mbps\": %.3f, \"budget_bytes\": %zu, "
          "\"acquire_timeout_ms\": %.3f, \"staged_first_bytes\": %zu, "
          "\"repeat\": %d, \"isolate\": %s, \"order\": ",
          o->seed, o->splits, o->split_min, o->split_max, o->chunk, o->keep,
          o->footer_min, o->footer_max, o->footer_outside, o->threads,
          o->latency_ms, o->stream_mbps, o->sink_mbps, o->budget,
          o->acquire_timeout_ms, o->staged_first, o->repeat,
          o->isolate ? "true" : "false");
  bench_json_str(f, o->order == BENCH_ORDER_SPLIT ? "split" : "completion");
  fprintf(f,
          ", \"total_estimate_bytes\": %" PRIu64
          ", \"total_need_bytes\": %" PRIu64
          ", \"need_above_estimate\": %d, \"buffers\": %" PRIu64 "},\n",
          in.total_estimate, in.total_need, in.need_above_estimate, in.pieces);
  fprintf(f, "  \"results\": [\n");
  for (int i = 0; i < n; i++) {
    fprintf(f, "    {\"policy\": ");
    bench_json_str(f, bench_policy_name(r[i].policy));
    fprintf(
        f,
        ", \"limit_bytes\": %" PRId64 ", \"wall_s\": %.4f, "
        "\"delivered_bytes\": %" PRIu64 ", \"gbps\": %.5f, "
        "\"ratio_vs_unlimited\": %.4f, \"peak_live_bytes\": %" PRId64
        ", \"peak_held_bytes\": %" PRId64
        ", \"peak_overcommitted_bytes\": %" PRId64
        ", \"phys_peak_bytes\": %" PRId64 ", \"lib_phys_peak_bytes\": %" PRId64
        ", \"mean_running\": %.3f, \"sampled_running\": %.3f, "
        "\"wait_s\": %.4f, \"wait_max_s\": %.4f, \"borrows\": %" PRIu64
        ", \"borrow_waits\": %" PRIu64 ", \"borrow_overcommits\": %" PRIu64
        ", \"acquire_overcommits\": %" PRIu64 ", \"requeues\": %" PRIu64
        ", \"released_early_bytes\": %" PRIu64 ", \"failed\": %" PRIu64
        ", \"progress_grants\": %" PRIu64 ", \"grows\": %" PRIu64
        ", \"sampled_over_bytes\": %" PRId64 ", \"over_split\": %d"
        ", \"peak_over_max_bytes\": %" PRId64 ", \"checks\": %" PRIu64
        ", \"runs\": %d, \"gbps_min\": %.5f, \"gbps_max\": %.5f"
        ", \"ok\": %s, \"error\": ",
        r[i].limit, r[i].wall_s, r[i].delivered, r[i].gbps, r[i].ratio,
        r[i].peak_live, r[i].peak_held, r[i].peak_over, r[i].phys_peak,
        r[i].lib_phys_peak, r[i].mean_running, r[i].sampled_running,
        r[i].wait_s, r[i].wait_max_s, r[i].borrows, r[i].borrow_waits,
        r[i].borrow_overcommits, r[i].acquire_overcommits, r[i].requeues,
        r[i].released_early, r[i].failed, r[i].progress_grants, r[i].grows,
        r[i].sampled_over, r[i].over_split, r[i].peak_over_max, r[i].checks,
        r[i].runs, r[i].gbps_min, r[i].gbps_max, r[i].ok ? "true" : "false");
    bench_json_str(f, r[i].error);
    fprintf(f, "}%s\n", i + 1 < n ? "," : "");
  }
  fprintf(f, "  ]\n}\n");
  return bench_close_output(f, "--json", path);
}

/* ---- running policies: in this process or one of its own ----------------- */

/* One (policy, limit) of a plan; `block` groups the cells of one budget. */
typedef struct bench_cell {
  int policy;
  int64_t limit; /* -1: unlimited */
  int block;
} bench_cell_t;

extern char **environ;

/*
 * Run one policy in a child process: this program again, with the same
 * options plus --child-*, which runs the one policy and writes its
 * bench_result_t to a pipe. The child is the same binary, so the struct is
 * the same. Returns bench_run_policy()'s status.
 */
static int bench_run_child(const bench_opts_t *o, int policy, int64_t limit,
                           bench_result_t *res) {
  memset(res, 0, sizeof *res);
  res->policy = policy;
  int fds[2];
  if (pipe(fds) != 0)
    return HMB_ENOMEM;
  char fd[32], pol[32], bud[32];
  snprintf(fd, sizeof fd, "%d", fds[1]);
  snprintf(pol, sizeof pol, "%d", policy);
  snprintf(bud, sizeof bud, "%" PRId64, limit > 0 ? limit : 1);
  int n = o->argc;
  char **av = calloc((size_t)n + 12, sizeof *av);
  if (!av) {
    close(fds[0]);
    close(fds[1]);
    return HMB_ENOMEM;
  }
  for (int i = 0; i < n; i++)
    av[i] = o->argv[i];
  av[n++] = "--child-fd";
  av[n++] = fd;
  av[n++] = "--child-policy";
  av[n++] = pol;
  av[n++] = "--child-budget";
  av[n++] = bud;
  av[n++] = "--no-progress";
  av[n] = NULL;
  pid_t pid;
  int rc = posix_spawn(&pid, "/proc/self/exe", NULL, NULL, av, environ);
  free(av);
  close(fds[1]);
  if (rc != 0) {
    close(fds[0]);
    fprintf(stderr, "hmb_bench: cannot run a child: %s\n", strerror(rc));
    return HMB_ENOMEM;
  }
  size_t got = 0;
  while (got < sizeof *res) {
    ssize_t k = read(fds[0], (char *)res + got, sizeof *res - got);
    if (k < 0 && errno == EINTR)
      continue;
    if (k <= 0)
      break;
    got += (size_t)k;
  }
  close(fds[0]);
  int st = 0;
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  if (got != sizeof *res) {
    memset(res, 0, sizeof *res);
    res->policy = policy;
    res->limit = limit;
    res->ok = 0;
    if (WIFSIGNALED(st))
      snprintf(res->error, sizeof res->error,
               "the child run was killed by signal %d", WTERMSIG(st));
    else
      snprintf(res->error, sizeof res->error,
               "the child run exited with status %d and no result",
               WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    return 1;
  }
  return res->ok ? 0 : 1;
}

/* Run one cell and report a broken invariant on stderr. */
static int bench_one(const bench_opts_t *o, const bench_scenario_t *sc,
                     const bench_cell_t *c, int rep, bench_result_t *res) {
  char budget[32] = "no budget";
  if (c->policy != BENCH_UNLIMITED)
    snprintf(budget, sizeof budget, "budget %.0f MiB", mib(c->limit));
  char run[32] = "";
  if (o->repeat > 1)
    snprintf(run, sizeof run, ", run %d of %d", rep + 1, o->repeat);
  if (o->progress)
    fprintf(stderr, "  running %s (%s%s)...\n", bench_policy_name(c->policy),
            budget, run);
  int rc = o->isolate
               ? bench_run_child(o, c->policy, c->limit, res)
               : bench_run_policy(o, sc, c->policy,
                                  c->limit > 0 ? (size_t)c->limit : 0, res);
  if (rc < 0) {
    fprintf(stderr, "hmb_bench: %s: run could not be set up: %s\n",
            bench_policy_name(c->policy), hmb_strerror(rc));
    res->ok = 0;
    snprintf(res->error, sizeof res->error, "set-up failed: %s",
             hmb_strerror(rc));
    return 1;
  }
  if (!res->ok)
    fprintf(stderr, "hmb_bench: invariant broken: %s (%s): %s\n",
            bench_policy_name(c->policy), budget, res->error);
  return res->ok ? 0 : 1;
}

static int bench_cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* The median of field `get` over the runs of one cell. */
static double bench_median_of(const bench_result_t *runs, int n,
                              double (*get)(const bench_result_t *)) {
  double v[128];
  if (n > 128)
    n = 128;
  for (int i = 0; i < n; i++)
    v[i] = get(&runs[i]);
  qsort(v, (size_t)n, sizeof *v, bench_cmp_double);
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

#define BENCH_NUM_FIELDS(X)                                                    \
  X(double, wall_s)                                                            \
  X(double, gbps)                                                              \
  X(double, ratio)                                                             \
  X(int64_t, peak_live)                                                        \
  X(int64_t, peak_held)                                                        \
  X(int64_t, peak_over)                                                        \
  X(int64_t, phys_peak)                                                        \
  X(int64_t, lib_phys_peak)                                                    \
  X(double, mean_running)                                                      \
  X(double, sampled_running)                                                   \
  X(double, wait_s)                                                            \
  X(double, wait_max_s)                                                        \
  X(uint64_t, borrows)                                                         \
  X(uint64_t, borrow_waits)                                                    \
  X(uint64_t, borrow_overcommits)                                              \
  X(uint64_t, acquire_overcommits)                                             \
  X(uint64_t, requeues)                                                        \
  X(uint64_t, released_early)                                                  \
  X(uint64_t, log_warnings)                                                    \
  X(uint64_t, progress_grants)                                                 \
  X(uint64_t, grows)                                                           \
  X(uint64_t, checks)                                                          \
  X(double, later_grown)

#define BENCH_GETTER(type, f)                                                  \
  static double bench_get_##f(const bench_result_t *r) {                       \
    return (double)r->f;                                                       \
  }
BENCH_NUM_FIELDS(BENCH_GETTER)

/* Fold the runs of one cell into *out: medians, and the worst of the
 * rest (any failed run fails the cell; the over-commit attribution comes
 * from the run with the highest sampled over-commit). */
static void bench_fold_runs(const bench_result_t *runs, int n,
                            bench_result_t *out) {
  int worst = 0;
  for (int i = 1; i < n; i++)
    if (runs[i].sampled_over > runs[worst].sampled_over)
      worst = i;
  *out = runs[worst];
#define BENCH_MEDIAN(type, f)                                                  \
  out->f = (type)bench_median_of(runs, n, bench_get_##f);
  BENCH_NUM_FIELDS(BENCH_MEDIAN)
#undef BENCH_MEDIAN
  for (int k = 0; k < BENCH_PHASES; k++) {
    double v[128];
    int m = n < 128 ? n : 128;
    for (int i = 0; i < m; i++)
      v[i] = runs[i].stall_s[k];
    qsort(v, (size_t)m, sizeof *v, bench_cmp_double);
    out->stall_s[k] = m % 2 ? v[m / 2] : (v[m / 2 - 1] + v[m / 2]) / 2;
  }
  out->runs = n;
  out->gbps_min = out->gbps_max = runs[0].gbps;
  out->peak_over_max = runs[0].peak_over;
  for (int i = 0; i < n; i++) {
    if (runs[i].gbps < out->gbps_min)
      out->gbps_min = runs[i].gbps;
    if (runs[i].gbps > out->gbps_max)
      out->gbps_max = runs[i].gbps;
    if (runs[i].peak_over > out->peak_over_max)
      out->peak_over_max = runs[i].peak_over;
    out->failed += i ? runs[i].failed : 0;
    if (!runs[i].ok && out->ok) {
      out->ok = 0;
      snprintf(out->error, sizeof out->error, "run %d: %s", i + 1,
               runs[i].error);
    }
  }
}

/*
 * Run a plan `o->repeat` times. Every run after the first rotates the
 * order: the blocks (budgets) by one, and the policies inside each block by
 * one, so that no cell always runs first or after the same neighbour
 * (machine load drifts; in one fixed order the first policy always ran on
 * the quietest machine). Each run's ratio is taken against the unlimited
 * run of the same repeat. `out` receives one folded result per cell, in
 * plan order; returns the number of failed runs.
 */
static int bench_run_plan(const bench_opts_t *o, const bench_scenario_t *sc,
                          const bench_cell_t *cells, int n, int nblocks,
                          bench_result_t *out) {
  int reps = o->repeat;
  bench_result_t *all = calloc((size_t)n * (size_t)reps, sizeof *all);
  int *order = calloc((size_t)n, sizeof *order);
  if (!all || !order) {
    free(all);
    free(order);
    fprintf(stderr, "hmb_bench: out of memory\n");
    return n;
  }
  int fails = 0;
  for (int rep = 0; rep < reps; rep++) {
    int k = 0;
    for (int bb = 0; bb < nblocks; bb++) {
      int b = (bb + rep) % nblocks;
      int first = -1, cnt = 0;
      for (int i = 0; i < n; i++)
        if (cells[i].block == b) {
          if (first < 0)
            first = i;
          cnt++;
        }
      for (int j = 0; j < cnt; j++)
        order[k++] = first + (j + rep) % cnt;
    }
    for (int j = 0; j < k; j++) {
      int i = order[j];
      fails += bench_one(o, sc, &cells[i], rep, &all[i * reps + rep]);
    }
    double ug = 0;
    for (int i = 0; i < n; i++)
      if (cells[i].policy == BENCH_UNLIMITED)
        ug = all[i * reps + rep].gbps;
    for (int i = 0; i < n; i++)
      all[i * reps + rep].ratio =
          cells[i].policy == BENCH_UNLIMITED
              ? 1
              : (ug > 0 ? all[i * reps + rep].gbps / ug : 0);
  }
  for (int i = 0; i < n; i++)
    bench_fold_runs(&all[i * reps], reps, &out[i]);
  free(all);
  free(order);
  return fails;
}

/* Where the consumer waited, by the phase of the split it waited for. */
static void bench_print_stalls(const bench_result_t *r, int n) {
  printf("\nconsumer stalls (split order): seconds the consumer waited for "
         "the next split's buffers,\nby what that split was doing "
         "(sampled every 5 ms)\n");
  printf("%-9s %7s %8s %8s %8s %8s %8s %8s %8s\n", "policy", "budget", "wall_s",
         "queued", "alloc", "grow", "read", "done", "ahead");
  for (int i = 0; i < n; i++) {
    char budget[32] = "inf";
    if (r[i].policy != BENCH_UNLIMITED)
      snprintf(budget, sizeof budget, "%.0f", mib(r[i].limit));
    printf("%-9s %7s %8.2f", bench_policy_name(r[i].policy), budget,
           r[i].wall_s);
    for (int k = 0; k < BENCH_PHASES; k++)
      printf(" %8.2f", r[i].stall_s[k]);
    printf(" %8.1f\n", r[i].later_grown);
  }
  printf("queued: not admitted yet; alloc: inside an allocation (a borrow "
         "waits there); grow: in\nhmb_runner_grow (staged); read: the "
         "simulated transfer; done: the task had returned.\nahead "
         "(staged): later splits whose grow had been served while the "
         "consumer's split\nwaited in its own (mean over those samples).\n");
}

/* Plain sentences comparing early and staged with their alternatives. */
static void bench_print_reading(const bench_result_t *r, int n) {
  const bench_result_t *by[BENCH_NPOLICIES] = {0};
  for (int i = 0; i < n; i++)
    by[r[i].policy] = &r[i];
  printf("\n");
  for (int me = BENCH_EARLY; me <= BENCH_STAGED; me++) {
    const bench_result_t *e = by[me];
    if (!e)
      continue;
    for (int p = BENCH_VIRTUAL; p <= BENCH_ORACLE; p++) {
      if (p == me || !by[p] || (me == BENCH_STAGED && p == BENCH_EARLY))
        continue;
      const bench_result_t *x = by[p];
      double t = x->gbps > 0 ? e->gbps / x->gbps : 0;
      const char *mark = "";
      if (me == BENCH_STAGED && p == BENCH_ORACLE && t < 0.9)
        mark = "  <- below the 0.9x goal";
      else if (t < 1.0)
        mark = "  <- slower here";
      printf("%-6s vs %-7s: %.2fx the throughput, peak held %.1f vs %.1f "
             "MiB, phys peak %.1f vs %.1f MiB%s\n",
             bench_policy_name(me), bench_policy_name(p), t, mib(e->peak_held),
             mib(x->peak_held), mib(e->phys_peak), mib(x->phys_peak), mark);
    }
  }
  const bench_result_t *v = by[BENCH_VIRTUAL];
  if (v && v->phys_peak > v->limit)
    printf("virtual: physical peak %.1f MiB exceeds its budget of %.1f MiB "
           "(memory is not bound to the budget)\n",
           mib(v->phys_peak), mib(v->limit));
}

/* The end of a run: 0, or 1 with what failed said on stderr. */
static int bench_verdict(int run_fails, int out_fails) {
  if (run_fails)
    fprintf(stderr,
            "hmb_bench: FAILED: %d run(s) failed or broke an invariant (see "
            "above)\n",
            run_fails);
  if (out_fails)
    fprintf(stderr,
            "hmb_bench: FAILED: %d output file(s) could not be "
            "written (see above)\n",
            out_fails);
  return run_fails || out_fails ? 1 : 0;
}

/* ---- sweep ----------------------------------------------------------- */

static void bench_plot_script_path(const char *png, char *buf, size_t len) {
  snprintf(buf, len, "%s.gp", png);
}

/*
 * Write the gnuplot script of the sweep chart and run gnuplot on it:
 * 0 (chart written), or -1 (reported). The script takes the chart's file
 * name as its argument (gnuplot -c SCRIPT CHART, where it is ARG1): no file
 * name is ever part of a command line or of the script's text, so a name
 * with quotes, semicolons or backquotes is only a name.
 */
static int bench_plot(const char *gnuplot, const char *png,
                      const bench_result_t *rows, const int64_t *budgets,
                      int nrows, unsigned policies) {
  char gp[4096];
  bench_plot_script_path(png, gp, sizeof gp);
  FILE *f = bench_open_output("--sweep-png (its script)", gp);
  if (!f)
    return -1;
  fprintf(f, "# hmb_bench sweep chart; draw it with: gnuplot -c SCRIPT "
             "CHART.png\n");
  /* Inline data blocks, one per policy, keep the script self-contained. */
  for (int p = BENCH_VIRTUAL; p < BENCH_NPOLICIES; p++) {
    if (!(policies & (1u << p)))
      continue;
    fprintf(f, "$%s << EOD\n", bench_policy_name(p));
    for (int i = 0; i < nrows; i++)
      if (rows[i].policy == p)
        fprintf(f, "%.3f %.5f %.3f\n", mib(budgets[i]), rows[i].gbps,
                mib(rows[i].phys_peak));
    fprintf(f, "EOD\n");
  }
  double ug = 0, up = 0;
  for (int i = 0; i < nrows; i++)
    if (rows[i].policy == BENCH_UNLIMITED) {
      ug = rows[i].gbps;
      up = mib(rows[i].phys_peak);
    }
  fprintf(f, "set terminal pngcairo size 1100,480 font ',10'\n");
  fprintf(f, "set output ARG1\n");
  fprintf(f, "set multiplot layout 1,2 title 'hmb scan scenario: "
             "policies over budgets'\n");
  fprintf(f, "set key bottom right\nset grid\nset xlabel 'budget (MiB)'\n");
  for (int panel = 0; panel < 2; panel++) {
    fprintf(f, "set ylabel '%s'\n",
            panel ? "peak physical data bytes (MiB)" : "delivered GB/s");
    fprintf(f, "set yrange [0:*]\n");
    fprintf(f, "plot ");
    int first = 1;
    for (int p = BENCH_VIRTUAL; p < BENCH_NPOLICIES; p++) {
      if (!(policies & (1u << p)))
        continue;
      fprintf(f, "%s$%s using 1:%d with linespoints title '%s'",
              first ? "" : ", ", bench_policy_name(p), panel ? 3 : 2,
              bench_policy_name(p));
      first = 0;
    }
    if (panel)
      fprintf(f, "%sx title 'budget' dashtype 3 lc rgb 'dark-gray'",
              first ? "" : ", ");
    fprintf(f, ", %.5f title 'unlimited' dashtype 2 lc rgb 'black'\n",
            panel ? up : ug);
  }
  fprintf(f, "unset multiplot\n");
  if (bench_close_output(f, "--sweep-png (its script)", gp) != 0)
    return -1;
  char *argv[] = {"gnuplot", "-c", gp, (char *)png, NULL};
  int rc = bench_run_program(gnuplot, argv);
  if (rc != 0) {
    if (rc > 0)
      fprintf(stderr, "hmb_bench: gnuplot failed on %s (exit status %d)\n", gp,
              rc);
    return -1;
  }
  printf("chart: %s (script %s)\n", png, gp);
  return 0;
}

/* The budgets of a sweep: --sweep's list, the default fractions of
 * --budget-mib, or (--tight) 0.25, 0.5 and 1 x the largest split. */
static int bench_sweep_budgets(const bench_opts_t *o,
                               const bench_scenario_t *sc, int64_t *budgets) {
  int nb = 0;
  if (o->tight) {
    bench_scenario_info_t in;
    bench_scenario_describe(sc, &in);
    static const double f[] = {0.25, 0.5, 1};
    for (int i = 0; i < 3; i++)
      budgets[nb++] = (int64_t)(f[i] * (double)in.max_estimate);
    return nb;
  }
  if (o->sweep[0]) {
    const char *s = o->sweep;
    while (*s && nb < 64) {
      char *end;
      double v = strtod(s, &end);
      if (end == s || v <= 0) {
        fprintf(stderr, "hmb_bench: bad --sweep list '%s'\n", o->sweep);
        return -1;
      }
      budgets[nb++] = (int64_t)(v * BENCH_MIB);
      s = *end == ',' ? end + 1 : end;
      if (*end && *end != ',') {
        fprintf(stderr, "hmb_bench: bad --sweep list '%s'\n", o->sweep);
        return -1;
      }
    }
    return nb;
  }
  static const double f[] = {0.5, 0.75, 1, 1.5, 2, 3};
  for (int i = 0; i < 6; i++)
    budgets[nb++] = (int64_t)(f[i] * (double)o->budget);
  return nb;
}

static int bench_sweep(const bench_opts_t *o, const bench_scenario_t *sc) {
  int64_t budgets[64];
  int nb = bench_sweep_budgets(o, sc, budgets);
  if (nb < 0)
    return 2;
  int max = nb * BENCH_NPOLICIES + 1;
  bench_result_t *rows = calloc((size_t)max, sizeof *rows);
  bench_cell_t *cells = calloc((size_t)max, sizeof *cells);
  int64_t *rb = calloc((size_t)max, sizeof *rb);
  if (!rows || !rb || !cells) {
    free(rows);
    free(rb);
    free(cells);
    return 1;
  }
  int n = 0, nblocks = 0;
  if (o->policies & (1u << BENCH_UNLIMITED)) {
    cells[n] = (bench_cell_t){BENCH_UNLIMITED, -1, nblocks++};
    rb[n++] = -1;
  }
  for (int b = 0; b < nb; b++, nblocks++)
    for (int p = BENCH_VIRTUAL; p < BENCH_NPOLICIES; p++) {
      if (!(o->policies & (1u << p)))
        continue;
      cells[n] = (bench_cell_t){p, budgets[b], nblocks};
      rb[n++] = budgets[b];
    }
  int fails = bench_run_plan(o, sc, cells, n, nblocks, rows);
  int out_fails = 0;
  const char *csv = o->sweep_csv ? o->sweep_csv : "hmb_sweep.csv";
  FILE *f = bench_open_output("--sweep-csv", csv);
  if (f) {
    bench_csv_header(f, 1);
    for (int i = 0; i < n; i++)
      bench_csv_row(f, &rows[i], 1, rb[i]);
    out_fails += bench_close_output(f, "--sweep-csv", csv) != 0;
  } else {
    out_fails++;
  }
  printf("\n%-9s %7s %7s %6s %6s %9s %9s %7s %7s %9s %7s %7s %5s %5s %6s\n",
         "policy", "budget", "wall_s", "GB/s", "vs_unl", "peak_live",
         "peak_held", "over", "overmax", "phys_peak", "running", "borrows",
         "grows", "prog", "spread");
  for (int i = 0; i < n; i++) {
    char budget[32] = "inf";
    if (rb[i] >= 0)
      snprintf(budget, sizeof budget, "%.1f", mib(rb[i]));
    double spread = rows[i].gbps > 0
                        ? (rows[i].gbps_max - rows[i].gbps_min) / rows[i].gbps
                        : 0;
    printf("%-9s %7s %7.2f %6.3f %6.2f %9.1f %9.1f %7.1f %7.1f %9.1f %7.2f "
           "%7" PRIu64 " %5" PRIu64 " %5" PRIu64 " %5.0f%%%s\n",
           bench_policy_name(rows[i].policy), budget, rows[i].wall_s,
           rows[i].gbps, rows[i].ratio, mib(rows[i].peak_live),
           mib(rows[i].peak_held), mib(rows[i].peak_over),
           mib(rows[i].peak_over_max), mib(rows[i].phys_peak),
           rows[i].mean_running, rows[i].borrows, rows[i].grows,
           rows[i].progress_grants, 100 * spread, rows[i].ok ? "" : "  FAIL");
  }
  printf("(spread: (max - min) / median GB/s over the %d run%s of a cell)\n",
         o->repeat, o->repeat == 1 ? "" : "s");
  /* staged against oracle at every budget. */
  for (int b = 0; b < nb; b++) {
    const bench_result_t *st = NULL, *orc = NULL, *ea = NULL;
    for (int i = 0; i < n; i++)
      if (rb[i] == budgets[b]) {
        if (rows[i].policy == BENCH_STAGED)
          st = &rows[i];
        if (rows[i].policy == BENCH_ORACLE)
          orc = &rows[i];
        if (rows[i].policy == BENCH_EARLY)
          ea = &rows[i];
      }
    if (orc && orc->gbps > 0 && (st || ea)) {
      printf("budget %7.1f MiB:", mib(budgets[b]));
      if (st)
        printf(" staged/oracle %.2fx%s", st->gbps / orc->gbps,
               st->gbps / orc->gbps < 0.9 ? " (below 0.9)" : "");
      if (ea)
        printf("  early/oracle %.2fx", ea->gbps / orc->gbps);
      printf("\n");
    }
  }
  bench_print_overcommit(rows, n);
  if (o->order == BENCH_ORDER_SPLIT)
    bench_print_stalls(rows, n);
  if (!out_fails)
    printf("sweep CSV: %s\n", csv);
  const char *png = o->sweep_png ? o->sweep_png : "hmb_sweep.png";
  char gnuplot[4096];
  if (bench_find_program("gnuplot", gnuplot, sizeof gnuplot))
    out_fails += bench_plot(gnuplot, png, rows, rb, n, o->policies) != 0;
  else
    printf("gnuplot not found: no chart\n");
  free(rows);
  free(rb);
  free(cells);
  return bench_verdict(fails, out_fails);
}

/* ---- main ---------------------------------------------------------- */

static void bench_print_version(void) {
  bench_env_t e;
  bench_env_collect(&e);
  printf("hmb_bench %s (headers %s, library %s)\n", BENCH_HMB_VERSION,
         BENCH_HMB_VERSION, bench_hmb_library_version());
  printf("build: %s, %s, commit %s%s%s\n", e.build_type, e.compiler,
         e.git_commit, e.sanitizers[0] ? ", sanitizers " : "", e.sanitizers);
  printf("GPU copies: %s\n", bench_gpu_built()
                                 ? "built with the CUDA toolkit"
                                 : "no (built without the CUDA toolkit)");
}

/* Every file the run will write, checked before anything runs. */
static int bench_check_outputs(const bench_opts_t *o) {
  int bad = 0;
  if (o->csv)
    bad |= bench_output_check("--csv", o->csv);
  if (o->json)
    bad |= bench_output_check("--json", o->json);
  if ((o->sweep || o->tight) && !o->micro) {
    bad |= bench_output_check("--sweep-csv",
                              o->sweep_csv ? o->sweep_csv : "hmb_sweep.csv");
    char gnuplot[4096], gp[4096];
    if (bench_find_program("gnuplot", gnuplot, sizeof gnuplot)) {
      const char *png = o->sweep_png ? o->sweep_png : "hmb_sweep.png";
      bench_plot_script_path(png, gp, sizeof gp);
      bad |= bench_output_check("--sweep-png", png);
      bad |= bench_output_check("--sweep-png (its script)", gp);
    }
  }
  return bad ? -1 : 0;
}

/* A child of --isolate: run one policy, write the result to the pipe. */
static int bench_child_main(const bench_opts_t *o) {
  bench_scenario_t *sc = bench_scenario_create(o);
  bench_result_t res;
  memset(&res, 0, sizeof res);
  int rc = 1;
  if (sc) {
    rc =
        bench_run_policy(o, sc, o->child_policy, (size_t)o->child_budget, &res);
    if (rc < 0) {
      res.ok = 0;
      snprintf(res.error, sizeof res.error, "set-up failed: %s",
               hmb_strerror(rc));
      rc = 1;
    }
    bench_scenario_destroy(sc);
  } else {
    snprintf(res.error, sizeof res.error, "no scenario (out of memory)");
  }
  size_t done = 0;
  while (done < sizeof res) {
    ssize_t k =
        write(o->child_fd, (const char *)&res + done, sizeof res - done);
    if (k < 0 && errno == EINTR)
      continue;
    if (k <= 0)
      return 1;
    done += (size_t)k;
  }
  close(o->child_fd);
  return rc;
}

int main(int argc, char **argv) {
  bench_opts_t o;
  int rc = bench_parse(argc, argv, &o);
  if (rc == 3) {
    bench_usage(stdout);
    return 0;
  }
  if (rc == 4) {
    bench_print_version();
    return 0;
  }
  if (rc)
    return rc; /* the message, with a pointer to --help, is out */
  o.argc = argc;
  o.argv = argv;
  if (o.child_fd >= 0)
    return bench_child_main(&o);
  if (bench_check_outputs(&o) != 0)
    return 2;
  if (o.micro && (rc = bench_micro_prepare(&o, argv)) != 0)
    return rc;
  bench_env_t env;
  bench_env_collect(&env);
  bench_env_warn(&env);

  if (o.micro) {
    /* The microbenchmarks print their table at the end: show time passing. */
    if (o.progress)
      bench_ticker_start("micro");
    rc = bench_micro_main(&o);
    bench_ticker_stop();
    return rc;
  }
  const char *gpu_why = "";
  if (bench_gpu_target(&o, &gpu_why) < 0) {
    fprintf(stderr, "hmb_bench: --gpu on, but no GPU is usable: %s\n", gpu_why);
    return 2;
  }

  bench_scenario_t *sc = bench_scenario_create(&o);
  if (!sc) {
    fprintf(stderr, "hmb_bench: no scenario (out of memory, or this build "
                    "has no scan scenario)\n");
    return 1;
  }
  if (!o.quiet)
    bench_print_scenario(&o, sc);
  bench_scenario_info_t in;
  bench_scenario_describe(sc, &in);
  if (!o.quiet && o.budget < in.max_estimate && !o.sweep && !o.tight)
    printf("  note: the budget is below the largest estimate (%.1f MiB): "
           "such splits start only by over-commit\n",
           mib((int64_t)in.max_estimate));

  if (o.sweep || o.tight) {
    rc = bench_sweep(&o, sc);
    bench_scenario_destroy(sc);
    return rc;
  }

  bench_cell_t cells[BENCH_NPOLICIES];
  bench_result_t res[BENCH_NPOLICIES];
  int n = 0, out_fails = 0;
  for (int p = 0; p < BENCH_NPOLICIES; p++)
    if (o.policies & (1u << p)) {
      cells[n] =
          (bench_cell_t){p, p == BENCH_UNLIMITED ? -1 : (int64_t)o.budget, 0};
      n++;
    }
  uint64_t t0 = bench_now_ns();
  int fails = bench_run_plan(&o, sc, cells, n, 1, res);
  bench_print_table(res, n);
  bench_print_overcommit(res, n);
  if (o.order == BENCH_ORDER_SPLIT)
    bench_print_stalls(res, n);
  if (!o.quiet)
    bench_print_reading(res, n);
  if (!o.quiet)
    printf("total %.1f s\n", (bench_now_ns() - t0) / 1e9);
  if (o.csv && bench_write_csv(o.csv, res, n) != 0)
    out_fails++;
  if (o.json && bench_write_json(o.json, &o, &env, sc, res, n) != 0)
    out_fails++;
  bench_scenario_destroy(sc);
  rc = bench_verdict(fails, out_fails);
  if (!rc && !o.quiet)
    printf("invariants: all held\n");
  return rc;
}
