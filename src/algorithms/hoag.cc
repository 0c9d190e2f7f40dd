#include "bilevel/algorithms/hoag.h"

namespace bilevel {

double Hoag::CgTolerance() const {
  const double k = iteration();
  return 0.1 / (k * k);
}

}  // namespace bilevel
