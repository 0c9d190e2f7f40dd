// A one-process setup for algorithm tests: a quadratic problem, a serial communicator and the
// engine's oracles and sampler.
#ifndef BILEVEL_TESTS_TEST_RIG_H_
#define BILEVEL_TESTS_TEST_RIG_H_

#include <memory>
#include <string>

#include "bilevel/algorithm.h"
#include "bilevel/communicator.h"
#include "bilevel/oracles.h"
#include "bilevel/problems/quadratic.h"
#include "bilevel/sampler.h"

namespace bilevel::testing {

inline QuadraticOptions SmallQuadratic() {
  QuadraticOptions o;
  o.dim_outer = 6;
  o.dim_inner = 8;
  o.samples = 40;
  o.kappa = 10;
  o.noise = 0.3;
  return o;
}

struct Rig {
  explicit Rig(const QuadraticOptions& q = SmallQuadratic(), std::uint64_t seed = 0)
      : problem(q, 0, 1), oracles(&problem), sampler(problem, seed) {
    options.inner_lr = 1.0 / problem.InnerL();
    options.eta = 1.0 / problem.InnerL();
  }
  std::unique_ptr<Algorithm> Make(const std::string& name) {
    options.algorithm = name;
    return MakeAlgorithm(name, AlgorithmContext{&oracles, &comm, &sampler, &options});
  }
  // Full-batch means over the whole split, from the problem's sums.
  Vec GradXF(const Vec& x, const Vec& y) {
    Vec out(problem.DimOuter());
    problem.GradXF(x, y, Batch::Range(0, problem.NumSamples(Split::kOuter)), out);
    return out / static_cast<double>(problem.NumSamples(Split::kOuter));
  }
  Vec GradYF(const Vec& x, const Vec& y) {
    Vec out(problem.DimInner());
    problem.GradYF(x, y, Batch::Range(0, problem.NumSamples(Split::kOuter)), out);
    return out / static_cast<double>(problem.NumSamples(Split::kOuter));
  }
  Vec GradYG(const Vec& x, const Vec& y) {
    Vec out(problem.DimInner());
    problem.GradYG(x, y, Batch::Range(0, problem.NumSamples(Split::kInner)), out);
    return out / static_cast<double>(problem.NumSamples(Split::kInner));
  }
  // J of the closed form (p x q), from JacobianVec on unit vectors.
  Eigen::MatrixXd Jacobian(const Vec& x, const Vec& y) {
    const Index p = problem.DimOuter(), q = problem.DimInner();
    Eigen::MatrixXd j(p, q);
    Vec col(p);
    for (Index k = 0; k < q; ++k) {
      problem.JacobianVec(x, y, Vec::Unit(q, k), Batch::Range(0, problem.NumSamples(Split::kInner)),
                          col);
      j.col(k) = col / static_cast<double>(problem.NumSamples(Split::kInner));
    }
    return j;
  }
  // y after `steps` full-batch gradient steps from y0.
  Vec InnerGd(const Vec& x, Vec y, int steps) {
    for (int t = 0; t < steps; ++t) y -= options.inner_lr * GradYG(x, y);
    return y;
  }

  QuadraticProblem problem;
  SerialCommunicator comm;
  Oracles oracles;
  Sampler sampler;
  SolverOptions options;
};

inline double RelDiff(const Vec& a, const Vec& b) {
  return (a - b).norm() / std::max(b.norm(), 1e-300);
}

}  // namespace bilevel::testing

#endif  // BILEVEL_TESTS_TEST_RIG_H_
