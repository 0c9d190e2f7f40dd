// What rank 0 does with a run's output: progress on stderr, the metrics file, checkpoints.
#ifndef BILEVEL_SRC_CLI_RUN_REPORTER_H_
#define BILEVEL_SRC_CLI_RUN_REPORTER_H_

#include <string>
#include <utility>
#include <vector>

#include "bilevel/solver.h"
#include "io/checkpoint.h"
#include "io/metrics_writer.h"

namespace bilevel::cli {

class RunReporter : public SolveObserver {
 public:
  // `metrics` and `checkpoints` may be null (not requested). `run_identity` carries the options
  // and the problem's identity that every checkpoint records.
  RunReporter(int total_iters, bool quiet, io::MetricsWriter* metrics,
              io::CheckpointWriter* checkpoints, io::Checkpoint run_identity);

  void OnStart(const std::vector<std::pair<std::string, std::string>>& header) override;
  void OnEvaluation(const MetricsRecord& record) override;
  void OnCheckpoint(const RunState& state, const MetricsRecord& last) override;

 private:
  int total_;
  bool quiet_;
  io::MetricsWriter* metrics_;
  io::CheckpointWriter* checkpoints_;
  io::Checkpoint identity_;  // options and problem; the state is filled per checkpoint
};

}  // namespace bilevel::cli

#endif  // BILEVEL_SRC_CLI_RUN_REPORTER_H_
