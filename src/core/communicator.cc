#include "bilevel/communicator.h"

#include <cstdlib>
#include <stdexcept>
#include <string>

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

Slice Communicator::SliceOf(Index n, int q) const {
  if (n == sliced_n_) return {slice_bounds_[q], slice_bounds_[q + 1]};
  // Bounds rounded down to multiples of 8 doubles (a cache line): a rank's slice shares no
  // line with its neighbours', so that ranks writing their slices never contend for one.
  auto bound = [&](int r) { return r >= size() ? n : (static_cast<Index>(r) * n / size()) & ~Index{7}; };
  return {bound(q), bound(q + 1)};
}

void Communicator::SetSlices(Index n, std::vector<Index> bounds) {
  if (bounds.empty()) {
    sliced_n_ = -1;
    slice_bounds_.clear();
    return;
  }
  bool valid = static_cast<int>(bounds.size()) == size() + 1 && bounds.front() == 0 &&
               bounds.back() == n;
  for (int q = 1; valid && q < size(); ++q)
    valid = bounds[q - 1] <= bounds[q] && bounds[q] <= n && bounds[q] % 8 == 0;
  if (!valid)
    throw std::invalid_argument("Communicator::SetSlices: bounds are not slices of " +
                                std::to_string(n) + " doubles over " + std::to_string(size()) +
                                " ranks");
  sliced_n_ = n;
  slice_bounds_ = std::move(bounds);
}

void Communicator::ReduceScatterSum(double* data, Index n) {
  ++stats_.reduce_scatter_calls;
  stats_.reduce_scatter_bytes += n * static_cast<Index>(sizeof(double));
  DoReduceScatterSum(data, n);
}

void Communicator::ReduceScatterSum(double* data, Index n, const SumPieces& use) {
  ++stats_.reduce_scatter_calls;
  stats_.reduce_scatter_bytes += n * static_cast<Index>(sizeof(double));
  DoReduceScatterSum(data, n, use);
}

void Communicator::AllgatherSlices(double* data, Index n) {
  ++stats_.allgather_calls;
  stats_.allgather_bytes += n * static_cast<Index>(sizeof(double));
  DoAllgatherSlices(data, n);
}

void Communicator::AllgatherPieces(const double* data, Index n, std::vector<double>* all,
                                   std::vector<Index>* counts) {
  DoAllgatherPieces(data, n, all, counts);
  ++stats_.allgather_calls;
  stats_.allgather_bytes += static_cast<Index>(all->size() * sizeof(double));
}

void SerialCommunicator::Abort(int code) { std::exit(code); }

}  // namespace bilevel
