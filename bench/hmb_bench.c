/*
 * hmb_bench.c - the benchmark harness: what budget binding buys, measured
 * against the alternatives in one run.
 *
 *   hmb_bench [options]          the scan scenario, every policy in turn
 *   hmb_bench --sweep[=MiB,...]  the same over several budgets (CSV, chart)
 *   hmb_bench micro | --micro    microbenchmarks
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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
  o->micro_threads = "1,2";
  o->fail_split = -1;
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
              "unlimited, virtual, bound, early, oracle\n",
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
  printf("hmb_bench %s: scan scenario%s\n", HMB_VERSION_STRING,
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
  printf("  budget %.1f MiB for virtual/bound/early/oracle, acquire timeout "
         "%.0f ms\n",
         mib((int64_t)o->budget), o->acquire_timeout_ms);
  fflush(stdout);
}

static void bench_print_table(const bench_result_t *r, int n) {
  printf("\n%-9s %8s %7s %6s %6s %9s %9s %8s %9s %7s %8s %7s %8s\n", "policy",
         "budget", "wall_s", "GB/s", "vs_unl", "peak_live", "peak_held", "over",
         "phys_peak", "running", "wait_s", "borrows", "requeues");
  printf("%-9s %8s %7s %6s %6s %9s %9s %8s %9s %7s %8s %7s %8s\n", "", "MiB",
         "", "", "", "MiB", "MiB", "MiB", "MiB", "mean", "sum", "", "");
  for (int i = 0; i < n; i++) {
    char budget[32];
    if (r[i].policy == BENCH_UNLIMITED)
      snprintf(budget, sizeof budget, "inf");
    else
      snprintf(budget, sizeof budget, "%.0f", mib(r[i].limit));
    char ratio[16] = "-";
    if (r[i].ratio > 0)
      snprintf(ratio, sizeof ratio, "%.2f", r[i].ratio);
    printf("%-9s %8s %7.2f %6.3f %6s %9.1f %9.1f %8.1f %9.1f %7.2f %8.2f "
           "%7" PRIu64 " %8" PRIu64 "%s\n",
           bench_policy_name(r[i].policy), budget, r[i].wall_s, r[i].gbps,
           ratio, mib(r[i].peak_live), mib(r[i].peak_held), mib(r[i].peak_over),
           mib(r[i].phys_peak), r[i].mean_running, r[i].wait_s, r[i].borrows,
           r[i].requeues, r[i].ok ? "" : "  FAIL");
  }
  printf("peak_live: bytes of live runner buffers (library); phys_peak: data "
         "bytes alive at once,\ncounted by the bench for every policy (virtual "
         "reads outside the budget: its\npeak_live is its reservations). "
         "over: peak over-committed budget.\n");
}

static void bench_csv_header(FILE *f, int with_budget_col) {
  fprintf(f,
          "%spolicy,limit_bytes,wall_s,delivered_bytes,gbps,ratio_vs_"
          "unlimited,peak_live_bytes,peak_held_bytes,peak_overcommitted_"
          "bytes,phys_peak_bytes,lib_phys_peak_bytes,mean_running,sampled_"
          "running,wait_s,wait_max_s,borrows,borrow_waits,borrow_"
          "overcommits,acquire_overcommits,requeues,released_early_bytes,"
          "failed,ok\n",
          with_budget_col ? "budget_bytes," : "");
}

/* with_budget: a leading budget column (empty for unlimited: no budget). */
static void bench_csv_row(FILE *f, const bench_result_t *r, int with_budget,
                          int64_t budget) {
  if (with_budget && budget >= 0)
    fprintf(f, "%" PRId64 ",", budget);
  else if (with_budget)
    fputc(',', f);
  fprintf(f,
          "%s,%" PRId64 ",%.4f,%" PRIu64 ",%.5f,%.4f,%" PRId64 ",%" PRId64
          ",%" PRId64 ",%" PRId64 ",%" PRId64 ",%.3f,%.3f,%.4f,%.4f,%" PRIu64
          ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64
          ",%" PRIu64 ",%d\n",
          bench_policy_name(r->policy), r->limit, r->wall_s, r->delivered,
          r->gbps, r->ratio, r->peak_live, r->peak_held, r->peak_over,
          r->phys_peak, r->lib_phys_peak, r->mean_running, r->sampled_running,
          r->wait_s, r->wait_max_s, r->borrows, r->borrow_waits,
          r->borrow_overcommits, r->acquire_overcommits, r->requeues,
          r->released_early, r->failed, r->ok);
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
  bench_json_str(f, HMB_VERSION_STRING);
  fprintf(f, ",\n  ");
  bench_env_json(f, env);
  fprintf(f,
          ",\n  \"scenario\": {\"seed\": %" PRIu64 ", \"splits\": %d, "
          "\"split_min_bytes\": %zu, \"split_max_bytes\": %zu, "
          "\"chunk_bytes\": %zu, \"keep\": %.4f, \"footer_min_bytes\": %zu, "
          "\"footer_max_bytes\": %zu, \"footer_outside\": %.4f, "
          "\"threads\": %d, \"latency_ms\": %.3f, \"stream_mbps\": %.3f, "
          "\"sink_mbps\": %.3f, \"budget_bytes\": %zu, "
          "\"acquire_timeout_ms\": %.3f, \"order\": ",
          o->seed, o->splits, o->split_min, o->split_max, o->chunk, o->keep,
          o->footer_min, o->footer_max, o->footer_outside, o->threads,
          o->latency_ms, o->stream_mbps, o->sink_mbps, o->budget,
          o->acquire_timeout_ms);
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
    fprintf(f,
            ", \"limit_bytes\": %" PRId64 ", \"wall_s\": %.4f, "
            "\"delivered_bytes\": %" PRIu64 ", \"gbps\": %.5f, "
            "\"ratio_vs_unlimited\": %.4f, \"peak_live_bytes\": %" PRId64
            ", \"peak_held_bytes\": %" PRId64
            ", \"peak_overcommitted_bytes\": %" PRId64
            ", \"phys_peak_bytes\": %" PRId64
            ", \"lib_phys_peak_bytes\": %" PRId64
            ", \"mean_running\": %.3f, \"sampled_running\": %.3f, "
            "\"wait_s\": %.4f, \"wait_max_s\": %.4f, \"borrows\": %" PRIu64
            ", \"borrow_waits\": %" PRIu64 ", \"borrow_overcommits\": %" PRIu64
            ", \"acquire_overcommits\": %" PRIu64 ", \"requeues\": %" PRIu64
            ", \"released_early_bytes\": %" PRIu64 ", \"failed\": %" PRIu64
            ", \"ok\": %s, \"error\": ",
            r[i].limit, r[i].wall_s, r[i].delivered, r[i].gbps, r[i].ratio,
            r[i].peak_live, r[i].peak_held, r[i].peak_over, r[i].phys_peak,
            r[i].lib_phys_peak, r[i].mean_running, r[i].sampled_running,
            r[i].wait_s, r[i].wait_max_s, r[i].borrows, r[i].borrow_waits,
            r[i].borrow_overcommits, r[i].acquire_overcommits, r[i].requeues,
            r[i].released_early, r[i].failed, r[i].ok ? "true" : "false");
    bench_json_str(f, r[i].error);
    fprintf(f, "}%s\n", i + 1 < n ? "," : "");
  }
  fprintf(f, "  ]\n}\n");
  return bench_close_output(f, "--json", path);
}

