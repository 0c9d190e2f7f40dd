// The hypergradient estimators. Each algorithm lives in algorithms/<name>.h with its
// equations; this header holds their common base and the factory.
#ifndef BILEVEL_ALGORITHM_H_
#define BILEVEL_ALGORITHM_H_

#include <algorithm>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "bilevel/block_sparse.h"
#include "bilevel/communicator.h"
#include "bilevel/linear_solvers.h"
#include "bilevel/options.h"
#include "bilevel/oracles.h"
#include "bilevel/sampler.h"

namespace bilevel {

// What an algorithm works with. Every pointer outlives the algorithm.
struct AlgorithmContext {
  Oracles* oracles;
  Communicator* comm;
  Sampler* sampler;
  const SolverOptions* options;
};

// H v over a minibatch of the inner split, summed over ranks: one allreduce of q doubles per
// Apply. The linear solvers take it as their operator; its vectors are whole on every rank, so
// a dot product needs no communication (Sum).
struct DistributedHessian {
  Oracles* oracles;
  Communicator* comm;
  ConstVecRef x, y;
  const MiniBatch* batch;
  void Apply(ConstVecRef v, VecRef out) {
    oracles->HessianVec(x, y, v, *batch, out);
    comm->AllreduceSum(out);
  }
  // CG's step (ConjugateGradient): p <- r + beta p, out = H p / ProductScale() (the sum over
  // the batch: its 1 / |B| is left to CG's update, which saves a pass over q doubles); returns
  // p . H p.
  double ApplyDirection(double beta, ConstVecRef r, VecRef p, VecRef out) {
    internal::CgDirection(beta, r, p, nullptr);
    scale = oracles->HessianVecSum(x, y, p, *batch, out);
    comm->AllreduceSum(out);
    return scale * internal::Dot8(p.data(), out.data(), p.size());
  }
  double ProductScale() const { return scale; }
  double Sum(double local) const { return local; }
  double scale = 1;  // of the last ApplyDirection's out
};

// Full-batch sums on slices by columns (Problem::ColumnFactorWidth): instead of every rank
// forming its samples' whole sum for a reduce-scatter, every rank computes its samples' rows
// of R, one allgather (AllgatherPieces: n C doubles, n the inner split's samples) gives each
// rank all of them, and each rank forms its own slice of A^T R from A's columns.
struct ColumnSums {
  // Whether the sums of `batch` on slices go by columns: the full batch, where an algorithm
  // has set the slices for them (Algorithm::UseColumnSums).
  bool Applies(const MiniBatch& batch) const { return enabled && batch.full(); }
  bool enabled = false;
  // Every rank's rows of R of grad_y G_0 (v null) or grad^2_yy G_0 v (v whole) at (x, y), in
  // `all`: returns 1 / |B|. Collective.
  double Gather(Oracles& oracles, Communicator& comm, ConstVecRef x, ConstVecRef y,
                const double* v, const MiniBatch& batch);
  // Hands the entries of A^T R of `slice` to use(offset from slice.lo, sums, n) in chunks of
  // kChunk from the slice's start (the chunks of SlicedHessian's pieces).
  template <class Use>
  void Chunks(Problem& problem, Slice slice, Use&& use) {
    problem.PrepareColumns(slice.lo, slice.hi);
    chunk.resize(kChunk);
    for (Index at = 0; at < slice.hi - slice.lo; at += kChunk) {
      const Index n = std::min(kChunk, slice.hi - slice.lo - at);
      problem.ColumnProduct(all.data(), slice.lo + at, slice.lo + at + n, chunk.data());
      use(at, chunk.data(), n);
    }
  }
  static constexpr Index kChunk = 2048;
  std::vector<double> rows, all;  // this rank's rows of R; every rank's
  std::vector<Index> counts;
  Vec chunk;
};

// H v over a minibatch of the inner split on slices: this rank holds its slice
// (Communicator::MySlice(q)) of v and receives its slice of H v, and the linear solver updates
// only its slices. Per Apply one allgather (v) and one reduce-scatter (H v) of q doubles, which
// move what one allreduce moves, and the 1/|B| scaling is applied to the slice only; per Sum
// one allreduce of one double (the solver's dot products). With `columns`, where ColumnSums
// apply, the reduce-scatter is replaced by ColumnSums' allgather of n C doubles.
class SlicedHessian {
 public:
  // `whole` and `product`: scratch, sized to q doubles where the communicator has no buffers
  // of its own (NextBuffer).
  // `diagonal`: the problem's sample diagonal per block at x, when it has one (then applied
  // in the pass that scales the product).
  SlicedHessian(Oracles* oracles, Communicator* comm, ConstVecRef x, ConstVecRef y,
                const MiniBatch* batch, Vec* whole, Vec* product,
                BlockDiagonal* diagonal = nullptr, ColumnSums* columns = nullptr)
      : oracles_(oracles), comm_(comm), x_(x), y_(y), batch_(batch), whole_(whole),
        product_(product), slice_(comm->MySlice(y.size())),
        blocks_(diagonal && diagonal->Set(oracles->problem(), x) ? diagonal : nullptr),
        columns_(columns && columns->Applies(*batch) ? columns : nullptr) {}
  void Apply(ConstVecRef v, VecRef out) {
    double* whole = Whole();
    std::copy(v.data(), v.data() + v.size(), whole + slice_.lo);
    Product(whole, v, out, /*dot=*/false);
  }
  // CG's step (ConjugateGradient): p <- r + beta p, written to p and to the vector sent in the
  // same pass, out = H p, and p . out from the pass that writes out; returns the local dot.
  double ApplyDirection(double beta, ConstVecRef r, VecRef p, VecRef out) {
    double* whole = Whole();
    internal::CgDirection(beta, r, p, whole + slice_.lo);
    return Product(whole, p, out, /*dot=*/true);
  }
  double ProductScale() const { return 1; }  // out is H p, scaled in Product's pass
  double Sum(double local) const {
    comm_->AllreduceSum(&local, 1);
    return local;
  }

