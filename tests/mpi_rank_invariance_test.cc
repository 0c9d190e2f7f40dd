// Run under mpirun with 4 ranks. Every algorithm is run on the first 1, 2, 3 and 4 ranks, with
// whole and with sliced vectors, and the final x and y must agree with the one-rank run to a
// relative 1e-10 (ExpectTheSameOnAnyRanks).
#include <gtest/gtest.h>

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <memory>
#include <random>
#include <stdexcept>
#include <vector>

#include "bilevel/algorithm.h"
#include "bilevel/mpi_communicator.h"
#include "mpi_test_main.h"
#include "bilevel/problems/quadratic.h"
#include "bilevel/solver.h"
#include "generated_data.h"
#include "io/dataset.h"
#include "problems/hyperclean.h"
#include "problems/l2reg.h"

namespace bilevel {
namespace {

TEST(MpiCommunicator, CollectivesSumAndBroadcast) {
  const int r = world->rank(), n = world->size();
  Vec v(3);
  v << r, 1.0, -2.0 * r;
  world->AllreduceSum(v);
  EXPECT_EQ(v[0], n * (n - 1) / 2.0);
  EXPECT_EQ(v[1], n);
  Vec w = Vec::Constant(2, r + 1.0);
  world->ReduceSum(w, 0);
  if (r == 0) EXPECT_EQ(w[1], n * (n + 1) / 2.0);
  Vec b = Vec::Constant(4, r == 0 ? 7.5 : 0.0);
  world->Broadcast(b, 0);
  EXPECT_EQ(b[3], 7.5);
}

// Uneven slices (Communicator::SetSlices, as ColumnSums sets them): the reduce-scatter (whole
// and in pieces) and the allgather on them, through MPI (short vectors) and through shared
// memory (long ones), give each rank the sums of its own slice and every rank every slice.
TEST(MpiCommunicator, UnevenSlicesReduceScatterAndAllgather) {
  const int r = world->rank(), p = world->size();
  for (const Index n : {Index{100}, Index{1} << 17}) {
    std::vector<Index> bounds(p + 1, n);
    for (int q = 0; q < p; ++q) bounds[q] = (n * q * q / (p * p)) & ~Index{7};
    world->SetSlices(n, bounds);
    for (int q = 0; q < p; ++q) {
      EXPECT_EQ(world->SliceOf(n, q).lo, bounds[q]);
      EXPECT_EQ(world->SliceOf(n, q).hi, bounds[q + 1]);
    }
    const Slice mine = world->MySlice(n);
    auto sum_at = [&](Index i) { return p * static_cast<double>(i) + p * (p - 1) / 2.0; };
    Vec v(n);
    for (Index i = 0; i < n; ++i) v[i] = static_cast<double>(i + r);
    world->ReduceScatterSum(v);
    for (Index i = mine.lo; i < mine.hi; ++i) ASSERT_EQ(v[i], sum_at(i)) << "n " << n << ", " << i;
    for (Index i = 0; i < n; ++i) v[i] = static_cast<double>(i + r);
    Index covered = mine.lo;
    world->ReduceScatterSum(v.data(), n, [&](Index lo, const double* sums, Index m) {
      EXPECT_EQ(lo, covered);
      for (Index k = 0; k < m; ++k) EXPECT_EQ(sums[k], sum_at(lo + k));
      covered = lo + m;
    });
    EXPECT_EQ(covered, mine.hi);
    Vec u = Vec::Constant(n, -1.0);
    for (Index i = mine.lo; i < mine.hi; ++i) u[i] = 2.0 * static_cast<double>(i);
    world->AllgatherSlices(u);
    for (Index i = 0; i < n; ++i) ASSERT_EQ(u[i], 2.0 * static_cast<double>(i)) << "n " << n;
    world->SetSlices(n, {});
    EXPECT_EQ(world->MySlice(n).lo, (static_cast<Index>(r) * n / p) & ~Index{7});
  }
  EXPECT_THROW(world->SetSlices(100, std::vector<Index>(p + 1, 0)), std::invalid_argument);
  if (p > 1) {
    std::vector<Index> odd(p + 1, 100);
    odd[0] = 0;
    odd[1] = 3;  // not a multiple of 8
    EXPECT_THROW(world->SetSlices(100, odd), std::invalid_argument);
  }
}

// Runs `o` on the first 1, 2, ..., P ranks of the world (real MPI sub-communicators; 3 gives
// uneven shards), first with whole vectors and then with y's vectors in per-rank slices
// (SolverOptions::slice_min = `sliced_min`: reduce-scatter, update the own slice, allgather),
// on the problem make(rank, ranks). Every run must end with the x and y of the first one (whole,
// one rank) to a relative 1e-10, and every rank of a run with the same x (broadcast) and y
// (allreduced updates, or every slice from its owner), bit for bit. The reference must have
// |x| > min_x and |y| > min_y. `tol` (default 1e-10) is the relative tolerance: the sums of
// other shards round differently, and an algorithm that amplifies rounding (CG) may need more.
// With `blocks`, the same again with block-sparse minibatch steps (SolverOptions::block_sparse;
// the reference is still the first run, with dense steps).
template <class Make>
void ExpectTheSameOnAnyRanks(SolverOptions o, Index sliced_min, const Make& make, double min_x,
                             double min_y, bool blocks = false, double tol = 1e-10) {
  Vec x_ref, y_ref;
  for (const bool block_sparse : {false, true}) {
    if (block_sparse && !blocks) break;
    for (const Index slice_min : {Index{1} << 40, sliced_min}) {
      for (int ranks = 1; ranks <= world->size(); ++ranks) {
        std::unique_ptr<comm::MpiCommunicator> sub = world->SplitFirst(ranks);
        if (!sub) continue;
        auto problem = make(sub->rank(), sub->size());
        o.slice_min = slice_min;
        o.block_sparse = block_sparse;
        const std::string run = o.algorithm + " on " + std::to_string(ranks) +
                                (slice_min == sliced_min ? " ranks, sliced" : " ranks") +
                                (block_sparse ? ", block-sparse steps" : "");
        Vec x, y;
        const SolveSummary s = Solve(*problem, *sub, o, &x, &y, nullptr);
        ASSERT_EQ(s.termination, "max_iters") << run;
        if (x_ref.size() == 0) {
          x_ref = x, y_ref = y;
          EXPECT_GT(x.norm(), min_x) << run;
          EXPECT_GT(y.norm(), min_y) << run;
        } else if (sub->rank() == 0) {
          EXPECT_LT((x - x_ref).norm(), tol * x_ref.norm()) << run;
          EXPECT_LT((y - y_ref).norm(), tol * y_ref.norm()) << run;
        }
        Vec xy(x.size() + y.size());
        xy << x, y;
        Vec first = xy;
        sub->Broadcast(first, 0);
        EXPECT_EQ(xy, first) << run << ", rank " << sub->rank();
      }
    }
  }
}

// Every algorithm, whole and sliced (slice_min = 0 slices even q = 37, which gives the 4 ranks
// slices of 8, 8, 8 and 13).
TEST(RankInvariance, FinalIteratesDoNotDependOnTheNumberOfRanks) {
  QuadraticOptions q;
  q.dim_outer = 5;
  q.dim_inner = 37;
  q.samples = 101;
  q.kappa = 10;
  for (const std::string& name : AlgorithmNames()) {
    SolverOptions o;
    o.algorithm = name;
    o.outer_iters = 30;
    o.inner_steps = 5;
    o.hessian_steps = 5;
    o.inner_lr = 0.1;
    o.eta = 0.05;
    o.outer_lr = 5;
    o.batch_size = 10;
    o.seed = 17;
    ExpectTheSameOnAnyRanks(o, /*sliced_min=*/0, [&](int rank, int ranks) {
      return std::make_unique<QuadraticProblem>(q, rank, ranks);
    }, 0.0, 0.0);
  }
}

// A sparse classification split of `rows` rows over d features, about d / 30 per row, rows
// of norm 1; a row of class c has most of its weight on the features c, c + C, c + 2C, ...,
// so that the classifier learns (W grows) and the hypergradient is far from 0.
io::SplitShard SparseRows(Index rows, Index d, int classes, std::mt19937* rng) {
  io::SplitShard s;
  s.csr = true;
  s.indptr.push_back(0);
  for (Index i = 0; i < rows; ++i) {
    const int label = static_cast<int>((*rng)() % classes);
    std::vector<std::pair<int, float>> row;
    for (Index j = 0; j < d; ++j) {
      const bool of_class = j % classes == label && (*rng)() % 3 == 0;
      if (of_class || (*rng)() % 30 == 0) row.emplace_back(static_cast<int>(j), of_class ? 1.f : 0.3f);
    }
    float norm = 0;
    for (const auto& [j, v] : row) norm += v * v;
    for (const auto& [j, v] : row) {
      s.indices.push_back(j);
      s.data.push_back(v / std::sqrt(norm));
    }
    s.indptr.push_back(static_cast<std::int64_t>(s.indices.size()));
    s.labels.push_back(label);
  }
  s.begin = 0;
  s.end = rows;
  return s;
}

// The runs on the classification problems: 8 outer iterations of 5 inner steps (of 10 samples
// for stocBiO) and 5 Hessian steps.
SolverOptions ClassifierRun(const std::string& algorithm, double outer_lr, double eta) {
  SolverOptions o;
  o.algorithm = algorithm;
  o.outer_iters = 8;
  o.inner_steps = 5;
  o.hessian_steps = 5;
  o.inner_lr = 1;
  o.outer_lr = outer_lr;
  o.eta = eta;
  o.batch_size = 10;
  o.seed = 3;
  return o;
}

// l2reg with q = 300 x 20 = 6000 doubles, above the default slice_min: on more than one rank
// its vectors go in slices, and its regularizer is applied by the engine to each slice
// (Problem::HasSampleDiagonal). AID-CG and stocBiO on 1..4 ranks, sliced (the default) and
// whole, agree with the one-rank run; so does stocBiO with block-sparse steps (the data is
// sparse: a batch of 10 rows touches about half of the 300 rows of W), whose deferred
// regularizer steps and allgathered blocks must give every rank the same bits. AID-CG's 5 CG
// steps per outer iteration amplify the shards' rounding to a relative 1e-10 on 2 ranks (on an
// AVX-512 machine), so it is held to 1e-8; stocBiO's runs agree to 1e-16.
TEST(RankInvariance, SlicedL2RegWithItsRegularizerOnTheSlices) {
  // Rank 0 writes the file; the broadcast of its name's number orders the reads after it.
  Vec tag = Vec::Constant(1, static_cast<double>(getpid()));
  auto file_of = [](const Vec& t) {
    return "/tmp/bilevel_rank_invariance_" + std::to_string(static_cast<long>(t[0])) + ".h5";
  };
  if (world->rank() == 0) {
    std::mt19937 rng(5);
    io::Dataset data = testing::GeneratedDataset(300, 20, "csr");
    data.train = SparseRows(41, 300, 20, &rng);
    data.val = SparseRows(17, 300, 20, &rng);
    data.test = SparseRows(9, 300, 20, &rng);
    io::WriteDataset(file_of(tag), data);
  }
  world->Broadcast(tag, 0);
  const std::string file = file_of(tag);
  for (const std::string name : {"aid-cg", "stocbio"}) {
    // The hypergradient carries the regularizer's 1 / (d C): a large outer step.
    const SolverOptions o = ClassifierRun(name, /*outer_lr=*/3e3, /*eta=*/0.01);
    ExpectTheSameOnAnyRanks(o, SolverOptions().slice_min, [&](int rank, int ranks) {
      auto problem = std::make_unique<problems::L2RegProblem>(file, rank, ranks);
      EXPECT_GE(problem->DimInner(), SolverOptions().slice_min);
      return problem;
    }, 1e-3, 1.0, /*blocks=*/name == "stocbio", /*tol=*/name == "aid-cg" ? 1e-8 : 1e-10);
  }
  // AID-CG's full-batch sums go by columns (ColumnSums): per outer iteration the only
  // reduce-scatter left is grad_y f - H v0's; each of the T inner steps and the N products is
  // an allgather of R and one of the slice (y or CG's direction), and v is allgathered at the
  // end (aid_bio.h).
  if (world->size() > 1) {
    const SolverOptions o = ClassifierRun("aid-cg", 3e3, 0.01);
    std::unique_ptr<comm::MpiCommunicator> all = world->SplitFirst(world->size());
    problems::L2RegProblem problem(file, all->rank(), all->size());
    Vec x, y;
    Solve(problem, *all, o, &x, &y, nullptr);
    EXPECT_EQ(all->stats().reduce_scatter_calls, o.outer_iters);
    EXPECT_EQ(all->stats().allgather_calls,
              o.outer_iters * (2 * o.inner_steps + 2 * o.hessian_steps + 1));
  }
  // On one rank the inner steps are made inside their gradients' passes (StepSink) and sum
  // nothing: 1 + N allreduces per outer iteration (aid_bio.h), counted as the difference
  // between runs of K and K + 2 outer iterations (the run's setup has its own).
  if (std::unique_ptr<comm::MpiCommunicator> one = world->SplitFirst(1)) {
    SolverOptions o = ClassifierRun("aid-cg", 3e3, 0.01);
    problems::L2RegProblem problem(file, 0, 1);
    ASSERT_TRUE(problem.TakesBlockSink());
    Vec x, y;
    std::int64_t calls[2];
    for (int k = 0; k < 2; ++k) {
      const std::int64_t before = one->stats().allreduce_calls;
      Solve(problem, *one, o, &x, &y, nullptr);
      calls[k] = one->stats().allreduce_calls - before;
      o.outer_iters += 2;
    }
    EXPECT_EQ(calls[1] - calls[0], 2 * (1 + o.hessian_steps));
  }
  world->Broadcast(tag, 0);  // every rank is done with the file
  if (world->rank() == 0) std::remove(file.c_str());
}

// The rows of SparseRows as a dense split (the zeros stored), the labels of every third row
// moved to the next class (hyper-cleaning's noise) with the true ones kept.
io::SplitShard DenseRows(Index rows, Index d, int classes, std::mt19937* rng) {
  const io::SplitShard sparse = SparseRows(rows, d, classes, rng);
  io::SplitShard s;
  s.features = io::FeatureMatrix::Zero(rows, d);
  for (Index i = 0; i < rows; ++i)
    for (std::int64_t k = sparse.indptr[i]; k < sparse.indptr[i + 1]; ++k)
      s.features(i, sparse.indices[k]) = sparse.data[k];
  s.labels = sparse.labels;
  s.clean_labels = s.labels;
  for (Index i = 0; i < rows; i += 3) s.labels[i] = (s.labels[i] + 1) % classes;
  s.begin = 0;
  s.end = rows;
  return s;
}

// hyperclean on dense rows that are mostly zeros (about 1 in 15 nonzero), which every rank
// keeps packed (SoftmaxRows::kPackedDensity): AID-CG and stocBiO on 1..4 ranks, whole and
// sliced, agree with the one-rank run.
TEST(RankInvariance, HypercleanOnPackedRows) {
  Vec tag = Vec::Constant(1, static_cast<double>(getpid()));
  auto file_of = [](const Vec& t) {
    return "/tmp/bilevel_rank_invariance_packed_" + std::to_string(static_cast<long>(t[0])) +
           ".h5";
  };
  if (world->rank() == 0) {
    std::mt19937 rng(7);
    io::Dataset data = testing::GeneratedDataset(120, 10, "dense");
    data.attributes.corruption_rate = 0.33;
    data.train = DenseRows(41, 120, 10, &rng);
    data.val = DenseRows(17, 120, 10, &rng);
    data.test = DenseRows(9, 120, 10, &rng);
    for (io::SplitShard* clean : {&data.val, &data.test}) {  // noise in training labels only
      clean->labels = clean->clean_labels;
      clean->clean_labels.clear();
    }
    io::WriteDataset(file_of(tag), data);
  }
  world->Broadcast(tag, 0);
  const std::string file = file_of(tag);
  for (const std::string name : {"aid-cg", "stocbio"}) {
    const SolverOptions o = ClassifierRun(name, /*outer_lr=*/10, /*eta=*/0.05);
    ExpectTheSameOnAnyRanks(o, /*sliced_min=*/0, [&](int rank, int ranks) {
      auto problem = std::make_unique<problems::HypercleanProblem>(file, rank, ranks);
      std::string rows;
      for (const auto& [key, value] : problem->Describe())
        if (key == "train_rows") rows = value;
      EXPECT_EQ(rows, "packed");
      return problem;
    }, 1e-3, 1e-2, /*blocks=*/false, /*tol=*/name == "aid-cg" ? 1e-8 : 1e-10);
  }
  world->Broadcast(tag, 0);
  if (world->rank() == 0) std::remove(file.c_str());
}

}  // namespace
}  // namespace bilevel
