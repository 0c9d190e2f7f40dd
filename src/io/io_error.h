// The error every reader and writer in src/io throws: one line naming the file and the problem.
#ifndef BILEVEL_SRC_IO_IO_ERROR_H_
#define BILEVEL_SRC_IO_IO_ERROR_H_

#include <stdexcept>

namespace bilevel::io {

class IoError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace bilevel::io

#endif  // BILEVEL_SRC_IO_IO_ERROR_H_
