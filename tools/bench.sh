#!/usr/bin/env bash
# The speed benchmark, one command:
#
#   bash tools/bench.sh [BENCH OPTIONS]
#
# builds bilevel_bench if needed (tools/build.sh on a fresh checkout), makes the dataset files
# with tools/make_datasets.sh when data/ lacks them, and runs
#   mpirun -np 2 build/tools/bench/bilevel_bench --mnist data/mnist_p0.5.h5 \
#     --news20 data/news20.h5 --json build/bench.json
# It prints the tables on stdout (machine and date, STREAM triad bandwidth, every oracle of
# hyperclean on MNIST and l2reg on 20 Newsgroups on one rank with its GB/s against STREAM,
# seconds per outer iteration of the reference runs against PyTorch with their allreduces, and
# the scaling to 2 ranks) and writes them all to build/bench.json. Extra arguments go to
# bilevel_bench (--min-time S, --iters K, --quick; --help lists them); RANKS=4 runs on 4 ranks,
# BUILD_DIR another build directory. Takes about 3 minutes on 2 cores; run it on an idle
# machine.
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir="${BUILD_DIR:-build}"
if [ -f "$build_dir/build.ninja" ] || [ -f "$build_dir/Makefile" ]; then
  cmake --build "$build_dir" --target bilevel_bench
else
  tools/build.sh
fi
if [ ! -f data/mnist_p0.5.h5 ] || [ ! -f data/news20.h5 ]; then
  BILEVEL_EXE="$build_dir/bilevel" bash tools/make_datasets.sh data
fi
source tools/mpi_env.sh
mpirun -np "${RANKS:-2}" "$build_dir/tools/bench/bilevel_bench" \
  --mnist data/mnist_p0.5.h5 --news20 data/news20.h5 --json "$build_dir/bench.json" "$@"
