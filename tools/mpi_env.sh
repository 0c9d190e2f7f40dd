# Sourced by the other scripts: Open MPI settings for a local multi-process run.
# As root (containers, CI), Open MPI must be told that this is intended.
if [ "$(id -u)" = 0 ]; then
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
# More ranks than cores must yield when idle, or they spin against each other.
export OMPI_MCA_rmaps_base_oversubscribe=1 OMPI_MCA_mpi_yield_when_idle=1
# Large messages (the 21 MB vectors of l2reg on 20 Newsgroups) are 1.6x faster with the
# default cross-memory-attach copy than with single_copy_mechanism=none; small ones are equal.

# PMIx's shared-memory key-value store (gds ds21) is locked by its clients: a rank killed while
# it holds the lock leaves mpirun hanging at exit, in PMIx_server_finalize (openpmix#1233;
# seen here about once in 20 kills of rank 0). The plain store has no such lock.
export PMIX_MCA_gds=hash
export OMP_NUM_THREADS=1
