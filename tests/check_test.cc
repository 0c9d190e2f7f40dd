// CheckOracles: the quadratic problem passes; a problem with one wrong oracle fails, and the
// report names that oracle and no other.
#include "bilevel/check.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "bilevel/problems/quadratic.h"
#include "test_rig.h"

namespace bilevel {
namespace {

using testing::SmallQuadratic;

Vec Random(Index n, int seed) {
  std::srand(seed);
  return Vec::Random(n);
}

// The quadratic problem with one oracle broken in a chosen way.
class Broken : public QuadraticProblem {
 public:
  enum Fault { kNone, kHessianScaled, kJacobianTransposed, kGradXGMissingTerm, kMeanNotSum,
               kAddsToOut, kGradYFNonzeroOnEmpty };
  explicit Broken(Fault fault, const QuadraticOptions& o = SmallQuadratic())
      : QuadraticProblem(o, 0, 1), fault_(fault) {}

  double ValueF(ConstVecRef x, ConstVecRef y, const Batch& batch) override {
    const double sum = QuadraticProblem::ValueF(x, y, batch);
    return fault_ == kMeanNotSum && !batch.empty() ? sum / batch.size() : sum;
  }
  void GradYF(ConstVecRef x, ConstVecRef y, const Batch& batch, VecRef out) override {
    QuadraticProblem::GradYF(x, y, batch, out);
    if (fault_ == kGradYFNonzeroOnEmpty && batch.empty()) out.setOnes();
  }
  void GradXG(ConstVecRef x, ConstVecRef y, const Batch& batch, VecRef out) override {
    QuadraticProblem::GradXG(x, y, batch, out);
    if (fault_ == kGradXGMissingTerm) out *= 0.999;
  }
  void HessianVec(ConstVecRef x, ConstVecRef y, ConstVecRef v, const Batch& batch,
                  VecRef out) override {
    if (fault_ == kAddsToOut) {
      Vec fresh(out.size());
      QuadraticProblem::HessianVec(x, y, v, batch, fresh);
      out += fresh;
      return;
    }
    QuadraticProblem::HessianVec(x, y, v, batch, out);
    if (fault_ == kHessianScaled) out *= 2;
  }
  void JacobianVec(ConstVecRef x, ConstVecRef y, ConstVecRef v, const Batch& batch,
                   VecRef out) override {
    QuadraticProblem::JacobianVec(x, y, v, batch, out);
    if (fault_ == kJacobianTransposed) out.reverseInPlace();
  }

