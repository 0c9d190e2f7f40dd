#include "bilevel/check.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <numeric>
#include <random>
#include <stdexcept>
#include <string>
#include <utility>

namespace bilevel {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// |a - b| / max(|a|, |b|), 0 when both are 0, NaN when either is not finite.
double RelError(const Vec& a, const Vec& b) {
  if (!a.allFinite() || !b.allFinite()) return kNaN;
  const double scale = std::max(a.norm(), b.norm());
  return scale > 0 ? (a - b).norm() / scale : 0.0;
}

// `count` distinct indices of [0, n), sorted (all of them when count >= n).
std::vector<Index> Choose(Index n, Index count, std::mt19937_64* rng) {
  std::vector<Index> all(static_cast<size_t>(n));
  std::iota(all.begin(), all.end(), Index{0});
  if (count >= n) return all;
  for (Index i = 0; i < count; ++i) {
    std::uniform_int_distribution<Index> pick(i, n - 1);
    std::swap(all[i], all[pick(*rng)]);
  }
  all.resize(static_cast<size_t>(count));
  std::sort(all.begin(), all.end());
  return all;
}

// The worst result of one oracle over the batches.
class Verdict {
 public:
  Verdict(std::string oracle, std::string reference, bool writes_out = true)
      : writes_out_(writes_out) {
    check_.oracle = std::move(oracle);
    check_.reference = std::move(reference);
  }
  void Error(double e) {
    if (std::isnan(e) || std::isnan(check_.error))
      check_.error = kNaN;
    else
      check_.error = std::max(check_.error, e);
  }
  void Fault(const std::string& what) {
    if (check_.note.find(what) == std::string::npos)
      check_.note += (check_.note.empty() ? "" : "; ") + what;
    faulty_ = true;
  }
  void Skip() { check_.note = "skipped: no local samples"; }
  OracleCheck Finish(double tolerance) {
    if (std::isnan(check_.error))
      Fault(writes_out_ ? "non-finite result (does it add to `out`, or leave entries unwritten?)"
                        : "non-finite result");
    check_.passed = !faulty_ && check_.error <= tolerance;
    return check_;
  }

 private:
  OracleCheck check_;
  bool writes_out_;
  bool faulty_ = false;
};

class Checker {
 public:
  Checker(Problem& problem, const Vec& x, const Vec& y, const CheckOptions& options)
      : p_(problem), x_(x), y_(y), o_(options), rng_(options.seed) {
    const Index q = y.size();
    v_.resize(q);
    std::normal_distribution<double> normal;
    for (Index i = 0; i < q; ++i) v_[i] = normal(rng_);
    if (q > 0 && v_.lpNorm<Eigen::Infinity>() > 0) v_ /= v_.lpNorm<Eigen::Infinity>();
    x_coords_ = Choose(x.size(), options.max_coordinates, &rng_);
    y_coords_ = Choose(q, options.max_coordinates, &rng_);
  }

  // A range at a random offset and a random sorted list, of up to batch_size local samples.
  Index MakeBatches(Split split, std::vector<Index>* list, Batch* range) {
    const Index local = p_.LocalShard(split).size();
    const Index b = std::min(o_.batch_size, local);
    std::uniform_int_distribution<Index> offset(0, local - b);
    const Index begin = b > 0 ? offset(rng_) : 0;
    *range = Batch::Range(begin, begin + b);
    *list = Choose(local, b, &rng_);
    return b;
  }

  void Values(Split split, const Batch& batch, Verdict* verdict) {
    auto value = [&](const Batch& b) {
      return split == Split::kOuter ? p_.ValueF(x_, y_, b) : p_.ValueG(x_, y_, b);
    };
    const double whole = value(batch);
    double sum = 0, scale = 0;
    for (Index k = 0; k < batch.size(); ++k) {
      const double one = value(Batch::Range(batch[k], batch[k] + 1));
      sum += one;
      scale += std::abs(one);
    }
    if (!std::isfinite(whole) || !std::isfinite(sum))
      verdict->Error(kNaN);
    else
      verdict->Error(scale > 0 ? std::abs(whole - sum) / scale : std::abs(whole));
    const double empty = value(Batch::Range(0, 0));
    if (empty != 0) verdict->Fault("not 0 on an empty batch");
  }

  // Runs a vector oracle into a fresh `out` of `size` entries, filled with NaN first.
  template <class Oracle>
  Vec Call(Index size, const Oracle& oracle) {
    Vec out = Vec::Constant(size, kNaN);
    oracle(out);
    return out;
  }

