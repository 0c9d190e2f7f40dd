// Data hyper-cleaning (MATH.md section 3): learn one weight per training sample so that a
// softmax classifier trained on the weighted, partly mislabelled samples does well on clean
// validation data.
//
//   x = lambda in R^n (n training samples), y = W in R^{(d+1) x C} (row-major, a bias feature
//   appended), both 0 at the start;
//   G_i(lambda, W) = sigmoid(lambda_i) CE(W^T a_i, noisy label_i) + c |W|_F^2,  c = 1e-3
//   F_j(W)         = CE(W^T a_j, label_j) over the validation samples.
// Oracles on a batch B of training rows (P = softmax(A_B W), E = one-hot labels):
//   grad_W G = A_B^T diag(s) (P - E) + 2 c |B| W,       s_i = sigmoid(lambda_i)
//   H V      = A_B^T diag(s) S + 2 c |B| V,  S_i = P_i o U_i - P_i <P_i, U_i>,  U = A_B V
//   (J V)_i  = sigmoid'(lambda_i) <P_i - E_i, U_i> for i in B, 0 elsewhere
//   grad_lambda G: sigmoid'(lambda_i) CE_i for i in B;  grad_lambda F = 0.
// Evaluation adds test_loss, test_acc and the cleaning quality: samples flagged as corrupted
// are those with sigmoid(lambda_i) < 1/2; cleaning_precision is the share of flagged samples
// that are corrupted, cleaning_recall the share of corrupted samples flagged, clean_kept the
// share of clean samples not flagged.
#ifndef BILEVEL_SRC_PROBLEMS_HYPERCLEAN_H_
#define BILEVEL_SRC_PROBLEMS_HYPERCLEAN_H_

#include <memory>
#include <string>

#include "bilevel/problem.h"
#include "problems/softmax_problem.h"

namespace bilevel::problems {

class HypercleanProblem : public SoftmaxProblem {
 public:
  // Reads this rank's block of every split of the dataset file `path` (made by
  // `bilevel convert idx`).
  HypercleanProblem(const std::string& path, int rank, int ranks);

  std::string Name() const override { return "hyperclean"; }
  Index DimOuter() const override { return train_.global_rows(); }

  double ValueG(ConstVecRef x, ConstVecRef y, const Batch& batch) override;
  void GradYG(ConstVecRef x, ConstVecRef y, const Batch& batch, VecRef out) override;
  void GradXG(ConstVecRef x, ConstVecRef y, const Batch& batch, VecRef out) override;
  void HessianVec(ConstVecRef x, ConstVecRef y, ConstVecRef v, const Batch& batch,
                  VecRef out) override;
  void JacobianVec(ConstVecRef x, ConstVecRef y, ConstVecRef v, const Batch& batch,
                   VecRef out) override;

  ProblemDefaults Defaults(const std::string& algorithm) const override;
  int NumEvalSums() const override { return 6; }
  void EvalLocalSums(ConstVecRef x, ConstVecRef y, VecRef sums) override;
  void EvalReport(ConstVecRef x, ConstVecRef y, ConstVecRef hypergrad, ConstVecRef sums,
                  MetricsRecord* record) const override;

  static constexpr double kRegularization = 1e-3;  // c

 private:
  HypercleanProblem(const std::string& path, DataBlocks data);
  // Sigmoid weights s_i of the batch rows.
  void Weights(ConstVecRef x, const Batch& batch);

  Vec s_;  // the weights of the current batch

};

}  // namespace bilevel::problems

#endif  // BILEVEL_SRC_PROBLEMS_HYPERCLEAN_H_
