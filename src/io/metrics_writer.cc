#include "io/metrics_writer.h"

#include <cerrno>
#include <cstring>

#include "io/result_file.h"

namespace bilevel::io {

MetricsWriter::MetricsWriter(const std::string& path) : path_(path) {
  file_ = std::fopen(path.c_str(), "w");
  if (!file_) throw IoError(path + ": cannot create metrics file: " + std::strerror(errno));
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
