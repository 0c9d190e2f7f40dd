#include "bilevel/algorithms/bsa.h"

#include <cmath>

namespace bilevel {

int Bsa::InnerStepsAt(int k) const {
  return static_cast<int>(std::ceil(options().inner_steps * std::sqrt(static_cast<double>(k))));
}

double Bsa::OuterStepScale(int k) const { return 1.0 / std::sqrt(static_cast<double>(k)); }

void Bsa::HypergradientShare(ConstVecRef x, VecRef share) {
  InnerSteps(x, InnerStepsAt(iteration()), options().batch_size, nullptr);
  RandomNeumannShare(x, share);
}

}  // namespace bilevel
