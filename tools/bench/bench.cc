// bilevel_bench: the speed benchmark (tools/bench.sh runs it). Under mpirun with P ranks it
// measures, on one rank (a SplitFirst(1) sub-communicator; the other ranks wait) and on 2..P:
//  1. the STREAM triad bandwidth, rank 0 alone and all ranks at once: the ceiling;
//  2. every oracle of hyperclean (MNIST) and l2reg (20 Newsgroups) on one rank, at the
//     algorithms' minibatch sizes and at full batch: median time per call, the least bytes the
//     call must move (oracle_traffic.h), GB/s and the fraction of the one-core STREAM rate;
//  3. seconds per outer iteration of reference runs on one rank, next to PyTorch's (1 thread);
//  4. their allreduces per outer iteration, next to the minimum each algorithm's header states;
//  5. seconds per outer iteration on 1..P ranks: speedup and parallel efficiency.
// Rank 0 prints each section's table on stdout as it is measured and writes everything to the
// --json file at the end.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <exception>
#include <fstream>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "bench/oracle_traffic.h"
#include "bench/stream.h"
#include "bilevel/algorithm.h"
#include "bilevel/metrics.h"
#include "bilevel/mpi_communicator.h"
#include "bilevel/oracles.h"
#include "bilevel/sampler.h"
#include "bilevel/solver.h"
#include "bilevel/version.h"
#include "io/dataset.h"
#include "io/io_error.h"
#include "problems/hyperclean.h"
#include "problems/l2reg.h"
#include "problems/softmax_rows.h"

namespace bilevel::bench {
namespace {

using Clock = std::chrono::steady_clock;

constexpr std::size_t kStreamElements = 10'000'000;  // 80 MB per array, far beyond any cache
constexpr std::uint64_t kSeed = 1;                    // of the random y, v and minibatches

constexpr const char kUsage[] =
    "Usage: mpirun -np P bilevel_bench [--mnist FILE.h5] [--news20 FILE.h5] [options]\n"
    "\n"
    "Measures STREAM bandwidth, the oracles of hyperclean (--mnist: a file of 'bilevel convert\n"
    "idx') and l2reg (--news20: a file of 'bilevel convert libsvm') on one rank, seconds per\n"
    "outer iteration of reference runs against PyTorch, their communication, and the scaling\n"
    "to 2..P ranks. A problem whose file is not given is skipped.\n"
    "\n"
    "Options:\n"
    "  --mnist FILE     hyperclean's dataset (MNIST, 50% noisy labels)\n"
    "  --news20 FILE    l2reg's dataset (20 Newsgroups)\n"
    "  --json FILE      write every result as one JSON object\n"
    "  --min-time S     seconds of calls per oracle measurement (0.3)\n"
    "  --iters K        outer iterations timed per run, after 2 warm-up ones (10)\n"
    "  --quick          one repetition of everything (CI): overrides --min-time and --iters\n"
    "  --help           print this help\n";

class UsageError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

struct BenchOptions {
  std::string mnist, news20, json;
  double min_time = 0.3;  // seconds of calls per oracle measurement
  int min_calls = 5;      // calls per oracle measurement, at least
  int iters = 10;         // outer iterations timed per run
  int warmup = 2;         // outer iterations run before them
  int stream_reps = 10;   // STREAM passes per measurement
  bool help = false;
};

BenchOptions ParseOptions(int argc, char** argv) {
  BenchOptions o;
  bool quick = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw UsageError("option " + arg + " needs a value");
      return argv[++i];
    };
    auto number = [&](double min) {
      const std::string text = value();
      std::size_t used = 0;
      double v = 0;
      try {
        v = std::stod(text, &used);
      } catch (const std::exception&) {
        used = 0;
      }
      if (used != text.size() || !(v >= min))
        throw UsageError("option " + arg + ": '" + text + "' must be a number >= " +
                         std::to_string(static_cast<int>(min)));
      return v;
    };
    if (arg == "--mnist") {
      o.mnist = value();
    } else if (arg == "--news20") {
      o.news20 = value();
    } else if (arg == "--json") {
      o.json = value();
    } else if (arg == "--min-time") {
      o.min_time = number(0);
    } else if (arg == "--iters") {
      o.iters = static_cast<int>(number(1));
    } else if (arg == "--quick") {
      quick = true;
    } else if (arg == "--help" || arg == "-h") {
      o.help = true;
    } else {
      throw UsageError("unknown option '" + arg + "'");
    }
  }
  if (quick) o.min_time = 0, o.min_calls = 1, o.iters = 1, o.warmup = 1, o.stream_reps = 1;
  return o;
}

