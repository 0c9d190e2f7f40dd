// `bilevel info FILE...`: describes the files bilevel reads and writes, told apart by their
// contents: a dataset (io/dataset.h: storage, features, classes, per split the rows, stored
// entries, density and label counts, the label corruption), a checkpoint (io/checkpoint.h:
// iteration, problem, algorithm, ranks, options, the problem's identity, the saved state, the
// oracle and communication counters and the metrics so far) or a result file
// (io/result_file.h).
#ifndef BILEVEL_SRC_CLI_INFO_COMMAND_H_
#define BILEVEL_SRC_CLI_INFO_COMMAND_H_

#include <string>
#include <vector>

#include "bilevel/communicator.h"

namespace bilevel::cli {

// The description of one file, several lines each ending in '\n'. Throws io::IoError (or
// std::exception) naming the file when it is none of the three kinds or cannot be read.
std::string DescribeFile(const std::string& path);

// Runs `bilevel info` with the arguments after "info". Rank 0 reads the files; every rank
// returns the same exit code: 0 all described, 1 a file could not be described (one line on
// stderr naming it; the other files are still described), 2 a mistake in the arguments.
int Info(const std::vector<std::string>& args, Communicator& comm);

}  // namespace bilevel::cli

#endif  // BILEVEL_SRC_CLI_INFO_COMMAND_H_
