// Kernels over rows of C doubles (one class each) are compiled for the common class counts, so
// that a row is a few whole vector registers; kC = 0 is the generic version for any C.
#ifndef BILEVEL_SRC_PROBLEMS_WITH_CLASSES_H_
#define BILEVEL_SRC_PROBLEMS_WITH_CLASSES_H_

#include <type_traits>

#include "bilevel/types.h"

namespace bilevel::problems {

// Calls kernel(std::integral_constant<int, kC>()) with kC = c for c in {2, 10, 20}, else 0.
template <typename Kernel>
void WithClasses(Index c, Kernel&& kernel) {
  switch (c) {
    case 2: return kernel(std::integral_constant<int, 2>());
    case 10: return kernel(std::integral_constant<int, 10>());
    case 20: return kernel(std::integral_constant<int, 20>());
    default: return kernel(std::integral_constant<int, 0>());
  }
}

}  // namespace bilevel::problems

#endif  // BILEVEL_SRC_PROBLEMS_WITH_CLASSES_H_
