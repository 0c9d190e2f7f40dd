// The data problems (hyperclean, l2reg) on small generated dataset files: every oracle against
// finite differences, and shards that add up to the whole.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <memory>
#include <random>
#include <vector>

#include <Eigen/Eigenvalues>

#include "bilevel/algorithm.h"
#include "bilevel/check.h"
#include "bilevel/metrics.h"
#include "generated_data.h"
#include "io/dataset.h"
#include "problems/hyperclean.h"
#include "problems/l2reg.h"
#include "problems/softmax_rows.h"
#include "process_util.h"

namespace bilevel {
namespace {

using problems::HypercleanProblem;
using problems::L2RegProblem;

// Each pixel is zero with probability `zeros` (MNIST: 0.81): at most 30 % nonzero, the rows are
// packed (SoftmaxRows::kPackedDensity).
io::SplitShard DenseSplit(Index rows, Index d, int classes, std::mt19937* rng, bool corrupt,
                          double zeros = 0) {
  std::uniform_real_distribution<float> pixel(0.f, 1.f);
  std::uniform_int_distribution<int> label(0, classes - 1);
  io::SplitShard s;
  s.features.resize(rows, d);
  for (Index i = 0; i < rows; ++i)
    for (Index j = 0; j < d; ++j) s.features(i, j) = pixel(*rng) < zeros ? 0.f : pixel(*rng);
  for (Index i = 0; i < rows; ++i) s.labels.push_back(label(*rng));
  if (corrupt) {
    s.clean_labels = s.labels;
    for (Index i = 0; i < rows; i += 3) s.labels[i] = (s.labels[i] + 1) % classes;
  }
  s.begin = 0;
  s.end = rows;
  return s;
}

// Each feature of a row is nonzero with probability 1/`every`.
io::SplitShard SparseSplit(Index rows, Index d, int classes, std::mt19937* rng, int every = 3) {
  std::uniform_real_distribution<float> value(0.1f, 1.f);
  std::uniform_int_distribution<int> label(0, classes - 1);
  io::SplitShard s;
  s.csr = true;
  s.indptr.push_back(0);
  for (Index i = 0; i < rows; ++i) {
    for (Index j = 0; j < d; ++j) {
      if ((*rng)() % every == 0) {
        s.indices.push_back(static_cast<int>(j));
        s.data.push_back(value(*rng));
      }
    }
    s.indptr.push_back(static_cast<std::int64_t>(s.indices.size()));
    s.labels.push_back(label(*rng));
  }
  s.begin = 0;
  s.end = rows;
  return s;
}

// The split's rows with the columns in `drop` removed.
io::SplitShard WithoutColumns(const io::SplitShard& s, const std::vector<int>& drop) {
  io::SplitShard out = s;
  out.indices.clear();
  out.data.clear();
  out.indptr.assign(1, 0);
  for (std::size_t i = 0; i + 1 < s.indptr.size(); ++i) {
    for (std::int64_t k = s.indptr[i]; k < s.indptr[i + 1]; ++k) {
      if (std::find(drop.begin(), drop.end(), s.indices[k]) != drop.end()) continue;
      out.indices.push_back(s.indices[k]);
      out.data.push_back(s.data[k]);
    }
    out.indptr.push_back(static_cast<std::int64_t>(out.indices.size()));
  }
  return out;
}

// The same rows stored dense (d columns).
io::SplitShard Densified(const io::SplitShard& s, Index d) {
  io::SplitShard out;
  const Index rows = static_cast<Index>(s.indptr.size()) - 1;
  out.features = io::FeatureMatrix::Zero(rows, d);
  for (Index i = 0; i < rows; ++i)
    for (std::int64_t k = s.indptr[i]; k < s.indptr[i + 1]; ++k)
      out.features(i, s.indices[k]) = s.data[k];
  out.labels = s.labels;
  out.begin = 0;
  out.end = rows;
  return out;
}

// `zeros`: the dense rows' fraction of zero pixels (0.8: packed rows).
// A sparse dataset of d features and `classes` classes whose train, val and test splits have
// rows[0], rows[1] and rows[2] rows of SparseSplit(..., every), drawn in that order from `seed`.
io::Dataset SparseData(Index d, int classes, unsigned seed, int every, std::array<Index, 3> rows) {
  std::mt19937 rng(seed);
  io::Dataset data = testing::GeneratedDataset(d, classes, "csr");
  data.train = SparseSplit(rows[0], d, classes, &rng, every);
  data.val = SparseSplit(rows[1], d, classes, &rng, every);
  data.test = SparseSplit(rows[2], d, classes, &rng, every);
  return data;
}

std::string MakeFile(const testing::ScratchDir& dir, bool sparse, double zeros = 0) {
  std::mt19937 rng(3);
  io::Dataset data = testing::GeneratedDataset(7, 4, sparse ? "csr" : "dense");
  if (sparse) {
    data.train = SparseSplit(23, 7, 4, &rng);
    data.val = SparseSplit(11, 7, 4, &rng);
    data.test = SparseSplit(9, 7, 4, &rng);
  } else {
    data.attributes.corruption_rate = 0.33;
    data.train = DenseSplit(23, 7, 4, &rng, true, zeros);
    data.val = DenseSplit(11, 7, 4, &rng, false, zeros);
    data.test = DenseSplit(9, 7, 4, &rng, false, zeros);
  }
  const std::string path =
      dir.File(sparse ? "sparse.h5" : zeros > 0 ? "packed.h5" : "dense.h5");
  io::WriteDataset(path, data);
  return path;
}

Vec RandomVec(Index n, int seed, double scale) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> g(0, scale);
  Vec v(n);
  for (Index i = 0; i < n; ++i) v[i] = g(rng);
  return v;
}

// The header's description of how rank 0 holds its training rows.
std::string TrainRows(const Problem& problem) {
  for (const auto& [key, value] : problem.Describe())
    if (key == "train_rows") return value;
  return "";
}

TEST(Hyperclean, OraclesMatchFiniteDifferencesOnDenseAndPackedRows) {
  testing::ScratchDir dir;
  for (const double zeros : {0.0, 0.8}) {
    HypercleanProblem problem(MakeFile(dir, false, zeros), 0, 1);
    EXPECT_EQ(TrainRows(problem), zeros > 0 ? "packed" : "dense");
    EXPECT_EQ(problem.DimOuter(), 23);
    EXPECT_EQ(problem.DimInner(), 8 * 4);  // a bias feature
    CheckOptions o;
    o.tolerance = 1e-6;
    const OracleCheckReport report = CheckOracles(problem, RandomVec(23, 1, 1.0),
                                                  RandomVec(32, 2, 0.5), o);
    EXPECT_TRUE(report.passed) << "zeros " << zeros << "\n" << report.ToString();
  }
}

// Dense rows kept packed give the dense kernels' logits and products: full batches (two
// chunks of rows and a last partial one), minibatches with a row twice, a second weight
// matrix (Hessian and Jacobian products), a diagonal term, known probabilities; for class
// counts with compiled kernels (10) and without (4).
TEST(SoftmaxRows, PackedRowsGiveTheDenseRowsProducts) {
  using problems::MutableWeightMap;
  using problems::RowMatrix;
  using problems::SoftmaxRows;
  using problems::WeightMap;
  for (const int classes : {4, 10}) {
    SCOPED_TRACE(::testing::Message() << "C = " << classes);
    std::mt19937 rng(classes);
    io::SplitShard shard = DenseSplit(150, 30, classes, &rng, false, 0.8);
    shard.num_features = 30;
    shard.num_classes = classes;
    shard.num_rows = 150;
    const SoftmaxRows packed(shard, true, /*pack=*/true), dense(shard, true, /*pack=*/false);
    ASSERT_TRUE(packed.packed());
    ASSERT_FALSE(dense.packed());
    const Index dim = packed.dim(), q = dim * classes;
    const Vec wv = RandomVec(q, 30, 0.5), vv = RandomVec(q, 31, 1.0), mv = RandomVec(q, 32, 1.0);
    const WeightMap w(wv.data(), dim, classes), v(vv.data(), dim, classes);
    const std::vector<Index> some = {7, 140, 7, 0, 99, 149};
    auto near = [](const RowMatrix& a, const RowMatrix& b, const char* what) {
      ASSERT_EQ(a.rows(), b.rows());
      EXPECT_LE((a - b).norm(), 1e-13 * b.norm()) << what;
    };
    for (const Batch& batch : {Batch::Range(0, 150), Batch::List(some.data(), 6)}) {
      SCOPED_TRACE(::testing::Message() << "batch of " << batch.size());
      RowMatrix za, zb, ua, ub;
      packed.Logits(batch, w, &za);
      dense.Logits(batch, w, &zb);
      near(za, zb, "Z");
      packed.Logits(batch, w, v, &za, &ua);
      dense.Logits(batch, w, v, &zb, &ub);
      near(za, zb, "Z of (W, V)");
      near(ua, ub, "U of (W, V)");
      const SoftmaxRows::Diagonal diagonal{0.3, nullptr, mv.data()};
      for (const bool with_v : {false, true}) {
        Vec ga(q), gb(q);
        auto pass = [&](const SoftmaxRows& rows, Vec* g) {
          MutableWeightMap gm(g->data(), dim, classes);
          rows.ProductPass(batch, w, with_v ? &v : nullptr, [&](Index, RowMatrix* z, RowMatrix* u) {
            z->array() = z->array().tanh();
            if (u) *z += 0.5 * *u;
          }, &gm, &diagonal);
        };
        pass(packed, &ga);
        pass(dense, &gb);
        EXPECT_LE((ga - gb).norm(), 1e-13 * gb.norm()) << (with_v ? "with V" : "without V");
      }
    }
    // Known probabilities, on the full batch.
    const Batch all = Batch::Range(0, 150);
    Vec ga(q), gb(q);
    for (const SoftmaxRows* rows : {&packed, &dense}) {
      Vec* g = rows == &packed ? &ga : &gb;
      MutableWeightMap gm(g->data(), dim, classes);
      const RowMatrix& probs = rows->FullProbabilities(w);
      rows->ProductPass(all, w, &v, [&](Index, RowMatrix* z, RowMatrix* u) { *z -= *u; }, &gm,
                        nullptr, &probs);
    }
    EXPECT_LE((ga - gb).norm(), 1e-13 * gb.norm()) << "known probabilities";
  }
}

// A sparse file's features are renumbered by their count over the whole train split, most
// first and ties by the file's order, alike on every rank; each block holds its rows' entries
// under the new numbers, in increasing order. Dense files keep their order.
TEST(LoadDataBlocks, SparseFeaturesGoByTheirTrainCountsMostFirst) {
  testing::ScratchDir dir;
  std::mt19937 rng(11);
  const Index d = 30;
  io::Dataset data = testing::GeneratedDataset(d, 3, "csr");
  // Features 4 and 21 are in no train row: they go last, and are dropped from every split.
  data.train = WithoutColumns(SparseSplit(25, d, 3, &rng, 4), {4, 21});
  data.val = SparseSplit(13, d, 3, &rng, 4);
  data.test = SparseSplit(9, d, 3, &rng, 4);
  const std::string path = dir.File("counts.h5");
  io::WriteDataset(path, data);

  std::vector<std::int64_t> counts(d, 0);
  for (const std::int32_t j : data.train.indices) ++counts[j];
  EXPECT_EQ(io::ReadColumnCounts(path, "train"), counts);
  std::vector<std::int32_t> order(d);
  for (Index k = 0; k < d; ++k) order[k] = static_cast<std::int32_t>(k);
  std::stable_sort(order.begin(), order.end(),
                   [&](std::int32_t a, std::int32_t b) { return counts[a] > counts[b]; });
  ASSERT_NE(order[0], 0) << "the generated counts should not be in the file's order already";
  std::vector<std::int32_t> place(d);
  for (Index k = 0; k < d; ++k) place[order[k]] = static_cast<std::int32_t>(k);

  ASSERT_EQ(counts[4] + counts[21], 0);
  ASSERT_EQ(std::count(counts.begin(), counts.end(), 0), 2) << "other features lack train rows";
  const Index kept = d - 2;
  for (const int rank : {0, 1}) {
    const problems::DataBlocks blocks = problems::LoadDataBlocks(path, rank, 2);
    EXPECT_EQ(blocks.feature_order, order) << "rank " << rank;
    EXPECT_EQ(blocks.file_features, d);
    for (const io::SplitShard* s : {&blocks.train, &blocks.val, &blocks.test})
      EXPECT_EQ(s->num_features, kept) << "rank " << rank;
    const std::pair<const io::SplitShard*, const io::SplitShard*> splits[] = {
        {&blocks.train, &data.train}, {&blocks.val, &data.val}, {&blocks.test, &data.test}};
    for (const auto& [block, file] : splits) {
      for (Index i = 0; i < block->size(); ++i) {
        const Index row = block->begin + i;
        std::vector<std::pair<std::int32_t, float>> expected, held;
        for (std::int64_t e = file->indptr[row]; e < file->indptr[row + 1]; ++e)
          if (place[file->indices[e]] < kept)
            expected.emplace_back(place[file->indices[e]], file->data[e]);
        std::sort(expected.begin(), expected.end());
        for (std::int64_t e = block->indptr[i]; e < block->indptr[i + 1]; ++e)
          held.emplace_back(block->indices[e], block->data[e]);
        EXPECT_EQ(held, expected) << "rank " << rank << ", row " << row;
      }
    }
  }
  const std::string dense = MakeFile(dir, false);
  EXPECT_TRUE(problems::LoadDataBlocks(dense, 0, 1).feature_order.empty());
  try {
    io::ReadColumnCounts(dense, "train");
    ADD_FAILURE() << "ReadColumnCounts read a dense file";
  } catch (const io::IoError& e) {
    EXPECT_NE(std::string(e.what()).find(dense), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("not csr"), std::string::npos) << e.what();
  }
}

// J v for a v that lives on some blocks only (stocBiO's Neumann estimate) reads those blocks
// only and gives JacobianVec's bits.
TEST(L2Reg, JacobianVecOnBlocksIsJacobianVec) {
  testing::ScratchDir dir;
  L2RegProblem problem(MakeFile(dir, true), 0, 1);
  const Index d = problem.DimOuter(), c = problem.DimInner() / d;
  const Vec x = RandomVec(d, 5, 1.0), y = RandomVec(d * c, 6, 0.5);
  const std::vector<Index> blocks = {0, 2, 3, 6};
  Vec v = Vec::Zero(d * c), poisoned = Vec::Constant(d * c, NAN);
  const Vec random = RandomVec(d * c, 7, 1.0);
  for (const Index k : blocks) {
    v.segment(k * c, c) = random.segment(k * c, c);
    poisoned.segment(k * c, c) = random.segment(k * c, c);
  }
  const Batch batch = Batch::Range(0, problem.LocalShard(Split::kInner).size());
  Vec whole(d), on_blocks = Vec::Constant(d, 42.0);
  problem.JacobianVec(x, y, v, batch, whole);
  // NaN off the blocks: an entry read there would show.
  problem.JacobianVecOnBlocks(x, y, poisoned, batch, blocks, on_blocks);
  EXPECT_EQ(on_blocks, whole);
  EXPECT_GT(whole.cwiseAbs().maxCoeff(), 0.0);
}

TEST(L2Reg, OraclesMatchFiniteDifferencesOnSparseAndDenseData) {
  testing::ScratchDir dir;
  for (bool sparse : {true, false}) {
    L2RegProblem problem(MakeFile(dir, sparse), 0, 1);
    EXPECT_EQ(problem.DimOuter(), 7);
    EXPECT_EQ(problem.DimInner(), 7 * 4);
    CheckOptions o;
    o.tolerance = 1e-6;
    const OracleCheckReport report = CheckOracles(problem, RandomVec(7, 3, 1.0),
                                                  RandomVec(28, 4, 0.5), o);
    EXPECT_TRUE(report.passed) << (sparse ? "csr\n" : "dense\n") << report.ToString();
  }
}

// Features that no train row holds are left out of W (DataBlocks): their rows of W would be
// 0 for any lambda. On a sparse file with three such features (held by val and test rows),
// l2reg gives the values and oracles of the same data stored dense (a dense file keeps every
// feature, in the file's order) once x, y and v are put in the file's order (ToDataOrder, the
// left-out rows as zeros): grad_y G, H v, J v and grad_lambda G are those of the whole
// problem, their left-out entries 0 included; grad_y F agrees on the rows W keeps (it is not
// 0 on the others, but they do not reach the hypergradient: J is 0 there).
TEST(L2Reg, FeaturesTheTrainSplitLacksAreLeftOutOfW) {
  testing::ScratchDir dir;
  const Index d = 12, c = 3;
  const std::vector<int> lacking = {2, 7, 11};
  std::mt19937 rng(21);
  io::Dataset sparse = testing::GeneratedDataset(d, c, "csr");
  sparse.train = WithoutColumns(SparseSplit(20, d, c, &rng, 3), lacking);
  sparse.val = SparseSplit(10, d, c, &rng, 2);
  sparse.test = SparseSplit(8, d, c, &rng, 2);
  for (const int j : lacking)
    ASSERT_NE(std::count(sparse.val.indices.begin(), sparse.val.indices.end(), j), 0);
  io::Dataset dense = testing::GeneratedDataset(d, c, "dense");
  dense.train = Densified(sparse.train, d);
  dense.val = Densified(sparse.val, d);
  dense.test = Densified(sparse.test, d);
  const std::string sparse_path = dir.File("lacking_sparse.h5");
  const std::string dense_path = dir.File("lacking_dense.h5");
  io::WriteDataset(sparse_path, sparse);
  io::WriteDataset(dense_path, dense);

  L2RegProblem ps(sparse_path, 0, 1), pd(dense_path, 0, 1);
  const Index q = ps.DimInner();
  ASSERT_EQ(ps.DimOuter(), d);
  ASSERT_EQ(q, (d - 3) * c);
  ASSERT_EQ(pd.DimInner(), d * c);
  // x (d) and y-shaped vectors (q) of the sparse problem in the file's order and shape.
  auto file_x = [&](Vec x) {
    Vec y = Vec::Zero(q);
    ps.ToDataOrder(&x, &y);
    return x;
  };
  auto file_y = [&](Vec y) {
    Vec x = Vec::Zero(d);
    ps.ToDataOrder(&x, &y);
    EXPECT_EQ(y.size(), d * c);
    return y;
  };
  const Vec xs = RandomVec(d, 41, 1.0), ys = RandomVec(q, 42, 0.5), vs = RandomVec(q, 43, 1.0);
  const Vec xd = file_x(xs), yd = file_y(ys), vd = file_y(vs);
  for (const int j : lacking) EXPECT_EQ(yd.segment(j * c, c).norm(), 0.0) << "feature " << j;
  auto expect_near = [](const Vec& got, const Vec& want, const std::string& what) {
    ASSERT_EQ(got.size(), want.size()) << what;
    EXPECT_LE((got - want).norm(), 1e-12 * (1 + want.norm())) << what;
  };

  const std::vector<Index> some = {0, 3, 4, 9};
  for (const Batch& batch : {Batch::Range(0, 20), Batch::List(some.data(), 4)}) {
    const std::string b = ", batch of " + std::to_string(batch.size());
    EXPECT_NEAR(ps.ValueG(xs, ys, batch), pd.ValueG(xd, yd, batch),
                1e-12 * std::abs(pd.ValueG(xd, yd, batch)));
    Vec gs(q), gd(d * c), js(d), jd(d);
    ps.GradYG(xs, ys, batch, gs);
    pd.GradYG(xd, yd, batch, gd);
    expect_near(file_y(gs), gd, "grad_y G" + b);
    ps.HessianVec(xs, ys, vs, batch, gs);
    pd.HessianVec(xd, yd, vd, batch, gd);
    expect_near(file_y(gs), gd, "H v" + b);
    ps.JacobianVec(xs, ys, vs, batch, js);
    pd.JacobianVec(xd, yd, vd, batch, jd);
    expect_near(file_x(js), jd, "J v" + b);
    for (const int j : lacking) EXPECT_EQ(jd[j], 0.0);
    ps.GradXG(xs, ys, batch, js);
    pd.GradXG(xd, yd, batch, jd);
    expect_near(file_x(js), jd, "grad_lambda G" + b);
  }
  const Batch val = Batch::Range(0, 10);
  EXPECT_NEAR(ps.ValueF(xs, ys, val), pd.ValueF(xd, yd, val),
              1e-12 * std::abs(pd.ValueF(xd, yd, val)));
  Vec fs(q), fd(d * c);
  ps.GradYF(xs, ys, val, fs);
  pd.GradYF(xd, yd, val, fd);
  Vec fs_file = file_y(fs);
  for (const int j : lacking) {
    EXPECT_GT(fd.segment(j * c, c).norm(), 0.0) << "feature " << j;
    fd.segment(j * c, c).setZero();
  }
  expect_near(fs_file, fd, "grad_y F on the rows W keeps");
  Vec es(2), ed(2);
  ps.EvalLocalSums(xs, ys, es);
  pd.EvalLocalSums(xd, yd, ed);
  expect_near(es, ed, "test loss and accuracy");
}

// A BlockSink that keeps what it is handed: the blocks, in order, and their C sums each.
struct SinkRecorder : BlockSink {
  explicit SinkRecorder(Index classes) : c(classes) {}
  void Take(Index b, const double* sums) override {
    taken.push_back(b);
    values.insert(values.end(), sums, sums + c);
  }
  Index c;
  std::vector<Index> taken;
  std::vector<double> values;
};

// Full-batch passes over sparse data take the logits from the CSR rows and A^T R from the
// whole split's CSC; minibatches both from the batch's own CSC. Both give the same oracles,
// for the class counts with compiled kernels (20) and without (4), with features that no row
// of the split uses (every = 15: about 1 in 5 of them).
TEST(L2Reg, FullBatchColumnPassesEqualRowPasses) {
  testing::ScratchDir dir;
  for (const int classes : {4, 20}) {
    std::mt19937 rng(classes);
    io::Dataset data = testing::GeneratedDataset(40, classes, "csr");
    data.train = SparseSplit(23, 40, classes, &rng, 15);
    data.val = SparseSplit(11, 40, classes, &rng, 15);
    data.test = SparseSplit(9, 40, classes, &rng, 15);
    const std::string path = dir.File("columns" + std::to_string(classes) + ".h5");
    io::WriteDataset(path, data);
    L2RegProblem problem(path, 0, 1);
    const Index q = problem.DimInner();
    const Vec x = RandomVec(40, 8, 1.0), y = RandomVec(q, 9, 0.5), v = RandomVec(q, 10, 1.0);
    for (const Split split : {Split::kInner, Split::kOuter}) {
      const Index n = problem.LocalShard(split).size();
      std::vector<Index> all(n);
      for (Index i = 0; i < n; ++i) all[i] = i;
      const Batch range = Batch::Range(0, n), list = Batch::List(all.data(), n);
      Vec a(q), b(q);
      if (split == Split::kInner) {
        problem.GradYG(x, y, range, a);
        problem.GradYG(x, y, list, b);
        EXPECT_LT((a - b).norm(), 1e-13 * b.norm()) << "grad_y G, C = " << classes;
        problem.HessianVec(x, y, v, range, a);
        problem.HessianVec(x, y, v, list, b);
        EXPECT_LT((a - b).norm(), 1e-13 * b.norm()) << "H v, C = " << classes;
        // A block sink on the full batch (Problem::TakesBlockSink) takes every row of the
        // full pass's sums, in order, with its bits, and nothing is written to `out`.
        for (const bool hessian : {false, true}) {
          SinkRecorder recorder(classes);
          Vec untouched = Vec::Constant(q, 7.0);
          {
            BlockSinkSet set(problem, &recorder);
            if (hessian) {
              problem.HessianVec(x, y, v, range, untouched);
            } else {
              problem.GradYG(x, y, range, untouched);
            }
          }
          if (hessian) {
            problem.HessianVec(x, y, v, range, a);
          } else {
            problem.GradYG(x, y, range, a);
          }
          const std::string what = hessian ? "H v" : "grad_y G";
          ASSERT_EQ(recorder.taken.size(), static_cast<std::size_t>(q / classes)) << what;
          for (std::size_t k = 0; k < recorder.taken.size(); ++k)
            EXPECT_EQ(recorder.taken[k], static_cast<Index>(k)) << what;
          EXPECT_TRUE(Eigen::Map<const Vec>(recorder.values.data(), q) == a) << what;
          EXPECT_TRUE((untouched.array() == 7.0).all()) << what << ": a sink's sums are not written";
        }
        EXPECT_NEAR(problem.ValueG(x, y, range), problem.ValueG(x, y, list), 1e-12);
      } else {
        problem.GradYF(x, y, range, a);
        problem.GradYF(x, y, list, b);
        EXPECT_LT((a - b).norm(), 1e-13 * b.norm()) << "grad_y F, C = " << classes;
        EXPECT_NEAR(problem.ValueF(x, y, range), problem.ValueF(x, y, list), 1e-12);
      }
    }
  }
}

// The regularizer left out of grad_y G and H v (sample_diagonal_omitted) and added back by
// AddSampleDiagonal, in two pieces split inside a feature's row as the slices of the ranks
// may be, |B| times (the oracles are sums over the batch): the same oracles, on full batches
// (CSC passes) and on minibatches (CSR rows).
TEST(L2Reg, SampleDiagonalAddedBackEqualsTheWholeOracle) {
  testing::ScratchDir dir;
  L2RegProblem problem(MakeFile(dir, true), 0, 1);  // d = 7, C = 4
  ASSERT_TRUE(problem.HasSampleDiagonal());
  const Index q = problem.DimInner(), n = problem.LocalShard(Split::kInner).size();
  const Vec x = RandomVec(7, 21, 1.0), y = RandomVec(q, 22, 0.5), v = RandomVec(q, 23, 1.0);
  const std::vector<Index> some = {0, 2, 3};
  for (const Batch& batch : {Batch::Range(0, n), Batch::List(some.data(), 3)}) {
    const double size = static_cast<double>(batch.size());
    for (const bool hessian : {false, true}) {
      Vec whole(q), part(q);
      auto oracle = [&](Vec* out) {
        if (hessian) {
          problem.HessianVec(x, y, v, batch, *out);
        } else {
          problem.GradYG(x, y, batch, *out);
        }
      };
      oracle(&whole);
      problem.set_sample_diagonal_omitted(true);
      oracle(&part);
      problem.set_sample_diagonal_omitted(false);
      const Vec& m = hessian ? v : y;
      EXPECT_GT((whole - part).norm(), 1e-3 * whole.norm()) << "the term was not left out";
      Vec added = Vec::Zero(q);
      const Index cut = 9;  // inside feature 2's row (C = 4)
      problem.AddSampleDiagonal(x, 0, m.head(cut), added.head(cut));
      problem.AddSampleDiagonal(x, cut, m.tail(q - cut), added.tail(q - cut));
      part += size * added;
      EXPECT_LT((whole - part).norm(), 1e-13 * whole.norm())
          << (hessian ? "H v" : "grad_y G") << ", batch of " << batch.size();
    }
  }
}

// Row sparsity (Problem::BlockSize, TouchedBlocks): on sparse rows (40 features, about 4 per
// row), grad_y G_0, H_0 v and grad_y F of a batch are zero outside the blocks it touches, do
// not read y or v there, and with touched_blocks_only() write the touched blocks only, with
// the values of the whole oracle; on minibatches and on the full batch, and for a batch
// that touches nothing.
TEST(L2Reg, TouchedBlocksOnlyOraclesEqualTheWholeOnTheTouchedBlocks) {
  testing::ScratchDir dir;
  io::Dataset data = SparseData(40, 3, 8, 10, {30, 12, 5});
  {  // row 2 is empty
    io::SplitShard& t = data.train;
    const std::int64_t lo = t.indptr[2], hi = t.indptr[3];
    t.indices.erase(t.indices.begin() + lo, t.indices.begin() + hi);
    t.data.erase(t.data.begin() + lo, t.data.begin() + hi);
    for (std::size_t i = 3; i < t.indptr.size(); ++i) t.indptr[i] -= hi - lo;
  }
  const std::string path = dir.File("blocks.h5");
  io::WriteDataset(path, data);
  L2RegProblem problem(path, 0, 1);
  ASSERT_EQ(problem.BlockSize(), 3);
  // W's rows: the features the train split holds (DataBlocks), fewer than the file's 40.
  const Index q = problem.DimInner(), c = 3, features = q / c;
  ASSERT_EQ(problem.DimOuter(), 40);
  ASSERT_LT(features, 40);
  const Vec x = RandomVec(40, 31, 1.0), y = RandomVec(q, 32, 0.5), v = RandomVec(q, 33, 1.0);
  const std::vector<Index> some = {1, 4, 9, 11}, none = {2};  // val has 12 rows
  const Index n = problem.LocalShard(Split::kInner).size();
  const Index n_val = problem.LocalShard(Split::kOuter).size();
  for (int which = 0; which < 3; ++which) {  // grad_y G, H v, grad_y F
    const Split split = which == 2 ? Split::kOuter : Split::kInner;
    std::vector<Batch> batches = {Batch::List(some.data(), 4),
                                  Batch::Range(0, which == 2 ? n_val : n)};
    if (which < 2) batches.push_back(Batch::List(none.data(), 1));
    for (const Batch& batch : batches) {
      const std::string what = std::string(which == 0 ? "grad_y G" : which == 1 ? "H v" : "grad_y F") +
                               ", batch of " + std::to_string(batch.size());
      std::vector<Index> blocks;
      problem.TouchedBlocks(split, batch, &blocks);
      std::vector<bool> touched(features, false);
      for (std::size_t k = 0; k < blocks.size(); ++k) {
        touched[blocks[k]] = true;
        if (k > 0) EXPECT_LT(blocks[k - 1], blocks[k]) << what << ": sorted and distinct";
      }
      if (batch.size() == 1) EXPECT_TRUE(blocks.empty()) << what;
      // y and v poisoned outside the touched blocks: not read there.
      Vec y_poisoned = y, v_poisoned = v;
      for (Index k = 0; k < features; ++k) {
        if (touched[k]) continue;
        y_poisoned.segment(k * c, c).setConstant(NAN);
        v_poisoned.segment(k * c, c).setConstant(NAN);
      }
      auto oracle = [&](const Vec& yy, const Vec& vv, Vec* out) {
        if (which == 0) problem.GradYG(x, yy, batch, *out);
        if (which == 1) problem.HessianVec(x, yy, vv, batch, *out);
        if (which == 2) problem.GradYF(x, yy, batch, *out);
      };
      Vec whole(q), part = Vec::Constant(q, 7.0);
      problem.set_sample_diagonal_omitted(which < 2);
      oracle(y, v, &whole);
      problem.set_touched_blocks_only(true);
      oracle(y_poisoned, v_poisoned, &part);
      problem.set_touched_blocks_only(false);
      problem.set_sample_diagonal_omitted(false);
      for (Index k = 0; k < features; ++k) {
        const auto w = whole.segment(k * c, c), got = part.segment(k * c, c);
        if (touched[k]) {
          EXPECT_LE((got - w).norm(), 1e-13 * (1 + w.norm())) << what << ", feature " << k;
        } else {
          EXPECT_EQ(w.norm(), 0.0) << what << ", feature " << k << " is not touched";
          EXPECT_TRUE((got.array() == 7.0).all()) << what << ", feature " << k << " was written";
        }
      }
      if (batch.size() > 1) EXPECT_GT(whole.norm(), 0.0) << what;
      if (which == 2) continue;
      // With a block sink (Problem::TakesBlockSink): the touched blocks' sums, in increasing
      // order, the bits written to `out` above, and `out` not written at all.
      SinkRecorder recorder(c);
      ASSERT_TRUE(problem.TakesBlockSink());
      Vec untouched = Vec::Constant(q, 7.0);
      problem.set_sample_diagonal_omitted(true);
      problem.set_touched_blocks_only(true);
      {
        BlockSinkSet set(problem, &recorder);
        oracle(y_poisoned, v_poisoned, &untouched);
      }
      problem.set_touched_blocks_only(false);
      problem.set_sample_diagonal_omitted(false);
      EXPECT_EQ(problem.block_sink(), nullptr) << what;
      EXPECT_EQ(recorder.taken, blocks) << what;
      EXPECT_TRUE((untouched.array() == 7.0).all()) << what << ": a sink's sums are not written";
      for (std::size_t k = 0; k < recorder.taken.size() && k < blocks.size(); ++k)
        for (Index j = 0; j < c; ++j)
          EXPECT_EQ(recorder.values[k * c + j], part[blocks[k] * c + j])
              << what << ", block " << blocks[k];
    }
  }
}

// Full-batch Hessian products keep P = softmax(A W) while y stays the same; a new y (even one
// that differs in a single bit) gets a new P: the products equal those of a minibatch that
// holds every row, whatever came before.
template <class P>
void ExpectCachedProbabilitiesFollowY(const std::string& path) {
  P problem(path, 0, 1);
  const Index p = problem.DimOuter(), q = problem.DimInner();
  const Index n = problem.LocalShard(Split::kInner).size();
  std::vector<Index> all(n);
  for (Index i = 0; i < n; ++i) all[i] = i;
  const Batch range = Batch::Range(0, n), list = Batch::List(all.data(), n);
  const Vec x = RandomVec(p, 11, 1.0), v = RandomVec(q, 12, 1.0);
  Vec y = RandomVec(q, 13, 0.5), a(q), b(q);
  for (int step = 0; step < 3; ++step) {
    problem.HessianVec(x, y, v, range, a);
    problem.HessianVec(x, y, v, range, a);  // the kept P
    problem.HessianVec(x, y, v, list, b);
    EXPECT_LT((a - b).norm(), 1e-13 * b.norm()) << "step " << step;
    y[q / 2] = std::nextafter(y[q / 2], 1.0);  // one bit
    if (step == 1) y = RandomVec(q, 14, 0.5);
  }
  // Holds (Problem::set_inner_held, as AID's solves make them): P is kept within a hold
  // without looking at y, and is taken neither for the y of the next hold nor for a call
  // outside any hold (which may come back to the y P had before the hold).
  const Vec ya = RandomVec(q, 21, 0.5), yb = RandomVec(q, 22, 0.5);
  Vec ref_a(q), ref_b(q);
  problem.HessianVec(x, ya, v, list, ref_a);
  problem.HessianVec(x, yb, v, list, ref_b);
  auto held = [&](const Vec& y_held, const Vec& ref, const char* what) {
    InnerHeld hold(problem);
    for (int k = 0; k < 2; ++k) {
      problem.HessianVec(x, y_held, v, range, a);
      EXPECT_LT((a - ref).norm(), 1e-13 * ref.norm()) << what << ", call " << k;
    }
  };
  for (int step = 0; step < 2; ++step) {
    problem.HessianVec(x, ya, v, range, a);  // outside a hold: P of ya, and ya kept
    EXPECT_LT((a - ref_a).norm(), 1e-13 * ref_a.norm()) << "outside, step " << step;
    held(yb, ref_b, "hold at yb");
    problem.HessianVec(x, ya, v, range, a);  // back at ya, outside
    EXPECT_LT((a - ref_a).norm(), 1e-13 * ref_a.norm()) << "after the hold, step " << step;
    held(yb, ref_b, "second hold at yb");
    held(ya, ref_a, "hold at ya");
  }
}

TEST(Hyperclean, CachedProbabilitiesFollowY) {
  testing::ScratchDir dir;
  ExpectCachedProbabilitiesFollowY<HypercleanProblem>(MakeFile(dir, false));
  ExpectCachedProbabilitiesFollowY<HypercleanProblem>(MakeFile(dir, false, 0.8));
}

TEST(L2Reg, CachedProbabilitiesFollowY) {
  testing::ScratchDir dir;
  ExpectCachedProbabilitiesFollowY<L2RegProblem>(MakeFile(dir, true));
}

// At W = 0 every sample's softmax Hessian is (I - 1 1^T / C) / C, so
// lambda_max(H) = lambda_max(A^T A / n) / C + 1 / (d C) (the regularizer at lambda = 0): the
// estimate behind l2reg's automatic inner step, which follows the features' scale (x 10: the
// data part of the curvature x 100).
TEST(L2Reg, InitialCurvatureIsTheGramMatrixOverC) {
  testing::ScratchDir dir;
  for (float scale : {1.0f, 10.0f}) {
    std::mt19937 rng(11);
    io::Dataset data = testing::GeneratedDataset(7, 4, "csr");
    data.train = SparseSplit(23, 7, 4, &rng);
    data.val = SparseSplit(11, 7, 4, &rng);
    data.test = SparseSplit(9, 7, 4, &rng);
    for (float& v : data.train.data) v *= scale;
    const std::string path = dir.File("scaled.h5");
    io::WriteDataset(path, data);
    Eigen::MatrixXd a = Eigen::MatrixXd::Zero(23, 7);
    for (Index i = 0; i < 23; ++i)
      for (auto k = data.train.indptr[i]; k < data.train.indptr[i + 1]; ++k)
        a(i, data.train.indices[k]) = data.train.data[k];
    const Eigen::MatrixXd gram = a.transpose() * a / 23.0;
    const double expected =
        Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd>(gram).eigenvalues().maxCoeff() / 4 + 1.0 / 28;
    L2RegProblem problem(path, 0, 1);
    SerialCommunicator comm;
    EXPECT_NEAR(InitialLambdaMax(problem, comm, 40), expected, 1e-9 * expected) << scale;
    // The recommended step: c / lambda_max to three significant digits.
    ProblemDefaults defaults = problem.Defaults("aid-cg");
    ASSERT_GT(defaults.inner_lr_curvature, 0);
    EXPECT_LT(problem.Defaults("stocbio").inner_lr_curvature, 2);  // stable in every direction
    std::string origin;
    const double alpha = RecommendedInnerStep(problem, comm, defaults, &origin);
    const double exact = defaults.inner_lr_curvature / expected;
    const double unit = std::pow(10.0, std::floor(std::log10(exact)) - 2);
    EXPECT_LE(std::abs(alpha - exact), 0.5 * unit * (1 + 1e-9)) << alpha << " " << exact;
    EXPECT_NEAR(alpha / unit, std::round(alpha / unit), 1e-6) << alpha;
    EXPECT_NE(origin.find("lambda_max"), std::string::npos) << origin;
    defaults.inner_lr_curvature = 0;  // a fixed step is taken as it is
    defaults.inner_lr = 0.123456;
    EXPECT_EQ(RecommendedInnerStep(problem, comm, defaults, &origin), 0.123456);
    EXPECT_TRUE(origin.empty());
  }
}

// lambda stays where an inner step of size alpha is stable for the regularizer:
// alpha exp(lambda_k) / (d C) <= 1, i.e. lambda_k <= log(d C / alpha); below, x is unchanged.
TEST(L2Reg, ProjectionKeepsTheInnerStepStable) {
  testing::ScratchDir dir;
  L2RegProblem problem(MakeFile(dir, true), 0, 1);  // d = 7, C = 4
  const double alpha = 0.5, top = std::log(7.0 * 4.0 / alpha);
  Vec x(7);
  x << -50, 0, 1, top - 1e-9, top, top + 1e-9, 40;
  Vec projected = x;
  problem.ProjectOuter(projected, alpha);
  for (Index k = 0; k < 4; ++k) EXPECT_EQ(projected[k], x[k]);
  for (Index k = 4; k < 7; ++k) EXPECT_DOUBLE_EQ(projected[k], top);
  EXPECT_NEAR(alpha * std::exp(projected[6]) / (7.0 * 4.0), 1.0, 1e-12);
}

// The sums over the shards of 3 ranks equal the one-rank sums, and the evaluation sums too.
template <class P>
void ExpectShardsAddUp(const std::string& path, Index p, Index q) {
  P whole(path, 0, 1);
  const Vec x = RandomVec(p, 5, 1.0), y = RandomVec(q, 6, 0.5), v = RandomVec(q, 7, 1.0);
  auto all = [](const Problem& pr, Split s) { return Batch::Range(0, pr.LocalShard(s).size()); };
  Vec g_whole(q), h_whole(q), j_whole(p), e_whole(whole.NumEvalSums());
  whole.GradYG(x, y, all(whole, Split::kInner), g_whole);
  whole.HessianVec(x, y, v, all(whole, Split::kInner), h_whole);
  whole.JacobianVec(x, y, v, all(whole, Split::kInner), j_whole);
  whole.EvalLocalSums(x, y, e_whole);
  Vec g = Vec::Zero(q), h = Vec::Zero(q), j = Vec::Zero(p), e = Vec::Zero(e_whole.size()), t(q),
      tp(p), te(e.size());
  for (int rank = 0; rank < 3; ++rank) {
    P part(path, rank, 3);
    part.GradYG(x, y, all(part, Split::kInner), t);
    g += t;
    part.HessianVec(x, y, v, all(part, Split::kInner), t);
    h += t;
    part.JacobianVec(x, y, v, all(part, Split::kInner), tp);
    j += tp;
    part.EvalLocalSums(x, y, te);
    e += te;
  }
  EXPECT_LT((g - g_whole).norm(), 1e-12 * g_whole.norm());
  EXPECT_LT((h - h_whole).norm(), 1e-12 * h_whole.norm());
  EXPECT_LT((j - j_whole).norm(), 1e-12 * j_whole.norm());
  EXPECT_LT((e - e_whole).norm(), 1e-12 * e_whole.norm());
}

TEST(Hyperclean, ShardsAddUp) {
  testing::ScratchDir dir;
  ExpectShardsAddUp<HypercleanProblem>(MakeFile(dir, false), 23, 32);
  const std::string packed = MakeFile(dir, false, 0.8);
  ExpectShardsAddUp<HypercleanProblem>(packed, 23, 32);
  // Every rank keeps its rows packed: the decision follows the split, not the shard.
  for (int rank = 0; rank < 3; ++rank)
    EXPECT_EQ(TrainRows(HypercleanProblem(packed, rank, 3)), "packed") << "rank " << rank;
}

// The products by columns of more than one rank (Problem::ColumnFactors, ColumnProduct: what
// ColumnSums does on 3 ranks): every rank's rows of R, in rank order, and each rank's slice of
// ColumnSliceBounds formed from A's columns, make the whole grad_y G_0 and H_0 v of the
// one-rank oracles (sample diagonal omitted); the bounds are slices of whole 8-entry groups.
TEST(L2Reg, ColumnProductsOnTheRanksSlicesMakeTheWholeOracle) {
  testing::ScratchDir dir;
  const std::string path = dir.File("columns.h5");
  io::WriteDataset(path, SparseData(60, 5, 4, 7, {31, 11, 9}));
  L2RegProblem whole(path, 0, 1);
  ASSERT_EQ(whole.ColumnFactorWidth(), 5);
  const Index q = whole.DimInner(), c = 5;
  const Vec x = RandomVec(60, 1, 1.0), y = RandomVec(q, 2, 0.5), v = RandomVec(q, 3, 1.0);
  whole.set_sample_diagonal_omitted(true);
  const Batch all = Batch::Range(0, whole.LocalShard(Split::kInner).size());
  Vec g(q), h(q);
  whole.GradYG(x, y, all, g);
  whole.HessianVec(x, y, v, all, h);
  const std::vector<Index> bounds = whole.ColumnSliceBounds(3);
  ASSERT_EQ(bounds.size(), 4u);
  EXPECT_EQ(bounds.front(), 0);
  EXPECT_EQ(bounds.back(), q);
  for (int r = 1; r < 3; ++r) {
    EXPECT_EQ(bounds[r] % 8, 0);
    EXPECT_LE(bounds[r - 1], bounds[r]);
  }
  EXPECT_TRUE(whole.ColumnSliceBounds(1).empty());
  for (const bool hessian : {false, true}) {
    std::vector<std::unique_ptr<L2RegProblem>> parts;
    std::vector<double> rows;
    for (int r = 0; r < 3; ++r) {
      parts.push_back(std::make_unique<L2RegProblem>(path, r, 3));
      std::vector<double> mine(parts.back()->LocalShard(Split::kInner).size() * c);
      parts.back()->ColumnFactors(x, y, hessian ? v.data() : nullptr, mine.data());
      rows.insert(rows.end(), mine.begin(), mine.end());
    }
    Vec sliced(q);
    for (int r = 0; r < 3; ++r) {
      parts[r]->PrepareColumns(bounds[r], bounds[r + 1]);
      parts[r]->ColumnProduct(rows.data(), bounds[r], bounds[r + 1], sliced.data() + bounds[r]);
    }
    const Vec& expected = hessian ? h : g;
    EXPECT_LT((sliced - expected).norm(), 1e-12 * expected.norm()) << (hessian ? "H v" : "grad");
  }
}

TEST(L2Reg, ShardsAddUp) {
  testing::ScratchDir dir;
  ExpectShardsAddUp<L2RegProblem>(MakeFile(dir, true), 7, 28);
}

TEST(Hyperclean, ReportsCleaningQualityAgainstTheCleanLabels) {
  testing::ScratchDir dir;
  HypercleanProblem problem(MakeFile(dir, false), 0, 1);
  // Flag exactly the corrupted samples (every third): precision and recall 1.
  Vec x = Vec::Constant(23, 3.0);
  for (Index i = 0; i < 23; i += 3) x[i] = -3.0;
  Vec sums(problem.NumEvalSums());
  problem.EvalLocalSums(x, Vec::Zero(32), sums);
  MetricsRecord r;
  problem.EvalReport(x, Vec::Zero(32), Vec::Zero(23), sums, &r);
  EXPECT_EQ(r.Number("cleaning_precision"), 1.0);
  EXPECT_EQ(r.Number("cleaning_recall"), 1.0);
  EXPECT_EQ(r.Number("clean_kept"), 1.0);
  // W = 0: every class equally likely, loss log(4).
  EXPECT_NEAR(r.Number("test_loss"), std::log(4.0), 1e-12);
}

}  // namespace
}  // namespace bilevel
