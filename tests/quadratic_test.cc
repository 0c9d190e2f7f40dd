// The quadratic problem: every oracle against central finite differences, the closed forms
// against their definitions, and sharding.
#include "bilevel/problems/quadratic.h"

#include <gtest/gtest.h>

#include <Eigen/Eigenvalues>

#include "bilevel/metrics.h"

namespace bilevel {
namespace {

QuadraticOptions Small() {
  QuadraticOptions o;
  o.dim_outer = 6;
  o.dim_inner = 8;
  o.samples = 40;
  o.kappa = 20;
  o.noise = 0.3;
  return o;
}

Vec Random(Index n, int seed) {
  std::srand(seed);
  return Vec::Random(n);
}

// Relative agreement of two vectors.
double RelDiff(const Vec& a, const Vec& b) { return (a - b).norm() / std::max(b.norm(), 1e-300); }

class QuadraticOracles : public ::testing::Test {
 protected:
  QuadraticOracles() : problem_(Small(), 0, 1) {}
  Batch Sub() { return Batch::List(sub_.data(), static_cast<Index>(sub_.size())); }
  QuadraticProblem problem_;
  std::vector<Index> sub_ = {0, 3, 4, 17, 39};
  Vec x_ = Random(6, 1), y_ = Random(8, 2), v_ = Random(8, 3);
  const double h_ = 1e-5;
};

TEST_F(QuadraticOracles, GradientsMatchFiniteDifferencesOfValues) {
  for (const Batch& batch : {Batch::Range(0, 40), Sub()}) {
    Vec gxf(6), gyf(8), gyg(8), gxg(6);
    problem_.GradXF(x_, y_, batch, gxf);
    problem_.GradYF(x_, y_, batch, gyf);
    problem_.GradYG(x_, y_, batch, gyg);
    problem_.GradXG(x_, y_, batch, gxg);
    Vec fd_xf(6), fd_yf(8), fd_yg(8), fd_xg(6);
    for (Index i = 0; i < 6; ++i) {
      Vec e = Vec::Unit(6, i) * h_;
      fd_xf[i] = (problem_.ValueF(x_ + e, y_, batch) - problem_.ValueF(x_ - e, y_, batch)) / (2 * h_);
      fd_xg[i] = (problem_.ValueG(x_ + e, y_, batch) - problem_.ValueG(x_ - e, y_, batch)) / (2 * h_);
    }
    for (Index i = 0; i < 8; ++i) {
      Vec e = Vec::Unit(8, i) * h_;
      fd_yf[i] = (problem_.ValueF(x_, y_ + e, batch) - problem_.ValueF(x_, y_ - e, batch)) / (2 * h_);
      fd_yg[i] = (problem_.ValueG(x_, y_ + e, batch) - problem_.ValueG(x_, y_ - e, batch)) / (2 * h_);
    }
    EXPECT_LT(RelDiff(gxf, fd_xf), 1e-7);
    EXPECT_LT(RelDiff(gyf, fd_yf), 1e-7);
    EXPECT_LT(RelDiff(gyg, fd_yg), 1e-7);
    EXPECT_LT(RelDiff(gxg, fd_xg), 1e-7);
  }
}

TEST_F(QuadraticOracles, HessianAndJacobianProductsMatchFiniteDifferencesOfGradients) {
  for (const Batch& batch : {Batch::Range(0, 40), Sub()}) {
    Vec hv(8), jv(6), plus(8), minus(8);
    problem_.HessianVec(x_, y_, v_, batch, hv);
    problem_.JacobianVec(x_, y_, v_, batch, jv);
    // H v = d/dt grad_y G(x, y + t v).
    problem_.GradYG(x_, y_ + h_ * v_, batch, plus);
    problem_.GradYG(x_, y_ - h_ * v_, batch, minus);
    EXPECT_LT(RelDiff(hv, (plus - minus) / (2 * h_)), 1e-7);
    // (J v)_i = d/dx_i <grad_y G(x, y), v>.
    Vec fd(6);
    for (Index i = 0; i < 6; ++i) {
      Vec e = Vec::Unit(6, i) * h_;
      problem_.GradYG(x_ + e, y_, batch, plus);
      problem_.GradYG(x_ - e, y_, batch, minus);
      fd[i] = (plus - minus).dot(v_) / (2 * h_);
    }
    EXPECT_LT(RelDiff(jv, fd), 1e-7);
  }
}

TEST_F(QuadraticOracles, EmptyBatchGivesZero) {
  const Batch empty = Batch::Range(0, 0);
  Vec out = Vec::Ones(8);
  problem_.HessianVec(x_, y_, v_, empty, out);
  EXPECT_EQ(out.norm(), 0.0);
  EXPECT_EQ(problem_.ValueF(x_, y_, empty), 0.0);
}

TEST(Quadratic, InnerHessianHasTheRequestedSpectrum) {
  for (double kappa : {1.0, 10.0, 1000.0}) {
    QuadraticOptions o = Small();
    o.kappa = kappa;
    QuadraticProblem problem(o, 0, 1);
    Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> eig(problem.InnerHessian());
    EXPECT_NEAR(eig.eigenvalues()[0], 1.0, 1e-10 * kappa);
    EXPECT_NEAR(eig.eigenvalues()[7], kappa, 1e-10 * kappa);
    // The Hessian the oracles apply is the closed form's.
    Vec v = Random(8, 5), hv(8);
    problem.HessianVec(Vec::Zero(6), Vec::Zero(8), v, Batch::Range(0, 40), hv);
    EXPECT_LT(RelDiff(hv / 40, problem.InnerHessian() * v), 1e-12);
  }
}

TEST(Quadratic, ClosedFormsAreConsistent) {
  QuadraticProblem problem(Small(), 0, 1);
  const Vec x = Random(6, 7);
  const Batch all = Batch::Range(0, 40);
  // y*(x) zeroes the full inner gradient.
  const Vec y_star = problem.InnerSolution(x);
  Vec g(8);
  problem.GradYG(x, y_star, all, g);
  EXPECT_LT(g.norm() / 40, 1e-12);
  // Phi(x) = f(x, y*(x)).
  EXPECT_NEAR(problem.Phi(x), problem.ValueF(x, y_star, Batch::Range(0, 40)) / 40, 1e-12);
  // grad Phi matches central differences of Phi.
  const Vec grad = problem.HyperGradient(x);
  Vec fd(6);
  const double h = 1e-5;
  for (Index i = 0; i < 6; ++i) {
    Vec e = Vec::Unit(6, i) * h;
    fd[i] = (problem.Phi(x + e) - problem.Phi(x - e)) / (2 * h);
  }
  EXPECT_LT(RelDiff(grad, fd), 1e-7);
  // x* is stationary, and the minimum.
  EXPECT_LT(problem.HyperGradient(problem.OuterSolution()).norm(), 1e-12 * grad.norm() + 1e-14);
  EXPECT_LT(problem.Phi(problem.OuterSolution()), problem.Phi(x));
  EXPECT_GT(problem.OuterMu(), 0.0);
  EXPECT_GE(problem.OuterL(), problem.OuterMu());
}

TEST(Quadratic, WithoutNoiseTheSolutionZeroesEveryPerSampleGradient) {
  QuadraticOptions o = Small();
  o.noise = 0;
  QuadraticProblem problem(o, 0, 1);
  const Vec x = problem.OuterSolution(), y = problem.InnerSolution(x);
  for (Index j = 0; j < 40; ++j) {
    Vec gy(8), gx(6);
    problem.GradYG(x, y, Batch::Range(j, j + 1), gy);
    problem.GradXF(x, y, Batch::Range(j, j + 1), gx);
    EXPECT_LT(gy.norm(), 1e-10);
    EXPECT_LT(gx.norm(), 1e-10);
  }
}

TEST(Quadratic, ShardsPartitionTheSamplesAndShareClosedForms) {
  const QuadraticOptions o = Small();
  QuadraticProblem whole(o, 0, 1);
  const Vec x = Random(6, 11), y = Random(8, 12), v = Random(8, 13);
  Vec sum_g = Vec::Zero(8), sum_h = Vec::Zero(8), sum_j = Vec::Zero(6), sum_f = Vec::Zero(6);
  Index next = 0;
  for (int rank = 0; rank < 3; ++rank) {
    QuadraticProblem part(o, rank, 3);
    for (Split s : {Split::kInner, Split::kOuter}) EXPECT_EQ(part.LocalShard(s).begin, next);
    next = part.LocalShard(Split::kInner).end;
    const Batch local = Batch::Range(0, part.LocalShard(Split::kInner).size());
    Vec out6(6), out8(8);
    part.GradYG(x, y, local, out8);
    sum_g += out8;
    part.HessianVec(x, y, v, local, out8);
    sum_h += out8;
    part.JacobianVec(x, y, v, local, out6);
    sum_j += out6;
    part.GradXF(x, y, Batch::Range(0, part.LocalShard(Split::kOuter).size()), out6);
    sum_f += out6;
    // Closed forms do not depend on the shard: bit for bit.
    EXPECT_EQ(part.HyperGradient(x), whole.HyperGradient(x));
    EXPECT_EQ(part.OuterSolution(), whole.OuterSolution());
  }
  EXPECT_EQ(next, 40);
  const Batch all = Batch::Range(0, 40);
  Vec w8(8), w6(6);
  whole.GradYG(x, y, all, w8);
  EXPECT_LT(RelDiff(sum_g, w8), 1e-13);
  whole.HessianVec(x, y, v, all, w8);
  EXPECT_LT(RelDiff(sum_h, w8), 1e-13);
  whole.JacobianVec(x, y, v, all, w6);
  EXPECT_LT(RelDiff(sum_j, w6), 1e-13);
  whole.GradXF(x, y, all, w6);
  EXPECT_LT(RelDiff(sum_f, w6), 1e-13);
}

TEST(Quadratic, ReportsErrorsAgainstTheClosedForms) {
  QuadraticProblem problem(Small(), 0, 1);
  const Vec x = Random(6, 21);
  const Vec truth = problem.HyperGradient(x);
  MetricsRecord r;
  problem.EvalReport(x, problem.InnerSolution(x), truth * 1.5, Vec(), &r);
  EXPECT_NEAR(r.Number("hypergrad_rel_error"), 0.5, 1e-12);
  EXPECT_NEAR(r.Number("true_hypergrad_norm"), truth.norm(), 1e-15);
  EXPECT_LT(r.Number("inner_rel_error"), 1e-15);
}

TEST(Quadratic, RejectsBadOptions) {
  std::string error;
  QuadraticOptions o = Small();
  o.samples = 5;
  EXPECT_FALSE(o.IsValid(&error));
  EXPECT_NE(error.find("--samples"), std::string::npos);
  o = Small();
  o.kappa = 0.5;
  EXPECT_FALSE(o.IsValid(&error));
  EXPECT_NE(error.find("--kappa"), std::string::npos);
  EXPECT_THROW(QuadraticProblem(o, 0, 1), std::invalid_argument);
}

}  // namespace
}  // namespace bilevel
