#!/usr/bin/env bash
# usage: install_and_build_sample.sh BUILD_DIR SAMPLE_SOURCE_DIR
set -euo pipefail
build=$1
sample=$2
work=$build/test-scratch/install
rm -rf "$work"
mkdir -p "$work"
cmake --install "$build" --prefix "$work/prefix" >/dev/null
launcher=()
if command -v ccache >/dev/null; then launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache); fi
cmake -S "$sample" -B "$work/sample" -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$work/prefix" \
  "${launcher[@]}" >/dev/null
cmake --build "$work/sample" -j "$(nproc)" >/dev/null
test -f "$work/prefix/include/tidemark/runtime/checkpoint.hpp"
test -f "$work/prefix/lib/cmake/tidemark/tidemarkConfig.cmake" || test -f "$work/prefix/lib/x86_64-linux-gnu/cmake/tidemark/tidemarkConfig.cmake"
"$work/sample/custom_loop" --steps 3
