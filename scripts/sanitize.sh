#!/usr/bin/env bash
# The sanitizer and fuzzing part of the test suite (run by scripts/test.sh after the main suite):
# 1. builds superstack, its tests and the libFuzzer targets with clang, AddressSanitizer and
#    UndefinedBehaviorSanitizer in ./build-asan;
# 2. runs the fast unit tests and every bad-input test under them (the superstack binary the tests
#    start is the sanitized one too); the slow end-to-end suites (alignment precision, real bursts,
#    bit-identity over threads, 500 frames) run only in the main suite: several times slower under
#    ASan, they would add about 30 minutes and exercise the same code as the fast ones;
# 3. runs each fuzz target for FUZZ_SECONDS (default 45) on its corpus (scripts/fuzz.sh).
# Ends with a line "sanitizers: ..." and exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-missing.sh clang libclang-rt-14-dev

build=build-asan
log=$(mktemp)
if [ ! -f $build/build.ninja ]; then
  CXX=clang++ CC=clang meson setup $build --buildtype=debugoptimized -Doptimization=1 -Dfuzz=true \
    -Db_sanitize=address,undefined -Db_lundef=false >"$log" 2>&1 \
    || { cat "$log"; echo "sanitize: meson setup failed"; exit 1; }
fi
start=$(date +%s)
ninja -C $build >"$log" 2>&1 || { cat "$log"; echo "sanitize: build failed"; exit 1; }
rm -f "$log"
echo "sanitize: built $build in $(( $(date +%s) - start )) s"

# Every sanitizer report fails the test that caused it: UBSan stops instead of printing and going on;
# LeakSanitizer runs, with glib's and libvips' one-time allocations (type system, caches) suppressed.
# allocator_may_return_null: a forged header makes libvips ask for 28 GB, which must fail as malloc
# does (libvips reports it), not abort the process.
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1:allocator_may_return_null=1
export LSAN_OPTIONS=suppressions=$(pwd)/tests/lsan.supp:print_suppressions=0
export UBSAN_OPTIONS=halt_on_error=1:abort_on_error=1:print_stacktrace=1
subset='bad input*,cli: bad input*,cli: help*,sizes parse*,memory plan*,transforms file*,matrix algebra*,field fit*,displacement field*,frame map*,warp through*,run: a constant field*,estimators*,winsorized sigma*,running*,median kernel*,reducer matches*,drizzle: the overlap*,drizzle: one frame*,crop common*,crop none*,fit: least*,phase correlation*,Lucas-Kanade*,exposure fit*,linear light*,lanczos3*,nearest*,linear warp*,projective warp*,footprint*,output grid*,score:*,run: 8-bit*,run: grey and RGB*,kernel: the s*,kernel: the l*,sharpen*'
status=0
start=$(date +%s)
out=$build/test-output.txt
SUPERSTACK_BIN=$(pwd)/$build/superstack SUPERSTACK_SHARED=$(pwd)/../shared \
  $build/tests/superstack-tests --test-case="$subset" >"$out" 2>&1 || status=$?
cat "$out"
summary=$(grep -E '^\[doctest\] test cases:' "$out" | tail -1 || true)
unit_time=$(( $(date +%s) - start ))

start=$(date +%s)
fuzz_status=0
bash scripts/fuzz.sh $build "${FUZZ_SECONDS:-45}" || fuzz_status=$?
fuzz_time=$(( $(date +%s) - start ))
echo "sanitizers: unit tests under ASan+UBSan: ${summary:-none ran} (${unit_time} s); fuzzing: $([ $fuzz_status = 0 ] && echo passed || echo FAILED) (${fuzz_time} s)"
[ $status = 0 ] && [ $fuzz_status = 0 ]
