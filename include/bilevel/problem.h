// The problem interface: the one class a user writes to solve their own bilevel problem
// (MATH.md section 1)
//
//   min_x Phi(x) = f(x, y*(x))     s.t.  y*(x) = argmin_y g(x, y),
//   f(x, y) = (1/n) sum_i F(x, y; xi_i)    over the n samples of Split::kOuter (validation),
//   g(x, y) = (1/m) sum_j G(x, y; zeta_j)  over the m samples of Split::kInner (training),
//
// with x in R^p (DimOuter), y in R^q (DimInner), and g(x, .) strongly convex. Algorithms use
// the hypergradient grad Phi = grad_x f - J H^{-1} grad_y f with H = grad^2_yy g (q x q) and
// J = grad^2_xy g (p x q), through products only: nothing ever forms H or J.
//
// A problem is a class derived from bilevel::Problem that overrides its pure virtual members:
// the shapes, this rank's shard of the samples, and eight oracles, each a sum over a batch of
// this rank's samples. Every algorithm (AID-BiO, ITD-BiO, stocBiO), the sums over MPI ranks,
// the minibatches, the oracle counts and the metrics come from the engine. Write
// BILEVEL_PROBLEM(MyProblem) after the class for readable compile-time errors, and test the
// oracles with bilevel::CheckOracles (bilevel/check.h) before the first run.
//
// Data and ranks. Every rank of a run constructs its own instance, typically from its rank and
// the number of ranks, holding only its shard: LocalShard(split) is the contiguous block of
// global sample indices [begin, end) it owns, and the shards of all ranks partition
// [0, NumSamples(split)) in rank order (BlockShard gives the usual blocks). Name, shapes and
// NumSamples are the same on every rank.
//
// The oracle contract (all eight oracles):
//  - Batch. `batch` holds sample indices LOCAL to this rank's shard of the oracle's split
//    (kOuter for F, kInner for G): the local index s is the global sample
//    LocalShard(split).begin + s. It is a range (full-batch passes) or a sorted list of
//    distinct indices (this rank's part of a minibatch), and may be empty. Read it as
//    `for (Index k = 0; k < batch.size(); ++k) { const Index s = batch[k]; ... }`.
//  - Sum. The result is the SUM over the batch, not the mean; an empty batch gives 0. The
//    engine divides by the global batch size and sums over ranks.
//  - Storage. x (p entries), y (q) and v are read-only. `out` is storage the caller owns,
//    already sized as stated (p or q): the oracle OVERWRITES it (never adds to it) and never
//    resizes it. The engine never passes an `out` that aliases x, y or v.
//  - Guarantees. The engine calls the oracles on every rank, each rank on its own samples, from
//    the thread that called bilevel::Solve, one call at a time (never concurrently, never
//    reentrantly). Oracles must not communicate. They may keep scratch members (hence they are
//    not const) and should not allocate per call.
#ifndef BILEVEL_PROBLEM_H_
#define BILEVEL_PROBLEM_H_

#include <cstdint>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "bilevel/batch.h"
#include "bilevel/types.h"

