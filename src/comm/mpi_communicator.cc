#include "bilevel/mpi_communicator.h"

#include <mpi.h>

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

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

// out = a + b and acc += a, elementwise; __restrict lets the compiler vectorize them.
void Add(const double* __restrict a, const double* __restrict b, double* __restrict out, Index m) {
  for (Index i = 0; i < m; ++i) out[i] = a[i] + b[i];
}
void AddTo(double* __restrict acc, const double* __restrict a, Index m) {
  for (Index i = 0; i < m; ++i) acc[i] += a[i];
}

// The slice sum works on blocks of this many doubles (16 KiB), which stay in the L1 cache
// while the terms of ranks 2, 3, ... are added to them.
constexpr Index kSumBlock = Communicator::kSumPiece;  // Handle::sum_block's size

}  // namespace

#define BILEVEL_MPI_CHECK(call) Check((call), #call)

struct MpiCommunicator::Handle {
  MPI_Comm comm = MPI_COMM_NULL;
  bool owned = false;

  // The shared-memory allreduce, decided by the first allreduce of at least kSharedMinDoubles
  // (every rank makes it, so the decision is collective).
  enum class Shared { kUndecided, kOn, kOff };
  Shared shared = Shared::kUndecided;
  // One segment of 2 `region` doubles per rank, all mapped into every rank (`segments`, by
  // rank). Passive-target epoch open (MPI_Win_lock_all) for the window's whole life, as the
  // MPI-3 shared-memory model asks for load/store access with MPI_Win_sync.
  MPI_Win win = MPI_WIN_NULL;
  std::vector<double*> segments;
  std::vector<const double*> terms;  // scratch of SharedSum, sized with segments
  Index capacity = 0;  // doubles per segment
  // Successive collectives use the two halves (regions) of the segments in turn. A rank that
  // writes region R in call k + 2 has passed a barrier of call k + 1, which every rank reaches
  // only once done reading region R in call k: no call needs a trailing barrier.
  Index region = 0;  // doubles per region: capacity / 2
  int parity = 0;    // the region of the next call
  double sum_block[kSumBlock];  // scratch of SharedSum: one block of a slice
  std::vector<int> counts;       // scratch of DoReduceScatterSum without the window
  std::vector<double> slice_sum;

  // The shared vectors of AllgatherSlices (NextSharedVector): two of `shared_n` doubles in
  // one window, all of it allocated by rank 0 and mapped into every rank; `shared_next` is the
  // one the next call returns, `shared_current` the one returned last.
  MPI_Win shared_win = MPI_WIN_NULL;
  double* shared_base = nullptr;
  Index shared_n = 0;
  int shared_next = 0;
  double* shared_current = nullptr;
  // Makes the shared vectors hold n doubles (a new window when smaller). Collective.
  void GrowShared(Index n);
  void SyncShared();

  // Whether every rank of `comm` is on this node and BILEVEL_SHM_ALLREDUCE is not 0 on any
  // rank; the same answer on every rank. Collective.
  bool SharedMemoryUsable(int size);
  // Windows outgrown, kept until the destructor (Reserve).
  std::vector<MPI_Win> retired;

  // Makes every segment hold at least n doubles, in a new window: the old one stays mapped
  // (retired) with its contents. Collective.
  void Reserve(Index n, int size);
  // Makes the regions hold n doubles: a new window when they are smaller (Reserve).
  // Collective.
  void Grow(Index n, int size);
  // The offset of the region for the next collective of n doubles (Grow, then the other
  // region than the last call's). Collective.
  Index NextRegion(Index n, int size);
  // Every rank's stores to the window so far are seen by every rank's loads from now on, and
  // every rank's loads so far are done. Collective.
  void Sync();
};

bool MpiCommunicator::Handle::SharedMemoryUsable(int size) {
  const char* env = std::getenv("BILEVEL_SHM_ALLREDUCE");
  int usable = env == nullptr || std::strcmp(env, "0") != 0;
  MPI_Comm node = MPI_COMM_NULL;
  BILEVEL_MPI_CHECK(MPI_Comm_split_type(comm, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node));
  int node_size = 0;
  BILEVEL_MPI_CHECK(MPI_Comm_size(node, &node_size));
  BILEVEL_MPI_CHECK(MPI_Comm_free(&node));
  if (node_size != size) usable = 0;
  BILEVEL_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &usable, 1, MPI_INT, MPI_MIN, comm));
  return usable != 0;
}

