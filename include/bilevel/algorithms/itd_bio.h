// ITD-BiO: iterative differentiation in reverse mode (Ji, Yang & Liang, ICML 2021,
// Algorithm 2), deterministic (full batch), and its first-order variant.
//
// Forward: y^0 = previous y^T (a constant), y^t = y^{t-1} - alpha grad_y g(x, y^{t-1}).
// Backward (g_hat = d f(x, y^T(x)) / dx):
//   v = grad_y f(x, y^T);  gx = grad_x f(x, y^T)
//   for t = T-1 down to 0:  gx -= alpha J(x, y^t) v;  v -= alpha H(x, y^t) v
// The forward pass stores y^0..y^{T-1} (T q doubles).
// First-order ITD (fo-itd) drops the second-order terms: g_hat = grad_x f(x, y^T).
//
// The H v product at t = 0 is skipped: the v it would produce is never used.
//
// Oracles per outer iteration: T grad_y G (m each), 1 grad_y F and 1 grad_x F (n), T - 1 H v
// and T J v (m); fo-itd: T grad_y G and 1 grad_x F.
// Communication per outer iteration: 2T allreduces of q doubles (T inner steps, grad_y f,
// T - 1 Hessian products), then the share of g_hat (p doubles, with the J v terms accumulated
// locally, since v is the same on every rank) is reduced to the coordinator.
// fo-itd: T allreduces of q, then the reduce of p.
// On one rank, with a problem that takes a block sink (Problem::TakesBlockSink: l2reg on
// sparse data), each inner step is made inside its gradient's pass and sums nothing: T
// allreduces (fo-itd: none).
// With sliced vectors (Algorithm::Sliced) each inner step's allreduce is a reduce-scatter and
// an allgather of q doubles instead.
#ifndef BILEVEL_ALGORITHMS_ITD_BIO_H_
#define BILEVEL_ALGORITHMS_ITD_BIO_H_

#include "bilevel/algorithm.h"

namespace bilevel {

class ItdBio : public Algorithm {
 public:
  ItdBio(const AlgorithmContext& context, bool first_order);

  std::string Name() const override { return first_order_ ? "fo-itd" : "itd"; }
  void HypergradientShare(ConstVecRef x, VecRef share) override;

 private:
  bool first_order_;
  Eigen::MatrixXd trajectory_;  // y^0..y^{T-1}
  Vec v_;
};

}  // namespace bilevel

#endif  // BILEVEL_ALGORITHMS_ITD_BIO_H_
