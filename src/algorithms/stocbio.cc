#include "bilevel/algorithms/stocbio.h"

#include <algorithm>

namespace bilevel {

StocBio::StocBio(const AlgorithmContext& context) : Algorithm(context), v_(Vec::Zero(q())) {
  r_.resize(q());
  hv_.resize(q());
  jv_.resize(p());
}

void StocBio::HypergradientShare(ConstVecRef x, VecRef share) {
  const SolverOptions& o = options();
  InnerSteps(x, o.inner_steps, o.batch_size, nullptr);

  // v_0 = grad_y F(x, y; D_F), and this rank's share of grad_x F on the same batch.
  sampler().Draw(Split::kOuter, o.EffectiveOuterBatch(), &outer_batch_);
  if (BlockSparse(o.EffectiveHessianBatch())) {
    BlockSparseSeries(x);
  } else {
    WholeSeries(x);
    v_zero_off_live_ = false;
  }
  oracles().GradXF(x, y_, outer_batch_, share);

  // g_hat share = grad_x F(D_F) share - J(D_G) v share.
  sampler().Draw(Split::kInner, o.EffectiveHessianBatch(), &batch_);
  if (v_zero_off_live_) {
    oracles().JacobianVec(x, y_, v_, batch_, live_, jv_);
  } else {
    oracles().JacobianVec(x, y_, v_, batch_, jv_);
  }
  share -= jv_;
}

void StocBio::WholeSeries(ConstVecRef x) {
  const SolverOptions& o = options();
  oracles().GradYF(x, y_, outer_batch_, r_);

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
    SlicedHessian hessian(&oracles(), &comm(), x, y_, &batch_, &whole_, &product_,
                          &block_diagonal_);
    series(hessian, r_.segment(s.lo, s.size()), v_.segment(s.lo, s.size()),
           hv_.segment(s.lo, s.size()));
    comm().AllgatherSlices(v_);
  } else {
    comm().AllreduceSum(r_);
    DistributedHessian hessian{&oracles(), &comm(), x, y_, &batch_};
    series(hessian, r_, v_, hv_);
  }
}

void StocBio::BlockSparseSeries(ConstVecRef x) {
  const SolverOptions& o = options();
  const double eta = this->eta();
  BlockSums& sums = block_sums();
  const Index block = sums.block_size();
  // r = v = grad_y F(D_F), nonzero only on the blocks D_F touches; zero elsewhere until a
  // factor's batch touches them (lazy_ holds them as zero, unwritten: a block is zero-filled
  // or written whole when the series first reaches it). v_ itself is zero off the blocks the
  // last series touched (live_); those of them that this series leaves alone are cleared at
  // its end.
  if (!v_zero_off_live_) v_.setZero();
  lazy_.Start(oracles().problem(), x, eta, block, /*zero=*/true);
  sums.Touch(Split::kOuter, outer_batch_);
  const double f_scale = oracles().GradYFSum(x, y_, outer_batch_, hv_, /*touched_only=*/true);
  sums.Exchange(hv_.data());
  const std::vector<Index>& blocks = sums.blocks();
  for (std::size_t k = 0; k < blocks.size(); ++k) {
    const Index lo = blocks[k] * block;
    for (Index j = 0; j < block; ++j) r_[lo + j] = v_[lo + j] = f_scale * sums.sum(k)[j];
    lazy_.Set(blocks[k], 0);
  }
  // Factor j: r <- f o r - eta scale H_0(B_j) r, v <- v + r, f = 1 - eta s; the blocks B_j
  // does not touch take r <- f o r, v <- v + r later (lazy_).
  // (On one rank, where the problem takes a sink, each factor's step is made in its pass.)
  for (int j = 0; j < o.hessian_steps; ++j) {
    sampler().Draw(Split::kInner, o.EffectiveHessianBatch(), &batch_);
    lazy_.CatchUpBlocks(sums.Touch(Split::kInner, batch_), j, r_.data(), v_.data());
    BlockSparseStep(j, eta, batch_, r_.data(), v_.data(), hv_.data(), [&] {
      return oracles().HessianVecSum(x, y_, r_, batch_, hv_, /*omit_diagonal=*/true,
                                     /*touched_only=*/true);
    });
  }
  // v = eta acc on the blocks the series touched; r is not needed any more.
  last_live_.swap(live_);
  lazy_.FinishSeries(o.hessian_steps, eta, r_.data(), v_.data(), &live_);
  if (v_zero_off_live_) {
    // The last series' blocks that are not this one's (both lists increasing).
    auto now = live_.begin();
    for (const Index b : last_live_) {
      while (now != live_.end() && *now < b) ++now;
      if (now != live_.end() && *now == b) continue;
      double* vb = v_.data() + b * block;
      for (Index j = 0; j < block; ++j) vb[j] = 0.0;
    }
  }
  v_zero_off_live_ = true;
}

}  // namespace bilevel
