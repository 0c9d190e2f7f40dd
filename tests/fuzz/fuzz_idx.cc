// libFuzzer target: io::ReadIdxImages and io::ReadIdxLabels on arbitrary bytes (plain, or
// gzip/xz/bzip2 when the bytes start with their magic numbers). Expected: exactly the data the
// header announces, or an IoError of one line naming the file.
#include <cstdint>
#include <exception>
#include <string>

#include "fuzz_util.h"
#include "io/idx.h"
#include "io/result_file.h"  // IoError

using bilevel::fuzz::Expect;

namespace {

std::uint64_t Word(const std::uint8_t* p) {
  return (std::uint64_t{p[0]} << 24) | (std::uint64_t{p[1]} << 16) | (std::uint64_t{p[2]} << 8) |
         std::uint64_t{p[3]};
}

// Runs `read`; true when it succeeded, false on a clear IoError; a finding otherwise.
template <typename Read>
bool Accepts(const std::string& path, Read read) {
  try {
    read();
    return true;
  } catch (const bilevel::io::IoError& e) {
    bilevel::fuzz::ExpectClearMessage(e.what(), path + ": ");
  } catch (const std::exception& e) {
    bilevel::fuzz::Finding(std::string("an exception other than IoError: ") + e.what());
  }
  return false;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static bilevel::fuzz::InputFile file;
  file.Set(data, size);
  // Plain input: the header can be checked against the bytes themselves.
  const bool plain = !(size >= 2 && data[0] == 0x1f && data[1] == 0x8b) &&
                     !(size >= 3 && data[0] == 'B' && data[1] == 'Z' && data[2] == 'h') &&
                     !(size >= 6 && data[0] == 0xFD && data[1] == '7');
  bilevel::io::IdxImages images;
  if (Accepts(file.path(), [&] { images = bilevel::io::ReadIdxImages(file.path()); })) {
    Expect(images.rows > 0 && images.cols > 0, "an image dimension is 0");
    const unsigned __int128 expected = static_cast<unsigned __int128>(images.count) *
                                       static_cast<unsigned __int128>(images.rows) *
                                       static_cast<unsigned __int128>(images.cols);
    Expect(images.pixels.size() == expected, "pixels are not count x rows x cols bytes");
    if (plain) {
      Expect(size >= 16 && Word(data) == 0x803, "accepted without the images magic number");
      Expect(Word(data + 4) == static_cast<std::uint64_t>(images.count) &&
                 Word(data + 8) == static_cast<std::uint64_t>(images.rows) &&
                 Word(data + 12) == static_cast<std::uint64_t>(images.cols),
             "the dimensions are not the header's");
      Expect(size == 16 + images.pixels.size(), "the file is not header + pixels");
    }
  }
  bilevel::io::IdxLabels labels;
  if (Accepts(file.path(), [&] { labels = bilevel::io::ReadIdxLabels(file.path()); })) {
    if (plain) {
      Expect(size >= 8 && Word(data) == 0x801, "accepted without the labels magic number");
      Expect(Word(data + 4) == labels.labels.size(), "the count is not the header's");
      Expect(size == 8 + labels.labels.size(), "the file is not header + labels");
    }
  }
  return 0;
}
