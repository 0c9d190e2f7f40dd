#include "io/metrics_writer.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "io/hdf5_util.h"

namespace bilevel::io {

MetricsWriter::MetricsWriter(const std::string& path) : path_(path) {
  file_ = std::fopen(path.c_str(), "w");
  if (!file_) throw IoError(path + ": cannot create metrics file: " + std::strerror(errno));
}

MetricsWriter::MetricsWriter(const std::string& path, int iteration, int eval_every)
    : path_(path) {
  std::string kept;
  if (std::FILE* in = std::fopen(path.c_str(), "r")) {
    char* line = nullptr;
    size_t capacity = 0;
    ssize_t length;
    while ((length = getline(&line, &capacity, in)) > 0) {
      const char* at = std::strstr(line, "\"iter\": ");
      const long iter = at ? std::atol(at + 8) : -1;
      if (iter > 0 && iter <= iteration && iter % eval_every == 0)
        kept.append(line, static_cast<size_t>(length));
    }
    std::free(line);
    std::fclose(in);
  }
  // The kept lines replace the file atomically; the run then appends.
  const std::string tmp = TemporaryPathFor(path);
  std::FILE* out = std::fopen(tmp.c_str(), "w");
  if (!out) throw IoError(path + ": cannot create " + tmp + ": " + std::strerror(errno));
  const bool written = std::fwrite(kept.data(), 1, kept.size(), out) == kept.size();
  if (std::fclose(out) != 0 || !written) {
    std::remove(tmp.c_str());
    throw IoError(path + ": cannot write metrics: " + std::strerror(errno));
  }
  MoveIntoPlace(tmp, path);
  file_ = std::fopen(path.c_str(), "a");
  if (!file_) throw IoError(path + ": cannot append to metrics file: " + std::strerror(errno));
}

MetricsWriter::~MetricsWriter() {
  if (file_) std::fclose(file_);
}

void MetricsWriter::Write(const MetricsRecord& record) {
  const std::string line = record.ToJson() + "\n";
  if (std::fwrite(line.data(), 1, line.size(), file_) != line.size() || std::fflush(file_) != 0)
    throw IoError(path_ + ": cannot write metrics: " + std::strerror(errno));
}

}  // namespace bilevel::io
