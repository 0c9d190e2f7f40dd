// A rank's rows of one data split (dense float32, packed or CSR) and the multinomial-logistic kernels
// the classification problems share: logits Z = A W, the products A^T R, and softmax with its
// cross-entropy. W (dim x C) is stored row-major in a flat vector, so that a feature's C
// weights are contiguous (a CSR row touches whole rows of W).
//
// Sparse data is kept twice: CSR for minibatches (a batch reads only its rows, and is turned
// into a small CSC of its own for the products) and for the logits of full-batch passes, and
// CSC for their products A^T R. Row by row, A^T R would scatter into rows of G at random all
// over d x C doubles (13 MB on 20 Newsgroups, beyond the core's caches); column by column it
// writes G once, in order, and the random accesses are reads of R (rows x C doubles), which
// stays in the core's cache. The logits are the other way round: row by row, each row's sum
// stays in registers and the random accesses are reads of W's rows (the frequent ones
// cached), where by columns every entry would load and store a row of Z.
#ifndef BILEVEL_SRC_PROBLEMS_SOFTMAX_ROWS_H_
#define BILEVEL_SRC_PROBLEMS_SOFTMAX_ROWS_H_

#include <Eigen/Core>
#include <functional>
#include <string>
#include <vector>

#include "bilevel/batch.h"
#include "bilevel/problem.h"
#include "bilevel/types.h"
#include "io/dataset.h"
#include "problems/packed_products.h"

namespace bilevel::problems {

using RowMatrix = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using WeightMap = Eigen::Map<const RowMatrix>;
using MutableWeightMap = Eigen::Map<RowMatrix>;

class SoftmaxRows {
 public:
  // Dense rows are packed (kept as their nonzeros, problems/packed_products.h) when at most
  // this fraction of their values are nonzero (PackedSplit). A packed entry costs about 2.4 times the
  // dense kernels' time per value (1.2 + 1.7 ns for the two products of a gradient, against
  // 1.2 ns per pixel; bilevel_bench, 2-core AMD EPYC): MNIST (19 % nonzero) gains 2x, while
  // Fashion-MNIST (50 %) would lose 1.5x and stays dense.
  static constexpr double kPackedDensity = 0.3;

  // `bias`: a constant feature 1 is appended after the stored ones (dim = d + 1).
  // `pack`: keep dense rows packed (PackedSplit decides it for a file's split, alike on every
  // rank); CSR rows ignore it.
  SoftmaxRows(io::SplitShard shard, bool bias, bool pack = false);

  Index rows() const { return shard_.size(); }        // local rows
  Index dim() const { return dim_; }                  // features, bias included
  Index classes() const { return shard_.num_classes; }
  Index global_begin() const { return shard_.begin; }  // global index of local row 0
  Index global_rows() const { return shard_.num_rows;  }
  int label(Index i) const { return shard_.labels[i]; }
  bool csr() const { return shard_.csr; }
  bool packed() const { return packed_; }  // dense rows kept as their nonzeros
  bool has_clean_labels() const { return !shard_.clean_labels.empty(); }
  int clean_label(Index i) const { return shard_.clean_labels[i]; }

  // Z (batch.size() x C) = A_batch W.
  void Logits(const Batch& batch, const WeightMap& w, RowMatrix* z) const;
  // Z = A_batch W and U = A_batch V; dense rows are read once for both, a chunk at a time.
  void Logits(const Batch& batch, const WeightMap& w, const WeightMap& v, RowMatrix* z,
              RowMatrix* u) const;