 private:
  // The buffer of the whole v (q doubles): the ranks' shared vector or the communicator's
  // buffer where it has them.
  double* Whole() {
    double* at = comm_->NextSharedVector(y_.size());
    if (!at) at = comm_->NextBuffer(y_.size());
    if (at) return at;
    whole_->resize(y_.size());
    return whole_->data();
  }
  // `whole` holds this rank's slice v: allgathers it, sums the products over the ranks into
  // this rank's slice, out = that slice scaled, plus the diagonal term; with `dot`, returns
  // v . out, computed a cache-sized chunk at a time as out is written.
  double Product(double* whole_data, ConstVecRef v, VecRef out, bool dot);

  Oracles* oracles_;
  Communicator* comm_;
  ConstVecRef x_, y_;
  const MiniBatch* batch_;
  Vec *whole_, *product_;
  Slice slice_;
  const BlockDiagonal* blocks_;
  ColumnSums* columns_;  // the products by columns, where they apply
};

// An estimator of the hypergradient grad Phi(x) that keeps its own inner iterate y and warm
// starts between outer iterations. Its whole state is named in State(), so that it can be saved
// and restored.
class Algorithm {
 public:
  explicit Algorithm(const AlgorithmContext& context);
  virtual ~Algorithm() = default;

  virtual std::string Name() const = 0;

  // Advances y (warm-started), then writes this rank's share of the hypergradient estimate at
  // x: the sum of the shares over ranks is g_hat. x must be the same on every rank; afterwards
  // y is the same on every rank.
  virtual void HypergradientShare(ConstVecRef x, VecRef share) = 0;

  // The factor of the outer step at iteration k (from 1): 1 for the methods of constant steps,
  // a decaying schedule for BSA and TTSA.
  virtual double OuterStepScale(int k) const {
    (void)k;
    return 1.0;
  }

  // Whether the method uses the Neumann / fixed-point scale eta (which must then satisfy
  // eta lambda_max(H) < 1), and the eta it uses now (options.eta, or set by the coordinator
  // for --eta auto).
  virtual bool UsesEta() const { return false; }
  double eta() const { return eta_[0]; }
  void set_eta(double eta) { eta_[0] = eta; }
  // lambda_max(H(x, y)) on the full inner split, by `iterations` power iterations: collective.
  double EstimateLambdaMax(ConstVecRef x, int iterations);

  // The coordinator tells the algorithm which outer iteration (from 1) comes next, for the
  // methods whose schedules depend on it (BSA, TTSA, HOAG).
  void set_iteration(int k) { iteration_ = k; }

  // The inner iterate y: after HypergradientShare(x), the y at which g_hat was formed.
  const Vec& y() const { return y_; }

  // Every vector of the algorithm's state (y, warm starts, memories), by name.
  virtual std::vector<std::pair<std::string, Vec*>> State() { return {{"y", &y_}}; }

  // Whether minibatch steps of `batch_size` samples go on the blocks the batch touches
  // (bilevel/block_sparse.h): for a problem that declares blocks and its sample diagonal.
  // Each step is then one allgather of every rank's touched blocks and an update of the union
  // of those blocks; the diagonal's steps on the other blocks are deferred (lazy_).
  bool BlockSparse(Index batch_size) const {
    const Problem& problem = context_.oracles->problem();
    return batch_size > 0 && options().block_sparse && problem.BlockSize() > 0 &&
           problem.HasSampleDiagonal();
  }

 protected:
  // T warm-started steps y <- y - alpha grad_y g(x, y), on the full inner split
  // (`batch_size` <= 0) or on a fresh minibatch of `batch_size` samples each step. One
  // allreduce of q doubles per step, or when Sliced() one reduce-scatter and one allgather of
  // q doubles (each rank updates its slice of y); when BlockSparse(batch_size) and no
  // trajectory is asked for, one allgather of the touched blocks per step. On one rank, with
  // the full batch or block-sparse steps and a problem that takes a block sink
  // (Problem::TakesBlockSink), each step is made inside the gradient's pass, and none. When
  // `trajectory` is given, it receives y^0..y^{T-1} (column t = y^t). alpha is
  // options().inner_lr unless given.
  void InnerSteps(ConstVecRef x, int steps, Index batch_size, Eigen::MatrixXd* trajectory,
                  double alpha = 0);

