#!/bin/sh
# run.sh - embed hmb in a parent project with add_subdirectory() and check
# that it behaves as a guest (see CMakeLists.txt for the configure checks):
#   1. a Debug parent, static hmb: configures, stays Debug, builds its own
#      code without optimisation, its own `docs` and `run_examples` targets
#      are its own, no test of hmb is registered, and `cmake --install`
#      installs the parent's program and nothing of hmb;
#   2. a parent without a build type keeps none (hmb's default of
#      RelWithDebInfo is for top-level builds only);
#   3. a Debug parent with BUILD_SHARED_LIBS=ON and HMB_INSTALL=ON: only the shared
#      library is built, and the install holds hmb's runtime and development
#      files (and no static library, which was not built).
# Prints "OK: embed" at the end; exits nonzero on the first failure.
# Usage: tests/embed/run.sh   (environment: KEEP_TMP=1 keeps the temp dir)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/hmb-embed-XXXXXX")
[ "${KEEP_TMP:-0}" = 1 ] || trap 'rm -rf "$tmp"' EXIT
fail() { echo "embed: $*" >&2; exit 1; }
step() { printf '\n== %s\n' "$*"; }

configure() { # $1: build dir, then CMake arguments
  b=$1
  shift
  cmake -S "$here" -B "$b" -DHMB_SOURCE_DIR="$src" "$@" >"$b.log" 2>&1 ||
    { cat "$b.log"; fail "configure failed"; }
  grep "parent:" "$b.log"
}

step "Debug parent, hmb added with add_subdirectory (static, no install)"
configure "$tmp/debug" -DCMAKE_BUILD_TYPE=Debug -DPARENT_EXPECT_BUILD_TYPE=Debug
cmake --build "$tmp/debug" -j2 >"$tmp/debug-build.log" 2>&1 ||
  { cat "$tmp/debug-build.log"; fail "build failed"; }
# The parent's flags: Debug's, without -O (app.c checks __OPTIMIZE__ too).
flags=$(cat "$tmp/debug/CMakeFiles/parent_app.dir/flags.make")
case $flags in *-O[1-3s]*) echo "$flags"; fail "parent_app built with -O" ;; esac
"$tmp/debug/parent_app"
for t in docs run_examples; do
  out=$(cmake --build "$tmp/debug" --target $t 2>&1) || { echo "$out"; fail "$t failed"; }
  case $out in *"parent: its own $t"*) ;; *) echo "$out"; fail "$t is not the parent's" ;; esac
done
ntests=$(cd "$tmp/debug" && ctest -N 2>/dev/null | sed -n 's/^Total Tests: //p')
[ "${ntests:-0}" = 0 ] || fail "hmb registered $ntests tests in the parent"
cmake --install "$tmp/debug" --prefix "$tmp/p1" >/dev/null
[ -x "$tmp/p1/bin/parent_app" ] || fail "the parent's program was not installed"
left=$(cd "$tmp/p1" && find . -name '*hmb*')
[ -z "$left" ] || { echo "$left"; fail "hmb installed files without HMB_INSTALL=ON"; }
echo "installed: bin/parent_app only"

step "parent without a build type: hmb must not give it one"
configure "$tmp/nobt" -DPARENT_EXPECT_BUILD_TYPE=

step "shared parent (BUILD_SHARED_LIBS=ON), HMB_INSTALL=ON"
configure "$tmp/shared" -DCMAKE_BUILD_TYPE=Debug -DPARENT_EXPECT_BUILD_TYPE=Debug \
  -DBUILD_SHARED_LIBS=ON -DHMB_INSTALL=ON
cmake --build "$tmp/shared" -j2 >"$tmp/shared-build.log" 2>&1 ||
  { cat "$tmp/shared-build.log"; fail "build failed"; }
"$tmp/shared/parent_app"
readelf -d "$tmp/shared/parent_app" | grep -q 'NEEDED.*libhmb\.so' ||
  fail "parent_app does not use the shared hmb"
cmake --install "$tmp/shared" --prefix "$tmp/p2" >/dev/null
for f in include/hmb.h include/hmb/version.h; do
  [ -e "$tmp/p2/$f" ] || fail "HMB_INSTALL=ON did not install $f"
done
ls "$tmp"/p2/lib*/libhmb.so.* >/dev/null 2>&1 || fail "no libhmb.so.* installed"
ls "$tmp"/p2/lib*/cmake/hmb/hmbConfig.cmake >/dev/null 2>&1 ||
  fail "no CMake package installed"
if ls "$tmp"/p2/lib*/libhmb.a >/dev/null 2>&1; then
  fail "libhmb.a installed although only the shared library was built"
fi
echo "installed: $(cd "$tmp/p2" && find . -name '*hmb*' -type f | sort | tr '\n' ' ')"

printf '\nOK: embed (parent stays Debug, prefixed targets, one library kind, install only when asked)\n'
