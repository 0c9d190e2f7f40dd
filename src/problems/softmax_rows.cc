#include "problems/softmax_rows.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <stdexcept>
#include <type_traits>
#include <utility>

#include "bilevel/problem.h"
#include "problems/dense_products.h"
#include "problems/with_classes.h"

namespace bilevel::problems {

namespace {

constexpr Index kDenseChunk = 64;  // dense rows per chunk of a product pass (200 KB of
                                   // Fashion-MNIST rows: read from memory once, kept in L2
                                   // for A^T R)

// y[0..c) += a x[0..c): one row of W.
template <int kC>
inline void AxpyRow(Index c, double a, const double* __restrict x, double* __restrict y) {
  const Index n = kC > 0 ? kC : c;
  for (Index j = 0; j < n; ++j) y[j] += a * x[j];
}

// Row k of the diagonal term, factor * row_scale[k] * M[k, :], written over g_k (C doubles);
// zeros when there is no diagonal term.
template <int kC>
inline void DiagonalRow(const SoftmaxRows::Diagonal* diagonal, Index k, Index c, double* gk) {
  const Index n = kC > 0 ? kC : c;
  if (!diagonal) {
    std::fill(gk, gk + n, 0.0);
    return;
  }
  const double s = diagonal->factor * (diagonal->row_scale ? diagonal->row_scale[k] : 1.0);
  const double* mk = diagonal->m + k * c;
  for (Index j = 0; j < n; ++j) gk[j] = s * mk[j];
}

// Software prefetch of the n doubles at p (one request per cache line), kPrefetch columns ahead.
constexpr Index kPrefetch = 8;
inline void Prefetch(const double* p, Index n) {
  for (Index j = 0; j < n; j += 8) __builtin_prefetch(p + j);
}
// The logits of sparse rows ask for the row of W of the entry this far ahead.
constexpr std::int64_t kAheadEntries = 48;

}  // namespace

SoftmaxRows::SoftmaxRows(io::SplitShard shard, bool bias, bool pack)
    : shard_(std::move(shard)), bias_(bias), dim_(shard_.num_features + (bias ? 1 : 0)) {
  if (!shard_.csr) {
    if (pack) {
      packed_rows_ = packed::Pack(shard_.features.data(), rows(), shard_.num_features);
      packed_ = true;
      shard_.features.resize(0, 0);
    }
    return;
  }
  // CSC by a counting sort over the features; rows stay in increasing order within a column.
  const Index nnz = static_cast<Index>(shard_.indices.size());
  std::vector<std::int64_t> count(shard_.num_features + 1, 0);
  for (const std::int32_t k : shard_.indices) ++count[k + 1];
  for (Index k = 0; k < shard_.num_features; ++k) {
    if (count[k + 1] > 0) csc_feature_.push_back(static_cast<std::int32_t>(k));
    count[k + 1] += count[k];
  }
  csc_ptr_.reserve(csc_feature_.size() + 1);
  for (const std::int32_t k : csc_feature_) csc_ptr_.push_back(count[k]);
  csc_ptr_.push_back(nnz);
  csc_row_.resize(nnz);
  csc_value_.resize(nnz);
  for (Index i = 0; i < rows(); ++i) {
    for (std::int64_t k = shard_.indptr[i]; k < shard_.indptr[i + 1]; ++k) {
      const std::int64_t at = count[shard_.indices[k]]++;
      csc_row_[at] = static_cast<std::int32_t>(i);
      csc_value_[at] = shard_.data[k];
    }
  }
}

void SoftmaxRows::DenseRows(const Batch& batch) const {
  const Index n = batch.size(), d = shard_.num_features;
  if (packed_) {
    batch_rows_.resize(n);
    for (Index i = 0; i < n; ++i) batch_rows_[i] = batch[i];
    return;
  }
  row_ptr_.resize(n);
  const float* base = shard_.features.data();
  for (Index i = 0; i < n; ++i) row_ptr_[i] = base + batch[i] * d;
}

void SoftmaxRows::DenseLogits(Index begin, Index end, const std::vector<double>& wt,
                              const WeightMap& w, double* z) const {
  const Index d = shard_.num_features, c = classes();
  if (packed_) {
    packed::Logits(packed_rows_, batch_rows_.data() + begin, end - begin, w.data(), c, c, z);
  } else {
    dense::Logits(row_ptr_.data() + begin, end - begin, d, wt.data(), dense::Padded(d), c, z);
  }
  if (bias_) MutableWeightMap(z, end - begin, c).rowwise() += w.row(d);
}

void SoftmaxRows::Transposed(const WeightMap& w, std::vector<double>* wt) const {
  const Index d = shard_.num_features, ld = dense::Padded(d);
  wt->resize(classes() * ld);
  dense::Transpose(w.data(), d, classes(), wt->data(), ld);
}

void SoftmaxRows::SparseLogits(const Batch& batch, const WeightMap& w, double* z) const {
  const Index n = batch.size(), c = classes();
  const std::int64_t* indptr = shard_.indptr.data();
  const std::int32_t* indices = shard_.indices.data();
  const float* data = shard_.data.data();
  const double* wp = w.data();
  WithClasses(c, [&](auto kc) {
    constexpr int kC = decltype(kc)::value;
    // A row's logits are summed in the order of its entries, which is the order of the
    // features: the bits of a pass by columns. W's rows are asked for kAheadEntries entries
    // ahead: across rows for a range of rows (their entries are contiguous), within the row
    // for a list.
    for (Index i = 0; i < n; ++i) {
      const Index row = batch[i];
      const std::int64_t begin = indptr[row], end = indptr[row + 1];
      const std::int64_t limit = batch.is_range() ? indptr[batch.begin() + n] : end;
      double* zi = z + i * c;
      if constexpr (kC > 0) {
        double acc[kC] = {};  // in registers; Z's row is written once
        for (std::int64_t k = begin; k < end; ++k) {
          if (k + kAheadEntries < limit) Prefetch(wp + indices[k + kAheadEntries] * kC, kC);
          const double a = static_cast<double>(data[k]);
          const double* wk = wp + static_cast<Index>(indices[k]) * kC;
          for (int j = 0; j < kC; ++j) acc[j] += a * wk[j];
        }
        if (bias_) {
          const double* wb = wp + (dim_ - 1) * kC;
          for (int j = 0; j < kC; ++j) acc[j] += 1.0 * wb[j];
        }
        std::copy(acc, acc + kC, zi);
      } else {
        std::fill(zi, zi + c, 0.0);
        for (std::int64_t k = begin; k < end; ++k) {
          if (k + kAheadEntries < limit) Prefetch(wp + indices[k + kAheadEntries] * c, c);
          AxpyRow<0>(c, static_cast<double>(data[k]), wp + static_cast<Index>(indices[k]) * c, zi);
        }
        if (bias_) AxpyRow<0>(c, 1.0, wp + (dim_ - 1) * c, zi);
      }
    }
  });
}

void SoftmaxRows::SetDiagonal(const Diagonal* diagonal, MutableWeightMap* g) const {
  if (!diagonal) {
    g->setZero();
    return;
  }
  const Index c = classes();
  if (!diagonal->row_scale) {
    // One scaled copy of dim x C doubles (hyperclean's ridge term on every inner step).
    *g = diagonal->factor * WeightMap(diagonal->m, dim_, c);
    return;
  }
  for (Index k = 0; k < dim_; ++k) DiagonalRow<0>(diagonal, k, c, g->data() + k * c);
}

void SoftmaxRows::CscProducts(const RowMatrix& r, const Diagonal* diagonal, MutableWeightMap* g,
                              BlockSink* sink) const {
  const Index c = classes();
  acc_.resize(3 * c);
  WithClasses(c, [&](auto kc) {
    constexpr int kC = decltype(kc)::value;
    const double* rp = r.data();
    double* acc = acc_.data();
    // With a sink, row k is formed in `row` (the bias row, finished after the loop, in `last`)
    // and handed over instead of written to G.
    double* row = acc + c;
    double* last = acc + 2 * c;
    const Index bias_row = bias_ ? dim_ - 1 : -1;
    std::size_t j = 0;  // the next column of the CSC copy
    for (Index k = 0; k < dim_; ++k) {
      double* gk = !sink ? g->data() + k * c : k == bias_row ? last : row;
      if (diagonal && k + kPrefetch < dim_) Prefetch(diagonal->m + (k + kPrefetch) * c, c);
      DiagonalRow<kC>(diagonal, k, c, gk);
      if (j < csc_feature_.size() && csc_feature_[j] == k) {
        std::fill(acc, acc + c, 0.0);
        for (std::int64_t e = csc_ptr_[j]; e < csc_ptr_[j + 1]; ++e)
          AxpyRow<kC>(c, static_cast<double>(csc_value_[e]), rp + csc_row_[e] * c, acc);
        AxpyRow<kC>(c, 1.0, acc, gk);
        ++j;
      }
      if (sink && k != bias_row) sink->Take(k, gk);
    }
    if (bias_) {
      double* gb = sink ? last : g->data() + bias_row * c;
      for (Index i = 0; i < rows(); ++i) AxpyRow<kC>(c, 1.0, rp + i * c, gb);
      if (sink) sink->Take(bias_row, gb);
    }
  });
}

void SoftmaxRows::Logits(const Batch& batch, const WeightMap& w, RowMatrix* z) const {
  const Index n = batch.size();
  z->resize(n, classes());
  if (shard_.csr) return SparseLogits(batch, w, z->data());
  DenseRows(batch);
  if (!packed_) Transposed(w, &wt_);
  DenseLogits(0, n, wt_, w, z->data());
}

void SoftmaxRows::Logits(const Batch& batch, const WeightMap& w, const WeightMap& v,
                         RowMatrix* z, RowMatrix* u) const {
  if (shard_.csr) {
    Logits(batch, w, z);
    return Logits(batch, v, u);
  }
  const Index n = batch.size(), c = classes();
  DenseRows(batch);
  if (!packed_) {
    Transposed(w, &wt_);
    Transposed(v, &vt_);
  }
  z->resize(n, c);
  u->resize(n, c);
  for (Index begin = 0; begin < n; begin += kDenseChunk) {
    const Index end = std::min(n, begin + kDenseChunk);
    DenseLogits(begin, end, wt_, w, z->data() + begin * c);
    DenseLogits(begin, end, vt_, v, u->data() + begin * c);
  }
}

// P depends only on the rows of W of the features that occur in the local rows (and the bias):
// on sparse data only those are kept and compared, a fraction of d x C.
bool SoftmaxRows::ProbabilitiesOf(const WeightMap& w, bool keep) const {
  const Index c = classes();
  if (!shard_.csr) {
    const Index size = w.size();
    const bool same = probs_of_.size() == size && size > 0 &&
                      std::memcmp(probs_of_.data(), w.data(), sizeof(double) * size) == 0;
    if (keep) probs_of_ = Eigen::Map<const Vec>(w.data(), size);
    return same;
  }
  const Index kept = static_cast<Index>(csc_feature_.size()) + (bias_ ? 1 : 0);
  bool same = probs_of_.size() == kept * c && kept > 0;
  if (!keep && !same) return false;
  if (keep) probs_of_.resize(kept * c);
  double* at = probs_of_.data();
  auto row = [&](Index k) {
    const double* wk = w.data() + k * c;
    if (keep) {
      std::memcpy(at, wk, sizeof(double) * c);
    } else {
      // Bit for bit, inline: a call to memcmp per row of C doubles costs more than the row.
      std::uint64_t differ = 0;
      for (Index j = 0; j < c; ++j) {
        std::uint64_t a, b;
        std::memcpy(&a, at + j, sizeof a);
        std::memcpy(&b, wk + j, sizeof b);
        differ |= a ^ b;
      }
      if (differ != 0) return false;
    }
    at += c;
    return true;
  };
  for (const std::int32_t k : csc_feature_)
    if (!row(k)) return false;
  if (bias_ && !row(dim_ - 1)) return false;
  return same;
}

const RowMatrix& SoftmaxRows::FullProbabilities(const WeightMap& w, std::uint64_t hold) const {
  if (hold != 0 && hold == probs_hold_) return probs_;
  probs_hold_ = 0;
  if (hold == 0 && ProbabilitiesOf(w, /*keep=*/false)) return probs_;
  const Batch all = Batch::Range(0, rows());
  Logits(all, w, &probs_);
  SoftmaxInPlace(&probs_, *this, all, 0, nullptr);
  if (hold != 0) {
    // No copy of W's rows (a pass over them): a later call outside the hold recomputes.
    probs_of_.resize(0);
    probs_hold_ = hold;
  } else {
    ProbabilitiesOf(w, /*keep=*/true);
  }
  return probs_;
}

void SoftmaxRows::FullRows(const WeightMap& w, const WeightMap* v, const ChunkFn& rows,
                           const RowMatrix* probs, RowMatrix* r) const {
  if (!shard_.csr) throw std::logic_error("SoftmaxRows::FullRows: sparse rows only");
  if (probs) {
    *r = *probs;
  } else {
    Logits(Batch::Range(0, this->rows()), w, r);
  }
  if (v) Logits(Batch::Range(0, this->rows()), *v, &u_chunk_);
  rows(0, r, v ? &u_chunk_ : nullptr);
}

void SoftmaxRows::ProductPass(const Batch& batch, const WeightMap& w, const WeightMap* v,
                              const ChunkFn& rows, MutableWeightMap* g,
                              const Diagonal* diagonal, const RowMatrix* probs,
                              bool touched_only, BlockSink* sink) const {
  if (probs && !IsFull(batch))
    throw std::logic_error("SoftmaxRows::ProductPass: known probabilities need the full batch");
  if (touched_only && diagonal)
    throw std::logic_error("SoftmaxRows::ProductPass: a diagonal term touches every row");
  if (sink && !(shard_.csr && (touched_only || IsFull(batch))))
    throw std::logic_error(
        "SoftmaxRows::ProductPass: a sink takes sparse rows' touched sums or a full pass's");
  // (The full column pass writes every row of G; touched_only takes the batch's columns.)
  if (FullSparse(batch) && !touched_only) {
    FullRows(w, v, rows, probs, &z_chunk_);
    CscProducts(z_chunk_, diagonal, g, sink);
    return;
  }
  if (shard_.csr)
    return BatchColumnPass(batch, w, v, rows, g, diagonal, probs, touched_only, sink);
  // Dense rows, a chunk at a time: the chunk's logits (and A V), the residuals, and its
  // contribution to G^T (packed rows: to G), while its rows are in the cache; G^T is added to
  // G at the end.
  SetDiagonal(diagonal, g);
  const Index n = batch.size(), d = shard_.num_features, c = classes(), ld = dense::Padded(d);
  DenseRows(batch);
  if (!packed_) {
    if (!probs) Transposed(w, &wt_);
    if (v) Transposed(*v, &vt_);
    gt_.assign(c * ld, 0.0);
  }
  for (Index begin = 0; begin < n; begin += kDenseChunk) {
    const Index end = std::min(n, begin + kDenseChunk);
    if (probs) {
      z_chunk_ = probs->middleRows(begin, end - begin);
    } else {
      z_chunk_.resize(end - begin, c);
      DenseLogits(begin, end, wt_, w, z_chunk_.data());
    }
    if (v) {
      u_chunk_.resize(end - begin, c);
      DenseLogits(begin, end, vt_, *v, u_chunk_.data());
    }
    rows(begin, &z_chunk_, v ? &u_chunk_ : nullptr);
    if (packed_) {
      // Scattered to G's rows in place (G is in the cache).
      packed::AddProduct(packed_rows_, batch_rows_.data() + begin, end - begin, z_chunk_.data(),
                         c, g->data(), c);
    } else {
      dense::AddTransposeProduct(row_ptr_.data() + begin, end - begin, d, z_chunk_.data(), c,
                                 gt_.data(), ld);
    }
    if (bias_) g->row(d) += z_chunk_.colwise().sum();
  }
  if (!packed_) dense::AddTransposed(gt_.data(), d, c, ld, g->data());
}

void SoftmaxRows::BatchColumns(const Batch& batch) const {
  // The same batch as last time (TouchedFeatures, then the oracle on that batch): kept.
  const Index n = batch.size();
  bool same = columns_valid_ && static_cast<Index>(columns_of_.size()) == n;
  for (Index i = 0; i < n && same; ++i) same = columns_of_[i] == batch[i];
  if (same) return;
  columns_valid_ = false;
  columns_of_.resize(n);
  for (Index i = 0; i < n; ++i) columns_of_[i] = batch[i];
  // A counting sort of the batch's entries by feature, in two passes over them. The first
  // sets a bit per feature (d / 8 bytes, read back in order: the touched features sorted
  // without a sort) and counts the feature's entries; the second puts each entry at its
  // feature's next place (an entry's batch row and value side by side: one cache line
  // written per entry). The per-feature scratch (d bits, d int32) stays in L2.
  seen_.resize((dim_ + 63) / 64, 0);
  count_.resize(dim_, 0);
  const std::int64_t* indptr = shard_.indptr.data();
  const std::int32_t* indices = shard_.indices.data();
  Index lo = dim_, hi = 0;
  for (Index i = 0; i < n; ++i) {
    const Index row = batch[i];
    for (std::int64_t k = indptr[row]; k < indptr[row + 1]; ++k) {
      const std::int32_t j = indices[k];
      seen_[j >> 6] |= std::uint64_t{1} << (j & 63);
      ++count_[j];
    }
    if (indptr[row + 1] > indptr[row]) {
      lo = std::min<Index>(lo, indices[indptr[row]] >> 6);
      hi = std::max<Index>(hi, (indices[indptr[row + 1] - 1] >> 6) + 1);
    }
  }
  // Turns the counts of the touched features into their first places (count_ is zero again
  // after the batch's entries are placed).
  touched_.clear();
  batch_ptr_.assign(1, 0);
  std::int32_t at = 0;
  for (Index w = lo; w < hi; ++w) {
    for (std::uint64_t bits = seen_[w]; bits != 0; bits &= bits - 1) {
      const Index j = w * 64 + __builtin_ctzll(bits);
      touched_.push_back(j);
      const std::int32_t c = count_[j];
      count_[j] = at;
      at += c;
      batch_ptr_.push_back(at);
    }
    seen_[w] = 0;
  }
  batch_entries_.resize(at);
  for (Index i = 0; i < n; ++i) {
    const Index row = batch[i];
    for (std::int64_t k = indptr[row]; k < indptr[row + 1]; ++k) {
      const std::int32_t place = count_[indices[k]]++;
      batch_entries_[place] = {static_cast<std::int32_t>(i), shard_.data[k]};
    }
  }
  for (const Index j : touched_) count_[j] = 0;
  if (bias_ && n > 0) touched_.push_back(dim_ - 1);
  columns_valid_ = true;
}

void SoftmaxRows::BatchColumnPass(const Batch& batch, const WeightMap& w, const WeightMap* v,
                                  const ChunkFn& rows, MutableWeightMap* g,
                                  const Diagonal* diagonal, const RowMatrix* probs,
                                  bool touched_only, BlockSink* sink) const {
  BatchColumns(batch);
  const Index n = batch.size(), c = classes();
  const Index features = static_cast<Index>(batch_ptr_.size()) - 1;
  if (!touched_only) SetDiagonal(diagonal, g);
  WithClasses(c, [&](auto kc) {
    constexpr int kC = decltype(kc)::value;
    // Z = A_B W (and U = A_B V), feature by feature: each touched row of W is read once, in
    // order, and the scattered accesses go to Z (n x C, in the core's cache).
    auto logits = [&](const WeightMap& m, RowMatrix* z) {
      z->resize(n, c);
      z->setZero();
      double* zp = z->data();
      for (Index f = 0; f < features; ++f) {
        if (f + kPrefetch < features) Prefetch(m.data() + touched_[f + kPrefetch] * c, c);
        const double* mk = m.data() + touched_[f] * c;
        for (std::int64_t e = batch_ptr_[f]; e < batch_ptr_[f + 1]; ++e)
          AxpyRow<kC>(c, static_cast<double>(batch_entries_[e].value), mk,
                      zp + batch_entries_[e].row * c);
      }
      if (bias_) {
        for (Index i = 0; i < n; ++i) AxpyRow<kC>(c, 1.0, m.data() + (dim_ - 1) * c, zp + i * c);
      }
    };
    if (probs) {
      z_chunk_.resize(n, c);
      for (Index i = 0; i < n; ++i) z_chunk_.row(i) = probs->row(batch[i]);
    } else {
      logits(w, &z_chunk_);
    }
    if (v) logits(*v, &u_chunk_);
    rows(0, &z_chunk_, v ? &u_chunk_ : nullptr);
    // G's touched rows: the sum over the feature's entries, added to (or, touched_only,
    // written over) the row.
    const double* rp = z_chunk_.data();
    acc_.resize(c);
    double* acc = acc_.data();
    auto put = [&](Index k) {
      if (sink) return sink->Take(k, acc);
      double* gk = g->data() + k * c;
      if (touched_only) {
        std::copy(acc, acc + c, gk);
      } else {
        AxpyRow<kC>(c, 1.0, acc, gk);
      }
    };
    for (Index f = 0; f < features; ++f) {
      if (f + kPrefetch < features) {
        if (sink) {
          sink->Ahead(touched_[f + kPrefetch]);
        } else {
          Prefetch(g->data() + touched_[f + kPrefetch] * c, c);
        }
      }
      std::fill(acc, acc + c, 0.0);
      for (std::int64_t e = batch_ptr_[f]; e < batch_ptr_[f + 1]; ++e)
        AxpyRow<kC>(c, static_cast<double>(batch_entries_[e].value),
                    rp + batch_entries_[e].row * c, acc);
      put(touched_[f]);
    }
    if (bias_ && n > 0) {
      std::fill(acc, acc + c, 0.0);
      for (Index i = 0; i < n; ++i) AxpyRow<kC>(c, 1.0, rp + i * c, acc);
      put(dim_ - 1);
    }
  });
}

void SoftmaxRows::TouchedFeatures(const Batch& batch, std::vector<Index>* features) const {
  if (!shard_.csr) {
    features->resize(dim_);
    for (Index k = 0; k < dim_; ++k) (*features)[k] = k;
    return;
  }
  // Through the batch's CSC, which the oracle on the same batch then finds made.
  BatchColumns(batch);
  features->assign(touched_.begin(), touched_.end());
}

ColumnBlock::ColumnBlock(const io::SplitShard& split, const std::vector<std::int32_t>& place,
                         Index first, Index last)
    : first_(first), last_(last), ptr_(last - first + 1, 0) {
  const Index rows = static_cast<Index>(split.indptr.size()) - 1;
  // An entry's column among the blocks (a row's entries need not be in column order: each
  // column receives its entries in row order all the same).
  auto column = [&](std::int64_t k) {
    const std::int32_t j = split.indices[k];
    return place.empty() ? j : place[j];
  };
  for (std::int64_t k = 0; k < static_cast<std::int64_t>(split.indices.size()); ++k) {
    const std::int32_t j = column(k);
    if (j >= first && j < last) ++ptr_[j - first + 1];
  }
  for (Index f = 0; f < last - first; ++f) ptr_[f + 1] += ptr_[f];
  row_.resize(ptr_.back());
  value_.resize(ptr_.back());
  std::vector<std::int64_t> next(ptr_.begin(), ptr_.end() - 1);
  for (Index i = 0; i < rows; ++i) {
    for (std::int64_t k = split.indptr[i]; k < split.indptr[i + 1]; ++k) {
      const std::int32_t j = column(k);
      if (j < first || j >= last) continue;
      const std::int64_t at = next[j - first]++;
      row_[at] = static_cast<std::int32_t>(i);
      value_[at] = split.data[k];
    }
  }
}

void ColumnBlock::Product(const double* r, Index c, Index lo, Index hi, double* out) const {
  acc_.resize(c);
  double* acc = acc_.data();
  WithClasses(c, [&](auto kc) {
    constexpr int kC = decltype(kc)::value;
    for (Index f = lo / c; f * c < hi; ++f) {
      std::fill(acc, acc + c, 0.0);
      const std::int64_t end = ptr_[f - first_ + 1];
      for (std::int64_t e = ptr_[f - first_]; e < end; ++e)
        AxpyRow<kC>(c, static_cast<double>(value_[e]), r + static_cast<Index>(row_[e]) * c, acc);
      // The entries of feature f's row that lie in [lo, hi).
      const Index from = std::max(lo, f * c), to = std::min(hi, (f + 1) * c);
      std::copy(acc + (from - f * c), acc + (to - f * c), out + (from - lo));
    }
  });
}

bool PackedSplit(const std::string& path, const io::DatasetInfo& info, const std::string& split) {
  const Index rows = std::min(info.ForSplit(split).rows, kPackSampleRows);
  if (info.csr() || rows == 0) return false;
  const io::SplitShard first = io::ReadSplitShard(path, split, 0, rows);
  const Index nonzeros = (first.features.array() != 0.0f).count();
  const double values = static_cast<double>(first.features.size());
  return values > 0 && nonzeros <= SoftmaxRows::kPackedDensity * values;
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
  b.train_packed = PackedSplit(path, b.info, "train");
  b.val_packed = PackedSplit(path, b.info, "val");
  b.test_packed = PackedSplit(path, b.info, "test");
  b.file_features = b.info.attributes.num_features;
  if (b.info.csr()) {
    const std::vector<std::int64_t> counts = io::ReadColumnCounts(path, "train");
    b.feature_order = FrequencyOrder(counts);
    const std::vector<std::int32_t> place = PlacesOf(b.feature_order);
    for (io::SplitShard* s : {&b.train, &b.val, &b.test}) RenumberColumns(place, s);
    // The features the train split holds come first; the others (none of its rows has them)
    // are dropped. A split with no entry at all keeps every feature.
    const Index held = std::count_if(counts.begin(), counts.end(), [](std::int64_t n) { return n > 0; });
    if (held > 0)
      for (io::SplitShard* s : {&b.train, &b.val, &b.test}) KeepColumnsBelow(held, s);
    b.feature_counts.resize(b.train.num_features);
    for (Index k = 0; k < b.train.num_features; ++k)
      b.feature_counts[k] = counts[b.feature_order[k]];
  }
  return b;
}

void KeepColumnsBelow(Index features, io::SplitShard* shard) {
  // Rows are in increasing column order: the entries dropped end each row.
  std::int64_t at = 0;
  for (std::size_t i = 0; i + 1 < shard->indptr.size(); ++i) {
    const std::int64_t lo = shard->indptr[i], hi = shard->indptr[i + 1];
    shard->indptr[i] = at;
    for (std::int64_t k = lo; k < hi && shard->indices[k] < features; ++k, ++at) {
      shard->indices[at] = shard->indices[k];
      shard->data[at] = shard->data[k];
    }
  }
  if (!shard->indptr.empty()) shard->indptr.back() = at;
  shard->indices.resize(at);
  shard->data.resize(at);
  shard->indices.shrink_to_fit();
  shard->data.shrink_to_fit();
  shard->num_features = features;
}

std::vector<std::int32_t> FrequencyOrder(const std::vector<std::int64_t>& counts) {
  std::vector<std::int32_t> order(counts.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](std::int32_t a, std::int32_t b) { return counts[a] > counts[b]; });
  return order;
}

