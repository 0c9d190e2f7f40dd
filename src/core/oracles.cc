#include "bilevel/oracles.h"

namespace bilevel {

namespace {
inline double Inv(const MiniBatch& b) {
  return b.global_size() > 0 ? 1.0 / static_cast<double>(b.global_size()) : 0.0;
}
}  // namespace

double Oracles::ValueF(ConstVecRef x, ConstVecRef y, const MiniBatch& b) {
  counts_.value_f += b.global_size();
  return problem_->ValueF(x, y, b.local()) * Inv(b);
}

double Oracles::ValueG(ConstVecRef x, ConstVecRef y, const MiniBatch& b) {
  counts_.value_g += b.global_size();
  return problem_->ValueG(x, y, b.local()) * Inv(b);
}

void Oracles::GradXF(ConstVecRef x, ConstVecRef y, const MiniBatch& b, VecRef out) {
  counts_.grad_f += b.global_size();
  ++counts_.grad_f_calls;
  problem_->GradXF(x, y, b.local(), out);
  out *= Inv(b);
}

void Oracles::GradYF(ConstVecRef x, ConstVecRef y, const MiniBatch& b, VecRef out) {
  out *= GradYFSum(x, y, b, out);
}

void Oracles::GradYG(ConstVecRef x, ConstVecRef y, const MiniBatch& b, VecRef out) {
  out *= GradYGSum(x, y, b, out);
}

void Oracles::GradXG(ConstVecRef x, ConstVecRef y, const MiniBatch& b, VecRef out) {
  counts_.grad_g += b.global_size();
  ++counts_.grad_g_calls;
  problem_->GradXG(x, y, b.local(), out);
  out *= Inv(b);
}

void Oracles::HessianVec(ConstVecRef x, ConstVecRef y, ConstVecRef v, const MiniBatch& b,
                         VecRef out) {
  out *= HessianVecSum(x, y, v, b, out);
}

void Oracles::JacobianVec(ConstVecRef x, ConstVecRef y, ConstVecRef v, const MiniBatch& b,
                          VecRef out) {
  counts_.jvp += b.global_size();
  ++counts_.jvp_calls;
  problem_->JacobianVec(x, y, v, b.local(), out);
  out *= Inv(b);
}

void Oracles::JacobianVec(ConstVecRef x, ConstVecRef y, ConstVecRef v, const MiniBatch& b,
                          const std::vector<Index>& blocks, VecRef out) {
  counts_.jvp += b.global_size();
  ++counts_.jvp_calls;
  problem_->JacobianVecOnBlocks(x, y, v, b.local(), blocks, out);
  out *= Inv(b);
}

namespace {
// Sets the problem's sample_diagonal_omitted() and touched_blocks_only() for one call.
class CallMode {
 public:
  CallMode(Problem* problem, bool omit, bool touched) : problem_(problem) {
    problem_->set_sample_diagonal_omitted(omit);
    problem_->set_touched_blocks_only(touched);
  }
  ~CallMode() {
    problem_->set_sample_diagonal_omitted(false);
    problem_->set_touched_blocks_only(false);
  }
  CallMode(const CallMode&) = delete;
  CallMode& operator=(const CallMode&) = delete;

 private:
  Problem* problem_;
};
}  // namespace

double Oracles::SumScale(const MiniBatch& b) { return Inv(b); }

double Oracles::GradYFSum(ConstVecRef x, ConstVecRef y, const MiniBatch& b, VecRef out,
                          bool touched_only) {
  counts_.grad_f += b.global_size();
  ++counts_.grad_f_calls;
  CallMode mode(problem_, false, touched_only);
  problem_->GradYF(x, y, b.local(), out);
  return Inv(b);
}

double Oracles::GradYGSum(ConstVecRef x, ConstVecRef y, const MiniBatch& b, VecRef out,
                          bool omit_diagonal, bool touched_only) {
  counts_.grad_g += b.global_size();
  ++counts_.grad_g_calls;
  CallMode mode(problem_, omit_diagonal, touched_only);
  problem_->GradYG(x, y, b.local(), out);
  return Inv(b);
}

double Oracles::HessianVecSum(ConstVecRef x, ConstVecRef y, ConstVecRef v, const MiniBatch& b,
                              VecRef out, bool omit_diagonal, bool touched_only) {
  counts_.hvp += b.global_size();
  ++counts_.hvp_calls;
  CallMode mode(problem_, omit_diagonal, touched_only);
  problem_->HessianVec(x, y, v, b.local(), out);
  return Inv(b);
}

double Oracles::ColumnFactors(ConstVecRef x, ConstVecRef y, const double* v, const MiniBatch& b,
                              double* r) {
  if (v) {
    counts_.hvp += b.global_size();
    ++counts_.hvp_calls;
  } else {
    counts_.grad_g += b.global_size();
    ++counts_.grad_g_calls;
  }
  problem_->ColumnFactors(x, y, v, r);
  return Inv(b);
}

}  // namespace bilevel