double Seconds(Clock::time_point since) {
  return std::chrono::duration<double>(Clock::now() - since).count();
}

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// Every rank returns once all have called it.
void Barrier(Communicator& comm) {
  Vec token = Vec::Zero(1);
  comm.AllreduceSum(token);
}

// Everything rank 0 reports, each row as it goes into the JSON file.
struct Report {
  MetricsRecord machine, stream;
  std::vector<MetricsRecord> oracles, iterations, scaling;
};

// ---- Machine ---------------------------------------------------------------------------------

MetricsRecord Machine(int ranks) {
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::string model = "unknown";
  int cores = 0;
  for (std::string line; std::getline(cpuinfo, line);) {
    if (line.rfind("processor", 0) == 0) ++cores;
    const std::size_t colon = line.find(':');
    if (model == "unknown" && line.rfind("model name", 0) == 0 && colon != std::string::npos)
      model = line.substr(line.find_first_not_of(" \t", colon + 1));
  }
  char host[256] = "";
  gethostname(host, sizeof(host) - 1);
  const std::time_t now = std::time(nullptr);
  std::tm utc{};
  gmtime_r(&now, &utc);
  char date[32];
  std::strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%SZ", &utc);
  MetricsRecord r;
  r.SetString("cpu", model);
  r.SetInt("cores", cores);
  r.SetString("host", host);
  r.SetString("date", date);
  r.SetInt("ranks", ranks);
  r.SetString("bilevel_version", kVersion);
  return r;
}

// ---- 1. STREAM -------------------------------------------------------------------------------

// The best triad rate over the passes, rank 0 alone (the others wait), then all ranks at once:
// each pass starts together on every rank and counts P x bytes over the slowest rank's time.
MetricsRecord MeasureStream(comm::MpiCommunicator& world, int reps) {
  TriadArrays arrays(kStreamElements);
  arrays.Run();  // untimed: the first pass may still pay for the pages and TLB
  double one = 0, all = 0;
  if (auto solo = world.SplitFirst(1))
    for (int i = 0; i < reps; ++i) one = std::max(one, arrays.bytes() / arrays.Run());
  Vec slot(world.size());
  for (int i = 0; i < reps; ++i) {
    Barrier(world);
    slot.setZero();
    slot[world.rank()] = arrays.Run();
    world.AllreduceSum(slot);
    const double slowest = *std::max_element(slot.data(), slot.data() + slot.size());
    all = std::max(all, world.size() * arrays.bytes() / slowest);
  }
  MetricsRecord r;
  r.SetString("kernel", "triad a = b + s*c");
  r.Set("array_mb", static_cast<double>(arrays.size() * sizeof(double)) / 1e6);
  r.SetInt("bytes_per_element", static_cast<std::int64_t>(kTriadBytesPerElement));
  r.SetString("write_allocate", "not counted");
  r.SetInt("repetitions", reps);
  r.SetString("statistic", "best");
  r.Set("one_core_gb_per_s", one / 1e9);
  r.SetInt("ranks", world.size());
  r.Set("all_ranks_gb_per_s", all / 1e9);
  return r;
}

void PrintStream(const MetricsRecord& s) {
  std::printf(
      "\nSTREAM %s: 3 arrays of %.0f MB per rank, %d bytes per element (write-allocate not "
      "counted), best of %d\n",
      s.String("kernel").c_str(), s.Number("array_mb"),
      static_cast<int>(s.Number("bytes_per_element")), static_cast<int>(s.Number("repetitions")));
  std::printf("  1 rank (one core)         %8.2f GB/s\n", s.Number("one_core_gb_per_s"));
  std::printf("  %d ranks at once (sum)     %8.2f GB/s\n", static_cast<int>(s.Number("ranks")),
              s.Number("all_ranks_gb_per_s"));
}

// ---- Problems --------------------------------------------------------------------------------

struct ProblemSpec {
  std::string name;                // "hyperclean" or "l2reg"
  std::string data;                // the dataset of the reference settings
  std::string path;                // its file
  std::vector<Index> minibatches;  // the minibatch sizes the algorithms use on it
  io::DatasetInfo info;            // the file's attributes and split sizes
};

