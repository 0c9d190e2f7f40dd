// The dense float32 x double kernels (src/problems/dense_products.h) against plain loops, for
// shapes around their register blocks: feature counts below, at and past multiples of 8 and
// 16, class counts below, at and past the block of 10, odd and even row counts.
#include "problems/dense_products.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

namespace bilevel::problems::dense {
namespace {

struct Data {
  std::vector<float> x;          // n x d, row-major, allocated to the byte (no slack)
  std::vector<const float*> rows;
  std::vector<double> w;         // d x c
};

Data Make(Index n, Index d, Index c, unsigned seed) {
  Data data;
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> pixel(0.0f, 1.0f);
  std::normal_distribution<double> normal(0.0, 1.0);
  data.x.resize(n * d);
  for (float& v : data.x) v = pixel(gen);
  data.w.resize(d * c);
  for (double& v : data.w) v = normal(gen);
  // Rows in a shuffled order, as a minibatch reads them.
  for (Index i = 0; i < n; ++i) data.rows.push_back(data.x.data() + ((i * 7) % n) * d);
  return data;
}

TEST(DenseProducts, MatchPlainLoopsForEveryShape) {
  for (const Index n : {1, 2, 3, 64, 65}) {
    for (const Index d : {1, 7, 8, 9, 15, 16, 17, 31, 785}) {
      for (const Index c : {1, 2, 10, 11, 23}) {
        SCOPED_TRACE(testing::Message() << "n=" << n << " d=" << d << " c=" << c);
        Data data = Make(n, d, c, static_cast<unsigned>(n * 1000 + d * 10 + c));
        const Index ld = Padded(d);
        std::vector<double> wt(c * ld, -1.0);
        Transpose(data.w.data(), d, c, wt.data(), ld);
        for (Index j = 0; j < c; ++j)
          for (Index k = d; k < ld; ++k) ASSERT_EQ(wt[j * ld + k], 0.0);

        std::vector<double> z(n * c);
        Logits(data.rows.data(), n, d, wt.data(), ld, c, z.data());
        for (Index i = 0; i < n; ++i) {
          for (Index j = 0; j < c; ++j) {
            double expect = 0, scale = 0;
            for (Index k = 0; k < d; ++k) {
              expect += static_cast<double>(data.rows[i][k]) * data.w[k * c + j];
              scale += std::abs(static_cast<double>(data.rows[i][k]) * data.w[k * c + j]);
            }
            ASSERT_NEAR(z[i * c + j], expect, 1e-14 * scale + 1e-300) << "i=" << i << " j=" << j;
          }
        }

        // G = X^T R added to a G^T that already holds values; the pad columns stay as they are.
        std::vector<double> gt(c * ld, 0.5);
        AddTransposeProduct(data.rows.data(), n, d, z.data(), c, gt.data(), ld);
        std::vector<double> g(d * c, 0.25);
        AddTransposed(gt.data(), d, c, ld, g.data());
        for (Index j = 0; j < c; ++j) {
          for (Index k = d; k < ld; ++k) ASSERT_EQ(gt[j * ld + k], 0.5);
          for (Index k = 0; k < d; ++k) {
            double expect = 0.5, scale = 0.5;
            for (Index i = 0; i < n; ++i) {
              expect += z[i * c + j] * static_cast<double>(data.rows[i][k]);
              scale += std::abs(z[i * c + j] * static_cast<double>(data.rows[i][k]));
            }
            ASSERT_NEAR(gt[j * ld + k], expect, 1e-14 * scale) << "k=" << k << " j=" << j;
            ASSERT_NEAR(g[k * c + j], 0.25 + expect, 1e-14 * (scale + 0.25));
          }
        }
      }
    }
  }
}

TEST(DenseProducts, LogitsOfARowDoNotDependOnItsNeighbours) {
  // The sum for a row has a fixed order: the same row gives the same bits whether it is
  // paired with another row or alone (what makes a run's answer independent of sharding).
  const Index d = 785, c = 10;
  Data data = Make(5, d, c, 7);
  const Index ld = Padded(d);
  std::vector<double> wt(c * ld);
  Transpose(data.w.data(), d, c, wt.data(), ld);
  std::vector<double> all(5 * c), one(c);
  Logits(data.rows.data(), 5, d, wt.data(), ld, c, all.data());
  for (Index i = 0; i < 5; ++i) {
    Logits(data.rows.data() + i, 1, d, wt.data(), ld, c, one.data());
    for (Index j = 0; j < c; ++j) EXPECT_EQ(one[j], all[i * c + j]) << "row " << i;
  }
}

}  // namespace
}  // namespace bilevel::problems::dense
