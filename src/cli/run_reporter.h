// What rank 0 does with a run's output: progress on stderr, the metrics file, checkpoints.
//
// Progress: a header when the run starts (the problem and its shapes, then the algorithm, the
// ranks and the key options), then one report per evaluation: iteration/total, elapsed wall
// time, an ETA, the outer loss and, where the problem has it, the test accuracy. Where stderr is
// a terminal (or, under mpirun, where mpirun's stderr is one), the report is a single status
// line redrawn in place ("\r", the line, clear to its end), cut to the terminal's width and
// redrawn at most 10 times a second; anywhere else (a file, a pipe, a Slurm log) every report is
// one plain line, with the hypergradient norm and every metric of the problem too, flushed at
// once. BILEVEL_PROGRESS=live|plain|off in the environment overrides the choice (off: no
// reports, the header and the summary stay); --quiet (the `quiet` argument) turns all of it
// off. The metrics file and the checkpoints do not depend on
// any of this.
#ifndef BILEVEL_SRC_CLI_RUN_REPORTER_H_
#define BILEVEL_SRC_CLI_RUN_REPORTER_H_

#include <chrono>
#include <string>
#include <utility>
#include <vector>

#include "bilevel/solver.h"
#include "io/checkpoint.h"
#include "io/metrics_writer.h"

namespace bilevel::cli {

class RunReporter : public SolveObserver {
 public:
  enum class Mode { kOff, kPlain, kLive };

  // `metrics` and `checkpoints` may be null (not requested). `run_identity` carries the options
  // and the problem's identity that every checkpoint records.
  // total_iters = INT_MAX with max_time > 0: a run bounded by --max-time only, whose progress is
  // the time budget spent; resumed_time is the solver time of the checkpoint it continues.
  RunReporter(int total_iters, double max_time, double resumed_time, bool quiet,
              io::MetricsWriter* metrics, io::CheckpointWriter* checkpoints,
              io::Checkpoint run_identity);
  // Ends a live status line that is still open.
  ~RunReporter() override;
  RunReporter(const RunReporter&) = delete;
  RunReporter& operator=(const RunReporter&) = delete;

  void OnStart(const std::vector<std::pair<std::string, std::string>>& header) override;
  void OnEvaluation(const MetricsRecord& record) override;
  void OnCheckpoint(const RunState& state, const MetricsRecord& last) override;

  // On a terminal: draws the latest report if it was skipped by the rate limit and ends the
  // status line, so that what is printed next starts on a line of its own. Idempotent; does
  // nothing in the other modes.
  void EndProgress();

  Mode mode() const { return mode_; }

  // The closing lines of a run (termination, wall and solver time, oracle counts and
  // communication from the last evaluation), each ending in '\n'.
  static std::string SummaryText(const SolveSummary& summary);

 private:
  std::string ReportLine(const MetricsRecord& r, bool full);
  void Draw(const std::string& line);

  int total_;
  double max_time_, resumed_time_;
  bool quiet_;  // no header either
  Mode mode_;   // how the evaluations are reported
  io::MetricsWriter* metrics_;
  io::CheckpointWriter* checkpoints_;
  io::Checkpoint identity_;  // options and problem; the state is filled per checkpoint

  using Clock = std::chrono::steady_clock;
  Clock::time_point start_;
  // The first evaluation this process saw, for a wall-clock ETA that includes evaluations.
  bool have_first_ = false;
  double first_iter_ = 0;
  Clock::time_point first_at_;
  // Live mode: whether a status line is open, when it was drawn, and a report not yet drawn.
  bool line_open_ = false;
  Clock::time_point drawn_at_;
  std::string pending_;
  int width_ = 80;
};

// How progress is shown when the run is not quiet: BILEVEL_PROGRESS when set, else live on a
// terminal and plain otherwise.
RunReporter::Mode ProgressMode();

}  // namespace bilevel::cli

#endif  // BILEVEL_SRC_CLI_RUN_REPORTER_H_
