#!/usr/bin/env bash
# Installs what bilevel needs to build and test, from Debian 12 packages. Idempotent: packages
# already present are not touched, and apt-get runs only when something is missing.
#   tools/setup.sh            build and test dependencies
set -euo pipefail

packages=(
  cmake ninja-build g++ pkg-config
  libopenmpi-dev openmpi-bin
  libeigen3-dev
  libhdf5-openmpi-dev hdf5-tools
  libboost-program-options-dev
  zlib1g-dev libbz2-dev liblzma-dev
  libgtest-dev
  clang libclang-rt-14-dev   # tools/fuzz.sh: libFuzzer and clang's sanitizer runtimes
  python3-matplotlib   # tools/plot_metrics.py (plot_test)
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if ((${#missing[@]})); then
  sudo=""
  if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
  echo "tools/setup.sh: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -q >/dev/null
  $sudo apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi

if dpkg-query -W -f='${Status}' libhdf5-dev 2>/dev/null | grep -q 'install ok installed'; then
  echo "tools/setup.sh: note: libhdf5-dev (serial HDF5) is installed too; the build asks for" \
       "the parallel one through h5pcc" >&2
fi
