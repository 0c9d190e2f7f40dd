// A synthetic bilevel problem whose answers are known in closed form (MATH.md section 3).
//
// Inner samples j = 1..m, outer samples i = 1..n (n = m), with a_j, d_i in R^q, b_j, h_i in R^p:
//   G_j(x, y) = 1/2 (a_j^T y + b_j^T x + c_j)^2 + mu/2 |y - y0|^2
//   F_i(x, y) = 1/2 (d_i^T y + h_i^T x - e_i)^2 + rho/2 |x - x0|^2
// so g(x, .) has Hessian H = (1/m) sum a_j a_j^T + mu I, J = (1/m) sum b_j a_j^T (p x q).
// The a_j are whitened so that the eigenvalues of H are exactly mu kappa^{k/(q-1)},
// k = 0..q-1: mu = 1, L = kappa. The offsets are c_j = -(a_j^T y0 + b_j^T x0) + sigma eps_j and
// e_i = d_i^T y0 + h_i^T x0 + sigma eps'_i, so with noise sigma = 0 the solution is
// (x0, y0) and every per-sample gradient vanishes there.
//
// Closed forms: y*(x) = H^{-1} (mu y0 - (1/m) sum a_j (b_j^T x + c_j)), Phi(x) = f(x, y*(x)),
// grad Phi(x) = grad_x f(x, y*) - J H^{-1} grad_y f(x, y*), and x* solving grad Phi = 0.
//
// Every sample is generated from (seed, split, index) alone, so each rank builds its own block;
// the closed forms come from sums over all samples, accumulated in the same order on every rank.
#ifndef BILEVEL_PROBLEMS_QUADRATIC_H_
#define BILEVEL_PROBLEMS_QUADRATIC_H_

#include <Eigen/Dense>
#include <cstdint>

#include "bilevel/problem.h"

namespace bilevel {

struct QuadraticOptions {
  Index dim_outer = 20;      // p
  Index dim_inner = 50;      // q
  Index samples = 2000;      // m = n; at least q
  double kappa = 10.0;       // condition number of H
  double noise = 0.1;        // sigma
  double rho = 0.01;         // outer regularization
  std::uint64_t seed = 1;    // data seed

  bool IsValid(std::string* error) const;
};

class QuadraticProblem : public Problem {
 public:
  // Builds this rank's block of samples and the closed forms.
  QuadraticProblem(const QuadraticOptions& options, int rank, int ranks);

  std::string Name() const override { return "quadratic"; }
  Index DimOuter() const override { return opt_.dim_outer; }
  Index DimInner() const override { return opt_.dim_inner; }
  Index NumSamples(Split) const override { return opt_.samples; }
  Shard LocalShard(Split split) const override { return shard_[static_cast<int>(split)]; }

  double ValueF(ConstVecRef x, ConstVecRef y, const Batch& batch) override;
  double ValueG(ConstVecRef x, ConstVecRef y, const Batch& batch) override;
  void GradXF(ConstVecRef x, ConstVecRef y, const Batch& batch, VecRef out) override;
  void GradYF(ConstVecRef x, ConstVecRef y, const Batch& batch, VecRef out) override;
  void GradYG(ConstVecRef x, ConstVecRef y, const Batch& batch, VecRef out) override;
  void GradXG(ConstVecRef x, ConstVecRef y, const Batch& batch, VecRef out) override;
  void HessianVec(ConstVecRef x, ConstVecRef y, ConstVecRef v, const Batch& batch,
                  VecRef out) override;
  void JacobianVec(ConstVecRef x, ConstVecRef y, ConstVecRef v, const Batch& batch,
                   VecRef out) override;

  ProblemDefaults Defaults(const std::string& algorithm) const override;
  std::vector<std::pair<std::string, std::string>> Describe() const override;
  std::vector<std::pair<std::string, std::string>> Identity() const override;
  // Adds true_hypergrad_norm, hypergrad_rel_error, inner_rel_error, outer_rel_error, phi.
  void EvalReport(ConstVecRef x, ConstVecRef y, ConstVecRef hypergrad, ConstVecRef sums,
                  MetricsRecord* record) const override;

  // Closed forms.
  Vec InnerSolution(ConstVecRef x) const;          // y*(x)
  double Phi(ConstVecRef x) const;                 // f(x, y*(x))
  Vec HyperGradient(ConstVecRef x) const;          // grad Phi(x)
  const Vec& OuterSolution() const { return x_star_; }  // argmin Phi
  const Eigen::MatrixXd& InnerHessian() const { return hess_; }  // H
  double InnerL() const { return opt_.kappa; }     // largest eigenvalue of H
  double OuterL() const { return phi_l_; }         // largest eigenvalue of grad^2 Phi
  double OuterMu() const { return phi_mu_; }       // smallest eigenvalue of grad^2 Phi

 private:
  double ResidualG(Index j, ConstVecRef x, ConstVecRef y) const;
  double ResidualF(Index i, ConstVecRef x, ConstVecRef y) const;
  Vec GradYFull(ConstVecRef x, ConstVecRef y) const;  // grad_y f, closed form
  Vec GradXFull(ConstVecRef x, ConstVecRef y) const;  // grad_x f, closed form

  QuadraticOptions opt_;
  double mu_ = 1.0;
  Shard shard_[2];
  Vec x0_, y0_;
  // This rank's samples, one per row.
  Eigen::MatrixXd a_, b_, d_, h_;
  Vec c_, e_;
  // Means over all samples.
  Eigen::MatrixXd hess_;     // H (q x q)
  Eigen::MatrixXd jac_;      // J (p x q)
  Vec mean_ac_;              // (1/m) sum a_j c_j
  Eigen::MatrixXd dd_, dh_, hh_;  // (1/n) sum d d^T, d h^T, h h^T
  Vec de_, he_;              // (1/n) sum d e, h e
  double ee_ = 0;            // (1/n) sum e^2
  Eigen::LDLT<Eigen::MatrixXd> hess_ldlt_;
  Vec x_star_;
  double phi_l_ = 0, phi_mu_ = 0;
};

}  // namespace bilevel

#endif  // BILEVEL_PROBLEMS_QUADRATIC_H_
