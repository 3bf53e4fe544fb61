#!/usr/bin/env bash
# Instructions per allocation, counted by callgrind (noise-free, unlike
# timings): malloc+free, posix_memalign+free, the hmb runner (handle API),
# the hmb pointer API, hmb over an hmb_backend_t for glibc and for each peer
# allocator that is installed, and each peer itself, at 64 B, 4 KiB and
# 64 KiB.
#
# Each case runs a fixed number of iterations of allocate + write the first
# and last byte + free in a function of its own (hmb_cg_<impl>_<size>, in
# bench/hmb_bench_micro.c), after 1000 iterations of warm-up outside it;
# valgrind counts only inside those functions (--toggle-collect), and the
# inclusive count of each, divided by the iterations, is its instructions
# per operation. The loop and the harness's call are the same for every
# case, so differences between rows are the allocators' own.
#
# --executor counts the executor's tiny tasks instead: the micro bench's
# executor group (--quick: 8,800 empty tasks per program, warm-ups
# included), instructions per task of hmb's submit and worker against the
# bare pthread pool's submit and worker in the same run.
#
# Usage: scripts/callgrind.sh [--bench PATH] [--iters N] [--annotate CASE]
#                             [--executor]
#   --bench PATH     the hmb_bench to measure [build-release/bench/hmb_bench,
#                    built as Release first if missing]; e.g. one built
#                    against another version of the library by
#                    bench/build_against.sh
#   --iters N        iterations per case [20000]
#   --annotate CASE  instead of the table: where the instructions of one
#                    case go (exclusive instructions per operation of each
#                    function), e.g. --annotate hmb_64 or hmb_ptr_4k
#   --executor       instructions per executor task (see above)
set -euo pipefail
cd "$(dirname "$0")/.."
bench=""
iters=20000
annotate=""
executor=0
while [ $# -gt 0 ]; do
  case $1 in
    --executor) executor=1; shift ;;
    --bench) bench=$2; shift 2 ;;
    --iters) iters=$2; shift 2 ;;
    --annotate) annotate=$2; shift 2 ;;
    -h | --help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "callgrind.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
command -v valgrind >/dev/null && command -v callgrind_annotate >/dev/null ||
  { echo "callgrind.sh: valgrind is not installed (Debian: valgrind)" >&2; exit 1; }
if [ -z "$bench" ]; then
  bench=build-release/bench/hmb_bench
  if [ ! -x "$bench" ]; then
    cmake -S . -B build-release -DCMAKE_BUILD_TYPE=Release \
      -DHMB_BUILD_TESTS=OFF >/dev/null
    cmake --build build-release -j"$(nproc)" --target hmb_bench >/dev/null
  fi
