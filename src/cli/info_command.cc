#include "cli/info_command.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "io/checkpoint.h"
#include "io/dataset.h"
#include "io/result_file.h"

namespace bilevel::cli {

namespace {

constexpr int kUsageExit = 2;
constexpr int kErrorExit = 1;

const char kInfoUsage[] =
    "Usage: bilevel info FILE...\n\n"
    "Describes each FILE, told apart by its contents:\n"
    "  a dataset (bilevel convert)   storage, features, classes; per split the rows, stored\n"
    "                                entries, density and label counts; the label corruption\n"
    "  a checkpoint (--checkpoint)   iteration, problem, algorithm, ranks, every option, the\n"
    "                                problem's identity, the saved state, oracle and\n"
    "                                communication counters, the metrics so far\n"
    "  a result file (--output)      problem, algorithm, termination, iterations, x and y\n"
    "Exit status: 0 every file described, 1 a file could not be read, 2 bad arguments.\n";

std::string Fmt(const char* format, double v) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), format, v);
  return buf;
}

std::string G(double v) { return Fmt("%.6g", v); }

std::string Int(std::int64_t v) { return std::to_string(v); }

// --- datasets -------------------------------------------------------------------------------

struct SplitSummary {
  io::SplitInfo info;
  std::vector<std::int64_t> label_counts;  // by class
  std::int64_t stored = 0;                 // stored feature entries
  std::int64_t nonzero = 0;                // of them, nonzero
  std::int64_t corrupted = 0;              // labels that differ from clean_labels
};

SplitSummary SummarizeSplit(const std::string& path, const std::string& split,
                            const io::DatasetInfo& info) {
  SplitSummary s;
  s.info = info.ForSplit(split);
  s.label_counts.assign(std::max<Index>(info.attributes.num_classes, 0), 0);
  const Index d = std::max<Index>(info.attributes.num_features, 1);
  // Blocks of about 8M feature values, so that any file is read in bounded memory.
  const Index block = std::max<Index>(1, std::min<Index>(65536, (Index{1} << 23) / d));
  for (Index begin = 0; begin < s.info.rows; begin += block) {
    const Index end = std::min(s.info.rows, begin + block);
    const io::SplitShard shard = io::ReadSplitShard(path, split, begin, end);
    for (size_t i = 0; i < shard.labels.size(); ++i) {
      const std::int32_t label = shard.labels[i];
      if (label >= 0 && static_cast<size_t>(label) < s.label_counts.size())
        ++s.label_counts[label];
      if (!shard.clean_labels.empty() && shard.clean_labels[i] != label) ++s.corrupted;
    }
    if (shard.csr) {
      s.stored += static_cast<std::int64_t>(shard.data.size());
      for (float v : shard.data) s.nonzero += v != 0.0f;
    } else {
      s.stored += static_cast<std::int64_t>(shard.features.size());
      s.nonzero += static_cast<std::int64_t>((shard.features.array() != 0.0f).count());
    }
  }
  return s;
}

std::string LabelCounts(const std::vector<std::int64_t>& counts, Index rows) {
  std::string out;
  const size_t shown = std::min<size_t>(counts.size(), 12);
  for (size_t k = 0; k < shown; ++k) {
    out += (k ? ", " : "") + std::to_string(k) + ": " + Int(counts[k]);
    if (rows > 0) out += Fmt(" (%.1f%%)", 100.0 * counts[k] / rows);
  }
  if (counts.size() > shown) out += ", ... (" + std::to_string(counts.size() - shown) + " more)";
  return out;
}