/* Run one policy and report a broken invariant on stderr. */
static int bench_one(const bench_opts_t *o, const bench_scenario_t *sc,
                     int policy, size_t limit, double unl_gbps,
                     bench_result_t *res) {
  char budget[32] = "no budget";
  if (policy != BENCH_UNLIMITED)
    snprintf(budget, sizeof budget, "budget %.0f MiB", mib((int64_t)limit));
  if (o->progress)
    fprintf(stderr, "  running %s (%s)...\n", bench_policy_name(policy),
            budget);
  int rc = bench_run_policy(o, sc, policy, limit, res);
  if (rc < 0) {
    fprintf(stderr, "hmb_bench: %s: run could not be set up: %s\n",
            bench_policy_name(policy), hmb_strerror(rc));
    res->ok = 0;
    snprintf(res->error, sizeof res->error, "set-up failed: %s",
             hmb_strerror(rc));
    return 1;
  }
  res->ratio = unl_gbps > 0 ? res->gbps / unl_gbps : 0;
  if (!res->ok)
    fprintf(stderr, "hmb_bench: invariant broken: %s (%s): %s\n",
            bench_policy_name(policy), budget, res->error);
  return res->ok ? 0 : 1;
}

/* A few plain sentences comparing early with its alternatives. */
static void bench_print_reading(const bench_result_t *r, int n) {
  const bench_result_t *by[BENCH_NPOLICIES] = {0};
  for (int i = 0; i < n; i++)
    by[r[i].policy] = &r[i];
  const bench_result_t *e = by[BENCH_EARLY];
  if (!e)
    return;
  printf("\n");
  for (int p = BENCH_VIRTUAL; p <= BENCH_ORACLE; p++) {
    if (p == BENCH_EARLY || !by[p])
      continue;
    const bench_result_t *x = by[p];
    double t = x->gbps > 0 ? e->gbps / x->gbps : 0;
    printf("early vs %-7s: %.2fx the throughput, peak held %.1f vs %.1f "
           "MiB, phys peak %.1f vs %.1f MiB%s\n",
           bench_policy_name(p), t, mib(e->peak_held), mib(x->peak_held),
           mib(e->phys_peak), mib(x->phys_peak),
           t < 1.0 ? "  <- early is slower here" : "");
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

/* The chart's script: FILE.png.gp beside the chart. */
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

static int bench_sweep(const bench_opts_t *o, const bench_scenario_t *sc) {
  int64_t budgets[64];
  int nb = 0;
  if (o->sweep[0]) {
    const char *s = o->sweep;
    while (*s && nb < 64) {
      char *end;
      double v = strtod(s, &end);
      if (end == s || v <= 0) {
        fprintf(stderr, "hmb_bench: bad --sweep list '%s'\n", o->sweep);
        return 2;
      }
      budgets[nb++] = (int64_t)(v * BENCH_MIB);
      s = *end == ',' ? end + 1 : end;
      if (*end && *end != ',') {
        fprintf(stderr, "hmb_bench: bad --sweep list '%s'\n", o->sweep);
        return 2;
      }
    }
  } else {
    static const double f[] = {0.5, 0.75, 1, 1.5, 2, 3};
    for (int i = 0; i < 6; i++)
      budgets[nb++] = (int64_t)(f[i] * (double)o->budget);
  }
  int max = nb * BENCH_NPOLICIES + 1;
  bench_result_t *rows = calloc((size_t)max, sizeof *rows);
  int64_t *rb = calloc((size_t)max, sizeof *rb);
  if (!rows || !rb) {
    free(rows);
    free(rb);
    return 1;
  }
  int n = 0, fails = 0;
  double ug = 0;
  if (o->policies & (1u << BENCH_UNLIMITED)) {
    fails += bench_one(o, sc, BENCH_UNLIMITED, 0, 0, &rows[n]);
    rows[n].ratio = 1;
    ug = rows[n].gbps;
    rb[n++] = -1;
  }
  for (int b = 0; b < nb; b++)
    for (int p = BENCH_VIRTUAL; p < BENCH_NPOLICIES; p++) {
      if (!(o->policies & (1u << p)))
        continue;
      fails += bench_one(o, sc, p, (size_t)budgets[b], ug, &rows[n]);
      rb[n++] = budgets[b];
    }
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
  printf("\n%-9s %8s %7s %6s %6s %9s %9s %8s %9s %7s %8s\n", "policy", "budget",
         "wall_s", "GB/s", "vs_unl", "peak_live", "peak_held", "over",
         "phys_peak", "running", "borrows");
  for (int i = 0; i < n; i++) {
    char budget[32] = "inf";
    if (rb[i] >= 0)
      snprintf(budget, sizeof budget, "%.0f", mib(rb[i]));
    printf("%-9s %8s %7.2f %6.3f %6.2f %9.1f %9.1f %8.1f %9.1f %7.2f "
           "%8" PRIu64 "%s\n",
           bench_policy_name(rows[i].policy), budget, rows[i].wall_s,
           rows[i].gbps, rows[i].ratio, mib(rows[i].peak_live),
           mib(rows[i].peak_held), mib(rows[i].peak_over),
           mib(rows[i].phys_peak), rows[i].mean_running, rows[i].borrows,
           rows[i].ok ? "" : "  FAIL");
  }
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
  return bench_verdict(fails, out_fails);
}

/* ---- main ---------------------------------------------------------- */

static void bench_print_version(void) {
  bench_env_t e;
  bench_env_collect(&e);
  printf("hmb_bench %s (headers %s, library %s)\n", HMB_VERSION_STRING,
         HMB_VERSION_STRING, hmb_version_string());
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
  if (o->sweep && !o->micro) {
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
  if (bench_check_outputs(&o) != 0)
    return 2;
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
    fprintf(stderr, "hmb_bench: out of memory building the scenario\n");
    return 1;
  }
  if (!o.quiet)
    bench_print_scenario(&o, sc);
  bench_scenario_info_t in;
  bench_scenario_describe(sc, &in);
  if (!o.quiet && o.budget < in.max_estimate)
    printf("  note: the budget is below the largest estimate (%.1f MiB): "
           "such splits start only by over-commit\n",
           mib((int64_t)in.max_estimate));

  if (o.sweep) {
    rc = bench_sweep(&o, sc);
    bench_scenario_destroy(sc);
    return rc;
  }

  bench_result_t res[BENCH_NPOLICIES];
  int n = 0, fails = 0, out_fails = 0;
  double ug = 0;
  uint64_t t0 = bench_now_ns();
  for (int p = 0; p < BENCH_NPOLICIES; p++) {
    if (!(o.policies & (1u << p)))
      continue;
    fails += bench_one(&o, sc, p, o.budget, ug, &res[n]);
    if (p == BENCH_UNLIMITED) {
      ug = res[n].gbps;
      res[n].ratio = 1;
    }
    n++;
  }
  bench_print_table(res, n);
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
