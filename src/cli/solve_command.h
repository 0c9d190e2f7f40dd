// The `bilevel` program: subcommand dispatch and `bilevel solve`.
#ifndef BILEVEL_SRC_CLI_SOLVE_COMMAND_H_
#define BILEVEL_SRC_CLI_SOLVE_COMMAND_H_

#include "bilevel/communicator.h"

namespace bilevel::cli {

// Runs the program on every rank of `comm`; returns the exit code, the same on every rank.
// Usage errors: 2, other errors found before the run: 1, both with one line on stderr from one
// rank. An error during the run prints "[rank r] error: ..." and aborts every rank.
int Main(int argc, char** argv, Communicator& comm);

}  // namespace bilevel::cli

#endif  // BILEVEL_SRC_CLI_SOLVE_COMMAND_H_