// The problems whose files are given, each file checked here on every rank, so that a bad one
// is a usage error before any measurement.
std::vector<ProblemSpec> Problems(const BenchOptions& o) {
  std::vector<ProblemSpec> specs;
  if (!o.mnist.empty()) specs.push_back({"hyperclean", "MNIST", o.mnist, {50, 1000}, {}});
  if (!o.news20.empty()) specs.push_back({"l2reg", "20 Newsgroups", o.news20, {100, 1000}, {}});
  for (ProblemSpec& spec : specs) {
    const std::string option = spec.name == "l2reg" ? "--news20" : "--mnist";
    try {
      spec.info = io::ReadDatasetInfo(spec.path);
    } catch (const io::IoError& e) {
      throw UsageError("option " + option + ": " + e.what());
    }
    if (spec.name == "hyperclean" && spec.info.csr())
      throw UsageError("option " + option + ": " + spec.path +
                       " is CSR; hyperclean needs dense features (a file of 'bilevel convert idx')");
  }
  return specs;
}

std::unique_ptr<Problem> MakeProblem(const ProblemSpec& spec, int rank, int ranks) {
  if (spec.name == "hyperclean")
    return std::make_unique<problems::HypercleanProblem>(spec.path, rank, ranks);
  return std::make_unique<problems::L2RegProblem>(spec.path, rank, ranks);
}

// ---- 2. Oracles ------------------------------------------------------------------------------

// How the batches of one split are stored, for the traffic model: dense, packed (dense rows
// that are mostly zeros, kept as their nonzeros: problems::PackedSplit, the problems' own
// decision) or CSR, with the nonzeros of every row (read here once; for CSR as the problems
// hold them, without the features the train split lacks: problems::DataBlocks).
class SplitStorage {
 public:
  SplitStorage(const std::string& path, const io::DatasetInfo& info, const std::string& split)
      : dim_(info.attributes.num_features) {
    if (info.csr()) {
      const problems::DataBlocks blocks = problems::LoadDataBlocks(path, 0, 1);
      const io::SplitShard& shard =
          split == "train" ? blocks.train : split == "val" ? blocks.val : blocks.test;
      kind_ = "csr";
      for (Index i = 0; i < shard.size(); ++i)
        nonzeros_.push_back(shard.indptr[i + 1] - shard.indptr[i]);
      return;
    }
    const io::SplitShard shard = io::ReadSplitShard(path, split, 0, info.ForSplit(split).rows);
    for (Index i = 0; i < shard.size(); ++i)
      nonzeros_.push_back((shard.features.row(i).array() != 0.0f).count());
    if (problems::PackedSplit(path, info, split)) kind_ = "packed";
  }

  const std::string& kind() const { return kind_; }

  // `batch` holds global row indices (one rank holds every row).
  BatchData Of(const Batch& batch) const {
    BatchData d;
    d.rows = batch.size();
    if (kind_ == "dense") {
      d.feature_bytes = 4 * d.rows * dim_;
      return d;
    }
    std::int64_t nnz = 0;
    for (Index k = 0; k < batch.size(); ++k) nnz += nonzeros_[batch[k]];
    d.feature_bytes = 8 * nnz + 8 * d.rows;
    return d;
  }

 private:
  std::string kind_ = "dense";
  Index dim_;
  std::vector<std::int64_t> nonzeros_;
};

Vec RandomVec(Index n, double scale, std::mt19937_64* rng) {
  std::normal_distribution<double> normal(0.0, scale);
  Vec v(n);
  for (Index i = 0; i < n; ++i) v[i] = normal(*rng);
  return v;
}

void Call(Oracles& oracles, Oracle oracle, const Vec& x, const Vec& y, const Vec& v,
          const MiniBatch& batch, VecRef out) {
  switch (oracle) {
    case Oracle::kGradYG: return oracles.GradYG(x, y, batch, out);
    case Oracle::kGradXG: return oracles.GradXG(x, y, batch, out);
    case Oracle::kGradYF: return oracles.GradYF(x, y, batch, out);
    case Oracle::kGradXF: return oracles.GradXF(x, y, batch, out);
    case Oracle::kHessianVec: return oracles.HessianVec(x, y, v, batch, out);
    case Oracle::kJacobianVec: return oracles.JacobianVec(x, y, v, batch, out);
  }
}

