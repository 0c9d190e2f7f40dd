// LazyBlocks: deferred diagonal steps give the dense recursion
//   u <- u - a (s o u + c h_t),  acc <- acc + u   (h_t zero outside the blocks step t touches)
// whatever blocks each step touches and whenever a block is brought up, with the diagonal s
// per block (Problem::SampleDiagonalOfBlocks, or AddSampleDiagonal constant in each block)
// or per entry.
#include "bilevel/block_sparse.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>

namespace bilevel {
namespace {

// Only the shapes and the sample diagonal matter to LazyBlocks; the oracles are never called.
class DiagonalOnly : public Problem {
 public:
  enum class Kind { kPerEntry, kConstantInBlocks, kDeclaredPerBlock };
  DiagonalOnly(Index blocks, Index block, Kind kind) : block_(block), kind_(kind) {
    std::mt19937 rng(4);
    std::uniform_real_distribution<double> u(0.1, 1.0);
    s_.resize(blocks * block);
    for (Index i = 0; i < s_.size(); ++i)
      s_[i] = kind == Kind::kPerEntry || i % block == 0 ? u(rng) : s_[i - 1];
  }
  std::string Name() const override { return "diagonal"; }
  Index DimOuter() const override { return 1; }
  Index DimInner() const override { return s_.size(); }
  Index NumSamples(Split) const override { return 1; }
  Shard LocalShard(Split) const override { return {0, 1}; }
  double ValueF(ConstVecRef, ConstVecRef, const Batch&) override { return 0; }
  double ValueG(ConstVecRef, ConstVecRef, const Batch&) override { return 0; }
  void GradXF(ConstVecRef, ConstVecRef, const Batch&, VecRef out) override { out.setZero(); }
  void GradYF(ConstVecRef, ConstVecRef, const Batch&, VecRef out) override { out.setZero(); }
  void GradYG(ConstVecRef, ConstVecRef, const Batch&, VecRef out) override { out.setZero(); }
  void GradXG(ConstVecRef, ConstVecRef, const Batch&, VecRef out) override { out.setZero(); }
  void HessianVec(ConstVecRef, ConstVecRef, ConstVecRef, const Batch&, VecRef out) override {
    out.setZero();
  }
  void JacobianVec(ConstVecRef, ConstVecRef, ConstVecRef, const Batch&, VecRef out) override {
    out.setZero();
  }
  bool HasSampleDiagonal() const override { return true; }
  void AddSampleDiagonal(ConstVecRef x, Index lo, ConstVecRef m, VecRef out) const override {
    out += x[0] * s_.segment(lo, m.size()).cwiseProduct(m);
  }
  Index BlockSize() const override { return block_; }
  bool SampleDiagonalOfBlocks(ConstVecRef x, VecRef s) const override {
    if (kind_ != Kind::kDeclaredPerBlock) return false;
    for (Index b = 0; b < s.size(); ++b) s[b] = x[0] * s_[b * block_];
    return true;
  }
  const Vec& s() const { return s_; }

