# Sourced by the other scripts: Open MPI settings for a local multi-process run.
# As root (containers, CI), Open MPI must be told that this is intended.
if [ "$(id -u)" = 0 ]; then
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
# More ranks than cores must yield when idle, or they spin against each other.
export OMPI_MCA_rmaps_base_oversubscribe=1 OMPI_MCA_mpi_yield_when_idle=1
# Large messages (the 21 MB vectors of l2reg on 20 Newsgroups) are 1.6x faster with the
# default cross-memory-attach copy than with single_copy_mechanism=none; small ones are equal.
export OMP_NUM_THREADS=1