// Median seconds per call after one warm-up call (first-call allocations), over at least
// `min_calls` calls and `min_time` seconds; `calls` receives the number timed.
template <class F>
double MedianSeconds(const F& call, double min_time, int min_calls, int* calls) {
  call();
  std::vector<double> times;
  double total = 0;
  while (static_cast<int>(times.size()) < min_calls || total < min_time) {
    const auto start = Clock::now();
    call();
    times.push_back(Seconds(start));
    total += times.back();
  }
  *calls = static_cast<int>(times.size());
  return Median(times);
}

// Every oracle of `problem` (held whole by this one rank) at x = 0 and a random small y and
// random v, on fixed-seed random sorted minibatches and on the full split.
void BenchOracles(const ProblemSpec& spec, Problem& problem, const BenchOptions& options,
                  double stream_gb_per_s, std::vector<MetricsRecord>* rows) {
  const SplitStorage train(spec.path, spec.info, "train"), val(spec.path, spec.info, "val");
  const Index p = problem.DimOuter(), q = problem.DimInner();
  std::mt19937_64 rng(kSeed);
  const Vec x = Vec::Zero(p), y = RandomVec(q, 0.01, &rng), v = RandomVec(q, 1.0, &rng);
  Vec out_p(p), out_q(q);
  Oracles oracles(&problem);
  Sampler sampler(problem, kSeed);
  std::vector<Index> sizes = spec.minibatches;
  sizes.push_back(0);  // the full splits
  for (const Index size : sizes) {
    MiniBatch inner, outer;
    if (size > 0) {
      sampler.Draw(Split::kInner, size, &inner);
      sampler.Draw(Split::kOuter, size, &outer);
    } else {
      sampler.Full(Split::kInner, &inner);
      sampler.Full(Split::kOuter, &outer);
    }
    for (const Oracle oracle : kAllOracles) {
      const bool on_val = OnOuterSplit(oracle);
      const MiniBatch& batch = on_val ? outer : inner;
      Vec& out = OuterOutput(oracle) ? out_p : out_q;
      int calls = 0;
      const double s = MedianSeconds([&] { Call(oracles, oracle, x, y, v, batch, out); },
                                     options.min_time, options.min_calls, &calls);
      const std::int64_t bytes =
          MinOracleBytes(spec.name, oracle, (on_val ? val : train).Of(batch.local()), p, q);
      const double gb_per_s = static_cast<double>(bytes) / s / 1e9;
      MetricsRecord r;
      r.SetString("problem", spec.name);
      r.SetString("dataset", io::BaseName(spec.path));
      r.SetString("oracle", OracleName(oracle));
      r.SetString("split", on_val ? "val" : "train");
      r.SetString("rows", (on_val ? val : train).kind());
      r.SetString("batch", batch.full() ? "full" : "minibatch");
      r.SetInt("batch_size", batch.global_size());
      r.SetInt("calls", calls);
      r.Set("median_s", s);
      r.SetInt("min_bytes", bytes);
      r.Set("gb_per_s", gb_per_s);
      r.Set("stream_fraction", gb_per_s / stream_gb_per_s);
      rows->push_back(r);
    }
  }
}

void PrintOracles(const std::vector<MetricsRecord>& rows) {
  std::printf(
      "\nOracles on 1 rank: median time per call; MB = the least bytes the call must move "
      "(tools/bench/oracle_traffic.h)\n");
  std::printf("%-11s %-12s %-5s %-6s %7s %7s %11s %10s %8s %9s\n", "problem", "oracle",
              "split", "rows", "batch", "calls", "ms/call", "MB", "GB/s", "of STREAM");
  for (const MetricsRecord& r : rows)
    std::printf("%-11s %-12s %-5s %-6s %7lld %7lld %11.4f %10.3f %8.2f %8.0f%%\n",
                r.String("problem").c_str(), r.String("oracle").c_str(),
                r.String("split").c_str(), r.String("rows").c_str(),
                static_cast<long long>(r.Number("batch_size")),
                static_cast<long long>(r.Number("calls")), 1e3 * r.Number("median_s"),
                r.Number("min_bytes") / 1e6, r.Number("gb_per_s"),
                100 * r.Number("stream_fraction"));
}

// ---- 3, 4. Outer iterations ------------------------------------------------------------------

