// Run under mpirun with 2 and with 3 ranks on one node. MpiCommunicator::AllreduceSum through
// the shared-memory window (vectors of kSharedMinDoubles and more) must give exactly the sum in
// rank order 0, 1, ..., P-1, the same bits on every rank, for sizes around the threshold and
// not divisible by P, growing and shrinking; below the threshold, and for every size with
// BILEVEL_SHM_ALLREDUCE=0 (MPI_Allreduce), the sums must be right to a relative 1e-12. The
// same for ReduceScatterSum (this rank's slice, in place or handed over in pieces) and
// AllgatherSlices, with the caller's storage or the communicator's (NextBuffer), interleaved
// with allreduces.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <unistd.h>

#include "bilevel/mpi_communicator.h"
#include "mpi_test_main.h"

namespace bilevel {
namespace {

constexpr Index kMin = comm::MpiCommunicator::kSharedMinDoubles;

// Rank q's vector for the c-th call: random signs and magnitudes over 2^-20..2^20, so that
// summing in another order changes the rounding. Every rank can make every rank's vector.
std::vector<double> RankVector(int q, Index n, int c) {
  std::mt19937_64 gen(1000003 * q + 7919 * c + n);
  std::uniform_real_distribution<double> unit(-1.0, 1.0);
  std::uniform_int_distribution<int> exponent(-20, 20);
  std::vector<double> v(n);
  for (double& x : v) x = std::ldexp(unit(gen), exponent(gen));
  return v;
}

// The elementwise sum of the ranks' vectors in rank order, ((v_0 + v_1) + v_2) + ..., made
// locally, and the sum of their absolute values, which bounds the rounding of any order.
struct Reference {
  std::vector<double> sum, scale;
};
Reference RankOrderSum(int ranks, Index n, int c) {
  Reference ref{std::vector<double>(n, 0.0), std::vector<double>(n, 0.0)};
  for (int q = 0; q < ranks; ++q) {
    const std::vector<double> v = RankVector(q, n, c);
    for (Index i = 0; i < n; ++i) ref.sum[i] += v[i], ref.scale[i] += std::abs(v[i]);
  }
  return ref;
}

// Elements of `got` whose bits differ from `want`.
Index BitwiseMismatches(const std::vector<double>& got, const std::vector<double>& want) {
  Index bad = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    bad += std::memcmp(&got[i], &want[i], sizeof(double)) != 0;
  }
  return bad;
}

// Elements of `got` farther than 1e-12 relative from the reference sum (MPI_Allreduce sums
// in an order of its own).
Index InexactSums(const std::vector<double>& got, const Reference& ref) {
  Index bad = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    bad += !(std::abs(got[i] - ref.sum[i]) <= 1e-12 * ref.scale[i]);
  }
  return bad;
}

// Calls AllreduceSum on `comm` for each size in turn and checks the counters and the result:
// from kMin on (shared memory) exactly the rank-order sum, with rank 0's bits (broadcast);
// below it (MPI_Allreduce) to 1e-12.
void CheckSums(comm::MpiCommunicator& comm, const std::vector<Index>& sizes) {
  const int r = comm.rank(), ranks = comm.size();
  for (size_t c = 0; c < sizes.size(); ++c) {
    const Index n = sizes[c];
    std::vector<double> v = RankVector(r, n, static_cast<int>(c));
    const CommStats before = comm.stats();
    comm.AllreduceSum(v.data(), n);
    EXPECT_EQ(comm.stats().allreduce_calls, before.allreduce_calls + 1);
    EXPECT_EQ(comm.stats().allreduce_bytes, before.allreduce_bytes + n * 8);
    const Reference ref = RankOrderSum(ranks, n, static_cast<int>(c));
    const std::string where = "n = " + std::to_string(n) + " (call " + std::to_string(c) +
                              ") on rank " + std::to_string(r) + " of " + std::to_string(ranks);
    if (n < kMin) {
      EXPECT_EQ(InexactSums(v, ref), 0) << where;
      continue;
    }
    EXPECT_TRUE(comm.shared_memory_allreduce()) << where;
    EXPECT_EQ(BitwiseMismatches(v, ref.sum), 0) << where;
    std::vector<double> first = v;
    comm.Broadcast(first.data(), n, 0);
    EXPECT_EQ(BitwiseMismatches(v, first), 0) << where << " vs rank 0";
  }
}