  // Central differences in the chosen coordinates of z (x or y) of a scalar function of z.
  template <class Scalar>
  Vec Differences(const Vec& z, const std::vector<Index>& coords, const Scalar& f) {
    Vec fd(static_cast<Index>(coords.size()));
    Vec zh = z;
    for (size_t k = 0; k < coords.size(); ++k) {
      const Index i = coords[k];
      const double h = o_.step * std::max(1.0, std::abs(z[i]));
      zh[i] = z[i] + h;
      const double plus = f(zh);
      zh[i] = z[i] - h;
      const double minus = f(zh);
      zh[i] = z[i];
      fd[static_cast<Index>(k)] = (plus - minus) / (2 * h);
    }
    return fd;
  }

  static Vec Pick(const Vec& v, const std::vector<Index>& coords) {
    Vec out(static_cast<Index>(coords.size()));
    for (size_t k = 0; k < coords.size(); ++k) out[static_cast<Index>(k)] = v[coords[k]];
    return out;
  }

  // GradXF / GradYF (split kOuter) or GradXG / GradYG (kInner) against differences of the
  // value in x (in_x) or y.
  void Gradient(Split split, bool in_x, const Batch& batch, Verdict* verdict) {
    const bool outer = split == Split::kOuter;
    const Vec& z = in_x ? x_ : y_;
    const std::vector<Index>& coords = in_x ? x_coords_ : y_coords_;
    auto grad = [&](const Batch& b) {
      return Call(z.size(), [&](VecRef out) {
        if (outer && in_x) p_.GradXF(x_, y_, b, out);
        if (outer && !in_x) p_.GradYF(x_, y_, b, out);
        if (!outer && in_x) p_.GradXG(x_, y_, b, out);
        if (!outer && !in_x) p_.GradYG(x_, y_, b, out);
      });
    };
    const Vec fd = Differences(z, coords, [&](const Vec& zh) {
      const Vec& xh = in_x ? zh : x_;
      const Vec& yh = in_x ? y_ : zh;
      return outer ? p_.ValueF(xh, yh, batch) : p_.ValueG(xh, yh, batch);
    });
    verdict->Error(RelError(Pick(grad(batch), coords), fd));
    EmptyIsZero(grad(Batch::Range(0, 0)), verdict);
  }

  void Hessian(const Batch& batch, Verdict* verdict) {
    auto hv = [&](const Batch& b) {
      return Call(y_.size(), [&](VecRef out) { p_.HessianVec(x_, y_, v_, b, out); });
    };
    const double h = o_.step * std::max(1.0, y_.size() > 0 ? y_.lpNorm<Eigen::Infinity>() : 0.0);
    const Vec yp = y_ + h * v_, ym = y_ - h * v_;
    const Vec plus = Call(y_.size(), [&](VecRef out) { p_.GradYG(x_, yp, batch, out); });
    const Vec minus = Call(y_.size(), [&](VecRef out) { p_.GradYG(x_, ym, batch, out); });
    verdict->Error(RelError(hv(batch), (plus - minus) / (2 * h)));
    EmptyIsZero(hv(Batch::Range(0, 0)), verdict);
  }

  void Jacobian(const Batch& batch, Verdict* verdict) {
    auto jv = [&](const Batch& b) {
      return Call(x_.size(), [&](VecRef out) { p_.JacobianVec(x_, y_, v_, b, out); });
    };
    Vec g(y_.size());
    const Vec fd = Differences(x_, x_coords_, [&](const Vec& xh) {
      g.setConstant(kNaN);
      p_.GradYG(xh, y_, batch, g);
      return g.dot(v_);
    });
    verdict->Error(RelError(Pick(jv(batch), x_coords_), fd));
    EmptyIsZero(jv(Batch::Range(0, 0)), verdict);
  }

 private:
  static void EmptyIsZero(const Vec& out, Verdict* verdict) {
    if (!(out.array() == 0).all()) verdict->Fault("not 0 on an empty batch");
  }

  Problem& p_;
  const Vec& x_;
  const Vec& y_;
  const CheckOptions& o_;
  std::mt19937_64 rng_;
  Vec v_;
  std::vector<Index> x_coords_, y_coords_;
};

std::string Format(const char* format, double value) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), format, value);
  return buf;
}

}  // namespace

std::vector<std::string> OracleCheckReport::Failed() const {
  std::vector<std::string> failed;
  for (const OracleCheck& c : checks)
    if (!c.passed) failed.push_back(c.oracle);
  return failed;
}