std::string DescribeDataset(const std::string& path, const io::DatasetInfo& info) {
  const io::DatasetAttributes& a = info.attributes;
  std::string out = path + ": bilevel dataset (format " + std::to_string(info.format_version) +
                    "), " + a.storage + " storage, " + Int(a.num_features) + " features, " +
                    Int(a.num_classes) + " classes\n";
  if (!a.sources.empty()) out += "  sources: " + a.sources + "\n";
  if (!a.source_sha256.empty()) out += "  source sha256: " + a.source_sha256 + "\n";
  char row[160];
  std::snprintf(row, sizeof(row), "  %-6s %10s %12s %12s %10s  %s\n", "split", "rows", "stored",
                "nonzero", "density", "labels (class: count)");
  out += row;
  std::int64_t corrupted = 0, train_rows = 0;
  bool has_clean = false;
  for (const std::string& split : io::SplitNames()) {
    const SplitSummary s = SummarizeSplit(path, split, info);
    const double cells = static_cast<double>(s.info.rows) * static_cast<double>(a.num_features);
    const std::string density = cells > 0 ? Fmt("%.4g", s.nonzero / cells) : "-";
    std::snprintf(row, sizeof(row), "  %-6s %10lld %12lld %12lld %10s  ", split.c_str(),
                  static_cast<long long>(s.info.rows), static_cast<long long>(s.stored),
                  static_cast<long long>(s.nonzero), density.c_str());
    out += row + LabelCounts(s.label_counts, s.info.rows) + "\n";
    if (split == "train") {
      has_clean = s.info.has_clean_labels;
      corrupted = s.corrupted;
      train_rows = s.info.rows;
    }
  }
  out += "  shapes: features [rows x " + Int(a.num_features) + "]" +
         (info.csr() ? " as CSR (indptr, indices, data)" : " dense float32") +
         ", labels int32 [rows]\n";
  if (a.corruption_rate > 0 || has_clean) {
    out += "  label corruption: rate " + G(a.corruption_rate) + " (seed " +
           Int(a.corruption_seed) + ")";
    if (has_clean)
      out += "; " + Int(corrupted) + " of " + Int(train_rows) +
             " train labels differ from the clean labels (" +
             Fmt("%.4g", train_rows > 0 ? static_cast<double>(corrupted) / train_rows : 0.0) + ")";
    out += "\n";
  } else {
    out += "  label corruption: none\n";
  }
  if (a.split_seed != 0) out += "  split seed: " + Int(a.split_seed) + "\n";
  return out;
}

// --- checkpoints ----------------------------------------------------------------------------

// The members of a one-line JSON object with flat values (the metrics records), in order, as
// display text: numbers as written, strings without quotes, null as "null".
std::vector<std::pair<std::string, std::string>> FlatJson(const std::string& json) {
  std::vector<std::pair<std::string, std::string>> out;
  size_t i = json.find('{');
  if (i == std::string::npos) return out;
  ++i;
  auto skip = [&] {
    while (i < json.size() && (json[i] == ' ' || json[i] == ',' || json[i] == '\n')) ++i;
  };
  auto string_at = [&](std::string* s) {
    if (i >= json.size() || json[i] != '"') return false;
    ++i;
    while (i < json.size() && json[i] != '"') {
      if (json[i] == '\\' && i + 1 < json.size()) ++i;
      *s += json[i++];
    }
    ++i;
    return true;
  };
  while (true) {
    skip();
    std::string key, value;
    if (!string_at(&key)) break;
    while (i < json.size() && (json[i] == ' ' || json[i] == ':')) ++i;
    if (i < json.size() && json[i] == '"') {
      string_at(&value);
    } else {
      const size_t end = json.find_first_of(",}", i);
      if (end == std::string::npos) break;
      value = json.substr(i, end - i);
      i = end;
    }
    out.emplace_back(key, value);
  }
  return out;
}

std::string Shapes(const NamedVectors& vectors) {
  if (vectors.empty()) return "none";
  std::string out;
  for (size_t k = 0; k < vectors.size(); ++k)
    out += (k ? ", " : "") + vectors[k].first + " [" + Int(vectors[k].second.size()) + "]";
  return out;
}

// A stored value for display: doubles written with 17 digits are shown with 6.
std::string Short(const std::string& value) {
  if (value.find_first_of(".eE") == std::string::npos) return value;
  char* end = nullptr;
  const double v = std::strtod(value.c_str(), &end);
  if (value.empty() || *end != '\0') return value;
  return G(v);
}

std::string Pairs(const io::StringPairs& pairs, const std::string& indent) {
  std::string out, line = indent;
  for (const auto& [key, value] : pairs) {
    const std::string item = key + "=" + Short(value);
    if (line.size() > indent.size() && line.size() + 1 + item.size() > 96) {
      out += line + "\n";
      line = indent;
    }
    line += (line.size() > indent.size() ? " " : "") + item;
  }
  if (line.size() > indent.size()) out += line + "\n";
  return out;
}

