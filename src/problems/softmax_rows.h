// A rank's rows of one data split (dense float32 or CSR) and the multinomial-logistic kernels
// the classification problems share: logits Z = A W, the products A^T R, and softmax with its
// cross-entropy. W (dim x C) is stored row-major in a flat vector, so that a feature's C
// weights are contiguous (a CSR row touches whole rows of W).
#ifndef BILEVEL_SRC_PROBLEMS_SOFTMAX_ROWS_H_
#define BILEVEL_SRC_PROBLEMS_SOFTMAX_ROWS_H_

#include <Eigen/Core>
#include <functional>
#include <string>
#include <vector>

#include "bilevel/batch.h"
#include "bilevel/types.h"
#include "io/dataset.h"

namespace bilevel::problems {

using RowMatrix = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using WeightMap = Eigen::Map<const RowMatrix>;
using MutableWeightMap = Eigen::Map<RowMatrix>;

class SoftmaxRows {
 public:
  // `bias`: a constant feature 1 is appended after the stored ones (dim = d + 1).
  SoftmaxRows(io::SplitShard shard, bool bias);

  Index rows() const { return shard_.size(); }        // local rows
  Index dim() const { return dim_; }                  // features, bias included
  Index classes() const { return shard_.num_classes; }
  Index global_begin() const { return shard_.begin; }  // global index of local row 0
  Index global_rows() const { return shard_.num_rows;  }
  int label(Index i) const { return shard_.labels[i]; }
  bool csr() const { return shard_.csr; }
  bool has_clean_labels() const { return !shard_.clean_labels.empty(); }
  int clean_label(Index i) const { return shard_.clean_labels[i]; }

  // Z (batch.size() x C) = A_batch W.
  void Logits(const Batch& batch, const WeightMap& w, RowMatrix* z) const;

  // Turns the logits of batch rows [begin, begin + z->rows()) into the residuals R in place;
  // `u` holds A V for the same rows when a second weight matrix V was given, else null.
  using ChunkFn = std::function<void(Index begin, RowMatrix* z, RowMatrix* u)>;
  // G (dim x C) += A_batch^T R with R = rows(A_batch W [, A_batch V]), in one pass over the
  // batch: each chunk of rows is read (and converted to double) once for both products.
  void ProductPass(const Batch& batch, const WeightMap& w, const WeightMap* v,
                   const ChunkFn& rows, MutableWeightMap* g) const;

 private:
  // Dense rows [begin, end) of the batch as doubles, bias column included.
  void DenseChunk(const Batch& batch, Index begin, Index end, RowMatrix* out) const;
  // CSR rows [begin, end) of the batch times W.
  void SparseLogits(const Batch& batch, Index begin, Index end, const WeightMap& w,
                    RowMatrix* z) const;

  io::SplitShard shard_;
  bool bias_;
  Index dim_;
  mutable RowMatrix chunk_;       // scratch: dense rows in double
  mutable RowMatrix z_chunk_, u_chunk_;
};

// This rank's blocks of the three splits of a dataset file, and the file's attributes.
struct DataBlocks {
  io::DatasetInfo info;
  io::SplitShard train, val, test;
};
DataBlocks LoadDataBlocks(const std::string& path, int rank, int ranks);

// Row by row: P = softmax(Z) in place, Z's row i being batch row first + i; writes the
// cross-entropies -log P[i, label] into `ce` (may be null).
void SoftmaxInPlace(RowMatrix* z, const SoftmaxRows& rows, const Batch& batch, Index first,
                    Vec* ce);

}  // namespace bilevel::problems

#endif  // BILEVEL_SRC_PROBLEMS_SOFTMAX_ROWS_H_
