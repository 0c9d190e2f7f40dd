// HOAG (Pedregosa 2016), the deterministic baseline of Ji, Yang & Liang (ICML 2021): AID with
// conjugate gradient whose tolerance shrinks with the outer iteration k = 1, 2, ...:
//
//   1. y <- warm start; T steps y <- y - alpha grad_y g(x, y) (full batch).
//   2. CG on H v = grad_y f(x, y), warm-started, until |H v - grad_y f| <= eps_k |grad_y f|,
//      eps_k = 0.1 / k^2 (a summable sequence), at most N iterations (--hessian-steps).
//   3. g_hat = grad_x f(x, y) - J(x, y) v.
//
// Oracles and communication: those of aid-cg with the CG iterations actually done; the first
// allreduce carries grad_y f and H v0 (2q doubles) so that the tolerance can be relative.
#ifndef BILEVEL_ALGORITHMS_HOAG_H_
#define BILEVEL_ALGORITHMS_HOAG_H_

#include "bilevel/algorithms/aid_bio.h"

namespace bilevel {

class Hoag : public AidBio {
 public:
  explicit Hoag(const AlgorithmContext& context)
      : AidBio(context, AidBio::Solver::kConjugateGradient) {}

  std::string Name() const override { return "hoag"; }

  // eps_k of the current iteration.
  double CgTolerance() const override;
};

}  // namespace bilevel

#endif  // BILEVEL_ALGORITHMS_HOAG_H_
