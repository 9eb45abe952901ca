#!/usr/bin/env bash
# Installs what superstack needs from Debian 12 (only what is missing), then builds it in ./build.
# Sourced by demo.sh and test.sh; run as root on a fresh machine.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(g++ meson ninja-build pkg-config libvips-dev libboost-program-options-dev libfmt-dev
          nlohmann-json3-dev doctest-dev libtiff-dev libexif-dev)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -q --no-install-recommends "${missing[@]}" >/tmp/superstack-apt.log 2>&1 \
    || { cat /tmp/superstack-apt.log; echo "setup: apt-get install failed"; exit 1; }
fi

# Quiet when it works; the whole log when it does not.
log=$(mktemp)
if [ ! -f build/build.ninja ]; then
  meson setup build --buildtype=release >"$log" 2>&1 || { cat "$log"; echo "setup: meson setup failed"; exit 1; }
fi
ninja -C build >"$log" 2>&1 || { cat "$log"; echo "setup: build failed"; exit 1; }
rm -f "$log"
echo "setup: built $(pwd)/build/superstack"
