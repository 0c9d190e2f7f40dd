#include "cli/run_reporter.h"

#include <cstdio>

namespace bilevel::cli {

namespace {

std::string Compact(double v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.4g", v);
  return buf;
}

}  // namespace

RunReporter::RunReporter(int total_iters, bool quiet, io::MetricsWriter* metrics,
                         io::CheckpointWriter* checkpoints, io::Checkpoint run_identity)
    : total_(total_iters),
      quiet_(quiet),
      metrics_(metrics),
      checkpoints_(checkpoints),
      identity_(std::move(run_identity)) {}

void RunReporter::OnCheckpoint(const RunState& state, const MetricsRecord& last) {
  if (!checkpoints_) return;
  identity_.state = state;
  identity_.last_metrics = last.ToJson();
  checkpoints_->Write(identity_);
}

void RunReporter::OnStart(const std::vector<std::pair<std::string, std::string>>& header) {
  if (quiet_) return;
  std::string line = "bilevel solve:";
  for (const auto& [key, value] : header) line += " " + key + "=" + value;
  std::fprintf(stderr, "%s\n", line.c_str());
}

void RunReporter::OnEvaluation(const MetricsRecord& r) {
  if (metrics_) metrics_->Write(r);
  if (quiet_) return;
  const double iter = r.Number("iter"), time = r.Number("time_s");
  const double eta = iter > 0 ? time / iter * (total_ - iter) : 0;
  std::string line = "iter " + std::to_string(static_cast<long long>(iter)) + "/" +
                     std::to_string(total_) + "  time " + Compact(time) + "s  eta " +
                     Compact(eta) + "s  outer_loss " + Compact(r.Number("outer_loss")) +
                     "  hypergrad_norm " + Compact(r.Number("hypergrad_norm"));
  // The problem's own metrics follow the engine's.
  bool problem_part = false;
  for (const auto& [key, value] : r.entries()) {
    if (problem_part && r.Has(key)) line += "  " + key + " " + Compact(r.Number(key));
    if (key == "comm_bytes") problem_part = true;
  }
  std::fprintf(stderr, "%s\n", line.c_str());
  std::fflush(stderr);
}

}  // namespace bilevel::cli
