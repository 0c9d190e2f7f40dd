// Basic types shared by every layer of bilevel.
#ifndef BILEVEL_TYPES_H_
#define BILEVEL_TYPES_H_

#include <Eigen/Core>
#include <cstdint>

namespace bilevel {

using Index = Eigen::Index;
using Vec = Eigen::VectorXd;
using VecRef = Eigen::Ref<Eigen::VectorXd>;
using ConstVecRef = Eigen::Ref<const Eigen::VectorXd>;

// The two data splits of a bilevel problem. The inner objective g averages over the
// kInner samples (training data); the outer objective f averages over the kOuter samples
// (validation data).
enum class Split { kInner = 0, kOuter = 1 };

inline const char* SplitName(Split s) { return s == Split::kInner ? "inner" : "outer"; }

}  // namespace bilevel

#endif  // BILEVEL_TYPES_H_
