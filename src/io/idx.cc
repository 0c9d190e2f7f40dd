#include "io/idx.h"

#include <algorithm>
#include <cstdio>
#include <limits>

#include "io/dataset.h"

namespace bilevel::io {

namespace {

constexpr std::uint32_t kImagesMagic = 0x00000803;
constexpr std::uint32_t kLabelsMagic = 0x00000801;

[[noreturn]] void Fail(const std::string& path, const std::string& what) {
  throw IoError(path + ": " + what);
}

size_t ReadFully(SourceFile* in, char* buf, size_t n) {
  size_t got = 0;
  while (got < n) {
    const size_t k = in->Read(buf + got, n - got);
    if (k == 0) break;
    got += k;
  }
  return got;
}

std::string Hex32(std::uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "0x%08x", v);
  return buf;
}

// Reads the magic number and `ndims` dimensions (big-endian uint32 each).
std::vector<std::uint64_t> ReadHeader(SourceFile* in, std::uint32_t magic, int ndims,
                                      const char* kind) {
  const size_t size = 4 * (1 + ndims);
  unsigned char header[16];
  const size_t got = ReadFully(in, reinterpret_cast<char*>(header), size);
  auto word = [&](int i) {
    return (std::uint32_t{header[4 * i]} << 24) | (std::uint32_t{header[4 * i + 1]} << 16) |
           (std::uint32_t{header[4 * i + 2]} << 8) | std::uint32_t{header[4 * i + 3]};
  };
  if (got >= 4 && word(0) != magic)
    Fail(in->path(),
         "magic number " + Hex32(word(0)) + " is not " + Hex32(magic) + " (IDX " + kind + " file)");
  if (got < size)
    Fail(in->path(), "truncated header: " + std::to_string(got) + " of " + std::to_string(size) +
                         " bytes (IDX " + kind + " file)");
  std::vector<std::uint64_t> dims;
  for (int i = 1; i <= ndims; ++i) dims.push_back(word(i));
  return dims;
}

// Reads exactly `expected` data bytes of `what` and checks that nothing follows them.
std::vector<std::uint8_t> ReadBody(SourceFile* in, std::uint64_t expected, std::uint64_t unit,
                                   const char* what) {
  std::vector<std::uint8_t> out;
  // Not more up front than a real file needs: a header alone may announce terabytes.
  out.reserve(std::min<std::uint64_t>(expected, std::uint64_t{1} << 24));
  constexpr size_t kChunk = 1 << 20;
  while (out.size() < expected) {
    const size_t old = out.size();
    const size_t want = std::min<std::uint64_t>(kChunk, expected - old);
    out.resize(old + want);
    const size_t got = ReadFully(in, reinterpret_cast<char*>(out.data() + old), want);
    out.resize(old + got);
    if (got < want)
      Fail(in->path(), "truncated data: " + std::to_string(out.size()) + " of " +
                           std::to_string(expected) + " bytes (" +
                           std::to_string(out.size() / unit) + " of " +
                           std::to_string(expected / unit) + " " + what + ")");
  }
  char extra[4096];
  std::uint64_t trailing = 0;
  for (size_t k; (k = in->Read(extra, sizeof(extra))) > 0;) trailing += k;
  if (trailing > 0)
    Fail(in->path(), std::to_string(trailing) + " bytes after the " + std::to_string(expected) +
                         " data bytes the header announces");
  return out;
}

}  // namespace

IdxImages ReadIdxImages(const std::string& path) {
  SourceFile in(path);
  const std::vector<std::uint64_t> dims = ReadHeader(&in, kImagesMagic, 3, "images");
  IdxImages images;
  images.count = static_cast<Index>(dims[0]);
  images.rows = static_cast<Index>(dims[1]);
  images.cols = static_cast<Index>(dims[2]);
  if (images.rows == 0 || images.cols == 0)
    Fail(path, "image size " + std::to_string(images.rows) + " x " + std::to_string(images.cols) +
                   " has a zero dimension");
  // Each dimension is below 2^32, so rows x cols fits in 64 bits; count x that may not, and a
  // product that wrapped around would let a short file pass for many huge images.
  const std::uint64_t unit = dims[1] * dims[2];
  if (dims[0] > 0 && unit > std::numeric_limits<std::int64_t>::max() / dims[0])
    Fail(path, "the header announces " + std::to_string(dims[0]) + " images of " +
                   std::to_string(dims[1]) + " x " + std::to_string(dims[2]) +
                   " pixels, more bytes than a file can hold");
  images.pixels = ReadBody(&in, dims[0] * unit, unit, "images");
  images.sha256 = in.Sha256Hex();
  return images;
}

IdxLabels ReadIdxLabels(const std::string& path) {
  SourceFile in(path);
  const std::vector<std::uint64_t> dims = ReadHeader(&in, kLabelsMagic, 1, "labels");
  IdxLabels labels;
  labels.labels = ReadBody(&in, dims[0], 1, "labels");
  labels.sha256 = in.Sha256Hex();
  return labels;
}

}  // namespace bilevel::io
