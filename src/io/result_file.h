// The final iterate of a run as an HDF5 file, written by the coordinator.
//
// Layout (format version 1):
//   /x  float64 [p]   outer variable          /y  float64 [q]   inner variable
//   root attributes: format_version (int), problem, algorithm, termination (strings),
//   iterations (int), ranks (int).
#ifndef BILEVEL_SRC_IO_RESULT_FILE_H_
#define BILEVEL_SRC_IO_RESULT_FILE_H_

#include <string>

#include "bilevel/types.h"
#include "io/io_error.h"

namespace bilevel::io {

struct RunResult {
  Vec x, y;
  std::string problem, algorithm, termination;
  int iterations = 0;
  int ranks = 1;
};

// Writes to PATH.tmp.<pid> in the same directory, then renames over PATH: a reader never sees a
// partial file. Throws IoError naming the file and the failing step.
void WriteResult(const std::string& path, const RunResult& result);
// Throws IoError naming the file and the missing or malformed item.
RunResult ReadResult(const std::string& path);

}  // namespace bilevel::io

#endif  // BILEVEL_SRC_IO_RESULT_FILE_H_
