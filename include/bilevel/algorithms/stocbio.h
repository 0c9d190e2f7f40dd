// stocBiO (Ji, Yang & Liang, ICML 2021, Algorithm 3).
//
//   1. y <- warm start; T SGD steps y <- y - alpha grad_y G(x, y; S_t), |S_t| = b.
//   2. v_0 = grad_y F(x, y; D_F).
//   3. Neumann series with an independent minibatch B_j for every Hessian factor:
//        r = v_0; acc = v_0; for j = 1..Q: r <- r - eta H(x, y; B_j) r; acc += r
//        v_Q = eta acc           (= eta sum_{j=0..Q} prod_{i<=j} (I - eta H_{B_i}) v_0)
//   4. g_hat = grad_x F(x, y; D_F) - J(x, y; D_G) v_Q.
// Batches: |S_t| = batch_size, |D_F| = outer_batch_size, |B_j| = |D_G| = hessian_batch_size.
//
// Oracles per outer iteration: T grad_y G (b each), grad_y F and grad_x F (|D_F|),
// Q H v (|B_j|), 1 J v (|D_G|).
// Communication per outer iteration: T + 1 + Q allreduces of q doubles (inner steps, v_0,
// Hessian products), then the share grad_x F - J v (p doubles) is reduced to the coordinator.
// With sliced vectors (Algorithm::Sliced) each allreduce of q doubles is a reduce-scatter and
// an allgather of q doubles instead, and each rank updates only its slice of y, r and v.
// With blocks (Algorithm::BlockSparse: sparse data) each of the T + 1 + Q is instead an
// allgather of the blocks the batches touch, and y, r and v are updated on those blocks only;
// on one rank, where the problem takes a block sink (Problem::TakesBlockSink), each step's
// update is made block by block inside the oracle's pass (LazySink).
#ifndef BILEVEL_ALGORITHMS_STOCBIO_H_
#define BILEVEL_ALGORITHMS_STOCBIO_H_

#include <vector>

#include "bilevel/algorithm.h"

namespace bilevel {

class StocBio : public Algorithm {
 public:
  explicit StocBio(const AlgorithmContext& context);

  std::string Name() const override { return "stocbio"; }
  void HypergradientShare(ConstVecRef x, VecRef share) override;
  bool UsesEta() const override { return true; }
  std::vector<std::pair<std::string, Vec*>> State() override {
    return {{"y", &y_}, {"eta", &eta_}};
  }

  // The Neumann estimate v_Q of the last iteration.
  const Vec& v() const { return v_; }

 private:
  // v_Q from r = v_0 = grad_y F(x, y; D_F) (outer_batch_), with whole vectors or slices.
  void WholeSeries(ConstVecRef x);
  // The same on the blocks the batches touch (Algorithm::BlockSparse).
  void BlockSparseSeries(ConstVecRef x);

  Vec v_;
  // The blocks the last block-sparse series touched; off them v_ is zero (when
  // v_zero_off_live_: no whole series ran since).
  std::vector<Index> live_, last_live_;  // last_live_: scratch of BlockSparseSeries
  bool v_zero_off_live_ = true;
};

}  // namespace bilevel

#endif  // BILEVEL_ALGORITHMS_STOCBIO_H_
