// What the classification problems (hyperclean, l2reg) share: a softmax classifier
// y = W (dim x C, row-major) trained on the train split by g, validated by
//   F_i(W) = CE(W^T a_i, label_i) over the val split,
// with f independent of x (grad_x F = 0), and the test loss and accuracy in the evaluation.
// Subclasses give the inner objective g and its oracles.
#ifndef BILEVEL_SRC_PROBLEMS_SOFTMAX_PROBLEM_H_
#define BILEVEL_SRC_PROBLEMS_SOFTMAX_PROBLEM_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "bilevel/problem.h"
#include "problems/softmax_rows.h"

namespace bilevel::problems {

class SoftmaxProblem : public Problem {
 public:
  Index DimInner() const override { return train_.dim() * train_.classes(); }
  Index NumSamples(Split split) const override {
    return split == Split::kInner ? train_.global_rows() : val_.global_rows();
  }
  Shard LocalShard(Split split) const override;

  double ValueF(ConstVecRef x, ConstVecRef y, const Batch& batch) override;
  void GradXF(ConstVecRef x, ConstVecRef y, const Batch& batch, VecRef out) override;
  void GradYF(ConstVecRef x, ConstVecRef y, const Batch& batch, VecRef out) override;

  // W's feature rows in the file's order, those of the features the train split lacks (not
  // held: DataBlocks) as zeros; the bias row stays last.
  void ToDataOrder(Vec* x, Vec* y) const override;

  std::vector<std::pair<std::string, std::string>> Describe() const override;
  std::vector<std::pair<std::string, std::string>> Identity() const override;

 protected:
  // `bias`: a constant feature 1 is appended to every sample.
  SoftmaxProblem(const std::string& path, DataBlocks data, bool bias);

  WeightMap W(ConstVecRef y) const { return WeightMap(y.data(), train_.dim(), train_.classes()); }
  // Sums of the cross-entropy and of the correct predictions over this rank's test rows.
  void TestSums(ConstVecRef y, double* loss, double* correct);
  // Adds test_loss and test_acc from the summed TestSums.
  void ReportTest(double loss, double correct, MetricsRecord* record) const;

  // Problem::PrepareColumns and ColumnProduct for the train split (sparse files): the
  // columns of the features of y's entries [lo, hi), read once from the file (every row of
  // the split, renumbered as the blocks: DataBlocks).
  void PrepareTrainColumns(Index lo, Index hi);
  void TrainColumnProduct(const double* r, Index lo, Index hi, double* out) const {
    train_columns_.Product(r, train_.classes(), lo, hi, out);
  }
  // Problem::ColumnSliceBounds for y = W (no bias row): slices of whole rows of W (rounded
  // down to 8 entries) whose work, a stored entry of the feature's column plus `entry_cost`
  // per entry of y, is about the same.
  std::vector<Index> TrainColumnSliceBounds(int ranks, double entry_cost) const;

  // Rewrites v (features of the file, in the order of the blocks, `block` values each) in the
  // file's order: block k goes to block feature_order_[k].
  void FeaturesToDataOrder(VecRef v, Index block) const;
  // The file's features (d), and how many of them W holds (the train split's: DataBlocks).
  Index file_features() const { return file_features_; }
  Index held_features() const { return train_.dim() - (bias_ ? 1 : 0); }
  // "train_frequency" (DataBlocks::feature_order) or "file".
  std::string FeatureOrderName() const {
    return feature_order_.empty() ? "file" : "train_frequency";
  }

  std::string path_;
  std::string checksum_;  // the sha256 of the dataset's sources
  std::vector<std::int32_t> feature_order_;  // DataBlocks::feature_order (empty: the file's)
  std::vector<std::int64_t> feature_counts_;  // DataBlocks::feature_counts
  Index file_features_;
  bool bias_;
  SoftmaxRows train_, val_, test_;
  ColumnBlock train_columns_;  // PrepareTrainColumns
  RowMatrix z_, u_;  // scratch: logits and products of a batch
  Vec ce_;           // scratch: cross-entropies of a batch
};

}  // namespace bilevel::problems

#endif  // BILEVEL_SRC_PROBLEMS_SOFTMAX_PROBLEM_H_