 private:
  Index block_;
  Kind kind_;
  Vec s_;
};

// T steps on random subsets of the blocks, lazily and densely; `acc` with the accumulator
// (the Neumann series) and `zero` from zero vectors (stocBiO's r and v) or from u0.
void ExpectTheDenseRecursion(DiagonalOnly::Kind kind, bool acc, bool zero, int seed) {
  const Index blocks = 9, block = 3, q = blocks * block;
  DiagonalOnly problem(blocks, block, kind);
  const Vec x = Vec::Constant(1, 0.7);
  const double a = 0.8, c = 0.25;
  const int steps = 7;
  std::mt19937 rng(seed);
  std::normal_distribution<double> normal;
  Vec u0(q);
  for (Index i = 0; i < q; ++i) u0[i] = zero ? 0.0 : normal(rng);
  Vec u_dense = u0, acc_dense = u0, u_lazy = u0, acc_lazy = u0;
  if (zero) u_lazy.setConstant(NAN), acc_lazy.setConstant(NAN);  // unwritten: never read
  LazyBlocks lazy;
  lazy.Start(problem, x, a, block, zero);
  std::vector<bool> ever(blocks, false);
  for (int t = 0; t < steps; ++t) {
    std::vector<Index> touched;
    for (Index b = 0; b < blocks; ++b)
      if (rng() % 3 == 0) touched.push_back(b), ever[b] = true;
    Vec h = Vec::Zero(q);
    for (const Index b : touched)
      for (Index j = 0; j < block; ++j) h[b * block + j] = normal(rng);
    // Dense: every entry, every step.
    u_dense -= a * (x[0] * problem.s().cwiseProduct(u_dense) + c * h);
    acc_dense += u_dense;
    // Lazy: only the touched blocks, half of them brought up before their update.
    for (std::size_t k = 0; k < touched.size(); k += 2)
      lazy.CatchUp(touched[k], t, u_lazy.data(), acc ? acc_lazy.data() : nullptr);
    for (const Index b : touched) {
      lazy.CatchUp(b, t, u_lazy.data(), acc ? acc_lazy.data() : nullptr);
      lazy.Update(b, t, a * c, h.data() + b * block, u_lazy.data(),
                  acc ? acc_lazy.data() : nullptr);
    }
  }
  const std::string what = "kind " + std::to_string(static_cast<int>(kind)) +
                           (acc ? ", with acc" : "") + (zero ? ", from zero" : "");
  // The end of stocBiO's series: FinishSeries scales acc on the touched blocks only, with
  // the bits of CatchUpAll and a scaling, and lists them.
  LazyBlocks finish = lazy;
  Vec u_finish = u_lazy, acc_finish = acc_lazy;
  std::vector<Index> live;
  if (acc && zero) finish.FinishSeries(steps, 0.6, u_finish.data(), acc_finish.data(), &live);
  lazy.CatchUpAll(steps, u_lazy.data(), acc ? acc_lazy.data() : nullptr);
  if (acc && zero) {
    std::vector<Index> expected;
    for (Index b = 0; b < blocks; ++b) {
      if (ever[b]) expected.push_back(b);
      for (Index j = b * block; j < (b + 1) * block; ++j) {
        if (ever[b]) {
          EXPECT_EQ(acc_finish[j], 0.6 * acc_lazy[j]) << what << ", entry " << j;
        } else {
          EXPECT_TRUE(std::isnan(acc_finish[j])) << what << ": untouched entry " << j
                                                  << " was written";
        }
      }
    }
    EXPECT_EQ(live, expected) << what;
  }
  ASSERT_GT(u_dense.norm(), 0) << what;
  EXPECT_LT((u_lazy - u_dense).norm(), 1e-14 * u_dense.norm()) << what;
  if (acc) EXPECT_LT((acc_lazy - acc_dense).norm(), 1e-14 * acc_dense.norm()) << what;
}

TEST(LazyBlocks, DeferredStepsGiveTheDenseRecursion) {
  using Kind = DiagonalOnly::Kind;
  int seed = 1;
  for (const Kind kind : {Kind::kPerEntry, Kind::kConstantInBlocks, Kind::kDeclaredPerBlock})
    for (const bool acc : {false, true})
      for (const bool zero : {false, true}) ExpectTheDenseRecursion(kind, acc, zero, seed++);
}

// Blocks brought up step by step and at once agree (bit for bit with s per entry, whose steps
// are applied one by one either way).
TEST(LazyBlocks, BringingUpStepByStepOrAtOnceAgrees) {
  using Kind = DiagonalOnly::Kind;
  for (const Kind kind : {Kind::kPerEntry, Kind::kDeclaredPerBlock}) {
    const Index block = 3;
    DiagonalOnly problem(4, block, kind);
    const Vec x = Vec::Constant(1, 0.7);
    Vec once = Vec::LinSpaced(12, -1, 2), pieces = once, acc_once = once, acc_pieces = once;
    LazyBlocks a, b;
    a.Start(problem, x, 0.3, block, false);
    b.Start(problem, x, 0.3, block, false);
    a.CatchUpAll(6, once.data(), acc_once.data());
    for (int t = 1; t <= 6; ++t)
      for (Index k = 0; k < 4; ++k) b.CatchUp(k, t, pieces.data(), acc_pieces.data());
    if (kind == Kind::kPerEntry) {
      EXPECT_EQ(once, pieces);
      EXPECT_EQ(acc_once, acc_pieces);
    } else {
      EXPECT_LT((once - pieces).norm(), 1e-14 * once.norm());
      EXPECT_LT((acc_once - acc_pieces).norm(), 1e-14 * acc_once.norm());
    }
  }
}

}  // namespace
}  // namespace bilevel
