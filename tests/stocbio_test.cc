// stocBiO: the full-batch estimate is the Neumann formula; with minibatches the estimate is
// unbiased because every Hessian factor has its own batch.
#include "bilevel/algorithms/stocbio.h"

#include <gtest/gtest.h>

#include "test_rig.h"

namespace bilevel {
namespace {

using testing::RelDiff;
using testing::Rig;

const Vec kX = (Vec(6) << 0.5, 0.5, -0.3, 0.2, -0.9, 0.4).finished();

// g_hat of stocBiO on full batches, from the closed-form matrices.
Vec FullBatchEstimate(Rig& rig, const Vec& x, int steps, int q_terms) {
  const Vec y = rig.InnerGd(x, Vec::Zero(rig.problem.DimInner()), steps);
  const Eigen::MatrixXd& h = rig.problem.InnerHessian();
  const double eta = rig.options.eta;
  Vec r = rig.GradYF(x, y), acc = r;
  for (int j = 1; j <= q_terms; ++j) {
    r -= eta * (h * r);
    acc += r;
  }
  return rig.GradXF(x, y) - rig.Jacobian(x, y) * (eta * acc);
}

TEST(StocBio, FullBatchesGiveTheNeumannFormula) {
  Rig rig;
  rig.options.inner_steps = 5;
  rig.options.hessian_steps = 4;
  rig.options.batch_size = 40;  // = m: full batches
  auto algo = rig.Make("stocbio");
  Vec g(6);
  algo->HypergradientShare(kX, g);
  EXPECT_LT(RelDiff(g, FullBatchEstimate(rig, kX, 5, 4)), 1e-12);
}

TEST(StocBio, LongFullBatchLoopsGiveTheExactHypergradient) {
  Rig rig;
  rig.options.inner_steps = 3000;
  rig.options.hessian_steps = 3000;
  rig.options.batch_size = 40;
  auto algo = rig.Make("stocbio");
  Vec g(6);
  algo->HypergradientShare(kX, g);
  EXPECT_LT(RelDiff(g, rig.problem.HyperGradient(kX)), 1e-10);
}

TEST(StocBio, MinibatchEstimateIsUnbiased) {
  // On a quadratic, v_Q and g_hat are multilinear in independent minibatch quantities, so their
  // means over seeds are the full-batch values. Reusing one batch for all Hessian factors
  // would bias v_Q by terms in the variance of H_B, which batches of one sample make large.
  const int runs = 6000, steps = 3, q_terms = 4;
  Rig reference;
  const Vec y = reference.InnerGd(kX, Vec::Zero(8), steps);
  const Eigen::MatrixXd& h = reference.problem.InnerHessian();
  const double eta = reference.options.eta;
  Vec r = reference.GradYF(kX, y), acc = r;
  for (int j = 1; j <= q_terms; ++j) {
    r -= eta * (h * r);
    acc += r;
  }
  const Vec expected_v = eta * acc;
  const Vec expected_g = FullBatchEstimate(reference, kX, steps, q_terms);
  Vec sum_v = Vec::Zero(8), sq_v = Vec::Zero(8), sum_g = Vec::Zero(6), sq_g = Vec::Zero(6);
  for (int seed = 0; seed < runs; ++seed) {
    Rig rig(testing::SmallQuadratic(), seed);
    rig.options.inner_steps = steps;
    rig.options.hessian_steps = q_terms;
    rig.options.batch_size = 4;
    rig.options.hessian_batch_size = 1;
    auto algo = rig.Make("stocbio");
    Vec g(6);
    algo->HypergradientShare(kX, g);
    const Vec& v = static_cast<StocBio&>(*algo).v();
    sum_v += v, sq_v += v.cwiseAbs2(), sum_g += g, sq_g += g.cwiseAbs2();
  }
  auto check = [&](const Vec& sum, const Vec& sq, const Vec& expected, const char* what) {
    const Vec mean = sum / runs;
    const Vec se = ((sq / runs - mean.cwiseAbs2()) / runs).cwiseSqrt();
    for (Index i = 0; i < mean.size(); ++i)
      EXPECT_LT(std::abs(mean[i] - expected[i]), 5 * se[i]) << what << " coordinate " << i;
  };
  check(sum_v, sq_v, expected_v, "v_Q");
  check(sum_g, sq_g, expected_g, "g_hat");
}

TEST(StocBio, DrawsTheBatchesItDeclares) {
  Rig rig;
  rig.options.inner_steps = 3;
  rig.options.hessian_steps = 5;
  rig.options.batch_size = 4;
  rig.options.outer_batch_size = 6;
  rig.options.hessian_batch_size = 7;
  auto algo = rig.Make("stocbio");
  Vec g(6);
  algo->HypergradientShare(kX, g);
  const OracleCounts& c = rig.oracles.counts();
  EXPECT_EQ(c.grad_g, 3 * 4);
  EXPECT_EQ(c.grad_f, 2 * 6);  // grad_y F and grad_x F on D_F
  EXPECT_EQ(c.hvp, 5 * 7);
  EXPECT_EQ(c.hvp_calls, 5);
  EXPECT_EQ(c.jvp, 7);
  EXPECT_EQ(rig.comm.stats().allreduce_calls, 3 + 1 + 5);
}

}  // namespace
}  // namespace bilevel
