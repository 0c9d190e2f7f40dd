#!/usr/bin/env bash
# Makes the standard dataset files (HDF5, format of src/io/dataset.h) with `bilevel convert`:
#   tools/make_datasets.sh [OUT_DIR]      (default data/, which git ignores)
# Inputs: the raw sets under ../shared/data (BILEVEL_DATA_SRC overrides the folder) and Debian's
# Fashion-MNIST package (installed here when missing). BILEVEL_EXE names the program (default
# build/bilevel, built first when missing). Every seed is fixed below, so two runs give the same
# files. Files whose inputs are missing are skipped with a message, and the exit code is then 1.
set -euo pipefail
cd "$(dirname "$0")/.."

out="${1:-data}"
src="${BILEVEL_DATA_SRC:-../shared/data}"
exe="${BILEVEL_EXE:-build/bilevel}"
fashion=/usr/share/datasets/fashion-mnist

# Seeds: label corruption of the image sets, stratified train/val split of the LIBSVM sets.
corruption_seed=1
split_seed=1

if [ ! -x "$exe" ]; then
  tools/build.sh
fi
source tools/mpi_env.sh  # one process, but MPI still starts (and refuses root without this)
mkdir -p "$out"

made=()
skipped=()

# convert NAME INPUT... -- ARGS: runs `bilevel convert ARGS` when every INPUT exists.
convert() {
  local name=$1
  shift
  local inputs=()
  while [ "$1" != "--" ]; do
    inputs+=("$1")
    shift
  done
  shift
  for f in "${inputs[@]}"; do
    if [ ! -f "$f" ]; then
      echo "make_datasets: skipped $name: no $f" >&2
      skipped+=("$name")
      return 0
    fi
  done
  "$exe" convert "$@" --output "$out/$name"
  made+=("$out/$name")
}

# MNIST and Fashion-MNIST for data hyper-cleaning (MATH.md section 3): train = the first 20000
# training images, val = the next 5000, test = the 10000 test images; train labels corrupted
# with probability p.
if [ ! -d "$fashion" ]; then
  sudo=""
  if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
  echo "make_datasets: installing dataset-fashion-mnist" >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q dataset-fashion-mnist >/dev/null ||
    echo "make_datasets: could not install dataset-fashion-mnist" >&2
fi
for set in mnist fashion_mnist; do
  if [ "$set" = mnist ]; then dir="$src/mnist"; else dir="$fashion"; fi
  images=("$dir/train-images-idx3-ubyte.gz" "$dir/train-labels-idx1-ubyte.gz"
          "$dir/t10k-images-idx3-ubyte.gz" "$dir/t10k-labels-idx1-ubyte.gz")
  for p in 0.1 0.5; do
    convert "${set}_p$p.h5" "${images[@]}" -- idx \
      --images "${images[0]}" --labels "${images[1]}" \
      --test-images "${images[2]}" --test-labels "${images[3]}" \
      --n-train 20000 --n-val 5000 --noise "$p" --seed "$corruption_seed"
  done
done

# 20 Newsgroups for per-feature L2 (MATH.md section 3): the train file split 50/50 into
# train/val, stratified; the test file's largest index is below 130107, so it is given.
news="$src/20newsgroups/news20-bydate-vectorized"
convert news20.h5 "$news.train.svm.xz" "$news.test.svm.xz" -- libsvm \
  --train "$news.train.svm.xz" --test "$news.test.svm.xz" --num-features 130107 \
  --val-fraction 0.5 --seed "$split_seed"

# LIBSVM sets (../shared/data/libsvm/SOURCE.md gives their feature counts).
lib="$src/libsvm"
convert a9a.h5 "$lib/a9a.xz" "$lib/a9a.t.xz" -- libsvm \
  --train "$lib/a9a.xz" --test "$lib/a9a.t.xz" --num-features 123 \
  --val-fraction 0.5 --seed "$split_seed"
convert w8a.h5 "$lib/w8a.xz" -- libsvm \
  --train "$lib/w8a.xz" --num-features 300 --val-fraction 0.5 --seed "$split_seed"
convert pendigits.h5 "$lib/pendigits.xz" "$lib/pendigits.t.xz" -- libsvm \
  --train "$lib/pendigits.xz" --test "$lib/pendigits.t.xz" --num-features 16 \
  --val-fraction 0.5 --seed "$split_seed"

echo "make_datasets: made ${#made[@]} files in $out:"
if ((${#made[@]})); then ls -l "${made[@]}"; fi
if ((${#skipped[@]})); then
  echo "make_datasets: skipped ${skipped[*]} (missing inputs, see above)" >&2
  exit 1
fi
