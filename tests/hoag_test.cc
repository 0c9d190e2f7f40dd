// HOAG: AID-CG whose linear solve meets a tolerance that shrinks with k.
#include "bilevel/algorithms/hoag.h"

#include <gtest/gtest.h>

#include "test_rig.h"

namespace bilevel {
namespace {

using testing::RelDiff;
using testing::Rig;

const Vec kX = (Vec(6) << 0.7, 0.1, -0.4, 0.3, 0.2, -0.9).finished();

TEST(Hoag, SolvesToTheScheduledToleranceAndNoFurther) {
  const QuadraticOptions q = [] {
    QuadraticOptions o = testing::SmallQuadratic();
    o.kappa = 200;  // CG needs several iterations
    return o;
  }();
  for (int k : {1, 3, 10}) {
    Rig rig(q);
    rig.options.inner_steps = 3;
    rig.options.hessian_steps = 100;  // a cap the tolerance reaches first
    auto algo = rig.Make("hoag");
    algo->set_iteration(k);
    Vec g(6);
    algo->HypergradientShare(kX, g);
    const auto& hoag = static_cast<Hoag&>(*algo);
    const Vec b = rig.GradYF(kX, algo->y());
    const double residual = (rig.problem.InnerHessian() * hoag.v() - b).norm() / b.norm();
    const double eps = 0.1 / (k * k);
    EXPECT_DOUBLE_EQ(hoag.CgTolerance(), eps);
    EXPECT_LE(residual, eps) << "k = " << k;
    // It stopped as soon as the tolerance was met: textbook CG from v = 0 on the closed-form H
    // meets it after exactly as many iterations.
    const Eigen::MatrixXd& h = rig.problem.InnerHessian();
    Vec v = Vec::Zero(8), r = b, p = b;
    int needed = 0;
    while (r.norm() > eps * b.norm()) {
      const Vec hp = h * p;
      const double a = r.squaredNorm() / p.dot(hp);
      v += a * p;
      const Vec r_new = r - a * hp;
      p = r_new + (r_new.squaredNorm() / r.squaredNorm()) * p;
      r = r_new;
      ++needed;
    }
    EXPECT_EQ(hoag.cg_iterations(), needed) << "k = " << k;
    EXPECT_GE(needed, 2);
  }
}

TEST(Hoag, LaterIterationsSolveMoreAccurately) {
  Rig rig1, rig2;
  rig1.options.inner_steps = rig2.options.inner_steps = 2000;
  rig1.options.hessian_steps = rig2.options.hessian_steps = 100;
  auto a1 = rig1.Make("hoag"), a2 = rig2.Make("hoag");
  a1->set_iteration(1);
  a2->set_iteration(30);
  Vec g1(6), g2(6);
  a1->HypergradientShare(kX, g1);
  a2->HypergradientShare(kX, g2);
  const Vec truth = rig1.problem.HyperGradient(kX);
  EXPECT_LT(RelDiff(g2, truth), RelDiff(g1, truth));
  EXPECT_LT(RelDiff(g2, truth), 1e-4);
}

}  // namespace
}  // namespace bilevel
