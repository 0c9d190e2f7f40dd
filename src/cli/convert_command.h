// `bilevel convert idx|libsvm ...`: makes a dataset file (io/dataset.h) from IDX images and
// labels (MNIST, Fashion-MNIST) or from LIBSVM / svmlight text files.
#ifndef BILEVEL_SRC_CLI_CONVERT_COMMAND_H_
#define BILEVEL_SRC_CLI_CONVERT_COMMAND_H_

#include <string>
#include <vector>

#include "bilevel/communicator.h"

namespace bilevel::cli {

// Runs `bilevel convert` with the arguments after "convert". Rank 0 converts; the other ranks
// wait for its outcome. Returns the same exit code on every rank: 0 done, 2 a mistake in the
// options (one line naming the option), 1 any other error (one line naming the file and, for
// text input, the line). No output file is left behind on a failure.
int Convert(const std::vector<std::string>& args, Communicator& comm);

}  // namespace bilevel::cli

#endif  // BILEVEL_SRC_CLI_CONVERT_COMMAND_H_
