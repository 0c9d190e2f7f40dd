#include "cli/run_reporter.h"

#include <limits>

#include <fcntl.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <algorithm>
#include <cstring>

namespace bilevel::cli {

namespace {

std::string Compact(double v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.4g", v);
  return buf;
}

// 4.2s, 12.3s, 4m05s, 2h07m.
std::string Duration(double s) {
  if (!std::isfinite(s) || s < 0) return "?";
  char buf[32];
  if (s < 10)
    std::snprintf(buf, sizeof(buf), "%.2fs", s);
  else if (s < 60)
    std::snprintf(buf, sizeof(buf), "%.1fs", s);
  else if (s < 3600)
    std::snprintf(buf, sizeof(buf), "%dm%02ds", static_cast<int>(s) / 60, static_cast<int>(s) % 60);
  else if (s < 1e8)
    std::snprintf(buf, sizeof(buf), "%dh%02dm", static_cast<int>(s / 3600),
                  static_cast<int>(s / 60) % 60);
  else
    return "forever";
  return buf;
}

// 1.75 MB, 812 kB, 96 B (decimal units).
std::string Bytes(double b) {
  char buf[32];
  if (b >= 1e9)
    std::snprintf(buf, sizeof(buf), "%.3g GB", b / 1e9);
  else if (b >= 1e6)
    std::snprintf(buf, sizeof(buf), "%.3g MB", b / 1e6);
  else if (b >= 1e3)
    std::snprintf(buf, sizeof(buf), "%.3g kB", b / 1e3);
  else
    std::snprintf(buf, sizeof(buf), "%.0f B", b);
  return buf;
}

std::string Int(double v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.0f", v);
  return buf;
}

// The terminal that an mpirun started by a person writes to: rank 0's stderr is a pipe to
// mpirun (or orted), whose own stderr is the terminal. Returns an open descriptor of that
// terminal, or -1 (not under mpirun, or mpirun's stderr is a file or a pipe).
int LauncherTerminal() {
  if (!std::getenv("OMPI_COMM_WORLD_SIZE")) return -1;
  const std::string parent = "/proc/" + std::to_string(getppid());
  char exe[4096];
  const ssize_t n = readlink((parent + "/exe").c_str(), exe, sizeof(exe) - 1);
  if (n <= 0) return -1;
  exe[n] = '\0';
  const char* base = std::strrchr(exe, '/');
  base = base ? base + 1 : exe;
  bool launcher = false;
  for (const char* name : {"orterun", "mpirun", "mpiexec", "orted", "prterun", "prted"})
    launcher |= std::strcmp(base, name) == 0;
  if (!launcher) return -1;
  char target[4096];
  const ssize_t m = readlink((parent + "/fd/2").c_str(), target, sizeof(target) - 1);
  if (m <= 0) return -1;
  target[m] = '\0';
  if (std::strncmp(target, "/dev/", 5) != 0) return -1;  // a file, a pipe or a socket
  const int fd = open(target, O_WRONLY | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return -1;
  if (!isatty(fd)) {
    close(fd);
    return -1;
  }
  return fd;
}

int TerminalWidth(int fd) {
  winsize ws{};
  if (fd >= 0 && ioctl(fd, TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 20) return ws.ws_col;
  if (const char* columns = std::getenv("COLUMNS")) {
    const int c = std::atoi(columns);
    if (c >= 20) return c;
  }
  return 80;
}

// The terminal's width where progress is live: stderr's, or mpirun's terminal's.
int LiveWidth() {
  if (isatty(STDERR_FILENO)) return TerminalWidth(STDERR_FILENO);
  const int fd = LauncherTerminal();
  const int width = TerminalWidth(fd);
  if (fd >= 0) close(fd);
  return width;
}

constexpr double kRedrawSeconds = 0.1;

}  // namespace

RunReporter::Mode ProgressMode() {
  if (const char* forced = std::getenv("BILEVEL_PROGRESS")) {
    const std::string v = forced;
    if (v == "live" || v == "tty") return RunReporter::Mode::kLive;
    if (v == "plain") return RunReporter::Mode::kPlain;
    if (v == "off" || v == "none") return RunReporter::Mode::kOff;
    // Anything else: decide as if unset.
  }
  if (isatty(STDERR_FILENO)) return RunReporter::Mode::kLive;
  const int fd = LauncherTerminal();
  if (fd >= 0) {
    close(fd);
    return RunReporter::Mode::kLive;
  }
  return RunReporter::Mode::kPlain;
}

RunReporter::RunReporter(int total_iters, double max_time, double resumed_time, bool quiet,
                         io::MetricsWriter* metrics, io::CheckpointWriter* checkpoints,
                         io::Checkpoint run_identity)
    : total_(total_iters),
      max_time_(max_time),
      resumed_time_(resumed_time),
      quiet_(quiet),
      mode_(quiet ? Mode::kOff : ProgressMode()),
      metrics_(metrics),
      checkpoints_(checkpoints),
      identity_(std::move(run_identity)),
      start_(Clock::now()) {
  if (mode_ == Mode::kLive) width_ = LiveWidth();
}

RunReporter::~RunReporter() { EndProgress(); }

void RunReporter::OnCheckpoint(const RunState& state, const MetricsRecord& last) {
  if (!checkpoints_) return;
  identity_.state = state;
  identity_.last_metrics = last.ToJson();
  checkpoints_->Write(identity_);
}

void RunReporter::OnStart(const std::vector<std::pair<std::string, std::string>>& header) {
  start_ = Clock::now();
  if (quiet_) return;
  // Two lines: the problem with its shapes, then the algorithm, the ranks and the options.
  std::string problem = "bilevel solve: problem", run = "bilevel solve: algorithm";
  std::string algorithm, ranks;
  bool run_part = false;
  for (const auto& [key, value] : header) {
    if (key == "algorithm") {
      run_part = true;
      algorithm = value;
      continue;
    }
    if (key == "problem" && !run_part) {
      problem += " " + value + ":";
      continue;
    }
    if (key == "ranks" && run_part) {
      ranks = value;
      continue;
    }
    (run_part ? run : problem) += " " + key + "=" + value;
  }
  if (!algorithm.empty()) {
    std::string lead = "bilevel solve: algorithm " + algorithm;
    if (!ranks.empty()) lead += " on " + ranks + (ranks == "1" ? " rank" : " ranks");
    run = lead + ":" + run.substr(std::strlen("bilevel solve: algorithm"));
  }
  std::fprintf(stderr, "%s\n%s\n", problem.c_str(), run.c_str());
  std::fflush(stderr);
}

std::string RunReporter::ReportLine(const MetricsRecord& r, bool full) {
  const auto now = Clock::now();
  const double iter = r.Number("iter");
  const double elapsed = std::chrono::duration<double>(now - start_).count();
  // Seconds per iteration: the wall time between this process's evaluations (which includes
  // the evaluations themselves and checkpoints); until there are two, the solver's own rate.
  double per_iter = iter > 0 ? r.Number("time_s") / iter : 0;
  if (!have_first_) {
    have_first_ = true;
    first_iter_ = iter;
    first_at_ = now;
  } else if (iter > first_iter_) {
    per_iter = std::chrono::duration<double>(now - first_at_).count() / (iter - first_iter_);
  }
  double eta = per_iter * std::max(0.0, total_ - iter);
  char head[96];
  if (total_ == std::numeric_limits<int>::max() && max_time_ > 0) {
    // Bounded by --max-time only: progress is the share of the time budget spent.
    const double spent = r.Number("time_s") - resumed_time_;
    eta = std::max(0.0, max_time_ - spent);
    std::snprintf(head, sizeof(head), "iter %lld (%d%% of --max-time)",
                  static_cast<long long>(iter),
                  std::min(100, static_cast<int>(100.0 * spent / max_time_)));
  } else {
    std::snprintf(head, sizeof(head), "iter %lld/%d (%d%%)", static_cast<long long>(iter),
                  total_, total_ > 0 ? static_cast<int>(100.0 * iter / total_) : 100);
  }
  std::string line = std::string(head) + "  elapsed " + Duration(elapsed) + "  eta " +
                     Duration(eta) + "  outer_loss " + Compact(r.Number("outer_loss"));
  if (r.Has("test_acc")) line += "  test_acc " + Compact(r.Number("test_acc"));
  if (!full) return line;
  line += "  hypergrad_norm " + Compact(r.Number("hypergrad_norm"));
  // The problem's own metrics follow the engine's.
  bool problem_part = false;
  for (const auto& entry : r.entries()) {
    const std::string& key = entry.first;
    if (problem_part && key != "test_acc" &&
        !std::holds_alternative<std::string>(entry.second))
      line += "  " + key + " " + Compact(r.Number(key));
    if (key == "comm_bytes") problem_part = true;
  }
  return line;
}

void RunReporter::Draw(const std::string& line) {
  // Cut to the terminal's width, so that the line never wraps (a wrapped line cannot be
  // redrawn with \r); one column stays free for the cursor.
  std::string shown = line;
  if (static_cast<int>(shown.size()) > width_ - 1) shown.resize(width_ - 1);
  std::fprintf(stderr, "\r%s\033[K", shown.c_str());
  std::fflush(stderr);
  line_open_ = true;
  drawn_at_ = Clock::now();
  pending_.clear();
}

void RunReporter::OnEvaluation(const MetricsRecord& r) {
  if (metrics_) metrics_->Write(r);
  if (mode_ == Mode::kOff) return;
  if (mode_ == Mode::kPlain) {
    std::fprintf(stderr, "%s\n", ReportLine(r, /*full=*/true).c_str());
    std::fflush(stderr);
    return;
  }
  const std::string line = ReportLine(r, /*full=*/false);
  const bool last = r.Number("iter") >= total_;
  if (!line_open_ || last ||
      std::chrono::duration<double>(Clock::now() - drawn_at_).count() >= kRedrawSeconds)
    Draw(line);
  else
    pending_ = line;
}

void RunReporter::EndProgress() {
  if (mode_ != Mode::kLive) return;
  if (!pending_.empty()) Draw(pending_);
  if (line_open_) {
    std::fputc('\n', stderr);
    std::fflush(stderr);
    line_open_ = false;
  }
}

std::string RunReporter::SummaryText(const SolveSummary& s) {
  char buf[256];
  std::snprintf(buf, sizeof(buf), "bilevel solve: %s (%s); wall %.3g s, solver %.3g s\n",
                s.termination.c_str(), s.message.c_str(), s.wall_s, s.solve_s);
  std::string text = buf;
  const MetricsRecord& r = s.last;
  auto num = [&](const char* key) { return r.Has(key) ? r.Number(key) : 0.0; };
  if (r.Has("grad_f")) {
    text += "bilevel solve: oracle samples grad_f " + Int(num("grad_f")) + ", grad_g " +
            Int(num("grad_g")) + ", hvp " + Int(num("hvp")) + ", jvp " + Int(num("jvp")) +
            "; communication " + Int(num("comm_calls")) + " collectives, " +
            Bytes(num("comm_bytes")) + " (allreduce " + Int(num("allreduce_calls")) + ", " +
            Bytes(num("allreduce_bytes")) + ")\n";
  }
  return text;
}

}  // namespace bilevel::cli