std::vector<std::int32_t> PlacesOf(const std::vector<std::int32_t>& order) {
  std::vector<std::int32_t> place(order.size());
  for (std::size_t k = 0; k < order.size(); ++k) place[order[k]] = static_cast<std::int32_t>(k);
  return place;
}

void RenumberColumns(const std::vector<std::int32_t>& place, io::SplitShard* shard) {
  std::vector<std::pair<std::int32_t, float>> row;
  for (std::size_t i = 0; i + 1 < shard->indptr.size(); ++i) {
    const std::int64_t lo = shard->indptr[i], hi = shard->indptr[i + 1];
    row.clear();
    for (std::int64_t k = lo; k < hi; ++k)
      row.emplace_back(place[shard->indices[k]], shard->data[k]);
    std::sort(row.begin(), row.end(),
              [](const auto& a, const auto& b) { return a.first < b.first; });
    for (std::int64_t k = lo; k < hi; ++k)
      shard->indices[k] = row[k - lo].first, shard->data[k] = row[k - lo].second;
  }
}

namespace {

// p[0..n) = exp(p[0..n)), every value through Eigen's vectorized exp (the last partial packet
// from a padded copy): each result depends on its value alone, not on where it lies. (Eigen's
// exp clamps its argument at about -709: a shifted logit below it gives about 1e-308, not 0,
// next to the row's largest value's exp(0) = 1.)
void ExpInPlace(double* p, Index n) {
  using Packet = Eigen::internal::packet_traits<double>::type;
  constexpr Index kSize = Eigen::internal::packet_traits<double>::size;
  Index i = 0;
  for (; i + kSize <= n; i += kSize)
    Eigen::internal::pstoreu(p + i, Eigen::internal::pexp(Eigen::internal::ploadu<Packet>(p + i)));
  if (i < n) {
    double tail[kSize] = {};
    std::copy(p + i, p + n, tail);
    Eigen::internal::pstoreu(tail, Eigen::internal::pexp(Eigen::internal::ploadu<Packet>(tail)));
    std::copy(tail, tail + (n - i), p + i);
  }
}

}  // namespace

void SoftmaxInPlace(RowMatrix* z, const SoftmaxRows& rows, const Batch& batch, Index first,
                    Vec* ce) {
  const Index n = z->rows();
  if (ce) ce->resize(n);
  // Three sweeps over the rows (in the cache): shift each row by its largest value, exp of
  // the whole block at once, normalize. The cross-entropy log-sum-exp(z) - z_label is
  // log(sum) - (z_label - top): its second term is kept before the exp.
  for (Index i = 0; i < n; ++i) {
    auto zi = z->row(i);
    zi.array() -= zi.maxCoeff();
    if (ce) (*ce)[i] = -zi[rows.label(batch[first + i])];
  }
  ExpInPlace(z->data(), z->size());
  for (Index i = 0; i < n; ++i) {
    auto zi = z->row(i);
    const double sum = zi.sum();
    if (ce) (*ce)[i] += std::log(sum);
    zi /= sum;
  }
}

}  // namespace bilevel::problems
