// The packed-row kernels (src/problems/packed_products.h) against plain loops over the dense
// rows they came from: class counts with compiled kernels (2, 10, 20) and without (1, 3, 33,
// past the generic version's block of 32), rows with no nonzero at all, rows taken in a
// shuffled order and twice, and a row stride wider than C.
#include "problems/packed_products.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

namespace bilevel::problems::packed {
namespace {

// n x d floats, each nonzero with probability `density`; row 1 all zeros.
std::vector<float> SparseRows(Index n, Index d, double density, unsigned seed) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> pixel(0.0f, 1.0f);
  std::vector<float> x(n * d, 0.0f);
  for (Index i = 0; i < n; ++i)
    for (Index k = 0; k < d; ++k)
      if (i != 1 && pixel(gen) < density) x[i * d + k] = pixel(gen) + 0.01f;
  return x;
}

std::vector<double> Normal(Index size, unsigned seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<double> normal(0.0, 1.0);
  std::vector<double> v(size);
  for (double& e : v) e = normal(gen);
  return v;
}

TEST(PackedProducts, PackKeepsEveryNonzeroInOrder) {
  const Index n = 6, d = 37;
  const std::vector<float> x = SparseRows(n, d, 0.2, 1);
  const PackedRows p = Pack(x.data(), n, d);
  ASSERT_EQ(p.ptr.size(), static_cast<std::size_t>(n + 1));
  EXPECT_EQ(p.ptr[1], p.ptr[2]);  // the empty row
  std::vector<float> back(n * d, 0.0f);
  for (Index i = 0; i < n; ++i) {
    for (std::int64_t e = p.ptr[i]; e < p.ptr[i + 1]; ++e) {
      if (e > p.ptr[i]) EXPECT_LT(p.index[e - 1], p.index[e]);
      EXPECT_NE(p.value[e], 0.0f);
      back[i * d + p.index[e]] = p.value[e];
    }
  }
  EXPECT_EQ(back, x);
}

TEST(PackedProducts, MatchPlainLoops) {
  for (const Index c : {1, 2, 3, 10, 20, 33}) {
    for (const Index d : {1, 7, 785}) {
      for (const double density : {0.05, 0.2, 1.0}) {
        SCOPED_TRACE(testing::Message() << "c=" << c << " d=" << d << " density=" << density);
        const Index n = 9, ld = c + 3;
        const unsigned seed = static_cast<unsigned>(c * 1000 + d);
        const std::vector<float> x = SparseRows(n, d, density, seed);
        const PackedRows p = Pack(x.data(), n, d);
        // Rows in a shuffled order, row 4 twice, the empty row 1 included.
        const std::vector<Index> rows = {4, 0, 8, 1, 4, 7, 2};
        const Index b = static_cast<Index>(rows.size());
        std::vector<double> w = Normal(d * ld, seed + 1);  // stride ld: the pad is read by no one

        std::vector<double> z(b * c, -7.0);
        Logits(p, rows.data(), b, w.data(), ld, c, z.data());
        for (Index i = 0; i < b; ++i) {
          for (Index j = 0; j < c; ++j) {
            double expect = 0, scale = 0;
            for (Index k = 0; k < d; ++k) {
              const double t = static_cast<double>(x[rows[i] * d + k]) * w[k * ld + j];
              expect += t;
              scale += std::abs(t);
            }
            ASSERT_NEAR(z[i * c + j], expect, 1e-14 * scale) << "i=" << i << " j=" << j;
          }
        }

        // G (stride ld, holding values) += X^T R; the pad columns stay as they were.
        const std::vector<double> r = Normal(b * c, seed + 2);
        std::vector<double> g(d * ld, 0.5);
        AddProduct(p, rows.data(), b, r.data(), c, g.data(), ld);
        for (Index k = 0; k < d; ++k) {
          for (Index j = c; j < ld; ++j) ASSERT_EQ(g[k * ld + j], 0.5);
          for (Index j = 0; j < c; ++j) {
            double expect = 0.5, scale = 0.5;
            for (Index i = 0; i < b; ++i) {
              const double t = r[i * c + j] * static_cast<double>(x[rows[i] * d + k]);
              expect += t;
              scale += std::abs(t);
            }
            ASSERT_NEAR(g[k * ld + j], expect, 1e-14 * scale) << "k=" << k << " j=" << j;
          }
        }
      }
    }
  }
}

TEST(PackedProducts, LogitsOfARowDoNotDependOnItsNeighbours) {
  // A row's sum has a fixed order: alone or among others, the same bits (a run's answer
  // must not depend on how the rows are sharded or chunked).
  const Index n = 6, d = 785, c = 10;
  const std::vector<float> x = SparseRows(n, d, 0.2, 5);
  const PackedRows p = Pack(x.data(), n, d);
  const std::vector<double> w = Normal(d * c, 6);
  const std::vector<Index> rows = {0, 1, 2, 3, 4, 5};
  std::vector<double> all(n * c), one(c);
  Logits(p, rows.data(), n, w.data(), c, c, all.data());
  for (Index i = 0; i < n; ++i) {
    Logits(p, rows.data() + i, 1, w.data(), c, c, one.data());
    for (Index j = 0; j < c; ++j) EXPECT_EQ(one[j], all[i * c + j]) << "row " << i;
  }
}

}  // namespace
}  // namespace bilevel::problems::packed
