#include "bilevel/block_sparse.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>

namespace bilevel {

BlockSums::BlockSums(Problem* problem, Communicator* comm)
    : problem_(problem), comm_(comm), block_(problem->BlockSize()), single_(comm->size() == 1) {
  const Index q = problem->DimInner();
  if (block_ <= 0 || q % block_ != 0)
    throw std::logic_error("BlockSums: the problem's BlockSize() must divide DimInner()");
  if (!single_) {
    mark_.assign(q / block_, 0);
    at_.assign(q / block_, 0);
  }
}

const std::vector<Index>& BlockSums::Touch(Split split, const MiniBatch& batch) {
  problem_->TouchedBlocks(split, batch.local(), &touched_);
  return touched_;
}

void BlockSums::Exchange(const double* local) {
  local_ = local;
  if (single_) return;
  // This rank's piece: the number of blocks, their indices, then their values.
  const Index m = static_cast<Index>(touched_.size());
  send_.resize(1 + m + m * block_);
  send_[0] = static_cast<double>(m);
  for (Index k = 0; k < m; ++k) {
    send_[1 + k] = static_cast<double>(touched_[k]);
    std::memcpy(send_.data() + 1 + m + k * block_, local + touched_[k] * block_,
                sizeof(double) * block_);
  }
  comm_->AllgatherPieces(send_.data(), static_cast<Index>(send_.size()), &received_, &counts_);
  // Wrapping of the epoch: clear the marks so that no stale one equals the new epoch.
  if (++epoch_ == 0) std::fill(mark_.begin(), mark_.end(), 0), epoch_ = 1;
  union_.clear();
  sums_.resize(received_.size());  // enough: the union has at most every piece's blocks
  const double* piece = received_.data();
  for (const Index size : counts_) {
    const Index n = static_cast<Index>(piece[0]);
    const double* ids = piece + 1;
    const double* values = piece + 1 + n;
    for (Index k = 0; k < n; ++k) {
      const Index b = static_cast<Index>(ids[k]);
      const double* v = values + k * block_;
      if (mark_[b] != epoch_) {
        mark_[b] = epoch_;
        at_[b] = static_cast<std::int32_t>(union_.size());
        std::copy(v, v + block_, sums_.data() + union_.size() * block_);
        union_.push_back(b);
      } else {
        double* sum = sums_.data() + at_[b] * block_;
        for (Index j = 0; j < block_; ++j) sum[j] += v[j];
      }
    }
    piece += size;
  }
}

void LazyBlocks::Start(Problem& problem, ConstVecRef x, double a, Index block_size, bool zero) {
  const Index q = problem.DimInner();
  a_ = a;
  if (block_ != block_size || x_of_.size() != x.size() || x_of_ != x) {
    block_ = block_size;
    x_of_ = x;
    s_.resize(q / block_);
    per_block_ = problem.SampleDiagonalOfBlocks(x, s_);
    if (!per_block_) DiagonalOf(problem, x);
  }
  stamp_.assign(q / block_, zero ? kZero : 0);
}

void LazyBlocks::DiagonalOf(Problem& problem, ConstVecRef x) {
  // s in tiles of whole blocks (AddSampleDiagonal on ones), kept per block when it is constant
  // within every block, else per entry.
  const Index q = problem.DimInner(), blocks = q / block_;
  const Index tile = std::max<Index>(1, 65536 / block_) * block_;
  ones_ = Vec::Ones(std::min(tile, q));
  scratch_.resize(ones_.size());
  s_.resize(blocks);
  per_block_ = true;
  for (Index lo = 0; lo < q && per_block_; lo += tile) {
    const Index n = std::min(tile, q - lo);
    scratch_.head(n).setZero();
    problem.AddSampleDiagonal(x, lo, ones_.head(n), scratch_.head(n));
    for (Index b = 0; b < n / block_; ++b) {
      const auto sb = scratch_.segment(b * block_, block_);
      per_block_ = per_block_ && (sb.array() == sb[0]).all();
      s_[lo / block_ + b] = sb[0];
    }
  }
  if (!per_block_) {
    s_.resize(q);
    s_.setZero();
    problem.AddSampleDiagonal(x, 0, Vec::Ones(q), s_);
  }
}

void LazyBlocks::Fill(Index b, double* u, double* acc) const {
  std::fill_n(u + b * block_, block_, 0.0);
  if (acc) std::fill_n(acc + b * block_, block_, 0.0);
}

void LazyBlocks::Apply(Index lo, Index hi, int pending, double* u, double* acc) const {
  // Every rank brings a block up over the same spans of steps (from the last step that
  // updated it, which updated it on every rank, to the step that reads it, where every rank
  // reads it or none), so any fixed way of computing a span gives the same bits everywhere.
  if (per_block_) {
    // f^k and f + f^2 + ... + f^k once per block, one multiplication per entry.
    for (Index b = lo / block_; b < hi / block_; ++b) {
      const double f = Factor(s_[b]);
      double power = 1, sum = 0;
      for (int k = 0; k < pending; ++k) power *= f, sum += power;
      double* ub = u + b * block_;
      if (acc) {
        double* ab = acc + b * block_;
        for (Index j = 0; j < block_; ++j) ab[j] += sum * ub[j], ub[j] *= power;
      } else {
        for (Index j = 0; j < block_; ++j) ub[j] *= power;
      }
    }
    return;
  }
  // Step by step over tiles that stay in the L1 cache, vectorized across the entries.
  constexpr Index kTile = 512;
  double f[kTile];
  for (Index t0 = lo; t0 < hi; t0 += kTile) {
    const Index t1 = std::min(hi, t0 + kTile);
    for (Index i = t0; i < t1; ++i) f[i - t0] = Factor(s_[i]);
    for (int k = 0; k < pending; ++k) {
      if (acc) {
        for (Index i = t0; i < t1; ++i) u[i] *= f[i - t0], acc[i] += u[i];
      } else {
        for (Index i = t0; i < t1; ++i) u[i] *= f[i - t0];
      }
    }
  }
}

void LazyBlocks::Update(Index b, int t, double c, const double* h, double* u, double* acc) {
  const Index lo = b * block_;
  double* ub = u + lo;
  if (per_block_) {
    const double f = Factor(s_[b]);
    for (Index j = 0; j < block_; ++j) ub[j] = f * ub[j] - c * h[j];
  } else {
    const double* s = s_.data() + lo;
    for (Index j = 0; j < block_; ++j) ub[j] = Factor(s[j]) * ub[j] - c * h[j];
  }
  if (acc) {
    double* ab = acc + lo;
    for (Index j = 0; j < block_; ++j) ab[j] += ub[j];
  }
  stamp_[b] = t + 1;
}

void LazyBlocks::CatchUpAll(int t, double* u, double* acc) {
  // Runs of consecutive blocks at the same step, each brought up in one sweep.
  const Index blocks = static_cast<Index>(stamp_.size());
  for (Index b = 0; b < blocks;) {
    Index e = b + 1;
    while (e < blocks && stamp_[e] == stamp_[b]) ++e;
    if (stamp_[b] == kZero) {
      std::fill(u + b * block_, u + e * block_, 0.0);
      if (acc) std::fill(acc + b * block_, acc + e * block_, 0.0);
    } else if (t > stamp_[b]) {
      Apply(b * block_, e * block_, t - stamp_[b], u, acc);
    }
    for (Index k = b; k < e; ++k) stamp_[k] = t;
    b = e;
  }
}

void LazyBlocks::FinishSeries(int t, double scale, double* u, double* acc,
                              std::vector<Index>* live) {
  live->clear();
  const Index blocks = static_cast<Index>(stamp_.size());
  for (Index b = 0; b < blocks; ++b) {
    if (stamp_[b] == kZero) continue;
    live->push_back(b);
    if (t > stamp_[b]) Apply(b * block_, (b + 1) * block_, t - stamp_[b], u, acc);
    stamp_[b] = t;
    double* ab = acc + b * block_;
    for (Index j = 0; j < block_; ++j) ab[j] *= scale;
  }
}

void LazyBlocks::CatchUpBlocks(const std::vector<Index>& blocks, int t, double* u,
                               double* acc) {
  for (std::size_t k = 0; k < blocks.size(); ++k) {
    if (k + kAhead < blocks.size()) Prefetch(blocks[k + kAhead], u, acc);
    CatchUp(blocks[k], t, u, acc);
  }
}

void LazyBlocks::UpdateBlocks(const BlockSums& sums, int t, double c, double* u, double* acc) {
  const std::vector<Index>& blocks = sums.blocks();
  for (std::size_t k = 0; k < blocks.size(); ++k) {
    if (k + kAhead < blocks.size()) Prefetch(blocks[k + kAhead], u, acc);
    CatchUp(blocks[k], t, u, acc);
    Update(blocks[k], t, c, sums.sum(k), u, acc);
  }
}

bool BlockDiagonal::Set(Problem& problem, ConstVecRef x) {
  const Index block = problem.BlockSize();
  if (block <= 0 || !problem.HasSampleDiagonal()) return false;
  if (valid_ && block_ == block && x_of_.size() == x.size() && x_of_ == x) return true;
  block_ = block;
  s_.resize(problem.DimInner() / block);
  valid_ = problem.SampleDiagonalOfBlocks(x, s_);
  if (valid_) x_of_ = x;
  return valid_;
}

void BlockDiagonal::ScaledPlus(Index lo, Index n, double a, const double* in, const double* m,
                               double* out) const {
  ForRuns(lo, n, [&](Index i0, Index i1, double s) {
    for (Index i = i0; i < i1; ++i) out[i] = a * in[i] + s * m[i];
  });
}

void BlockDiagonal::Step(Index lo, Index n, double alpha, double a, const double* g,
                         const double* u, double* out) const {
  ForRuns(lo, n, [&](Index i0, Index i1, double s) {
    for (Index i = i0; i < i1; ++i) out[i] = u[i] - alpha * (a * g[i] + s * u[i]);
  });
}

}  // namespace bilevel
