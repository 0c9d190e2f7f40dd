#include "bilevel/solver.h"

#include <chrono>
#include <limits>
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

// Whether every entry of v is finite, in one vectorized pass over v (Eigen's allFinite()
// compares one entry at a time: 2 ms per outer iteration on 20 Newsgroups' 2.6 million
// entries of y). x * 0 is 0 for a finite x and NaN otherwise, and a NaN makes the sum NaN.
bool AllFinite(ConstVecRef v) { return (v.array() * 0.0).sum() == 0.0; }

// a + sign * b, field by field.
CommStats Combine(const CommStats& a, const CommStats& b, int sign) {
  CommStats d;
  d.allreduce_calls = a.allreduce_calls + sign * b.allreduce_calls;
  d.allreduce_bytes = a.allreduce_bytes + sign * b.allreduce_bytes;
  d.reduce_calls = a.reduce_calls + sign * b.reduce_calls;
  d.reduce_bytes = a.reduce_bytes + sign * b.reduce_bytes;
  d.broadcast_calls = a.broadcast_calls + sign * b.broadcast_calls;
  d.broadcast_bytes = a.broadcast_bytes + sign * b.broadcast_bytes;
  d.reduce_scatter_calls = a.reduce_scatter_calls + sign * b.reduce_scatter_calls;
  d.reduce_scatter_bytes = a.reduce_scatter_bytes + sign * b.reduce_scatter_bytes;
  d.allgather_calls = a.allgather_calls + sign * b.allgather_calls;
  d.allgather_bytes = a.allgather_bytes + sign * b.allgather_bytes;
  return d;
}

template <class T>
std::string Str(T value) {
  std::ostringstream s;
  s << value;
  return s.str();
}

// alpha, and how it was found when the problem estimated it.
std::string InnerStep(const SolverOptions& options) {
  if (options.inner_lr_origin.empty()) return Str(options.inner_lr);
  return Str(options.inner_lr) + " (" + options.inner_lr_origin + ")";
}

// Why rank 0 stops the run, sent to every rank with x.
enum StopCode {
  kContinue = 0,
  kDivergedHypergrad = 1,
  kDivergedInner = 2,
  kMaxTime = 3,
  kSignal = 4,
};

// Copies named state vectors into `into` (resume), checking names and sizes.
void Restore(const char* what, const NamedVectors& saved,
             const std::vector<std::pair<std::string, Vec*>>& into) {
  for (const auto& [name, target] : into) {
    const Vec* found = nullptr;
    for (const auto& [saved_name, value] : saved)
      if (saved_name == name) found = &value;
    if (!found) throw SolveConfigError(std::string("resume: the ") + what + " state '" + name +
                                       "' is missing");
    if (found->size() != target->size())
      throw SolveConfigError(std::string("resume: the ") + what + " state '" + name +
                                  "' has " + Str(found->size()) + " entries, expected " +
                                  Str(target->size()));
    *target = *found;
  }
}

NamedVectors Snapshot(const std::vector<std::pair<std::string, Vec*>>& from) {
  NamedVectors out;
  for (const auto& [name, v] : from) out.emplace_back(name, *v);
  return out;
}

std::vector<std::pair<std::string, std::string>> Header(const Problem& problem,
                                                        const Algorithm& algorithm,
                                                        const OuterOptimizer& optimizer,
                                                        const SolverOptions& options, int ranks) {
  std::vector<std::pair<std::string, std::string>> header = {
      {"problem", problem.Name()},
      {"dim_outer", Str(problem.DimOuter())},
      {"dim_inner", Str(problem.DimInner())},
      {"samples_inner", Str(problem.NumSamples(Split::kInner))},
      {"samples_outer", Str(problem.NumSamples(Split::kOuter))}};
  for (auto& fact : problem.Describe()) header.push_back(fact);
  header.insert(header.end(), {{"algorithm", algorithm.Name()},
                               {"ranks", Str(ranks)},
                               {"outer_iters", options.outer_iters == std::numeric_limits<int>::max()
                                                   ? std::string("unlimited")
                                                   : Str(options.outer_iters)},
                               {"inner_steps", Str(options.inner_steps)},
                               {"hessian_steps", Str(options.hessian_steps)},
                               {"inner_lr", InnerStep(options)},
                               {"outer_lr", Str(options.outer_lr)},
                               {"eta", algorithm.UsesEta() ? Str(algorithm.eta()) +
                                                                 (options.eta_auto ? " (auto)" : "")
                                                           : std::string("unused")},
                               {"outer_optimizer", optimizer.Name()}});
  if (options.algorithm == "stocbio") {
    header.insert(header.end(), {{"batch_size", Str(options.batch_size)},
                                 {"outer_batch_size", Str(options.EffectiveOuterBatch())},
                                 {"hessian_batch_size", Str(options.EffectiveHessianBatch())},
                                 {"seed", Str(options.seed)},
                                 {"minibatch_steps", algorithm.BlockSparse(options.batch_size)
                                                         ? "block-sparse"
                                                         : "dense"}});
  }
  return header;
}

}  // namespace

