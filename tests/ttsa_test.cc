// TTSA: one inner step of a decaying size per outer step, the BSA estimate, a decaying outer step.
#include "bilevel/algorithms/ttsa.h"

#include <gtest/gtest.h>

#include <cmath>

#include "test_rig.h"

namespace bilevel {
namespace {

using testing::RelDiff;
using testing::Rig;

const Vec kX = (Vec(6) << -0.1, 0.4, 0.9, -0.5, 0.3, 0.0).finished();

TEST(Ttsa, TakesOneInnerStepOfTheScheduledSize) {
  Rig rig;
  rig.options.batch_size = 40;  // full batch: the step is deterministic
  rig.options.hessian_steps = 3;
  auto algo = rig.Make("ttsa");
  algo->set_eta(rig.options.eta);
  algo->set_iteration(8);
  Vec g(6);
  algo->HypergradientShare(kX, g);
  const double alpha_8 = rig.options.inner_lr * std::pow(8.0, -0.4);
  const Vec expected = -alpha_8 * rig.GradYG(kX, Vec::Zero(8));
  EXPECT_LT(RelDiff(algo->y(), expected), 1e-14);
  EXPECT_EQ(rig.oracles.counts().grad_g_calls, 1);
  EXPECT_NEAR(static_cast<Ttsa&>(*algo).InnerStepAt(8), alpha_8, 1e-15);
  EXPECT_NEAR(algo->OuterStepScale(32), std::pow(32.0, -0.6), 1e-15);
  EXPECT_DOUBLE_EQ(algo->OuterStepScale(1), 1.0);
}

TEST(Ttsa, CommunicatesOneInnerStepAndTheTruncatedSeries) {
  Rig rig;
  rig.options.batch_size = 4;
  rig.options.hessian_steps = 5;
  auto algo = rig.Make("ttsa");
  algo->set_eta(rig.options.eta);
  Vec g(6);
  algo->HypergradientShare(kX, g);
  // 1 inner step + grad_y F + q Hessian products, q < Q.
  const auto calls = rig.comm.stats().allreduce_calls;
  EXPECT_EQ(calls, 2 + rig.oracles.counts().hvp_calls);
  EXPECT_LT(rig.oracles.counts().hvp_calls, 5);
}

}  // namespace
}  // namespace bilevel
