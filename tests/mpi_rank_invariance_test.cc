// Run under mpirun with 4 ranks. Every algorithm is run on the first 1, 2, 3 and 4 ranks (real
// MPI sub-communicators; 3 gives uneven shards), with whole and with sliced vectors, and the
// final x and y must agree with the one-rank run to a relative 1e-10.
#include <gtest/gtest.h>

#include "bilevel/algorithm.h"
#include "bilevel/mpi_communicator.h"
#include "mpi_test_main.h"
#include "bilevel/problems/quadratic.h"
#include "bilevel/solver.h"

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

// Every algorithm on 1..4 ranks, with whole vectors and with y's vectors in per-rank slices
// (SolverOptions::slice_min = 0: reduce-scatter, update the own slice, allgather), against the
// one-rank run with whole vectors. q = 37 gives the 4 ranks slices of 8, 8, 8 and 13.
TEST(RankInvariance, FinalIteratesDoNotDependOnTheNumberOfRanks) {
  QuadraticOptions q;
  q.dim_outer = 5;
  q.dim_inner = 37;
  q.samples = 101;
  q.kappa = 10;
  for (const std::string& name : AlgorithmNames()) {
    Vec x_ref, y_ref;
    for (const Index slice_min : {Index{1} << 40, Index{0}}) {
      for (int ranks = 1; ranks <= world->size(); ++ranks) {
        std::unique_ptr<comm::MpiCommunicator> sub = world->SplitFirst(ranks);
        if (!sub) continue;
        QuadraticProblem problem(q, sub->rank(), sub->size());
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
        o.slice_min = slice_min;
        const std::string run =
            name + " on " + std::to_string(ranks) + (slice_min ? " ranks" : " ranks, sliced");
        Vec x, y;
        const SolveSummary s = Solve(problem, *sub, o, &x, &y, nullptr);
        ASSERT_EQ(s.termination, "max_iters") << run;
        if (ranks == 1 && slice_min > 0) {
          x_ref = x, y_ref = y;
          EXPECT_GT(x.norm(), 0.0);
        } else if (sub->rank() == 0) {
          EXPECT_LT((x - x_ref).norm(), 1e-10 * x_ref.norm()) << run;
          EXPECT_LT((y - y_ref).norm(), 1e-10 * y_ref.norm()) << run;
        }
        // Every rank of the run ends with the same x (broadcast) and the same y (allreduced
        // updates, or every slice from its owner), bit for bit.
        Vec xy(x.size() + y.size()), first(x.size() + y.size());
        xy << x, y;
        first = xy;
        sub->Broadcast(first, 0);
        EXPECT_EQ(xy, first) << run << ", rank " << sub->rank();
      }
    }
  }
}

}  // namespace
}  // namespace bilevel
