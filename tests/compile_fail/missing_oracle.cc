// Compiled (never linked) by problem_check_test.cmake: a complete problem class, from which
// -DBILEVEL_OMIT_<member> removes one member. With a member removed, BILEVEL_PROBLEM must stop
// the compilation with an error naming it; with none removed the file must compile.
#include "bilevel/problem.h"

namespace user {

using bilevel::Batch;
using bilevel::ConstVecRef;
using bilevel::Index;
using bilevel::Split;
using bilevel::VecRef;

class MyProblem : public bilevel::Problem {
 public:
#ifndef BILEVEL_OMIT_Name
  std::string Name() const override { return "mine"; }
#endif
#ifndef BILEVEL_OMIT_DimOuter
  Index DimOuter() const override { return 2; }
#endif
#ifndef BILEVEL_OMIT_DimInner
  Index DimInner() const override { return 3; }
#endif
#ifndef BILEVEL_OMIT_NumSamples
  Index NumSamples(Split) const override { return 10; }
#endif
#ifndef BILEVEL_OMIT_LocalShard
  bilevel::Shard LocalShard(Split) const override { return {0, 10}; }
#endif
#ifndef BILEVEL_OMIT_ValueF
  double ValueF(ConstVecRef, ConstVecRef, const Batch&) override { return 0; }
#endif
#ifndef BILEVEL_OMIT_ValueG
  double ValueG(ConstVecRef, ConstVecRef, const Batch&) override { return 0; }
#endif
#ifndef BILEVEL_OMIT_GradXF
  void GradXF(ConstVecRef, ConstVecRef, const Batch&, VecRef out) override { out.setZero(); }
#endif
#ifndef BILEVEL_OMIT_GradYF
  void GradYF(ConstVecRef, ConstVecRef, const Batch&, VecRef out) override { out.setZero(); }
#endif
#ifndef BILEVEL_OMIT_GradYG
  void GradYG(ConstVecRef, ConstVecRef, const Batch&, VecRef out) override { out.setZero(); }
#endif
#ifndef BILEVEL_OMIT_GradXG
  void GradXG(ConstVecRef, ConstVecRef, const Batch&, VecRef out) override { out.setZero(); }
#endif
#ifndef BILEVEL_OMIT_HessianVec
  void HessianVec(ConstVecRef, ConstVecRef, ConstVecRef, const Batch&, VecRef out) override {
    out.setZero();
  }
#else
  // A near miss does not count: the wrong constness hides Problem's member without overriding.
  void HessianVec(ConstVecRef, ConstVecRef, ConstVecRef, const Batch&, VecRef out) const {
    out.setZero();
  }
#endif
#ifndef BILEVEL_OMIT_JacobianVec
  void JacobianVec(ConstVecRef, ConstVecRef, ConstVecRef, const Batch&, VecRef out) override {
    out.setZero();
  }
#endif
};

}  // namespace user

BILEVEL_PROBLEM(user::MyProblem);
