#!/usr/bin/env bash
# Set up, then run the whole test suite; ends with a line "tests: N passed, N failed".
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
log=build/test-output.txt
status=0
meson test -C build --print-errorlogs --verbose >"$log" 2>&1 || status=$?
cat "$log"
summary=$(grep -E '^\[doctest\] test cases:' "$log" | tail -1 || true)
passed=$(sed -E 's/.*\| *([0-9]+) passed.*/\1/' <<<"$summary")
failed=$(sed -E 's/.*\| *([0-9]+) failed.*/\1/' <<<"$summary")
[ -n "$summary" ] || { passed=0; failed=1; }
echo "tests: ${passed} passed, ${failed} failed"
exit $status
