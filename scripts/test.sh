#!/usr/bin/env bash
# Set up, run the whole test suite, then the sanitizer and fuzzing part (scripts/sanitize.sh: the fast
# tests under ASan+UBSan, each fuzz target for 45 s). Ends with a line "tests: N passed, N failed; ...".
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
log=build/test-output.txt
status=0
start=$(date +%s)
meson test -C build --print-errorlogs --verbose >"$log" 2>&1 || status=$?
cat "$log"
summary=$(grep -E '^\[doctest\] test cases:' "$log" | tail -1 || true)
passed=$(sed -E 's/.*\| *([0-9]+) passed.*/\1/' <<<"$summary")
failed=$(sed -E 's/.*\| *([0-9]+) failed.*/\1/' <<<"$summary")
[ -n "$summary" ] || { passed=0; failed=1; }
echo "tests: ${passed} passed, ${failed} failed ($(( $(date +%s) - start )) s)"
sanitize=0
bash scripts/sanitize.sh || sanitize=$?
echo "tests: ${passed} passed, ${failed} failed; sanitizers and fuzzing: $([ $sanitize = 0 ] && echo passed || echo FAILED)"
[ $status = 0 ] && [ $sanitize = 0 ]
