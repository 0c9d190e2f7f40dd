#!/usr/bin/env bash
# CI's sanitizer step: builds everything with AddressSanitizer and UndefinedBehaviorSanitizer
# (build-asan, RelWithDebInfo, -DBILEVEL_SANITIZE=ON) and runs the whole test suite there. The
# programs the tests start under mpirun are sanitized too; every report fails the suite (see
# "Hardening" in the README). Run tools/setup.sh first (tools/test.sh does).
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir="${ASAN_BUILD_DIR:-build-asan}"
cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBILEVEL_SANITIZE=ON \
  >/dev/null
cmake --build "$build_dir"
ctest --test-dir "$build_dir" --output-on-failure -j "$(nproc)"