SolveSummary Solve(Problem& problem, Communicator& comm, const SolverOptions& options, Vec* x,
                   Vec* y, SolveObserver* observer) {
  SolveControl control;
  control.observer = observer;
  return Solve(problem, comm, options, x, y, control);
}

SolveSummary Solve(Problem& problem, Communicator& comm, const SolverOptions& options, Vec* x,
                   Vec* y, const SolveControl& control) {
  std::string error;
  if (!options.IsValid(&error)) throw SolveConfigError(error);
  const auto wall_start = Clock::now();
  const bool root = comm.rank() == 0;
  SolveObserver* observer = root ? control.observer : nullptr;
  const Index p = problem.DimOuter();

  Oracles oracles(&problem);
  Sampler sampler(problem, options.seed);
  const AlgorithmContext context{&oracles, &comm, &sampler, &options};
  std::unique_ptr<Algorithm> algorithm = MakeAlgorithm(options.algorithm, context);
  std::unique_ptr<OuterOptimizer> optimizer = MakeOuterOptimizer(options, p);

  x->resize(p);
  problem.InitialOuter(*x);
  CommStats comm_before;  // the algorithm's communication before this Solve (resume)
  double solve_s = 0;
  int first = 1;
  if (const RunState* r = control.resume) {
    if (r->x.size() != p)
      throw SolveConfigError("resume: x has " + Str(r->x.size()) + " entries, the problem " +
                             Str(p));
    *x = r->x;
    Restore("algorithm", r->algorithm, algorithm->State());
    Restore("outer optimizer", r->optimizer, optimizer->State());
    sampler.LoadState(r->sampler);
    oracles.set_counts(r->oracles);
    comm_before = r->comm;
    solve_s = r->solve_s;
    first = r->iteration + 1;
  }

  // Neumann safety: eta lambda_max(H) < 1, checked (or, with eta_auto, eta set to 0.9 /
  // lambda_max) before the run, then every kEtaEvery iterations (eta_auto) or at every
  // checkpoint iteration (fixed eta). Collective: every rank estimates the same number.
  constexpr int kEtaEvery = 100;
  constexpr int kPowerIterations = 20;
  auto check_eta = [&](int iteration) {
    const double lambda = algorithm->EstimateLambdaMax(*x, kPowerIterations);
    if (!(lambda > 0)) return;
    if (options.eta_auto) {
      algorithm->set_eta(0.9 / lambda);
      return;
    }
    if (algorithm->eta() * lambda >= 1)
      throw SolveConfigError("option --eta: " + Str(algorithm->eta()) + " is too large for " +
                             algorithm->Name() + ": eta * lambda_max(H) = " +
                             Str(algorithm->eta()) + " * " + Str(lambda) + " = " +
                             Str(algorithm->eta() * lambda) + " >= 1 at iteration " +
                             Str(iteration) + ", so the Neumann series diverges; use --eta " +
                             Str(0.9 / lambda) + " (0.9 / lambda_max) or --eta auto");
  };
  if (algorithm->UsesEta() && !control.resume) check_eta(first - 1);

  Vec share(p + 1);    // [this rank's share of g_hat; its stop request], reduced to rank 0
  Vec message(p + 1);  // [x_{k+1}; stop code], broadcast by rank 0
  Vec eval_sums(1 + problem.NumEvalSums());
  MiniBatch full_outer;
  sampler.Full(Split::kOuter, &full_outer);
  if (observer) observer->OnStart(Header(problem, *algorithm, *optimizer, options, comm.size()));

  const CommStats base = comm.stats();
  CommStats eval_comm;
  auto algorithm_comm = [&] {
    return Combine(comm_before, Combine(Combine(comm.stats(), base, -1), eval_comm, -1), +1);
  };
  SolveSummary summary;
  summary.termination = "max_iters";
  summary.iterations = first - 1;
  auto checkpoint = [&](int iteration) {
    if (!observer) return;
    RunState state;
    state.iteration = iteration;
    state.x = *x;
    state.algorithm = Snapshot(algorithm->State());
    state.optimizer = Snapshot(optimizer->State());
    state.sampler = sampler.SaveState();
    state.oracles = oracles.counts();
    state.comm = algorithm_comm();
    state.solve_s = solve_s;
    observer->OnCheckpoint(state, summary.last);
  };

  const double resumed_solve_s = solve_s;  // --max-time counts this invocation only
  int k = first;
  for (; k <= options.outer_iters; ++k) {
    const auto t0 = Clock::now();
    auto g = share.head(p);
    algorithm->set_iteration(k);
    algorithm->HypergradientShare(*x, g);
    share[p] = control.stop_signal && *control.stop_signal ? 1.0 : 0.0;
    comm.ReduceSum(share, 0);
    const Vec& y_now = algorithm->y();
    if (root) {
      int code = kContinue;
      if (!AllFinite(g)) {
        code = kDivergedHypergrad;
      } else if (!AllFinite(y_now)) {
        code = kDivergedInner;
      } else {
        message.head(p) = *x;
        optimizer->Step(g, algorithm->OuterStepScale(k), message.head(p));
        problem.ProjectOuter(message.head(p), options.inner_lr);
        if (!AllFinite(message.head(p))) code = kDivergedHypergrad;
      }
      if (code == kContinue && share[p] > 0) code = kSignal;
      if (code == kContinue && options.max_time > 0 &&
          solve_s - resumed_solve_s + Seconds(t0) >= options.max_time)
        code = kMaxTime;
      message[p] = code;
    }
    comm.Broadcast(message, 0);
    solve_s += Seconds(t0);
    const int code = static_cast<int>(message[p]);

    if (k % options.eval_every == 0 || k == options.outer_iters || code != kContinue) {
      const CommStats before_eval = comm.stats();
      eval_sums[0] = problem.ValueF(*x, y_now, full_outer.local());
      if (eval_sums.size() > 1)
        problem.EvalLocalSums(*x, y_now, eval_sums.tail(eval_sums.size() - 1));
      comm.AllreduceSum(eval_sums);
      eval_comm = Combine(eval_comm, Combine(comm.stats(), before_eval, -1), +1);
      if (root) {
        const CommStats c = algorithm_comm();
        const OracleCounts& n = oracles.counts();
        MetricsRecord r;
        r.SetInt("iter", k);
        r.Set("time_s", solve_s);
        r.Set("outer_loss", eval_sums[0] / static_cast<double>(problem.NumSamples(Split::kOuter)));
        r.Set("hypergrad_norm", g.norm());
        r.SetInt("grad_f", n.grad_f);
        r.SetInt("grad_g", n.grad_g);
        r.SetInt("hvp", n.hvp);
        r.SetInt("jvp", n.jvp);
        r.SetInt("allreduce_calls", c.allreduce_calls);
        r.SetInt("allreduce_bytes", c.allreduce_bytes);
        r.SetInt("reduce_scatter_calls", c.reduce_scatter_calls);
        r.SetInt("allgather_calls", c.allgather_calls);
        r.SetInt("allgather_bytes", c.allgather_bytes);
        r.SetInt("comm_calls", c.allreduce_calls + c.reduce_calls + c.broadcast_calls +
                                   c.reduce_scatter_calls + c.allgather_calls);
        r.SetInt("comm_bytes", c.allreduce_bytes + c.reduce_bytes + c.broadcast_bytes +
                                   c.reduce_scatter_bytes + c.allgather_bytes);
        problem.EvalReport(*x, y_now, g, eval_sums.tail(eval_sums.size() - 1), &r);
        summary.last = r;
        if (observer) observer->OnEvaluation(r);
      }
    }
    summary.iterations = k;
    if (code == kDivergedHypergrad || code == kDivergedInner) {
      summary.termination = "diverged";
      summary.message = std::string("non-finite ") +
                        (code == kDivergedInner ? "inner iterate y" : "hypergradient or x") +
                        " at iteration " + std::to_string(k) +
                        "; x is kept at its last finite value and no checkpoint is written";
      break;
    }
    *x = message.head(p);  // x <- x_{k+1}
    if (code == kMaxTime) {
      summary.termination = "max_time";
      summary.message = "stopped after " + std::to_string(k) + " iterations: --max-time " +
                        Str(options.max_time) + " s of solver time reached";
      break;
    }
    if (code == kSignal) {
      summary.termination = "signal";
      summary.message = "stopped after " + std::to_string(k) + " iterations on a signal";
      break;
    }
    const bool checkpoint_now = options.checkpoint_every > 0 &&
                                k % options.checkpoint_every == 0 && k != options.outer_iters;
    if (algorithm->UsesEta() &&
        (options.eta_auto ? k % kEtaEvery == 0 : checkpoint_now))
      check_eta(k);
    if (checkpoint_now) checkpoint(k);
  }
  if (summary.termination == "max_iters")
    summary.message = "completed " + std::to_string(summary.iterations) + " outer iterations";
  if (summary.termination != "diverged") checkpoint(summary.iterations);
  *y = algorithm->y();
  summary.solve_s = solve_s;
  summary.wall_s = Seconds(wall_start);
  return summary;
}

}  // namespace bilevel
