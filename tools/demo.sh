#!/usr/bin/env bash
# The README's first command: installs the dependencies, builds, makes the Fashion-MNIST
# hyper-cleaning dataset (Debian's dataset-fashion-mnist, half the training labels corrupted) and
# runs the default job on it: stocBiO on 2 MPI ranks for 60 s of solver time, printing its
# progress and the test accuracy it reaches. MAX_TIME (seconds, default 60) sets the budget;
# extra arguments go to `bilevel solve`.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
tools/build.sh
source tools/mpi_env.sh

fashion=/usr/share/datasets/fashion-mnist
data=data/fashion_mnist_p0.5.h5
if [ ! -f "$data" ]; then
  if [ ! -d "$fashion" ]; then
    sudo=""
    if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q dataset-fashion-mnist >/dev/null
  fi
  mkdir -p data
  build/bilevel convert idx --images "$fashion/train-images-idx3-ubyte.gz" \
    --labels "$fashion/train-labels-idx1-ubyte.gz" \
    --test-images "$fashion/t10k-images-idx3-ubyte.gz" \
    --test-labels "$fashion/t10k-labels-idx1-ubyte.gz" --noise 0.5 --seed 1 --output "$data"
fi

mpirun -np 2 build/bilevel solve --problem hyperclean --data "$data" --algorithm stocbio \
  --max-time "${MAX_TIME:-60}" --metrics build/demo_metrics.jsonl --output build/demo_result.h5 "$@" |
  tee build/demo_summary.json |
  sed -n 's/.*"test_acc": \([0-9.]*\).*"termination": "\([a-z_]*\)".*/test accuracy: \1 (termination: \2)/p'
