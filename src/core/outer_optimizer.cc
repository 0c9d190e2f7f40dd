#include "bilevel/outer_optimizer.h"

#include <stdexcept>

namespace bilevel {

const std::vector<std::string>& OuterOptimizerNames() {
  static const std::vector<std::string> names = {"sgd"};
  return names;
}

std::unique_ptr<OuterOptimizer> MakeOuterOptimizer(const SolverOptions& options) {
  if (options.outer_optimizer == "sgd") return std::make_unique<SgdOuterOptimizer>(options.outer_lr);
  throw std::invalid_argument("unknown outer optimizer '" + options.outer_optimizer + "'");
}

}  // namespace bilevel