  // Turns the logits of batch rows [begin, begin + z->rows()) into the residuals R in place;
  // `u` holds A V for the same rows when a second weight matrix V was given, else null.
  using ChunkFn = std::function<void(Index begin, RowMatrix* z, RowMatrix* u)>;
  // The diagonal term of a gradient or Hessian product, factor * diag(row_scale) * M: the
  // regularizers. row_scale has one entry per row of M (dim), or is null for all ones.
  struct Diagonal {
    double factor = 0;
    const double* row_scale = nullptr;
    const double* m = nullptr;  // dim x C, row-major
  };
  // G (dim x C) = [diagonal term +] A_batch^T R with R = rows(A_batch W [, A_batch V]),
  // overwriting G, in one pass over the batch: each chunk of rows is read (and converted to
  // double) once for both products. On a full sparse pass the diagonal term and the product
  // are written in the same sweep over G.
  // `probs`: P = softmax(A W) of every local row, already known (FullProbabilities); `rows`
  // then receives P in z instead of the logits (a full-batch pass only).
  // `touched_only` (no diagonal term): only the rows of G of TouchedFeatures(batch) are
  // written, the others keep their contents (Problem::touched_blocks_only).
  // `sink` (with touched_only, or on the full batch): each touched row's sum (full batch:
  // every row's) goes to sink->Take(feature, sums) instead of into G, in increasing order
  // (Problem::TakesBlockSink).
  void ProductPass(const Batch& batch, const WeightMap& w, const WeightMap* v,
                   const ChunkFn& rows, MutableWeightMap* g, const Diagonal* diagonal = nullptr,
                   const RowMatrix* probs = nullptr, bool touched_only = false,
                   BlockSink* sink = nullptr) const;

  // R of a full-batch pass on sparse rows, into r (rows() x C): the logits A W of every local
  // row (or `probs`: P, FullProbabilities) and U = A V turned into R by `rows` (one chunk), as
  // ProductPass computes them before its A^T R (Problem::ColumnFactors).
  void FullRows(const WeightMap& w, const WeightMap* v, const ChunkFn& rows,
                const RowMatrix* probs, RowMatrix* r) const;

  // The features (rows of W, bias included) the batch's rows use, sorted: every one for dense
  // rows, the distinct indices of the rows (and the bias) for sparse ones.
  void TouchedFeatures(const Batch& batch, std::vector<Index>* features) const;

  // Whether `batch` is every local row, in order.
  bool IsFull(const Batch& batch) const {
    return batch.is_range() && batch.begin() == 0 && batch.size() == rows();
  }
  // P = softmax(A W) of every local row. Kept with a copy of the rows of W it depends on, and
  // recomputed only when one of them differs bit for bit: AID's Hessian products, all at one
  // y, share one P.
  // `hold` (Problem::inner_hold): within one hold, P is computed once and W is not compared
  // (nor kept: the next call outside a hold recomputes P).
  const RowMatrix& FullProbabilities(const WeightMap& w, std::uint64_t hold = 0) const;

 private:
  // Whether probs_ was computed from w (compares the rows of W that P depends on); with
  // `keep`, records w's rows as those of probs_ instead (the answer is then meaningless).
  bool ProbabilitiesOf(const WeightMap& w, bool keep) const;
  // Whether `batch` is every local row (the full-batch passes that use the CSC copy).
  bool FullSparse(const Batch& batch) const { return shard_.csr && IsFull(batch); }
  // G = [diagonal term +] A^T R over every local row, column by column, in one sweep over G;
  // with a sink, each row of G goes to sink->Take instead, in increasing order.
  void CscProducts(const RowMatrix& r, const Diagonal* diagonal, MutableWeightMap* g,
                   BlockSink* sink) const;
  // G = the diagonal term, or 0.
  void SetDiagonal(const Diagonal* diagonal, MutableWeightMap* g) const;

  // The batch's CSC (sparse rows): touched_ (TouchedFeatures) and, for each of them but the
  // bias, its entries' batch positions and values in batch_entries_ from
  // batch_ptr_[f] to batch_ptr_[f + 1]. Kept for the next call when the batch is the same
  // (columns_of_): stocBiO asks for a batch's touched blocks, then for its oracle.
  void BatchColumns(const Batch& batch) const;
  // ProductPass on sparse rows, column by column over the batch's CSC: W, V and G are read
  // and written once per touched feature, in order, and the scattered accesses go to Z, U and
  // R (batch x C, in the core's cache).
  void BatchColumnPass(const Batch& batch, const WeightMap& w, const WeightMap* v,
                       const ChunkFn& rows, MutableWeightMap* g, const Diagonal* diagonal,
                       const RowMatrix* probs, bool touched_only, BlockSink* sink) const;

