// BSA (Ghadimi & Wang 2018), the stochastic baseline of Ji, Yang & Liang (ICML 2021).
//
// Outer iteration k = 1, 2, ...:
//   1. y <- warm start; T_k = ceil(T sqrt(k)) SGD steps y <- y - alpha grad_y G(x, y; S_t),
//      |S_t| = batch_size: the inner loop grows with k.
//   2. v = eta Q prod_{j=1..q} (I - eta H(x, y; B_j)) grad_y F(x, y; D_F), q ~ U{0..Q-1}, a
//      Neumann estimate with a random truncation (unbiased for eta sum_{j<Q} (I - eta H)^j).
//   3. g_hat = grad_x F(x, y; D_F) - J(x, y; D_G) v;  x <- x - (beta / sqrt(k)) g_hat.
//
// Oracles per outer iteration: T_k grad_y G (b each), grad_y F and grad_x F (|D_F|), q H v
// (|B_j|), 1 J v (|D_G|). Communication: T_k + 1 + q allreduces of q doubles, then the share of
// g_hat (p doubles) is reduced to the coordinator.
// With sliced vectors (Algorithm::Sliced) each inner step's allreduce is a reduce-scatter and
// an allgather of q doubles instead.
#ifndef BILEVEL_ALGORITHMS_BSA_H_
#define BILEVEL_ALGORITHMS_BSA_H_

#include "bilevel/algorithm.h"

namespace bilevel {

class Bsa : public Algorithm {
 public:
  explicit Bsa(const AlgorithmContext& context) : Algorithm(context) {}

  std::string Name() const override { return "bsa"; }
  void HypergradientShare(ConstVecRef x, VecRef share) override;
  double OuterStepScale(int k) const override;
  bool UsesEta() const override { return true; }
  std::vector<std::pair<std::string, Vec*>> State() override {
    return {{"y", &y_}, {"eta", &eta_}};
  }

  // T_k, the inner steps of iteration k.
  int InnerStepsAt(int k) const;
};

}  // namespace bilevel

#endif  // BILEVEL_ALGORITHMS_BSA_H_
