#include "problems/l2reg.h"

#include <cmath>
#include <sstream>

#include "bilevel/metrics.h"

namespace bilevel::problems {

namespace {
template <class T>
std::string Str(T value) {
  std::ostringstream s;
  s << value;
  return s.str();
}
}  // namespace

L2RegProblem::L2RegProblem(const std::string& path, int rank, int ranks)
    : L2RegProblem(path, LoadDataBlocks(path, rank, ranks)) {}

L2RegProblem::L2RegProblem(const std::string& path, DataBlocks data)
    : path_(path),
      checksum_(data.info.attributes.source_sha256),
      train_(std::move(data.train), /*bias=*/false),
      val_(std::move(data.val), /*bias=*/false),
      test_(std::move(data.test), /*bias=*/false) {}

Shard L2RegProblem::LocalShard(Split split) const {
  const SoftmaxRows& rows = split == Split::kInner ? train_ : val_;
  return Shard{rows.global_begin(), rows.global_begin() + rows.rows()};
}

const Vec& L2RegProblem::ExpLambda(ConstVecRef x) const {
  if (exp_of_.size() != x.size() || exp_of_ != x) {
    exp_of_ = x;
    exp_x_ = x.array().exp();
  }
  return exp_x_;
}

void L2RegProblem::AddRegularizer(ConstVecRef x, ConstVecRef m, double batch, VecRef out) const {
  const Index c = train_.classes();
  const double scale = batch * Scale();
  const Vec& e = ExpLambda(x);
  const double* mp = m.data();
  double* op = out.data();
  for (Index k = 0; k < train_.dim(); ++k) {
    const double w = scale * e[k];
    for (Index j = 0; j < c; ++j) op[k * c + j] += w * mp[k * c + j];
  }
}

double L2RegProblem::ValueF(ConstVecRef, ConstVecRef y, const Batch& batch) {
  if (batch.empty()) return 0;
  val_.Logits(batch, W(y), &z_);
  SoftmaxInPlace(&z_, val_, batch, 0, &ce_);
  return ce_.sum();
}

double L2RegProblem::ValueG(ConstVecRef x, ConstVecRef y, const Batch& batch) {
  if (batch.empty()) return 0;
  train_.Logits(batch, W(y), &z_);
  SoftmaxInPlace(&z_, train_, batch, 0, &ce_);
  const Index c = train_.classes();
  const Vec& e = ExpLambda(x);
  double reg = 0;
  for (Index k = 0; k < train_.dim(); ++k) reg += e[k] * y.segment(k * c, c).squaredNorm();
  return ce_.sum() + batch.size() * 0.5 * Scale() * reg;
}

void L2RegProblem::GradXF(ConstVecRef, ConstVecRef, const Batch&, VecRef out) { out.setZero(); }

void L2RegProblem::GradYF(ConstVecRef, ConstVecRef y, const Batch& batch, VecRef out) {
  out.setZero();
  if (batch.empty()) return;
  MutableWeightMap g(out.data(), val_.dim(), val_.classes());
  val_.ProductPass(batch, W(y), nullptr, [&](Index first, RowMatrix* z, RowMatrix*) {
    SoftmaxInPlace(z, val_, batch, first, nullptr);
    for (Index i = 0; i < z->rows(); ++i) (*z)(i, val_.label(batch[first + i])) -= 1.0;
  }, &g);
}

void L2RegProblem::GradYG(ConstVecRef x, ConstVecRef y, const Batch& batch, VecRef out) {
  out.setZero();
  if (batch.empty()) return;
  AddRegularizer(x, y, batch.size(), out);
  MutableWeightMap g(out.data(), train_.dim(), train_.classes());
  train_.ProductPass(batch, W(y), nullptr, [&](Index first, RowMatrix* z, RowMatrix*) {
    SoftmaxInPlace(z, train_, batch, first, nullptr);
    for (Index i = 0; i < z->rows(); ++i) (*z)(i, train_.label(batch[first + i])) -= 1.0;
  }, &g);
}

void L2RegProblem::GradXG(ConstVecRef x, ConstVecRef y, const Batch& batch, VecRef out) {
  const Index c = train_.classes();
  const double scale = 0.5 * batch.size() * Scale();
  const Vec& e = ExpLambda(x);
  for (Index k = 0; k < train_.dim(); ++k)
    out[k] = scale * e[k] * y.segment(k * c, c).squaredNorm();
}

void L2RegProblem::HessianVec(ConstVecRef x, ConstVecRef y, ConstVecRef v, const Batch& batch,
                              VecRef out) {
  out.setZero();
  if (batch.empty()) return;
  AddRegularizer(x, v, batch.size(), out);
  const WeightMap vw = W(v);
  MutableWeightMap g(out.data(), train_.dim(), train_.classes());
  train_.ProductPass(batch, W(y), &vw, [&](Index first, RowMatrix* z, RowMatrix* u) {
    SoftmaxInPlace(z, train_, batch, first, nullptr);
    for (Index i = 0; i < z->rows(); ++i) {
      auto p = z->row(i);  // becomes row i of R = (diag(p) - p p^T) u_i
      const auto ui = u->row(i);
      const double pu = p.dot(ui);
      p = (p.array() * (ui.array() - pu)).matrix();
    }
  }, &g);
}

void L2RegProblem::JacobianVec(ConstVecRef x, ConstVecRef y, ConstVecRef v, const Batch& batch,
                               VecRef out) {
  const Index c = train_.classes();
  const double scale = batch.size() * Scale();
  const Vec& e = ExpLambda(x);
  for (Index k = 0; k < train_.dim(); ++k)
    out[k] = scale * e[k] * y.segment(k * c, c).dot(v.segment(k * c, c));
}

ProblemDefaults L2RegProblem::Defaults(const std::string& algorithm) const {
  ProblemDefaults d;
  d.inner_lr = 100;
  // The hypergradient carries a factor 1/(d C) and lambda must travel to about 10: Adam's steps
  // do not depend on that scale.
  d.outer_optimizer = "adam";
  d.outer_lr = 0.1;
  d.batch_size = 1000;
  (void)algorithm;
  return d;
}

std::vector<std::pair<std::string, std::string>> L2RegProblem::Describe() const {
  return {{"data", path_},
          {"features", Str(train_.dim())},
          {"classes", Str(train_.classes())},
          {"test_samples", Str(test_.global_rows())}};
}

std::vector<std::pair<std::string, std::string>> L2RegProblem::Identity() const {
  auto id = Problem::Identity();
  id.insert(id.end(), {{"data", path_},
                       {"data_source_sha256", checksum_},
                       {"test_samples", Str(test_.global_rows())}});
  return id;
}

void L2RegProblem::EvalLocalSums(ConstVecRef, ConstVecRef y, VecRef sums) {
  sums.setZero();
  const Batch test = Batch::Range(0, test_.rows());
  if (test.empty()) return;
  test_.Logits(test, W(y), &z_);
  for (Index i = 0; i < test.size(); ++i) {
    Index best = 0;
    z_.row(i).maxCoeff(&best);
    if (best == test_.label(i)) sums[1] += 1;
  }
  SoftmaxInPlace(&z_, test_, test, 0, &ce_);
  sums[0] = ce_.sum();
}

void L2RegProblem::EvalReport(ConstVecRef x, ConstVecRef, ConstVecRef, ConstVecRef sums,
                              MetricsRecord* r) const {
  const double n_test = static_cast<double>(test_.global_rows());
  r->Set("test_loss", n_test > 0 ? sums[0] / n_test : NAN);
  r->Set("test_acc", n_test > 0 ? sums[1] / n_test : NAN);
  r->Set("lambda_mean", x.mean());
  r->Set("lambda_min", x.minCoeff());
  r->Set("lambda_max", x.maxCoeff());
}

}  // namespace bilevel::problems