  // Dense rows (problems/dense_products.h; packed_products.h when packed_): row_ptr_ (packed:
  // batch_rows_) = the batch's rows; wt = W^T without the bias row, padded (not used when
  // packed); z (end - begin x C, row-major) = the logits of batch rows [begin, end), bias
  // included, from wt (packed: W) and W's bias row.
  void DenseRows(const Batch& batch) const;
  void Transposed(const WeightMap& w, std::vector<double>* wt) const;
  void DenseLogits(Index begin, Index end, const std::vector<double>& wt, const WeightMap& w,
                   double* z) const;
  // Z (batch.size() x C, row-major) = A_batch W from the CSR rows, row by row, each row's sum
  // in registers: every entry's row of W is gathered (frequent features' rows stay in the
  // cache), and Z is written once, in order. Full-batch passes too, where a pass by columns
  // loads and stores a row of Z per entry: 20 Newsgroups' train split 3.4 -> 3.0 ms on one
  // rank, 1.7 -> 1.4 and 2.0 -> 1.6 ms on two ranks at once (medians of 40 interleaved calls).
  // The sum must be a local array (kC > 0): through a pointer that may be Z's row it is kept
  // in memory, and the pass took 4.6 ms. Minibatches' product passes take their logits from
  // the batch's CSC instead (BatchColumnPass), which reads each touched row of W once: faster
  // there.
  void SparseLogits(const Batch& batch, const WeightMap& w, double* z) const;

  io::SplitShard shard_;
  bool bias_;
  Index dim_;
  // Dense rows that are mostly zeros, kept as their nonzeros instead of shard_.features.
  bool packed_ = false;
  packed::PackedRows packed_rows_;
  mutable std::vector<Index> batch_rows_;  // scratch: the batch's local rows (packed_)
  // CSC copy of the local CSR rows: the features that occur, their rows and values.
  std::vector<std::int32_t> csc_feature_;
  std::vector<std::int64_t> csc_ptr_;  // csc_feature_.size() + 1
  std::vector<std::int32_t> csc_row_;
  std::vector<float> csc_value_;
  mutable std::vector<const float*> row_ptr_;  // scratch of the dense kernels
  mutable std::vector<double> wt_, vt_, gt_;
  mutable RowMatrix z_chunk_, u_chunk_;
  mutable std::vector<double> acc_;  // scratch: one row of G
  mutable std::vector<Index> columns_of_;     // the batch of the CSC below
  mutable bool columns_valid_ = false;
  // Scratch of BatchColumns, zero between calls: a bit per feature, and per feature its count
  // of the batch's entries, then its next place.
  mutable std::vector<std::uint64_t> seen_;
  mutable std::vector<std::int32_t> count_;
  mutable std::vector<Index> touched_;        // the batch's CSC (above)
  mutable std::vector<std::int64_t> batch_ptr_;
  struct ColumnEntry {
    std::int32_t row;  // the entry's position in the batch
    float value;
  };
  mutable std::vector<ColumnEntry> batch_entries_;
  mutable Vec probs_of_;             // the rows of W of probs_ (empty: none yet)
  mutable RowMatrix probs_;
  mutable std::uint64_t probs_hold_ = 0;  // the hold in which probs_ was computed, or 0
};

// Columns [first, last) of a whole sparse split (every rank's rows), for the products A^T R
// by columns of a rank's slice of y (Problem::ColumnProduct): a feature's C entries of A^T R
// are the sum over its column's entries, in row order, of value x R's row, the same sum
// (and the same bits) as SoftmaxRows' full-batch pass over all the rows on one rank.
class ColumnBlock {
 public:
  ColumnBlock() = default;
  // `split`: every row of the split, CSR, in the file's numbering of the features; `place`
  // (PlacesOf: empty for the file's own order) numbers them as the problem's blocks. Only the
  // entries of the blocks' features [first, last) are kept.
  ColumnBlock(const io::SplitShard& split, const std::vector<std::int32_t>& place, Index first,
              Index last);
  bool Covers(Index first, Index last) const {
    return !ptr_.empty() && first_ <= first && last <= last_;
  }
  // out[0, hi - lo) = entries [lo, hi) of A^T R (features x c, row-major); R = r, c values
  // per row of the split; the features of [lo, hi) lie in [first, last).
  void Product(const double* r, Index c, Index lo, Index hi, double* out) const;