namespace bilevel {

class MetricsRecord;

// Global sample indices [begin, end) of one split owned by this rank.
struct Shard {
  Index begin = 0;
  Index end = 0;
  Index size() const { return end - begin; }
};

// The contiguous block of n samples owned by `rank` of `ranks`: sizes differ by at most one,
// lower ranks take the larger blocks.
Shard BlockShard(Index n, int rank, int ranks);

// Step sizes and loop lengths a problem recommends for an algorithm. The CLI uses them for
// every option the user leaves at "auto".
struct ProblemDefaults {
  double inner_lr = 0.1;    // alpha
  double outer_lr = 0.1;    // beta
  Index batch_size = 64;    // minibatch size of stochastic methods
  Index outer_batch_size = 0;  // stocBiO's batch for grad F; 0: batch_size
  int inner_steps = 10;     // T: inner steps per outer iteration
  std::string outer_optimizer = "sgd";  // one of OuterOptimizerNames()
  // When positive, alpha is this over lambda_max(H) at (x_0, y_0), estimated on the data when
  // the run starts (InitialLambdaMax), to three significant digits; inner_lr is then only the
  // fallback for an estimate that is not a positive number.
  // For problems whose curvature is the data's scale (l2reg: unnormalized features).
  double inner_lr_curvature = 0;
};

// Takes the sums of a batch's blocks (the touched ones of a minibatch, or every one of a full
// pass) from a problem's pass as it computes them (Problem::TakesBlockSink).
class BlockSink {
 public:
  virtual ~BlockSink() = default;
  // The batch's sums on block b (BlockSize() doubles, valid during the call only).
  virtual void Take(Index b, const double* sums) = 0;
  // Block b will be taken a few blocks from now: a hint to ask the memory for what Take
  // writes.
  virtual void Ahead(Index b) { (void)b; }
};

// A bilevel problem: see the top of this file for the mathematics and the oracle contract.
// Below, F_i = F(x, y; xi_i) ranges over the batch of outer samples and G_j = G(x, y; zeta_j)
// over the batch of inner samples.
class Problem {
 public:
  virtual ~Problem() = default;

  // A short lowercase name for headers, metrics and files ("quadratic").
  virtual std::string Name() const = 0;
  // p, the dimension of x.
  virtual Index DimOuter() const = 0;
  // q, the dimension of y.
  virtual Index DimInner() const = 0;
  // The global number of samples of a split: n (kOuter) or m (kInner), over all ranks.
  virtual Index NumSamples(Split split) const = 0;
  // The global indices of the samples of `split` this rank holds.
  virtual Shard LocalShard(Split split) const = 0;

  // Starting points x_0 and y_0, the same on every rank; zero by default.
  virtual void InitialOuter(VecRef x) const { x.setZero(); }
  virtual void InitialInner(VecRef y) const { y.setZero(); }
  // The feasible set of x, if the problem has one: moves x (after each outer step, on the
  // coordinator) to the nearest point where inner steps of size `inner_lr` stay stable. The
  // default keeps x as it is.
  virtual void ProjectOuter(VecRef x, double inner_lr) const { (void)x, (void)inner_lr; }

  // sum_i F(x, y; xi_i): the outer objective's value, summed over the batch (kOuter).
  virtual double ValueF(ConstVecRef x, ConstVecRef y, const Batch& batch) = 0;
  // sum_j G(x, y; zeta_j): the inner objective's value, summed over the batch (kInner).
  virtual double ValueG(ConstVecRef x, ConstVecRef y, const Batch& batch) = 0;
  // out (p) = sum_i grad_x F(x, y; xi_i): the direct part of the hypergradient (zero when F
  // does not depend on x, as for a validation loss).
  virtual void GradXF(ConstVecRef x, ConstVecRef y, const Batch& batch, VecRef out) = 0;
  // out (q) = sum_i grad_y F(x, y; xi_i): the right-hand side of H v = grad_y f.
  virtual void GradYF(ConstVecRef x, ConstVecRef y, const Batch& batch, VecRef out) = 0;
  // out (q) = sum_j grad_y G(x, y; zeta_j): the inner (S)GD direction.
  virtual void GradYG(ConstVecRef x, ConstVecRef y, const Batch& batch, VecRef out) = 0;
  // out (p) = sum_j grad_x G(x, y; zeta_j): used by first-order methods.
  virtual void GradXG(ConstVecRef x, ConstVecRef y, const Batch& batch, VecRef out) = 0;
  // out (q) = sum_j grad^2_yy G(x, y; zeta_j) v: the Hessian-vector product H v, v in R^q.
  virtual void HessianVec(ConstVecRef x, ConstVecRef y, ConstVecRef v, const Batch& batch,
                          VecRef out) = 0;
  // out (p) = sum_j grad^2_xy G(x, y; zeta_j) v = sum_j grad_x <grad_y G(x, y; zeta_j), v>:
  // the Jacobian-vector product J v, v in R^q.
  virtual void JacobianVec(ConstVecRef x, ConstVecRef y, ConstVecRef v, const Batch& batch,
                           VecRef out) = 0;

