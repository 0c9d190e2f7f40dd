// BSA: the randomly truncated Neumann estimate, and the growing inner loop and decaying step.
#include "bilevel/algorithms/bsa.h"

#include <gtest/gtest.h>

#include "test_rig.h"

namespace bilevel {
namespace {

using testing::RelDiff;
using testing::Rig;

const Vec kX = (Vec(6) << 0.2, -0.6, 0.1, 0.8, -0.3, 0.5).finished();

// g_hat with q Hessian factors on full batches, from the closed-form matrices, at y.
Vec Candidate(Rig& rig, const Vec& y, int q, int q_max) {
  const double eta = rig.options.eta;
  Vec r = rig.GradYF(kX, y);
  for (int j = 0; j < q; ++j) r -= eta * (rig.problem.InnerHessian() * r);
  return rig.GradXF(kX, y) - rig.Jacobian(kX, y) * (eta * q_max * r);
}

TEST(Bsa, EachEstimateIsATruncationAndTheyAreUniform) {
  // Full batches: the only randomness is q ~ U{0..Q-1}, so each g_hat is one of Q candidates,
  // each drawn with probability 1/Q; their mean is the truncated Neumann series.
  const int runs = 2000, q_max = 4;
  std::vector<int> hits(q_max, 0);
  for (int seed = 0; seed < runs; ++seed) {
    Rig rig(testing::SmallQuadratic(), seed);
    rig.options.inner_steps = 2;
    rig.options.hessian_steps = q_max;
    rig.options.batch_size = 40;
    auto algo = rig.Make("bsa");
    algo->set_eta(rig.options.eta);
    Vec g(6);
    algo->HypergradientShare(kX, g);
    int matched = -1;
    for (int q = 0; q < q_max; ++q)
      if (RelDiff(g, Candidate(rig, algo->y(), q, q_max)) < 1e-12) matched = q;
    ASSERT_GE(matched, 0) << "seed " << seed << ": not a truncation of the series";
    ++hits[matched];
  }
  // Binomial(2000, 1/4): mean 500, sd 19.4.
  for (int q = 0; q < q_max; ++q) EXPECT_NEAR(hits[q], runs / q_max, 100) << "q = " << q;
}

TEST(Bsa, InnerLoopGrowsAndOuterStepDecays) {
  Rig rig;
  rig.options.inner_steps = 3;
  rig.options.batch_size = 5;
  auto algo = rig.Make("bsa");
  auto& bsa = static_cast<Bsa&>(*algo);
  EXPECT_EQ(bsa.InnerStepsAt(1), 3);
  EXPECT_EQ(bsa.InnerStepsAt(4), 6);
  EXPECT_EQ(bsa.InnerStepsAt(10), 10);  // ceil(3 sqrt(10)) = ceil(9.49)
  EXPECT_DOUBLE_EQ(bsa.OuterStepScale(4), 0.5);
  algo->set_iteration(4);
  Vec g(6);
  algo->HypergradientShare(kX, g);
  EXPECT_EQ(rig.oracles.counts().grad_g, 6 * 5);
}

}  // namespace
}  // namespace bilevel
