#include "bilevel/algorithms/itd_bio.h"

namespace bilevel {

ItdBio::ItdBio(const AlgorithmContext& context, bool first_order)
    : Algorithm(context), first_order_(first_order), v_(q()) {
  hv_.resize(q());
  jv_.resize(p());
}

void ItdBio::HypergradientShare(ConstVecRef x, VecRef share) {
  const int steps = options().inner_steps;
  const double alpha = options().inner_lr;
  if (first_order_) {
    InnerSteps(x, steps, /*batch_size=*/0, nullptr);
    oracles().GradXF(x, y_, full_outer_, share);
    return;
  }
  InnerSteps(x, steps, /*batch_size=*/0, &trajectory_);

  // v = grad_y f(x, y^T) (reduced); gx accumulates this rank's share of g_hat, J v terms
  // included, and is reduced once by the coordinator.
  oracles().GradYF(x, y_, full_outer_, v_);
  oracles().GradXF(x, y_, full_outer_, share);
  comm().AllreduceSum(v_);
  for (int t = steps - 1; t >= 0; --t) {
    const auto yt = trajectory_.col(t);
    oracles().JacobianVec(x, yt, v_, full_inner_, jv_);
    share.noalias() -= alpha * jv_;
    if (t == 0) break;  // the last v update would not be used
    oracles().HessianVec(x, yt, v_, full_inner_, hv_);
    comm().AllreduceSum(hv_);
    v_.noalias() -= alpha * hv_;
  }
}

}  // namespace bilevel