 private:
  Index first_ = 0, last_ = 0;
  std::vector<std::int64_t> ptr_;  // last - first + 1 (empty: not built)
  std::vector<std::int32_t> row_;
  std::vector<float> value_;
  mutable std::vector<double> acc_;
};

// Whether the dense rows of `split` of the dataset file are kept packed: at most
// SoftmaxRows::kPackedDensity of the values of its first kPackSampleRows rows are nonzero (the
// same rows on every rank, so that every rank keeps them alike: packed and dense logits differ
// in their last bits). False for a CSR file. Reads those rows.
constexpr Index kPackSampleRows = 2048;
bool PackedSplit(const std::string& path, const io::DatasetInfo& info, const std::string& split);

// This rank's blocks of the three splits of a dataset file, the file's attributes, whether
// each split's rows are kept packed (PackedSplit), and the order of the features.
//
// Sparse (CSR) files have their features renumbered by how many rows of the whole train split
// hold them, most first (ties by the file's order): feature k of the blocks is feature
// feature_order[k] of the file, and every row's columns are increasing again. The rows of W a
// minibatch touches, and the rows of every d x C vector the block-sparse steps update with
// them, then gather at the start of the vectors (a Zipf vocabulary: the 1000 most frequent
// of the 130,107 words of 20 Newsgroups hold 55 % of its train entries), where they share
// cache lines and pages, instead of lying all over 21 MB. Every rank counts the whole train
// split (io::ReadColumnCounts: 4 bytes per stored entry, 3.5 MB on 20 Newsgroups), so every
// rank has the same order. Empty for dense files and for blocks made in memory: the file's
// order.
//
// Features that no train row holds are dropped (the tail of that order), from every split: the
// blocks' num_features is the number the train split holds. Their rows of W start at 0 and
// stay there for any x (their gradient is the regularizer's alone, which keeps 0 at 0; on
// 20 Newsgroups 47,619 of the 130,107 words, 37 %), and a zero row adds nothing to the
// logits of the val and test rows that hold the feature. So the problems keep W on the train
// split's features only, and every pass over W, and over the d x C vectors of the
// algorithms, is that much shorter. file_features is the file's d.
struct DataBlocks {
  io::DatasetInfo info;
  io::SplitShard train, val, test;
  bool train_packed = false, val_packed = false, test_packed = false;
  std::vector<std::int32_t> feature_order;
  std::vector<std::int64_t> feature_counts;  // the train rows that hold feature k of the blocks
  Index file_features = 0;
};
DataBlocks LoadDataBlocks(const std::string& path, int rank, int ranks);

// The features 0..d-1 by decreasing count, ties by index: the order LoadDataBlocks gives.
std::vector<std::int32_t> FrequencyOrder(const std::vector<std::int64_t>& counts);
// The inverse of such an order: the place of each feature of the file among the blocks'.
std::vector<std::int32_t> PlacesOf(const std::vector<std::int32_t>& order);
// Renames column j of a CSR shard to place[j] and sorts every row's entries by their new
// columns.
void RenumberColumns(const std::vector<std::int32_t>& place, io::SplitShard* shard);
// Drops the entries of columns >= `features` from a CSR shard whose rows are in increasing
// column order, and sets its num_features to `features`.
void KeepColumnsBelow(Index features, io::SplitShard* shard);

// Row by row: P = softmax(Z) in place, Z's row i being batch row first + i; writes the
// cross-entropies -log P[i, label] into `ce` (may be null).
void SoftmaxInPlace(RowMatrix* z, const SoftmaxRows& rows, const Batch& batch, Index first,
                    Vec* ce);

}  // namespace bilevel::problems

#endif  // BILEVEL_SRC_PROBLEMS_SOFTMAX_ROWS_H_
