// Per-feature L2 hyperparameter optimization (MATH.md section 3): one regularization weight per
// feature of a softmax classifier, tuned on validation data.
//
//   x = lambda in R^d, y = W in R^{d x C} (row-major), both 0 at the start;
//   G_j(lambda, W) = CE(W^T a_j, label_j) + 1/(2 d C) sum_{k,c} exp(lambda_k) W_kc^2
//   F_i(W)         = CE(W^T a_i, label_i) over the validation samples.
// Oracles on a batch B of training rows (P = softmax(A_B W), E = one-hot labels,
// D = diag(exp(lambda)) / (d C)):
//   grad_W G = A_B^T (P - E) + |B| D W
//   H V      = A_B^T S + |B| D V,   S_i = P_i o U_i - P_i <P_i, U_i>,  U = A_B V
//   (J V)_k  = |B| exp(lambda_k) <W_k, V_k> / (d C)       (every feature, whatever the batch)
//   grad_lambda G: |B| exp(lambda_k) |W_k|^2 / (2 d C);    grad_lambda F = 0.
// Evaluation adds test_loss, test_acc and statistics of lambda.
#ifndef BILEVEL_SRC_PROBLEMS_L2REG_H_
#define BILEVEL_SRC_PROBLEMS_L2REG_H_

#include <string>

#include "bilevel/problem.h"
#include "problems/softmax_problem.h"

namespace bilevel::problems {

class L2RegProblem : public SoftmaxProblem {
 public:
  // Reads this rank's block of every split of the dataset file `path` (dense or CSR).
  L2RegProblem(const std::string& path, int rank, int ranks);

  std::string Name() const override { return "l2reg"; }
  // One lambda per feature of the file; W has rows for the train split's features only (the
  // others' weights are 0 for any lambda, and so is their hypergradient: DataBlocks).
  Index DimOuter() const override { return file_features(); }

  double ValueG(ConstVecRef x, ConstVecRef y, const Batch& batch) override;
  void GradYG(ConstVecRef x, ConstVecRef y, const Batch& batch, VecRef out) override;
  void GradXG(ConstVecRef x, ConstVecRef y, const Batch& batch, VecRef out) override;
  void HessianVec(ConstVecRef x, ConstVecRef y, ConstVecRef v, const Batch& batch,
                  VecRef out) override;
  void JacobianVec(ConstVecRef x, ConstVecRef y, ConstVecRef v, const Batch& batch,
                   VecRef out) override;

  // The regularizer, exp(lambda_k) / (d C) on every entry of feature k's row, is the same for
  // every sample: on more than one rank the engine applies it to each rank's slice of W.
  bool HasSampleDiagonal() const override { return true; }
  void AddSampleDiagonal(ConstVecRef x, Index lo, ConstVecRef m, VecRef out) const override;
  // On sparse data, full-batch products by columns (R = P - E for grad_y G_0, S for H_0 v:
  // one row of C per sample) on more than one rank.
  Index ColumnFactorWidth() const override { return train_.csr() ? train_.classes() : 0; }
  void ColumnFactors(ConstVecRef x, ConstVecRef y, const double* v, double* r) override;
  void PrepareColumns(Index lo, Index hi) override { PrepareTrainColumns(lo, hi); }
  void ColumnProduct(const double* r, Index lo, Index hi, double* out) const override {
    TrainColumnProduct(r, lo, hi, out);
  }
  std::vector<Index> ColumnSliceBounds(int ranks) const override {
    return TrainColumnSliceBounds(ranks, kEntryCost);
  }
  // The work of the passes over an entry of y (ColumnProduct's per feature, the steps, CG's
  // vectors) relative to that of a stored entry in ColumnProduct (C multiply-adds), measured
  // on 20 Newsgroups on 2 ranks: 0.85 left rank 1 (the rare features) the slower, 1.5 rank 0
  // (the time each waits in the collectives, perf).
  static constexpr double kEntryCost = 1.15;
  // On sparse data, a batch touches the rows of W of the features its rows use (a block is a
  // feature's C weights); on dense data every row, and the engine gains nothing from blocks.
  Index BlockSize() const override { return train_.csr() ? train_.classes() : 0; }
  bool TakesBlockSink() const override { return BlockSize() > 0; }
  void TouchedBlocks(Split split, const Batch& batch, std::vector<Index>* blocks) override;
  // out_k = |B| exp(lambda_k) / (dC) W_k . v_k on the blocks (features) of v, 0 elsewhere.
  void JacobianVecOnBlocks(ConstVecRef x, ConstVecRef y, ConstVecRef v, const Batch& batch,
                           const std::vector<Index>& blocks, VecRef out) override;
  bool SampleDiagonalOfBlocks(ConstVecRef x, VecRef s) const override;

  ProblemDefaults Defaults(const std::string& algorithm) const override;
  // lambda_k <= log(d C / alpha): an inner gradient step of size alpha is stable for the
  // regularizer's curvature exp(lambda_k) / (d C) only while alpha times it stays below 2, and
  // at 1 the step already takes feature k's weights to 0: a larger penalty changes nothing
  // but the step's stability. (Adam's steps do not shrink with the hypergradient, so without
  // the bound the lambdas of the features that validation wants removed grow until the inner
  // iteration diverges.)
  void ProjectOuter(VecRef x, double inner_lr) const override;
  // x (one lambda per feature) and W in the file's order of features.
  void ToDataOrder(Vec* x, Vec* y) const override;
  int NumEvalSums() const override { return 2; }
  void EvalLocalSums(ConstVecRef x, ConstVecRef y, VecRef sums) override;
  void EvalReport(ConstVecRef x, ConstVecRef y, ConstVecRef hypergrad, ConstVecRef sums,
                  MetricsRecord* record) const override;

 private:
  L2RegProblem(const std::string& path, DataBlocks data);
  // The rows of R (SoftmaxRows::ChunkFn) of grad_y G_0 = A^T R, R = P - E, and of
  // H_0 V = A^T S, S_i = P_i o U_i - P_i <P_i, U_i> (`known_probs`: z holds P already).
  SoftmaxRows::ChunkFn GradientRows(const Batch& batch) const;
  SoftmaxRows::ChunkFn CurvatureRows(const Batch& batch, bool known_probs) const;
  // |B| D M: the regularizer's Hessian (diagonal) applied to M, scaled by the batch size.
  SoftmaxRows::Diagonal Regularizer(ConstVecRef x, ConstVecRef m, const Batch& batch) const;
  // 1 / (d C), d the file's features.
  double Scale() const {
    return 1.0 / static_cast<double>(file_features() * train_.classes());
  }

  // exp(lambda), recomputed only when x changes (every oracle of an iteration shares x).
  const Vec& ExpLambda(ConstVecRef x) const;

  mutable Vec exp_x_, exp_of_;
};

}  // namespace bilevel::problems

#endif  // BILEVEL_SRC_PROBLEMS_L2REG_H_
