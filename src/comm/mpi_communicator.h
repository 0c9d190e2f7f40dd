// The MPI implementation of bilevel::Communicator, and MPI's lifetime. This folder is the only
// place that includes <mpi.h>; this header keeps it out of its users.
#ifndef BILEVEL_SRC_COMM_MPI_COMMUNICATOR_H_
#define BILEVEL_SRC_COMM_MPI_COMMUNICATOR_H_

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

// MPI's lifetime, for main() only. Finalize is never called from a destructor.
void MpiInit(int* argc, char*** argv);
void MpiFinalize();

class MpiCommunicator : public Communicator {
 public:
  // MPI_COMM_WORLD (errors returned, not fatal, so every failure becomes an MpiError).
  static std::unique_ptr<MpiCommunicator> World();
  ~MpiCommunicator() override;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  [[noreturn]] void Abort(int code) override;

  // Collective over this communicator: the ranks [0, n) form a new communicator, returned to
  // them; the others get nullptr.
  std::unique_ptr<MpiCommunicator> SplitFirst(int n);

 protected:
  void DoAllreduceSum(double* data, Index n) override;
  void DoReduceSum(double* data, Index n, int root) override;
  void DoBroadcast(double* data, Index n, int root) override;

 private:
  struct Handle;
  explicit MpiCommunicator(std::unique_ptr<Handle> handle);
  std::unique_ptr<Handle> handle_;
  int rank_ = 0;
  int size_ = 1;
};

}  // namespace bilevel::comm

#endif  // BILEVEL_SRC_COMM_MPI_COMMUNICATOR_H_
