// The engine's side of the oracles: calls a problem's oracles on this rank's part of a
// minibatch, scales the local sums by 1/(global batch size) and counts every call.
#ifndef BILEVEL_ORACLES_H_
#define BILEVEL_ORACLES_H_

#include <cstdint>
#include <vector>

#include "bilevel/problem.h"
#include "bilevel/sampler.h"

namespace bilevel {

// Oracle work so far: samples evaluated (over all ranks; a batch of b adds b) and calls.
struct OracleCounts {
  std::int64_t grad_f = 0, grad_f_calls = 0;  // grad_x F and grad_y F   (Gc(f))
  std::int64_t grad_g = 0, grad_g_calls = 0;  // grad_y G and grad_x G   (Gc(g))
  std::int64_t hvp = 0, hvp_calls = 0;        // H v                     (HV(g))
  std::int64_t jvp = 0, jvp_calls = 0;        // J v                     (JV(g))
  std::int64_t value_f = 0, value_g = 0;      // F and G values
};

// Every method writes this rank's SHARE of the global mean over the minibatch: the local sum
// divided by the global batch size. Summing the shares over ranks (one allreduce) gives the
// minibatch mean. No communication happens here.
class Oracles {
 public:
  explicit Oracles(Problem* problem) : problem_(problem) {}

  Problem& problem() { return *problem_; }
  const Problem& problem() const { return *problem_; }

  // The factor the *Sum oracles below return for `b`: 1 / (global batch size).
  static double SumScale(const MiniBatch& b);

  double ValueF(ConstVecRef x, ConstVecRef y, const MiniBatch& b);
  double ValueG(ConstVecRef x, ConstVecRef y, const MiniBatch& b);
  void GradXF(ConstVecRef x, ConstVecRef y, const MiniBatch& b, VecRef out);
  void GradYF(ConstVecRef x, ConstVecRef y, const MiniBatch& b, VecRef out);
  void GradYG(ConstVecRef x, ConstVecRef y, const MiniBatch& b, VecRef out);
  void GradXG(ConstVecRef x, ConstVecRef y, const MiniBatch& b, VecRef out);
  void HessianVec(ConstVecRef x, ConstVecRef y, ConstVecRef v, const MiniBatch& b, VecRef out);
  void JacobianVec(ConstVecRef x, ConstVecRef y, ConstVecRef v, const MiniBatch& b, VecRef out);
  // The same for a v that is zero off `blocks` (Problem::JacobianVecOnBlocks).
  void JacobianVec(ConstVecRef x, ConstVecRef y, ConstVecRef v, const MiniBatch& b,
                   const std::vector<Index>& blocks, VecRef out);
  // The same as GradYF, GradYG and HessianVec but leaving `out` the local SUM: they return
  // the factor 1/(global batch size) that makes it the share, for callers that apply it later
  // to their own slice only (Algorithm's sliced updates), saving a pass over q doubles.
  // With `omit_diagonal` (the problem declares one: Problem::HasSampleDiagonal) the sum leaves
  // the sample-independent diagonal term out; the caller adds it (AddSampleDiagonal). With
  // `touched_only` (the problem declares blocks: Problem::BlockSize) only the blocks the batch
  // touches are written (Problem::TouchedBlocks), the rest of `out` is left as it was.
  double GradYFSum(ConstVecRef x, ConstVecRef y, const MiniBatch& b, VecRef out,
                   bool touched_only = false);
  double GradYGSum(ConstVecRef x, ConstVecRef y, const MiniBatch& b, VecRef out,
                   bool omit_diagonal = false, bool touched_only = false);
  double HessianVecSum(ConstVecRef x, ConstVecRef y, ConstVecRef v, const MiniBatch& b,
                       VecRef out, bool omit_diagonal = false, bool touched_only = false);
  // The rows of R of the full-batch (b.full()) grad_y G_0 (v null) or grad^2_yy G_0 v by
  // columns (Problem::ColumnFactors), counted as that oracle; returns 1 / (global batch size).
  double ColumnFactors(ConstVecRef x, ConstVecRef y, const double* v, const MiniBatch& b,
                       double* r);

  const OracleCounts& counts() const { return counts_; }
  void set_counts(const OracleCounts& c) { counts_ = c; }

 private:
  Problem* problem_;
  OracleCounts counts_;
};

}  // namespace bilevel

#endif  // BILEVEL_ORACLES_H_