struct RunSpec {
  std::string problem;    // "hyperclean" or "l2reg"
  std::string algorithm;  // "stocbio", "aid-cg" or "itd"
  Index batch_size;       // B; 0: full batch
  int inner_steps;        // T
  int hessian_steps;      // Q (stocBiO) or N (AID-CG); ITD has none
  double pytorch_s;       // PyTorch's seconds per outer iteration (1 thread); 0: none
  bool scaling;           // also timed on 2..P ranks
  bool dense_steps = false;  // SolverOptions::block_sparse off (--dense-steps): the A/B row
};

const RunSpec kRuns[] = {
    {"hyperclean", "stocbio", 50, 200, 3, 0.086, false},
    {"l2reg", "stocbio", 100, 10, 10, 0.299, false},
    {"l2reg", "stocbio", 100, 10, 10, 0.299, false, /*dense_steps=*/true},
    {"hyperclean", "stocbio", 1000, 50, 5, 0.377, true},
    {"l2reg", "stocbio", 1000, 10, 10, 0.611, true},
    {"l2reg", "stocbio", 1000, 10, 10, 0.611, true, /*dense_steps=*/true},
    {"hyperclean", "aid-cg", 0, 10, 10, 3.63, true},
    {"l2reg", "aid-cg", 0, 10, 10, 1.01, true},
    {"hyperclean", "itd", 0, 10, 0, 0, false},
    {"l2reg", "itd", 0, 10, 0, 0, false},
};

// "stocBiO hyperclean MNIST B=50 T=200 Q=3", "AID-CG l2reg 20 Newsgroups full T=10 N=10".
std::string RunName(const RunSpec& run, const ProblemSpec& spec) {
  const bool stocbio = run.algorithm == "stocbio";
  std::string name = (stocbio ? "stocBiO" : run.algorithm == "aid-cg" ? "AID-CG" : "ITD") +
                     std::string(" ") + spec.name + " " + spec.data;
  name += run.batch_size > 0 ? " B=" + std::to_string(run.batch_size) : " full";
  name += " T=" + std::to_string(run.inner_steps);
  if (run.algorithm != "itd")
    name += (stocbio ? " Q=" : " N=") + std::to_string(run.hessian_steps);
  if (run.dense_steps) name += " dense";
  return name;
}

// Allreduces (each of q doubles) per outer iteration that the algorithm's header
// (include/bilevel/algorithms/) states: stocBiO T + 1 + Q, AID-CG T + 1 + N, ITD 2T. stocBiO
// with block-sparse minibatch steps sums its T + 1 + Q vectors with allgathers of the touched
// blocks instead (none on one rank) and does no allreduce. `steps_in_pass`: the inner steps
// are full-batch (a batch at least the split draws every row) and made inside the gradient's
// pass (one rank, a problem that takes a block sink: l2reg on sparse data), and sum nothing:
// T fewer.
int MinAllreduces(const RunSpec& run, bool block_sparse, bool steps_in_pass) {
  if (block_sparse) return 0;
  const int steps = steps_in_pass ? 0 : run.inner_steps;
  if (run.algorithm == "itd") return steps + run.inner_steps;
  return steps + 1 + run.hessian_steps;
}
int MinAllgathers(const RunSpec& run, bool block_sparse, int ranks) {
  return block_sparse && ranks > 1 ? run.inner_steps + 1 + run.hessian_steps : 0;
}

// Rank 0's view of a run: the eta it settled on and the record of every iteration.
class IterationLog : public SolveObserver {
 public:
  void OnStart(const std::vector<std::pair<std::string, std::string>>& header) override {
    for (const auto& [key, value] : header) {
      if (key == "eta") eta_ = value;
      if (key == "minibatch_steps") minibatch_steps_ = value;
    }
  }
  void OnEvaluation(const MetricsRecord& record) override { records_.push_back(record); }

  const std::string& eta() const { return eta_; }
  // "block-sparse" or "dense" (stocBiO), "full batch" (the header has none).
  const std::string& minibatch_steps() const { return minibatch_steps_; }
  const std::vector<MetricsRecord>& records() const { return records_; }

 private:
  std::string eta_;
  std::string minibatch_steps_ = "full batch";
  std::vector<MetricsRecord> records_;
};