fi
[ -x "$bench" ] || { echo "callgrind.sh: no program at '$bench'" >&2; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/hmb-callgrind-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
# Debian's jemalloc needs static TLS that a dlopen finds only with more
# room reserved; the bench would run itself again to get it, which valgrind
# would not follow, so it is set here.
export GLIBC_TUNABLES="${GLIBC_TUNABLES:+$GLIBC_TUNABLES:}glibc.rtld.optional_static_tls=65536"
export HMB_BENCH_TLS_REEXEC=1

if [ "$executor" = 1 ]; then
  valgrind --tool=callgrind --callgrind-out-file="$tmp/cg.out" \
    "$bench" micro --micro-groups executor --quick >"$tmp/list" \
    2>"$tmp/valgrind.log" || { cat "$tmp/valgrind.log" >&2; exit 1; }
  # Tasks per program: the cases' rounds, and a tenth of one as warm-up.
  tasks=$(awk '/^executor: [0-9]+ empty tasks/ { n = $2 }
               /median of [0-9]+ rounds/ { match($0, /median of [0-9]+/)
                                           r = substr($0, RSTART + 10, RLENGTH - 10) }
               n && r && /^ +[0-9]+ +[0-9]/ { cases++ }
               END { if (n && r && cases) print cases * (n / 10 + r * n) }' "$tmp/list")
  [ -n "$tasks" ] || { echo "callgrind.sh: no executor table in the bench output" >&2; exit 1; }
  callgrind_annotate --inclusive=yes --threshold=100 "$tmp/cg.out" |
    awk -v n="$tasks" '
      function take(name) {
        if (match($0, "[:( ]" name " ") || match($0, "[:( ]" name "$")) {
          ir = $1; gsub(",", "", ir); if (!(name in v)) v[name] = ir
        }
      }
      /^ *[0-9][0-9,]* / {
        take("hmb_executor_submit_sized"); take("hmb__worker_main")
        take("micro_bare_pool"); take("xbare_worker")
      }
      END {
        hs = v["hmb_executor_submit_sized"] / n; hw = v["hmb__worker_main"] / n
        bs = v["micro_bare_pool"] / n; bw = v["xbare_worker"] / n
        if (hs == 0 || hw == 0 || bs == 0 || bw == 0) {
          print "callgrind.sh: executor functions not found (symbols stripped?)" > "/dev/stderr"
          exit 1
        }
        printf "instructions per executor task (%d tasks per program, empty task function)\n", n
        printf "%-10s %8s %8s %8s\n", "", "submit", "worker", "total"
        printf "%-10s %8.0f %8.0f %8.0f\n", "bare pool", bs, bw, bs + bw
        printf "%-10s %8.0f %8.0f %8.0f\n", "hmb", hs, hw, hs + hw
        printf "hmb / bare: %.2fx (goal <= 2x)\n", (hs + hw) / (bs + bw)
      }'
  exit 0
fi

toggle='hmb_cg_*'
[ -n "$annotate" ] && toggle="hmb_cg_$annotate"
valgrind --tool=callgrind --callgrind-out-file="$tmp/cg.out" \
  --toggle-collect="$toggle" "$bench" micro --callgrind \
  --callgrind-iters "$iters" >"$tmp/list" 2>"$tmp/valgrind.log" ||
  { cat "$tmp/valgrind.log" >&2; exit 1; }
head -n 1 "$tmp/list"
grep -q 'build type Release' "$tmp/list" ||
  echo "callgrind.sh: warning: $bench is not a Release build" >&2

if [ -n "$annotate" ]; then
  grep -q "hmb_cg_$annotate " "$tmp/list" ||
    { echo "callgrind.sh: no case hmb_cg_$annotate (see the list above)" >&2; exit 2; }
  echo "where the instructions of hmb_cg_$annotate go (exclusive, per operation):"
  callgrind_annotate --inclusive=no --threshold=99.9 "$tmp/cg.out" |
    awk -v n="$iters" '
      /^ *[0-9][0-9,]* / && $0 !~ /PROGRAM TOTALS/ {
        ir = $1; gsub(",", "", ir); $1 = ""; sub(/^ +/, "")
        sub(/^\([^)]*\) */, "")
        if (ir / n >= 0.5) printf "%10.1f  %s\n", ir / n, $0
      }'
  exit 0
fi

callgrind_annotate --inclusive=yes --threshold=100 "$tmp/cg.out" |
  awk '/hmb_cg_[a-z_0-9]+/ {
         ir = $1; gsub(",", "", ir)
         match($0, /hmb_cg_[a-z_0-9]+/)
         print substr($0, RSTART, RLENGTH), ir
       }' >"$tmp/ir"
awk -v n="$iters" '
  FNR == NR { ir[$1] = $2; next }
  $1 == "cg" {
    impl = $2; size = $3; fn = $4
    if (!(impl in seen)) { seen[impl] = 1; order[++k] = impl }
    col = size == 64 ? 1 : size == 4096 ? 2 : 3
    if ($5 == "skipped:") { $1 = $2 = $3 = $4 = $5 = ""; sub(/^ +/, ""); why[impl] = $0; next }
    if (fn in ir) v[impl, col] = ir[fn] / n
  }
  END {
    printf "\ninstructions per operation (%d iterations each; allocate, write 2 bytes, free)\n", n
    printf "%-15s %9s %9s %9s   %s\n", "impl", "64 B", "4 KiB", "64 KiB", "minus malloc+free (64 B / 4 KiB / 64 KiB)"
    for (i = 1; i <= k; i++) {
      m = order[i]
      if (m in why) { printf "%-15s %s\n", m, why[m]; continue }
      printf "%-15s", m
      for (c = 1; c <= 3; c++) printf " %9.1f", v[m, c]
      if (m == "malloc") { printf "   (the baseline)\n"; continue }
      printf "   %+.0f / %+.0f / %+.0f\n", v[m, 1] - v["malloc", 1], v[m, 2] - v["malloc", 2], v[m, 3] - v["malloc", 3]
    }
  }' "$tmp/ir" "$tmp/list"
