// The coordinator loop on one process: convergence of every estimator on the default
// quadratic, terminations, and the metrics it reports.
#include "bilevel/solver.h"

#include <gtest/gtest.h>

#include "bilevel/problems/quadratic.h"

namespace bilevel {
namespace {

struct Recorder : SolveObserver {
  std::vector<MetricsRecord> records;
  void OnEvaluation(const MetricsRecord& r) override { records.push_back(r); }
};

SolverOptions Defaults(const Problem& problem, const std::string& algorithm) {
  SolverOptions o;
  o.algorithm = algorithm;
  const ProblemDefaults d = problem.Defaults(algorithm);
  o.inner_lr = d.inner_lr;
  o.outer_lr = d.outer_lr;
  o.eta_auto = true;
  o.batch_size = d.batch_size;
  return o;
}

struct Case {
  const char* algorithm;
  int outer_iters, inner_steps;
  double reduction;
};

TEST(Solver, EveryEstimatorConvergesOnTheDefaultQuadratic) {
  QuadraticProblem problem(QuadraticOptions(), 0, 1);
  const double start = problem.HyperGradient(Vec::Zero(problem.DimOuter())).norm();
  for (const Case& c : {Case{"aid-cg", 60, 10, 1e-6}, Case{"aid-neumann", 60, 10, 1e-6},
                        Case{"itd", 60, 100, 1e-6}, Case{"hoag", 60, 10, 1e-6},
                        Case{"stocbio", 400, 10, 1e-2}}) {
    SerialCommunicator comm;
    SolverOptions o = Defaults(problem, c.algorithm);
    o.outer_iters = c.outer_iters;
    o.inner_steps = c.inner_steps;
    Vec x, y;
    Recorder rec;
    const SolveSummary s = Solve(problem, comm, o, &x, &y, &rec);
    EXPECT_EQ(s.termination, "max_iters");
    EXPECT_EQ(s.iterations, c.outer_iters);
    const double final_norm = problem.HyperGradient(x).norm();
    EXPECT_LT(final_norm, c.reduction * start) << c.algorithm;
    EXPECT_LT(rec.records.back().Number("true_hypergrad_norm"), c.reduction * start)
        << c.algorithm;
  }
}

TEST(Solver, ReportsTheContractFieldsAtEveryEvaluation) {
  QuadraticProblem problem(QuadraticOptions(), 0, 1);
  SerialCommunicator comm;
  SolverOptions o = Defaults(problem, "aid-cg");
  o.outer_iters = 25;
  o.eval_every = 10;
  Vec x, y;
  Recorder rec;
  const SolveSummary s = Solve(problem, comm, o, &x, &y, &rec);
  ASSERT_EQ(rec.records.size(), 3u);
  const int iters[] = {10, 20, 25};
  for (size_t i = 0; i < 3; ++i) {
    const MetricsRecord& r = rec.records[i];
    EXPECT_EQ(r.Number("iter"), iters[i]);
    for (const char* key :
         {"time_s", "outer_loss", "hypergrad_norm", "grad_f", "grad_g", "hvp", "jvp",
          "allreduce_calls", "allreduce_bytes", "true_hypergrad_norm", "hypergrad_rel_error",
          "inner_rel_error"})
      EXPECT_TRUE(r.Has(key)) << key;
    // Per iteration: T grad_y G passes over m = 2000 samples.
    EXPECT_EQ(r.Number("grad_g"), iters[i] * 10 * 2000.0);
  }
  EXPECT_EQ(s.last.Number("iter"), 25);
  // aid-cg, T = N = 10 (q = 50, so CG does not stop early): T + 1 + N allreduces per
  // iteration, evaluation excluded.
  EXPECT_EQ(rec.records[0].Number("allreduce_calls"), 10 * 21.0);
}

TEST(Solver, DivergenceEndsTheRunWithTheLastFiniteX) {
  QuadraticProblem problem(QuadraticOptions(), 0, 1);
  SerialCommunicator comm;
  SolverOptions o = Defaults(problem, "aid-cg");
  o.inner_lr = 1.0;  // > 2/L: the inner loop blows up
  o.outer_iters = 1000;
  Vec x, y;
  const SolveSummary s = Solve(problem, comm, o, &x, &y, nullptr);
  EXPECT_EQ(s.termination, "diverged");
  EXPECT_LT(s.iterations, 1000);
  EXPECT_NE(s.message.find("iteration"), std::string::npos);
  EXPECT_TRUE(x.allFinite());
}

TEST(Solver, StopsAtMaxTime) {
  QuadraticProblem problem(QuadraticOptions(), 0, 1);
  SerialCommunicator comm;
  SolverOptions o = Defaults(problem, "aid-cg");
  o.outer_iters = 100000000;
  o.max_time = 0.2;
  Vec x, y;
  const SolveSummary s = Solve(problem, comm, o, &x, &y, nullptr);
  EXPECT_EQ(s.termination, "max_time");
  EXPECT_GE(s.solve_s, 0.2);
  EXPECT_LT(s.iterations, 100000000);
}

TEST(Solver, RejectsInvalidOptionsNamingTheFlag) {
  QuadraticProblem problem(QuadraticOptions(), 0, 1);
  SerialCommunicator comm;
  Vec x, y;
  SolverOptions o;
  o.algorithm = "newton";
  try {
    Solve(problem, comm, o, &x, &y, nullptr);
    FAIL() << "no exception";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("--algorithm"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("stocbio"), std::string::npos);
  }
  o = SolverOptions();
  o.batch_size = 0;
  EXPECT_THROW(Solve(problem, comm, o, &x, &y, nullptr), std::invalid_argument);
  o = SolverOptions();
  o.outer_lr = -1;
  EXPECT_THROW(Solve(problem, comm, o, &x, &y, nullptr), std::invalid_argument);
}

}  // namespace
}  // namespace bilevel
