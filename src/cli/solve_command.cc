#include "cli/solve_command.h"

#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <memory>
#include <sstream>

#include "bilevel/problems/quadratic.h"
#include "bilevel/version.h"
#include "bilevel/solver.h"
#include "cli/option_parser.h"
#include "io/metrics_writer.h"
#include "io/result_file.h"

namespace bilevel::cli {

namespace {

constexpr int kUsageExit = 2;
constexpr int kErrorExit = 1;

// Every rank reports its exit code; all learn the largest and the lowest rank that failed.
// That rank (only) prints its message, so a failure on any rank ends every rank with one line.
int Agree(Communicator& comm, int code, const std::string& message) {
  Vec codes = Vec::Zero(comm.size());
  codes[comm.rank()] = code;
  comm.AllreduceSum(codes);
  int worst = 0, first = -1;
  for (int r = 0; r < comm.size(); ++r) {
    if (codes[r] != 0 && first < 0) first = r;
    worst = std::max(worst, static_cast<int>(codes[r]));
  }
  if (first == comm.rank()) {
    if (code == kUsageExit)
      std::fprintf(stderr, "bilevel solve: error: %s\n", message.c_str());
    else
      std::fprintf(stderr, "[rank %d] error: %s\n", comm.rank(), message.c_str());
    std::fflush(stderr);
  }
  return worst;
}

std::string Compact(double v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.4g", v);
  return buf;
}

// Progress on stderr and the metrics file; rank 0 only.
class CliObserver : public SolveObserver {
 public:
  CliObserver(int total, bool quiet, io::MetricsWriter* metrics)
      : total_(total), quiet_(quiet), metrics_(metrics) {}

  void OnStart(const std::vector<std::pair<std::string, std::string>>& header) override {
    if (quiet_) return;
    std::string line = "bilevel solve:";
    for (const auto& [key, value] : header) line += " " + key + "=" + value;
    std::fprintf(stderr, "%s\n", line.c_str());
  }

  void OnEvaluation(const MetricsRecord& r) override {
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

 private:
  int total_;
  bool quiet_;
  io::MetricsWriter* metrics_;
};

std::unique_ptr<Problem> MakeProblem(const SolveConfig& config, const Communicator& comm) {
  // ProblemNames() lists exactly these.
  return std::make_unique<QuadraticProblem>(config.quadratic, comm.rank(), comm.size());
}

int Solve(const std::vector<std::string>& args, Communicator& comm) {
  const bool root = comm.rank() == 0;
  SolveConfig config;
  std::unique_ptr<Problem> problem;
  std::unique_ptr<io::MetricsWriter> metrics;
  int code = 0;
  std::string message;
  try {
    config = ParseSolveArgs(args);
    if (!config.help) {
      problem = MakeProblem(config, comm);
      ResolveDefaults(problem->Defaults(config.solver.algorithm), &config);
      if (root && !config.metrics_path.empty())
        metrics = std::make_unique<io::MetricsWriter>(config.metrics_path);
    }
  } catch (const UsageError& e) {
    code = kUsageExit, message = e.what();
  } catch (const std::exception& e) {
    code = kErrorExit, message = e.what();
  }
  if (const int agreed = Agree(comm, code, message); agreed != 0) return agreed;
  if (config.help) {
    if (root) std::cout << SolveHelp() << std::flush;
    return 0;
  }

  CliObserver observer(config.solver.outer_iters, config.quiet, metrics.get());
  Vec x, y;
  SolveSummary summary;
  try {
    summary = bilevel::Solve(*problem, comm, config.solver, &x, &y, root ? &observer : nullptr);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "[rank %d] error: %s\n", comm.rank(), e.what());
    std::fflush(stderr);
    comm.Abort(kErrorExit);
  }

  code = 0;
  message.clear();
  if (root) {
    try {
      if (!config.output_path.empty()) {
        io::RunResult result{x, y, problem->Name(), config.solver.algorithm, summary.termination,
                             summary.iterations, comm.size()};
        io::WriteResult(config.output_path, result);
      }
      MetricsRecord final_record = summary.last;
      final_record.SetString("termination", summary.termination);
      final_record.SetString("message", summary.message);
      final_record.SetString("problem", problem->Name());
      final_record.SetString("algorithm", config.solver.algorithm);
      final_record.SetInt("iterations", summary.iterations);
      final_record.SetInt("ranks", comm.size());
      final_record.Set("wall_s", summary.wall_s);
      if (!config.quiet) {
        std::fprintf(stderr, "bilevel solve: %s (%s); wall %.3g s, solver %.3g s\n",
                     summary.termination.c_str(), summary.message.c_str(), summary.wall_s,
                     summary.solve_s);
      }
      std::cout << final_record.ToJson() << std::endl;
    } catch (const std::exception& e) {
      code = kErrorExit, message = e.what();
    }
  }
  const int agreed = Agree(comm, code, message);
  if (agreed != 0) return agreed;
  return summary.termination == "diverged" ? 3 : 0;
}

const char kUsage[] =
    "Usage: bilevel COMMAND [options]\n"
    "       mpirun -np RANKS bilevel solve [options]\n\n"
    "A distributed bilevel optimization solver: min_x f(x, y*(x)), y*(x) = argmin_y g(x, y).\n\n"
    "Commands:\n"
    "  solve      run an algorithm on a problem ('bilevel solve --help')\n"
    "  --help     this help, with every option of solve\n"
    "  --version  the version\n";

}  // namespace

int Main(int argc, char** argv, Communicator& comm) {
  const bool root = comm.rank() == 0;
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    if (root) std::cout << kUsage << "\n" << SolveHelp() << std::flush;
    return args.empty() ? kUsageExit : 0;
  }
  if (args[0] == "--version") {
    if (root) std::cout << "bilevel " << kVersion << "\n";
    return 0;
  }
  if (args[0] == "solve") return Solve({args.begin() + 1, args.end()}, comm);
  if (root)
    std::fprintf(stderr, "bilevel: error: unknown command '%s' (allowed: solve, --help, --version)\n",
                 args[0].c_str());
  return kUsageExit;
}

}  // namespace bilevel::cli
