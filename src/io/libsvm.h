// LIBSVM / svmlight text files: one sample per line, `label index:value index:value ...`, with
// 1-based, increasing indices. Plain or compressed (gzip, xz, bzip2), told by the file's first
// bytes. Blank lines are skipped, `#` starts a comment that runs to the end of the line, and
// svmlight's `qid:N` tokens are ignored.
#ifndef BILEVEL_SRC_IO_LIBSVM_H_
#define BILEVEL_SRC_IO_LIBSVM_H_

#include <cstdint>
#include <string>
#include <vector>

#include "bilevel/types.h"

namespace bilevel::io {

// The samples of one file in CSR form.
struct LibsvmData {
  std::vector<double> labels;              // as written in the file
  std::vector<std::int64_t> indptr = {0};  // rows + 1
  std::vector<std::int32_t> indices;       // 0-based columns, increasing within a row
  std::vector<float> values;               // as written, explicit zeros kept
  Index max_index = 0;                     // largest 1-based index seen (0: none)
  std::string sha256;                      // of the file's own bytes

  Index rows() const { return static_cast<Index>(labels.size()); }
};

// Reads a whole file. `num_features` > 0 makes an index above it an error. Throws IoError
// with one line "FILE:LINE: problem" for: a token without a colon, an index that is zero,
// negative or not an integer, an index above num_features, indices not increasing within a
// line, a value that is NaN, Inf, out of float range or not a number, a label that is not a
// finite number; and "FILE: problem" for unreadable or corrupt compressed data.
LibsvmData ReadLibsvm(const std::string& path, Index num_features = 0);

}  // namespace bilevel::io

#endif  // BILEVEL_SRC_IO_LIBSVM_H_
