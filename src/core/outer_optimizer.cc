#include "bilevel/outer_optimizer.h"

#include <cmath>
#include <stdexcept>

namespace bilevel {

void MomentumOuterOptimizer::Step(ConstVecRef g, double scale, VecRef x) {
  m_ = momentum_ * m_ + g;
  x.noalias() -= (lr_ * scale) * m_;
}

void AdamOuterOptimizer::Step(ConstVecRef g, double scale, VecRef x) {
  constexpr double kBeta1 = 0.9, kBeta2 = 0.999, kEps = 1e-8;
  t_[0] += 1;
  m_ = kBeta1 * m_ + (1 - kBeta1) * g;
  s_ = kBeta2 * s_ + (1 - kBeta2) * g.cwiseAbs2();
  const double c1 = 1 - std::pow(kBeta1, t_[0]), c2 = 1 - std::pow(kBeta2, t_[0]);
  x.array() -= (lr_ * scale) * (m_.array() / c1) / ((s_.array() / c2).sqrt() + kEps);
}

const std::vector<std::string>& OuterOptimizerNames() {
  static const std::vector<std::string> names = {"sgd", "momentum", "adam"};
  return names;
}

std::unique_ptr<OuterOptimizer> MakeOuterOptimizer(const SolverOptions& options, Index dim) {
  if (options.outer_optimizer == "sgd") return std::make_unique<SgdOuterOptimizer>(options.outer_lr);
  if (options.outer_optimizer == "momentum")
    return std::make_unique<MomentumOuterOptimizer>(options.outer_lr, options.momentum, dim);
  if (options.outer_optimizer == "adam")
    return std::make_unique<AdamOuterOptimizer>(options.outer_lr, dim);
  throw std::invalid_argument("unknown outer optimizer '" + options.outer_optimizer + "'");
}

}  // namespace bilevel
