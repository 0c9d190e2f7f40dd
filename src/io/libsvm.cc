#include "io/libsvm.h"

#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>
#include <string_view>

#include "io/dataset.h"

namespace bilevel::io {

namespace {

// Parses all of `text` as a double (NaN and Inf included); false if it is not a number. A
// leading '+' is accepted.
bool ParseDouble(std::string_view text, double* value) {
  if (text.size() > 1 && text[0] == '+' && text[1] != '+' && text[1] != '-') text.remove_prefix(1);
  const char* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, *value);
  if (text.empty() || ptr != end) return false;
  // Too large or too small for a double: strtod gives +-HUGE_VAL or the nearest tiny value.
  if (ec == std::errc::result_out_of_range)
    *value = std::strtod(std::string(text).c_str(), nullptr);
  return ec == std::errc() || ec == std::errc::result_out_of_range;
}

class Parser {
 public:
  Parser(const std::string& path, Index num_features) : path_(path), num_features_(num_features) {}

  void Line(std::string_view line, LibsvmData* out) {
    ++line_number_;
    if (const size_t hash = line.find('#'); hash != std::string_view::npos)
      line = line.substr(0, hash);
    size_t pos = 0;
    std::string_view token;
    if (!NextToken(line, &pos, &token)) return;  // blank line
    double label = 0;
    if (!ParseDouble(token, &label) || !std::isfinite(label))
      Fail("label '" + std::string(token) + "' is not a finite number");
    std::int64_t previous = 0;
    while (NextToken(line, &pos, &token)) {
      const size_t colon = token.find(':');
      if (colon == std::string_view::npos)
        Fail("token '" + std::string(token) + "' has no colon (expected index:value)");
      const std::string_view name = token.substr(0, colon), text = token.substr(colon + 1);
      if (name == "qid") continue;
      const std::int64_t index = ParseIndex(name);
      if (num_features_ > 0 && index > num_features_)
        Fail("index " + std::to_string(index) + " is above the number of features " +
             std::to_string(num_features_));
      if (index <= previous)
        Fail("index " + std::to_string(index) + " does not increase (after " +
             std::to_string(previous) + ")");
      previous = index;
      double value = 0;
      if (!ParseDouble(text, &value))
        Fail("value '" + std::string(text) + "' of index " + std::to_string(index) +
             " is not a number");
      if (!std::isfinite(value))
        Fail("value '" + std::string(text) + "' of index " + std::to_string(index) +
             " is not finite");
      const float stored = static_cast<float>(value);
      if (!std::isfinite(stored))
        Fail("value '" + std::string(text) + "' of index " + std::to_string(index) +
             " is out of float range");
      out->indices.push_back(static_cast<std::int32_t>(index - 1));
      out->values.push_back(stored);
      if (index > out->max_index) out->max_index = index;
    }
    out->labels.push_back(label);
    out->indptr.push_back(static_cast<std::int64_t>(out->indices.size()));
  }

 private:
  [[noreturn]] void Fail(const std::string& what) const {
    throw IoError(path_ + ":" + std::to_string(line_number_) + ": " + what);
  }

  static bool NextToken(std::string_view line, size_t* pos, std::string_view* token) {
    size_t i = *pos;
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r' ||
                               line[i] == '\v' || line[i] == '\f'))
      ++i;
    if (i == line.size()) return false;
    size_t j = i;
    while (j < line.size() && line[j] != ' ' && line[j] != '\t' && line[j] != '\r' &&
           line[j] != '\v' && line[j] != '\f')
      ++j;
    *token = line.substr(i, j - i);
    *pos = j;
    return true;
  }

  std::int64_t ParseIndex(std::string_view text) const {
    std::int64_t index = 0;
    const char* end = text.data() + text.size();
    const auto [ptr, ec] = std::from_chars(text.data(), end, index);
    if (ec == std::errc::result_out_of_range ||
        (ec == std::errc() && ptr == end && index > std::numeric_limits<std::int32_t>::max()))
      Fail("index '" + std::string(text) + "' is too large");
    if (ec != std::errc() || ptr != end)
      Fail("index '" + std::string(text) + "' is not an integer");
    if (index <= 0)
      Fail("index " + std::to_string(index) + " is not positive (indices are 1-based)");
    return index;
  }

  const std::string& path_;
  const Index num_features_;
  std::int64_t line_number_ = 0;
};

}  // namespace

LibsvmData ReadLibsvm(const std::string& path, Index num_features) {
  SourceFile in(path);
  LibsvmData out;
  Parser parser(path, num_features);
  std::string buffer;
  // Reads of 64 KiB at first, doubling up to 4 MiB: a small file costs little.
  std::vector<char> chunk(64 << 10);
  size_t start = 0;  // first byte of buffer not yet parsed
  for (;;) {
    const size_t got = in.Read(chunk.data(), chunk.size());
    if (got == 0) break;
    buffer.erase(0, start);
    start = 0;
    buffer.append(chunk.data(), got);
    if (got == chunk.size() && chunk.size() < (4u << 20)) chunk.resize(2 * chunk.size());
    const std::string_view view(buffer);
    for (size_t newline; (newline = view.find('\n', start)) != std::string_view::npos;
         start = newline + 1)
      parser.Line(view.substr(start, newline - start), &out);
  }
  if (start < buffer.size()) parser.Line(std::string_view(buffer).substr(start), &out);
  out.sha256 = in.Sha256Hex();
  return out;
}

}  // namespace bilevel::io