  // This rank's share of the hypergradient estimate of BSA and TTSA (Ghadimi & Wang 2018):
  //   v = eta Q prod_{j=1..q} (I - eta H(x, y; B_j)) grad_y F(x, y; D_F),  q ~ U{0..Q-1}
  //   g_hat = grad_x F(x, y; D_F) - J(x, y; D_G) v,
  // q drawn from the shared generator (the same on every rank), each B_j independent.
  // Communication: 1 + q allreduces of q doubles.
  void RandomNeumannShare(ConstVecRef x, VecRef share);

  int iteration() const { return iteration_; }

  // Whether y-space vectors (q doubles) are updated in per-rank slices: on more than one rank
  // when they are long (SolverOptions::slice_min). The reduced sum of a gradient or Hessian
  // product is then reduce-scattered, each rank updates its slice, and the result is
  // allgathered: the replicated work of the updates is divided among the ranks.
  bool Sliced() { return comm().size() > 1 && q_ >= options().slice_min; }
  // For the algorithms whose sliced sums are full-batch (AID-CG): where Sliced() and the
  // problem has ColumnSums (ColumnFactorWidth, a sample diagonal), sets the communicator's
  // slices of y to the problem's ColumnSliceBounds and turns ColumnSums on.
  void UseColumnSums();
  BlockSums& block_sums();
  // Whether steps are made inside the oracles' passes (Problem::TakesBlockSink): on one rank,
  // where nothing is summed over ranks.
  bool StepsInPass() { return comm().size() == 1 && oracles().problem().TakesBlockSink(); }
  // Step t of block-sparse steps u <- f o u - a h (LazyBlocks, with acc as there) from the sums
  // h of `batch` that sum_oracle() forms on the touched blocks of `sums_out` (the blocks of
  // the last block_sums().Touch, already brought to step t), returning their scale. Where
  // StepsInPass(), the oracle's pass hands each block to a LazySink instead; otherwise the
  // sums are exchanged over ranks (BlockSums) and the union of the blocks updated.
  template <class SumOracle>
  void BlockSparseStep(int t, double a, const MiniBatch& batch, double* u, double* acc,
                       const double* sums_out, SumOracle&& sum_oracle) {
    if (StepsInPass()) {
      LazySink step(&lazy_, t, a * Oracles::SumScale(batch), u, acc);
      BlockSinkSet set(oracles().problem(), &step);
      sum_oracle();
      return;
    }
    const double scale = sum_oracle();
    BlockSums& sums = block_sums();
    sums.Exchange(sums_out);
    lazy_.UpdateBlocks(sums, t, a * scale, u, acc);
  }

  Oracles& oracles() { return *context_.oracles; }
  Communicator& comm() { return *context_.comm; }
  Sampler& sampler() { return *context_.sampler; }
  const SolverOptions& options() const { return *context_.options; }
  Index p() const { return p_; }
  Index q() const { return q_; }

  AlgorithmContext context_;
  Index p_, q_;
  Vec y_;
  Vec eta_;             // [eta], a vector so that State() can carry it
  Vec grad_y_;          // scratch, q
  Vec whole_, product_; // scratch of SlicedHessian (sized by it when needed)
  ColumnSums columns_;  // the sliced full-batch sums by columns
  MiniBatch full_inner_;
  MiniBatch full_outer_;
  MiniBatch batch_;     // scratch minibatch
  MiniBatch outer_batch_;  // scratch minibatch of the outer split
  Vec r_, hv_, jv_;        // scratch of RandomNeumannShare
  std::unique_ptr<BlockSums> block_sums_;  // created at the first block-sparse step
  LazyBlocks lazy_;
  BlockDiagonal block_diagonal_;  // the sliced steps' diagonal, per block where it can be
  int iteration_ = 1;
};

// lambda_max(H(x_0, y_0)) on the full inner split at the problem's starting point, by
// `iterations` power iterations: collective, the same number on every rank. For step sizes
// that the data's scale decides (ProblemDefaults::inner_lr_curvature).
double InitialLambdaMax(Problem& problem, Communicator& comm, int iterations);

// The inner step size alpha that `defaults` (the problem's, for an algorithm) recommend:
// defaults.inner_lr, or where the problem asks for it (inner_lr_curvature > 0),
// inner_lr_curvature / InitialLambdaMax (20 power iterations) to three significant digits, so
// that the number reads well and does not move with the rounding that the number of ranks
// brings. Collective. `origin`, when not null, receives how an estimated step was found
// (empty otherwise).
double RecommendedInnerStep(Problem& problem, Communicator& comm,
                            const ProblemDefaults& defaults, std::string* origin);

// Names accepted by MakeAlgorithm (and --algorithm).
const std::vector<std::string>& AlgorithmNames();
// Throws std::invalid_argument for an unknown name.
std::unique_ptr<Algorithm> MakeAlgorithm(const std::string& name, const AlgorithmContext& context);

}  // namespace bilevel

#endif  // BILEVEL_ALGORITHM_H_
