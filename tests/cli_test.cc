// The `bilevel` program end to end: the real binary under the real mpirun. Checks the JSON
// summary, the metrics stream, the HDF5 result file, rank independence, config files, the
// answer to bad input and the help text.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "generated_data.h"
#include "io/dataset.h"
#include "io/result_file.h"

namespace bilevel {
namespace {

namespace fs = std::filesystem;

constexpr const char* kExe = BILEVEL_EXE;
constexpr const char* kMpiexec = BILEVEL_MPIEXEC;

// ---------------------------------------------------------------------------------------------
// Running commands.

// Single-quotes `s` for /bin/sh.
std::string Quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'')
      out += "'\\''";
    else
      out += c;
  }
  return out + "'";
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  ASSERT_TRUE(out.good()) << "cannot write " << path;
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// The same environment CTest gives the test, for runs of the binary by hand; values already
// set win.
void EnsureMpiEnvironment() {
  static const bool done = [] {
    setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 0);
    setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 0);
    setenv("OMPI_MCA_rmaps_base_oversubscribe", "1", 0);
    setenv("OMPI_MCA_mpi_yield_when_idle", "1", 0);
    setenv("OMPI_MCA_btl_vader_single_copy_mechanism", "none", 0);
    setenv("OMP_NUM_THREADS", "1", 0);
    return true;
  }();
  (void)done;
}