// Sizes below, at and above the threshold, not divisible by 2 or 3, the 20 Newsgroups vector
// (2,602,140 doubles), then shrinking and growing again.
const std::vector<Index> kSizes = {1,       1000,    kMin - 1, kMin,    kMin + 1, 3 * kMin + 5,
                                   2602140, 2602141, 100003,   kMin,    40000,    7,
                                   2602141, 65537,   65537,    2602140, 1};

TEST(SharedAllreduce, ExactRankOrderSumsOnEveryRank) {
  EXPECT_FALSE(world->shared_memory_allreduce());  // nothing large yet
  CheckSums(*world, kSizes);
}

TEST(SharedAllreduce, ExactCheckSeesTheSummationOrder) {
  // On 3 ranks and more, the vectors above summed in reverse rank order differ in some bits,
  // so the exact checks would catch a sum in another order.
  const int ranks = world->size();
  if (ranks < 3) GTEST_SKIP() << "one order only on 2 ranks (a + b == b + a)";
  std::vector<double> reverse = RankVector(ranks - 1, kMin, 0);
  for (int q = ranks - 2; q >= 0; --q) {
    const std::vector<double> v = RankVector(q, kMin, 0);
    for (Index i = 0; i < kMin; ++i) reverse[i] += v[i];
  }
  EXPECT_GT(BitwiseMismatches(reverse, RankOrderSum(ranks, kMin, 0).sum), 0);
}

TEST(SharedAllreduce, SubCommunicatorsHaveTheirOwnWindows) {
  // The first 2 ranks and all of them, alive together; each frees its window when destroyed.
  std::unique_ptr<comm::MpiCommunicator> pair = world->SplitFirst(2);
  std::unique_ptr<comm::MpiCommunicator> all = world->SplitFirst(world->size());
  if (pair) CheckSums(*pair, {kMin + 3, 300001, kMin + 3});
  CheckSums(*all, {300001, kMin + 3, 2 * kMin});
  if (pair) CheckSums(*pair, {2602140});
}

