#!/bin/sh
# build.sh - install hmb into a temporary prefix and build the out-of-tree
# consumer against it every way an application would:
#   1. CMake, find_package(hmb) -> hmb::hmb (the shared library);
#   2. CMake, HMB_USE_STATIC_LIBS=ON (hmb::hmb -> the static library);
#   3. pkg-config, shared:  cc main.c $(pkg-config --cflags --libs hmb);
#   4. pkg-config, static:  the archive plus `pkg-config --static` libraries.
# Each consumer is run and must print "consumer OK". Exits nonzero on the
# first failure; prints "OK: consumer" at the end.
#
# Usage: tests/consumer/build.sh [build-dir]
#   build-dir: an already configured hmb build to install from; by default a
#   fresh library-only build is made in the temporary directory.
# Environment: CC (compiler for the pkg-config builds, default cc),
#   KEEP_TMP=1 keeps the temporary directory for inspection.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/hmb-consumer-XXXXXX")
if [ "${KEEP_TMP:-0}" != 1 ]; then
  trap 'rm -rf "$tmp"' EXIT
fi
prefix="$tmp/prefix"
CC=${CC:-cc}

step() { printf '\n== %s\n' "$*"; }

if [ $# -ge 1 ]; then
  build=$(cd "$1" && pwd)
else
  build="$tmp/build"
  step "configure and build hmb (library only)"
  cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=Release \
    -DHMB_BUILD_TESTS=OFF -DHMB_BUILD_BENCH=OFF -DHMB_BUILD_EXAMPLES=OFF \
    >"$tmp/configure.log" || { cat "$tmp/configure.log"; exit 1; }
fi
cmake --build "$build" --target hmb_static hmb_shared -j2 >"$tmp/build.log" ||
  { cat "$tmp/build.log"; exit 1; }

step "install into $prefix"
cmake --install "$build" --prefix "$prefix" >"$tmp/install.log" ||
  { cat "$tmp/install.log"; exit 1; }
# Where GNUInstallDirs put the libraries (lib, lib64 or lib/<multiarch>).
pcfile=$(find "$prefix" -name hmb.pc | head -n 1)
[ -n "$pcfile" ] || { echo "hmb.pc was not installed"; exit 1; }
libdir=$(dirname "$(dirname "$pcfile")")
for f in "$prefix/include/hmb.h" "$libdir/libhmb.a" "$libdir/libhmb.so" \
         "$libdir/cmake/hmb/hmbConfig.cmake" \
         "$libdir/cmake/hmb/hmbConfigVersion.cmake"; do
  [ -e "$f" ] || { echo "missing from the install: $f"; exit 1; }
done
echo "installed: headers, libhmb.a, libhmb.so, hmbConfig.cmake, hmb.pc"

run_consumer() { # $1: label, $2: executable
  out=$("$2") || { echo "$1: consumer failed"; exit 1; }
  echo "$1: $out"
  case $out in *"consumer OK"*) ;; *) echo "$1: no OK line"; exit 1 ;; esac
}

for mode in shared static; do
  step "CMake find_package(hmb), hmb::hmb -> $mode"
  static=OFF
  [ $mode = static ] && static=ON
  cmake -S "$here" -B "$tmp/cmake-$mode" -DCMAKE_PREFIX_PATH="$prefix" \
    -DHMB_USE_STATIC_LIBS=$static >"$tmp/cmake-$mode.log" ||
    { cat "$tmp/cmake-$mode.log"; exit 1; }
  cmake --build "$tmp/cmake-$mode" >>"$tmp/cmake-$mode.log" 2>&1 ||
    { cat "$tmp/cmake-$mode.log"; exit 1; }
  run_consumer "find_package/$mode" "$tmp/cmake-$mode/hmb_consumer"
done
# The shared consumer must really use the shared library.
if command -v ldd >/dev/null 2>&1; then
  ldd "$tmp/cmake-shared/hmb_consumer" | grep -q "libhmb.so" ||
    { echo "find_package/shared: not linked to libhmb.so"; exit 1; }
  if ldd "$tmp/cmake-static/hmb_consumer" | grep -q "libhmb.so"; then
    echo "find_package/static: linked to libhmb.so"; exit 1
  fi
fi

export PKG_CONFIG_PATH="$libdir/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
step "pkg-config $(pkg-config --modversion hmb): shared"
echo "cflags: $(pkg-config --cflags hmb)  libs: $(pkg-config --libs hmb)"
# shellcheck disable=SC2046
$CC -std=c11 -o "$tmp/pc-shared" "$here/main.c" $(pkg-config --cflags hmb) \
  $(pkg-config --libs hmb) -Wl,-rpath,"$libdir"
run_consumer "pkg-config/shared" "$tmp/pc-shared"

step "pkg-config: static"
static_libs=$(pkg-config --static --libs hmb)
echo "libs: $static_libs"
case $static_libs in *-lpthread*) ;; *) echo "Libs.private lacks -lpthread"; exit 1 ;; esac
# -l:libhmb.a (GNU ld) picks the archive even though libhmb.so sits beside it.
# shellcheck disable=SC2046,SC2086
$CC -std=c11 -o "$tmp/pc-static" "$here/main.c" $(pkg-config --cflags hmb) \
  -DHMB_STATIC_DEFINE $(echo " $static_libs " | sed 's/ -lhmb / -l:libhmb.a /')
if command -v ldd >/dev/null 2>&1 &&
   ldd "$tmp/pc-static" | grep -q "libhmb.so"; then
  echo "pkg-config/static: linked to libhmb.so"; exit 1
fi
run_consumer "pkg-config/static" "$tmp/pc-static"

printf '\nOK: consumer (find_package shared+static, pkg-config shared+static)\n'
