// AID-BiO with CG and with the Neumann fixed point, against closed forms.
#include "bilevel/algorithms/aid_bio.h"

#include <gtest/gtest.h>

#include "test_rig.h"

namespace bilevel {
namespace {

using testing::RelDiff;
using testing::Rig;

const Vec kX = (Vec(6) << 0.3, -0.2, 0.5, 1.0, -0.7, 0.1).finished();

TEST(AidBio, ConvergedLoopsGiveTheExactHypergradient) {
  for (const char* name : {"aid-cg", "aid-neumann"}) {
    Rig rig;
    rig.options.inner_steps = 3000;
    rig.options.hessian_steps = std::string(name) == "aid-cg" ? 300 : 3000;
    auto algo = rig.Make(name);
    Vec g(6);
    algo->HypergradientShare(kX, g);
    EXPECT_LT(RelDiff(g, rig.problem.HyperGradient(kX)), 1e-10) << name;
    EXPECT_LT(RelDiff(algo->y(), rig.problem.InnerSolution(kX)), 1e-12) << name;
  }
}

TEST(AidBio, CgSolvesTheSystemAtTheCurrentInnerIterate) {
  // With y not converged (T = 2), CG with N = q iterations still solves H v = grad_y f(x, y):
  // g_hat = grad_x f(x, y) - J H^{-1} grad_y f(x, y) at that y.
  Rig rig;
  rig.options.inner_steps = 2;
  rig.options.hessian_steps = 8;
  auto algo = rig.Make("aid-cg");
  Vec g(6);
  algo->HypergradientShare(kX, g);
  const Vec& y = algo->y();
  EXPECT_LT(RelDiff(y, rig.InnerGd(kX, Vec::Zero(8), 2)), 1e-14);
  const Vec v = rig.problem.InnerHessian().ldlt().solve(rig.GradYF(kX, y));
  const Vec expected = rig.GradXF(kX, y) - rig.Jacobian(kX, y) * v;
  EXPECT_LT(RelDiff(g, expected), 1e-9);
  EXPECT_LT(RelDiff(static_cast<AidBio&>(*algo).v(), v), 1e-9);
}

TEST(AidBio, NeumannIsTheTruncatedSeries) {
  // From v0 = 0, N fixed-point steps give v_N = eta sum_{j<N} (I - eta H)^j b.
  Rig rig;
  rig.options.inner_steps = 3;
  rig.options.hessian_steps = 7;
  auto algo = rig.Make("aid-neumann");
  Vec g(6);
  algo->HypergradientShare(kX, g);
  const Vec& y = algo->y();
  const Eigen::MatrixXd& h = rig.problem.InnerHessian();
  const Vec b = rig.GradYF(kX, y);
  Vec term = b, v = Vec::Zero(8);
  for (int j = 0; j < 7; ++j) {
    v += rig.options.eta * term;
    term -= rig.options.eta * (h * term);
  }
  EXPECT_LT(RelDiff(static_cast<AidBio&>(*algo).v(), v), 1e-12);
  EXPECT_LT(RelDiff(g, rig.GradXF(kX, y) - rig.Jacobian(kX, y) * v), 1e-12);
}

TEST(AidBio, WarmStartsMakeShortLoopsConvergeAtAFixedX) {
  // T = 1 and N = 1 per call: only the warm starts of y and v carry the progress.
  for (const char* name : {"aid-cg", "aid-neumann"}) {
    Rig rig;
    rig.options.inner_steps = 1;
    rig.options.hessian_steps = 1;
    auto algo = rig.Make(name);
    Vec g(6);
    algo->HypergradientShare(kX, g);
    const double first = RelDiff(g, rig.problem.HyperGradient(kX));
    for (int k = 0; k < 600; ++k) algo->HypergradientShare(kX, g);
    EXPECT_GT(first, 0.1) << name;
    EXPECT_LT(RelDiff(g, rig.problem.HyperGradient(kX)), 1e-9) << name;
  }
}

TEST(AidBio, CommunicatesTheMinimumPerIteration) {
  for (const char* name : {"aid-cg", "aid-neumann"}) {
    Rig rig;
    rig.options.inner_steps = 4;
    rig.options.hessian_steps = 5;  // < q: CG does not stop early
    auto algo = rig.Make(name);
    Vec g(6);
    algo->HypergradientShare(kX, g);
    const CommStats before = rig.comm.stats();
    const OracleCounts counts_before = rig.oracles.counts();
    algo->HypergradientShare(kX, g);
    const bool cg = std::string(name) == "aid-cg";
    EXPECT_EQ(rig.comm.stats().allreduce_calls - before.allreduce_calls, cg ? 4 + 1 + 5 : 4 + 5)
        << name;
    EXPECT_EQ(rig.oracles.counts().hvp_calls - counts_before.hvp_calls, cg ? 6 : 5) << name;
    EXPECT_EQ(rig.oracles.counts().jvp - counts_before.jvp, 40) << name;
    EXPECT_EQ(rig.oracles.counts().grad_g - counts_before.grad_g, 4 * 40) << name;
  }
}

}  // namespace
}  // namespace bilevel
