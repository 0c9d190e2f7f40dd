#include "cli/solve_command.h"

#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <memory>
#include <sstream>
#include <thread>

#include "bilevel/algorithm.h"
#include "bilevel/problems/quadratic.h"
#include "bilevel/version.h"
#include "bilevel/solver.h"
#include "cli/convert_command.h"
#include "cli/info_command.h"
#include "cli/option_parser.h"
#include "cli/run_reporter.h"
#include "io/checkpoint.h"
#include "io/metrics_writer.h"
#include "problems/hyperclean.h"
#include "problems/l2reg.h"
#include "io/result_file.h"

namespace bilevel::cli {

namespace {

constexpr int kUsageExit = 2;
constexpr int kErrorExit = 1;

// Set by SIGTERM or SIGUSR1 (what Slurm sends before a time limit): checkpoint and stop.
volatile std::sig_atomic_t stop_requested = 0;
// This process's rank, for the fatal-signal message.
int signal_rank = -1;

extern "C" void OnStopSignal(int) { stop_requested = 1; }

// A fatal signal (a bug, or memory trouble): say so in one line, then die of it, so that mpirun
// ends the whole job at once instead of leaving the other ranks waiting.
extern "C" void OnFatalSignal(int sig) {
  char line[96];
  const char* name = sig == SIGSEGV   ? "SIGSEGV"
                     : sig == SIGBUS  ? "SIGBUS"
                     : sig == SIGFPE  ? "SIGFPE"
                     : sig == SIGILL  ? "SIGILL"
                                      : "SIGABRT";
  // snprintf is not async-signal-safe; build the line by hand.
  int n = 0;
  auto put = [&](const char* text) {
    while (*text && n < static_cast<int>(sizeof(line)) - 1) line[n++] = *text++;
  };
  char digits[12];
  int r = signal_rank < 0 ? 0 : signal_rank, d = 0;
  do digits[d++] = static_cast<char>('0' + r % 10); while ((r /= 10) > 0 && d < 11);
  put("[rank ");
  while (d > 0 && n < static_cast<int>(sizeof(line)) - 1) line[n++] = digits[--d];
  put("] error: fatal signal ");
  put(name);
  put("\n");
  if (write(STDERR_FILENO, line, n) < 0) {
    // Nothing more can be done about a failed write here.
  }
  std::signal(sig, SIG_DFL);
  std::raise(sig);
}

void InstallSignalHandlers(int rank) {
  signal_rank = rank;
  stop_requested = 0;
  std::signal(SIGTERM, OnStopSignal);
  std::signal(SIGUSR1, OnStopSignal);
  for (int sig : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT}) std::signal(sig, OnFatalSignal);
}

// Test hook: BILEVEL_TEST_FATAL_SIGNAL_RANK=r makes rank r raise SIGSEGV from a short-lived
// thread 0.5 s after its solve starts, so that a test can check that a fatal signal on one rank
// ends the whole job with one line naming the rank and the signal.
void StartTestFatalSignal(int rank) {
  const char* target = std::getenv("BILEVEL_TEST_FATAL_SIGNAL_RANK");
  if (!target || *target == '\0' || std::atoi(target) != rank) return;
  std::thread([] {
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    std::raise(SIGSEGV);
  }).detach();
}

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

// Refuses to resume `saved` with a different problem, algorithm or trajectory-changing option.
void CheckResumable(const io::Checkpoint& saved, const std::string& path,
                    const io::StringPairs& options, const io::StringPairs& identity) {
  auto find = [](const io::StringPairs& pairs, const std::string& key) -> const std::string* {
    for (const auto& [k, v] : pairs)
      if (k == key) return &v;
    return nullptr;
  };
  const std::string prefix = "--resume " + path + ": ";
  for (const auto& [key, value] : identity) {
    const std::string* old = find(saved.identity, key);
    if (!old || *old != value)
      throw UsageError(prefix + "the problem differs in " + key + " (checkpoint: " +
                       (old ? *old : std::string("absent")) + ", this run: " + value + ")");
  }
  for (const auto& [key, value] : options) {
    if (MayChangeOnResume(key)) continue;
    const std::string* old = find(saved.options, key);
    if (!old || *old != value)
      throw UsageError(prefix + "option --" + key + " differs (checkpoint: " +
                       (old ? *old : std::string("absent")) + ", this run: " + value + ")");
  }
}

std::unique_ptr<Problem> MakeProblem(const SolveConfig& config, const Communicator& comm) {
  // ProblemNames() lists exactly these.
  if (config.problem == "hyperclean")
    return std::make_unique<problems::HypercleanProblem>(config.data_path, comm.rank(),
                                                         comm.size());
  if (config.problem == "l2reg")
    return std::make_unique<problems::L2RegProblem>(config.data_path, comm.rank(), comm.size());
  return std::make_unique<QuadraticProblem>(config.quadratic, comm.rank(), comm.size());
}

int Solve(const std::vector<std::string>& args, Communicator& comm) {
  const bool root = comm.rank() == 0;
  InstallSignalHandlers(comm.rank());
  SolveConfig config;
  std::unique_ptr<Problem> problem;
  std::unique_ptr<io::MetricsWriter> metrics;
  std::unique_ptr<io::CheckpointWriter> checkpoints;
  io::Checkpoint run_identity;
  io::Checkpoint resume;
  int code = 0;
  std::string message;
  try {
    config = ParseSolveArgs(args);
    if (!config.help) {
      if (!config.resume_path.empty()) resume = io::ReadCheckpoint(config.resume_path);
      problem = MakeProblem(config, comm);
    }
  } catch (const UsageError& e) {
    code = kUsageExit, message = e.what();
  } catch (const std::exception& e) {
    code = kErrorExit, message = e.what();
  }
  if (const int agreed = Agree(comm, code, message); agreed != 0) return agreed;
  try {
    if (!config.help) {
      ProblemDefaults defaults = problem->Defaults(config.solver.algorithm);
      // Collective where the step is estimated: every rank has its problem (agreed above).
      if (config.auto_inner_lr)
        defaults.inner_lr = RecommendedInnerStep(*problem, comm, defaults,
                                                 &config.solver.inner_lr_origin);
      ResolveDefaults(defaults, &config);
      run_identity.problem = problem->Name();
      run_identity.algorithm = config.solver.algorithm;
      run_identity.ranks = comm.size();
      run_identity.options = ResolvedOptions(config);
      run_identity.identity = problem->Identity();
      if (!config.resume_path.empty())
        CheckResumable(resume, config.resume_path, run_identity.options, run_identity.identity);
      if (root && !config.metrics_path.empty()) {
        metrics = config.resume_path.empty()
                      ? std::make_unique<io::MetricsWriter>(config.metrics_path)
                      : std::make_unique<io::MetricsWriter>(
                                config.metrics_path, resume.state.iteration,
                                config.solver.eval_every);
      }
      if (root && !config.checkpoint_path.empty())
        checkpoints = std::make_unique<io::CheckpointWriter>(config.checkpoint_path,
                                                             config.checkpoint_keep);
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

  RunReporter observer(config.solver.outer_iters, config.solver.max_time,
                       config.resume_path.empty() ? 0.0 : resume.state.solve_s, config.quiet,
                       metrics.get(), checkpoints.get(), run_identity);
  SolveControl control;
  control.observer = &observer;
  control.stop_signal = &stop_requested;
  if (!config.resume_path.empty()) control.resume = &resume.state;
  Vec x, y;
  SolveSummary summary;
  StartTestFatalSignal(comm.rank());
  try {
    summary = bilevel::Solve(*problem, comm, config.solver, &x, &y, control);
  } catch (const SolveConfigError& e) {
    // Every rank found the same problem at the same point: say it once, end every rank.
    if (root) {
      // A checkpoint's state that does not fit the run ("resume: the algorithm state 'y' is
      // missing"): name the file.
      std::string what = e.what();
      if (!config.resume_path.empty() && what.rfind("resume: ", 0) == 0)
        what = "--resume " + config.resume_path + ": " + what.substr(8);
      std::fprintf(stderr, "bilevel solve: error: %s\n", what.c_str());
      std::fflush(stderr);
    }
    return kUsageExit;
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
        problem->ToDataOrder(&result.x, &result.y);
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
        // Termination, times, oracle counts and communication, after the status line.
        observer.EndProgress();
        std::fputs(RunReporter::SummaryText(summary).c_str(), stderr);
        std::fflush(stderr);
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
    "  convert    make a dataset file from IDX or LIBSVM files ('bilevel convert --help')\n"
    "  info       describe a dataset, checkpoint or result file ('bilevel info --help')\n"
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
  if (args[0] == "convert") return Convert({args.begin() + 1, args.end()}, comm);
  if (args[0] == "info") return Info({args.begin() + 1, args.end()}, comm);
  if (root)
    std::fprintf(stderr, "bilevel: error: unknown command '%s' (allowed: solve, convert, info, --help, --version)\n",
                 args[0].c_str());
  return kUsageExit;
}

}  // namespace bilevel::cli
