#include "bilevel/algorithms/stocbio.h"

namespace bilevel {

StocBio::StocBio(const AlgorithmContext& context) : Algorithm(context), v_(q()) {
  r_.resize(q());
  hv_.resize(q());
  jv_.resize(p());
}

void StocBio::HypergradientShare(ConstVecRef x, VecRef share) {
  const SolverOptions& o = options();
  InnerSteps(x, o.inner_steps, o.batch_size, nullptr);

  // v_0 = grad_y F(x, y; D_F), and this rank's share of grad_x F on the same batch.
  sampler().Draw(Split::kOuter, o.EffectiveOuterBatch(), &outer_batch_);
  oracles().GradYF(x, y_, outer_batch_, r_);
  oracles().GradXF(x, y_, outer_batch_, share);
  const double eta = this->eta();
  if (Sliced()) {
    // The same series on this rank's slices of r and v; v is allgathered for J v.
    comm().ReduceScatterSum(r_);
    const Slice s = comm().MySlice(q());
    auto r = r_.segment(s.lo, s.size());
    auto v = v_.segment(s.lo, s.size());
    auto hv = hv_.segment(s.lo, s.size());
    v = r;
    SlicedHessian hessian(&oracles(), &comm(), x, y_, &batch_, &whole_, &product_);
    for (int j = 1; j <= o.hessian_steps; ++j) {
      sampler().Draw(Split::kInner, o.EffectiveHessianBatch(), &batch_);
      hessian.Apply(r, hv);
      r.noalias() -= eta * hv;
      v += r;
    }
    v *= eta;
    comm().AllgatherSlices(v_);
  } else {
    comm().AllreduceSum(r_);
    // Neumann series, an independent minibatch B_j per factor.
    v_ = r_;
    for (int j = 1; j <= o.hessian_steps; ++j) {
      sampler().Draw(Split::kInner, o.EffectiveHessianBatch(), &batch_);
      oracles().HessianVec(x, y_, r_, batch_, hv_);
      comm().AllreduceSum(hv_);
      r_.noalias() -= eta * hv_;
      v_ += r_;
    }
    v_ *= eta;
  }

  // g_hat share = grad_x F(D_F) share - J(D_G) v share.
  sampler().Draw(Split::kInner, o.EffectiveHessianBatch(), &batch_);
  oracles().JacobianVec(x, y_, v_, batch_, jv_);
  share -= jv_;
}

}  // namespace bilevel
