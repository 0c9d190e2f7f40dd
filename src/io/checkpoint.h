// Checkpoint files: everything needed to continue a run bit for bit, written by rank 0.
//
// Layout (HDF5, format_version 1; `h5dump FILE` shows it):
//   /                 attributes: format_version (int64), kind ("bilevel checkpoint"),
//                     iteration (int64, outer iterations done), ranks (int64), solve_s (double),
//                     sampler_state (string: the mt19937_64 state), problem, algorithm (strings),
//                     last_metrics (string: the latest evaluation as JSON)
//   /x                float64 [p]: x after `iteration` updates
//   /algorithm/NAME   float64 vectors: the algorithm's state (y, and v for AID)
//   /optimizer/NAME   float64 vectors: the outer optimizer's state (none for sgd)
//   /counters         int64 attributes: oracle samples and calls (grad_f, grad_f_calls, ...,
//                     value_g) and communication (allreduce_calls, ..., broadcast_bytes)
//   /options          string attributes: every resolved option of the run, by flag name
//   /problem          string attributes: the identity of the problem (name, shapes, parameters,
//                     data file and checksum where there is one)
#ifndef BILEVEL_SRC_IO_CHECKPOINT_H_
#define BILEVEL_SRC_IO_CHECKPOINT_H_

#include <deque>
#include <string>
#include <utility>
#include <vector>

#include "bilevel/run_state.h"
#include "io/io_error.h"

namespace bilevel::io {

using StringPairs = std::vector<std::pair<std::string, std::string>>;

struct Checkpoint {
  RunState state;
  std::string problem;     // problem name
  std::string algorithm;
  int ranks = 1;
  StringPairs options;     // resolved options, flag name (no dashes) -> value
  StringPairs identity;    // the problem's identity
  std::string last_metrics;
};

// Throws IoError naming the file and the missing or malformed item.
Checkpoint ReadCheckpoint(const std::string& path);

// Writes checkpoints to one path atomically: each one goes to a temporary file in the same
// directory, is flushed to disk and renamed over the path, so the path always holds a whole
// checkpoint, the old one or the new one. With keep = N > 1, the previous N - 1 checkpoints
// stay beside it as PATH.<iteration> (hard links, no copies).
class CheckpointWriter {
 public:
  CheckpointWriter(std::string path, int keep);
  void Write(const Checkpoint& checkpoint);
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  int keep_;
  std::deque<std::string> kept_;  // older checkpoints, oldest first
};

}  // namespace bilevel::io

#endif  // BILEVEL_SRC_IO_CHECKPOINT_H_
