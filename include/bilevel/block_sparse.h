// Row-sparse minibatch steps, for problems that declare blocks (Problem::BlockSize): a
// minibatch of sparse rows touches a few rows of W out of d, and a step that passes over all
// q = d x C entries (the regularizer's term, the allreduce, the update) does mostly nothing.
//
// The inner step and the Neumann step of stocBiO are, entry by entry,
//   u <- u - a (scale h + s o u)   =   f o u - a scale h,    f = 1 - a s,
// (a: alpha or eta; s: the sample diagonal, Problem::AddSampleDiagonal; h: the batch's sum of
// grad_y G_0 or H_0 v, zero outside the touched blocks). On a block no batch touches the step
// is u <- f o u (and, for the Neumann series, acc <- acc + u). LazyBlocks defers those
// multiplications until a block is read or written; every rank brings a block up over the
// same spans of steps, so every rank holds the same bits. BlockSums sums the touched blocks
// over ranks, communicating only them.
#ifndef BILEVEL_BLOCK_SPARSE_H_
#define BILEVEL_BLOCK_SPARSE_H_

#include <algorithm>
#include <cstdint>
#include <vector>

#include "bilevel/communicator.h"
#include "bilevel/problem.h"
#include "bilevel/sampler.h"

namespace bilevel {

// How many blocks ahead loops over scattered blocks ask for them (LazyBlocks::Prefetch).
constexpr std::size_t kAhead = 6;

// The sums over ranks of row-sparse vectors: one allgather of every rank's touched blocks
// (their indices and values) per Exchange on more than one rank, none on one.
class BlockSums {
 public:
  BlockSums(Problem* problem, Communicator* comm);

  // The blocks the local part of `batch` touches (Problem::TouchedBlocks), kept for Exchange.
  const std::vector<Index>& Touch(Split split, const MiniBatch& batch);
  // `local` (q doubles) holds this rank's sums on the blocks of the last Touch, and stays
  // valid until the sums are read. Afterwards blocks() is the union of every rank's touched
  // blocks (rank 0's, then the new ones of rank 1, ...) and sum(k) the C sums over ranks of
  // block blocks()[k], added in rank order: the same bits on every rank.
  void Exchange(const double* local);
  const std::vector<Index>& blocks() const { return single_ ? touched_ : union_; }
  const double* sum(std::size_t k) const {
    return single_ ? local_ + touched_[k] * block_ : sums_.data() + k * block_;
  }
  Index block_size() const { return block_; }

 private:
  Problem* problem_;
  Communicator* comm_;
  Index block_;
  bool single_;              // one rank: the sums are the local ones
  const double* local_ = nullptr;
  std::vector<Index> touched_, union_;
  std::vector<double> send_, received_;
  std::vector<Index> counts_;
  std::vector<double> sums_;         // union_.size() blocks, in union order
  std::vector<std::uint32_t> mark_;  // per block: the Exchange that last put it in union_
  std::vector<std::int32_t> at_;     // per block: its place in union_ (when marked)
  std::uint32_t epoch_ = 0;
};

// The deferred steps u <- f o u (and acc <- acc + u) of the blocks no batch touched,
// f = 1 - a s.
class LazyBlocks {
 public:
  // Starts a sequence of steps at step 0, with the sample diagonal s at x (recomputed only
  // when x changes; Problem::SampleDiagonalOfBlocks, or else AddSampleDiagonal). `zero`: u
  // and acc are zero on every block (their storage is not read) until a block is brought up
  // (CatchUp, which zero-fills it) or set (Set); otherwise every block of u is up to date at
  // step 0.
  void Start(Problem& problem, ConstVecRef x, double a, Index block_size, bool zero);
  // Brings block b of u (and acc, if not null) to step t: the steps since its last update.
  void CatchUp(Index b, int t, double* u, double* acc = nullptr) {
    const int at = stamp_[b];
    if (at == kZero) {
      Fill(b, u, acc);
    } else if (t > at) {
      Apply(b * block_, (b + 1) * block_, t - at, u, acc);
    }
    stamp_[b] = t;
  }
  // Block b was written directly at step t (after Start with `zero`).
  void Set(Index b, int t) { stamp_[b] = t; }
  // Step t's update of block b, after CatchUp(b, t): u <- f o u - c h (h: the block's C
  // sums), acc <- acc + u; the block is then at step t + 1.
  void Update(Index b, int t, double c, const double* h, double* u, double* acc = nullptr);
  // Asks the memory for block b of u (and acc): a few blocks ahead of CatchUp and Update in
  // a loop over scattered blocks.
  void Prefetch(Index b, const double* u, const double* acc = nullptr) const {
    for (Index j = 0; j < block_; j += 8) {
      __builtin_prefetch(u + b * block_ + j, 1);
      if (acc) __builtin_prefetch(acc + b * block_ + j, 1);
    }
  }
  // Brings every block to step t (zero-filling those still zero).
  void CatchUpAll(int t, double* u, double* acc = nullptr);
  // The end of a Neumann series started with `zero`: every block that was brought up or set
  // takes acc <- scale (acc at step t), as CatchUpAll(t, u, acc) then acc *= scale would
  // (the same bits), and is listed in `live` in increasing order; the blocks still zero are
  // not written (the caller keeps acc zero there) and u is left where it is.
  void FinishSeries(int t, double scale, double* u, double* acc, std::vector<Index>* live);
  // CatchUp of each of `blocks` (the ones an oracle is about to read), prefetching ahead.
  void CatchUpBlocks(const std::vector<Index>& blocks, int t, double* u, double* acc = nullptr);
  // Step t on the union of the touched blocks: CatchUp and Update of each block of
  // sums.blocks() with its sums over ranks, u <- f o u - c h, prefetching ahead.
  void UpdateBlocks(const BlockSums& sums, int t, double c, double* u, double* acc = nullptr);