std::string OracleCheckReport::ToString() const {
  std::string s = "bilevel oracle check of '" + problem + "': p = " + std::to_string(dim_outer) +
                  ", q = " + std::to_string(dim_inner) + ", batches of " +
                  std::to_string(batch_inner) + " inner and " + std::to_string(batch_outer) +
                  " outer local samples, tolerance " + Format("%.1e", tolerance) + "\n";
  for (const OracleCheck& c : checks) {
    char line[64];
    std::snprintf(line, sizeof(line), "  %-12s %9.2e  %-4s  ", c.oracle.c_str(), c.error,
                  c.passed ? "ok" : "FAIL");
    s += line + c.reference + (c.note.empty() ? "" : " [" + c.note + "]") + "\n";
  }
  if (passed) return s + "result: every oracle agrees with finite differences\n";
  s += "result: FAILED:";
  for (const std::string& name : Failed()) s += " " + name;
  return s + "\n";
}

OracleCheckReport CheckOracles(Problem& problem, const Vec& x, const Vec& y,
                               const CheckOptions& options) {
  const Index p = problem.DimOuter(), q = problem.DimInner();
  if (x.size() != p || y.size() != q)
    throw std::invalid_argument("CheckOracles: x has " + std::to_string(x.size()) +
                                " entries and y " + std::to_string(y.size()) + ", the problem " +
                                std::to_string(p) + " and " + std::to_string(q));
  if (!(options.step > 0) || !(options.tolerance > 0) || options.batch_size < 1 ||
      options.max_coordinates < 1)
    throw std::invalid_argument(
        "CheckOptions: step and tolerance must be > 0, batch_size and max_coordinates >= 1");

  Checker checker(problem, x, y, options);
  OracleCheckReport report;
  report.problem = problem.Name();
  report.dim_outer = p;
  report.dim_inner = q;
  report.tolerance = options.tolerance;

  std::vector<Index> outer_list, inner_list;
  Batch outer_range = Batch::Range(0, 0), inner_range = Batch::Range(0, 0);
  report.batch_outer = checker.MakeBatches(Split::kOuter, &outer_list, &outer_range);
  report.batch_inner = checker.MakeBatches(Split::kInner, &inner_list, &inner_range);
  const Batch outer[2] = {outer_range, Batch::List(outer_list.data(), report.batch_outer)};
  const Batch inner[2] = {inner_range, Batch::List(inner_list.data(), report.batch_inner)};

  const std::string xs = " (" + std::to_string(std::min(p, options.max_coordinates)) + " of " +
                         std::to_string(p) + " coordinates)";
  const std::string ys = " (" + std::to_string(std::min(q, options.max_coordinates)) + " of " +
                         std::to_string(q) + " coordinates)";
  const char* const sum = "the sum of its values on single samples; 0 on an empty batch";
  Verdict value_f("ValueF", sum, false);
  Verdict value_g("ValueG", sum, false);
  Verdict grad_xf("GradXF", "central differences of ValueF in x" + xs);
  Verdict grad_yf("GradYF", "central differences of ValueF in y" + ys);
  Verdict grad_yg("GradYG", "central differences of ValueG in y" + ys);
  Verdict grad_xg("GradXG", "central differences of ValueG in x" + xs);
  Verdict hessian("HessianVec", "central differences of GradYG along a random v");
  Verdict jacobian("JacobianVec", "central differences of <GradYG, v> in x" + xs);

  if (report.batch_outer == 0) {
    for (Verdict* v : {&value_f, &grad_xf, &grad_yf}) v->Skip();
  } else {
    for (const Batch& b : outer) {
      checker.Values(Split::kOuter, b, &value_f);
      checker.Gradient(Split::kOuter, true, b, &grad_xf);
      checker.Gradient(Split::kOuter, false, b, &grad_yf);
    }
  }
  if (report.batch_inner == 0) {
    for (Verdict* v : {&value_g, &grad_yg, &grad_xg, &hessian, &jacobian}) v->Skip();
  } else {
    for (const Batch& b : inner) {
      checker.Values(Split::kInner, b, &value_g);
      checker.Gradient(Split::kInner, false, b, &grad_yg);
      checker.Gradient(Split::kInner, true, b, &grad_xg);
      checker.Hessian(b, &hessian);
      checker.Jacobian(b, &jacobian);
    }
  }
  for (Verdict* v :
       {&value_f, &value_g, &grad_xf, &grad_yf, &grad_yg, &grad_xg, &hessian, &jacobian}) {
    report.checks.push_back(v->Finish(options.tolerance));
    report.passed = report.passed && report.checks.back().passed;
  }
  return report;
}

}  // namespace bilevel
