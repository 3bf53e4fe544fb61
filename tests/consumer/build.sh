#!/bin/sh
# build.sh - build the out-of-tree consumer against an installed hmb every
# way an application would:
#   1. CMake, find_package(hmb 0.2) -> hmb::hmb (the shared library);
#   2. CMake, HMB_USE_STATIC_LIBS=ON (hmb::hmb -> the static library);
#   3. pkg-config, shared:  cc main.c $(pkg-config --cflags --libs hmb);
#   4. pkg-config, static:  the archive plus `pkg-config --static` libraries;
# and checks the version rule: find_package(hmb) for another 0.x minor than
# the installed one fails (0.x minors are incompatible).
# Each consumer is run and must print "consumer OK"; its "pinned:" line
# must say that pinned memory works or give a reason that says why not.
# Exits nonzero on the first failure; prints "OK: consumer" at the end.
#
# Usage: tests/consumer/build.sh [build-dir]
#          install hmb from an already configured build (by default a fresh
#          library-only build in the temporary directory) into a temporary
#          prefix, and build against that;
#        tests/consumer/build.sh --installed [prefix]
#          build against an hmb that is already installed in prefix (default
#          /usr: the Debian packages), without building or installing it.
# Environment: CC (compiler for the pkg-config builds, default cc),
#   KEEP_TMP=1 keeps the temporary directory for inspection.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/hmb-consumer-XXXXXX")
if [ "${KEEP_TMP:-0}" != 1 ]; then
  trap 'rm -rf "$tmp"' EXIT
fi
CC=${CC:-cc}

step() { printf '\n== %s\n' "$*"; }
fail() { echo "consumer: $*" >&2; exit 1; }

installed=0
if [ "${1:-}" = "--installed" ]; then
  installed=1
  prefix=${2:-/usr}
