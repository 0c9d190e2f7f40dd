// The hypergradient estimators. Each algorithm lives in algorithms/<name>.h with its
// equations; this header holds their common base and the factory.
#ifndef BILEVEL_ALGORITHM_H_
#define BILEVEL_ALGORITHM_H_

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "bilevel/communicator.h"
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

  // The inner iterate y: after HypergradientShare(x), the y at which g_hat was formed.
  const Vec& y() const { return y_; }

  // Every vector of the algorithm's state (y, warm starts, memories), by name.
  virtual std::vector<std::pair<std::string, Vec*>> State() { return {{"y", &y_}}; }

 protected:
  // T warm-started steps y <- y - alpha grad_y g(x, y), on the full inner split
  // (`batch_size` <= 0) or on a fresh minibatch of `batch_size` samples each step. One
  // allreduce of q doubles per step. When `trajectory` is given, it receives y^0..y^{T-1}
  // (column t = y^t).
  void InnerSteps(ConstVecRef x, int steps, Index batch_size, Eigen::MatrixXd* trajectory);

  Oracles& oracles() { return *context_.oracles; }
  Communicator& comm() { return *context_.comm; }
  Sampler& sampler() { return *context_.sampler; }
  const SolverOptions& options() const { return *context_.options; }
  Index p() const { return p_; }
  Index q() const { return q_; }

  AlgorithmContext context_;
  Index p_, q_;
  Vec y_;
  Vec grad_y_;          // scratch, q
  MiniBatch full_inner_;
  MiniBatch full_outer_;
  MiniBatch batch_;     // scratch minibatch
};

// Names accepted by MakeAlgorithm (and --algorithm).
const std::vector<std::string>& AlgorithmNames();
// Throws std::invalid_argument for an unknown name.
std::unique_ptr<Algorithm> MakeAlgorithm(const std::string& name, const AlgorithmContext& context);

}  // namespace bilevel

#endif  // BILEVEL_ALGORITHM_H_
