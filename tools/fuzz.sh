#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz) with clang in build-fuzz and runs each for a bounded
# time, starting from the seed corpus in tests/fuzz/corpus/<target>/ (never modified: new inputs
# go to build-fuzz/fuzz-corpus/<target>/). A finding (crash, sanitizer report, hang, unexpected
# exception) stops the script with a nonzero status and leaves the input in
# build-fuzz/fuzz-findings/<target>/; replay it with build-fuzz/tests/fuzz/fuzz_<target> FILE.
#   tools/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]   default 20 s each; targets libsvm config idx
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-${FUZZ_SECONDS:-20}}"
shift || true
targets=("$@")
if ((${#targets[@]} == 0)); then targets=(libsvm config idx); fi
build_dir="${FUZZ_BUILD_DIR:-build-fuzz}"

if ! command -v clang++ >/dev/null; then
  echo "tools/fuzz.sh: clang++ not found (tools/setup.sh installs clang and libclang-rt-14-dev)" >&2
  exit 1
fi
# -O1 -gline-tables-only: libFuzzer's recommended optimization, file:line in reports.
cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -gline-tables-only -DNDEBUG" \
  -DBILEVEL_FUZZ=ON -DBILEVEL_BUILD_TESTS=OFF >/dev/null
cmake --build "$build_dir" --target "${targets[@]/#/fuzz_}"

# Findings end the process (abort); leaks are findings too. Stack traces for the report.
export ASAN_OPTIONS="${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
for target in "${targets[@]}"; do
  corpus="$build_dir/fuzz-corpus/$target"
  findings="$build_dir/fuzz-findings/$target"
  mkdir -p "$corpus" "$findings"
  echo "tools/fuzz.sh: fuzz_$target for ${seconds} s" >&2
  # -timeout: an input that takes over 10 s is a hang; -rss_limit_mb: so is using over 2 GiB.
  if ! "$build_dir/tests/fuzz/fuzz_$target" -max_total_time="$seconds" -timeout=10 \
      -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$findings/" \
      "$corpus" "tests/fuzz/corpus/$target" 2>"$build_dir/fuzz-$target.log"; then
    tail -n 60 "$build_dir/fuzz-$target.log" >&2
    echo "tools/fuzz.sh: fuzz_$target found a problem; the input is in $findings/" >&2
    exit 1
  fi
  grep -E "^stat::number_of_executed_units|^Done" "$build_dir/fuzz-$target.log" >&2 || true
done
echo "tools/fuzz.sh: no findings" >&2
