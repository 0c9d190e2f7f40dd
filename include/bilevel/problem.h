// The problem interface: a bilevel problem min_x f(x, y*(x)), y*(x) = argmin_y g(x, y),
// given by sample-wise oracles on this rank's shard of the data (MATH.md section 1).
#ifndef BILEVEL_PROBLEM_H_
#define BILEVEL_PROBLEM_H_

#include <string>
#include <utility>
#include <vector>

#include "bilevel/batch.h"
#include "bilevel/types.h"

namespace bilevel {

class MetricsRecord;

// Global sample indices [begin, end) of one split owned by this rank.
struct Shard {
  Index begin = 0;
  Index end = 0;
  Index size() const { return end - begin; }
};

// The contiguous block of n samples owned by `rank` of `ranks`: sizes differ by at most one,
// lower ranks take the larger blocks.
Shard BlockShard(Index n, int rank, int ranks);

// Step sizes and loop lengths a problem recommends for an algorithm. The CLI uses them for
// every option the user leaves at "auto".
struct ProblemDefaults {
  double inner_lr = 0.1;    // alpha
  double outer_lr = 0.1;    // beta
  double eta = 0.1;         // Neumann / fixed-point scale
  Index batch_size = 64;    // minibatch size of stochastic methods
};

// A bilevel problem.
//
// f(x, y) = (1/n) sum_i F(x, y; xi_i) over the n samples of Split::kOuter,
// g(x, y) = (1/m) sum_j G(x, y; zeta_j) over the m samples of Split::kInner.
// x has DimOuter() entries, y has DimInner() entries.
//
// Oracle contract (every oracle below):
//  - `batch` holds indices local to this rank's shard of the split the oracle belongs to
//    (kOuter for F, kInner for G); it may be empty.
//  - The result is the SUM over the batch (not the mean), written into caller-owned storage
//    `out` of the right size, overwriting it. The engine divides by the global batch size and
//    sums over ranks.
//  - Oracles never communicate; the engine calls them from one thread, never concurrently.
//  - They may use scratch members (hence non-const) but should not allocate per call.
class Problem {
 public:
  virtual ~Problem() = default;

  virtual std::string Name() const = 0;
  virtual Index DimOuter() const = 0;                  // p
  virtual Index DimInner() const = 0;                  // q
  virtual Index NumSamples(Split split) const = 0;     // global n (kOuter) or m (kInner)
  virtual Shard LocalShard(Split split) const = 0;     // samples this rank holds

  // Starting points; zero by default.
  virtual void InitialOuter(VecRef x) const { x.setZero(); }
  virtual void InitialInner(VecRef y) const { y.setZero(); }

  // sum_i F(x, y; xi_i) over the batch (Split::kOuter).
  virtual double ValueF(ConstVecRef x, ConstVecRef y, const Batch& batch) = 0;
  // sum_j G(x, y; zeta_j) over the batch (Split::kInner).
  virtual double ValueG(ConstVecRef x, ConstVecRef y, const Batch& batch) = 0;
  // out (p) = sum_i grad_x F(x, y; xi_i).
  virtual void GradXF(ConstVecRef x, ConstVecRef y, const Batch& batch, VecRef out) = 0;
  // out (q) = sum_i grad_y F(x, y; xi_i).
  virtual void GradYF(ConstVecRef x, ConstVecRef y, const Batch& batch, VecRef out) = 0;
  // out (q) = sum_j grad_y G(x, y; zeta_j).
  virtual void GradYG(ConstVecRef x, ConstVecRef y, const Batch& batch, VecRef out) = 0;
  // out (p) = sum_j grad_x G(x, y; zeta_j).
  virtual void GradXG(ConstVecRef x, ConstVecRef y, const Batch& batch, VecRef out) = 0;
  // out (q) = sum_j grad^2_yy G(x, y; zeta_j) v       (Hessian-vector product, H v).
  virtual void HessianVec(ConstVecRef x, ConstVecRef y, ConstVecRef v, const Batch& batch,
                          VecRef out) = 0;
  // out (p) = sum_j grad^2_xy G(x, y; zeta_j) v       (Jacobian-vector product, J v,
  //           = grad_x <grad_y G(x, y; zeta_j), v>).
  virtual void JacobianVec(ConstVecRef x, ConstVecRef y, ConstVecRef v, const Batch& batch,
                           VecRef out) = 0;

  // Recommended settings for `algorithm` (one of AlgorithmNames()).
  virtual ProblemDefaults Defaults(const std::string& algorithm) const {
    (void)algorithm;
    return ProblemDefaults();
  }

  // Key facts for the run header (shapes, constants), as (name, value) pairs.
  virtual std::vector<std::pair<std::string, std::string>> Describe() const { return {}; }

  // What makes this problem this one, as (name, value) pairs: checkpoints record it and a
  // resume with a different identity is refused. The default gives the name and the shapes;
  // problems add their parameters and the identity of their data (path, shapes, checksum).
  virtual std::vector<std::pair<std::string, std::string>> Identity() const;

  // Evaluation hooks, called at every evaluation point on every rank.
  // EvalLocalSums writes NumEvalSums() local partial sums (for instance correct predictions
  // on this rank's test shard); the engine sums them over ranks and hands the totals to
  // EvalReport, which runs on rank 0 only and adds problem-specific metrics. `hypergrad` is
  // the reduced hypergradient estimate at x.
  virtual int NumEvalSums() const { return 0; }
  virtual void EvalLocalSums(ConstVecRef x, ConstVecRef y, VecRef sums) {
    (void)x, (void)y, (void)sums;
  }
  virtual void EvalReport(ConstVecRef x, ConstVecRef y, ConstVecRef hypergrad,
                          ConstVecRef sums, MetricsRecord* record) const {
    (void)x, (void)y, (void)hypergrad, (void)sums, (void)record;
  }
};

}  // namespace bilevel

#endif  // BILEVEL_PROBLEM_H_
