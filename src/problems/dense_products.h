// The products of dense float32 rows with double weights that the softmax problems spend their
// time in, Z = X W and G += X^T R, for a narrow W (C = 10 classes on MNIST and Fashion-MNIST).
//
// A general matrix product is the wrong tool at this shape: converting the rows to double
// doubles the bytes each pass moves, and a GEMM blocked for square matrices pads and packs a
// 10-column operand. These kernels read the float32 rows where they lie, convert eight values
// at a time in registers, and accumulate in double, with register blocks chosen for the narrow
// side:
// - Logits: two rows times a group of up to 10 classes, vectorized along the features, against
//   W transposed (C x ld, each class's weights contiguous), so that every lane of every
//   multiply-add does useful work for any C;
// - AddTransposeProduct: 16 features times a group of up to 10 classes, vectorized along the
//   features, summed over the rows in registers and added to G transposed once per block.
// Written with GCC/Clang vector extensions: 8 doubles are one AVX-512 register, two AVX2
// registers or four SSE2 ones, whichever the compiler targets.
//
// Each output element is a sum in a fixed order that depends only on the row (Logits) or on
// the rows given and their order (AddTransposeProduct): a run is reproducible bit for bit.
#ifndef BILEVEL_SRC_PROBLEMS_DENSE_PRODUCTS_H_
#define BILEVEL_SRC_PROBLEMS_DENSE_PRODUCTS_H_

#include "bilevel/types.h"

namespace bilevel::problems::dense {

// The leading dimension of a transposed weight matrix for d features: d rounded up to 8.
inline Index Padded(Index d) { return (d + 7) / 8 * 8; }

// wt (c x ld, row-major) = the first d rows of w (rows x c, row-major) transposed; the pad
// columns [d, ld) are zero.
void Transpose(const double* w, Index d, Index c, double* wt, Index ld);
// The inverse for an accumulated product: w's first d rows (row-major, c columns) += gt^T.
void AddTransposed(const double* gt, Index d, Index c, Index ld, double* w);

// z (n x c, row-major) = X wt^T, where row i of X is the d floats at x[i].
void Logits(const float* const* x, Index n, Index d, const double* wt, Index ld, Index c,
            double* z);

// gt (c x ld, row-major) += R^T X, i.e. G^T for G = X^T R, with R = r (n x c, row-major).
// Columns [d, ld) of gt are not touched.
void AddTransposeProduct(const float* const* x, Index n, Index d, const double* r, Index c,
                         double* gt, Index ld);

}  // namespace bilevel::problems::dense

#endif  // BILEVEL_SRC_PROBLEMS_DENSE_PRODUCTS_H_
