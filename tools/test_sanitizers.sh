#!/usr/bin/env bash
# CI's sanitizer step: builds everything with AddressSanitizer and UndefinedBehaviorSanitizer
# (build-asan, -DBILEVEL_SANITIZE=ON) and runs the whole test suite there but the Slurm test
# (label slurm: 3 minutes alone, and its `bilevel` runs are the ones cli_test and
# checkpoint_test already make under mpirun). The programs the tests start under mpirun are
# sanitized too; every report fails the suite (see "Hardening" in
# the README). Run tools/setup.sh first (tools/test.sh does).
#
# With clang (tools/setup.sh installs it): its runtime writes ASan, LSan and UBSan reports alike
# to the log files that sanitizer_logs_check reads. GCC's separate UBSan runtime writes to the
# process's stderr whatever log_path says, so with g++ (the fallback) an undefined behaviour is
# seen only through the exit status and stderr of the process, as each test looks at them.
# -O2 as the Release build, so that the numeric tests run at a usable speed; line tables only
# for file:line in every report (full -g doubles the compile time of the Eigen-heavy sources).
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir="${ASAN_BUILD_DIR:-build-asan}"
if command -v clang++ >/dev/null && command -v clang >/dev/null; then
  # Also for the example project that install_test builds against the installed libraries.
  export CC=clang CXX=clang++
  flags="-O2 -gline-tables-only -DNDEBUG"
else
  echo "tools/test_sanitizers.sh: no clang; building with g++ (UBSan reports on stderr only)" >&2
  export CC=gcc CXX=g++
  flags="-O2 -g1 -DNDEBUG"
fi
cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBILEVEL_SANITIZE=ON \
  -DCMAKE_C_COMPILER="$CC" -DCMAKE_CXX_COMPILER="$CXX" -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="$flags" \
  >/dev/null
cmake --build "$build_dir"
ctest --test-dir "$build_dir" --output-on-failure -j "$(nproc)" -LE slurm
