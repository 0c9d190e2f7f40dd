// libFuzzer target: io::ReadLibsvm on arbitrary bytes (plain text, or gzip/xz/bzip2 data when the
// bytes start with their magic numbers). Expected: the samples in consistent CSR form, or an
// IoError of one line naming the file. A success is parsed again with num_features one below
// the largest index, which must be refused.
#include <cmath>
#include <cstdint>
#include <exception>
#include <string>

#include "fuzz_util.h"
#include "io/libsvm.h"
#include "io/result_file.h"  // IoError

using bilevel::fuzz::Expect;

namespace {

void CheckData(const bilevel::io::LibsvmData& d) {
  const std::size_t rows = d.labels.size();
  Expect(d.indptr.size() == rows + 1, "indptr has not rows + 1 entries");
  Expect(d.indptr[0] == 0, "indptr does not start at 0");
  Expect(d.indices.size() == d.values.size(), "indices and values differ in length");
  Expect(static_cast<std::size_t>(d.indptr.back()) == d.indices.size(), "indptr does not end at nnz");
  std::int64_t largest = -1;
  for (std::size_t r = 0; r < rows; ++r) {
    Expect(std::isfinite(d.labels[r]), "a label that is not finite");
    Expect(d.indptr[r] <= d.indptr[r + 1], "indptr decreases");
    for (std::int64_t k = d.indptr[r]; k < d.indptr[r + 1]; ++k) {
      Expect(d.indices[k] >= 0, "a negative column");
      Expect(k == d.indptr[r] || d.indices[k] > d.indices[k - 1], "columns not increasing");
      Expect(std::isfinite(d.values[k]), "a value that is not finite");
      if (d.indices[k] > largest) largest = d.indices[k];
    }
  }
  Expect(d.max_index == largest + 1, "max_index is not the largest index");
  Expect(d.sha256.size() == 64, "the sha256 is not 64 hex digits");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static bilevel::fuzz::InputFile file;
  file.Set(data, size);
  bilevel::io::LibsvmData parsed;
  try {
    parsed = bilevel::io::ReadLibsvm(file.path());
  } catch (const bilevel::io::IoError& e) {
    bilevel::fuzz::ExpectClearMessage(e.what(), file.path() + ":");
    return 0;
  } catch (const std::exception& e) {
    bilevel::fuzz::Finding(std::string("an exception other than IoError: ") + e.what());
  }
  CheckData(parsed);
  if (parsed.max_index > 1) {
    try {
      bilevel::io::ReadLibsvm(file.path(), parsed.max_index - 1);
      bilevel::fuzz::Finding("an index above --num-features was accepted");
    } catch (const bilevel::io::IoError& e) {
      bilevel::fuzz::ExpectClearMessage(e.what(), file.path() + ":");
      Expect(std::string(e.what()).find("above the number of features") != std::string::npos,
             std::string("the wrong refusal with num_features: ") + e.what());
    }
  }
  return 0;
}
