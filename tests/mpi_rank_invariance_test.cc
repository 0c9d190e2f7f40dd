// Run under mpirun with 4 ranks. Every algorithm is run on the first 1, 2, 3 and 4 ranks (real
// MPI sub-communicators; 3 gives uneven shards) and the final x and y must agree with the
// one-rank run to a relative 1e-10.
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

TEST(RankInvariance, FinalIteratesDoNotDependOnTheNumberOfRanks) {
  QuadraticOptions q;
  q.dim_outer = 5;
  q.dim_inner = 7;
  q.samples = 101;
  q.kappa = 10;
  for (const std::string& name : AlgorithmNames()) {
    Vec x_ref, y_ref;
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
      Vec x, y;
      const SolveSummary s = Solve(problem, *sub, o, &x, &y, nullptr);
      ASSERT_EQ(s.termination, "max_iters") << name;
      if (ranks == 1) {
        x_ref = x, y_ref = y;
        EXPECT_GT(x.norm(), 0.0);
      } else if (sub->rank() == 0) {
        EXPECT_LT((x - x_ref).norm(), 1e-10 * x_ref.norm()) << name << " on " << ranks;
        EXPECT_LT((y - y_ref).norm(), 1e-10 * y_ref.norm()) << name << " on " << ranks;
      }
      // Every rank of the run ends with the same x (broadcast) and y (allreduced updates).
      Vec x_sum = x;
      sub->AllreduceSum(x_sum);
      EXPECT_LT((x_sum / ranks - x).norm(), 1e-14 * x.norm()) << name;
    }
  }
}

}  // namespace
}  // namespace bilevel