void MpiCommunicator::Handle::Reserve(Index n, int size) {
  if (n <= capacity) return;
  if (win != MPI_WIN_NULL) {
    // Kept, not freed: a result a caller has not read yet may lie in it (NextBuffer).
    retired.push_back(win);
    win = MPI_WIN_NULL;
    segments.clear();
    capacity = 0;
  }
  const Index doubles = (n + 7) & ~Index{7};
  MPI_Info info = MPI_INFO_NULL;
  BILEVEL_MPI_CHECK(MPI_Info_create(&info));
  // Page-aligned segments, each first touched (and so placed) by its owner.
  BILEVEL_MPI_CHECK(MPI_Info_set(info, "alloc_shared_noncontig", "true"));
  void* base = nullptr;
  const int rc = MPI_Win_allocate_shared(static_cast<MPI_Aint>(doubles * sizeof(double)),
                                         sizeof(double), info, comm, &base, &win);
  BILEVEL_MPI_CHECK(MPI_Info_free(&info));
  BILEVEL_MPI_CHECK(rc);
  BILEVEL_MPI_CHECK(MPI_Win_set_errhandler(win, MPI_ERRORS_RETURN));
  segments.assign(size, nullptr);
  for (int q = 0; q < size; ++q) {
    MPI_Aint bytes = 0;
    int unit = 0;
    BILEVEL_MPI_CHECK(MPI_Win_shared_query(win, q, &bytes, &unit, &segments[q]));
  }
  BILEVEL_MPI_CHECK(MPI_Win_lock_all(MPI_MODE_NOCHECK, win));
  capacity = doubles;
}

void MpiCommunicator::Handle::Grow(Index n, int size) {
  if (n <= region) return;
  // At least doubling, so that few windows are ever retired.
  Reserve(2 * std::max((n + 7) & ~Index{7}, 2 * region), size);
  region = capacity / 2;
}

Index MpiCommunicator::Handle::NextRegion(Index n, int size) {
  Grow(n, size);
  parity ^= 1;
  return parity * region;
}

void MpiCommunicator::Handle::GrowShared(Index n) {
  if (n <= shared_n) return;
  if (shared_win != MPI_WIN_NULL) {
    // Kept, not freed: a vector a caller has not read yet may lie in it.
    retired.push_back(shared_win);
    shared_win = MPI_WIN_NULL;
  }
  int rank = 0;
  BILEVEL_MPI_CHECK(MPI_Comm_rank(comm, &rank));
  const Index doubles = (n + 7) & ~Index{7};
  const MPI_Aint bytes = rank == 0 ? static_cast<MPI_Aint>(2 * doubles * sizeof(double)) : 0;
  void* base = nullptr;
  BILEVEL_MPI_CHECK(
      MPI_Win_allocate_shared(bytes, sizeof(double), MPI_INFO_NULL, comm, &base, &shared_win));
  BILEVEL_MPI_CHECK(MPI_Win_set_errhandler(shared_win, MPI_ERRORS_RETURN));
  MPI_Aint size = 0;
  int unit = 0;
  BILEVEL_MPI_CHECK(MPI_Win_shared_query(shared_win, 0, &size, &unit, &shared_base));
  BILEVEL_MPI_CHECK(MPI_Win_lock_all(MPI_MODE_NOCHECK, shared_win));
  shared_n = doubles;
  shared_next = 0;
}

void MpiCommunicator::Handle::SyncShared() {
  BILEVEL_MPI_CHECK(MPI_Win_sync(shared_win));
  BILEVEL_MPI_CHECK(MPI_Barrier(comm));
  BILEVEL_MPI_CHECK(MPI_Win_sync(shared_win));
}

