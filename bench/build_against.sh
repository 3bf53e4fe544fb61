#!/usr/bin/env bash
# Build hmb_bench against another build of the library, e.g. the previous
# release, so that its figures and this tree's come from the same benchmark
# code on the same machine (the "before" columns of docs/BENCHMARKS.md).
#
# Usage: bench/build_against.sh INCLUDE_DIR LIBHMB_A OUT_DIR
#   INCLUDE_DIR  the library's public headers (the directory with hmb.h)
#   LIBHMB_A     its static library, built as Release
#   OUT_DIR      where OUT_DIR/hmb_bench is written
# e.g. bench/build_against.sh ../hmb-0.1/include ../hmb-0.1/build-rel/libhmb.a /tmp/bench-0.1
#
# Against hmb 0.1 only the microbenchmarks exist (bench/bench_compat.h says
# what is switched off); the scan scenario needs 0.2. The compiler flags are
# those of a CMake Release build (-O3 -DNDEBUG) with the project's warnings.
# A library that needs the CUDA runtime at link time (0.1 did) is linked
# with it from CUDA_HOME (default /usr/local/cuda).
set -euo pipefail
[ $# -eq 3 ] || { sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 2; }
inc=$(cd "$1" && pwd)
lib=$(cd "$(dirname "$2")" && pwd)/$(basename "$2")
out=$3
here=$(cd "$(dirname "$0")" && pwd)
[ -f "$inc/hmb.h" ] || { echo "build_against.sh: no hmb.h in $inc" >&2; exit 1; }
[ -f "$lib" ] || { echo "build_against.sh: no library $lib" >&2; exit 1; }
mkdir -p "$out"
cc=${CC:-cc}
commit=$(git -C "$(dirname "$inc")" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
# The generated header of bench/CMakeLists.txt: commit, sanitizers, usage.
{
  echo '#ifndef HMB_BENCH_BUILD_H'
  echo '#define HMB_BENCH_BUILD_H'
  echo "#define HMB_BENCH_GIT_COMMIT \"$commit\""
  echo '#define HMB_BENCH_SANITIZE ""'
  echo 'static const char hmb_bench_usage[] ='
  sed 's/\\/\\\\/g; s/"/\\"/g; s/^/    "/; s/$/\\n"/' "$here/hmb_bench.usage"
  echo '    ;'
  echo '#endif'
} >"$out/hmb_bench_build.h"
libs=(-lpthread -lm -ldl)
if nm "$lib" 2>/dev/null | grep -q ' U cuda'; then
  cuda=${CUDA_HOME:-/usr/local/cuda}
  libs+=(-L"$cuda/lib64" -lcudart -Wl,-rpath,"$cuda/lib64")
fi
"$cc" -std=c11 -O3 -DNDEBUG -DHMB_STATIC_DEFINE '-DHMB_BENCH_BUILD_TYPE="Release"' \
  -Wall -Wextra -Wpedantic -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
  -Wformat=2 -Werror -I"$inc" -I"$here" -I"$out" \
  "$here/hmb_bench.c" "$here/hmb_bench_env.c" "$here/hmb_bench_micro.c" \
  "$here/bench_gpu.c" "$here/compat_noscan.c" "$lib" "${libs[@]}" \
  -o "$out/hmb_bench"
echo "built $out/hmb_bench against $lib ($("$out/hmb_bench" --version | head -n 1))"
