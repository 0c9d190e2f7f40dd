// Iterative solvers for H v = b with a linear operator that exposes Apply(v, out) (out = H v).
// The distributed Hessian-vector product is the local one plus an allreduce, so these are
// written once for any number of ranks.
#ifndef BILEVEL_LINEAR_SOLVERS_H_
#define BILEVEL_LINEAR_SOLVERS_H_

#include <cmath>

#include "bilevel/types.h"

namespace bilevel {

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
// that it can be fused with other communication). One Apply per iteration. Stops early when the
// residual is exactly zero or its norm falls below 1e-15 of the first one. Returns the number
// of iterations done.
template <class Operator>
int ConjugateGradient(Operator& op, ConstVecRef r0, VecRef v, int iterations, CgScratch* s) {
  s->r = r0;
  s->p = r0;
  double rr = s->r.squaredNorm();
  const double stop = rr * 1e-30;
  int it = 0;
  for (; it < iterations; ++it) {
    if (!(rr > stop) || rr == 0.0) break;
    op.Apply(s->p, s->hp);
    const double php = s->p.dot(s->hp);
    if (!(php > 0.0)) break;  // not positive definite along p (or exhausted precision)
    const double a = rr / php;
    v.noalias() += a * s->p;
    s->r.noalias() -= a * s->hp;
    const double rr_new = s->r.squaredNorm();
    s->p = s->r + (rr_new / rr) * s->p;
    rr = rr_new;
  }
  return it;
}

}  // namespace bilevel

#endif  // BILEVEL_LINEAR_SOLVERS_H_
