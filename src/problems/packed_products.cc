#include "problems/packed_products.h"

#include <algorithm>
#include <cstring>

#include "problems/with_classes.h"

namespace bilevel::problems::packed {

namespace {

using problems::WithClasses;

// The largest C that the fixed-size accumulators of the generic version hold; beyond it the
// generic version goes class block by class block.
constexpr int kMaxBlock = 32;

typedef double V8d __attribute__((vector_size(64)));
typedef double V4d __attribute__((vector_size(32)));
typedef double V2d __attribute__((vector_size(16)));

template <typename V>
inline V Load(const double* p) {
  V v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
template <typename V>
inline void Store(double* p, V v) {
  std::memcpy(p, &v, sizeof v);
}

// kC doubles held in registers (GCC/Clang vector extensions): whole groups of 8, then 4, 2, 1,
// so that C = 10 is one AVX-512 register and a pair (kC > 0; other C go through the scalar
// versions below).
template <int kC>
struct Lanes {
  static constexpr int k8 = kC / 8, k4 = kC % 8 / 4, k2 = kC % 4 / 2, k1 = kC % 2;
  V8d a8[k8 > 0 ? k8 : 1];
  V4d a4;
  V2d a2;
  double a1;

  void Zero() {
    for (int i = 0; i < k8; ++i) a8[i] = V8d{};
    a4 = V4d{};
    a2 = V2d{};
    a1 = 0;
  }
  void Load(const double* p) {
    for (int i = 0; i < k8; ++i) a8[i] = packed::Load<V8d>(p + 8 * i);
    if (k4) a4 = packed::Load<V4d>(p + 8 * k8);
    if (k2) a2 = packed::Load<V2d>(p + 8 * k8 + 4 * k4);
    if (k1) a1 = p[kC - 1];
  }
  void Store(double* p) const {
    for (int i = 0; i < k8; ++i) packed::Store(p + 8 * i, a8[i]);
    if (k4) packed::Store(p + 8 * k8, a4);
    if (k2) packed::Store(p + 8 * k8 + 4 * k4, a2);
    if (k1) p[kC - 1] = a1;
  }
  // this += s * p[0..kC)
  void Fma(double s, const double* p) {
    for (int i = 0; i < k8; ++i) a8[i] += s * packed::Load<V8d>(p + 8 * i);
    if (k4) a4 += s * packed::Load<V4d>(p + 8 * k8);
    if (k2) a2 += s * packed::Load<V2d>(p + 8 * k8 + 4 * k4);
    if (k1) a1 += s * p[kC - 1];
  }
  void Add(const Lanes& o) {
    for (int i = 0; i < k8; ++i) a8[i] += o.a8[i];
    a4 += o.a4;
    a2 += o.a2;
    a1 += o.a1;
  }
  // p[0..kC) += s * this
  void FmaInto(double s, double* p) const {
    for (int i = 0; i < k8; ++i) packed::Store(p + 8 * i, packed::Load<V8d>(p + 8 * i) + s * a8[i]);
    if (k4) packed::Store(p + 8 * k8, packed::Load<V4d>(p + 8 * k8) + s * a4);
    if (k2) packed::Store(p + 8 * k8 + 4 * k4, packed::Load<V2d>(p + 8 * k8 + 4 * k4) + s * a2);
    if (k1) p[kC - 1] += s * a1;
  }
};

// z[0..kC) = sum over the entries [begin, end) of value * w[index * ld + 0..kC), in four
// accumulators (entries k, k + 1, k + 2, k + 3), added as (a0 + a1) + (a2 + a3).
template <int kC>
inline void RowLogits(const std::int32_t* __restrict index, const float* __restrict value,
                      std::int64_t begin, std::int64_t end, const double* __restrict w,
                      Index ld, double* __restrict z) {
  Lanes<kC> a0, a1, a2, a3;
  a0.Zero(), a1.Zero(), a2.Zero(), a3.Zero();
  std::int64_t k = begin;
  for (; k + 4 <= end; k += 4) {
    a0.Fma(value[k], w + index[k] * ld);
    a1.Fma(value[k + 1], w + index[k + 1] * ld);
    a2.Fma(value[k + 2], w + index[k + 2] * ld);
    a3.Fma(value[k + 3], w + index[k + 3] * ld);
  }
  for (; k < end; ++k) a0.Fma(value[k], w + index[k] * ld);
  a0.Add(a1);
  a2.Add(a3);
  a0.Add(a2);
  a0.Store(z);
}

// g[index * ld + 0..kC) += value * r[0..kC) for the entries [begin, end).
template <int kC>
inline void RowProduct(const std::int32_t* __restrict index, const float* __restrict value,
                       std::int64_t begin, std::int64_t end, const double* __restrict r_in,
                       Index ld, double* __restrict g) {
  Lanes<kC> r;
  r.Load(r_in);
  for (std::int64_t k = begin; k < end; ++k) r.FmaInto(value[k], g + index[k] * ld);
}

// The same for any n <= kMaxBlock classes, in scalars.
inline void RowLogitsAny(const std::int32_t* index, const float* value, std::int64_t begin,
                         std::int64_t end, const double* w, Index ld, Index n, double* z) {
  double a0[kMaxBlock], a1[kMaxBlock], a2[kMaxBlock], a3[kMaxBlock];
  for (Index j = 0; j < n; ++j) a0[j] = a1[j] = a2[j] = a3[j] = 0.0;
  std::int64_t k = begin;
  for (; k + 4 <= end; k += 4) {
    const double* w0 = w + index[k] * ld;
    const double* w1 = w + index[k + 1] * ld;
    const double* w2 = w + index[k + 2] * ld;
    const double* w3 = w + index[k + 3] * ld;
    for (Index j = 0; j < n; ++j) {
      a0[j] += value[k] * w0[j];
      a1[j] += value[k + 1] * w1[j];
      a2[j] += value[k + 2] * w2[j];
      a3[j] += value[k + 3] * w3[j];
    }
  }
  for (; k < end; ++k)
    for (Index j = 0; j < n; ++j) a0[j] += value[k] * w[index[k] * ld + j];
  for (Index j = 0; j < n; ++j) z[j] = (a0[j] + a1[j]) + (a2[j] + a3[j]);
}
inline void RowProductAny(const std::int32_t* index, const float* value, std::int64_t begin,
                          std::int64_t end, const double* r, Index ld, Index n, double* g) {
  for (std::int64_t k = begin; k < end; ++k) {
    double* gk = g + index[k] * ld;
    for (Index j = 0; j < n; ++j) gk[j] += value[k] * r[j];
  }
}

// Requests the cache lines of a row's entries (16 indices or values per line): the rows of a
// minibatch lie anywhere in the shard, where the hardware prefetcher cannot follow them.
inline void PrefetchRow(const PackedRows& x, Index row) {
  const std::int64_t begin = x.ptr[row], end = x.ptr[row + 1];
  for (std::int64_t k = begin; k < end; k += 16) {
    __builtin_prefetch(x.index.data() + k);
    __builtin_prefetch(x.value.data() + k);
  }
}

// Rows prefetched ahead of the one being read.
constexpr Index kPrefetchRows = 2;

}  // namespace

PackedRows Pack(const float* x, Index n, Index d) {
  const Index nonzeros =
      static_cast<Index>(std::count_if(x, x + n * d, [](float v) { return v != 0.0f; }));
  PackedRows p;
  p.ptr.reserve(n + 1);
  p.index.reserve(nonzeros);
  p.value.reserve(nonzeros);
  p.ptr.push_back(0);
  for (Index i = 0; i < n; ++i) {
    const float* xi = x + i * d;
    for (Index k = 0; k < d; ++k) {
      if (xi[k] != 0.0f) {
        p.index.push_back(static_cast<std::int32_t>(k));
        p.value.push_back(xi[k]);
      }
    }
    p.ptr.push_back(static_cast<std::int64_t>(p.index.size()));
  }
  return p;
}

void Logits(const PackedRows& x, const Index* rows, Index n, const double* w, Index ldw,
            Index c, double* z) {
  const std::int32_t* index = x.index.data();
  const float* value = x.value.data();
  WithClasses(c, [&](auto kc) {
    constexpr int kC = decltype(kc)::value;
    for (Index i = 0; i < n; ++i) {
      if (i + kPrefetchRows < n) PrefetchRow(x, rows[i + kPrefetchRows]);
      const std::int64_t begin = x.ptr[rows[i]], end = x.ptr[rows[i] + 1];
      if constexpr (kC > 0) {
        RowLogits<kC>(index, value, begin, end, w, ldw, z + i * c);
      } else {
        for (Index c0 = 0; c0 < c; c0 += kMaxBlock)
          RowLogitsAny(index, value, begin, end, w + c0, ldw, std::min<Index>(kMaxBlock, c - c0),
                       z + i * c + c0);
      }
    }
  });
}

void AddProduct(const PackedRows& x, const Index* rows, Index n, const double* r, Index c,
                double* g, Index ldg) {
  const std::int32_t* index = x.index.data();
  const float* value = x.value.data();
  WithClasses(c, [&](auto kc) {
    constexpr int kC = decltype(kc)::value;
    for (Index i = 0; i < n; ++i) {
      const std::int64_t begin = x.ptr[rows[i]], end = x.ptr[rows[i] + 1];
      if constexpr (kC > 0) {
        RowProduct<kC>(index, value, begin, end, r + i * c, ldg, g);
      } else {
        for (Index c0 = 0; c0 < c; c0 += kMaxBlock)
          RowProductAny(index, value, begin, end, r + i * c + c0, ldg,
                        std::min<Index>(kMaxBlock, c - c0), g + c0);
      }
    }
  });
}

}  // namespace bilevel::problems::packed
