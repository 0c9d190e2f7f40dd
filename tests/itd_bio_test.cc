// ITD-BiO: reverse mode through T steps equals the derivative of f(x, y^T(x)); FO-ITD drops
// the second-order terms.
#include "bilevel/algorithms/itd_bio.h"

#include <gtest/gtest.h>

#include "test_rig.h"

namespace bilevel {
namespace {

using testing::RelDiff;
using testing::Rig;

const Vec kX = (Vec(6) << -0.4, 0.2, 0.9, 0.0, 0.6, -1.1).finished();

TEST(ItdBio, EqualsTheDerivativeThroughTheInnerSteps) {
  Rig rig;
  rig.options.inner_steps = 6;
  // A y^0 away from the solution, so that every backward step matters.
  auto algo = rig.Make("itd");
  Vec g(6);
  algo->HypergradientShare(Vec::Zero(6), g);  // y^0 for the next call: the current y
  const Vec y0 = algo->y();
  algo->HypergradientShare(kX, g);
  // Phi_T(x) = f(x, y^T(x)), y^T(x) = T gradient steps from the fixed y0.
  const Index n = rig.problem.NumSamples(Split::kOuter);
  auto phi_t = [&](const Vec& x) {
    const Vec yt = rig.InnerGd(x, y0, 6);
    return rig.problem.ValueF(x, yt, Batch::Range(0, n)) / n;
  };
  Vec fd(6);
  const double h = 1e-5;
  for (Index i = 0; i < 6; ++i) {
    const Vec e = Vec::Unit(6, i) * h;
    fd[i] = (phi_t(kX + e) - phi_t(kX - e)) / (2 * h);
  }
  EXPECT_LT(RelDiff(g, fd), 1e-7);
  // And it is not the exact hypergradient: T = 6 is short.
  EXPECT_GT(RelDiff(g, rig.problem.HyperGradient(kX)), 1e-3);
}

TEST(ItdBio, LongLoopsGiveTheExactHypergradient) {
  Rig rig;
  rig.options.inner_steps = 2000;
  auto algo = rig.Make("itd");
  Vec g(6);
  algo->HypergradientShare(kX, g);
  EXPECT_LT(RelDiff(g, rig.problem.HyperGradient(kX)), 1e-10);
}

TEST(ItdBio, FirstOrderIsThePartialGradient) {
  Rig rig;
  rig.options.inner_steps = 5;
  auto algo = rig.Make("fo-itd");
  Vec g(6);
  algo->HypergradientShare(kX, g);
  EXPECT_LT(RelDiff(g, rig.GradXF(kX, algo->y())), 1e-14);
  EXPECT_EQ(rig.oracles.counts().hvp, 0);
  EXPECT_EQ(rig.oracles.counts().jvp, 0);
}

TEST(ItdBio, CommunicatesTheMinimumPerIteration) {
  for (const char* name : {"itd", "fo-itd"}) {
    Rig rig;
    rig.options.inner_steps = 7;
    auto algo = rig.Make(name);
    Vec g(6);
    algo->HypergradientShare(kX, g);
    const bool first_order = std::string(name) == "fo-itd";
    EXPECT_EQ(rig.comm.stats().allreduce_calls, first_order ? 7 : 2 * 7) << name;
    EXPECT_EQ(rig.oracles.counts().hvp_calls, first_order ? 0 : 6) << name;
    EXPECT_EQ(rig.oracles.counts().jvp_calls, first_order ? 0 : 7) << name;
  }
}

}  // namespace
}  // namespace bilevel
