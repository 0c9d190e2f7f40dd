#include "problems/softmax_rows.h"

#include <algorithm>
#include <cmath>

#include "bilevel/problem.h"

namespace bilevel::problems {

namespace {

constexpr Index kChunk = 256;  // dense rows converted to double at a time

// y[0..n) += a x[0..n): one row of W (C classes). A plain loop the compiler vectorizes; Eigen's
// dynamic-size expressions cost more than the work for rows this short.
inline void AxpyRow(Index n, double a, const double* __restrict x, double* __restrict y) {
  for (Index j = 0; j < n; ++j) y[j] += a * x[j];
}

}  // namespace

SoftmaxRows::SoftmaxRows(io::SplitShard shard, bool bias)
    : shard_(std::move(shard)), bias_(bias), dim_(shard_.num_features + (bias ? 1 : 0)) {}

void SoftmaxRows::DenseChunk(const Batch& batch, Index begin, Index end, RowMatrix* out) const {
  const Index d = shard_.num_features;
  out->resize(end - begin, dim_);
  if (batch.is_range()) {
    out->leftCols(d) = shard_.features.middleRows(batch.begin() + begin, end - begin).cast<double>();
  } else {
    for (Index i = begin; i < end; ++i)
      out->row(i - begin).head(d) = shard_.features.row(batch[i]).cast<double>();
  }
  if (bias_) out->col(d).setOnes();
}

void SoftmaxRows::SparseLogits(const Batch& batch, Index begin, Index end, const WeightMap& w,
                               RowMatrix* z) const {
  const Index c = classes();
  z->resize(end - begin, c);
  z->setZero();
  for (Index i = begin; i < end; ++i) {
    const Index row = batch[i];
    double* zi = z->data() + (i - begin) * c;
    for (std::int64_t k = shard_.indptr[row]; k < shard_.indptr[row + 1]; ++k)
      AxpyRow(c, static_cast<double>(shard_.data[k]), w.data() + shard_.indices[k] * c, zi);
    if (bias_) AxpyRow(c, 1.0, w.data() + (dim_ - 1) * c, zi);
  }
}

void SoftmaxRows::Logits(const Batch& batch, const WeightMap& w, RowMatrix* z) const {
  const Index n = batch.size();
  z->resize(n, classes());
  for (Index begin = 0; begin < n; begin += kChunk) {
    const Index end = std::min(n, begin + kChunk);
    if (shard_.csr) {
      SparseLogits(batch, begin, end, w, &z_chunk_);
      z->middleRows(begin, end - begin) = z_chunk_;
    } else {
      DenseChunk(batch, begin, end, &chunk_);
      z->middleRows(begin, end - begin).noalias() = chunk_ * w;
    }
  }
}

void SoftmaxRows::ProductPass(const Batch& batch, const WeightMap& w, const WeightMap* v,
                              const ChunkFn& rows, MutableWeightMap* g) const {
  const Index n = batch.size();
  for (Index begin = 0; begin < n; begin += kChunk) {
    const Index end = std::min(n, begin + kChunk);
    if (!shard_.csr) {
      DenseChunk(batch, begin, end, &chunk_);
      z_chunk_.noalias() = chunk_ * w;
      if (v) u_chunk_.noalias() = chunk_ * *v;
      rows(begin, &z_chunk_, v ? &u_chunk_ : nullptr);
      g->noalias() += chunk_.transpose() * z_chunk_;
      continue;
    }
    SparseLogits(batch, begin, end, w, &z_chunk_);
    if (v) SparseLogits(batch, begin, end, *v, &u_chunk_);
    rows(begin, &z_chunk_, v ? &u_chunk_ : nullptr);
    const Index c = classes();
    for (Index i = begin; i < end; ++i) {
      const Index row = batch[i];
      const double* ri = z_chunk_.data() + (i - begin) * c;
      for (std::int64_t k = shard_.indptr[row]; k < shard_.indptr[row + 1]; ++k)
        AxpyRow(c, static_cast<double>(shard_.data[k]), ri, g->data() + shard_.indices[k] * c);
      if (bias_) AxpyRow(c, 1.0, ri, g->data() + (dim_ - 1) * c);
    }
  }
}

DataBlocks LoadDataBlocks(const std::string& path, int rank, int ranks) {
  DataBlocks b;
  b.info = io::ReadDatasetInfo(path);
  auto read = [&](const std::string& split) {
    const Shard s = BlockShard(b.info.ForSplit(split).rows, rank, ranks);
    return io::ReadSplitShard(path, split, s.begin, s.end);
  };
  b.train = read("train");
  b.val = read("val");
  b.test = read("test");
  return b;
}

void SoftmaxInPlace(RowMatrix* z, const SoftmaxRows& rows, const Batch& batch, Index first,
                    Vec* ce) {
  if (ce) ce->resize(z->rows());
  for (Index i = 0; i < z->rows(); ++i) {
    auto zi = z->row(i);
    const double top = zi.maxCoeff();
    const double shifted_label = zi[rows.label(batch[first + i])] - top;
    zi.array() = (zi.array() - top).exp();
    const double sum = zi.sum();
    if (ce) (*ce)[i] = std::log(sum) - shifted_label;  // log-sum-exp(z) - z_label
    zi /= sum;
  }
}

}  // namespace bilevel::problems
