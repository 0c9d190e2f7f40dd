// All communication of the solver goes through this small interface. Algorithms and the
// coordinator call it; only src/comm/ knows MPI. A serial implementation makes every
// algorithm testable in one process.
#ifndef BILEVEL_COMMUNICATOR_H_
#define BILEVEL_COMMUNICATOR_H_

#include <cstdint>
#include <type_traits>
#include <vector>

#include "bilevel/types.h"

namespace bilevel {

// Collective calls and payload bytes issued by this rank (the same on every rank).
struct CommStats {
  std::int64_t allreduce_calls = 0;
  std::int64_t allreduce_bytes = 0;
  std::int64_t reduce_calls = 0;
  std::int64_t reduce_bytes = 0;
  std::int64_t broadcast_calls = 0;
  std::int64_t broadcast_bytes = 0;
  std::int64_t reduce_scatter_calls = 0;
  std::int64_t reduce_scatter_bytes = 0;
  std::int64_t allgather_calls = 0;
  std::int64_t allgather_bytes = 0;
};

// A rank's slice [lo, hi) of a vector in ReduceScatterSum and AllgatherSlices.
struct Slice {
  Index lo = 0;
  Index hi = 0;
  Index size() const { return hi - lo; }
};

class Communicator {
 public:
  virtual ~Communicator() = default;

  virtual int rank() const = 0;
  virtual int size() const = 0;

  // In place: every rank ends with the elementwise sum over ranks.
  void AllreduceSum(double* data, Index n);
  void AllreduceSum(VecRef v) { AllreduceSum(v.data(), v.size()); }
  // In place: `root` ends with the sum over ranks; other ranks' buffers are unspecified.
  void ReduceSum(double* data, Index n, int root);
  void ReduceSum(VecRef v, int root) { ReduceSum(v.data(), v.size(), root); }
  // Every rank ends with root's buffer.
  void Broadcast(double* data, Index n, int root);
  void Broadcast(VecRef v, int root) { Broadcast(v.data(), v.size(), root); }

  // An allreduce in two halves, for callers that update only their own slice of a long vector
  // in between (the dense d x C vectors of the data problems): the slices SliceOf(n, 0..P-1)
  // partition [0, n) in rank order, each a multiple of 8 doubles long except the last.
  // ReduceScatterSum: in place, this rank's slice ends with the elementwise sum over ranks; the
  // rest of the buffer is unspecified. AllgatherSlices: in place, every rank ends with rank q's
  // slice of rank q's buffer, for every q. Together they move what one allreduce moves.
  Slice SliceOf(Index n, int q) const;
  Slice MySlice(Index n) const { return SliceOf(n, rank()); }
  // Uneven slices for the vectors of n doubles, where the work per entry of a rank's slice is
  // uneven (ColumnSums): bounds[q] is the start of rank q's slice, bounds[0] = 0,
  // bounds[P] = n, nondecreasing, every other bound a multiple of 8; the same on every rank.
  // One length at a time; empty `bounds`: even slices again. Throws std::invalid_argument.
  void SetSlices(Index n, std::vector<Index> bounds);
  void ReduceScatterSum(double* data, Index n);
  void ReduceScatterSum(VecRef v) { ReduceScatterSum(v.data(), v.size()); }
  // ReduceScatterSum that hands this rank's slice of the sums to `use` instead of writing it
  // to `data`: use(lo, sums, m) receives the sums of entries [lo, lo + m), for consecutive
  // pieces that cover the slice in order (kSumPiece doubles each where the sums are made a
  // block at a time, each block while it is in the cache; else the whole slice), so that a
  // caller that only reads the sums (a step, a scaled copy) saves their write and read.
  // `data`'s slice is then unspecified; `use` may write the entries of `data` of the piece it
  // is given, and must not call the communicator (`sums` may lie in its scratch). Counted as
  // a reduce-scatter.
  static constexpr Index kSumPiece = 2048;
  // A reference to the caller's callable, valid for the call it is passed to: no copy, no
  // allocation (a std::function of a lambda that captures more than two references allocates).
  class SumPieces {
   public:
    template <class F, class = std::enable_if_t<!std::is_same_v<std::decay_t<F>, SumPieces>>>
    SumPieces(F&& f)  // NOLINT: converts from any callable, like std::function
        : callable_(const_cast<void*>(static_cast<const void*>(&f))),
          call_([](void* c, Index lo, const double* sums, Index m) {
            (*static_cast<std::remove_reference_t<F>*>(c))(lo, sums, m);
          }) {}
    void operator()(Index lo, const double* sums, Index m) const { call_(callable_, lo, sums, m); }

