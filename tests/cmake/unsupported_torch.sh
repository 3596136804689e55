#!/usr/bin/env bash
# usage: unsupported_torch.sh SOURCE_DIR WORK_DIR
# Configures the project against stand-in LibTorch packages of versions it does not support
# (a package config that only states its version) and checks that CMake stops with the
# version found and the versions supported, not with compiler errors later.
set -euo pipefail
src=$1
work=$2
fail=0
for version in 1.12.1 3.0.0; do
  fake=$work/torch-$version
  rm -rf "$fake" "$work/build-$version"
  mkdir -p "$fake"
  echo 'set(TORCH_FOUND TRUE)' >"$fake/TorchConfig.cmake"
  cat >"$fake/TorchConfigVersion.cmake" <<VERSION
set(PACKAGE_VERSION "$version")
set(PACKAGE_VERSION_COMPATIBLE TRUE)
VERSION
  status=0
  cmake -S "$src" -B "$work/build-$version" -DTorch_DIR="$fake" -DTIDEMARK_BUILD_VIEWER=OFF \
        -DTIDEMARK_BUILD_TESTS=OFF -DTIDEMARK_BUILD_BENCH=OFF >"$work/configure-$version.log" 2>&1 || status=$?
  if [[ $status -eq 0 ]]; then
    echo "FAILED: configuring against LibTorch $version succeeded; it must be refused"; fail=1
    continue
  fi
  # CMake wraps long messages: compare the text with its line breaks and indents folded.
  text=$(tr -s ' \n' '  ' <"$work/configure-$version.log")
  if [[ $text != *"found LibTorch $version"* || $text != *"supports LibTorch 1.13 and 2.x"* ]]; then
    echo "FAILED: LibTorch $version was refused without naming the version found and those supported:"
    cat "$work/configure-$version.log"; fail=1
  else
    echo "ok: LibTorch $version refused"
  fi
done
exit $fail
