#include "bilevel/communicator.h"

#include <cstdlib>

namespace bilevel {

void Communicator::AllreduceSum(double* data, Index n) {
  ++stats_.allreduce_calls;
  stats_.allreduce_bytes += n * static_cast<Index>(sizeof(double));
  DoAllreduceSum(data, n);
}

void Communicator::ReduceSum(double* data, Index n, int root) {
  ++stats_.reduce_calls;
  stats_.reduce_bytes += n * static_cast<Index>(sizeof(double));
  DoReduceSum(data, n, root);
}

void Communicator::Broadcast(double* data, Index n, int root) {
  ++stats_.broadcast_calls;
  stats_.broadcast_bytes += n * static_cast<Index>(sizeof(double));
  DoBroadcast(data, n, root);
}

void SerialCommunicator::Abort(int code) { std::exit(code); }

}  // namespace bilevel
