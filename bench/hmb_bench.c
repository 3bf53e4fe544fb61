/*
 * hmb_bench.c - the benchmark harness: what budget binding buys, measured
 * against the alternatives in one run.
 *
 *   hmb_bench [options]          the scan scenario, every policy in turn
 *   hmb_bench --sweep[=MiB,...]  the same over several budgets (CSV, chart)
 *   hmb_bench micro | --micro    microbenchmarks
 *
 * This file holds the command line, the output formats and the sweep; the
 * scenario lives in hmb_bench_scan.c and the microbenchmarks in
 * hmb_bench_micro.c. The exit status is 0 when every run finished and every
 * invariant held, 1 when an invariant broke or a run failed (the message
 * names it), 2 for a usage error. Timings never decide the exit status.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
  fprintf(
      f,
      "usage: hmb_bench [options]            scan scenario, every policy\n"
      "       hmb_bench --sweep[=MiB,...]    the scenario over budgets\n"
      "       hmb_bench micro [options]      microbenchmarks\n"
      "\n"
      "scenario (defaults in brackets; --quick scales them down):\n"
      "  --seed N              PRNG seed of the splits [42]\n"
      "  --splits N            number of splits [400]\n"
      "  --split-min-mib X     shortest split (log-uniform lengths) [1]\n"
      "  --split-max-mib X     longest split [64]\n"
      "  --chunk-kib N         column chunk size [1024]\n"
      "  --keep F              fraction of chunks kept by pruning [0.3]\n"
      "  --footer-min-kib N    smallest footer (log-uniform) [64]\n"
      "  --footer-max-kib N    largest footer [4096]\n"
      "  --footer-outside F    probability the footer is outside the split "
      "[0.5]\n"
      "  --threads N           scan threads [16]\n"
      "  --latency-ms F        storage latency per read [4]\n"
      "  --stream-mbps F       storage bandwidth per stream, MB/s [64]\n"
      "  --sink-mbps F         consumer copy rate, MB/s; 0 unpaced [1000]\n"
      "  --gpu auto|on|off     consumer copies to the GPU when one is "
      "usable [auto]\n"
      "  --pinned-mib X        pinned region per pool; buffers prefer it "
      "[0]\n"
      "  --budget-mib X        pool limit of the budgeted policies [128]\n"
      "  --acquire-timeout-ms F  one admission attempt [100]\n"
      "  --order split|completion  consumer order [split]\n"
      "  --policies LIST       subset of unlimited,virtual,bound,early,oracle\n"
      "  --fail-split N        self-test: split N's task fails after its "
      "footer\n"
      "output:\n"
      "  --csv FILE, --json FILE   one row per policy (or per micro case)\n"
      "  --sweep[=MiB,...]     budgets to sweep [0.5,0.75,1,1.5,2,3 x budget]\n"
      "  --sweep-csv FILE      [hmb_sweep.csv]\n"
      "  --sweep-png FILE      chart, when gnuplot is installed "
      "[hmb_sweep.png]\n"
      "  --quick               a few seconds, for CI\n"
      "  --quiet               only the final table\n"
      "  --progress, --no-progress  [on when stderr is a terminal]\n"
      "micro:\n"
      "  --micro-ms F          measured time per case [200]\n"
      "  --micro-threads LIST  thread counts of the alloc cases [1,2]\n");
}

static int bench_parse_double(const char *s, double lo, double hi,
                              double *out) {
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (errno || end == s || *end || !(v >= lo && v <= hi))
    return -1;
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

/* Parse argv into *o; 0, or 2 for a usage error, or 3 for --help. */
static int bench_parse(int argc, char **argv, bench_opts_t *o) {
  bench_opts_defaults(o);
  for (int i = 1; i < argc; i++)
    if (strcmp(argv[i], "--quick") == 0)
      bench_opts_quick(o);
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *val = NULL;
    char key[64];
    const char *eq = strchr(a, '=');
    if (eq && (size_t)(eq - a) < sizeof key) {
      memcpy(key, a, (size_t)(eq - a));
      key[eq - a] = '\0';
      val = eq + 1;
    } else {
      snprintf(key, sizeof key, "%s", a);
    }
    /* Flags without a value. */
    if (strcmp(key, "--quick") == 0)
      continue;
    if (strcmp(key, "micro") == 0 || strcmp(key, "--micro") == 0) {
      o->micro = 1;
      continue;
    }
    if (strcmp(key, "--quiet") == 0) {
      o->quiet = 1;
      continue;
    }
    if (strcmp(key, "--progress") == 0) {
      o->progress = 1;
      continue;
    }
    if (strcmp(key, "--no-progress") == 0) {
      o->progress = 0;
      continue;
    }
    if (strcmp(key, "--help") == 0 || strcmp(key, "-h") == 0)
      return 3;
    if (strcmp(key, "--sweep") == 0) {
      o->sweep = val ? val : "";
      continue;
    }
    /* Options with a value: --key=value or --key value. */
    if (!val) {
      if (i + 1 >= argc) {
        fprintf(stderr, "hmb_bench: %s needs a value\n", key);
        return 2;
      }
      val = argv[++i];
    }
    double d = 0;
    int bad = 0;
#define NUM(name, lo, hi)                                                      \
  (strcmp(key, name) == 0 && ((bad = bench_parse_double(val, lo, hi, &d)), 1))
    if (NUM("--seed", 0, 1.8e19))
      o->seed = (uint64_t)d;
    else if (NUM("--splits", 1, 1e6))
      o->splits = (int)d;
    else if (NUM("--split-min-mib", 0.004, 1e6))
      o->split_min = (size_t)(d * BENCH_MIB);
    else if (NUM("--split-max-mib", 0.004, 1e6))
      o->split_max = (size_t)(d * BENCH_MIB);
    else if (NUM("--chunk-kib", 1, 1e7))
      o->chunk = (size_t)(d * BENCH_KIB);
    else if (NUM("--keep", 0, 1))
      o->keep = d;
    else if (NUM("--footer-min-kib", 1, 1e7))
      o->footer_min = (size_t)(d * BENCH_KIB);
    else if (NUM("--footer-max-kib", 1, 1e7))
      o->footer_max = (size_t)(d * BENCH_KIB);
    else if (NUM("--footer-outside", 0, 1))
      o->footer_outside = d;
    else if (NUM("--threads", 1, 1024))
      o->threads = (int)d;
    else if (NUM("--latency-ms", 0, 1e5))
      o->latency_ms = d;
    else if (NUM("--stream-mbps", 0, 1e6))
      o->stream_mbps = d;
    else if (NUM("--sink-mbps", 0, 1e6))
      o->sink_mbps = d;
    else if (NUM("--pinned-mib", 0, 1e7))
      o->pinned = (size_t)(d * BENCH_MIB);
    else if (strcmp(key, "--gpu") == 0 && val &&
             (!strcmp(val, "auto") || !strcmp(val, "on") ||
              !strcmp(val, "off")))
      o->gpu = !strcmp(val, "auto") ? -1 : !strcmp(val, "on");
    else if (NUM("--budget-mib", 0.004, 1e9))
      o->budget = (size_t)(d * BENCH_MIB);
    else if (NUM("--acquire-timeout-ms", 0.001, 1e7))
      o->acquire_timeout_ms = d;
    else if (NUM("--fail-split", 0, 1e6))
      o->fail_split = (int)d;
    else if (NUM("--micro-ms", 1, 1e6))
      o->micro_ms = d;
    else if (strcmp(key, "--micro-threads") == 0)
      o->micro_threads = val;
    else if (strcmp(key, "--csv") == 0)
      o->csv = val;
    else if (strcmp(key, "--json") == 0)
      o->json = val;
    else if (strcmp(key, "--sweep-csv") == 0)
      o->sweep_csv = val;
    else if (strcmp(key, "--sweep-png") == 0)
      o->sweep_png = val;
    else if (strcmp(key, "--order") == 0) {
      if (strcmp(val, "split") == 0)
        o->order = BENCH_ORDER_SPLIT;
      else if (strcmp(val, "completion") == 0)
        o->order = BENCH_ORDER_COMPLETION;
      else
        bad = 1;
    } else if (strcmp(key, "--policies") == 0) {
      o->policies = bench_parse_policies(val);
      bad = o->policies == 0;
    } else {
      fprintf(stderr, "hmb_bench: unknown option %s (see --help)\n", key);
      return 2;
    }
#undef NUM
    if (bad) {
      fprintf(stderr, "hmb_bench: bad value '%s' for %s\n", val, key);
      return 2;
    }
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

static int bench_write_csv(const char *path, const bench_result_t *r, int n) {
  FILE *f = fopen(path, "w");
  if (!f) {
    perror(path);
    return -1;
  }
  bench_csv_header(f, 0);
  for (int i = 0; i < n; i++)
    bench_csv_row(f, &r[i], 0, 0);
  return fclose(f);
}

/* JSON strings here are fixed identifiers and a command line: escape the
 * two characters that could break the syntax. */
static void bench_json_str(FILE *f, const char *s) {
  fputc('"', f);
  for (; *s; s++) {
    if (*s == '"' || *s == '\\')
      fputc('\\', f);
    if ((unsigned char)*s >= 0x20)
      fputc(*s, f);
  }
  fputc('"', f);
}

static int bench_write_json(const char *path, const bench_opts_t *o,
                            const bench_scenario_t *sc, const bench_result_t *r,
                            int n) {
  FILE *f = fopen(path, "w");
  if (!f) {
    perror(path);
    return -1;
  }
  bench_scenario_info_t in;
  bench_scenario_describe(sc, &in);
  fprintf(f, "{\n  \"version\": ");
  bench_json_str(f, HMB_VERSION_STRING);
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
  return fclose(f);
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

/* ---- sweep ----------------------------------------------------------- */

static int bench_have_gnuplot(void) {
  return system("command -v gnuplot >/dev/null 2>&1") == 0;
}

static void bench_plot(const char *png, const bench_result_t *rows,
                       const int64_t *budgets, int nrows, unsigned policies) {
  char gp[1024];
  snprintf(gp, sizeof gp, "%s.gp", png);
  FILE *f = fopen(gp, "w");
  if (!f) {
    perror(gp);
    return;
  }
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
  fprintf(f, "set output '%s'\n", png);
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
  fclose(f);
  char cmd[2100];
  snprintf(cmd, sizeof cmd, "gnuplot '%s'", gp);
  if (system(cmd) != 0)
    fprintf(stderr, "hmb_bench: gnuplot failed on %s\n", gp);
  else
    printf("chart: %s (script %s)\n", png, gp);
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
  const char *csv = o->sweep_csv ? o->sweep_csv : "hmb_sweep.csv";
  FILE *f = fopen(csv, "w");
  if (f) {
    bench_csv_header(f, 1);
    for (int i = 0; i < n; i++)
      bench_csv_row(f, &rows[i], 1, rb[i]);
    fclose(f);
  } else {
    perror(csv);
    fails++;
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
  printf("sweep CSV: %s\n", csv);
  const char *png = o->sweep_png ? o->sweep_png : "hmb_sweep.png";
  if (bench_have_gnuplot())
    bench_plot(png, rows, rb, n, o->policies);
  else
    printf("gnuplot not found: no chart\n");
  free(rows);
  free(rb);
  if (fails) {
    fprintf(stderr, "hmb_bench: %d run(s) broke an invariant\n", fails);
    return 1;
  }
  return 0;
}

/* ---- main ---------------------------------------------------------- */

int main(int argc, char **argv) {
  bench_opts_t o;
  int rc = bench_parse(argc, argv, &o);
  if (rc == 3) {
    bench_usage(stdout);
    return 0;
  }
  if (rc) {
    bench_usage(stderr);
    return rc;
  }
  if (o.micro)
    return bench_micro_main(&o);
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
  int n = 0, fails = 0;
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
    fails++;
  if (o.json && bench_write_json(o.json, &o, sc, res, n) != 0)
    fails++;
  bench_scenario_destroy(sc);
  if (fails) {
    fprintf(stderr,
            "hmb_bench: FAILED: %d run(s) broke an invariant or "
            "could not write output\n",
            fails);
    return 1;
  }
  if (!o.quiet)
    printf("invariants: all held\n");
  return 0;
}
