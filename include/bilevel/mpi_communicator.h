// The MPI implementation of bilevel::Communicator, and MPI's lifetime.
//
// Part of the installed API (target bilevel::comm, included in bilevel::bilevel). The
// implementation, src/comm/mpi_communicator.cc, is the only file of the project that includes
// <mpi.h>; this header keeps it out of its users, so a program that only runs solves needs no
// MPI headers of its own.
//
// A program's main() owns MPI's lifetime:
//
//   bilevel::comm::MpiInit(&argc, &argv);
//   {
//     auto world = bilevel::comm::MpiCommunicator::World();
//     ... build the problem for world->rank() of world->size(), bilevel::Solve(..., *world, ...)
//   }  // every communicator destroyed before MPI ends
//   bilevel::comm::MpiFinalize();
#ifndef BILEVEL_MPI_COMMUNICATOR_H_
#define BILEVEL_MPI_COMMUNICATOR_H_

#include <memory>
#include <stdexcept>
#include <string>

#include "bilevel/communicator.h"

namespace bilevel::comm {

// A failed MPI call: the message names the call and MPI's error string.
class MpiError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// MPI's lifetime, for main() only. MpiInit does nothing if MPI is already initialized, and
// MpiFinalize nothing if it is already finalized. Finalize is never called from a destructor.
// Both throw MpiError on failure.
void MpiInit(int* argc, char*** argv);
void MpiFinalize();

// A Communicator over an MPI communicator. Errors are returned by MPI, not fatal, and thrown
// as MpiError naming the call.
//
// When every rank is on one node, allreduces, reduce-scatters and allgathers of
// kSharedMinDoubles and more go through an MPI-3 shared-memory window instead of MPI's own
// collectives: each rank sums its slice of the vector over the ranks in rank order, so the
// result is bitwise the same on every rank and from run to run. BILEVEL_SHM_ALLREDUCE=0 in
// the environment turns this off. The window is made by the
// first such collective, a larger one (at least twice as large) by the first larger collective,
// the old one staying mapped, and all are freed by the destructor, which is then collective:
// every rank of the communicator destroys it (as main() does, before MpiFinalize).
class MpiCommunicator : public Communicator {
 public:
  // The smallest allreduce that goes through shared memory. Measured with Open MPI 4.1 on 2
  // to 4 ranks, the shared-memory sum is as fast as MPI_Allreduce at 256 doubles and 2-3 times
  // faster at 1024; below, MPI_Allreduce's single message wins.
  static constexpr Index kSharedMinDoubles = 1024;

  // MPI_COMM_WORLD.
  static std::unique_ptr<MpiCommunicator> World();
  ~MpiCommunicator() override;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  // MPI_Abort on this communicator: ends every rank of the job with `code`.
  [[noreturn]] void Abort(int code) override;

  // Collective over this communicator: the ranks [0, n) form a new communicator, returned to
  // them; the others get nullptr.
  std::unique_ptr<MpiCommunicator> SplitFirst(int n);

  // Whether large allreduces go through shared memory (above); false until the first one.
  bool shared_memory_allreduce() const;

 protected:
  void DoAllreduceSum(double* data, Index n) override;
  void DoReduceSum(double* data, Index n, int root) override;
  void DoBroadcast(double* data, Index n, int root) override;
  void DoReduceScatterSum(double* data, Index n) override;
  void DoReduceScatterSum(double* data, Index n, const SumPieces& use) override;
  void DoAllgatherSlices(double* data, Index n) override;
  void DoAllgatherPieces(const double* data, Index n, std::vector<double>* all,
                         std::vector<Index>* counts) override;
  double* DoNextBuffer(Index n) override;
  double* DoNextSharedVector(Index n) override;

 private:
  struct Handle;
  explicit MpiCommunicator(std::unique_ptr<Handle> handle);
  // Whether a collective of n doubles goes through the shared-memory window (decided, with
  // every rank, at the first one of kSharedMinDoubles or more).
  bool UseShared(Index n);
  // The collectives through the shared-memory window (mpi_communicator.cc): `gather` false is
  // a reduce-scatter, true an allreduce; `use` (a reduce-scatter only): the slice's sums go to
  // it, a block at a time, instead of into `data`.
  void SharedSum(double* data, Index n, bool gather, const SumPieces* use = nullptr);
  void SharedAllgather(double* data, Index n);
  std::unique_ptr<Handle> handle_;
  int rank_ = 0;
  int size_ = 1;
};

}  // namespace bilevel::comm

#endif  // BILEVEL_MPI_COMMUNICATOR_H_
