#include "bilevel/mpi_communicator.h"

#include <mpi.h>

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <cstring>
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

// Rank q's slice of an n-vector summed over `ranks` ranks is [SliceBound(q), SliceBound(q + 1)).
// The bounds are multiples of 8 doubles (a cache line): the slice a rank writes in its own
// segment shares no line with the slices the other ranks read from that segment meanwhile.
Index SliceBound(int q, Index n, int ranks) { return q == ranks ? n : (q * n / ranks) & ~Index{7}; }

// out = a + b and acc += a, elementwise; __restrict lets the compiler vectorize them.
void Add(const double* __restrict a, const double* __restrict b, double* __restrict out, Index m) {
  for (Index i = 0; i < m; ++i) out[i] = a[i] + b[i];
}
void AddTo(double* __restrict acc, const double* __restrict a, Index m) {
  for (Index i = 0; i < m; ++i) acc[i] += a[i];
}

// The slice sum works on blocks of this many doubles (16 KiB), which stay in the L1 cache
// while the terms of ranks 2, 3, ... are added to them.
constexpr Index kSumBlock = 2048;

}  // namespace

#define BILEVEL_MPI_CHECK(call) Check((call), #call)

struct MpiCommunicator::Handle {
  MPI_Comm comm = MPI_COMM_NULL;
  bool owned = false;

  // The shared-memory allreduce, decided by the first allreduce of at least kSharedMinDoubles
  // (every rank makes it, so the decision is collective).
  enum class Shared { kUndecided, kOn, kOff };
  Shared shared = Shared::kUndecided;
  // One segment of `capacity` doubles per rank, all mapped into every rank (`segments`, by
  // rank). Passive-target epoch open (MPI_Win_lock_all) for the window's whole life, as the
  // MPI-3 shared-memory model asks for load/store access with MPI_Win_sync.
  MPI_Win win = MPI_WIN_NULL;
  std::vector<double*> segments;
  std::vector<const double*> terms;  // scratch of SharedAllreduceSum, sized with segments
  Index capacity = 0;
  // n of the previous shared-memory allreduce (-1: none yet).
  Index last_n = -1;

  // Whether every rank of `comm` is on this node and BILEVEL_SHM_ALLREDUCE is not 0 on any
  // rank; the same answer on every rank. Collective.
  bool SharedMemoryUsable(int size);
  // Makes every segment hold at least n doubles; the old contents are lost. Collective.
  void Reserve(Index n, int size);
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
    BILEVEL_MPI_CHECK(MPI_Win_unlock_all(win));
    BILEVEL_MPI_CHECK(MPI_Win_free(&win));  // every rank is past its loads (Sync, then free)
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
  if (handle_->win != MPI_WIN_NULL) {
    MPI_Win_unlock_all(handle_->win);
    MPI_Win_free(&handle_->win);
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

void MpiCommunicator::DoAllreduceSum(double* data, Index n) {
  if (size_ > 1 && n >= kSharedMinDoubles) {
    if (handle_->shared == Handle::Shared::kUndecided) {
      handle_->shared =
          handle_->SharedMemoryUsable(size_) ? Handle::Shared::kOn : Handle::Shared::kOff;
    }
    if (handle_->shared == Handle::Shared::kOn) {
      SharedAllreduceSum(data, n);
      return;
    }
  }
  for (Index at = 0; at < n; at += kChunk) {
    const int count = static_cast<int>(std::min(kChunk, n - at));
    BILEVEL_MPI_CHECK(
        MPI_Allreduce(MPI_IN_PLACE, data + at, count, MPI_DOUBLE, MPI_SUM, handle_->comm));
  }
}

// Every rank r owns the slice [lo_r, hi_r) of the vector (SliceBound) and the segment r of the
// window. Three phases, separated by Sync (MPI_Win_sync, MPI_Barrier, MPI_Win_sync: the
// MPI-3 pattern for load/store access to a shared window):
//  1. r copies its vector into segment r, except its own slice, which no other rank reads;
//  2. r sums its slice over the ranks' vectors in rank order 0, 1, ..., P-1 (its own term read
//     from `data`), into segment r's own slice and then into `data`;
//  3. r copies every other rank q's result slice from segment q into `data`.
// Each element is summed by one rank in a fixed order, so the result is bitwise the same on
// every rank and in every run with the same number of ranks. No trailing barrier is needed:
// phase 3 reads only segment q's slice q, which rank q writes next in phase 2 of the next call,
// after a Sync that every rank reaches only when done with this call; phase 1 of the next call
// writes only the other slices, unless n (and so the slices) changes, and then a Sync comes
// first.
void MpiCommunicator::SharedAllreduceSum(double* data, Index n) {
  Handle& h = *handle_;
  if (n != h.last_n) {
    if (h.win != MPI_WIN_NULL) h.Sync();
    h.Reserve(n, size_);
    h.last_n = n;
  }
  double* mine = h.segments[rank_];
  const Index lo = SliceBound(rank_, n, size_), hi = SliceBound(rank_ + 1, n, size_);

  std::memcpy(mine, data, lo * sizeof(double));
  std::memcpy(mine + hi, data + hi, (n - hi) * sizeof(double));
  h.Sync();

  std::vector<const double*>& terms = h.terms;  // no allocation after the first call
  terms.assign(h.segments.begin(), h.segments.end());
  terms[rank_] = data;
  for (Index b = lo; b < hi; b += kSumBlock) {
    const Index m = std::min(kSumBlock, hi - b);
    Add(terms[0] + b, terms[1] + b, mine + b, m);
    for (int q = 2; q < size_; ++q) AddTo(mine + b, terms[q] + b, m);
    std::memcpy(data + b, mine + b, m * sizeof(double));
  }
  h.Sync();

  for (int q = 0; q < size_; ++q) {
    if (q == rank_) continue;
    const Index q_lo = SliceBound(q, n, size_), q_hi = SliceBound(q + 1, n, size_);
    std::memcpy(data + q_lo, h.segments[q] + q_lo, (q_hi - q_lo) * sizeof(double));
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