  // Optional: a term of G that is the same for every sample and diagonal in y (a regularizer),
  //   G(x, y; zeta) = G_0(x, y; zeta) + (1/2) sum_i s_i(x) y_i^2.
  // A problem that has one may declare it: HasSampleDiagonal() returns true, and
  // AddSampleDiagonal(x, lo, m, out) adds s(x)[lo + i] m[i] to out[i] for every i < m.size()
  // (m and out being the entries lo, lo + 1, ... of y-space vectors). On more than one rank the
  // engine then applies the term itself, to the slice of y each rank owns, and calls GradYG and
  // HessianVec with sample_diagonal_omitted() true: they return the sums of grad_y G_0 and
  // grad^2_yy G_0 v only, sparing every rank a pass over all of y.
  virtual bool HasSampleDiagonal() const { return false; }
  virtual void AddSampleDiagonal(ConstVecRef x, Index lo, ConstVecRef m, VecRef out) const {
    (void)x, (void)lo, (void)m, (void)out;
  }
  // Set by the engine around the oracle calls that leave the term out (above).
  void set_sample_diagonal_omitted(bool omitted) { sample_diagonal_omitted_ = omitted; }
  bool sample_diagonal_omitted() const { return sample_diagonal_omitted_; }

  // Optional: row sparsity. When y is made of blocks of BlockSize() entries (block b: entries
  // [b B, (b + 1) B)) and a batch's samples touch only some of them (sparse features: a
  // feature's row of W), a problem may declare it: BlockSize() > 0, and TouchedBlocks(split,
  // batch, &blocks) lists, sorted and distinct, the blocks outside which the batch's sums of
  // grad_y G_0, grad^2_yy G_0 v (G_0: G without its sample diagonal, above) and grad_y F are
  // zero and on which alone they depend on y and v. The problem must also declare its sample
  // diagonal. For minibatches the engine then keeps y and the Neumann vectors up to date
  // lazily (the diagonal term, applied to every block at every step, is deferred on the blocks
  // no batch touches) and calls GradYG, HessianVec (both with sample_diagonal_omitted() true)
  // and GradYF with touched_blocks_only() true: they write only the touched blocks of `out`,
  // leaving its other entries as they are, and read y and v only on those blocks. A step then
  // costs and communicates in proportion to the blocks its batch touches, not to q.
  virtual Index BlockSize() const { return 0; }
  virtual void TouchedBlocks(Split split, const Batch& batch, std::vector<Index>* blocks) {
    (void)split, (void)batch;
    blocks->clear();
  }
  // Optional, with blocks: when the sample diagonal is the same on every entry of a block,
  // writes it once per block into s (q / BlockSize() values) and returns true, sparing the
  // engine a pass of AddSampleDiagonal over all of y. The default returns false.
  virtual bool SampleDiagonalOfBlocks(ConstVecRef x, VecRef s) const {
    (void)x, (void)s;
    return false;
  }
  // Optional, with blocks: J v for a v that is zero off `blocks` (sorted, distinct), reading y
  // and v only where it needs to (stocBiO's Neumann estimate lives on the blocks its batches
  // touched); every entry of `out` is written. The default calls JacobianVec.
  virtual void JacobianVecOnBlocks(ConstVecRef x, ConstVecRef y, ConstVecRef v,
                                   const Batch& batch, const std::vector<Index>& blocks,
                                   VecRef out) {
    (void)blocks;
    JacobianVec(x, y, v, batch, out);
  }
  // Set by the engine around the oracle calls that write only the touched blocks (above).
  void set_touched_blocks_only(bool only) { touched_blocks_only_ = only; }
  bool touched_blocks_only() const { return touched_blocks_only_; }
  // Optional, with blocks: TakesBlockSink() true when GradYG and HessianVec, called with a
  // block_sink() set and with touched_blocks_only() or on the whole local split, hand the sum
  // of each block they would write (the touched ones, or every block) to the sink as they
  // compute it (BlockSink::Take, in increasing block order) instead of writing it to `out`.
  // On one rank the engine then makes its step on the block there (block_sparse.h's LazySink
  // and StepSink), while the block is in the core's registers, rather than in a pass of its
  // own over `out` afterwards. The sink is set only around such calls, null otherwise.
  virtual bool TakesBlockSink() const { return false; }
  void set_block_sink(BlockSink* sink) { block_sink_ = sink; }
  BlockSink* block_sink() const { return block_sink_; }

