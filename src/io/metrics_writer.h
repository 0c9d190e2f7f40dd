// The metrics stream: one JSON object per line, flushed line by line so that a run that dies
// keeps every evaluation it reached.
#ifndef BILEVEL_SRC_IO_METRICS_WRITER_H_
#define BILEVEL_SRC_IO_METRICS_WRITER_H_

#include <cstdio>
#include <string>

#include "bilevel/metrics.h"

namespace bilevel::io {

class MetricsWriter {
 public:
  // Creates (truncates) `path`; throws IoError naming it when that fails.
  explicit MetricsWriter(const std::string& path);
  // For a resumed run: keeps the lines of `path` whose "iter" is at most `iteration` (the
  // checkpoint's; later lines came from the part of the run that is redone) and a multiple of
  // `eval_every` (an evaluation made only because the earlier run stopped is dropped), then
  // appends. The file then reads as if the run had never stopped.
  MetricsWriter(const std::string& path, int iteration, int eval_every);
  ~MetricsWriter();
  MetricsWriter(const MetricsWriter&) = delete;
  MetricsWriter& operator=(const MetricsWriter&) = delete;

  // Appends one line; throws IoError when the write fails (disk full, ...).
  void Write(const MetricsRecord& record);

 private:
  std::string path_;
  std::FILE* file_;
};

}  // namespace bilevel::io

#endif  // BILEVEL_SRC_IO_METRICS_WRITER_H_