// Reduce-scatters then allgathers on `comm` for each size in turn, half of them in the
// communicator's own storage (NextBuffer) and with an allreduce of another vector in between:
// the slices partition [0, n) in rank order, this rank's slice of the reduce-scatter is the
// rank-order sum (exactly from kMin on), and the allgather gives every rank every slice.
void CheckSlices(comm::MpiCommunicator& comm, const std::vector<Index>& sizes) {
  const int r = comm.rank(), ranks = comm.size();
  for (size_t c = 0; c < sizes.size(); ++c) {
    const Index n = sizes[c];
    const std::string where = "n = " + std::to_string(n) + " (call " + std::to_string(c) +
                              ") on rank " + std::to_string(r) + " of " + std::to_string(ranks);
    Index end = 0;
    for (int q = 0; q < ranks; ++q) {
      const Slice s = comm.SliceOf(n, q);
      EXPECT_EQ(s.lo, end) << where;
      EXPECT_LE(s.lo, s.hi) << where;
      EXPECT_EQ(s.lo % 8, 0) << where;
      end = s.hi;
    }
    EXPECT_EQ(end, n) << where;

    const std::vector<double> mine = RankVector(r, n, static_cast<int>(c));
    std::vector<double> own_storage;
    double* v = c % 2 ? comm.NextBuffer(n) : nullptr;
    if (!v) {
      own_storage = mine;
      v = own_storage.data();
    } else {
      std::copy(mine.begin(), mine.end(), v);
    }
    const CommStats before = comm.stats();
    comm.ReduceScatterSum(v, n);
    EXPECT_EQ(comm.stats().reduce_scatter_calls, before.reduce_scatter_calls + 1);
    EXPECT_EQ(comm.stats().reduce_scatter_bytes, before.reduce_scatter_bytes + n * 8);
    const Reference ref = RankOrderSum(ranks, n, static_cast<int>(c));
    const Slice s = comm.MySlice(n);
    std::vector<double> got(v + s.lo, v + s.hi);
    const Reference slice_ref{std::vector<double>(ref.sum.begin() + s.lo, ref.sum.begin() + s.hi),
                              std::vector<double>(ref.scale.begin() + s.lo, ref.scale.begin() + s.hi)};
    // The next collective call leaves the result where it is.
    std::vector<double> other = RankVector(r, n + 5, static_cast<int>(c));
    comm.AllreduceSum(other.data(), n + 5);
    EXPECT_EQ(BitwiseMismatches(std::vector<double>(v + s.lo, v + s.hi), got), 0) << where;
    // Exact through shared memory; MPI_Reduce_scatter sums in an order of its own.
    const bool exact = n >= kMin && comm.shared_memory_allreduce();
    if (!exact) {
      EXPECT_EQ(InexactSums(got, slice_ref), 0) << where;
    } else {
      EXPECT_EQ(BitwiseMismatches(got, slice_ref.sum), 0) << where;
    }

    // The same sums handed over in pieces (ReduceScatterSum with a consumer): in order,
    // covering the slice, the same bits as in place.
    double* u = c % 2 ? comm.NextBuffer(n) : nullptr;
    std::vector<double> u_storage;
    if (!u) {
      u_storage = mine;
      u = u_storage.data();
    } else {
      std::copy(mine.begin(), mine.end(), u);
    }
    std::vector<double> pieces;
    Index next_lo = s.lo;
    comm.ReduceScatterSum(u, n, [&](Index lo, const double* sums, Index m) {
      EXPECT_EQ(lo, next_lo) << where;
      next_lo = lo + m;
      pieces.insert(pieces.end(), sums, sums + m);
    });
    EXPECT_EQ(next_lo, s.hi) << where;
    EXPECT_EQ(comm.stats().reduce_scatter_calls, before.reduce_scatter_calls + 2);
    if (!exact) {
      EXPECT_EQ(InexactSums(pieces, slice_ref), 0) << where << " (pieces)";
    } else {
      EXPECT_EQ(BitwiseMismatches(pieces, got), 0) << where << " (pieces)";
    }

    // Allgather: every slice from its owner, in the caller's storage or in the next buffer.
    double* w = c % 2 ? comm.NextBuffer(n) : nullptr;
    std::vector<double> gathered(n, std::nan(""));
    if (!w) w = gathered.data();
    std::copy(got.begin(), got.end(), w + s.lo);
    comm.AllgatherSlices(w, n);
    EXPECT_EQ(comm.stats().allgather_calls, before.allgather_calls + 1);
    std::vector<double> all(w, w + n);
    if (!exact) {
      EXPECT_EQ(InexactSums(all, ref), 0) << where;
    } else {
      EXPECT_EQ(BitwiseMismatches(all, ref.sum), 0) << where;
    }
    std::vector<double> first = all;
    comm.Broadcast(first.data(), n, 0);
    EXPECT_EQ(BitwiseMismatches(all, first), 0) << where << " vs rank 0";
  }
}

TEST(SharedSlices, ReduceScatterAndAllgatherGiveTheRankOrderSum) {
  std::unique_ptr<comm::MpiCommunicator> comm = world->SplitFirst(world->size());
  // Around the threshold, not divisible by 2 or 3, growing and shrinking (the window grows
  // between a reduce-scatter into its own storage and the read of the result at n = kMin).
  CheckSlices(*comm, {1, 1000, kMin - 1, kMin, kMin + 1, 3 * kMin + 5, 100003, kMin, 40000, 7,
                      300001, 65537, 65537, 1});
  if (comm->size() > 1) EXPECT_TRUE(comm->shared_memory_allreduce());
}