  // Optional, with a sample diagonal: full-batch products by columns. The data term of the
  // full-batch grad_y G_0 and grad^2_yy G_0 v is A^T R (A: the inner split's features, one row
  // per sample; R: ColumnFactorWidth() values per sample). On more than one rank, instead of
  // each rank forming A_r^T R_r over its samples (all q entries) for a reduce-scatter, each
  // rank computes its samples' rows of R (ColumnFactors, with v null for grad_y G_0), the
  // engine gathers every rank's, and each rank forms the entries of A^T R in its own slice of
  // y from A's columns (ColumnProduct, after PrepareColumns for that slice): q doubles are
  // neither written nor summed over ranks. ColumnFactorWidth() 0 (the default): none.
  virtual Index ColumnFactorWidth() const { return 0; }
  // r (this rank's inner samples, in order, ColumnFactorWidth() values each) = R of the sum
  // of grad_y G_0 (v null) or grad^2_yy G_0 v over this rank's whole inner shard.
  virtual void ColumnFactors(ConstVecRef x, ConstVecRef y, const double* v, double* r) {
    (void)x, (void)y, (void)v, (void)r;
  }
  // Makes ColumnProduct ready for the entries [lo, hi) of y (a rank's slice).
  virtual void PrepareColumns(Index lo, Index hi) { (void)lo, (void)hi; }
  // out[0, hi - lo) = the entries [lo, hi) of A^T R, within the range of PrepareColumns; r
  // holds R's rows of every inner sample, in the order of the global indices.
  virtual void ColumnProduct(const double* r, Index lo, Index hi, double* out) const {
    (void)r, (void)lo, (void)hi, (void)out;
  }
  // The slices of y (Communicator::SetSlices) over `ranks` ranks that even out the work of
  // ColumnProduct and of the engine's passes over a slice; empty: even slices.
  virtual std::vector<Index> ColumnSliceBounds(int ranks) const {
    (void)ranks;
    return {};
  }

  // Set by the engine around a run of HessianVec calls that all pass the same y, unchanged
  // (AID's solve of H v = grad_y f; the power iterations of lambda_max): while held,
  // inner_hold() is a number that no other hold has had (0 when none), and a problem may reuse
  // what it computed from y during the same hold without comparing y.
  void set_inner_held(bool held) { inner_hold_ = held ? ++holds_ : 0; }
  std::uint64_t inner_hold() const { return inner_hold_; }

  // Recommended settings for `algorithm` (one of AlgorithmNames()).
  virtual ProblemDefaults Defaults(const std::string& algorithm) const {
    (void)algorithm;
    return ProblemDefaults();
  }

  // x and y, as the solver holds them, rewritten in the order and the shape of the problem's
  // data (what `bilevel solve --output` writes): the identity unless the problem keeps its
  // variables in an order of its own, or leaves out entries that stay zero (the classifiers
  // on a sparse file: features by frequency, and only those the train split holds;
  // problems/softmax_rows.h). Checkpoints keep the solver's order.
  virtual void ToDataOrder(Vec* x, Vec* y) const { (void)x, (void)y; }

  // Key facts for the run header (shapes, constants), as (name, value) pairs.
  virtual std::vector<std::pair<std::string, std::string>> Describe() const { return {}; }

  // What makes this problem this one, as (name, value) pairs: checkpoints record it and a
  // resume with a different identity is refused. The default gives the name and the shapes;
  // problems add their parameters and the identity of their data (path, shapes, checksum).
  virtual std::vector<std::pair<std::string, std::string>> Identity() const;