 private:
  Fault fault_;
};

const OracleCheck& Find(const OracleCheckReport& r, const std::string& oracle) {
  for (const OracleCheck& c : r.checks)
    if (c.oracle == oracle) return c;
  throw std::out_of_range(oracle);
}

TEST(CheckOracles, TheQuadraticProblemPasses) {
  QuadraticProblem problem(SmallQuadratic(), 0, 1);
  const OracleCheckReport r = CheckOracles(problem, Random(6, 1), Random(8, 2));
  EXPECT_TRUE(r.passed) << r.ToString();
  ASSERT_EQ(r.checks.size(), 8u);
  const std::vector<std::string> order = {"ValueF", "ValueG",  "GradXF",     "GradYF",
                                          "GradYG", "GradXG", "HessianVec", "JacobianVec"};
  for (size_t i = 0; i < order.size(); ++i) {
    EXPECT_EQ(r.checks[i].oracle, order[i]);
    EXPECT_LT(r.checks[i].error, 1e-7) << r.checks[i].oracle;
  }
  EXPECT_EQ(r.batch_inner, 8);
  EXPECT_EQ(r.batch_outer, 8);
  EXPECT_TRUE(r.Failed().empty());
  EXPECT_NE(r.ToString().find("every oracle agrees"), std::string::npos);
}

TEST(CheckOracles, PassesOnEveryShardAndWithSampledCoordinates) {
  QuadraticOptions o = SmallQuadratic();
  o.dim_outer = 30;
  o.dim_inner = 40;
  o.samples = 50;
  for (int rank = 0; rank < 3; ++rank) {
    QuadraticProblem problem(o, rank, 3);
    CheckOptions options;
    options.max_coordinates = 5;
    options.batch_size = 100;  // more than the shard: the whole shard
    options.seed = 10 + rank;
    const OracleCheckReport r = CheckOracles(problem, Random(30, 3), Random(40, 4), options);
    EXPECT_TRUE(r.passed) << r.ToString();
    EXPECT_EQ(r.batch_inner, problem.LocalShard(Split::kInner).size());
    EXPECT_NE(r.ToString().find("5 of 40 coordinates"), std::string::npos) << r.ToString();
  }
}

TEST(CheckOracles, NamesExactlyTheWrongOracle) {
  const struct {
    Broken::Fault fault;
    const char* oracle;
    const char* note;  // expected in the report line, or ""
  } cases[] = {
      {Broken::kHessianScaled, "HessianVec", ""},
      {Broken::kJacobianTransposed, "JacobianVec", ""},
      {Broken::kGradXGMissingTerm, "GradXG", ""},
      {Broken::kMeanNotSum, "ValueF", ""},
      {Broken::kAddsToOut, "HessianVec", "does it add to `out`"},
      {Broken::kGradYFNonzeroOnEmpty, "GradYF", "not 0 on an empty batch"},
  };
  for (const auto& c : cases) {
    Broken problem(c.fault);
    const OracleCheckReport r = CheckOracles(problem, Random(6, 1), Random(8, 2));
    EXPECT_FALSE(r.passed) << c.oracle;
    const std::vector<std::string> failed = r.Failed();
    // A mean instead of a sum also breaks the differences of ValueF, hence GradXF and GradYF.
    if (c.fault == Broken::kMeanNotSum) {
      EXPECT_EQ(failed.front(), "ValueF") << r.ToString();
    } else {
      EXPECT_EQ(failed, std::vector<std::string>{c.oracle}) << r.ToString();
    }
    EXPECT_FALSE(Find(r, c.oracle).passed);
    EXPECT_NE(Find(r, c.oracle).note.find(c.note), std::string::npos) << r.ToString();
    const std::string text = r.ToString();
    EXPECT_NE(text.find("result: FAILED: " + failed.front()), std::string::npos) << text;
    EXPECT_NE(text.find(std::string(c.oracle) + " "), std::string::npos);
  }
}

TEST(CheckOracles, ToleranceDecidesSmallErrors) {
  Broken problem(Broken::kGradXGMissingTerm);  // a relative error of 1e-3
  CheckOptions loose;
  loose.tolerance = 1e-2;
  EXPECT_TRUE(CheckOracles(problem, Random(6, 1), Random(8, 2), loose).passed);
  const OracleCheckReport strict = CheckOracles(problem, Random(6, 1), Random(8, 2));
  EXPECT_NEAR(Find(strict, "GradXG").error, 1e-3, 1e-4);
}

TEST(CheckOracles, SkipsASplitWithoutLocalSamples) {
  QuadraticOptions o = SmallQuadratic();
  o.samples = 8;  // 9 ranks: the last holds nothing
  o.dim_inner = 8;
  QuadraticProblem problem(o, 8, 9);
  const OracleCheckReport r = CheckOracles(problem, Random(6, 1), Random(8, 2));
  EXPECT_TRUE(r.passed);
  EXPECT_EQ(r.batch_inner, 0);
  EXPECT_NE(Find(r, "HessianVec").note.find("skipped"), std::string::npos);
}

TEST(CheckOracles, RejectsPointsOfTheWrongSize) {
  QuadraticProblem problem(SmallQuadratic(), 0, 1);
  EXPECT_THROW(CheckOracles(problem, Random(5, 1), Random(8, 2)), std::invalid_argument);
  CheckOptions bad;
  bad.step = 0;
  EXPECT_THROW(CheckOracles(problem, Random(6, 1), Random(8, 2), bad), std::invalid_argument);
}

}  // namespace
}  // namespace bilevel
