// The outer update x <- x - step(g_hat), applied by the coordinator (rank 0) and then broadcast.
// Pluggable: the plain step of the paper, heavy-ball momentum, or Adam. An algorithm may ask
// for a decaying step (BSA, TTSA) through the `scale` of each step.
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
  // Updates x in place given the hypergradient estimate at x; the step size is the optimizer's
  // learning rate times `scale`.
  virtual void Step(ConstVecRef hypergrad, double scale, VecRef x) = 0;
  // Every vector of the optimizer's state, by name (none for the plain step).
  virtual std::vector<std::pair<std::string, Vec*>> State() { return {}; }
};

// sgd: x <- x - beta g_hat.
class SgdOuterOptimizer : public OuterOptimizer {
 public:
  explicit SgdOuterOptimizer(double lr) : lr_(lr) {}
  std::string Name() const override { return "sgd"; }
  void Step(ConstVecRef g, double scale, VecRef x) override { x.noalias() -= (lr_ * scale) * g; }

 private:
  double lr_;
};

// momentum: m <- mu m + g_hat;  x <- x - beta m   (heavy ball, m = 0 at the start).
class MomentumOuterOptimizer : public OuterOptimizer {
 public:
  MomentumOuterOptimizer(double lr, double momentum, Index dim)
      : lr_(lr), momentum_(momentum), m_(Vec::Zero(dim)) {}
  std::string Name() const override { return "momentum"; }
  void Step(ConstVecRef g, double scale, VecRef x) override;
  std::vector<std::pair<std::string, Vec*>> State() override { return {{"momentum", &m_}}; }

 private:
  double lr_, momentum_;
  Vec m_;
};

// adam (Kingma & Ba 2015): m <- b1 m + (1 - b1) g;  s <- b2 s + (1 - b2) g^2;
// x <- x - beta (m / (1 - b1^t)) / (sqrt(s / (1 - b2^t)) + eps), b1 = 0.9, b2 = 0.999,
// eps = 1e-8. Scale-free in g_hat: the step is about beta per coordinate, whatever the size of
// the hypergradient.
class AdamOuterOptimizer : public OuterOptimizer {
 public:
  AdamOuterOptimizer(double lr, Index dim)
      : lr_(lr), m_(Vec::Zero(dim)), s_(Vec::Zero(dim)), t_(Vec::Zero(1)) {}
  std::string Name() const override { return "adam"; }
  void Step(ConstVecRef g, double scale, VecRef x) override;
  std::vector<std::pair<std::string, Vec*>> State() override {
    return {{"adam_m", &m_}, {"adam_s", &s_}, {"adam_t", &t_}};
  }

 private:
  double lr_;
  Vec m_, s_, t_;  // t_: the step count, as a vector so that checkpoints keep it
};

const std::vector<std::string>& OuterOptimizerNames();
std::unique_ptr<OuterOptimizer> MakeOuterOptimizer(const SolverOptions& options, Index dim);

}  // namespace bilevel

#endif  // BILEVEL_OUTER_OPTIMIZER_H_