// Runs `run` through bilevel::Solve for warm-up + timed outer iterations with the problem's
// default step sizes and eta = 0.9 / lambda_max(H) (--eta auto), evaluating after every
// iteration: the engine's solver time and communication counters leave the evaluations out,
// so their differences are exactly one iteration (the algorithm's HypergradientShare, the
// reduce to rank 0, the outer step and the broadcast). Collective on `comm`; the record, on
// rank 0 only, has the median seconds per timed iteration and the mean communication.
MetricsRecord TimeIterations(const RunSpec& run, const ProblemSpec& spec, Problem& problem,
                             Communicator& comm, const BenchOptions& options) {
  const ProblemDefaults defaults = problem.Defaults(run.algorithm);
  SolverOptions o;
  o.algorithm = run.algorithm;
  o.outer_iters = options.warmup + options.iters;
  o.inner_steps = run.inner_steps;
  o.hessian_steps = std::max(run.hessian_steps, 1);
  o.inner_lr = RecommendedInnerStep(problem, comm, defaults, nullptr);
  o.outer_lr = defaults.outer_lr;
  o.outer_optimizer = defaults.outer_optimizer;
  o.batch_size = run.batch_size > 0 ? run.batch_size : defaults.batch_size;
  o.eta_auto = true;
  o.eval_every = 1;
  o.block_sparse = !run.dense_steps;
  IterationLog log;
  Vec x, y;
  const SolveSummary summary = Solve(problem, comm, o, &x, &y, &log);
  MetricsRecord r;
  if (comm.rank() != 0) return r;
  // The iterations after the warm-up; all of them when the run stopped before (diverged).
  const std::vector<MetricsRecord>& recs = log.records();
  const std::size_t first =
      recs.size() > static_cast<std::size_t>(options.warmup) ? options.warmup : 0;
  auto before_first = [&](const char* key) { return first > 0 ? recs[first - 1].Number(key) : 0; };
  std::vector<double> times;
  for (std::size_t k = first; k < recs.size(); ++k)
    times.push_back(recs[k].Number("time_s") - (k > 0 ? recs[k - 1].Number("time_s") : 0));
  auto per_iteration = [&](const char* key) {
    return (recs.back().Number(key) - before_first(key)) / static_cast<double>(times.size());
  };
  const double seconds = Median(times);
  const double allreduce_calls = per_iteration("allreduce_calls");
  const double allreduce_bytes = per_iteration("allreduce_bytes");
  const std::int64_t q_bytes = 8 * problem.DimInner();
  r.SetString("name", RunName(run, spec));
  r.SetString("problem", spec.name);
  r.SetString("dataset", io::BaseName(spec.path));
  r.SetString("algorithm", run.algorithm);
  r.SetInt("batch_size", run.batch_size);
  r.SetInt("inner_steps", run.inner_steps);
  r.SetInt("hessian_steps", run.hessian_steps);
  r.SetInt("ranks", comm.size());
  r.SetInt("warmup_iterations", static_cast<std::int64_t>(first));
  r.SetInt("timed_iterations", static_cast<std::int64_t>(times.size()));
  r.SetString("termination", summary.termination);
  r.SetString("eta", log.eta());
  r.Set("median_s", seconds);
  if (run.pytorch_s > 0) {
    r.Set("pytorch_s", run.pytorch_s);
    r.Set("pytorch_over_ours", run.pytorch_s / seconds);
  }
  const bool block_sparse = log.minibatch_steps() == "block-sparse";
  const double allgather_calls = per_iteration("allgather_calls");
  const double allgather_bytes = per_iteration("allgather_bytes");
  r.SetString("minibatch_steps", log.minibatch_steps());
  r.Set("allreduce_calls", allreduce_calls);
  r.Set("allreduce_bytes", allreduce_bytes);
  const bool full_steps =
      run.batch_size <= 0 || run.batch_size >= problem.NumSamples(Split::kInner);
  const int min_allreduces = MinAllreduces(
      run, block_sparse, full_steps && comm.size() == 1 && problem.TakesBlockSink());
  r.SetInt("min_allreduce_calls", min_allreduces);
  r.SetInt("min_allreduce_bytes", min_allreduces * q_bytes);
  r.Set("allgather_calls", allgather_calls);
  r.Set("allgather_bytes", allgather_bytes);
  r.SetInt("min_allgather_calls", MinAllgathers(run, block_sparse, comm.size()));
  r.Set("other_comm_calls", per_iteration("comm_calls") - allreduce_calls - allgather_calls);
  r.Set("other_comm_bytes", per_iteration("comm_bytes") - allreduce_bytes - allgather_bytes);
  return r;
}