// A fresh directory under /tmp, removed with everything in it at the end of its scope.
class TempDir {
 public:
  TempDir() {
    char name[] = "/tmp/bilevel_cli_test_XXXXXX";
    if (mkdtemp(name) == nullptr) {
      ADD_FAILURE() << "mkdtemp failed";
      return;
    }
    path_ = name;
  }
  ~TempDir() {
    std::error_code ignored;
    if (!path_.empty()) fs::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

struct CommandResult {
  int exit_code = -1;  // the shell's exit status; 124 when `timeout` ended the command
  std::string out, err;
  double wall_s = 0;

  // What to print when an assertion on this run fails.
  std::string Describe() const {
    std::ostringstream s;
    s << "exit " << exit_code << ", " << wall_s << " s\n--- stdout:\n"
      << out << "--- stderr:\n"
      << err;
    return s.str();
  }
};

// Runs `command` (a /bin/sh command line) in `dir` under `timeout 60`, stdout and stderr to
// files in `dir`.
CommandResult RunCommand(const TempDir& dir, const std::string& command) {
  EnsureMpiEnvironment();
  static int serial = 0;
  ++serial;
  const std::string out = dir.File("stdout." + std::to_string(serial));
  const std::string err = dir.File("stderr." + std::to_string(serial));
  const std::string line = "cd " + Quote(dir.path()) + " && timeout 60 " + command + " >" +
                           Quote(out) + " 2>" + Quote(err) + " </dev/null";
  CommandResult r;
  const auto start = std::chrono::steady_clock::now();
  const int status = std::system(line.c_str());
  r.wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (status != -1 && WIFEXITED(status)) r.exit_code = WEXITSTATUS(status);
  r.out = ReadFile(out);
  r.err = ReadFile(err);
  std::remove(out.c_str());
  std::remove(err.c_str());
  return r;
}

// `mpirun -np RANKS bilevel ARGS` (ARGS already quoted where needed).
CommandResult RunBilevel(const TempDir& dir, int ranks, const std::string& args) {
  return RunCommand(dir, std::string(kMpiexec) + " -np " + std::to_string(ranks) + " " +
                             Quote(kExe) + " " + args);
}

// The lines of stderr that the program wrote: drops blank lines and what mpirun adds (its
// notices come as blocks between lines of dashes, plus a few one-line forms).
std::vector<std::string> ProgramErrorLines(const std::string& err) {
  std::vector<std::string> kept;
  bool in_block = false;
  for (const std::string& line : Lines(err)) {
    if (line.rfind("---", 0) == 0) {
      in_block = !in_block;
      continue;
    }
    if (in_block) continue;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    if (line.find("mpirun") != std::string::npos || line.find("prterun") != std::string::npos ||
        line.find("Primary job") != std::string::npos || line.find("mpiexec") != std::string::npos)
      continue;
    kept.push_back(line);
  }
  return kept;
}

// ---------------------------------------------------------------------------------------------
// A flat, one-line JSON object: {"key": value, ...} with string, number, true/false/null values.

struct JsonValue {
  bool is_string = false;
  std::string text;  // the unescaped string, or the bare token of a number / literal
};
using JsonObject = std::map<std::string, JsonValue>;

std::optional<JsonObject> ParseFlatJson(const std::string& line) {
  size_t i = 0;
  const auto skip = [&] {
    while (i < line.size() && std::isspace(static_cast<unsigned char>(line[i]))) ++i;
  };
  const auto read_string = [&](std::string* out) {
    if (i >= line.size() || line[i] != '"') return false;
    for (++i; i < line.size(); ++i) {
      const char c = line[i];
      if (c == '"') {
        ++i;
        return true;
      }
      if (c == '\\') {
        if (++i >= line.size()) return false;
        const char e = line[i];
        *out += e == 'n' ? '\n' : e == 't' ? '\t' : e;  // enough for these files
      } else {
        *out += c;
      }
    }
    return false;
  };
  JsonObject object;
  skip();
  if (i >= line.size() || line[i++] != '{') return std::nullopt;
  skip();
  if (i < line.size() && line[i] == '}') {
    ++i;
    skip();
    if (i != line.size()) return std::nullopt;
    return object;
  }
  while (true) {
    skip();
    std::string key;
    if (!read_string(&key)) return std::nullopt;
    skip();
    if (i >= line.size() || line[i++] != ':') return std::nullopt;
    skip();
    JsonValue value;
    if (i < line.size() && line[i] == '"') {
      value.is_string = true;
      if (!read_string(&value.text)) return std::nullopt;
    } else {
      while (i < line.size() && line[i] != ',' && line[i] != '}' &&
             !std::isspace(static_cast<unsigned char>(line[i])))
        value.text += line[i++];
      if (value.text.empty()) return std::nullopt;
    }
    if (object.count(key)) return std::nullopt;  // duplicate key
    object[key] = value;
    skip();
    if (i >= line.size()) return std::nullopt;
    if (line[i] == ',') {
      ++i;
      continue;
    }
    if (line[i++] != '}') return std::nullopt;
    skip();
    if (i != line.size()) return std::nullopt;
    return object;
  }
}

// The number under `key`; NaN when it is missing, a string, null or not a number.
double Number(const JsonObject& o, const std::string& key) {
  const auto it = o.find(key);
  if (it == o.end() || it->second.is_string) return std::nan("");
  char* end = nullptr;
  const double v = std::strtod(it->second.text.c_str(), &end);
  return *end == '\0' ? v : std::nan("");
}

// The string under `key`; "<missing>" when there is none.
std::string String(const JsonObject& o, const std::string& key) {
  const auto it = o.find(key);
  if (it == o.end() || !it->second.is_string) return "<missing>";
  return it->second.text;
}

// The last non-blank line of a run's stdout as a JSON object; adds a failure when it is not one.
JsonObject Summary(const CommandResult& r) {
  std::string last;
  for (const std::string& line : Lines(r.out))
    if (line.find_first_not_of(" \t\r") != std::string::npos) last = line;
  const std::optional<JsonObject> o = ParseFlatJson(last);
  if (!o) {
    ADD_FAILURE() << "last line of stdout is not a flat JSON object: '" << last << "'\n"
                  << r.Describe();
    return {};
  }
  return *o;
}

TEST(CliJsonHelper, ParsesFlatObjects) {
  const auto o = ParseFlatJson(R"({"a": 1, "b": -2.5e-3, "s": "x \"y\"", "n": null})");
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(Number(*o, "a"), 1);
  EXPECT_EQ(Number(*o, "b"), -2.5e-3);
  EXPECT_EQ(String(*o, "s"), "x \"y\"");
  EXPECT_TRUE(std::isnan(Number(*o, "n")));
  EXPECT_TRUE(std::isnan(Number(*o, "s")));
  EXPECT_TRUE(std::isnan(Number(*o, "missing")));
  EXPECT_FALSE(ParseFlatJson("iter 1/1 time 0.1s").has_value());
  EXPECT_FALSE(ParseFlatJson(R"({"a": 1)").has_value());
  EXPECT_FALSE(ParseFlatJson(R"({"a": 1} trailing)").has_value());
}

TEST(CliStderrHelper, DropsWhatMpirunAdds) {
  // As Open MPI 4.1's mpirun writes it after a rank exits with a non-zero status.
  const std::string err =
      "bilevel solve: error: option --algorithm: 'foo' is not one of: aid-cg, stocbio\n"
      "--------------------------------------------------------------------------\n"
      "Primary job  terminated normally, but 1 process returned\n"
      "a non-zero exit code. Per user-direction, the job has been aborted.\n"
      "--------------------------------------------------------------------------\n"
      "--------------------------------------------------------------------------\n"
      "mpirun detected that one or more processes exited with non-zero status, thus causing\n"
      "the job to be terminated. The first process to do so was:\n"
      "\n"
      "  Process name: [[30996,1],1]\n"
      "  Exit code:    2\n"
      "--------------------------------------------------------------------------\n";
  EXPECT_EQ(ProgramErrorLines(err),
            std::vector<std::string>{
                "bilevel solve: error: option --algorithm: 'foo' is not one of: aid-cg, stocbio"});
  EXPECT_EQ(ProgramErrorLines("a\n\nb\n").size(), 2u);
}

// ---------------------------------------------------------------------------------------------
// Successful runs.

TEST(CliSolve, AidCgHypergradientIsAccurateAndSummaryIsComplete) {
  TempDir dir;
  const CommandResult r =
      RunBilevel(dir, 2,
                 "solve --problem quadratic --algorithm aid-cg --outer-iters 1 --inner-steps 3000 "
                 "--hessian-steps 300 --eval-every 1");
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  const JsonObject s = Summary(r);
  EXPECT_LE(Number(s, "hypergrad_rel_error"), 1e-8) << r.out;
  EXPECT_EQ(String(s, "termination"), "max_iters");
  EXPECT_EQ(String(s, "algorithm"), "aid-cg");
  EXPECT_EQ(String(s, "problem"), "quadratic");
  EXPECT_EQ(Number(s, "ranks"), 2);
  EXPECT_EQ(Number(s, "iter"), 1);
  EXPECT_EQ(Number(s, "iterations"), 1);
  for (const char* key :
       {"iter", "time_s", "outer_loss", "hypergrad_norm", "grad_f", "grad_g", "hvp", "jvp",
        "allreduce_calls", "allreduce_bytes", "true_hypergrad_norm", "inner_rel_error", "wall_s"}) {
    const double v = Number(s, key);
    EXPECT_TRUE(std::isfinite(v)) << "key " << key << " missing or not a finite number in\n"
                                  << r.out;
    EXPECT_GE(v, 0) << key;
  }
}

TEST(CliSolve, MetricsFileHasOneLinePerEvaluation) {
  TempDir dir;
  const std::string metrics = dir.File("metrics.jsonl");
  const CommandResult r =
      RunBilevel(dir, 2, "solve -q --outer-iters 30 --eval-every 10 --metrics " + Quote(metrics));
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  const std::vector<std::string> lines = Lines(ReadFile(metrics));
  ASSERT_EQ(lines.size(), 3u) << ReadFile(metrics);
  double grad_g = -1, allreduce_calls = -1;
  for (size_t k = 0; k < lines.size(); ++k) {
    const std::optional<JsonObject> o = ParseFlatJson(lines[k]);
    ASSERT_TRUE(o.has_value()) << "line " << k + 1 << " is not a JSON object: " << lines[k];
    EXPECT_EQ(Number(*o, "iter"), 10.0 * (k + 1)) << lines[k];
    const double g = Number(*o, "grad_g"), calls = Number(*o, "allreduce_calls");
    ASSERT_TRUE(std::isfinite(g) && std::isfinite(calls)) << lines[k];
    EXPECT_GE(g, grad_g) << "grad_g decreased at line " << k + 1;
    EXPECT_GE(calls, allreduce_calls) << "allreduce_calls decreased at line " << k + 1;
    grad_g = g, allreduce_calls = calls;
  }
  // The summary repeats the last evaluation.
  const JsonObject s = Summary(r);
  EXPECT_EQ(Number(s, "iter"), 30);
  EXPECT_EQ(Number(s, "grad_g"), grad_g);
}

TEST(CliSolve, OutputFileHoldsTheFinalIterate) {
  TempDir dir;
  const std::string output = dir.File("result.h5");
  const CommandResult r = RunBilevel(dir, 2,
                                     "solve -q --algorithm itd --outer-iters 12 --dim-outer 7 "
                                     "--dim-inner 9 --samples 100 --output " +
                                         Quote(output));
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  ASSERT_TRUE(fs::exists(output)) << r.Describe();

  io::RunResult result;
  try {
    result = io::ReadResult(output);
  } catch (const std::exception& e) {
    FAIL() << "ReadResult: " << e.what();
  }
  EXPECT_EQ(result.x.size(), 7);
  EXPECT_EQ(result.y.size(), 9);
  EXPECT_TRUE(result.x.allFinite());
  EXPECT_TRUE(result.y.allFinite());
  EXPECT_EQ(result.algorithm, "itd");
  EXPECT_EQ(result.problem, "quadratic");
  EXPECT_EQ(result.termination, "max_iters");
  EXPECT_EQ(result.iterations, 12);
  EXPECT_EQ(result.ranks, 2);

  // Written through a temporary file that was renamed: nothing else is left behind.
  for (const auto& entry : fs::directory_iterator(dir.path())) {
    const std::string name = entry.path().filename().string();
    EXPECT_TRUE(name == "result.h5" || name.rfind("stdout.", 0) == 0 ||
                name.rfind("stderr.", 0) == 0)
        << "unexpected file left in the output directory: " << name;
  }

  const CommandResult dump = RunCommand(dir, "h5dump -H " + Quote(output));
  EXPECT_EQ(dump.exit_code, 0) << dump.Describe();
  EXPECT_NE(dump.out.find("DATASET \"x\""), std::string::npos) << dump.out;
  EXPECT_NE(dump.out.find("DATASET \"y\""), std::string::npos) << dump.out;
}

// A sparse split of `rows` rows over d features in which feature j of the file is column
// rename[j]: the same rows whatever the naming. Feature j lies in `counts[j]` consecutive rows
// (cyclically, from row 7 j), with values that depend on the row and the feature only.
io::SplitShard RenamedSplit(Index rows, const std::vector<int>& counts,
                            const std::vector<int>& rename, int classes) {
  const Index d = static_cast<Index>(counts.size());
  io::SplitShard s;
  s.csr = true;
  s.indptr.push_back(0);
  for (Index i = 0; i < rows; ++i) {
    std::vector<std::pair<int, float>> row;
    for (Index j = 0; j < d; ++j) {
      if ((i - 7 * j % rows + rows) % rows < counts[j])
        row.emplace_back(rename[j], 0.1f + 0.9f * static_cast<float>((i * 13 + j * 7) % 17) / 17);
    }
    std::sort(row.begin(), row.end());
    for (const auto& [column, value] : row) s.indices.push_back(column), s.data.push_back(value);
    s.indptr.push_back(static_cast<std::int64_t>(s.indices.size()));
    s.labels.push_back(static_cast<int>((i * 5 + 3) % classes));
  }
  s.begin = 0;
  s.end = rows;
  return s;
}

// l2reg keeps the features of a sparse file in the order of their train counts: two files
// that differ only in the numbering of the features (distinct train counts: the same order
// inside) give the same run, and --output writes x and W in each file's own numbering. A
// feature that no train row holds (feature 4, in val and test rows) is left out of W inside;
// the output has it, with lambda and W's row 0.
TEST(CliSolve, L2RegOutputIsInTheFilesNumberingOfFeatures) {
  TempDir dir;
  const int d = 11, classes = 3, lacking = 4;
  std::vector<int> train_counts(d), other_counts(d), identity(d), rename(d);
  for (int j = 0; j < d; ++j) {
    train_counts[j] = j == lacking ? 0 : 2 + 2 * j;  // distinct: feature 10 comes first inside
    other_counts[j] = 3 + (j * 7) % 10;               // val and test
    identity[j] = j;
    rename[j] = (3 * j + 1) % d;  // a permutation, not its own inverse
  }
  io::RunResult results[2];
  for (int k = 0; k < 2; ++k) {
    const std::vector<int>& names = k == 0 ? identity : rename;
    io::Dataset data = testing::GeneratedDataset(d, classes, "csr");
    data.train = RenamedSplit(30, train_counts, names, classes);
    data.val = RenamedSplit(16, other_counts, names, classes);
    data.test = RenamedSplit(12, other_counts, names, classes);
    const std::string file = dir.File("data" + std::to_string(k) + ".h5");
    io::WriteDataset(file, data);
    const std::string output = dir.File("result" + std::to_string(k) + ".h5");
    const CommandResult r = RunBilevel(
        dir, 1 + k,
        "solve -q --problem l2reg --data " + Quote(file) +
            " --algorithm stocbio --batch-size 8 --outer-iters 6 --output " + Quote(output));
    ASSERT_EQ(r.exit_code, 0) << r.Describe();
    results[k] = io::ReadResult(output);
    ASSERT_EQ(results[k].x.size(), d);
    ASSERT_EQ(results[k].y.size(), d * classes);
  }
  for (int j = 0; j < d; ++j) {
    const int r = rename[j];
    if (j == lacking) {
      EXPECT_EQ(results[0].x[j], 0.0);
      EXPECT_EQ(results[1].x[r], 0.0);
      EXPECT_EQ(results[0].y.segment(j * classes, classes).norm(), 0.0);
      EXPECT_EQ(results[1].y.segment(r * classes, classes).norm(), 0.0);
      continue;
    }
    // x moved: a lambda that stayed at 0 would match whatever the order.
    EXPECT_GT(std::abs(results[0].x[j]), 0.0) << "feature " << j;
    EXPECT_NEAR(results[1].x[r], results[0].x[j], 1e-10 * std::abs(results[0].x[j]))
        << "lambda of feature " << j << " (" << r << " in the renamed file)";
    EXPECT_LE((results[1].y.segment(r * classes, classes) -
               results[0].y.segment(j * classes, classes)).norm(),
              1e-10 * results[0].y.segment(j * classes, classes).norm() + 1e-300)
        << "W's row of feature " << j << " (" << r << " in the renamed file)";
  }
}

class CliRankIndependence : public ::testing::TestWithParam<const char*> {};

// The same run on 1 and on 3 ranks ends at the same x (and y).
TEST_P(CliRankIndependence, OneAndThreeRanksGiveTheSameIterate) {
  TempDir dir;
  io::RunResult results[2];
  const int ranks[2] = {1, 3};
  for (int k = 0; k < 2; ++k) {
    const std::string output = dir.File("np" + std::to_string(ranks[k]) + ".h5");
    const CommandResult r = RunBilevel(dir, ranks[k],
                                       std::string("solve -q --outer-iters 20 --algorithm ") +
                                           GetParam() + " --output " + Quote(output));
    ASSERT_EQ(r.exit_code, 0) << r.Describe();
    EXPECT_EQ(Number(Summary(r), "ranks"), ranks[k]);
    try {
      results[k] = io::ReadResult(output);
    } catch (const std::exception& e) {
      FAIL() << "ReadResult: " << e.what();
    }
    EXPECT_EQ(results[k].ranks, ranks[k]);
  }
  const Vec& a = results[0].x;
  const Vec& b = results[1].x;
  ASSERT_EQ(a.size(), b.size());
  ASSERT_GT(a.size(), 0);
  for (Index i = 0; i < a.size(); ++i) {
    const double scale = std::max({std::abs(a[i]), std::abs(b[i]), 1e-300});
    EXPECT_LE(std::abs(a[i] - b[i]), 1e-10 * scale)
        << "x[" << i << "]: " << a[i] << " on 1 rank, " << b[i] << " on 3 ranks";
  }
  ASSERT_EQ(results[0].y.size(), results[1].y.size());
  EXPECT_LE((results[0].y - results[1].y).norm(), 1e-10 * results[0].y.norm());
}

INSTANTIATE_TEST_SUITE_P(Algorithms, CliRankIndependence, ::testing::Values("stocbio", "aid-cg"),
                         [](const ::testing::TestParamInfo<const char*>& info) {
                           std::string name = info.param;
                           std::replace(name.begin(), name.end(), '-', '_');
                           return name;
                         });

TEST(CliSolve, ConfigFileSetsOptionsAndCommandLineWins) {
  TempDir dir;
  const std::string config = dir.File("run.ini");
  WriteFile(config, "# a run\nalgorithm = stocbio\nouter-iters = 5\n");

  const CommandResult from_file = RunBilevel(dir, 2, "solve -q --config " + Quote(config));
  ASSERT_EQ(from_file.exit_code, 0) << from_file.Describe();
  const JsonObject a = Summary(from_file);
  EXPECT_EQ(String(a, "algorithm"), "stocbio");
  EXPECT_EQ(Number(a, "iterations"), 5);

  const CommandResult overridden =
      RunBilevel(dir, 2, "solve -q --config " + Quote(config) + " --outer-iters 3");
  ASSERT_EQ(overridden.exit_code, 0) << overridden.Describe();
  const JsonObject b = Summary(overridden);
  EXPECT_EQ(String(b, "algorithm"), "stocbio");
  EXPECT_EQ(Number(b, "iterations"), 3);
}

TEST(CliSolve, MaxTimeStopsTheRun) {
  TempDir dir;
  const CommandResult r =
      RunBilevel(dir, 2, "solve -q --max-time 0.2 --outer-iters 100000000 --algorithm aid-cg");
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  EXPECT_LT(r.wall_s, 20) << r.Describe();
  const JsonObject s = Summary(r);
  EXPECT_EQ(String(s, "termination"), "max_time") << r.out;
  EXPECT_GT(Number(s, "iterations"), 0);
  EXPECT_LT(Number(s, "iterations"), 100000000);
  EXPECT_EQ(Number(s, "iter"), Number(s, "iterations")) << "the last iteration is evaluated";
  EXPECT_GE(Number(s, "time_s"), 0.2);
}

// ---------------------------------------------------------------------------------------------
// Bad input: exit status 2, one line on stderr naming the option, nothing on stdout.

struct BadInput {
  const char* name;
  std::string args;                   // after `solve`; "{dir}" is the test's directory
  std::string config;                 // written to {dir}/bad.ini when not empty
  std::vector<std::string> mentions;  // "{dir}" as in args
};

// For gtest's messages: the case's name rather than its bytes.
void PrintTo(const BadInput& c, std::ostream* os) { *os << c.name << " (solve " << c.args << ")"; }

std::string Expand(std::string text, const std::string& dir) {
  for (size_t at; (at = text.find("{dir}")) != std::string::npos;) text.replace(at, 5, dir);
  return text;
}

class CliBadInput : public ::testing::TestWithParam<BadInput> {};

TEST_P(CliBadInput, ExitsWithStatus2AndOneLineNamingTheOption) {
  const BadInput& c = GetParam();
  TempDir dir;
  if (!c.config.empty()) WriteFile(dir.File("bad.ini"), c.config);
  const CommandResult r = RunBilevel(dir, 2, "solve " + Expand(c.args, dir.path()));
  EXPECT_EQ(r.exit_code, 2) << r.Describe();
  EXPECT_LT(r.wall_s, 20) << r.Describe();
  EXPECT_EQ(r.out, "") << "no summary on failure\n" << r.Describe();
  const std::vector<std::string> lines = ProgramErrorLines(r.err);
  ASSERT_EQ(lines.size(), 1u) << r.Describe();
  const std::string& line = lines[0];
  EXPECT_EQ(line.rfind("bilevel solve: error:", 0), 0u) << line;
  for (const std::string& m : c.mentions) {
    const std::string want = Expand(m, dir.path());
    EXPECT_NE(line.find(want), std::string::npos) << "'" << want << "' not in: " << line;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Options, CliBadInput,
    ::testing::Values(
        BadInput{"UnknownAlgorithm", "--algorithm foo", "", {"--algorithm", "aid-cg", "stocbio"}},
        BadInput{"NegativeInnerLr", "--inner-lr -1", "", {"--inner-lr"}},
        BadInput{"NegativeOuterLr", "--outer-lr -0.5", "", {"--outer-lr"}},
        BadInput{"ZeroBatchSize", "--batch-size 0", "", {"--batch-size"}},
        BadInput{"NegativeOuterBatchSize", "--outer-batch-size -1", "",
                 {"--outer-batch-size", ">= 0", "'auto'"}},
        BadInput{"ZeroInnerSteps", "--inner-steps 0", "", {"--inner-steps", "'auto'"}},
        BadInput{"NonNumericInnerSteps", "--inner-steps ten", "", {"--inner-steps", "ten"}},
        BadInput{"MissingConfigFile",
                 "--config /nonexistent/x.ini",
                 "",
                 {"--config", "/nonexistent/x.ini"}},
        BadInput{"UnknownOption", "--no-such-option 3", "", {"--no-such-option"}},
        BadInput{"NonNumericOuterIters", "--outer-iters abc", "", {"outer-iters"}},
        BadInput{"UnknownConfigKey",
                 "--config {dir}/bad.ini",
                 "outer-iters = 2\ncolour = red\n",
                 {"{dir}/bad.ini", "colour"}},
        BadInput{"UnknownProblem", "--problem nope", "", {"--problem", "quadratic"}}),
    [](const ::testing::TestParamInfo<BadInput>& info) { return std::string(info.param.name); });

// ---------------------------------------------------------------------------------------------
// Help.

// The whitespace-separated words of `line`.
std::vector<std::string> Words(const std::string& line) {
  std::vector<std::string> words;
  std::istringstream in(line);
  for (std::string w; in >> w;) words.push_back(w);
  return words;
}

// Checks that `help` lists every option of solve, with its default where it has one.
void ExpectCompleteHelp(const std::string& help) {
  const std::vector<std::string> lines = Lines(help);
  const auto line_of = [&](const std::string& option) -> std::optional<std::string> {
    for (const std::string& line : lines) {
      const std::vector<std::string> w = Words(line);
      if (std::find(w.begin(), w.end(), option) != w.end()) return line;
    }
    return std::nullopt;
  };
  for (const char* option :
       {"--algorithm", "--outer-iters", "--inner-steps", "--hessian-steps", "--inner-lr",
        "--outer-lr", "--eta", "--batch-size", "--seed", "--eval-every", "--max-time",
        "--dim-outer", "--dim-inner", "--samples", "--kappa", "--problem"}) {
    const std::optional<std::string> line = line_of(option);
    ASSERT_TRUE(line.has_value()) << option << " missing from the help:\n" << help;
    EXPECT_NE(line->find("(="), std::string::npos) << option << " shows no default: " << *line;
  }
  for (const char* option : {"--metrics", "--config", "--output"})
    EXPECT_TRUE(line_of(option).has_value()) << option << " missing from the help:\n" << help;
  EXPECT_NE(line_of("--outer-iters")->find("(=100)"), std::string::npos);
  EXPECT_NE(line_of("--algorithm")->find("(=aid-cg)"), std::string::npos);
}

TEST(CliHelp, TopLevelHelpListsEveryOption) {
  TempDir dir;
  const CommandResult r = RunCommand(dir, Quote(kExe) + " --help");
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  EXPECT_NE(r.out.find("solve"), std::string::npos);
  ExpectCompleteHelp(r.out);
}

TEST(CliHelp, SolveHelpListsEveryOption) {
  TempDir dir;
  const CommandResult r = RunCommand(dir, Quote(kExe) + " solve --help");
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  ExpectCompleteHelp(r.out);
}

}  // namespace
}  // namespace bilevel
