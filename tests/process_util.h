// Helpers for tests that run the `bilevel` program under mpirun: temporary directories, commands
// with captured output, background jobs, the processes of a job by rank, and fields of the
// one-line JSON objects the program prints.
#ifndef BILEVEL_TESTS_PROCESS_UTIL_H_
#define BILEVEL_TESTS_PROCESS_UTIL_H_

#include <dirent.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace bilevel::testing {

inline std::string Quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

inline std::string ReadText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

inline std::vector<std::string> SplitLines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) lines.push_back(line);
  return lines;
}

// The environment CTest gives MPI tests, for runs by hand; values already set win.
inline void EnsureMpiEnv() {
  setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 0);
  setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 0);
  setenv("OMPI_MCA_rmaps_base_oversubscribe", "1", 0);
  setenv("OMPI_MCA_mpi_yield_when_idle", "1", 0);
  setenv("OMPI_MCA_btl_vader_single_copy_mechanism", "none", 0);
  setenv("OMP_NUM_THREADS", "1", 0);
}

// A fresh directory under /tmp, removed with its contents at the end of its scope.
class ScratchDir {
 public:
  ScratchDir() {
    char name[] = "/tmp/bilevel_test_XXXXXX";
    if (mkdtemp(name)) path_ = name;
  }
  ~ScratchDir() {
    std::error_code ignored;
    if (!path_.empty()) std::filesystem::remove_all(path_, ignored);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  const std::string& path() const { return path_; }
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

struct Outcome {
  int exit_code = -1;
  std::string out, err;
  double wall_s = 0;
  std::string Describe() const {
    return "exit " + std::to_string(exit_code) + ", " + std::to_string(wall_s) +
           " s\n--- stdout:\n" + out + "--- stderr:\n" + err;
  }
};

struct ProcessInfo;
inline std::vector<ProcessInfo> ProcessesIn(const std::string& cwd);

// A /bin/sh command line started in the background in `dir`, output to files there.
class Job {
 public:
  Job(const ScratchDir& dir, const std::string& command, const std::string& tag)
      : dir_(dir.path()), out_(dir.File(tag + ".out")), err_(dir.File(tag + ".err")) {
    EnsureMpiEnv();
    start_ = std::chrono::steady_clock::now();
    pid_ = fork();
    if (pid_ == 0) {
      setpgid(0, 0);  // its own process group, so that the whole job can be killed at once
      const std::string line = "cd " + Quote(dir.path()) + " && exec timeout 120 " + command +
                               " >" + Quote(out_) + " 2>" + Quote(err_) + " </dev/null";
      execl("/bin/sh", "sh", "-c", line.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    if (pid_ > 0) setpgid(pid_, pid_);  // also here: no race with a kill right after the fork
  }
  // Kills what is left of the job: the shell, mpirun and every rank (one process group).
  // Kills what is left of the job: the shell, mpirun and every rank (one process group), and
  // any process still working in the job's directory (ranks that outlived a killed mpirun).
  ~Job();
  pid_t pid() const { return pid_; }
  double Elapsed() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  }
  // Waits at most `seconds`; nullopt when the job is still running then.
  std::optional<Outcome> Wait(double seconds) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    int status = 0;
    while (true) {
      const pid_t r = waitpid(pid_, &status, WNOHANG);
      if (r == pid_) break;
      if (std::chrono::steady_clock::now() > until) return std::nullopt;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    done_ = true;
    Outcome o;
    o.wall_s = Elapsed();
    o.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    o.out = ReadText(out_);
    o.err = ReadText(err_);
    return o;
  }

 private:
  std::string dir_, out_, err_;
  pid_t pid_ = -1;
  bool done_ = false;
  std::chrono::steady_clock::time_point start_;
};

// Runs a command to completion (at most 120 s).
inline Outcome RunIn(const ScratchDir& dir, const std::string& command) {
  static int serial = 0;
  Job job(dir, command, "run" + std::to_string(++serial));
  return *job.Wait(1e9);
}

struct ProcessInfo {
  pid_t pid;
  std::string exe;  // the executable's resolved path
  int rank;         // OMPI_COMM_WORLD_RANK, or -1
};

// The processes working in directory `cwd` (every process of a job started there), by rank.
inline std::vector<ProcessInfo> ProcessesIn(const std::string& cwd) {
  std::vector<ProcessInfo> found;
  DIR* proc = opendir("/proc");
  if (!proc) return found;
  const auto want = std::filesystem::weakly_canonical(cwd);
  while (dirent* entry = readdir(proc)) {
    const pid_t pid = std::atoi(entry->d_name);
    if (pid <= 0) continue;
    const std::string dir = std::string("/proc/") + entry->d_name;
    std::error_code ec;
    if (std::filesystem::read_symlink(dir + "/cwd", ec) != want || ec) continue;
    const auto exe = std::filesystem::read_symlink(dir + "/exe", ec);
    if (ec) continue;
    const std::string env = ReadText(dir + "/environ");
    const auto at = env.find("OMPI_COMM_WORLD_RANK=");
    found.push_back({pid, exe.string(), at == std::string::npos ? -1 : std::atoi(env.c_str() + at + 21)});
  }
  closedir(proc);
  std::sort(found.begin(), found.end(),
            [](const ProcessInfo& a, const ProcessInfo& b) { return a.rank < b.rank; });
  return found;
}

// The ranks of a job started in `cwd` running `exe`, sorted by rank.
inline std::vector<std::pair<int, pid_t>> RankProcesses(const std::string& exe,
                                                        const std::string& cwd) {
  std::vector<std::pair<int, pid_t>> ranks;
  for (const ProcessInfo& p : ProcessesIn(cwd))
    if (p.exe == exe && p.rank >= 0) ranks.emplace_back(p.rank, p.pid);
  return ranks;
}

// The mpirun (orterun) process of a job started in `cwd`, or -1.
inline pid_t MpirunIn(const std::string& cwd) {
  for (const ProcessInfo& p : ProcessesIn(cwd))
    if (p.exe.find("orterun") != std::string::npos || p.exe.find("mpirun") != std::string::npos ||
        p.exe.find("prterun") != std::string::npos)
      return p.pid;
  return -1;
}

inline Job::~Job() {
  if (pid_ <= 0) return;
  kill(-pid_, SIGKILL);
  if (!done_) waitpid(pid_, nullptr, 0);
  for (const ProcessInfo& p : ProcessesIn(dir_)) kill(p.pid, SIGKILL);
}

// The raw text of `key`'s value in a one-line JSON object ("" when absent): a number, or a
// string without its quotes.
inline std::string JsonField(const std::string& json, const std::string& key) {
  const std::string needle = "\"" + key + "\": ";
  const auto at = json.find(needle);
  if (at == std::string::npos) return "";
  size_t begin = at + needle.size();
  if (json[begin] == '"') {
    const auto end = json.find('"', begin + 1);
    return json.substr(begin + 1, end - begin - 1);
  }
  const auto end = json.find_first_of(",}", begin);
  return json.substr(begin, end - begin);
}

inline std::string LastLine(const std::string& text) {
  const auto lines = SplitLines(text);
  return lines.empty() ? "" : lines.back();
}

}  // namespace bilevel::testing

#endif  // BILEVEL_TESTS_PROCESS_UTIL_H_
