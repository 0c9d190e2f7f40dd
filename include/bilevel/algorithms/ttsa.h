// TTSA (Hong, Wai, Wang & Yang 2020), a two-timescale stochastic baseline of Ji, Yang & Liang
// (ICML 2021).
//
// Outer iteration k = 1, 2, ...:
//   1. One SGD step y <- y - alpha_k grad_y G(x, y; S), |S| = batch_size, alpha_k = alpha k^{-2/5}
//      (--inner-steps is not used).
//   2. The randomly truncated Neumann estimate of BSA: v = eta Q prod_{j=1..q} (I - eta H_{B_j})
//      grad_y F(x, y; D_F), q ~ U{0..Q-1}.
//   3. g_hat = grad_x F(x, y; D_F) - J(x, y; D_G) v;  x <- x - beta_k g_hat, beta_k = beta k^{-3/5}.
//
// Oracles per outer iteration: 1 grad_y G (b), grad_y F and grad_x F (|D_F|), q H v (|B_j|),
// 1 J v (|D_G|). Communication: 2 + q allreduces of q doubles, then the share of g_hat
// (p doubles) is reduced to the coordinator. With sliced vectors (Algorithm::Sliced) the inner
// step's allreduce is a reduce-scatter and an allgather of q doubles instead.
#ifndef BILEVEL_ALGORITHMS_TTSA_H_
#define BILEVEL_ALGORITHMS_TTSA_H_

#include "bilevel/algorithm.h"

namespace bilevel {

class Ttsa : public Algorithm {
 public:
  explicit Ttsa(const AlgorithmContext& context) : Algorithm(context) {}

  std::string Name() const override { return "ttsa"; }
  void HypergradientShare(ConstVecRef x, VecRef share) override;
  double OuterStepScale(int k) const override;
  bool UsesEta() const override { return true; }
  std::vector<std::pair<std::string, Vec*>> State() override {
    return {{"y", &y_}, {"eta", &eta_}};
  }

  // alpha_k, the inner step of iteration k.
  double InnerStepAt(int k) const;
};

}  // namespace bilevel

#endif  // BILEVEL_ALGORITHMS_TTSA_H_
