// All communication of the solver goes through this small interface. Algorithms and the
// coordinator call it; only src/comm/ knows MPI. A serial implementation makes every
// algorithm testable in one process.
#ifndef BILEVEL_COMMUNICATOR_H_
#define BILEVEL_COMMUNICATOR_H_

#include <cstdint>

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

  // Ends every rank of the job with `code`; does not return.
  [[noreturn]] virtual void Abort(int code) = 0;

  const CommStats& stats() const { return stats_; }
  void ResetStats() { stats_ = CommStats(); }

 protected:
  virtual void DoAllreduceSum(double* data, Index n) = 0;
  virtual void DoReduceSum(double* data, Index n, int root) = 0;
  virtual void DoBroadcast(double* data, Index n, int root) = 0;

 private:
  CommStats stats_;
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
};

}  // namespace bilevel

#endif  // BILEVEL_COMMUNICATOR_H_
