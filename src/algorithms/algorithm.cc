#include "bilevel/algorithm.h"

#include <stdexcept>

#include "bilevel/linear_solvers.h"

#include "bilevel/algorithms/aid_bio.h"
#include "bilevel/algorithms/itd_bio.h"
#include "bilevel/algorithms/stocbio.h"

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
                           Eigen::MatrixXd* trajectory) {
  const double alpha = options().inner_lr;
  if (trajectory) trajectory->resize(q_, steps);
  for (int t = 0; t < steps; ++t) {
    if (trajectory) trajectory->col(t) = y_;
    const MiniBatch* batch = &full_inner_;
    if (batch_size > 0) {
      sampler().Draw(Split::kInner, batch_size, &batch_);
      batch = &batch_;
    }
    oracles().GradYG(x, y_, *batch, grad_y_);
    comm().AllreduceSum(grad_y_);
    y_.noalias() -= alpha * grad_y_;
  }
}

double Algorithm::EstimateLambdaMax(ConstVecRef x, int iterations) {
  DistributedHessian hessian{&oracles(), &comm(), x, y_, &full_inner_};
  Vec v, hv;
  return LargestEigenvalue(hessian, q_, iterations, &v, &hv);
}

const std::vector<std::string>& AlgorithmNames() {
  static const std::vector<std::string> names = {"aid-cg", "aid-neumann", "itd", "fo-itd",
                                                 "stocbio"};
  return names;
}

std::unique_ptr<Algorithm> MakeAlgorithm(const std::string& name, const AlgorithmContext& context) {
  if (name == "aid-cg") return std::make_unique<AidBio>(context, AidBio::Solver::kConjugateGradient);
  if (name == "aid-neumann") return std::make_unique<AidBio>(context, AidBio::Solver::kNeumann);
  if (name == "itd") return std::make_unique<ItdBio>(context, /*first_order=*/false);
  if (name == "fo-itd") return std::make_unique<ItdBio>(context, /*first_order=*/true);
  if (name == "stocbio") return std::make_unique<StocBio>(context);
  throw std::invalid_argument("unknown algorithm '" + name + "'");
}

}  // namespace bilevel
