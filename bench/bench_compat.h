/*
 * bench_compat.h - what the benchmarks need from the library, over both
 * the current API (0.2) and the first release's (0.1).
 *
 * The "before" columns of docs/BENCHMARKS.md come from the same benchmark
 * source built against hmb 0.1 (bench/build_against.sh): the measured code
 * is identical, only the library under it differs. The version macros
 * (HMB_VERSION_MAJOR/MINOR, in hmb/export.h in 0.1 and hmb/version.h since
 * 0.2) tell which one is compiled against. What 0.1 does not have is
 * switched off here and reported as "n/a (hmb 0.1)" by the bench:
 *   - the pointer API (hmb_ptr_alloc / hmb_ptr_free),
 *   - staged admission (hmb_task_desc_t::staged, hmb_runner_grow),
 *   - the self-check (hmb_pool_check) and the 0.2 stats fields,
 *   - the config init functions (a zeroed struct means the same there).
 * The calls that exist in both are source-compatible (0.2 turned several
 * into macros that pass the struct size; the call syntax is the same).
 */
#ifndef HMB_BENCH_COMPAT_H
#define HMB_BENCH_COMPAT_H

#include <string.h>

#include "hmb.h"

#if HMB_VERSION_MAJOR > 0 || HMB_VERSION_MINOR >= 2
#define BENCH_HMB_02 1
#define BENCH_HMB_VERSION HMB_VERSION_STRING
#define bench_hmb_library_version() hmb_version_string()
#define bench_pool_config_init(c) hmb_pool_config_init(c)
#else
#define BENCH_HMB_02 0
#define BENCH_HMB_VERSION HMB_VERSION_STRING
#define bench_hmb_library_version() HMB_VERSION_STRING /* no run-time call */
#define bench_pool_config_init(c) memset((c), 0, sizeof *(c))
#endif

#endif /* HMB_BENCH_COMPAT_H */
