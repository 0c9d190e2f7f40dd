// The products of the softmax problems for dense rows that are mostly zeros (MNIST's pixels:
// 19 % nonzero), kept as their nonzeros ("packed"), against a weight matrix narrow and short
// enough to stay in the core's cache (784 x 10 doubles: 63 KB).
//
// A dense pass spends ten multiply-adds per pixel and per product, zeros included; a packed one
// spends them on the nonzeros only, and reads 8 bytes per nonzero (index and value) instead of
// 4 per pixel. Row by row:
// - Logits: z_i = sum_k x_ik W[k, :], the row's entries taken four at a time into four
//   accumulators of C doubles (the multiply-adds of one accumulator wait on each other), W's
//   rows gathered from the cache;
// - AddProduct: G[k, :] += x_ik r_i for each entry, a scatter into G (in the cache).
// Each z_i is a sum in an order fixed by the row alone, and G's sums follow the rows given in
// their order: a run is reproducible bit for bit. Zeros are not multiplied: an inf or NaN in W
// reaches only the rows with an entry of its feature (dense rows: 0 x inf = NaN in all).
#ifndef BILEVEL_SRC_PROBLEMS_PACKED_PRODUCTS_H_
#define BILEVEL_SRC_PROBLEMS_PACKED_PRODUCTS_H_

#include <cstdint>
#include <vector>

#include "bilevel/types.h"

namespace bilevel::problems::packed {

// Dense rows kept as their nonzeros: row i's are entries [ptr[i], ptr[i + 1]) of index (the
// feature) and value, in increasing feature order.
struct PackedRows {
  std::vector<std::int64_t> ptr;
  std::vector<std::int32_t> index;
  std::vector<float> value;

  Index nonzeros() const { return static_cast<Index>(index.size()); }
};

// Packs the n rows of d floats at x (row-major).
PackedRows Pack(const float* x, Index n, Index d);

// z (n x c, row-major) = X W over rows[0..n) of x (local row numbers); W's row k (k < d: the
// bias is the caller's) is c doubles at w + k * ldw.
void Logits(const PackedRows& x, const Index* rows, Index n, const double* w, Index ldw,
            Index c, double* z);

// G += X^T R over rows[0..n) of x, R = r (n x c, row-major); G's row k is c doubles at
// g + k * ldg.
void AddProduct(const PackedRows& x, const Index* rows, Index n, const double* r, Index c,
                double* g, Index ldg);

}  // namespace bilevel::problems::packed

#endif  // BILEVEL_SRC_PROBLEMS_PACKED_PRODUCTS_H_
