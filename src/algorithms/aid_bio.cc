#include "bilevel/algorithms/aid_bio.h"

namespace bilevel {

AidBio::AidBio(const AlgorithmContext& context, Solver solver)
    : Algorithm(context), solver_(solver), v_(Vec::Zero(q())), fused_(2 * q()) {
  hv_.resize(q());
  jv_.resize(p());
  cg_.Resize(q());
}

void AidBio::HypergradientShare(ConstVecRef x, VecRef share) {
  const int n_steps = options().hessian_steps;
  InnerSteps(x, options().inner_steps, /*batch_size=*/0, nullptr);

  // grad_y f and H v0 (v0 = warm start) in one allreduce.
  auto gyf = fused_.head(q());
  auto hv0 = fused_.tail(q());
  oracles().GradYF(x, y_, full_outer_, gyf);
  const double tolerance = CgTolerance();
  double cg_stop = 0;
  if (n_steps > 0) {
    oracles().HessianVec(x, y_, v_, full_inner_, hv0);
    if (solver_ == Solver::kConjugateGradient && tolerance == 0) {
      gyf -= hv0;  // residual r0 = grad_y f - H v0
      comm().AllreduceSum(gyf);
    } else {
      comm().AllreduceSum(fused_);
      if (solver_ == Solver::kConjugateGradient) {
        cg_stop = tolerance * gyf.norm();  // relative to |grad_y f|
        gyf -= hv0;
      }
    }
  }

  DistributedHessian hessian{&oracles(), &comm(), x, y_, &full_inner_};
  if (n_steps == 0) {
    // No solver steps: v keeps its warm start; grad_y f is not needed.
  } else if (solver_ == Solver::kConjugateGradient) {
    cg_iterations_ = ConjugateGradient(hessian, gyf, v_, n_steps, &cg_, cg_stop);
  } else {
    const double eta = this->eta();
    // Step 1 uses the fused H v0; steps 2..N one Hessian product each.
    v_.noalias() -= eta * (hv0 - gyf);
    for (int s = 1; s < n_steps; ++s) {
      hessian.Apply(v_, hv_);
      v_.noalias() -= eta * (hv_ - gyf);
    }
  }

  // Share of g_hat = grad_x f - J v.
  oracles().GradXF(x, y_, full_outer_, share);
  oracles().JacobianVec(x, y_, v_, full_inner_, jv_);
  share -= jv_;
}

}  // namespace bilevel
