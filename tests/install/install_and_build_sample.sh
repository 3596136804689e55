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
# A CPU-only consumer needs no CUDA toolkit: configure it as if there were none (unless this
# tidemark's runtime links CUDA's runtime, with the NCCL backend on a GPU machine).
no_cuda=(-DCMAKE_DISABLE_FIND_PACKAGE_CUDAToolkit=ON)
if grep -q "TIDEMARK_RUNTIME_LINKS_CUDART 1" "$package/tidemarkConfig.cmake"; then no_cuda=(); fi
cmake -S "$sample" -B "$work/sample" -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$work/prefix" \
  "${no_cuda[@]}" "${launcher[@]}" >/dev/null
cmake --build "$work/sample" -j "$(nproc)" >/dev/null
test -f "$work/prefix/include/tidemark/tidemark.hpp"
# CUPTI is loaded when a GPU profile starts, never linked: a CPU program does not need it.
if ldd "$work/sample/custom_loop" | grep -i cupti; then
  echo "FAILED: the sample links libcupti (above)" >&2
  exit 1
fi
test -f "$work/prefix/lib/cmake/tidemark/tidemarkConfig.cmake" || test -f "$work/prefix/lib/x86_64-linux-gnu/cmake/tidemark/tidemarkConfig.cmake"
# The sample exits 1 when its plan's measured peak breaks the budget or misses the
# prediction by more than 5%.
"$work/sample/custom_loop" --steps 3 --trace "$work/own.trace.json"
# The trace of the user's own loop reads like the CLI's.
"$build/cli/tidemark" export "$work/own.trace.json" --chrome "$work/own.chrome.json" >/dev/null
grep -q '"ph":"X"' "$work/own.chrome.json" || grep -q '"ph": "X"' "$work/own.chrome.json"
