#include "bilevel/solver.h"

#include <chrono>
#include <sstream>
#include <stdexcept>

#include "bilevel/algorithm.h"
#include "bilevel/oracles.h"
#include "bilevel/outer_optimizer.h"
#include "bilevel/sampler.h"

namespace bilevel {

namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point since) {
  return std::chrono::duration<double>(Clock::now() - since).count();
}

CommStats Minus(const CommStats& a, const CommStats& b) {
  CommStats d;
  d.allreduce_calls = a.allreduce_calls - b.allreduce_calls;
  d.allreduce_bytes = a.allreduce_bytes - b.allreduce_bytes;
  d.reduce_calls = a.reduce_calls - b.reduce_calls;
  d.reduce_bytes = a.reduce_bytes - b.reduce_bytes;
  d.broadcast_calls = a.broadcast_calls - b.broadcast_calls;
  d.broadcast_bytes = a.broadcast_bytes - b.broadcast_bytes;
  return d;
}


template <class T>
std::string Str(T value) {
  std::ostringstream s;
  s << value;
  return s.str();
}

// Why rank 0 stops the run, sent to every rank with x.
enum StopCode { kContinue = 0, kDivergedHypergrad = 1, kDivergedInner = 2, kMaxTime = 3 };

}  // namespace

SolveSummary Solve(Problem& problem, Communicator& comm, const SolverOptions& options, Vec* x,
                   Vec* y, SolveObserver* observer) {
  std::string error;
  if (!options.IsValid(&error)) throw std::invalid_argument(error);
  const auto wall_start = Clock::now();
  const bool root = comm.rank() == 0;
  const Index p = problem.DimOuter();

  Oracles oracles(&problem);
  Sampler sampler(problem, options.seed);
  const AlgorithmContext context{&oracles, &comm, &sampler, &options};
  std::unique_ptr<Algorithm> algorithm = MakeAlgorithm(options.algorithm, context);
  std::unique_ptr<OuterOptimizer> optimizer = MakeOuterOptimizer(options);

  x->resize(p);
  problem.InitialOuter(*x);
  Vec share(p);
  Vec message(p + 1);  // [x_{k+1}; stop code], broadcast by rank 0
  Vec eval_sums(1 + problem.NumEvalSums());
  MiniBatch full_outer;
  sampler.Full(Split::kOuter, &full_outer);

  if (root && observer) {
    std::vector<std::pair<std::string, std::string>> header = {
        {"problem", problem.Name()},
        {"dim_outer", Str(p)},
        {"dim_inner", Str(problem.DimInner())},
        {"samples_inner", Str(problem.NumSamples(Split::kInner))},
        {"samples_outer", Str(problem.NumSamples(Split::kOuter))}};
    for (auto& fact : problem.Describe()) header.push_back(fact);
    header.insert(header.end(),
                  {{"algorithm", algorithm->Name()},
                   {"ranks", Str(comm.size())},
                   {"outer_iters", Str(options.outer_iters)},
                   {"inner_steps", Str(options.inner_steps)},
                   {"hessian_steps", Str(options.hessian_steps)},
                   {"inner_lr", Str(options.inner_lr)},
                   {"outer_lr", Str(options.outer_lr)},
                   {"eta", Str(options.eta)},
                   {"outer_optimizer", optimizer->Name()}});
    if (options.algorithm == "stocbio") {
      header.insert(header.end(),
                    {{"batch_size", Str(options.batch_size)},
                     {"outer_batch_size", Str(options.EffectiveOuterBatch())},
                     {"hessian_batch_size", Str(options.EffectiveHessianBatch())},
                     {"seed", Str(options.seed)}});
    }
    observer->OnStart(header);
  }

  const CommStats base = comm.stats();
  CommStats eval_comm;
  SolveSummary summary;
  summary.termination = "max_iters";
  double solve_s = 0;
  int k = 0;
  for (k = 1; k <= options.outer_iters; ++k) {
    const auto t0 = Clock::now();
    algorithm->HypergradientShare(*x, share);
    comm.ReduceSum(share, 0);
    const Vec& y_now = algorithm->y();
    if (root) {
      int code = kContinue;
      if (!share.allFinite()) {
        code = kDivergedHypergrad;
      } else if (!y_now.allFinite()) {
        code = kDivergedInner;
      } else {
        message.head(p) = *x;
        optimizer->Step(share, message.head(p));
        if (!message.head(p).allFinite()) code = kDivergedHypergrad;
      }
      if (code == kContinue && options.max_time > 0 && solve_s + Seconds(t0) >= options.max_time)
        code = kMaxTime;
      message[p] = code;
    }
    comm.Broadcast(message, 0);
    solve_s += Seconds(t0);
    const int code = static_cast<int>(message[p]);

    if (k % options.eval_every == 0 || k == options.outer_iters || code != kContinue) {
      const CommStats before_eval = comm.stats();
      eval_sums[0] = problem.ValueF(*x, y_now, full_outer.local());
      if (eval_sums.size() > 1) problem.EvalLocalSums(*x, y_now, eval_sums.tail(eval_sums.size() - 1));
      comm.AllreduceSum(eval_sums);
      eval_comm = Minus(eval_comm, Minus(before_eval, comm.stats()));  // += eval's share
      if (root) {
        const CommStats c = Minus(Minus(comm.stats(), base), eval_comm);
        const OracleCounts& n = oracles.counts();
        MetricsRecord r;
        r.SetInt("iter", k);
        r.Set("time_s", solve_s);
        r.Set("outer_loss", eval_sums[0] / static_cast<double>(problem.NumSamples(Split::kOuter)));
        r.Set("hypergrad_norm", share.norm());
        r.SetInt("grad_f", n.grad_f);
        r.SetInt("grad_g", n.grad_g);
        r.SetInt("hvp", n.hvp);
        r.SetInt("jvp", n.jvp);
        r.SetInt("allreduce_calls", c.allreduce_calls);
        r.SetInt("allreduce_bytes", c.allreduce_bytes);
        r.SetInt("comm_calls", c.allreduce_calls + c.reduce_calls + c.broadcast_calls);
        r.SetInt("comm_bytes", c.allreduce_bytes + c.reduce_bytes + c.broadcast_bytes);
        problem.EvalReport(*x, y_now, share, eval_sums.tail(eval_sums.size() - 1), &r);
        summary.last = r;
        if (observer) observer->OnEvaluation(r);
      }
    }
    if (code == kDivergedHypergrad || code == kDivergedInner) {
      summary.termination = "diverged";
      summary.message = std::string("non-finite ") +
                        (code == kDivergedInner ? "inner iterate y" : "hypergradient or x") +
                        " at iteration " + std::to_string(k) + "; x is kept at its last finite value";
      break;
    }
    *x = message.head(p);  // x <- x_{k+1}
    if (code == kMaxTime) {
      summary.termination = "max_time";
      summary.message = "stopped after " + std::to_string(k) + " iterations: --max-time " +
                        Str(options.max_time) + " s of solver time reached";
      break;
    }
  }
  summary.iterations = std::min(k, options.outer_iters);
  if (summary.termination == "max_iters")
    summary.message = "completed " + std::to_string(summary.iterations) + " outer iterations";
  *y = algorithm->y();
  summary.solve_s = solve_s;
  summary.wall_s = Seconds(wall_start);
  return summary;
}

}  // namespace bilevel
