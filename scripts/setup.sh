#!/usr/bin/env bash
# Installs what superstack needs from Debian 12 (only what is missing), then builds it in ./build.
# Run by demo.sh and test.sh, as root, on a fresh machine too.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(g++ meson ninja-build pkg-config libvips-dev libboost-program-options-dev libfmt-dev
          nlohmann-json3-dev doctest-dev libtiff-dev libexif-dev libfftw3-dev)
bash scripts/install-missing.sh "${packages[@]}"

# Quiet when it works; the whole log when it does not.
log=$(mktemp)
if [ ! -f build/build.ninja ]; then
  meson setup build --buildtype=release >"$log" 2>&1 || { cat "$log"; echo "setup: meson setup failed"; exit 1; }
fi
ninja -C build >"$log" 2>&1 || { cat "$log"; echo "setup: build failed"; exit 1; }
rm -f "$log"
echo "setup: built $(pwd)/build/superstack"
