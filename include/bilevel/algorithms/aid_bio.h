// AID-BiO: approximate implicit differentiation (Ji, Yang & Liang, ICML 2021, Algorithm 1),
// deterministic (full batch).
//
//   1. y <- warm start; T steps y <- y - alpha grad_y g(x, y).
//   2. Solve H v = grad_y f(x, y) approximately, warm-started at the previous v, by
//        CG:       N conjugate-gradient iterations, or
//        Neumann:  N fixed-point steps v <- v - eta (H v - grad_y f).
//   3. g_hat = grad_x f(x, y) - J(x, y) v.
//
// Oracles per outer iteration (m inner samples, n outer samples):
//   T grad_y G (m each), 1 grad_y F + 1 grad_x F (n), N+1 H v (m) for CG or N for Neumann,
//   1 J v (m).
// Communication per outer iteration (q inner, p outer dimension):
//   CG: T + 1 + N allreduces: T of q doubles (inner steps), 1 of q (the residual
//   grad_y f - H v0, fused), at most N of q (H p; CG stops early at an exact solution).
//   Neumann: T + N allreduces: T of q, 1 of 2q (grad_y f and H v0 together), N - 1 of q.
//   Then the share grad_x f - J v (p doubles) is reduced to the coordinator.
//   On one rank, with a problem that takes a block sink (Problem::TakesBlockSink: l2reg on
//   sparse data), each inner step is made inside its gradient's pass and sums nothing: T
//   fewer allreduces (CG: 1 + N).
// When y-space vectors are sliced (Algorithm::Sliced: more than one rank and
// q >= SolverOptions::slice_min), every
// rank updates only its slice of y and of CG's vectors, and each allreduce of q doubles above
// becomes a reduce-scatter and an allgather of q doubles (the same bytes):
//   inner steps: T reduce-scatters + T allgathers;
//   CG: 1 reduce-scatter (r0; 2 with a tolerance, then also 1 allreduce of one double for
//   |grad_y f|), per iteration 1 allgather (p) + 1 reduce-scatter (H p) + 2 allreduces of one
//   double (CG's dot products), 1 more of one double before the first iteration, and 1
//   allgather of v at the end.
//   Neumann is not sliced.
//   CG on a problem with products by columns (ColumnSums: l2reg on sparse data): the inner
//   steps' and the H p's reduce-scatters become one allgather each of the n C values of R
//   (n inner samples, C per sample) instead of q doubles, and y's slices are uneven, set by
//   the problem (Problem::ColumnSliceBounds) to even out the work of the columns.
#ifndef BILEVEL_ALGORITHMS_AID_BIO_H_
#define BILEVEL_ALGORITHMS_AID_BIO_H_

#include "bilevel/algorithm.h"
#include "bilevel/linear_solvers.h"

namespace bilevel {

class AidBio : public Algorithm {
 public:
  enum class Solver { kConjugateGradient, kNeumann };
  AidBio(const AlgorithmContext& context, Solver solver);

  std::string Name() const override {
    return solver_ == Solver::kConjugateGradient ? "aid-cg" : "aid-neumann";
  }
  void HypergradientShare(ConstVecRef x, VecRef share) override;
  std::vector<std::pair<std::string, Vec*>> State() override {
    if (solver_ == Solver::kNeumann) return {{"y", &y_}, {"v", &v_}, {"eta", &eta_}};
    return {{"y", &y_}, {"v", &v_}};
  }
  bool UsesEta() const override { return solver_ == Solver::kNeumann; }

  // The linear-system solution v of the last iteration, and the CG iterations it took.
  const Vec& v() const { return v_; }
  int cg_iterations() const { return cg_iterations_; }

 protected:
  // CG stops once |H v - grad_y f| <= CgTolerance() |grad_y f| (0: only after N iterations);
  // HOAG shrinks it with k.
  virtual double CgTolerance() const { return 0; }

 private:
  // Step 2 on slices (Sliced(), CG), or with whole vectors.
  void SolveSliced(ConstVecRef x, double tolerance);
  void SolveWhole(ConstVecRef x, double tolerance);

  int cg_iterations_ = 0;
  Solver solver_;
  Vec v_;       // warm start of the linear solve
  Vec fused_;   // scratch: [grad_y f share; H v share]
  CgScratch cg_;
};

}  // namespace bilevel

#endif  // BILEVEL_ALGORITHMS_AID_BIO_H_
