#!/usr/bin/env bash
# Installs this build into a fresh prefix and builds and runs the example project against that
# prefix only, as a user would:
#
#   tests/install_test.sh BUILD_DIR SOURCE_DIR CMAKE GENERATOR MPIEXEC NP_FLAG
#
# in a fresh directory W outside both trees (under $TMPDIR, removed on success):
# 1. cmake --install BUILD_DIR --prefix W/prefix;
# 2. checks that the installed headers and CMake files name neither the source tree nor the
#    build tree;
# 3. copies tools/examples/ridge to W/ridge and configures it with -DCMAKE_PREFIX_PATH=W/prefix
#    and nothing else (no path into the source or build tree), builds it;
# 4. runs it under MPIEXEC NP_FLAG 2: it checks its oracles against finite differences and
#    runs two algorithms, and exits 0 only if everything passed.
set -euo pipefail
if [[ $# -ne 6 ]]; then
  echo "usage: $0 BUILD_DIR SOURCE_DIR CMAKE GENERATOR MPIEXEC NP_FLAG" >&2
  exit 2
fi
build_dir=$(cd "$1" && pwd)
source_dir=$(cd "$2" && pwd)
cmake=$3
generator=$4
mpiexec=$5
np_flag=$6

work_dir=$(mktemp -d "${TMPDIR:-/tmp}/bilevel_install_test.XXXXXX")
echo "== working in $work_dir (kept if the test fails)"
prefix=$work_dir/prefix

echo "== install into $prefix"
"$cmake" --install "$build_dir" --prefix "$prefix"
for f in include/bilevel/problem.h include/bilevel/check.h include/bilevel/mpi_communicator.h \
         include/bilevel/version.h lib/cmake/bilevel/bilevelConfig.cmake \
         lib/cmake/bilevel/bilevelConfigVersion.cmake lib/cmake/bilevel/bilevelTargets.cmake; do
  [[ -f $prefix/$f ]] || { echo "install_test: $prefix/$f is missing" >&2; exit 1; }
done
if grep -rlF -e "$source_dir" -e "$build_dir" "$prefix/include" "$prefix/lib/cmake"; then
  echo "install_test: the installed files above name the source or the build tree" >&2
  exit 1
fi

echo "== configure and build the example against $prefix only"
cp -r "$source_dir/tools/examples/ridge" "$work_dir/ridge"
"$cmake" -S "$work_dir/ridge" -B "$work_dir/ridge/build" -G "$generator" \
  -DCMAKE_PREFIX_PATH="$prefix"
found=$(sed -n 's/^bilevel_DIR:PATH=//p' "$work_dir/ridge/build/CMakeCache.txt")
if [[ $found != "$prefix/lib/cmake/bilevel" ]]; then
  echo "install_test: the example found bilevel in '$found', not in $prefix" >&2
  exit 1
fi
"$cmake" --build "$work_dir/ridge/build"

echo "== run it on 2 ranks"
"$mpiexec" "$np_flag" 2 "$work_dir/ridge/build/ridge"
rm -rf "$work_dir"
