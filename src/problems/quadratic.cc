#include "bilevel/problems/quadratic.h"

#include <Eigen/Eigenvalues>
#include <cmath>
#include <cstdio>
#include <sstream>
#include <stdexcept>

#include "bilevel/metrics.h"

namespace bilevel {

namespace {

// A counter-based stream of normal numbers: sample (seed, stream, index) is generated on any
// rank without generating the others, and identically on every platform.
class NormalStream {
 public:
  NormalStream(std::uint64_t seed, std::uint64_t stream, std::uint64_t index)
      : state_(Mix(Mix(Mix(seed) ^ (stream * 0x9E3779B97F4A7C15ULL)) ^ index)) {}

  double Next() {
    if (has_spare_) {
      has_spare_ = false;
      return spare_;
    }
    // Box-Muller on two uniforms in (0, 1].
    const double u1 = Uniform(), u2 = Uniform();
    const double radius = std::sqrt(-2.0 * std::log(u1));
    const double angle = 6.283185307179586476925 * u2;
    spare_ = radius * std::sin(angle);
    has_spare_ = true;
    return radius * std::cos(angle);
  }

  template <class V>
  void Fill(V&& v, double scale) {
    for (Index i = 0; i < v.size(); ++i) v[i] = scale * Next();
  }

 private:
  static std::uint64_t Mix(std::uint64_t z) {
    z += 0x9E3779B97F4A7C15ULL;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }
  double Uniform() {
    state_ += 0x9E3779B97F4A7C15ULL;
    return (static_cast<double>(Mix(state_) >> 11) + 1.0) * 0x1.0p-53;
  }
  std::uint64_t state_;
  bool has_spare_ = false;
  double spare_ = 0;
};

enum Stream : std::uint64_t { kInnerSample = 0, kOuterSample = 1, kCenters = 2 };

template <class T>
std::string Str(T value) {
  std::ostringstream s;
  s.precision(6);
  s << value;
  return s.str();
}

}  // namespace

bool QuadraticOptions::IsValid(std::string* error) const {
  std::ostringstream e;
  if (dim_outer < 1) {
    e << "option --dim-outer: " << dim_outer << " must be >= 1";
  } else if (dim_inner < 2) {
    e << "option --dim-inner: " << dim_inner << " must be >= 2";
  } else if (samples < dim_inner) {
    e << "option --samples: " << samples << " must be >= --dim-inner (" << dim_inner
      << ") for the Hessian to have the requested spectrum";
  } else if (!(std::isfinite(kappa) && kappa >= 1)) {
    e << "option --kappa: " << kappa << " must be a finite number >= 1";
  } else if (!(std::isfinite(noise) && noise >= 0)) {
    e << "option --noise: " << noise << " must be a finite number >= 0";
  } else if (!(std::isfinite(rho) && rho >= 0)) {
    e << "option --rho: " << rho << " must be a finite number >= 0";
  } else {
    return true;
  }
  *error = e.str();
  return false;
}

QuadraticProblem::QuadraticProblem(const QuadraticOptions& options, int rank, int ranks)
    : opt_(options) {
  std::string error;
  if (!opt_.IsValid(&error)) throw std::invalid_argument(error);
  const Index p = opt_.dim_outer, q = opt_.dim_inner, m = opt_.samples, n = opt_.samples;
  for (Split s : {Split::kInner, Split::kOuter})
    shard_[static_cast<int>(s)] = BlockShard(opt_.samples, rank, ranks);
  const Shard& own_in = shard_[static_cast<int>(Split::kInner)];
  const Shard& own_out = shard_[static_cast<int>(Split::kOuter)];

  NormalStream centers(opt_.seed, kCenters, 0);
  x0_.resize(p);
  y0_.resize(q);
  centers.Fill(x0_, 1.0);
  centers.Fill(y0_, 1.0);

  // Pass 1: the second moment of the raw directions z_j, to whiten them.
  Eigen::MatrixXd moment = Eigen::MatrixXd::Zero(q, q);
  Vec z(q), bj(p);
  for (Index j = 0; j < m; ++j) {
    NormalStream s(opt_.seed, kInnerSample, static_cast<std::uint64_t>(j));
    s.Fill(z, 1.0);
    moment.selfadjointView<Eigen::Lower>().rankUpdate(z, 1.0 / m);
  }
  moment = moment.selfadjointView<Eigen::Lower>();
  Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> eig(moment);
  // a_j = W z_j with W = U diag(sqrt(s_k / lambda_k)) U^T gives (1/m) sum a a^T = U diag(s) U^T;
  // s_k = mu kappa^{k/(q-1)} - mu puts the eigenvalues of H = that + mu I at mu kappa^{k/(q-1)}.
  Vec scale(q);
  for (Index k = 0; k < q; ++k) {
    const double target = mu_ * std::pow(opt_.kappa, static_cast<double>(k) / (q - 1)) - mu_;
    scale[k] = std::sqrt(target / eig.eigenvalues()[k]);
  }
  const Eigen::MatrixXd whiten = eig.eigenvectors() * scale.asDiagonal() * eig.eigenvectors().transpose();

  // Pass 2: inner samples; keep this rank's block, accumulate the moments of all.
  a_.resize(q, own_in.size());
  b_.resize(p, own_in.size());
  c_.resize(own_in.size());
  Eigen::MatrixXd saa = Eigen::MatrixXd::Zero(q, q);
  jac_ = Eigen::MatrixXd::Zero(p, q);
  mean_ac_ = Vec::Zero(q);
  Vec aj(q);
  for (Index j = 0; j < m; ++j) {
    NormalStream s(opt_.seed, kInnerSample, static_cast<std::uint64_t>(j));
    s.Fill(z, 1.0);
    s.Fill(bj, 1.0 / std::sqrt(static_cast<double>(p)));
    const double eps = s.Next();
    aj.noalias() = whiten * z;
    const double cj = -(aj.dot(y0_) + bj.dot(x0_)) + opt_.noise * eps;
    saa.selfadjointView<Eigen::Lower>().rankUpdate(aj, 1.0 / m);
    jac_.noalias() += (bj / m) * aj.transpose();
    mean_ac_ += (cj / m) * aj;
    if (j >= own_in.begin && j < own_in.end) {
      a_.col(j - own_in.begin) = aj;
      b_.col(j - own_in.begin) = bj;
      c_[j - own_in.begin] = cj;
    }
  }
  hess_ = saa.selfadjointView<Eigen::Lower>();
  hess_.diagonal().array() += mu_;
  hess_ldlt_.compute(hess_);

  // Outer samples.
  d_.resize(q, own_out.size());
  h_.resize(p, own_out.size());
  e_.resize(own_out.size());
  dd_ = Eigen::MatrixXd::Zero(q, q);
  dh_ = Eigen::MatrixXd::Zero(q, p);
  hh_ = Eigen::MatrixXd::Zero(p, p);
  de_ = Vec::Zero(q);
  he_ = Vec::Zero(p);
  ee_ = 0;
  Vec di(q), hi(p);
  for (Index i = 0; i < n; ++i) {
    NormalStream s(opt_.seed, kOuterSample, static_cast<std::uint64_t>(i));
    s.Fill(di, 1.0 / std::sqrt(static_cast<double>(q)));
    s.Fill(hi, 1.0 / std::sqrt(static_cast<double>(p)));
    const double eps = s.Next();
    const double ei = di.dot(y0_) + hi.dot(x0_) + opt_.noise * eps;
    dd_.noalias() += (di / n) * di.transpose();
    dh_.noalias() += (di / n) * hi.transpose();
    hh_.noalias() += (hi / n) * hi.transpose();
    de_ += (ei / n) * di;
    he_ += (ei / n) * hi;
    ee_ += ei * ei / n;
    if (i >= own_out.begin && i < own_out.end) {
      d_.col(i - own_out.begin) = di;
      h_.col(i - own_out.begin) = hi;
      e_[i - own_out.begin] = ei;
    }
  }

  // Phi is quadratic: y*(x) = P x + r with P = -H^{-1} J^T, so
  // grad^2 Phi = P^T dd P + P^T dh + dh^T P + hh + rho I and x* = -(grad^2 Phi)^{-1} grad Phi(0).
  const Eigen::MatrixXd pm = -hess_ldlt_.solve(jac_.transpose());
  Eigen::MatrixXd phi_hess = pm.transpose() * dd_ * pm + pm.transpose() * dh_ +
                             dh_.transpose() * pm + hh_;
  phi_hess.diagonal().array() += opt_.rho;
  phi_hess = 0.5 * (phi_hess + phi_hess.transpose()).eval();
  Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> phi_eig(phi_hess, Eigen::EigenvaluesOnly);
  phi_mu_ = phi_eig.eigenvalues()[0];
  phi_l_ = phi_eig.eigenvalues()[p - 1];
  x_star_ = -phi_hess.ldlt().solve(HyperGradient(Vec::Zero(p)));
}

double QuadraticProblem::ResidualG(Index j, ConstVecRef x, ConstVecRef y) const {
  return a_.col(j).dot(y) + b_.col(j).dot(x) + c_[j];
}

double QuadraticProblem::ResidualF(Index i, ConstVecRef x, ConstVecRef y) const {
  return d_.col(i).dot(y) + h_.col(i).dot(x) - e_[i];
}

double QuadraticProblem::ValueF(ConstVecRef x, ConstVecRef y, const Batch& batch) {
  double sum = 0;
  for (Index k = 0; k < batch.size(); ++k) {
    const double r = ResidualF(batch[k], x, y);
    sum += 0.5 * r * r;
  }
  return sum + batch.size() * 0.5 * opt_.rho * (x - x0_).squaredNorm();
}

double QuadraticProblem::ValueG(ConstVecRef x, ConstVecRef y, const Batch& batch) {
  double sum = 0;
  for (Index k = 0; k < batch.size(); ++k) {
    const double r = ResidualG(batch[k], x, y);
    sum += 0.5 * r * r;
  }
  return sum + batch.size() * 0.5 * mu_ * (y - y0_).squaredNorm();
}

void QuadraticProblem::GradXF(ConstVecRef x, ConstVecRef y, const Batch& batch, VecRef out) {
  out = (batch.size() * opt_.rho) * (x - x0_);
  for (Index k = 0; k < batch.size(); ++k) {
    const Index i = batch[k];
    out.noalias() += ResidualF(i, x, y) * h_.col(i);
  }
}

void QuadraticProblem::GradYF(ConstVecRef x, ConstVecRef y, const Batch& batch, VecRef out) {
  out.setZero();
  for (Index k = 0; k < batch.size(); ++k) {
    const Index i = batch[k];
    out.noalias() += ResidualF(i, x, y) * d_.col(i);
  }
}

void QuadraticProblem::GradYG(ConstVecRef x, ConstVecRef y, const Batch& batch, VecRef out) {
  out = (batch.size() * mu_) * (y - y0_);
  for (Index k = 0; k < batch.size(); ++k) {
    const Index j = batch[k];
    out.noalias() += ResidualG(j, x, y) * a_.col(j);
  }
}

void QuadraticProblem::GradXG(ConstVecRef x, ConstVecRef y, const Batch& batch, VecRef out) {
  out.setZero();
  for (Index k = 0; k < batch.size(); ++k) {
    const Index j = batch[k];
    out.noalias() += ResidualG(j, x, y) * b_.col(j);
  }
}

void QuadraticProblem::HessianVec(ConstVecRef, ConstVecRef, ConstVecRef v, const Batch& batch,
                                  VecRef out) {
  out = (batch.size() * mu_) * v;
  for (Index k = 0; k < batch.size(); ++k) {
    const Index j = batch[k];
    out.noalias() += a_.col(j).dot(v) * a_.col(j);
  }
}

void QuadraticProblem::JacobianVec(ConstVecRef, ConstVecRef, ConstVecRef v, const Batch& batch,
                                   VecRef out) {
  out.setZero();
  for (Index k = 0; k < batch.size(); ++k) {
    const Index j = batch[k];
    out.noalias() += a_.col(j).dot(v) * b_.col(j);
  }
}

Vec QuadraticProblem::InnerSolution(ConstVecRef x) const {
  return hess_ldlt_.solve(mu_ * y0_ - mean_ac_ - jac_.transpose() * x);
}

Vec QuadraticProblem::GradYFull(ConstVecRef x, ConstVecRef y) const {
  return dd_ * y + dh_ * x - de_;
}

Vec QuadraticProblem::GradXFull(ConstVecRef x, ConstVecRef y) const {
  return dh_.transpose() * y + hh_ * x - he_ + opt_.rho * (x - x0_);
}

double QuadraticProblem::Phi(ConstVecRef x) const {
  const Vec y = InnerSolution(x);
  return 0.5 * (y.dot(dd_ * y) + 2 * y.dot(dh_ * x) + x.dot(hh_ * x) - 2 * y.dot(de_) -
                2 * x.dot(he_) + ee_) +
         0.5 * opt_.rho * (x - x0_).squaredNorm();
}

Vec QuadraticProblem::HyperGradient(ConstVecRef x) const {
  const Vec y = InnerSolution(x);
  return GradXFull(x, y) - jac_ * hess_ldlt_.solve(GradYFull(x, y));
}

ProblemDefaults QuadraticProblem::Defaults(const std::string& algorithm) const {
  ProblemDefaults d;
  d.inner_lr = 1.0 / InnerL();
  d.outer_lr = 1.0 / phi_l_;
  d.batch_size = 256;
  if (algorithm == "stocbio") {
    // Noisy hypergradients: a shorter outer step keeps the noise floor low.
    d.outer_lr = 0.2 / phi_l_;
  }
  return d;
}

std::vector<std::pair<std::string, std::string>> QuadraticProblem::Describe() const {
  return {{"kappa", Str(opt_.kappa)},
          {"inner_L", Str(InnerL())},
          {"inner_mu", Str(mu_)},
          {"outer_L", Str(phi_l_)},
          {"outer_mu", Str(phi_mu_)},
          {"noise", Str(opt_.noise)},
          {"data_seed", Str(opt_.seed)}};
}

std::vector<std::pair<std::string, std::string>> QuadraticProblem::Identity() const {
  auto id = Problem::Identity();
  auto exact = [](double v) {
    char buf[32];
    std::snprintf(buf, sizeof(buf), "%.17g", v);
    return std::string(buf);
  };
  id.insert(id.end(), {{"kappa", exact(opt_.kappa)},
                       {"noise", exact(opt_.noise)},
                       {"rho", exact(opt_.rho)},
                       {"data_seed", std::to_string(opt_.seed)}});
  return id;
}

void QuadraticProblem::EvalReport(ConstVecRef x, ConstVecRef y, ConstVecRef hypergrad,
                                  ConstVecRef, MetricsRecord* record) const {
  const Vec truth = HyperGradient(x);
  const Vec y_star = InnerSolution(x);
  const double truth_norm = truth.norm();
  record->Set("true_hypergrad_norm", truth_norm);
  record->Set("hypergrad_rel_error", (hypergrad - truth).norm() / truth_norm);
  record->Set("inner_rel_error", (y - y_star).norm() / y_star.norm());
  record->Set("outer_rel_error", (x - x_star_).norm() / x_star_.norm());
  record->Set("phi_gap", Phi(x) - Phi(x_star_));
}

}  // namespace bilevel
