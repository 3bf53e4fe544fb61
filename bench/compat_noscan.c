/*
 * compat_noscan.c - stands in for hmb_bench_scan.c when hmb_bench is built
 * against hmb 0.1 (bench/build_against.sh): the scan scenario uses 0.2's
 * staged admission, self-check and stats, so such a build has only the
 * microbenchmarks (the "before" columns of docs/BENCHMARKS.md). Every scan
 * entry point says so and fails.
 */
#include <stdio.h>

#include "bench_compat.h"
#include "hmb_bench.h"

bench_scenario_t *bench_scenario_create(const bench_opts_t *o) {
  (void)o;
  fprintf(stderr,
          "hmb_bench: this build links hmb %s, which the scan "
          "scenario does not support (it needs 0.2); use "
          "'hmb_bench micro'\n",
          bench_hmb_library_version());
  return NULL;
}

void bench_scenario_destroy(bench_scenario_t *sc) {
  (void)sc;
}

void bench_scenario_describe(const bench_scenario_t *sc,
                             bench_scenario_info_t *out) {
  (void)sc;
  *out = (bench_scenario_info_t){0};
}

int bench_run_policy(const bench_opts_t *o, const bench_scenario_t *sc,
                     int policy, size_t limit, bench_result_t *out) {
  (void)o;
  (void)sc;
  (void)limit;
  *out = (bench_result_t){0};
  out->policy = policy;
  return HMB_ENOTSUP;
}

int bench_gpu_target(const bench_opts_t *o, const char **why) {
  (void)o;
  if (why)
    *why = "host memory sink (no scan scenario in this build)";
  return 0;
}