elif [ $# -ge 1 ]; then
  build=$(cd "$1" && pwd)
  prefix="$tmp/prefix"
else
  build="$tmp/build"
  prefix="$tmp/prefix"
  step "configure and build hmb (library only)"
  cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=Release \
    -DHMB_BUILD_TESTS=OFF -DHMB_BUILD_BENCH=OFF -DHMB_BUILD_EXAMPLES=OFF \
    >"$tmp/configure.log" || { cat "$tmp/configure.log"; exit 1; }
fi

if [ $installed = 0 ]; then
  cmake --build "$build" -j2 >"$tmp/build.log" ||
    { cat "$tmp/build.log"; exit 1; }
  step "install into $prefix"
  cmake --install "$build" --prefix "$prefix" >"$tmp/install.log" ||
    { cat "$tmp/install.log"; exit 1; }
else
  step "use the hmb installed under $prefix"
fi

# Where the libraries are (lib, lib64 or lib/<multiarch>).
pcfile=$(find "$prefix/lib" "$prefix/lib64" -name hmb.pc -path '*pkgconfig*' \
  2>/dev/null | head -n 1)
[ -n "$pcfile" ] || fail "hmb.pc is not installed under $prefix"
libdir=$(dirname "$(dirname "$pcfile")")
for f in "$prefix/include/hmb.h" "$prefix/include/hmb/version.h" \
         "$libdir/libhmb.a" "$libdir/libhmb.so" \
         "$libdir/cmake/hmb/hmbConfig.cmake" \
         "$libdir/cmake/hmb/hmbConfigVersion.cmake"; do
  [ -e "$f" ] || fail "missing from the install: $f"
done
echo "installed: headers, libhmb.a, libhmb.so, hmbConfig.cmake, hmb.pc in $libdir"
soname=$(readelf -d "$libdir/libhmb.so" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
echo "SONAME: $soname"
[ -n "$soname" ] || fail "libhmb.so has no SONAME"
if readelf -d "$libdir/libhmb.so" | grep -i 'NEEDED.*cudart'; then
  fail "libhmb.so depends on libcudart at link time"
fi
# Neither package file may carry a CUDA path or dependency (comments aside).
if cat "$libdir"/cmake/hmb/*.cmake "$pcfile" | grep -v '^[[:space:]]*#' |
  grep -i cuda; then
  fail "the CMake package or hmb.pc refers to CUDA"
fi

run_consumer() { # $1: label, $2: executable
  out=$("$2") || { echo "$out"; fail "$1: consumer failed"; }
  echo "$out" | sed "s|^|$1: |"
  case $out in *"consumer OK"*) ;; *) fail "$1: no OK line" ;; esac
  pinned=$(echo "$out" | sed -n 's/^pinned: //p')
  case $pinned in
    yes | "no: built without CUDA support"* | "no: libcudart not found"* | \
      "no: cudaGetDeviceCount failed: "* | "no: no CUDA device visible"* | \
      "no: libcudart could not be loaded: "* | "no: CUDA pinned allocation"*) ;;
    *) fail "$1: unexpected pinned-memory line: '$pinned'" ;;
  esac
  # The runtime must be looked for at run time, and missing is not fatal.
  out=$(HMB_CUDART=libcudart-missing.so.0 "$2") ||
    fail "$1: consumer failed without a CUDA runtime"
  case $out in
    *"pinned: no: libcudart not found (tried libcudart-missing.so.0)"* | \
      *"pinned: no: built without CUDA support"*) ;;
    *) echo "$out"; fail "$1: no fallback reason without a CUDA runtime" ;;
  esac
}

cmake_prefix=""
[ $installed = 0 ] && cmake_prefix="-DCMAKE_PREFIX_PATH=$prefix"
for mode in shared static; do
  step "CMake find_package(hmb 0.2), hmb::hmb -> $mode"
  static=OFF
  [ $mode = static ] && static=ON
  # shellcheck disable=SC2086
  cmake -S "$here" -B "$tmp/cmake-$mode" $cmake_prefix \
    -DHMB_USE_STATIC_LIBS=$static >"$tmp/cmake-$mode.log" ||
    { cat "$tmp/cmake-$mode.log"; exit 1; }
  grep "found hmb" "$tmp/cmake-$mode.log"
  cmake --build "$tmp/cmake-$mode" >>"$tmp/cmake-$mode.log" 2>&1 ||
    { cat "$tmp/cmake-$mode.log"; exit 1; }
  run_consumer "find_package/$mode" "$tmp/cmake-$mode/hmb_consumer"
done
# The shared consumer must really use the shared library, by its SONAME.
readelf -d "$tmp/cmake-shared/hmb_consumer" | grep -q "NEEDED.*\[$soname\]" ||
  fail "find_package/shared: not linked to $soname"
if readelf -d "$tmp/cmake-static/hmb_consumer" | grep -q "NEEDED.*libhmb"; then
  fail "find_package/static: linked to libhmb.so"
fi

step "CMake version rule: other 0.x minors are refused"
installed_version=$(sed -n 's/^#define HMB_VERSION_STRING "\(.*\)"/\1/p' \
  "$prefix/include/hmb/version.h")
major=${installed_version%%.*}
rest=${installed_version#*.}
minor=${rest%%.*}
for want in "$major.$((minor + 1))" "$major.$((minor - 1))"; do
  [ "${want#*.}" -ge 0 ] 2>/dev/null || continue
  # shellcheck disable=SC2086
  if cmake -S "$here" -B "$tmp/cmake-want-$want" $cmake_prefix \
    -DHMB_CONSUMER_WANT="$want" >"$tmp/cmake-want.log" 2>&1; then
    cat "$tmp/cmake-want.log"
    fail "find_package(hmb $want) accepted hmb $installed_version"
  fi
  echo "find_package(hmb $want) refused hmb $installed_version: as it should"
done

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
case $static_libs in *-lpthread*) ;; *) fail "Libs.private lacks -lpthread" ;; esac
# -l:libhmb.a (GNU ld) picks the archive even though libhmb.so sits beside it.
# shellcheck disable=SC2046,SC2086
$CC -std=c11 -o "$tmp/pc-static" "$here/main.c" $(pkg-config --cflags hmb) \
  -DHMB_STATIC_DEFINE $(echo " $static_libs " | sed 's/ -lhmb / -l:libhmb.a /')
if readelf -d "$tmp/pc-static" | grep -q "NEEDED.*libhmb"; then
  fail "pkg-config/static: linked to libhmb.so"
fi
run_consumer "pkg-config/static" "$tmp/pc-static"

printf '\nOK: consumer (find_package shared+static, version rule, pkg-config shared+static)\n'
