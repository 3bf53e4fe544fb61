#!/usr/bin/env bash
# Build hmb and run the whole test suite (unit, stress, fault injection).
# Usage: scripts/test.sh [normal|asan|tsan|nocuda]   (default: normal)
# Extra CMake arguments can be passed in HMB_CMAKE_ARGS.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-normal}
args=(-DHMB_WERROR=ON ${HMB_CMAKE_ARGS:-})
cc=${CC:-gcc}
case "$mode" in
  normal) dir=build; args+=(-DHMB_WITH_CUDA=AUTO) ;; # CUDA on where dlopen is
  asan) dir=build-asan; cc=clang; args+=(-DHMB_SANITIZE=address,undefined) ;;
  tsan) dir=build-tsan; cc=clang; args+=(-DHMB_SANITIZE=thread) ;;
  nocuda) dir=build-nocuda; args+=(-DHMB_WITH_CUDA=OFF) ;;
  *) echo "usage: $0 [normal|asan|tsan|nocuda]" >&2; exit 2 ;;
esac
scripts/deps.sh g++ # the C++ wrapper's tests (skipped without a C++ compiler)
if [ "$cc" = clang ]; then
  scripts/deps.sh clang
  # The sanitizer runtimes come with the compiler-rt of the installed clang.
  v=$(clang -dumpversion | cut -d. -f1)
  scripts/deps.sh "libclang-rt-$v-dev"
fi
CC=$cc cmake -S . -B "$dir" "${args[@]}" >/dev/null
cmake --build "$dir" -j"$(nproc)"
ctest --test-dir "$dir" --output-on-failure -j2
