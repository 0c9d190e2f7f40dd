#include "bilevel/algorithms/ttsa.h"

#include <cmath>

namespace bilevel {

double Ttsa::InnerStepAt(int k) const {
  return options().inner_lr * std::pow(static_cast<double>(k), -0.4);
}

double Ttsa::OuterStepScale(int k) const { return std::pow(static_cast<double>(k), -0.6); }

void Ttsa::HypergradientShare(ConstVecRef x, VecRef share) {
  InnerSteps(x, 1, options().batch_size, nullptr, InnerStepAt(iteration()));
  RandomNeumannShare(x, share);
}

}  // namespace bilevel
