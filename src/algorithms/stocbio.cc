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

  // Neumann series, an independent minibatch B_j per factor: v = eta sum_j r_j, with whole
  // vectors or with this rank's slices of r and v (v is then allgathered for J v).
  const double eta = this->eta();
  auto series = [&](auto& hessian, VecRef r, VecRef v, VecRef hv) {
    v = r;
    for (int j = 1; j <= o.hessian_steps; ++j) {
      sampler().Draw(Split::kInner, o.EffectiveHessianBatch(), &batch_);
      hessian.Apply(r, hv);
      r.noalias() -= eta * hv;
      v += r;
    }
    v *= eta;
  };
  if (Sliced()) {
    comm().ReduceScatterSum(r_);
    const Slice s = comm().MySlice(q());
    SlicedHessian hessian(&oracles(), &comm(), x, y_, &batch_, &whole_, &product_);
    series(hessian, r_.segment(s.lo, s.size()), v_.segment(s.lo, s.size()),
           hv_.segment(s.lo, s.size()));
    comm().AllgatherSlices(v_);
  } else {
    comm().AllreduceSum(r_);
    DistributedHessian hessian{&oracles(), &comm(), x, y_, &batch_};
    series(hessian, r_, v_, hv_);
  }

  // g_hat share = grad_x F(D_F) share - J(D_G) v share.
  sampler().Draw(Split::kInner, o.EffectiveHessianBatch(), &batch_);
  oracles().JacobianVec(x, y_, v_, batch_, jv_);
  share -= jv_;
}

}  // namespace bilevel
