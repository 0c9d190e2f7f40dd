// Minibatches: distinct global indices, the same on every rank, each rank keeping its own.
#include "bilevel/sampler.h"

#include <gtest/gtest.h>

#include <set>
#include <utility>

#include "bilevel/problems/quadratic.h"

namespace bilevel {
namespace {

QuadraticOptions Opts(Index samples) {
  QuadraticOptions o;
  o.dim_outer = 2;
  o.dim_inner = 2;
  o.samples = samples;
  return o;
}

TEST(BlockShard, CoversEverySampleOnceWithBalancedBlocks) {
  for (Index n : {0, 1, 7, 100, 101}) {
    for (int ranks : {1, 2, 3, 4, 7}) {
      Index next = 0;
      for (int r = 0; r < ranks; ++r) {
        const Shard s = BlockShard(n, r, ranks);
        EXPECT_EQ(s.begin, next);
        EXPECT_GE(s.size(), n / ranks);
        EXPECT_LE(s.size(), n / ranks + 1);
        next = s.end;
      }
      EXPECT_EQ(next, n);
    }
  }
}

void ExpectSameGlobalBatch(Index n, Index b) {
  SCOPED_TRACE(::testing::Message() << "n = " << n << ", b = " << b);
  const int ranks = 3;
  QuadraticProblem whole(Opts(n), 0, 1);
  Sampler reference(whole, 42);
  std::vector<std::unique_ptr<QuadraticProblem>> parts;
  std::vector<Sampler> samplers;
  for (int r = 0; r < ranks; ++r) {
    parts.push_back(std::make_unique<QuadraticProblem>(Opts(n), r, ranks));
    samplers.emplace_back(*parts.back(), 42);
  }
  for (int draw = 0; draw < 50; ++draw) {
    MiniBatch all;
    reference.Draw(Split::kInner, b, &all);
    ASSERT_EQ(all.global_size(), b);
    const Batch batch = all.local();
    std::set<Index> expected;
    for (Index i = 0; i < batch.size(); ++i) expected.insert(batch[i]);
    ASSERT_EQ(expected.size(), static_cast<size_t>(b)) << "indices are distinct";
    std::set<Index> seen;
    for (int r = 0; r < ranks; ++r) {
      MiniBatch mine;
      samplers[r].Draw(Split::kInner, b, &mine);
      EXPECT_EQ(mine.global_size(), b);
      const Shard shard = parts[r]->LocalShard(Split::kInner);
      const Batch local = mine.local();
      for (Index i = 0; i < local.size(); ++i) {
        ASSERT_LT(local[i], shard.size());
        if (i > 0) EXPECT_LT(local[i - 1], local[i]) << "sorted";
        seen.insert(shard.begin + local[i]);
      }
    }
    EXPECT_EQ(seen, expected);
  }
}

// Also in increasing order on every rank, whether the batch is sorted by a bit scan (large
// against the shard: 17 of 103) or by a comparison sort (3 of 2000, on every rank that holds
// fewer than all three).
TEST(Sampler, RanksTogetherSeeTheSameGlobalBatch) {
  for (const auto& [n, b] : {std::pair<Index, Index>{103, 17}, std::pair<Index, Index>{2000, 3}})
    ExpectSameGlobalBatch(n, b);
}

TEST(Sampler, DrawsAreUniform) {
  const Index n = 10, b = 3;
  QuadraticProblem problem(Opts(n), 0, 1);
  Sampler sampler(problem, 7);
  std::vector<int> hits(n, 0);
  const int draws = 20000;
  MiniBatch mb;
  for (int d = 0; d < draws; ++d) {
    sampler.Draw(Split::kOuter, b, &mb);
    for (Index i = 0; i < b; ++i) ++hits[mb.local()[i]];
  }
  // Each index appears with probability b/n = 0.3: 6000 expected, sd about 65.
  for (Index i = 0; i < n; ++i) EXPECT_NEAR(hits[i], 6000, 400) << "index " << i;
}

TEST(Sampler, FullBatchWhenTheSizeCoversTheSplit) {
  QuadraticProblem problem(Opts(20), 1, 2);
  Sampler sampler(problem, 1);
  MiniBatch mb;
  sampler.Draw(Split::kInner, 20, &mb);
  EXPECT_TRUE(mb.full());
  EXPECT_EQ(mb.global_size(), 20);
  EXPECT_TRUE(mb.local().is_range());
  EXPECT_EQ(mb.local().size(), 10);
}

TEST(Sampler, SavedStateReproducesTheSequence) {
  QuadraticProblem problem(Opts(50), 0, 1);
  Sampler a(problem, 3);
  MiniBatch mb, mb2;
  a.Draw(Split::kInner, 5, &mb);
  const std::string state = a.SaveState();
  Sampler b(problem, 999);
  b.LoadState(state);
  for (int d = 0; d < 10; ++d) {
    a.Draw(Split::kInner, 7, &mb);
    b.Draw(Split::kInner, 7, &mb2);
    for (Index i = 0; i < 7; ++i) EXPECT_EQ(mb.local()[i], mb2.local()[i]);
  }
  EXPECT_THROW(b.LoadState("not a state"), std::invalid_argument);
}

}  // namespace
}  // namespace bilevel
