#include "problems/dense_products.h"

#include <algorithm>
#include <cstring>
#if defined(__AVX512F__)
#include <immintrin.h>
#endif
#include <type_traits>
#include <utility>

namespace bilevel::problems::dense {

namespace {

typedef double V8d __attribute__((vector_size(64)));
typedef float V8f __attribute__((vector_size(32)));

// Eight floats at p, converted to double.
inline V8d LoadFloats(const float* p) {
#if defined(__AVX512F__)
  // One instruction; GCC 12 splits the generic conversion into two halves and an insert.
  return reinterpret_cast<V8d>(_mm512_cvtps_pd(_mm256_loadu_ps(p)));
#else
  V8f f;
  std::memcpy(&f, p, sizeof f);
  return __builtin_convertvector(f, V8d);
#endif
}
inline V8d LoadDoubles(const double* p) {
  V8d v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline void StoreDoubles(double* p, V8d v) { std::memcpy(p, &v, sizeof v); }
// The sum of the eight lanes, as a tree.
inline double Sum(V8d v) {
  return ((v[0] + v[4]) + (v[2] + v[6])) + ((v[1] + v[5]) + (v[3] + v[7]));
}

constexpr int kClassBlock = 10;  // classes per register block

// Calls kernel(std::integral_constant<int, CB>()) for cb in 1..kClassBlock.
template <typename Kernel>
void WithBlock(Index cb, Kernel&& kernel) {
  switch (cb) {
    case 1: return kernel(std::integral_constant<int, 1>());
    case 2: return kernel(std::integral_constant<int, 2>());
    case 3: return kernel(std::integral_constant<int, 3>());
    case 4: return kernel(std::integral_constant<int, 4>());
    case 5: return kernel(std::integral_constant<int, 5>());
    case 6: return kernel(std::integral_constant<int, 6>());
    case 7: return kernel(std::integral_constant<int, 7>());
    case 8: return kernel(std::integral_constant<int, 8>());
    case 9: return kernel(std::integral_constant<int, 9>());
    default: return kernel(std::integral_constant<int, kClassBlock>());
  }
}

// z_r[0..CB) = the dot products of rows x[r] (r < kR) with the CB rows of wt: eight features
// at a time, and the last partial group of eight from zero-padded copies of the rows' tails
// (wt's pad columns are zero; a row may end at the end of its allocation).
// The accumulators are plain locals, never address-taken, so that they stay in registers.
// `next`: the rows of the next block, prefetched as these are read (rows of a minibatch are
// scattered over the shard, where the hardware prefetcher cannot follow them).
template <int kR, int CB>
void LogitsRows(const float* const* x, const float* const* next, Index d, const double* wt,
                Index ld, double* const* z) {
  V8d a[kR][CB];
  for (int r = 0; r < kR; ++r)
    for (int c = 0; c < CB; ++c) a[r][c] = V8d{};
  const Index d8 = d / 8 * 8;
  for (Index k = 0; k < d8; k += 8) {
    V8d p[kR];
    for (int r = 0; r < kR; ++r) p[r] = LoadFloats(x[r] + k);
    if (k % 16 == 0)
      for (int r = 0; r < kR; ++r) __builtin_prefetch(next[r] + k);
    for (int c = 0; c < CB; ++c) {
      const V8d w = LoadDoubles(wt + c * ld + k);
      for (int r = 0; r < kR; ++r) a[r][c] += p[r] * w;
    }
  }
  if (d8 < d) {
    for (int r = 0; r < kR; ++r) {
      float t[8] = {};
      std::copy(x[r] + d8, x[r] + d, t);
      const V8d p = LoadFloats(t);
      for (int c = 0; c < CB; ++c) a[r][c] += p * LoadDoubles(wt + c * ld + d8);
    }
  }
  for (int r = 0; r < kR; ++r)
    for (int c = 0; c < CB; ++c) z[r][c] = Sum(a[r][c]);
}

// gt's CB rows, columns [k, k + 8 * kV), += sum_i r[i][c] x[i][k..], for a whole block
// (k + 8 * kV <= d).
template <int CB, int kV>
void ProductBlock(const float* const* x, Index n, Index k, const double* r, Index c,
                  double* gt, Index ld) {
  V8d a[CB][kV];
  for (int j = 0; j < CB; ++j)
    for (int v = 0; v < kV; ++v) a[j][v] = V8d{};
  for (Index i = 0; i < n; ++i) {
    const float* xi = x[i] + k;
    V8d p[kV];
    for (int v = 0; v < kV; ++v) p[v] = LoadFloats(xi + 8 * v);
    const double* ri = r + i * c;
    for (int j = 0; j < CB; ++j) {
      const double s = ri[j];
      for (int v = 0; v < kV; ++v) a[j][v] += s * p[v];
    }
  }
  for (int j = 0; j < CB; ++j) {
    double* g = gt + j * ld + k;
    for (int v = 0; v < kV; ++v) StoreDoubles(g + 8 * v, LoadDoubles(g + 8 * v) + a[j][v]);
  }
}

// The last partial block, features [k, d) with d - k < 8: scalar.
void ProductTail(const float* const* x, Index n, Index d, Index k, const double* r, Index c,
                 Index cb, double* gt, Index ld) {
  for (Index j = 0; j < cb; ++j) {
    double* g = gt + j * ld;
    for (Index e = k; e < d; ++e) {
      double s = 0;
      for (Index i = 0; i < n; ++i) s += r[i * c + j] * static_cast<double>(x[i][e]);
      g[e] += s;
    }
  }
}

}  // namespace

void Transpose(const double* w, Index d, Index c, double* wt, Index ld) {
  for (Index j = 0; j < c; ++j) {
    double* row = wt + j * ld;
    for (Index k = 0; k < d; ++k) row[k] = w[k * c + j];
    std::fill(row + d, row + ld, 0.0);
  }
}

void AddTransposed(const double* gt, Index d, Index c, Index ld, double* w) {
  for (Index k = 0; k < d; ++k)
    for (Index j = 0; j < c; ++j) w[k * c + j] += gt[j * ld + k];
}

void Logits(const float* const* x, Index n, Index d, const double* wt, Index ld, Index c,
            double* z) {
  constexpr int kR = 2;  // rows per register block
  for (Index c0 = 0; c0 < c; c0 += kClassBlock) {
    const Index cb = std::min<Index>(kClassBlock, c - c0);
    WithBlock(cb, [&](auto block) {
      constexpr int CB = decltype(block)::value;
      double spare[kClassBlock];
      for (Index i = 0; i < n; i += kR) {
        // A last partial block repeats its last row; the extra results go to `spare`.
        const float* rows[kR];
        const float* next[kR];
        double* out[kR];
        for (int r = 0; r < kR; ++r) {
          const bool real = i + r < n;
          rows[r] = x[real ? i + r : n - 1];
          next[r] = x[std::min(i + kR + r, n - 1)];
          out[r] = real ? z + (i + r) * c + c0 : spare;
        }
        LogitsRows<kR, CB>(rows, next, d, wt + c0 * ld, ld, out);
      }
    });
  }
}

void AddTransposeProduct(const float* const* x, Index n, Index d, const double* r, Index c,
                         double* gt, Index ld) {
  for (Index c0 = 0; c0 < c; c0 += kClassBlock) {
    const Index cb = std::min<Index>(kClassBlock, c - c0);
    WithBlock(cb, [&](auto block) {
      constexpr int CB = decltype(block)::value;
      Index k = 0;
      for (; k + 16 <= d; k += 16) ProductBlock<CB, 2>(x, n, k, r + c0, c, gt + c0 * ld, ld);
      for (; k + 8 <= d; k += 8) ProductBlock<CB, 1>(x, n, k, r + c0, c, gt + c0 * ld, ld);
      if (k < d) ProductTail(x, n, d, k, r + c0, c, cb, gt + c0 * ld, ld);
    });
  }
}

}  // namespace bilevel::problems::dense