void PrintIterations(const std::vector<MetricsRecord>& rows, const BenchOptions& options) {
  std::printf(
      "\nOuter iterations on 1 rank: median s/iter over %d after %d warm-up; allreduces per "
      "iteration (min: the algorithm header's count); b = block-sparse minibatch steps (sums "
      "are allgathers of the touched blocks: none on 1 rank, no allreduce)\n",
      options.iters, options.warmup);
  std::printf("%-52s %9s %8s %8s %15s %18s %9s  %s\n", "run", "s/iter", "PyTorch", "PyT/ours",
              "allreduce (min)", "allreduce MB (min)", "allgather", "eta");
  for (const MetricsRecord& r : rows) {
    char pytorch[32] = "-", ratio[32] = "-";
    if (r.Has("pytorch_s")) {
      std::snprintf(pytorch, sizeof(pytorch), "%.3f", r.Number("pytorch_s"));
      std::snprintf(ratio, sizeof(ratio), "%.2f", r.Number("pytorch_over_ours"));
    }
    const std::string name =
        r.String("name") + (r.String("minibatch_steps") == "block-sparse" ? " b" : "");
    std::printf("%-52s %9.4f %8s %8s %7.1f (%5.0f) %9.2f (%6.2f) %9.1f  %s%s\n", name.c_str(),
                r.Number("median_s"), pytorch, ratio, r.Number("allreduce_calls"),
                r.Number("min_allreduce_calls"), r.Number("allreduce_bytes") / 1e6,
                r.Number("min_allreduce_bytes") / 1e6, r.Number("allgather_calls"),
                r.String("eta").c_str(),
                r.String("termination") == "max_iters"
                    ? ""
                    : ("  [" + r.String("termination") + "]").c_str());
  }
}

// ---- 5. Scaling ------------------------------------------------------------------------------

MetricsRecord ScalingRow(const MetricsRecord& run, const MetricsRecord& one_rank) {
  const double ranks = run.Number("ranks");
  const double speedup = one_rank.Number("median_s") / run.Number("median_s");
  MetricsRecord r;
  for (const char* key : {"name", "problem", "algorithm", "minibatch_steps"})
    r.SetString(key, run.String(key));
  r.SetInt("ranks", static_cast<std::int64_t>(ranks));
  for (const char* key : {"allreduce_calls", "min_allreduce_calls", "allgather_calls",
                          "min_allgather_calls", "allgather_bytes"})
    r.Set(key, run.Number(key));
  r.Set("median_s", run.Number("median_s"));
  r.Set("speedup", speedup);
  r.Set("efficiency", speedup / ranks);
  return r;
}

void PrintScaling(const std::vector<MetricsRecord>& rows) {
  std::printf(
      "\nScaling: median s/iter on 1..P ranks, speedup over 1 rank, parallel efficiency; "
      "allreduces and allgathers (of touched blocks, b rows) per iteration\n");
  std::printf("%-52s %5s %9s %8s %10s %9s %9s %12s\n", "run", "ranks", "s/iter", "speedup",
              "efficiency", "allreduce", "allgather", "allgather MB");
  for (const MetricsRecord& r : rows) {
    const std::string name =
        r.String("name") + (r.String("minibatch_steps") == "block-sparse" ? " b" : "");
    std::printf("%-52s %5d %9.4f %8.2f %9.0f%% %9.1f %9.1f %12.2f\n", name.c_str(),
                static_cast<int>(r.Number("ranks")), r.Number("median_s"), r.Number("speedup"),
                100 * r.Number("efficiency"), r.Number("allreduce_calls"),
                r.Number("allgather_calls"), r.Number("allgather_bytes") / 1e6);
  }
}

// ---- Output ----------------------------------------------------------------------------------

void WriteJson(const std::string& path, const Report& report) {
  std::ofstream out(path, std::ios::trunc);
  out << "{\n  \"machine\": " << report.machine.ToJson()
      << ",\n  \"stream\": " << report.stream.ToJson();
  const std::pair<const char*, const std::vector<MetricsRecord>*> sections[] = {
      {"oracles", &report.oracles},
      {"iterations", &report.iterations},
      {"scaling", &report.scaling}};
  for (const auto& [name, rows] : sections) {
    out << ",\n  \"" << name << "\": [";
    for (std::size_t i = 0; i < rows->size(); ++i)
      out << (i > 0 ? ",\n    " : "\n    ") << (*rows)[i].ToJson();
    out << (rows->empty() ? "]" : "\n  ]");
  }
  out << "\n}\n";
  out.close();
  if (!out) throw std::runtime_error("cannot write " + path);
}

