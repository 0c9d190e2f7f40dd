#include "problems/softmax_problem.h"

#include <cmath>
#include <string>

#include "bilevel/metrics.h"

namespace bilevel::problems {

SoftmaxProblem::SoftmaxProblem(const std::string& path, DataBlocks data, bool bias)
    : path_(path),
      checksum_(data.info.attributes.source_sha256),
      feature_order_(std::move(data.feature_order)),
      feature_counts_(std::move(data.feature_counts)),
      file_features_(data.file_features > 0 ? data.file_features : data.train.num_features),
      bias_(bias),
      train_(std::move(data.train), bias, data.train_packed),
      val_(std::move(data.val), bias, data.val_packed),
      test_(std::move(data.test), bias, data.test_packed) {}

void SoftmaxProblem::FeaturesToDataOrder(VecRef v, Index block) const {
  if (feature_order_.empty()) return;
  const Vec held = v.head(static_cast<Index>(feature_order_.size()) * block);
  for (std::size_t k = 0; k < feature_order_.size(); ++k)
    v.segment(feature_order_[k] * block, block) = held.segment(k * block, block);
}

void SoftmaxProblem::ToDataOrder(Vec*, Vec* y) const {
  if (feature_order_.empty()) return;
  const Index c = train_.classes(), held = held_features();
  Vec out = Vec::Zero((file_features_ + (bias_ ? 1 : 0)) * c);
  for (Index k = 0; k < held; ++k)
    out.segment(feature_order_[k] * c, c) = y->segment(k * c, c);
  if (bias_) out.tail(c) = y->tail(c);
  *y = std::move(out);
}

void SoftmaxProblem::PrepareTrainColumns(Index lo, Index hi) {
  const Index c = train_.classes();
  const Index first = lo / c, last = (hi + c - 1) / c;
  if (train_columns_.Covers(first, last)) return;
  // The features left out of W (DataBlocks) have places at or past the held ones: outside
  // [first, last).
  train_columns_ = ColumnBlock(io::ReadSplitShard(path_, "train", 0, train_.global_rows()),
                               PlacesOf(feature_order_), first, last);
}

std::vector<Index> SoftmaxProblem::TrainColumnSliceBounds(int ranks, double entry_cost) const {
  const Index c = train_.classes(), d = train_.dim();
  if (bias_ || ranks < 2 || static_cast<Index>(feature_counts_.size()) != d) return {};
  const double per_feature = entry_cost * static_cast<double>(c);
  double total = 0;
  for (const std::int64_t n : feature_counts_) total += static_cast<double>(n) + per_feature;
  std::vector<Index> bounds{0};
  double work = 0;
  Index f = 0;
  for (int q = 1; q < ranks; ++q) {
    const double target = total * q / ranks;
    while (f < d && work < target) work += static_cast<double>(feature_counts_[f++]) + per_feature;
    bounds.push_back(std::max(bounds.back(), (f * c) & ~Index{7}));
  }
  bounds.push_back(d * c);
  return bounds;
}

Shard SoftmaxProblem::LocalShard(Split split) const {
  const SoftmaxRows& rows = split == Split::kInner ? train_ : val_;
  return Shard{rows.global_begin(), rows.global_begin() + rows.rows()};
}

double SoftmaxProblem::ValueF(ConstVecRef, ConstVecRef y, const Batch& batch) {
  if (batch.empty()) return 0;
  val_.Logits(batch, W(y), &z_);
  SoftmaxInPlace(&z_, val_, batch, 0, &ce_);
  return ce_.sum();
}

void SoftmaxProblem::GradXF(ConstVecRef, ConstVecRef, const Batch&, VecRef out) { out.setZero(); }

void SoftmaxProblem::GradYF(ConstVecRef, ConstVecRef y, const Batch& batch, VecRef out) {
  if (batch.empty()) {
    out.setZero();
    return;
  }
  MutableWeightMap g(out.data(), val_.dim(), val_.classes());
  val_.ProductPass(batch, W(y), nullptr, [&](Index first, RowMatrix* z, RowMatrix*) {
    SoftmaxInPlace(z, val_, batch, first, nullptr);
    for (Index i = 0; i < z->rows(); ++i) (*z)(i, val_.label(batch[first + i])) -= 1.0;
  }, &g, nullptr, nullptr, touched_blocks_only());
}

void SoftmaxProblem::TestSums(ConstVecRef y, double* loss, double* correct) {
  *loss = *correct = 0;
  const Batch test = Batch::Range(0, test_.rows());
  if (test.empty()) return;
  test_.Logits(test, W(y), &z_);
  for (Index i = 0; i < test.size(); ++i) {
    Index best = 0;
    z_.row(i).maxCoeff(&best);
    if (best == test_.label(i)) *correct += 1;
  }
  SoftmaxInPlace(&z_, test_, test, 0, &ce_);
  *loss = ce_.sum();
}

void SoftmaxProblem::ReportTest(double loss, double correct, MetricsRecord* r) const {
  const double n = static_cast<double>(test_.global_rows());
  r->Set("test_loss", n > 0 ? loss / n : NAN);
  r->Set("test_acc", n > 0 ? correct / n : NAN);
}

std::vector<std::pair<std::string, std::string>> SoftmaxProblem::Describe() const {
  return {{"data", path_},
          {"features", std::to_string(file_features_ + (bias_ ? 1 : 0))},
          // The rows of W: the features the train split holds (DataBlocks), and the bias.
          {"weight_rows", std::to_string(train_.dim())},
          {"classes", std::to_string(train_.classes())},
          // How rank 0 holds its training rows: "csr" (a sparse file), "packed" (dense rows,
          // mostly zeros, kept as their nonzeros) or "dense".
          {"train_rows", train_.csr() ? "csr" : train_.packed() ? "packed" : "dense"},
          // Sparse files: features renumbered by their train frequency (DataBlocks).
          {"feature_order", FeatureOrderName()},
          {"test_samples", std::to_string(test_.global_rows())}};
}

std::vector<std::pair<std::string, std::string>> SoftmaxProblem::Identity() const {
  auto id = Problem::Identity();
  id.insert(id.end(), {{"data", path_},
                       {"data_source_sha256", checksum_},
                       {"test_samples", std::to_string(test_.global_rows())}});
  // A checkpoint holds W in the solver's order: one from before the renumbering does not fit.
  if (!feature_order_.empty()) id.emplace_back("feature_order", FeatureOrderName());
  return id;
}

}  // namespace bilevel::problems
