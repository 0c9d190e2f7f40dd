#include "bilevel/algorithms/aid_bio.h"

#include <cmath>

namespace bilevel {

AidBio::AidBio(const AlgorithmContext& context, Solver solver)
    : Algorithm(context), solver_(solver), v_(Vec::Zero(q())), fused_(2 * q()) {
  hv_.resize(q());
  jv_.resize(p());
  cg_.Resize(q());
  if (solver_ == Solver::kConjugateGradient && options().hessian_steps > 0) UseColumnSums();
}

void AidBio::HypergradientShare(ConstVecRef x, VecRef share) {
  const int n_steps = options().hessian_steps;
  InnerSteps(x, options().inner_steps, /*batch_size=*/0, nullptr);
  const double tolerance = CgTolerance();
  {
    InnerHeld held(oracles().problem());  // every Hessian product of the solve is at this y
    if (n_steps > 0 && solver_ == Solver::kConjugateGradient && Sliced()) {
      SolveSliced(x, tolerance);
    } else {
      SolveWhole(x, tolerance);
    }
  }

  // Share of g_hat = grad_x f - J v.
  oracles().GradXF(x, y_, full_outer_, share);
  oracles().JacobianVec(x, y_, v_, full_inner_, jv_);
  share -= jv_;
}

void AidBio::SolveSliced(ConstVecRef x, double tolerance) {
  // grad_y f and H v0 (v0 = warm start), reduce-scattered: this rank's slice of the residual
  // r0 = grad_y f - H v0, and CG on the slices.
  const Slice s = comm().MySlice(q());
  auto gyf = fused_.head(q());
  auto hv0 = fused_.tail(q());
  oracles().GradYF(x, y_, full_outer_, gyf);
  oracles().HessianVec(x, y_, v_, full_inner_, hv0);
  double cg_stop = 0;
  if (tolerance == 0) {
    gyf -= hv0;
    comm().ReduceScatterSum(gyf);
  } else {
    comm().ReduceScatterSum(gyf);
    comm().ReduceScatterSum(hv0);
    double gyf2 = gyf.segment(s.lo, s.size()).squaredNorm();
    comm().AllreduceSum(&gyf2, 1);
    cg_stop = tolerance * std::sqrt(gyf2);  // relative to |grad_y f|
    gyf.segment(s.lo, s.size()) -= hv0.segment(s.lo, s.size());
  }
  SlicedHessian hessian(&oracles(), &comm(), x, y_, &full_inner_, &whole_, &product_,
                        &block_diagonal_, &columns_);
  cg_.Resize(s.size());
  cg_iterations_ = ConjugateGradient(hessian, gyf.segment(s.lo, s.size()),
                                     v_.segment(s.lo, s.size()), options().hessian_steps, &cg_,
                                     cg_stop);
  comm().AllgatherSlices(v_);
}

void AidBio::SolveWhole(ConstVecRef x, double tolerance) {
  const int n_steps = options().hessian_steps;
  // grad_y f and H v0 (v0 = warm start) in one allreduce.
  auto gyf = fused_.head(q());
  auto hv0 = fused_.tail(q());
  oracles().GradYF(x, y_, full_outer_, gyf);
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
}

}  // namespace bilevel
