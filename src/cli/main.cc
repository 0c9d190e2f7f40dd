// The `bilevel` program. MPI's lifetime is handled here and nowhere else.
#include <cstdio>
#include <exception>
#include <memory>

#include "bilevel/mpi_communicator.h"
#include "cli/solve_command.h"

int main(int argc, char** argv) {
  try {
    bilevel::comm::MpiInit(&argc, &argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bilevel: error: %s\n", e.what());
    return 1;
  }
  int code = 0;
  {
    std::unique_ptr<bilevel::comm::MpiCommunicator> world;
    try {
      world = bilevel::comm::MpiCommunicator::World();
      code = bilevel::cli::Main(argc, argv, *world);
    } catch (const std::exception& e) {
      // Uncaught on this rank: end every rank rather than leave them waiting.
      std::fprintf(stderr, "[rank %d] error: %s\n", world ? world->rank() : -1, e.what());
      std::fflush(stderr);
      if (world) world->Abort(1);
      return 1;
    }
  }
  bilevel::comm::MpiFinalize();
  return code;
}
