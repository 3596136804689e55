#!/usr/bin/env bash
# usage: install_and_build_sample.sh BUILD_DIR SAMPLE_SOURCE_DIR
set -euo pipefail
build=$1
sample=$2
work=$build/test-scratch/install
rm -rf "$work"
mkdir -p "$work"
cmake --install "$build" --prefix "$work/prefix" >/dev/null
# Relocatable: the exported package names no path of the machine it was built on (the build
# tree, or LibTorch's include and library directories); dependencies come from find_dependency.
package=$(dirname "$(find "$work/prefix" -name tidemarkConfig.cmake | head -n 1)")
if grep -rn -e "$build" -e "/usr/include" -e "/usr/lib" "$package"; then
  echo "FAILED: the installed CMake package names paths of this machine (above)" >&2
  exit 1
fi
launcher=()
if command -v ccache >/dev/null; then launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache); fi
cmake -S "$sample" -B "$work/sample" -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$work/prefix" \
  "${launcher[@]}" >/dev/null
cmake --build "$work/sample" -j "$(nproc)" >/dev/null
test -f "$work/prefix/include/tidemark/tidemark.hpp"
test -f "$work/prefix/lib/cmake/tidemark/tidemarkConfig.cmake" || test -f "$work/prefix/lib/x86_64-linux-gnu/cmake/tidemark/tidemarkConfig.cmake"
# The sample exits 1 when its plan's measured peak breaks the budget or misses the
# prediction by more than 5%.
"$work/sample/custom_loop" --steps 3 --trace "$work/own.trace.json"
# The trace of the user's own loop reads like the CLI's.
"$build/cli/tidemark" export "$work/own.trace.json" --chrome "$work/own.chrome.json" >/dev/null
grep -q '"ph":"X"' "$work/own.chrome.json" || grep -q '"ph": "X"' "$work/own.chrome.json"
