// IDX files (MNIST, Fashion-MNIST): a big-endian header, magic 0x00000803 (images: count, rows,
// cols, unsigned bytes) or 0x00000801 (labels: count, unsigned bytes), then the raw bytes.
// Plain or compressed (gzip, also xz or bzip2), told by the file's first bytes.
#ifndef BILEVEL_SRC_IO_IDX_H_
#define BILEVEL_SRC_IO_IDX_H_

#include <cstdint>
#include <string>
#include <vector>

#include "bilevel/types.h"

namespace bilevel::io {

struct IdxImages {
  Index count = 0, rows = 0, cols = 0;
  std::vector<std::uint8_t> pixels;  // count images of rows x cols, row-major
  std::string sha256;                // of the file's own bytes
};

struct IdxLabels {
  std::vector<std::uint8_t> labels;
  std::string sha256;  // of the file's own bytes
};

// Each throws IoError with one line naming the file and the problem: a wrong magic number,
// zero image dimensions, a truncated header or truncated data, bytes after the data, corrupt
// compressed data.
IdxImages ReadIdxImages(const std::string& path);
IdxLabels ReadIdxLabels(const std::string& path);

}  // namespace bilevel::io

#endif  // BILEVEL_SRC_IO_IDX_H_