   private:
    void* callable_;
    void (*call_)(void*, Index, const double*, Index);
  };
  void ReduceScatterSum(double* data, Index n, const SumPieces& use);
  void AllgatherSlices(double* data, Index n);
  void AllgatherSlices(VecRef v) { AllgatherSlices(v.data(), v.size()); }
  // Pieces of different lengths: `all` receives every rank's n doubles from `data`, in rank
  // order, and counts[q] is rank q's n (row-sparse sums: each rank's touched blocks). Counted
  // as an allgather of the doubles received.
  void AllgatherPieces(const double* data, Index n, std::vector<double>* all,
                       std::vector<Index>* counts);
  // Storage for the buffer of the NEXT collective call of n doubles (AllreduceSum,
  // ReduceScatterSum or AllgatherSlices) that saves that call its copies in and out of shared
  // memory, or nullptr where there is no such saving (the caller uses its own storage). Write
  // the vector there (for AllgatherSlices, this rank's slice), make the call on it, and read
  // the result before the second collective call after it: the storage is then reused.
  // Collective, like the call it prepares.
  double* NextBuffer(Index n) { return DoNextBuffer(n); }
  // Storage for the vector of an AllgatherSlices call of n doubles that all ranks of a node
  // share (one copy, not one per rank), or nullptr where there is none. Write this rank's
  // slice there and make the call on it: the call then copies nothing, and every rank reads
  // the whole vector where it lies, until its next AllgatherSlices call on such storage. The
  // storage alternates between two vectors: the one returned by the call before stays intact,
  // so a rank may compute its new slice from the previous shared vector. Collective.
  double* NextSharedVector(Index n) { return DoNextSharedVector(n); }

  // Ends every rank of the job with `code`; does not return.
  [[noreturn]] virtual void Abort(int code) = 0;

  const CommStats& stats() const { return stats_; }
  void ResetStats() { stats_ = CommStats(); }

 protected:
  virtual void DoAllreduceSum(double* data, Index n) = 0;
  virtual void DoReduceSum(double* data, Index n, int root) = 0;
  virtual void DoBroadcast(double* data, Index n, int root) = 0;
  virtual void DoReduceScatterSum(double* data, Index n) = 0;
  // The default: DoReduceScatterSum, then the whole slice as one piece.
  virtual void DoReduceScatterSum(double* data, Index n, const SumPieces& use) {
    DoReduceScatterSum(data, n);
    const Slice s = MySlice(n);
    use(s.lo, data + s.lo, s.size());
  }
  virtual void DoAllgatherSlices(double* data, Index n) = 0;
  virtual void DoAllgatherPieces(const double* data, Index n, std::vector<double>* all,
                                 std::vector<Index>* counts) = 0;
  virtual double* DoNextBuffer(Index n) {
    (void)n;
    return nullptr;
  }
  virtual double* DoNextSharedVector(Index n) {
    (void)n;
    return nullptr;
  }

 private:
  CommStats stats_;
  Index sliced_n_ = -1;             // SetSlices
  std::vector<Index> slice_bounds_;
};

// One process: every collective is the identity.
class SerialCommunicator : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  [[noreturn]] void Abort(int code) override;

 protected:
  void DoAllreduceSum(double*, Index) override {}
  void DoReduceSum(double*, Index, int) override {}
  void DoBroadcast(double*, Index, int) override {}
  using Communicator::DoReduceScatterSum;
  void DoReduceScatterSum(double*, Index) override {}
  void DoAllgatherSlices(double*, Index) override {}
  void DoAllgatherPieces(const double* data, Index n, std::vector<double>* all,
                         std::vector<Index>* counts) override {
    all->assign(data, data + n);
    counts->assign(1, n);
  }
};

}  // namespace bilevel

#endif  // BILEVEL_COMMUNICATOR_H_