void MpiCommunicator::Handle::Sync() {
  BILEVEL_MPI_CHECK(MPI_Win_sync(win));
  BILEVEL_MPI_CHECK(MPI_Barrier(comm));
  BILEVEL_MPI_CHECK(MPI_Win_sync(win));
}

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
  if (finalized) return;
  // Collective, like the allreduce that made the window; errors cannot be thrown from here.
  if (handle_->win != MPI_WIN_NULL) handle_->retired.push_back(handle_->win);
  if (handle_->shared_win != MPI_WIN_NULL) handle_->retired.push_back(handle_->shared_win);
  for (MPI_Win& w : handle_->retired) {
    MPI_Win_unlock_all(w);
    MPI_Win_free(&w);
  }
  if (handle_->owned) MPI_Comm_free(&handle_->comm);
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

bool MpiCommunicator::shared_memory_allreduce() const {
  return handle_->shared == Handle::Shared::kOn;
}

bool MpiCommunicator::UseShared(Index n) {
  if (size_ == 1 || n < kSharedMinDoubles) return false;
  if (handle_->shared == Handle::Shared::kUndecided) {
    handle_->shared =
        handle_->SharedMemoryUsable(size_) ? Handle::Shared::kOn : Handle::Shared::kOff;
  }
  return handle_->shared == Handle::Shared::kOn;
}

void MpiCommunicator::DoAllreduceSum(double* data, Index n) {
  if (UseShared(n)) return SharedSum(data, n, /*gather=*/true);
  for (Index at = 0; at < n; at += kChunk) {
    const int count = static_cast<int>(std::min(kChunk, n - at));
    BILEVEL_MPI_CHECK(
        MPI_Allreduce(MPI_IN_PLACE, data + at, count, MPI_DOUBLE, MPI_SUM, handle_->comm));
  }
}

void MpiCommunicator::DoReduceScatterSum(double* data, Index n) {
  if (size_ == 1) return;
  if (UseShared(n)) return SharedSum(data, n, /*gather=*/false);
  if (n > kChunk) return DoAllreduceSum(data, n);  // MPI's counts are int
  std::vector<int>& counts = handle_->counts;
  std::vector<double>& sum = handle_->slice_sum;
  counts.resize(size_);
  for (int q = 0; q < size_; ++q) counts[q] = static_cast<int>(SliceOf(n, q).size());
  const Slice mine = MySlice(n);
  sum.resize(mine.size());
  BILEVEL_MPI_CHECK(MPI_Reduce_scatter(data, sum.data(), counts.data(), MPI_DOUBLE, MPI_SUM,
                                       handle_->comm));
  std::copy(sum.begin(), sum.end(), data + mine.lo);
}

void MpiCommunicator::DoReduceScatterSum(double* data, Index n, const SumPieces& use) {
  if (size_ > 1 && UseShared(n)) return SharedSum(data, n, /*gather=*/false, &use);
  Communicator::DoReduceScatterSum(data, n, use);
}

void MpiCommunicator::DoAllgatherSlices(double* data, Index n) {
  if (size_ == 1) return;
  if (data != nullptr && data == handle_->shared_current) {
    // Every rank wrote its slice into the one shared vector: nothing to copy. After this
    // barrier every rank has also finished reading the vector before the previous one (it
    // reads a vector only until its next call), which the next NextSharedVector returns.
    handle_->shared_current = nullptr;
    return handle_->SyncShared();
  }
  if (UseShared(n)) return SharedAllgather(data, n);
  for (int q = 0; q < size_; ++q) {
    const Slice s = SliceOf(n, q);
    for (Index at = s.lo; at < s.hi; at += kChunk) {
      const int count = static_cast<int>(std::min(kChunk, s.hi - at));
      BILEVEL_MPI_CHECK(MPI_Bcast(data + at, count, MPI_DOUBLE, q, handle_->comm));
    }
  }
}

void MpiCommunicator::DoAllgatherPieces(const double* data, Index n, std::vector<double>* all,
                                        std::vector<Index>* counts) {
  std::int64_t mine = n;
  std::vector<std::int64_t> sizes(size_);
  BILEVEL_MPI_CHECK(
      MPI_Allgather(&mine, 1, MPI_INT64_T, sizes.data(), 1, MPI_INT64_T, handle_->comm));
  counts->assign(sizes.begin(), sizes.end());
  std::vector<int> ints(size_), displs(size_);
  std::int64_t total = 0;
  for (int q = 0; q < size_; ++q) {
    if (total + sizes[q] > kChunk)  // MPI's counts and displacements are int
      throw std::runtime_error("MpiCommunicator::AllgatherPieces: more than " +
                               std::to_string(kChunk) + " doubles in all");
    ints[q] = static_cast<int>(sizes[q]);
    displs[q] = static_cast<int>(total);
    total += sizes[q];
  }
  all->resize(total);
  BILEVEL_MPI_CHECK(MPI_Allgatherv(data, static_cast<int>(n), MPI_DOUBLE, all->data(),
                                   ints.data(), displs.data(), MPI_DOUBLE, handle_->comm));
}