  // Evaluation hooks, called at every evaluation point on every rank.
  // EvalLocalSums writes NumEvalSums() local partial sums (for instance correct predictions
  // on this rank's test shard); the engine sums them over ranks and hands the totals to
  // EvalReport, which runs on rank 0 only and adds problem-specific metrics. `hypergrad` is
  // the reduced hypergradient estimate at x.
  virtual int NumEvalSums() const { return 0; }
  virtual void EvalLocalSums(ConstVecRef x, ConstVecRef y, VecRef sums) {
    (void)x, (void)y, (void)sums;
  }
  virtual void EvalReport(ConstVecRef x, ConstVecRef y, ConstVecRef hypergrad,
                          ConstVecRef sums, MetricsRecord* record) const {
    (void)x, (void)y, (void)hypergrad, (void)sums, (void)record;
  }

 private:
  bool sample_diagonal_omitted_ = false;
  bool touched_blocks_only_ = false;
  BlockSink* block_sink_ = nullptr;
  std::uint64_t inner_hold_ = 0, holds_ = 0;
};

// Sets the block sink of `problem` (Problem::set_block_sink) for the guard's lifetime.
class BlockSinkSet {
 public:
  BlockSinkSet(Problem& problem, BlockSink* sink) : problem_(problem) {
    problem_.set_block_sink(sink);
  }
  ~BlockSinkSet() { problem_.set_block_sink(nullptr); }
  BlockSinkSet(const BlockSinkSet&) = delete;
  BlockSinkSet& operator=(const BlockSinkSet&) = delete;

 private:
  Problem& problem_;
};

// Holds the inner point of `problem` (Problem::set_inner_held) for the guard's lifetime.
class InnerHeld {
 public:
  explicit InnerHeld(Problem& problem) : problem_(problem) { problem_.set_inner_held(true); }
  ~InnerHeld() { problem_.set_inner_held(false); }
  InnerHeld(const InnerHeld&) = delete;
  InnerHeld& operator=(const InnerHeld&) = delete;

