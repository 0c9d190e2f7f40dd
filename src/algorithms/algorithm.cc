#include "bilevel/algorithm.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <stdexcept>

#include "bilevel/linear_solvers.h"

#include "bilevel/algorithms/aid_bio.h"
#include "bilevel/algorithms/bsa.h"
#include "bilevel/algorithms/hoag.h"
#include "bilevel/algorithms/itd_bio.h"
#include "bilevel/algorithms/stocbio.h"
#include "bilevel/algorithms/ttsa.h"

namespace bilevel {

Algorithm::Algorithm(const AlgorithmContext& context)
    : context_(context),
      p_(context.oracles->problem().DimOuter()),
      q_(context.oracles->problem().DimInner()),
      y_(q_),
      eta_(Vec::Constant(1, context.options->eta)),
      grad_y_(q_) {
  context_.oracles->problem().InitialInner(y_);
  context_.sampler->Full(Split::kInner, &full_inner_);
  context_.sampler->Full(Split::kOuter, &full_outer_);
}

void Algorithm::InnerSteps(ConstVecRef x, int steps, Index batch_size,
                           Eigen::MatrixXd* trajectory, double alpha) {
  if (alpha <= 0) alpha = options().inner_lr;
  if (!trajectory && BlockSparse(batch_size)) {
    // y <- f o y - alpha scale h on the union of the touched blocks, f = 1 - alpha s; the
    // other blocks' steps y <- f o y are deferred until they are read or the loop ends.
    // On one rank the problem may hand each block's sum to the step as it computes it
    // (BlockSparseStep): the sums are then neither written to grad_y_ nor read back.
    BlockSums& sums = block_sums();
    lazy_.Start(oracles().problem(), x, alpha, sums.block_size(), /*zero=*/false);
    for (int t = 0; t < steps; ++t) {
      sampler().Draw(Split::kInner, batch_size, &batch_);
      lazy_.CatchUpBlocks(sums.Touch(Split::kInner, batch_), t, y_.data());
      BlockSparseStep(t, alpha, batch_, y_.data(), nullptr, grad_y_.data(), [&] {
        return oracles().GradYGSum(x, y_, batch_, grad_y_, /*omit_diagonal=*/true,
                                   /*touched_only=*/true);
      });
    }
    lazy_.CatchUpAll(steps, y_.data());
    return;
  }
  if (trajectory) trajectory->resize(q_, steps);
  // Sliced steps write each new y into the ranks' shared vector where the communicator has
  // one (NextSharedVector), so that the allgather copies nothing, and y_ receives the last y
  // once at the end; `y` is the whole y of the current step.
  const double* y = y_.data();
  for (int t = 0; t < steps; ++t) {
    const Eigen::Map<const Vec> yt(y, q_);
    if (trajectory) trajectory->col(t) = yt;
    const MiniBatch* batch = &full_inner_;
    if (batch_size > 0) {
      sampler().Draw(Split::kInner, batch_size, &batch_);
      batch = &batch_;
    }
    if (Sliced()) {
      // A sample-independent diagonal term is applied to the slice, after the sums: those of
      // a reduce-scatter, or by columns (ColumnSums: every rank's rows of R, then the slice).
      Problem& problem = oracles().problem();
      const bool diagonal = problem.HasSampleDiagonal();
      const bool by_columns = columns_.Applies(*batch);
      double* at = by_columns ? nullptr : comm().NextBuffer(q_);
      Eigen::Map<Vec> g(at ? at : grad_y_.data(), q_);
      const double scale = by_columns
                               ? columns_.Gather(oracles(), comm(), x, yt, nullptr, *batch)
                               : oracles().GradYGSum(x, yt, *batch, g, diagonal);
      double* next = comm().NextSharedVector(q_);
      double* whole = next ? next : y_.data();
      const bool blocks = diagonal && block_diagonal_.Set(problem, x);
      // The step of the entries [lo, lo + m) of this rank's slice from their sums; `scratch`
      // (m doubles, may be `sums`) receives the scaled sums.
      const auto step = [&](Index lo, const double* sums, Index m, double* scratch) {
        const Eigen::Map<const Vec> ys(y + lo, m), gs(sums, m);
        Eigen::Map<Vec> out(whole + lo, m);
        if (blocks) {
          block_diagonal_.Step(lo, m, alpha, scale, sums, ys.data(), out.data());
        } else if (diagonal) {
          Eigen::Map<Vec> scaled(scratch, m);
          scaled = scale * gs;
          problem.AddSampleDiagonal(x, lo, ys, scaled);
          out = ys - alpha * scaled;
        } else {
          out = ys - (alpha * scale) * gs;
        }
      };
      if (by_columns) {
        const Slice slice = comm().MySlice(q_);
        columns_.Chunks(problem, slice, [&](Index from, double* sums, Index m) {
          step(slice.lo + from, sums, m, sums);
        });
      } else {
        // Each piece as the reduce-scatter sums it; its entries of g are free scratch.
        comm().ReduceScatterSum(g.data(), q_, [&](Index lo, const double* sums, Index m) {
          step(lo, sums, m, g.data() + lo);
        });
      }
      comm().AllgatherSlices(whole, q_);
      y = whole;
    } else if (batch->full() && StepsInPass()) {
      // One rank, full batch: each block of the gradient takes its step as the problem's pass
      // forms it (StepSink), with no vector of sums written and read back.
      StepSink step(y_.data(), oracles().problem().BlockSize(),
                    alpha * Oracles::SumScale(*batch));
      BlockSinkSet set(oracles().problem(), &step);
      oracles().GradYGSum(x, y_, *batch, grad_y_);
    } else {
      const double scale = oracles().GradYGSum(x, y_, *batch, grad_y_);
      comm().AllreduceSum(grad_y_);
      y_.noalias() -= (alpha * scale) * grad_y_;  // the 1/|B| in the update's pass
    }
  }
  if (y != y_.data()) std::copy(y, y + q_, y_.data());
}

void Algorithm::UseColumnSums() {
  Problem& problem = oracles().problem();
  if (!Sliced() || problem.ColumnFactorWidth() <= 0 || !problem.HasSampleDiagonal()) return;
  comm().SetSlices(q_, problem.ColumnSliceBounds(comm().size()));
  columns_.enabled = true;
}

BlockSums& Algorithm::block_sums() {
  if (!block_sums_) block_sums_ = std::make_unique<BlockSums>(&oracles().problem(), &comm());
  return *block_sums_;
}

void Algorithm::RandomNeumannShare(ConstVecRef x, VecRef share) {
  const SolverOptions& o = options();
  r_.resize(q_);
  hv_.resize(q_);
  jv_.resize(p_);
  sampler().Draw(Split::kOuter, o.EffectiveOuterBatch(), &outer_batch_);
  oracles().GradYF(x, y_, outer_batch_, r_);
  oracles().GradXF(x, y_, outer_batch_, share);
  comm().AllreduceSum(r_);
  const int factors = o.hessian_steps > 0 ? static_cast<int>(sampler().UniformIndex(o.hessian_steps)) : 0;
  for (int j = 0; j < factors; ++j) {
    sampler().Draw(Split::kInner, o.EffectiveHessianBatch(), &batch_);
    oracles().HessianVec(x, y_, r_, batch_, hv_);
    comm().AllreduceSum(hv_);
    r_.noalias() -= eta() * hv_;
  }
  r_ *= eta() * o.hessian_steps;
  sampler().Draw(Split::kInner, o.EffectiveHessianBatch(), &batch_);
  oracles().JacobianVec(x, y_, r_, batch_, jv_);
  share -= jv_;
}

double ColumnSums::Gather(Oracles& oracles, Communicator& comm, ConstVecRef x, ConstVecRef y,
                          const double* v, const MiniBatch& batch) {
  Problem& problem = oracles.problem();
  rows.resize(problem.LocalShard(Split::kInner).size() * problem.ColumnFactorWidth());
  const double scale = oracles.ColumnFactors(x, y, v, batch, rows.data());
  comm.AllgatherPieces(rows.data(), static_cast<Index>(rows.size()), &all, &counts);
  return scale;
}

double SlicedHessian::Product(double* whole_data, ConstVecRef v, VecRef out, bool dot) {
  const Index q = y_.size();
  comm_->AllgatherSlices(whole_data, q);
  Eigen::Map<Vec> whole(whole_data, q);
  // A sample-independent diagonal term is applied here, to the slice only.
  Problem& problem = oracles_->problem();
  const bool diagonal = problem.HasSampleDiagonal();
  double scale = 0, result = 0;
  // out's chunk at `lo` (from the slice's start) = the sums scaled, plus the diagonal term,
  // and v . out from the chunk while it is still in L1.
  const auto finish = [&](Index lo, const double* sums, Index n) {
    auto chunk = out.segment(lo, n);
    if (blocks_) {
      blocks_->ScaledPlus(slice_.lo + lo, n, scale, sums, v.data() + lo, chunk.data());
    } else {
      chunk = scale * Eigen::Map<const Vec>(sums, n);
      if (diagonal) problem.AddSampleDiagonal(x_, slice_.lo + lo, v.segment(lo, n), chunk);
    }
    if (dot) result += internal::Dot8(v.data() + lo, chunk.data(), n);
  };
  constexpr Index kChunk = ColumnSums::kChunk;
  if (columns_) {
    scale = columns_->Gather(*oracles_, *comm_, x_, y_, whole_data, *batch_);
    columns_->Chunks(problem, slice_, finish);
    return result;
  }
  double* at = comm_->NextBuffer(q);
  if (!at) product_->resize(q);
  Eigen::Map<Vec> product(at ? at : product_->data(), q);
  scale = oracles_->HessianVecSum(x_, y_, whole, *batch_, product, diagonal);
  // As the reduce-scatter sums each piece, in chunks of 2048 doubles from the piece's start
  // (the shared-memory reduce-scatter's pieces are kSumPiece doubles, the others' the whole
  // slice: the same chunks either way, and so the same dot product).
  static_assert(Communicator::kSumPiece % kChunk == 0, "pieces must be whole chunks");
  comm_->ReduceScatterSum(product.data(), q, [&](Index piece_lo, const double* sums, Index m) {
    for (Index at = 0; at < m; at += kChunk)
      finish(piece_lo - slice_.lo + at, sums + at, std::min(kChunk, m - at));
  });
  return result;
}

namespace {

// lambda_max(H(x, y)) on `batch` by `iterations` power iterations, y held: collective.
double LambdaMaxAt(Oracles& oracles, Communicator& comm, ConstVecRef x, ConstVecRef y,
                   const MiniBatch& batch, int iterations) {
  DistributedHessian hessian{&oracles, &comm, x, y, &batch};
  InnerHeld held(oracles.problem());
  Vec v, hv;
  return LargestEigenvalue(hessian, y.size(), iterations, &v, &hv);
}

}  // namespace

double Algorithm::EstimateLambdaMax(ConstVecRef x, int iterations) {
  return LambdaMaxAt(oracles(), comm(), x, y_, full_inner_, iterations);
}

double InitialLambdaMax(Problem& problem, Communicator& comm, int iterations) {
  Vec x(problem.DimOuter()), y(problem.DimInner());
  problem.InitialOuter(x);
  problem.InitialInner(y);
  Oracles oracles(&problem);
  MiniBatch full;
  Sampler(problem, 0).Full(Split::kInner, &full);
  return LambdaMaxAt(oracles, comm, x, y, full, iterations);
}

double RecommendedInnerStep(Problem& problem, Communicator& comm,
                            const ProblemDefaults& defaults, std::string* origin) {
  constexpr int kPowerIterations = 20;
  if (origin) origin->clear();
  if (!(defaults.inner_lr_curvature > 0)) return defaults.inner_lr;
  const double lambda = InitialLambdaMax(problem, comm, kPowerIterations);
  if (!(std::isfinite(lambda) && lambda > 0)) return defaults.inner_lr;
  const double alpha = defaults.inner_lr_curvature / lambda;
  const double scale = std::pow(10.0, 2 - std::floor(std::log10(alpha)));
  if (origin) {
    char text[96];
    std::snprintf(text, sizeof text, "auto: %.4g / lambda_max(H) at the start, %.4g",
                  defaults.inner_lr_curvature, lambda);
    *origin = text;
  }
  return std::round(alpha * scale) / scale;
}

const std::vector<std::string>& AlgorithmNames() {
  static const std::vector<std::string> names = {"aid-cg", "aid-neumann", "itd", "fo-itd",
                                                 "stocbio", "bsa", "ttsa", "hoag"};
  return names;
}

std::unique_ptr<Algorithm> MakeAlgorithm(const std::string& name, const AlgorithmContext& context) {
  if (name == "aid-cg") return std::make_unique<AidBio>(context, AidBio::Solver::kConjugateGradient);
  if (name == "aid-neumann") return std::make_unique<AidBio>(context, AidBio::Solver::kNeumann);
  if (name == "itd") return std::make_unique<ItdBio>(context, /*first_order=*/false);
  if (name == "fo-itd") return std::make_unique<ItdBio>(context, /*first_order=*/true);
  if (name == "stocbio") return std::make_unique<StocBio>(context);
  if (name == "bsa") return std::make_unique<Bsa>(context);
  if (name == "ttsa") return std::make_unique<Ttsa>(context);
  if (name == "hoag") return std::make_unique<Hoag>(context);
  throw std::invalid_argument("unknown algorithm '" + name + "'");
}

}  // namespace bilevel
