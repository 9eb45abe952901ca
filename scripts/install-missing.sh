#!/usr/bin/env bash
# Installs, from Debian's packages, whichever of the named packages are not installed yet.
# usage: scripts/install-missing.sh PACKAGE...   (as root)
set -euo pipefail
missing=()
for p in "$@"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
((${#missing[@]})) || exit 0
echo "installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
log=$(mktemp)
{ apt-get update -qq && apt-get install -y -q --no-install-recommends "${missing[@]}"; } >"$log" 2>&1 \
  || { cat "$log"; echo "apt-get install failed"; exit 1; }
rm -f "$log"
