// Iterative solvers for H v = b with a linear operator that exposes Apply(v, out) (out = H v).
// The distributed Hessian-vector product is the local one plus an allreduce, so these are
// written once for any number of ranks.
#ifndef BILEVEL_LINEAR_SOLVERS_H_
#define BILEVEL_LINEAR_SOLVERS_H_

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "bilevel/types.h"

namespace bilevel {

namespace internal {

// One sweep of CG's update: v += a p, r -= b hp (b = a, or a times the scale of an hp that
// was left unscaled), returning |r|^2 of the new r. On long vectors (the 1.6M doubles of l2reg
// on 20 Newsgroups) the passes over memory are the cost: this one reads 4 vectors and writes
// 2, where three separate updates read 5 and write 2. The norm keeps 8 partial sums (one
// vector register), so that the loop vectorizes without reordering what the source says.
inline double CgUpdate(double a, double b, ConstVecRef p, ConstVecRef hp, VecRef v, VecRef r) {
  const Index n = v.size();
  const double* __restrict pp = p.data();
  const double* __restrict hpp = hp.data();
  double* __restrict vp = v.data();
  double* __restrict rp = r.data();
  double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  Index i = 0;
  for (; i + 8 <= n; i += 8) {
    for (int j = 0; j < 8; ++j) {
      vp[i + j] += a * pp[i + j];
      const double ri = rp[i + j] - b * hpp[i + j];
      rp[i + j] = ri;
      acc[j] += ri * ri;
    }
  }
  for (int j = 0; i < n; ++i, ++j) {
    vp[i] += a * pp[i];
    const double ri = rp[i] - b * hpp[i];
    rp[i] = ri;
    acc[j] += ri * ri;
  }
  return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

// a . b with 8 partial sums (vectorizes without reordering what the source says).
inline double Dot8(const double* __restrict a, const double* __restrict b, Index n) {
  double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  Index i = 0;
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; ++j) acc[j] += a[i + j] * b[i + j];
  for (int j = 0; i < n; ++i, ++j) acc[j] += a[i] * b[i];
  return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

// p <- r + beta p (p <- r when beta is 0, whatever p held), also written to `copy` when it is
// not null: CG's new direction and the copy an operator sends, in one pass.
inline void CgDirection(double beta, ConstVecRef r, VecRef p, double* copy) {
  const Index n = p.size();
  const double* __restrict rp = r.data();
  double* __restrict pp = p.data();
  if (!copy) {
    for (Index i = 0; i < n; ++i) pp[i] = beta == 0.0 ? rp[i] : rp[i] + beta * pp[i];
    return;
  }
  double* __restrict cp = copy;
  for (Index i = 0; i < n; ++i) {
    const double pi = beta == 0.0 ? rp[i] : rp[i] + beta * pp[i];
    pp[i] = pi;
    cp[i] = pi;
  }
}

}  // namespace internal

// Scratch for ConjugateGradient, sized once by the caller.
struct CgScratch {
  Vec r, p, hp;
  void Resize(Index n) {
    r.resize(n);
    p.resize(n);
    hp.resize(n);
  }
};

// At most `iterations` conjugate-gradient iterations on the symmetric positive definite
// operator H, starting from v (warm start) whose residual r0 = b - H v the caller supplies (so
// that it can be fused with other communication). One product per iteration, through
// op.ApplyDirection(beta, r, p, hp): p <- r + beta p, hp = H p / op.ProductScale() (an operator
// may leave its product's last scaling to CG's update, which multiplies hp anyway), returning
// the local part of p . H p, so that an operator can fuse the direction's update, the copy it
// sends and the dot product with its own passes. The vectors may be one rank's slices of
// distributed ones: every dot product goes through op.Sum(local part), which returns the sum
// over the parts (so 1 + 2 Sum calls per iteration). Stops early when the residual norm is at most `tolerance`,
// or exactly zero, or below 1e-15 of the first one. Returns the number of iterations done.
template <class Operator>
int ConjugateGradient(Operator& op, ConstVecRef r0, VecRef v, int iterations, CgScratch* s,
                      double tolerance = 0) {
  s->r = r0;
  double rr = op.Sum(s->r.squaredNorm());
  const double stop = std::max(rr * 1e-30, tolerance * tolerance);
  double beta = 0;  // the first direction is r0
  int it = 0;
  for (; it < iterations; ++it) {
    if (!(rr > stop) || rr == 0.0) break;
    const double php = op.Sum(op.ApplyDirection(beta, s->r, s->p, s->hp));
    if (!(php > 0.0)) break;  // not positive definite along p (or exhausted precision)
    const double a = rr / php;
    const double rr_new =
        op.Sum(internal::CgUpdate(a, a * op.ProductScale(), s->p, s->hp, v, s->r));
    beta = rr_new / rr;
    rr = rr_new;
  }
  return it;
}

// An estimate of the largest eigenvalue of the symmetric positive semidefinite operator H:
// `iterations` power iterations from a fixed pseudo-random start (the same on every rank; not
// the vector of ones, which softmax Hessians annihilate), returning the last Rayleigh quotient
// v^T H v, |v| = 1 (a lower bound that approaches lambda_max). One Apply per iteration.
template <class Operator>
double LargestEigenvalue(Operator& op, Index n, int iterations, Vec* v, Vec* hv) {
  v->resize(n);
  hv->resize(n);
  std::uint64_t state = 0x2545F4914F6CDD1DULL;
  for (Index i = 0; i < n; ++i) {
    state ^= state << 13, state ^= state >> 7, state ^= state << 17;  // xorshift64
    (*v)[i] = static_cast<double>(state >> 11) * 0x1.0p-53 - 0.5;
  }
  v->normalize();
  double lambda = 0;
  for (int it = 0; it < iterations; ++it) {
    op.Apply(*v, *hv);
    lambda = v->dot(*hv);
    const double norm = hv->norm();
    if (!(norm > 0)) break;
    *v = *hv / norm;
  }
  return lambda;
}

}  // namespace bilevel

#endif  // BILEVEL_LINEAR_SOLVERS_H_