double* MpiCommunicator::DoNextBuffer(Index n) {
  if (!UseShared(n)) return nullptr;
  Handle& h = *handle_;
  h.Grow(n, size_);
  return h.segments[rank_] + (h.parity ^ 1) * h.region;
}

double* MpiCommunicator::DoNextSharedVector(Index n) {
  if (!UseShared(n)) return nullptr;
  Handle& h = *handle_;
  h.GrowShared(n);
  h.shared_current = h.shared_base + h.shared_next * h.shared_n;
  h.shared_next ^= 1;
  return h.shared_current;
}

// Every rank r owns the slice r of the vector (SliceOf) and the segment r of the window; the
// call uses one region of every segment (NextRegion). Phases, separated by Sync (MPI_Win_sync,
// MPI_Barrier, MPI_Win_sync: the MPI-3 pattern for load/store access to a shared window):
//  1. r copies its vector into its region, except its own slice, which no other rank reads;
//  2. r sums its slice over the ranks' vectors in rank order 0, 1, ..., P-1 (its own term read
//     from `data`) into `data` (or, a block at a time, to the caller's `use`), and for an
//     allreduce also into its region;
//  3. (allreduce) r copies every other rank q's result slice from q's region into `data`.
// Each element is summed by one rank in a fixed order, so the result is bitwise the same on
// every rank and in every run with the same number of ranks.
void MpiCommunicator::SharedSum(double* data, Index n, bool gather, const SumPieces* use) {
  Handle& h = *handle_;
  const Index offset = h.NextRegion(n, size_);
  double* mine = h.segments[rank_] + offset;
  const Slice own = MySlice(n);

  if (data != mine) {  // else the caller wrote it there (NextBuffer)
    std::memcpy(mine, data, own.lo * sizeof(double));
    std::memcpy(mine + own.hi, data + own.hi, (n - own.hi) * sizeof(double));
  }
  h.Sync();

  std::vector<const double*>& terms = h.terms;  // no allocation after the first call
  terms.resize(size_);
  for (int q = 0; q < size_; ++q) terms[q] = q == rank_ ? data : h.segments[q] + offset;
  double* block = h.sum_block;
  for (Index b = own.lo; b < own.hi; b += kSumBlock) {
    const Index m = std::min(kSumBlock, own.hi - b);
    Add(terms[0] + b, terms[1] + b, block, m);
    for (int q = 2; q < size_; ++q) AddTo(block, terms[q] + b, m);
    if (use) {
      (*use)(b, block, m);
      continue;
    }
    std::memcpy(data + b, block, m * sizeof(double));
    if (gather && data != mine) std::memcpy(mine + b, block, m * sizeof(double));
  }
  if (!gather) return;
  h.Sync();
  for (int q = 0; q < size_; ++q) {
    if (q == rank_) continue;
    const Slice s = SliceOf(n, q);
    std::memcpy(data + s.lo, h.segments[q] + offset + s.lo, s.size() * sizeof(double));
  }
}

// r copies its slice into its region; after a Sync, every other rank q's slice from q's region.
void MpiCommunicator::SharedAllgather(double* data, Index n) {
  Handle& h = *handle_;
  const Index offset = h.NextRegion(n, size_);
  const Slice own = MySlice(n);
  double* mine = h.segments[rank_] + offset;
  if (data != mine) std::memcpy(mine + own.lo, data + own.lo, own.size() * sizeof(double));
  h.Sync();
  for (int q = 0; q < size_; ++q) {
    if (q == rank_) continue;
    const Slice s = SliceOf(n, q);
    std::memcpy(data + s.lo, h.segments[q] + offset + s.lo, s.size() * sizeof(double));
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