 private:
  Problem& problem_;
};

namespace problem_detail {

// The class that declares the member function named by a pointer of one of Problem's
// signatures; no match (wrong signature, missing const, overloads without a match) fails
// deduction.
template <class C>
C OwnerOf(std::string (C::*)() const);
template <class C>
C OwnerOf(Index (C::*)() const);
template <class C>
C OwnerOf(Index (C::*)(Split) const);
template <class C>
C OwnerOf(Shard (C::*)(Split) const);
template <class C>
C OwnerOf(double (C::*)(ConstVecRef, ConstVecRef, const Batch&));
template <class C>
C OwnerOf(void (C::*)(ConstVecRef, ConstVecRef, const Batch&, VecRef));
template <class C>
C OwnerOf(void (C::*)(ConstVecRef, ConstVecRef, ConstVecRef, const Batch&, VecRef));

// X(T, member, what) for every pure virtual member of Problem: its name, and its signature and
// meaning for the error message.
#define BILEVEL_PROBLEM_DETAIL_MEMBERS(X, T)                                                   \
  X(T, Name, "Name() const: a short name of the problem")                                      \
  X(T, DimOuter, "DimOuter() const: p, the dimension of x")                                    \
  X(T, DimInner, "DimInner() const: q, the dimension of y")                                    \
  X(T, NumSamples,                                                                             \
    "NumSamples(split) const: the global number of samples, n (Split::kOuter) or m "           \
    "(Split::kInner)")                                                                         \
  X(T, LocalShard, "LocalShard(split) const: the global indices [begin, end) this rank holds") \
  X(T, ValueF, "ValueF(x, y, batch): the outer value sum_i F(x, y; xi_i)")                     \
  X(T, ValueG, "ValueG(x, y, batch): the inner value sum_j G(x, y; zeta_j)")                   \
  X(T, GradXF, "GradXF(x, y, batch, out): the outer gradient sum_i grad_x F(x, y; xi_i)")      \
  X(T, GradYF, "GradYF(x, y, batch, out): the outer gradient sum_i grad_y F(x, y; xi_i)")      \
  X(T, GradYG, "GradYG(x, y, batch, out): the inner gradient sum_j grad_y G(x, y; zeta_j)")    \
  X(T, GradXG, "GradXG(x, y, batch, out): the inner gradient sum_j grad_x G(x, y; zeta_j)")    \
  X(T, HessianVec,                                                                             \
    "HessianVec(x, y, v, batch, out): the Hessian-vector product "                             \
    "sum_j grad^2_yy G(x, y; zeta_j) v")                                                       \
  X(T, JacobianVec,                                                                            \
    "JacobianVec(x, y, v, batch, out): the Jacobian-vector product "                           \
    "sum_j grad^2_xy G(x, y; zeta_j) v")

// Overrides<member><T>: true when T, or a class between T and Problem, declares `member` with
// Problem's signature (name lookup in T then finds it before Problem's).
#define BILEVEL_PROBLEM_DETAIL_OVERRIDES(T, member, what)                 \
  template <class T, class = void>                                        \
  struct Overrides##member : std::false_type {};                          \
  template <class T>                                                      \
  struct Overrides##member<T, std::void_t<decltype(OwnerOf(&T::member))>> \
      : std::bool_constant<!std::is_same_v<decltype(OwnerOf(&T::member)), Problem>> {};
BILEVEL_PROBLEM_DETAIL_MEMBERS(BILEVEL_PROBLEM_DETAIL_OVERRIDES, T)
#undef BILEVEL_PROBLEM_DETAIL_OVERRIDES

// A concrete T overrides every pure virtual member, wherever it is declared: the check only
// reports members of an abstract T (an override declared private counts as missing there).
template <class T, bool kOverrides>
inline constexpr bool kOk = kOverrides || !std::is_abstract_v<T>;

// One static_assert per member, naming the class as spelled in the source (#T).
#define BILEVEL_PROBLEM_DETAIL_REQUIRE(T, member, what)                                          \
  static_assert(                                                                                 \
      ::bilevel::problem_detail::kOk<T, ::bilevel::problem_detail::Overrides##member<T>::value>, \
      "bilevel: " #T " must override " what);

}  // namespace problem_detail

// Compile-time check that T is a complete problem: true, or one static_assert per member of
// Problem that T lacks, each naming the member, its arguments and its meaning, for instance
//   "bilevel: ProblemClass must override HessianVec(x, y, v, batch, out): the Hessian-vector
//    product sum_j grad^2_yy G(x, y; zeta_j) v"
// (the compiler shows T in "In instantiation of CheckProblem() [with T = ...]"). A member
// counts as overridden when T or one of its bases other than Problem declares it, public, with
// Problem's exact signature. Use it in your own templates; BILEVEL_PROBLEM(T) names T itself.
template <class T>
constexpr bool CheckProblem() {
  using ProblemClass = T;
  static_assert(std::is_base_of_v<Problem, ProblemClass>,
                "bilevel: ProblemClass must derive publicly from bilevel::Problem");
  BILEVEL_PROBLEM_DETAIL_MEMBERS(BILEVEL_PROBLEM_DETAIL_REQUIRE, ProblemClass)
  return true;
}

}  // namespace bilevel

// Checks at compile time that `Type`, a class derived from bilevel::Problem, overrides every
// shape member and every oracle: otherwise one error per missing member, for instance
//   "bilevel: RidgeProblem must override HessianVec(x, y, v, batch, out): the Hessian-vector
//    product sum_j grad^2_yy G(x, y; zeta_j) v".
// Put it at namespace scope after the class definition (the class must be complete):
//
//   class RidgeProblem : public bilevel::Problem { ... };
//   BILEVEL_PROBLEM(RidgeProblem);
#define BILEVEL_PROBLEM(Type)                                          \
  BILEVEL_PROBLEM_DETAIL_MEMBERS(BILEVEL_PROBLEM_DETAIL_REQUIRE, Type) \
  static_assert(::std::is_base_of_v<::bilevel::Problem, Type>,         \
                "bilevel: " #Type " must derive publicly from bilevel::Problem")

#endif  // BILEVEL_PROBLEM_H_
