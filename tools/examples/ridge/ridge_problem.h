// A user's own bilevel problem: ridge regression with one regularization weight per group of
// features, the weights tuned on a validation set.
//
// Features are split into K groups of s features (d = K s). Inner samples j = 1..m (training)
// and outer samples i = 1..n (validation) are pairs (a, b), a in R^d, b in R; with y = w in R^d
// (the regression weights, q = d) and x = lambda in R^K (log-regularization weights, p = K):
//
//   G_j(lambda, w) = 1/2 (a_j^T w - b_j)^2 + 1/2 sum_k exp(lambda_k) |w_k|^2
//   F_i(lambda, w) = 1/2 (a_i^T w - b_i)^2 + rho/2 |lambda|^2
//
// where w_k is the block of w of group k. So g = half the mean squared training error plus the
// penalty (strongly convex in w: its Hessian is (1/m) sum a_j a_j^T + diag(exp(lambda))) and
// f = half the mean squared validation error plus a weak prior on lambda, which keeps the best
// penalties finite (without it, a group that the validation set finds useless would be pushed
// to lambda = +infinity, and a useful one to -infinity).
//
// The data: a ~ N(0, I), b = a^T w_true + noise * N(0, 1), with w_true's entries in group k
// drawn from N(0, 1/(k+1)^2): the groups matter less and less, so the best penalties differ
// from group to group. Every sample is drawn from (seed, split, index) alone,
// so each rank builds only its own block of samples.
#ifndef RIDGE_PROBLEM_H_
#define RIDGE_PROBLEM_H_

#include <bilevel/problem.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace ridge {

struct RidgeOptions {
  bilevel::Index groups = 4;      // K, the dimension of lambda
  bilevel::Index group_size = 5;  // s, features per group
  bilevel::Index train = 100;     // m, inner samples
  bilevel::Index val = 200;       // n, outer samples
  double noise = 2.0;             // standard deviation of the targets' noise
  double rho = 0.05;              // weight of the prior on lambda
  std::uint64_t seed = 7;         // the data
};

class RidgeProblem : public bilevel::Problem {
 public:
  // Builds this rank's blocks of the training and validation samples.
  RidgeProblem(const RidgeOptions& options, int rank, int ranks);

  std::string Name() const override { return "ridge"; }
  bilevel::Index DimOuter() const override { return opt_.groups; }
  bilevel::Index DimInner() const override { return opt_.groups * opt_.group_size; }
  bilevel::Index NumSamples(bilevel::Split split) const override;
  bilevel::Shard LocalShard(bilevel::Split split) const override;

  double ValueF(bilevel::ConstVecRef x, bilevel::ConstVecRef y,
                const bilevel::Batch& batch) override;
  double ValueG(bilevel::ConstVecRef x, bilevel::ConstVecRef y,
                const bilevel::Batch& batch) override;
  void GradXF(bilevel::ConstVecRef x, bilevel::ConstVecRef y, const bilevel::Batch& batch,
              bilevel::VecRef out) override;
  void GradYF(bilevel::ConstVecRef x, bilevel::ConstVecRef y, const bilevel::Batch& batch,
              bilevel::VecRef out) override;
  void GradYG(bilevel::ConstVecRef x, bilevel::ConstVecRef y, const bilevel::Batch& batch,
              bilevel::VecRef out) override;
  void GradXG(bilevel::ConstVecRef x, bilevel::ConstVecRef y, const bilevel::Batch& batch,
              bilevel::VecRef out) override;
  void HessianVec(bilevel::ConstVecRef x, bilevel::ConstVecRef y, bilevel::ConstVecRef v,
                  const bilevel::Batch& batch, bilevel::VecRef out) override;
  void JacobianVec(bilevel::ConstVecRef x, bilevel::ConstVecRef y, bilevel::ConstVecRef v,
                   const bilevel::Batch& batch, bilevel::VecRef out) override;

  std::vector<std::pair<std::string, std::string>> Describe() const override;

 private:
  // a^T w - b for local sample s of a split.
  double Residual(bilevel::Split split, bilevel::Index s, bilevel::ConstVecRef w) const;
  // out = diag(exp(lambda_group(i))) v.
  void Penalty(bilevel::ConstVecRef lambda, bilevel::ConstVecRef v, bilevel::VecRef out) const;

  RidgeOptions opt_;
  bilevel::Shard shard_[2];      // by static_cast<int>(Split)
  Eigen::MatrixXd features_[2];  // d x (local samples): one column per sample
  bilevel::Vec targets_[2];
};

}  // namespace ridge

// Compile-time check: a missing or mistyped oracle is an error naming it.
BILEVEL_PROBLEM(ridge::RidgeProblem);

#endif  // RIDGE_PROBLEM_H_
