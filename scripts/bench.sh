#!/usr/bin/env bash
# Build hmb and run the bench harness on its built-in default scenario.
# Usage: scripts/bench.sh [hmb_bench options...]   (e.g. --quick, --sweep)
# --help / -h prints the options at once, without building (the text is
# bench/hmb_bench.usage, the same the program prints).
set -euo pipefail
cd "$(dirname "$0")/.."
for a in "$@"; do
  case $a in
    -h | --help) cat bench/hmb_bench.usage; exit 0 ;;
  esac
done
scripts/deps.sh
cmake -S . -B build-release -DCMAKE_BUILD_TYPE=Release -DHMB_BUILD_TESTS=OFF >/dev/null
cmake --build build-release -j"$(nproc)" --target hmb_bench
exec ./build-release/bench/hmb_bench "$@"
