#!/usr/bin/env bash
# Runs each libFuzzer target (tests/fuzz/) for a while on its corpus in tests/fuzz/corpus/.
# usage: scripts/fuzz.sh BUILD_DIR [SECONDS_PER_TARGET]   (BUILD_DIR configured with -Dfuzz=true)
# New inputs go to a temporary folder (the kept corpus is only read); a failure leaves the input that
# broke the contract in BUILD_DIR/fuzz-artifacts/ and prints how to replay it. Exit 1 on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:?usage: scripts/fuzz.sh BUILD_DIR [SECONDS]}
seconds=${2:-45}
artifacts=$build/fuzz-artifacts
mkdir -p "$artifacts"
# Leaks are checked by the unit tests under the sanitizers; here they would stop a run on glib's
# caches. Sanitizer reports abort, so libFuzzer records the input.
export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:allocator_may_return_null=1
export UBSAN_OPTIONS=halt_on_error=1:abort_on_error=1:print_stacktrace=1
status=0
for target in transforms options mask; do
  fresh=$(mktemp -d)
  dict=tests/fuzz/$target.dict
  args=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=4096 -max_len=4096 -print_final_stats=1
        -artifact_prefix="$artifacts/$target-")
  [ -f "$dict" ] && args+=(-dict="$dict")
  log=$artifacts/$target.log
  start=$(date +%s)
  if "$build/tests/fuzz/fuzz_$target" "${args[@]}" "$fresh" "tests/fuzz/corpus/$target" >"$log" 2>&1; then
    runs=$(grep -E '^stat::number_of_executed_units' "$log" | awk '{print $2}')
    echo "fuzz: $target: ${runs:-?} inputs in $(( $(date +%s) - start )) s, no failure"
  else
    status=1
    tail -40 "$log"
    echo "fuzz: $target FAILED: replay with $build/tests/fuzz/fuzz_$target $(ls -t "$artifacts/$target-"* 2>/dev/null | grep -v '\.log$' | head -1)"
  fi
  rm -rf "$fresh"
done
exit $status
