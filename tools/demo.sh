#!/usr/bin/env bash
# The README's first command: installs the dependencies, builds, and runs the default job
# (stocBiO on the default quadratic problem, 2 MPI ranks). Extra arguments go to `bilevel solve`.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
tools/build.sh
source tools/mpi_env.sh
mpirun -np 2 build/bilevel solve --problem quadratic --algorithm stocbio --outer-iters 400 \
  --eval-every 50 --metrics build/demo_metrics.jsonl --output build/demo_result.h5 "$@"
