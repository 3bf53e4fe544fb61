#!/usr/bin/env bash
# Build Apache ORC's C++ library once into a cache directory and print its
# install prefix (the only line on stdout; progress goes to stderr), for
# ORC_ROOT:
#   cmake -S . -B build -DORC_ROOT="$(scripts/orc.sh)"
# Usage: scripts/orc.sh [PREFIX]
#   PREFIX   where ORC is installed [$HMB_ORC_PREFIX, else build-orc/prefix
#            under the repository root]
# The sources are the ORC release tarballs with their build-orc.sh script,
# found in $HMB_ORC_SRC, else ../shared/thirdparty/orc or thirdparty/orc next
# to the repository. Idempotent: a prefix that already holds this build is
# reused as it is (build-orc.sh checks its stamp file).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
prefix=${1:-${HMB_ORC_PREFIX:-$root/build-orc/prefix}}
src=${HMB_ORC_SRC:-}
if [ -z "$src" ]; then
  for d in "$root/../shared/thirdparty/orc" "$root/thirdparty/orc"; do
    if [ -x "$d/build-orc.sh" ]; then src=$(cd "$d" && pwd); break; fi
  done
fi
if [ -z "$src" ] || [ ! -x "$src/build-orc.sh" ]; then
  echo "orc.sh: no ORC sources (a directory with build-orc.sh); set HMB_ORC_SRC" >&2
  exit 1
fi
mkdir -p "$(dirname "$prefix")"
prefix=$(cd "$(dirname "$prefix")" && pwd)/$(basename "$prefix")
if [ -f "$prefix/lib/liborc.a" ] && [ -f "$prefix/include/orc/MemoryPool.hh" ] &&
  [ -f "$prefix/.orc-2.2.2" ]; then
  echo "orc.sh: ORC already built in $prefix" >&2
else
  start=$(date +%s)
  echo "orc.sh: building ORC from $src into $prefix (a few minutes)" >&2
  "$src/build-orc.sh" "$prefix" "$prefix.build" >&2
  # The build tree is only needed to build; the install stays.
  rm -rf "$prefix.build"
  echo "orc.sh: built in $(($(date +%s) - start)) s" >&2
fi
echo "$prefix"
