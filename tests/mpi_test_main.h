// The main() of the gtest programs that run under mpirun (mpi_test_main.cc): MPI is started
// before the tests and finalized after them, only rank 0 prints the report, and the program
// fails on every rank when a test failed on any rank.
#ifndef BILEVEL_TESTS_MPI_TEST_MAIN_H_
#define BILEVEL_TESTS_MPI_TEST_MAIN_H_

#include "bilevel/mpi_communicator.h"

namespace bilevel {

// MPI_COMM_WORLD, for the tests; set before the first test runs.
extern comm::MpiCommunicator* world;

}  // namespace bilevel

#endif  // BILEVEL_TESTS_MPI_TEST_MAIN_H_