 private:
  static constexpr int kZero = -1;
  // `pending` steps of the entries [lo, hi).
  void Apply(Index lo, Index hi, int pending, double* u, double* acc) const;
  void Fill(Index b, double* u, double* acc) const;
  // s_ and per_block_ from the problem's AddSampleDiagonal.
  void DiagonalOf(Problem& problem, ConstVecRef x);
  // f = 1 - a s, computed by this one expression everywhere (the same bits).
  double Factor(double s) const { return 1.0 - a_ * s; }

  Index block_ = 0;
  double a_ = 0;
  Vec x_of_;               // the x of s_
  Vec s_;                  // s per entry, or per block when constant within every block
  bool per_block_ = false;
  Vec ones_, scratch_;     // AddSampleDiagonal's argument (ones) and result, a tile of s
  std::vector<int> stamp_;  // per block: the step it is at, or kZero
};

// Step t of LazyBlocks on one rank, made block by block as a problem's pass hands over the
// batch's sums (Problem::TakesBlockSink): u <- f o u - c h (and acc <- acc + u) on each block
// as UpdateBlocks would make it, the same bits, without the sums being written to a vector
// and read back. The blocks must have been brought to step t (CatchUpBlocks) before the pass.
class LazySink : public BlockSink {
 public:
  LazySink(LazyBlocks* lazy, int t, double c, double* u, double* acc = nullptr)
      : lazy_(lazy), t_(t), c_(c), u_(u), acc_(acc) {}
  void Take(Index b, const double* sums) override {
    lazy_->CatchUp(b, t_, u_, acc_);
    lazy_->Update(b, t_, c_, sums, u_, acc_);
  }
  void Ahead(Index b) override { lazy_->Prefetch(b, u_, acc_); }

 private:
  LazyBlocks* lazy_;
  int t_;
  double c_;
  double *u_, *acc_;
};

// A gradient step on one rank made block by block inside a full-batch pass
// (Problem::TakesBlockSink): u <- u - c h on each block as the pass hands over its sums h.
class StepSink : public BlockSink {
 public:
  StepSink(double* u, Index block_size, double c) : u_(u), block_(block_size), c_(c) {}
  void Take(Index b, const double* sums) override {
    double* ub = u_ + b * block_;
    for (Index j = 0; j < block_; ++j) ub[j] -= c_ * sums[j];
  }

 private:
  double* u_;
  Index block_;
  double c_;
};

// The sample diagonal s at x, one value per block (Problem::SampleDiagonalOfBlocks), for the
// sliced steps that apply it in the same pass over their slice as the rest of the step,
// instead of a pass of their own (AddSampleDiagonal) and a pass to scale the sum.
class BlockDiagonal {
 public:
  // Whether the problem gives s per block at x; s is recomputed only when x changes.
  bool Set(Problem& problem, ConstVecRef x);
  // out[i] = a in[i] + s_(lo+i) m[i], i < n (entries lo .. lo + n - 1 of y).
  void ScaledPlus(Index lo, Index n, double a, const double* in, const double* m,
                  double* out) const;
  // out[i] = u[i] - alpha (a g[i] + s_(lo+i) u[i]), i < n: a gradient step with the
  // diagonal (out may be u).
  void Step(Index lo, Index n, double alpha, double a, const double* g, const double* u,
            double* out) const;

 private:
  // f(i0, i1, s) for the runs [i0, i1) of 0..n-1 within one block, whose value of s is s.
  template <class F>
  void ForRuns(Index lo, Index n, const F& f) const {
    for (Index i = 0; i < n;) {
      const Index b = (lo + i) / block_;
      const Index end = std::min(n, (b + 1) * block_ - lo);
      f(i, end, s_[b]);
      i = end;
    }
  }

  Index block_ = 0;
  Vec x_of_;  // the x of s_
  Vec s_;
  bool valid_ = false;
};

}  // namespace bilevel

#endif  // BILEVEL_BLOCK_SPARSE_H_
