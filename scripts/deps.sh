#!/usr/bin/env bash
# Install what building and testing hmb needs on Debian/Ubuntu, if missing.
# Usage: scripts/deps.sh [extra-package...]
# Installing needs root: run as root, or as a user who may use sudo.
set -euo pipefail
pkgs=(cmake make gcc libc6-dev pkg-config libcmocka-dev "$@")
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
    missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if ! command -v apt-get >/dev/null 2>&1; then
  echo "deps: please install: ${missing[*]}" >&2
  exit 1
fi
sudo=()
if [ "$(id -u)" -ne 0 ]; then
  if ! command -v sudo >/dev/null 2>&1; then
    echo "deps: installing ${missing[*]} needs root: run as root or install sudo" >&2
    exit 1
  fi
  sudo=(sudo)
fi
echo "deps: installing ${missing[*]}" >&2
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
