// The outer update x <- x - step(g_hat), applied by the coordinator (rank 0). Pluggable so that
// momentum or Adam can replace the plain step.
#ifndef BILEVEL_OUTER_OPTIMIZER_H_
#define BILEVEL_OUTER_OPTIMIZER_H_

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "bilevel/options.h"
#include "bilevel/types.h"

namespace bilevel {

class OuterOptimizer {
 public:
  virtual ~OuterOptimizer() = default;
  virtual std::string Name() const = 0;
  // Updates x in place given the hypergradient estimate at x.
  virtual void Step(ConstVecRef hypergrad, VecRef x) = 0;
  // Every vector of the optimizer's state, by name (none for the plain step).
  virtual std::vector<std::pair<std::string, Vec*>> State() { return {}; }
};

// x <- x - beta g_hat.
class SgdOuterOptimizer : public OuterOptimizer {
 public:
  explicit SgdOuterOptimizer(double lr) : lr_(lr) {}
  std::string Name() const override { return "sgd"; }
  void Step(ConstVecRef hypergrad, VecRef x) override { x.noalias() -= lr_ * hypergrad; }

 private:
  double lr_;
};

const std::vector<std::string>& OuterOptimizerNames();
std::unique_ptr<OuterOptimizer> MakeOuterOptimizer(const SolverOptions& options);

}  // namespace bilevel

#endif  // BILEVEL_OUTER_OPTIMIZER_H_
