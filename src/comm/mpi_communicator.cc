#include "bilevel/mpi_communicator.h"

#include <mpi.h>

#include <climits>
#include <cstdlib>

namespace bilevel::comm {

namespace {

void Check(int rc, const char* call) {
  if (rc == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  if (MPI_Error_string(rc, text, &length) != MPI_SUCCESS) length = 0;
  throw MpiError(std::string(call) + " failed: " + std::string(text, length));
}

// MPI counts are int: large buffers go in chunks.
constexpr Index kChunk = INT_MAX / 2;

}  // namespace

#define BILEVEL_MPI_CHECK(call) Check((call), #call)

struct MpiCommunicator::Handle {
  MPI_Comm comm = MPI_COMM_NULL;
  bool owned = false;
};

void MpiInit(int* argc, char*** argv) {
  int initialized = 0;
  BILEVEL_MPI_CHECK(MPI_Initialized(&initialized));
  if (!initialized) BILEVEL_MPI_CHECK(MPI_Init(argc, argv));
}

void MpiFinalize() {
  int finalized = 0;
  BILEVEL_MPI_CHECK(MPI_Finalized(&finalized));
  if (!finalized) BILEVEL_MPI_CHECK(MPI_Finalize());
}

MpiCommunicator::MpiCommunicator(std::unique_ptr<Handle> handle) : handle_(std::move(handle)) {
  BILEVEL_MPI_CHECK(MPI_Comm_set_errhandler(handle_->comm, MPI_ERRORS_RETURN));
  BILEVEL_MPI_CHECK(MPI_Comm_rank(handle_->comm, &rank_));
  BILEVEL_MPI_CHECK(MPI_Comm_size(handle_->comm, &size_));
}

MpiCommunicator::~MpiCommunicator() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (handle_->owned && !finalized) MPI_Comm_free(&handle_->comm);
}

std::unique_ptr<MpiCommunicator> MpiCommunicator::World() {
  auto handle = std::make_unique<Handle>();
  handle->comm = MPI_COMM_WORLD;
  return std::unique_ptr<MpiCommunicator>(new MpiCommunicator(std::move(handle)));
}

void MpiCommunicator::Abort(int code) {
  MPI_Abort(handle_->comm, code);
  std::_Exit(code);  // MPI_Abort does not return; this is for the type system
}

std::unique_ptr<MpiCommunicator> MpiCommunicator::SplitFirst(int n) {
  auto handle = std::make_unique<Handle>();
  BILEVEL_MPI_CHECK(
      MPI_Comm_split(handle_->comm, rank_ < n ? 0 : MPI_UNDEFINED, rank_, &handle->comm));
  if (handle->comm == MPI_COMM_NULL) return nullptr;
  handle->owned = true;
  return std::unique_ptr<MpiCommunicator>(new MpiCommunicator(std::move(handle)));
}

void MpiCommunicator::DoAllreduceSum(double* data, Index n) {
  for (Index at = 0; at < n; at += kChunk) {
    const int count = static_cast<int>(std::min(kChunk, n - at));
    BILEVEL_MPI_CHECK(
        MPI_Allreduce(MPI_IN_PLACE, data + at, count, MPI_DOUBLE, MPI_SUM, handle_->comm));
  }
}

void MpiCommunicator::DoReduceSum(double* data, Index n, int root) {
  for (Index at = 0; at < n; at += kChunk) {
    const int count = static_cast<int>(std::min(kChunk, n - at));
    if (rank_ == root) {
      BILEVEL_MPI_CHECK(
          MPI_Reduce(MPI_IN_PLACE, data + at, count, MPI_DOUBLE, MPI_SUM, root, handle_->comm));
    } else {
      BILEVEL_MPI_CHECK(
          MPI_Reduce(data + at, nullptr, count, MPI_DOUBLE, MPI_SUM, root, handle_->comm));
    }
  }
}

void MpiCommunicator::DoBroadcast(double* data, Index n, int root) {
  for (Index at = 0; at < n; at += kChunk) {
    const int count = static_cast<int>(std::min(kChunk, n - at));
    BILEVEL_MPI_CHECK(MPI_Bcast(data + at, count, MPI_DOUBLE, root, handle_->comm));
  }
}

}  // namespace bilevel::comm
