// The coordinator loop: runs an algorithm on a problem across the ranks of a communicator.
//
// Each outer iteration k: every rank computes its share of g_hat at x_k (the algorithm's
// allreduces keep y identical on every rank); the shares are reduced to rank 0, which applies
// the outer optimizer, decides whether to stop, and broadcasts x_{k+1} with that decision.
// Rank 0 owns all output through a SolveObserver.
#ifndef BILEVEL_SOLVER_H_
#define BILEVEL_SOLVER_H_

#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <csignal>

#include "bilevel/communicator.h"
#include "bilevel/metrics.h"
#include "bilevel/options.h"
#include "bilevel/problem.h"
#include "bilevel/run_state.h"

namespace bilevel {

// A problem with the run's configuration that every rank finds at the same point (invalid
// options, a resume state that does not fit, an eta too large for the Neumann series): every
// rank throws it, so a caller can report it once and exit without aborting the job.
class SolveConfigError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

struct SolveSummary {
  std::string termination;  // "max_iters", "max_time", "signal" or "diverged"
  std::string message;      // one human-readable sentence
  int iterations = 0;       // outer iterations done (hypergradients computed)
  double solve_s = 0;       // solver time, excluding evaluations
  double wall_s = 0;        // wall time of Solve
  MetricsRecord last;       // the last evaluation record
};

// Receives the output of a run; called on rank 0 only.
class SolveObserver {
 public:
  virtual ~SolveObserver() = default;
  // Once, before the first iteration: (name, value) facts about the run.
  virtual void OnStart(const std::vector<std::pair<std::string, std::string>>& header) {
    (void)header;
  }
  // At every evaluation point.
  virtual void OnEvaluation(const MetricsRecord& record) { (void)record; }
  // Every options.checkpoint_every iterations and when the run stops (except on divergence):
  // the complete state after `state.iteration` iterations. `last` is the latest evaluation.
  virtual void OnCheckpoint(const RunState& state, const MetricsRecord& last) {
    (void)state, (void)last;
  }
};

// How a run is observed and steered, beyond its options.
struct SolveControl {
  SolveObserver* observer = nullptr;  // rank 0's output; ignored on other ranks
  // Continue this run (after state->iteration iterations) instead of starting afresh. Every
  // rank passes the same state.
  const RunState* resume = nullptr;
  // Set (nonzero) by a signal handler on any rank: the run stops at the end of the current
  // iteration with termination "signal", after a checkpoint.
  const volatile std::sig_atomic_t* stop_signal = nullptr;
};

// Runs options.outer_iters outer iterations (or until max_time or divergence) from the
// problem's initial point. On return, every rank holds the final x and y. options must be
// valid (SolverOptions::IsValid).
//
// Metrics at evaluation k describe the iterate x_k at which the k-th hypergradient g_hat was
// formed, with the inner iterate y used for it: `iter` (k, from 1), `time_s` (solver time so
// far), `outer_loss` f(x_k, y), `hypergrad_norm` |g_hat|, oracle counts (samples)
// `grad_f`, `grad_g`, `hvp`, `jvp`, communication counts `allreduce_calls`,
// `allreduce_bytes`, `reduce_scatter_calls`, `allgather_calls`, `allgather_bytes`,
// `comm_calls`, `comm_bytes` (all collectives), then the problem's own.
// Evaluations happen every eval_every iterations and at the last one; their own work is not
// counted.
SolveSummary Solve(Problem& problem, Communicator& comm, const SolverOptions& options, Vec* x,
                   Vec* y, const SolveControl& control);

// The same, observed by `observer` on rank 0, from the start.
SolveSummary Solve(Problem& problem, Communicator& comm, const SolverOptions& options, Vec* x,
                   Vec* y, SolveObserver* observer);

}  // namespace bilevel

#endif  // BILEVEL_SOLVER_H_