// Chains of allgathers in the ranks' shared vectors (NextSharedVector), as the sliced inner
// steps make them: each rank computes its slice of vector t + 1 from the whole vector t, which
// must still be intact, with a reduce-scatter in the communicator's buffer in between (a
// gradient's sum) and the last rank slowed down so that a rank that ran ahead and wrote a
// vector still being read would show. Every rank must see every slice of every vector.
void CheckSharedChain(comm::MpiCommunicator& comm, Index n, int steps) {
  const int r = comm.rank(), ranks = comm.size();
  const Slice s = comm.MySlice(n);
  std::vector<double> expect(n);
  for (Index i = 0; i < n; ++i) expect[i] = static_cast<double>(i % 97);
  std::vector<double> own(expect);  // where there are no shared vectors
  const double* prev = own.data();
  for (int t = 0; t < steps; ++t) {
    const std::string where = "n = " + std::to_string(n) + " step " + std::to_string(t) +
                              " on rank " + std::to_string(r) + " of " + std::to_string(ranks);
    if (r == ranks - 1) usleep(2000);
    EXPECT_EQ(BitwiseMismatches(std::vector<double>(prev, prev + n), expect), 0) << where;
    double* g = comm.NextBuffer(n);
    std::vector<double> g_own;
    if (!g) {
      g_own.resize(n);
      g = g_own.data();
    }
    std::fill(g, g + n, 1.0);
    comm.ReduceScatterSum(g, n);  // each element of the slice: the number of ranks
    double* next = comm.NextSharedVector(n);
    if (n >= kMin && ranks > 1 && comm.shared_memory_allreduce()) {
      EXPECT_NE(next, nullptr) << where;
      EXPECT_NE(next, prev) << where;
    }
    double* whole = next ? next : own.data();
    for (Index i = s.lo; i < s.hi; ++i) whole[i] = 2 * prev[i] - g[i] + t;
    for (Index i = 0; i < n; ++i) expect[i] = 2 * expect[i] - ranks + t;
    const CommStats before = comm.stats();
    comm.AllgatherSlices(whole, n);
    EXPECT_EQ(comm.stats().allgather_calls, before.allgather_calls + 1) << where;
    EXPECT_EQ(comm.stats().allgather_bytes, before.allgather_bytes + n * 8) << where;
    prev = whole;
  }
  EXPECT_EQ(BitwiseMismatches(std::vector<double>(prev, prev + n), expect), 0);
}

TEST(SharedSlices, AllgathersInSharedVectorsChainWithoutCopies) {
  std::unique_ptr<comm::MpiCommunicator> comm = world->SplitFirst(world->size());
  std::vector<double> warm(kMin, 1.0);
  comm->AllreduceSum(warm.data(), kMin);  // decides the shared-memory path
  // Growing (a new window while the last vector is still read) and shrinking.
  for (const Index n : {kMin, Index{100003}, Index{300001}, Index{5000}, Index{7}})
    CheckSharedChain(*comm, n, 6);
}

TEST(SharedAllreduce, MpiAllreduceWhenTurnedOff) {
  ASSERT_EQ(setenv("BILEVEL_SHM_ALLREDUCE", "0", 1), 0);
  std::unique_ptr<comm::MpiCommunicator> comm = world->SplitFirst(world->size());
  for (const Index n : {kMin, 3 * kMin + 5, Index{2602141}}) {
    std::vector<double> v = RankVector(comm->rank(), n, 0);
    comm->AllreduceSum(v.data(), n);
    EXPECT_EQ(InexactSums(v, RankOrderSum(comm->size(), n, 0)), 0) << "n = " << n;
  }
  CheckSlices(*comm, {1, kMin, 3 * kMin + 5, 300001, 7});  // MPI_Reduce_scatter, MPI_Bcast
  CheckSharedChain(*comm, 100003, 3);  // no shared vectors: the caller's storage
  EXPECT_FALSE(comm->shared_memory_allreduce());
  ASSERT_EQ(unsetenv("BILEVEL_SHM_ALLREDUCE"), 0);
}

}  // namespace
}  // namespace bilevel
