#include "ridge_problem.h"

#include <cmath>
#include <stdexcept>

namespace ridge {

using bilevel::Batch;
using bilevel::ConstVecRef;
using bilevel::Index;
using bilevel::Split;
using bilevel::VecRef;

namespace {

// A counter-based generator: the same numbers for (seed, stream, counter) on every rank.
std::uint64_t Mix(std::uint64_t z) {
  z += 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

double Uniform(std::uint64_t seed, std::uint64_t stream, std::uint64_t counter) {
  const std::uint64_t bits = Mix(Mix(Mix(seed) ^ stream) ^ counter);
  return (static_cast<double>(bits >> 11) + 0.5) * 0x1.0p-53;  // in (0, 1)
}

// A standard normal number (Box-Muller).
double Normal(std::uint64_t seed, std::uint64_t stream, std::uint64_t counter) {
  const double u = Uniform(seed, stream, 2 * counter), v = Uniform(seed, stream, 2 * counter + 1);
  return std::sqrt(-2 * std::log(u)) * std::cos(6.283185307179586 * v);
}

constexpr std::uint64_t kTruthStream = 1000;

}  // namespace

RidgeProblem::RidgeProblem(const RidgeOptions& options, int rank, int ranks) : opt_(options) {
  if (opt_.groups < 1 || opt_.group_size < 1 || opt_.train < 1 || opt_.val < 1 || opt_.rho < 0)
    throw std::invalid_argument("ridge: groups, group_size, train and val must be >= 1, rho >= 0");
  const Index d = DimInner();
  bilevel::Vec truth(d);
  for (Index i = 0; i < d; ++i)
    truth[i] = Normal(opt_.seed, kTruthStream, static_cast<std::uint64_t>(i)) /
               static_cast<double>(i / opt_.group_size + 1);
  for (Split split : {Split::kInner, Split::kOuter}) {
    const int k = static_cast<int>(split);
    shard_[k] = bilevel::BlockShard(NumSamples(split), rank, ranks);
    features_[k].resize(d, shard_[k].size());
    targets_[k].resize(shard_[k].size());
    for (Index s = 0; s < shard_[k].size(); ++s) {
      // Stream per (split, sample): counters 0..d-1 for the features, d for the noise.
      const std::uint64_t stream = 2 * static_cast<std::uint64_t>(shard_[k].begin + s) + k;
      for (Index i = 0; i < d; ++i)
        features_[k](i, s) = Normal(opt_.seed, stream, static_cast<std::uint64_t>(i));
      targets_[k][s] = features_[k].col(s).dot(truth) +
                       opt_.noise * Normal(opt_.seed, stream, static_cast<std::uint64_t>(d));
    }
  }
}

Index RidgeProblem::NumSamples(Split split) const {
  return split == Split::kInner ? opt_.train : opt_.val;
}

bilevel::Shard RidgeProblem::LocalShard(Split split) const {
  return shard_[static_cast<int>(split)];
}

double RidgeProblem::Residual(Split split, Index s, ConstVecRef w) const {
  const int k = static_cast<int>(split);
  return features_[k].col(s).dot(w) - targets_[k][s];
}

void RidgeProblem::Penalty(ConstVecRef lambda, ConstVecRef v, VecRef out) const {
  for (Index g = 0; g < opt_.groups; ++g)
    out.segment(g * opt_.group_size, opt_.group_size) =
        std::exp(lambda[g]) * v.segment(g * opt_.group_size, opt_.group_size);
}

double RidgeProblem::ValueF(ConstVecRef x, ConstVecRef y, const Batch& batch) {
  double sum = static_cast<double>(batch.size()) * 0.5 * opt_.rho * x.squaredNorm();
  for (Index k = 0; k < batch.size(); ++k)
    sum += 0.5 * std::pow(Residual(Split::kOuter, batch[k], y), 2);
  return sum;
}

double RidgeProblem::ValueG(ConstVecRef x, ConstVecRef y, const Batch& batch) {
  double penalty = 0;
  for (Index g = 0; g < opt_.groups; ++g)
    penalty += 0.5 * std::exp(x[g]) * y.segment(g * opt_.group_size, opt_.group_size).squaredNorm();
  double sum = static_cast<double>(batch.size()) * penalty;
  for (Index k = 0; k < batch.size(); ++k)
    sum += 0.5 * std::pow(Residual(Split::kInner, batch[k], y), 2);
  return sum;
}

void RidgeProblem::GradXF(ConstVecRef x, ConstVecRef, const Batch& batch, VecRef out) {
  out = (static_cast<double>(batch.size()) * opt_.rho) * x;  // the prior's gradient
}

void RidgeProblem::GradYF(ConstVecRef, ConstVecRef y, const Batch& batch, VecRef out) {
  const Eigen::MatrixXd& a = features_[static_cast<int>(Split::kOuter)];
  out.setZero();
  for (Index k = 0; k < batch.size(); ++k)
    out.noalias() += Residual(Split::kOuter, batch[k], y) * a.col(batch[k]);
}

void RidgeProblem::GradYG(ConstVecRef x, ConstVecRef y, const Batch& batch, VecRef out) {
  const Eigen::MatrixXd& a = features_[static_cast<int>(Split::kInner)];
  Penalty(x, y, out);
  out *= static_cast<double>(batch.size());
  for (Index k = 0; k < batch.size(); ++k)
    out.noalias() += Residual(Split::kInner, batch[k], y) * a.col(batch[k]);
}

void RidgeProblem::GradXG(ConstVecRef x, ConstVecRef y, const Batch& batch, VecRef out) {
  for (Index g = 0; g < opt_.groups; ++g)
    out[g] = static_cast<double>(batch.size()) * 0.5 * std::exp(x[g]) *
             y.segment(g * opt_.group_size, opt_.group_size).squaredNorm();
}

void RidgeProblem::HessianVec(ConstVecRef x, ConstVecRef, ConstVecRef v, const Batch& batch,
                              VecRef out) {
  const Eigen::MatrixXd& a = features_[static_cast<int>(Split::kInner)];
  Penalty(x, v, out);
  out *= static_cast<double>(batch.size());
  for (Index k = 0; k < batch.size(); ++k)
    out.noalias() += a.col(batch[k]).dot(v) * a.col(batch[k]);
}

void RidgeProblem::JacobianVec(ConstVecRef x, ConstVecRef y, ConstVecRef v, const Batch& batch,
                               VecRef out) {
  // d/dlambda_g of <grad_y G, v> = exp(lambda_g) <w_g, v_g>, the same for every sample.
  for (Index g = 0; g < opt_.groups; ++g)
    out[g] = static_cast<double>(batch.size()) * std::exp(x[g]) *
             y.segment(g * opt_.group_size, opt_.group_size)
                 .dot(v.segment(g * opt_.group_size, opt_.group_size));
}

std::vector<std::pair<std::string, std::string>> RidgeProblem::Describe() const {
  return {{"groups", std::to_string(opt_.groups)},
          {"group_size", std::to_string(opt_.group_size)},
          {"noise", std::to_string(opt_.noise)},
          {"rho", std::to_string(opt_.rho)},
          {"data_seed", std::to_string(opt_.seed)}};
}

}  // namespace ridge