// Every section in turn; the report is complete on rank 0.
Report RunBenchmark(comm::MpiCommunicator& world, const BenchOptions& options) {
  const bool root = world.rank() == 0;
  const int ranks = world.size();
  const std::vector<ProblemSpec> specs = Problems(options);
  Report report;
  report.machine = Machine(ranks);
  if (root) {
    const MetricsRecord& m = report.machine;
    std::printf("bilevel_bench %s on %s (%d cores), host %s, %s, %d MPI ranks\n", kVersion,
                m.String("cpu").c_str(), static_cast<int>(m.Number("cores")),
                m.String("host").c_str(), m.String("date").c_str(), ranks);
  }

  report.stream = MeasureStream(world, options.stream_reps);
  if (root) PrintStream(report.stream);
  std::fflush(stdout);

  // One rank: the oracles, then every reference run (the 1-rank point of the scaling).
  std::vector<std::pair<const RunSpec*, const ProblemSpec*>> runs;
  for (const RunSpec& run : kRuns)
    for (const ProblemSpec& spec : specs)
      if (spec.name == run.problem) runs.emplace_back(&run, &spec);
  if (auto one = world.SplitFirst(1)) {
    std::vector<std::unique_ptr<Problem>> problems;  // problems[i] is that of specs[i]
    for (const ProblemSpec& spec : specs) {
      problems.push_back(MakeProblem(spec, 0, 1));
      BenchOracles(spec, *problems.back(), options,
                   report.stream.Number("one_core_gb_per_s"), &report.oracles);
    }
    PrintOracles(report.oracles);
    std::fflush(stdout);
    for (const auto& [run, spec] : runs) {
      Problem& problem = *problems[spec - specs.data()];
      report.iterations.push_back(TimeIterations(*run, *spec, problem, *one, options));
    }
    PrintIterations(report.iterations, options);
    std::fflush(stdout);
  }

  // 2..P ranks: the scaling runs, each problem loaded once per rank count.
  std::vector<MetricsRecord> at_ranks;
  for (int n = 2; n <= ranks; ++n) {
    auto sub = world.SplitFirst(n);
    if (!sub) continue;
    for (const ProblemSpec& spec : specs) {
      const std::unique_ptr<Problem> problem = MakeProblem(spec, sub->rank(), sub->size());
      for (const auto& [run, run_spec] : runs)
        if (run->scaling && run_spec == &spec)
          at_ranks.push_back(TimeIterations(*run, spec, *problem, *sub, options));
    }
  }
  if (root) {
    for (std::size_t i = 0; i < runs.size(); ++i) {
      if (!runs[i].first->scaling) continue;
      const MetricsRecord& one_rank = report.iterations[i];
      report.scaling.push_back(ScalingRow(one_rank, one_rank));
      for (const MetricsRecord& r : at_ranks)
        if (r.String("name") == one_rank.String("name"))
          report.scaling.push_back(ScalingRow(r, one_rank));
    }
    PrintScaling(report.scaling);
    std::fflush(stdout);
  }
  return report;
}

// The program on this rank: 0, 2 for a usage error (every rank parses the same arguments and
// exits; rank 0 says why); any other error ends every rank rather than leave them waiting.
int Main(int argc, char** argv, comm::MpiCommunicator& world) {
  const bool root = world.rank() == 0;
  int code = 0;
  try {
    const BenchOptions options = ParseOptions(argc, argv);
    if (options.help) {
      if (root) std::fputs(kUsage, stdout);
    } else {
      const Report report = RunBenchmark(world, options);
      if (root && !options.json.empty()) {
        WriteJson(options.json, report);
        std::printf("\nwrote %s\n", options.json.c_str());
      }
    }
  } catch (const UsageError& e) {
    if (root) std::fprintf(stderr, "bilevel_bench: error: %s\n%s", e.what(), kUsage);
    code = 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "[rank %d] error: %s\n", world.rank(), e.what());
    std::fflush(stderr);
    world.Abort(1);
  }
  return code;
}

}  // namespace
}  // namespace bilevel::bench

int main(int argc, char** argv) {
  bilevel::comm::MpiInit(&argc, &argv);
  int code = 0;
  {
    const auto world = bilevel::comm::MpiCommunicator::World();
    code = bilevel::bench::Main(argc, argv, *world);
  }
  bilevel::comm::MpiFinalize();
  return code;
}
