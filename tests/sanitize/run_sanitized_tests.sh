#!/usr/bin/env bash
# usage: run_sanitized_tests.sh SOURCE_DIR BUILD_DIR CXX_COMPILER
# Builds the torch-free modules and their tests with TIDEMARK_SANITIZE=ON (ASan + UBSan) in
# BUILD_DIR, checks that the sanitizers are live (the canary must die of each kind of
# report), then runs every test there with each report fatal, leaks included.
set -euo pipefail
src=$1
build=$2
cxx=$3
mkdir -p "$build"
generator=()
if command -v ninja >/dev/null && [[ ! -f $build/CMakeCache.txt ]]; then generator=(-G Ninja); fi
# Compile time is this test's cost. -O1: half that of -O3 under the sanitizers, and fast
# enough to test; -g1: file and line in the reports; Debug keeps assertions on. A unity
# build (one translation unit per target) instruments nlohmann, fmt and Catch once per
# target instead of once per file: a quarter of the CPU time. File-local helpers of one
# target's files must then have distinct names.
if ! { cmake -S "$src" -B "$build" "${generator[@]}" -DCMAKE_CXX_COMPILER="$cxx" \
         -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG="-O1 -g1" -DCMAKE_UNITY_BUILD=ON \
         -DTIDEMARK_SANITIZE=ON \
         -DTIDEMARK_WITH_TORCH=OFF -DTIDEMARK_BUILD_VIEWER=OFF -DTIDEMARK_WITH_CUPTI=OFF \
         -DTIDEMARK_BUILD_BENCH=OFF -DTIDEMARK_BUILD_TESTS=ON &&
       cmake --build "$build" -j "$(nproc)"; } > "$build/build.log" 2>&1; then
  tail -40 "$build/build.log"
  echo "sanitize: the sanitized build failed (log: $build/build.log)" >&2
  exit 1
fi

export ASAN_OPTIONS=halt_on_error=1:detect_leaks=1:detect_stack_use_after_return=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1

canary=$build/tests/sanitize/sanitizer_canary
for check in "leak:LeakSanitizer: detected memory leaks" "overflow:heap-buffer-overflow" \
             "ub:signed integer overflow"; do
  kind=${check%%:*}
  report=${check#*:}
  status=0
  "$canary" "$kind" > "$build/canary-$kind.log" 2>&1 || status=$?
  if [[ $status -eq 0 ]] || ! grep -q "$report" "$build/canary-$kind.log"; then
    cat "$build/canary-$kind.log"
    echo "sanitize: the canary's $kind went unreported (exit status $status, no '$report');" \
         "the sanitizers are not live, so a clean run would prove nothing" >&2
    exit 1
  fi
done
echo "sanitize: the canary's leak, overflow and undefined behaviour were each reported"

ctest --test-dir "$build" --output-on-failure -j "$(nproc)"
