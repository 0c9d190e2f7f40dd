#include "mpi_test_main.h"

#include <gtest/gtest.h>

namespace bilevel {

comm::MpiCommunicator* world = nullptr;

}  // namespace bilevel

int main(int argc, char** argv) {
  bilevel::comm::MpiInit(&argc, &argv);
  int failed = 0;
  {
    auto world = bilevel::comm::MpiCommunicator::World();
    bilevel::world = world.get();
    ::testing::InitGoogleTest(&argc, argv);
    if (world->rank() != 0) {
      // One report, from rank 0; the others still run and check their assertions.
      auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
      delete listeners.Release(listeners.default_result_printer());
    }
    failed = RUN_ALL_TESTS() != 0 ? 1 : 0;
    bilevel::Vec f = bilevel::Vec::Constant(1, failed);
    world->AllreduceSum(f);
    failed = f[0] > 0 ? 1 : 0;
  }
  bilevel::comm::MpiFinalize();
  return failed;
}
