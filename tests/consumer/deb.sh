#!/bin/sh
# deb.sh - the Debian packages, end to end:
#   1. configure a release build for /usr and make the packages with
#      `cpack -G DEB` (cmake/packaging.cmake);
#   2. show each package's control fields and contents (dpkg-deb -I / -c)
#      and check them: the runtime package is named after the SONAME and
#      holds only the shared library; the development package holds the
#      headers, the static library, the CMake package and hmb.pc, and
#      depends on exactly the same version of the runtime package; nothing
#      depends on CUDA;
#   3. install both (dpkg -i; needs root, or sudo), build and run the
#      consumer against them with find_package and pkg-config
#      (build.sh --installed /usr), then remove them (also on failure).
# Prints "OK: deb" at the end. Usage: tests/consumer/deb.sh
# Environment: KEEP_TMP=1 keeps the temporary directory.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/hmb-deb-XXXXXX")
fail() { echo "deb: $*" >&2; exit 1; }
step() { printf '\n== %s\n' "$*"; }

for tool in dpkg dpkg-deb cpack; do
  command -v $tool >/dev/null 2>&1 || fail "$tool is needed"
done
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 ||
    fail "installing the packages needs root: run as root or install sudo"
  sudo=sudo
fi
if dpkg-query -W -f='${Status}\n' libhmb-dev 2>/dev/null | grep -q "ok installed"; then
  fail "libhmb-dev is already installed here; remove it first (not touched)"
fi

installed=""
cleanup() {
  if [ -n "$installed" ]; then
    # shellcheck disable=SC2086
    $sudo dpkg -r $installed >/dev/null 2>&1 || true
  fi
  [ "${KEEP_TMP:-0}" = 1 ] || rm -rf "$tmp"
}
trap cleanup EXIT

step "build the packages (cpack -G DEB)"
build="$tmp/build"
cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_INSTALL_PREFIX=/usr -DHMB_WERROR=ON -DHMB_BUILD_TESTS=OFF \
  -DHMB_BUILD_BENCH=OFF -DHMB_BUILD_EXAMPLES=OFF >"$tmp/configure.log" 2>&1 ||
  { cat "$tmp/configure.log"; fail "configure failed"; }
cmake --build "$build" -j2 >"$tmp/build.log" 2>&1 ||
  { cat "$tmp/build.log"; fail "build failed"; }
(cd "$build" && cpack -G DEB) >"$tmp/cpack.log" 2>&1 ||
  { cat "$tmp/cpack.log"; fail "cpack failed"; }

soname=$(readelf -d "$build/libhmb.so" | sed -n 's/.*(SONAME).*\[libhmb\.so\.\(.*\)\]/\1/p')
[ -n "$soname" ] || fail "libhmb.so has no SONAME"
runtime="libhmb$soname"
version=$(sed -n 's/^#define HMB_VERSION_STRING "\(.*\)"/\1/p' "$src/include/hmb/version.h")
rdeb=$(ls "$build"/"$runtime"_*.deb)
ddeb=$(ls "$build"/libhmb-dev_*.deb)

for deb in "$rdeb" "$ddeb"; do
  step "$(basename "$deb")"
  dpkg-deb -f "$deb" Package Version Architecture Section Depends
  dpkg-deb -c "$deb"
done

step "check the packages"
field() { dpkg-deb -f "$1" "$2"; }
contents() { dpkg-deb -c "$1" | awk '{print $6}'; }
[ "$(field "$rdeb" Package)" = "$runtime" ] || fail "runtime package is not $runtime"
rversion=$(field "$rdeb" Version)
case $rversion in "$version"-*) ;; *) fail "runtime version $rversion is not $version" ;; esac
contents "$rdeb" | grep -q "/libhmb\.so\.$soname\$" || fail "$runtime lacks libhmb.so.$soname"
if contents "$rdeb" | grep -E '\.h$|\.a$|\.pc$|\.cmake$|/libhmb\.so$'; then
  fail "$runtime holds development files"
fi
field "$rdeb" Depends | grep -q "libc6" || fail "$runtime does not depend on libc6"
[ "$(field "$ddeb" Depends)" = "$runtime (= $rversion)" ] ||
  fail "libhmb-dev depends on '$(field "$ddeb" Depends)', not '$runtime (= $rversion)'"
for f in /usr/include/hmb.h /usr/include/hmb/version.h '/libhmb\.a$' \
         '/libhmb\.so$' '/cmake/hmb/hmbConfig\.cmake$' \
         '/cmake/hmb/hmbConfigVersion\.cmake$' '/pkgconfig/hmb\.pc$'; do
  contents "$ddeb" | grep -q -- "$f" || fail "libhmb-dev lacks $f"
done
if { field "$rdeb" Depends; field "$ddeb" Depends; } | grep -i cuda; then
  fail "a package depends on CUDA"
fi
echo "runtime $runtime $rversion: the shared library, depends on: $(field "$rdeb" Depends)"
echo "libhmb-dev $rversion: development files, depends on: $(field "$ddeb" Depends)"

step "install (dpkg -i)"
installed="libhmb-dev $runtime"
$sudo dpkg -i "$rdeb" "$ddeb"

step "build the consumer against the installed packages"
"$here/build.sh" --installed /usr

step "remove (dpkg -r)"
# shellcheck disable=SC2086
$sudo dpkg -r $installed
installed=""
[ ! -e /usr/include/hmb.h ] || fail "/usr/include/hmb.h is still there after dpkg -r"
printf '\nOK: deb (%s and libhmb-dev %s built, checked, installed, used, removed)\n' \
  "$runtime" "$rversion"