std::string DescribeCheckpoint(const std::string& path, const io::Checkpoint& c) {
  std::string total;
  for (const auto& [key, value] : c.options)
    if (key == "outer-iters") total = value;
  std::string out = path + ": bilevel checkpoint after " + Int(c.state.iteration) +
                    (total.empty() ? "" : " of " + total) + " outer iterations\n";
  out += "  problem " + c.problem + ", algorithm " + c.algorithm + ", written by a run on " +
         Int(c.ranks) + (c.ranks == 1 ? " rank" : " ranks") + ", solver time " +
         G(c.state.solve_s) + " s\n";
  out += "  options:\n" + Pairs(c.options, "    ");
  out += "  problem identity:\n" + Pairs(c.identity, "    ");
  out += "  state: x [" + Int(c.state.x.size()) + "]; algorithm " + Shapes(c.state.algorithm) +
         "; optimizer " + Shapes(c.state.optimizer) + "; sampler " +
         (c.state.sampler.empty() ? "none" : "saved") + "\n";
  const OracleCounts& n = c.state.oracles;
  out += "  oracle samples (calls): grad_f " + Int(n.grad_f) + " (" + Int(n.grad_f_calls) +
         "), grad_g " + Int(n.grad_g) + " (" + Int(n.grad_g_calls) + "), hvp " + Int(n.hvp) +
         " (" + Int(n.hvp_calls) + "), jvp " + Int(n.jvp) + " (" + Int(n.jvp_calls) + ")\n";
  const CommStats& m = c.state.comm;
  out += "  communication (calls, bytes): allreduce " + Int(m.allreduce_calls) + ", " +
         Int(m.allreduce_bytes) + "; reduce " + Int(m.reduce_calls) + ", " +
         Int(m.reduce_bytes) + "; broadcast " + Int(m.broadcast_calls) + ", " +
         Int(m.broadcast_bytes) + "; reduce-scatter " + Int(m.reduce_scatter_calls) + ", " +
         Int(m.reduce_scatter_bytes) + "; allgather " + Int(m.allgather_calls) + ", " +
         Int(m.allgather_bytes) + "\n";
  const auto metrics = FlatJson(c.last_metrics);
  if (metrics.empty()) {
    out += "  metrics so far: none\n";
  } else {
    io::StringPairs shown;
    for (const auto& [key, value] : metrics) shown.emplace_back(key, value);
    out += "  metrics so far (the latest evaluation):\n" + Pairs(shown, "    ");
  }
  out += "  resume: mpirun -np RANKS bilevel solve --resume " + path +
         " with the same problem and algorithm options\n";
  return out;
}

std::string DescribeResult(const std::string& path, const io::RunResult& r) {
  return path + ": bilevel result: problem " + r.problem + ", algorithm " + r.algorithm +
         ", termination " + r.termination + " after " + Int(r.iterations) +
         " iterations on " + Int(r.ranks) + (r.ranks == 1 ? " rank" : " ranks") + "\n  x [" +
         Int(r.x.size()) + "], |x| = " + G(r.x.norm()) + "; y [" + Int(r.y.size()) +
         "], |y| = " + G(r.y.norm()) + "\n";
}

}  // namespace

std::string DescribeFile(const std::string& path) {
  {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw io::IoError(path + ": cannot open for reading");
  }
  // A checkpoint names itself (attribute kind); a dataset has its splits; a result its x.
  try {
    return DescribeCheckpoint(path, io::ReadCheckpoint(path));
  } catch (const io::IoError& e) {
    if (std::string(e.what()).find("not a bilevel checkpoint") == std::string::npos) throw;
  }
  std::string as_dataset;
  try {
    const io::DatasetInfo info = io::ReadDatasetInfo(path);
    return DescribeDataset(path, info);
  } catch (const std::exception& e) {
    as_dataset = e.what();
  }
  try {
    return DescribeResult(path, io::ReadResult(path));
  } catch (const std::exception&) {
  }
  throw io::IoError(path + ": not a bilevel dataset, checkpoint or result file (as a dataset: " +
                    as_dataset + ")");
}

namespace {

// `bilevel info` on this process: the exit code; errors get one line on stderr each.
int RunInfo(const std::vector<std::string>& args) {
  std::vector<std::string> files;
  for (const std::string& a : args) {
    if (a == "--help" || a == "-h") {
      std::cout << kInfoUsage << std::flush;
      return 0;
    }
    if (a.size() > 1 && a[0] == '-') {
      std::fprintf(stderr, "bilevel info: error: unknown option '%s'; 'bilevel info --help'\n",
                   a.c_str());
      return kUsageExit;
    }
    files.push_back(a);
  }
  if (files.empty()) {
    std::cerr << kInfoUsage << std::flush;
    return kUsageExit;
  }
  int code = 0;
  for (size_t k = 0; k < files.size(); ++k) {
    try {
      const std::string text = DescribeFile(files[k]);
      std::cout << (k ? "\n" : "") << text << std::flush;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "bilevel info: error: %s\n", e.what());
      code = kErrorExit;
    }
  }
  return code;
}

}  // namespace

int Info(const std::vector<std::string>& args, Communicator& comm) {
  int code = 0;
  if (comm.rank() == 0) code = RunInfo(args);
  std::fflush(stderr);
  // The other ranks wait here for rank 0's outcome.
  Vec shared = Vec::Zero(1);
  shared[0] = code;
  comm.AllreduceSum(shared);
  return static_cast<int>(shared[0]);
}

}  // namespace bilevel::cli
