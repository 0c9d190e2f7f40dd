// Dataset files (io/dataset.h) on real HDF5 files: round trips dense and CSR, 4-rank shards that
// reassemble the split and read about a quarter of its bytes, every reader check on files
// damaged in place, the writer's refusal of bad data, and the compressed input streams.
#include "io/dataset.h"

#include <gtest/gtest.h>
#include <hdf5.h>
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "bilevel/problem.h"

namespace bilevel::io {
namespace {

namespace fs = std::filesystem;

// A fresh directory under /tmp, removed with everything in it at the end of its scope.
class TempDir {
 public:
  TempDir() {
    char name[] = "/tmp/bilevel_dataset_test_XXXXXX";
    if (mkdtemp(name) != nullptr) path_ = name;
  }
  ~TempDir() {
    std::error_code ignored;
    if (!path_.empty()) fs::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string File(const std::string& name) const { return path_ + "/" + name; }
  // Names of the files in the directory.
  std::vector<std::string> Entries() const {
    std::vector<std::string> names;
    for (const auto& entry : fs::directory_iterator(path_))
      names.push_back(entry.path().filename().string());
    return names;
  }

 private:
  std::string path_;
};

// A split of n rows: dense (n x d) or CSR with about `density` of the entries, some rows empty.
SplitShard MakeSplit(bool csr, Index n, Index d, Index classes, std::uint64_t seed,
                     double density = 0.3) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> value(-2, 2);
  std::uniform_real_distribution<double> coin(0, 1);
  SplitShard s;
  s.csr = csr;
  if (csr) {
    s.indptr.push_back(0);
    for (Index i = 0; i < n; ++i) {
      for (Index j = 0; j < d; ++j) {
        // Every 7th row empty; the others hold their first and last column, at least.
        if (i % 7 == 3 || (j > 0 && j < d - 1 && coin(rng) > density)) continue;
        s.indices.push_back(static_cast<std::int32_t>(j));
        s.data.push_back(value(rng));
      }
      s.indptr.push_back(static_cast<std::int64_t>(s.indices.size()));
    }
  } else {
    s.features.resize(n, d);
    for (Index k = 0; k < n * d; ++k) s.features.data()[k] = value(rng);
  }
  for (Index i = 0; i < n; ++i) s.labels.push_back(static_cast<std::int32_t>(rng() % classes));
  return s;
}

Dataset MakeDataset(bool csr, Index n_train, Index n_val, Index n_test, Index d, Index classes,
                    bool clean_labels, double density = 0.3) {
  Dataset data;
  DatasetAttributes& a = data.attributes;
  a.num_features = d;
  a.num_classes = classes;
  a.storage = csr ? "csr" : "dense";
  a.sources = "a.train; a.test";
  a.source_sha256 = std::string(64, 'a') + "; " + std::string(64, 'b');
  a.corruption_rate = clean_labels ? 0.25 : 0;
  a.corruption_seed = clean_labels ? 7 : 0;
  a.split_seed = 11;
  data.train = MakeSplit(csr, n_train, d, classes, 1, density);
  data.val = MakeSplit(csr, n_val, d, classes, 2);
  data.test = MakeSplit(csr, n_test, d, classes, 3);
  if (clean_labels) {
    data.train.clean_labels = data.train.labels;
    for (size_t i = 0; i < data.train.labels.size(); i += 4)
      data.train.labels[i] = static_cast<std::int32_t>((data.train.labels[i] + 1) % classes);
  }
  return data;
}

// Rows [begin, end) of a whole split, as ReadSplitShard should return them.
void ExpectRowsEqual(const SplitShard& whole, const SplitShard& part) {
  const Index begin = part.begin, n = part.size();
  ASSERT_EQ(static_cast<Index>(part.labels.size()), n);
  for (Index i = 0; i < n; ++i) EXPECT_EQ(part.labels[i], whole.labels[begin + i]) << "row " << i;
  if (whole.clean_labels.empty()) {
    EXPECT_TRUE(part.clean_labels.empty());
  } else {
    ASSERT_EQ(static_cast<Index>(part.clean_labels.size()), n);
    for (Index i = 0; i < n; ++i) EXPECT_EQ(part.clean_labels[i], whole.clean_labels[begin + i]);
  }
  ASSERT_EQ(part.csr, whole.csr);
  if (!whole.csr) {
    ASSERT_EQ(part.features.rows(), n);
    EXPECT_TRUE(part.features == whole.features.middleRows(begin, n));
    return;
  }
  ASSERT_EQ(static_cast<Index>(part.indptr.size()), n + 1);
  EXPECT_EQ(part.indptr[0], 0);
  const std::int64_t first = whole.indptr[begin];
  for (Index i = 0; i <= n; ++i) EXPECT_EQ(part.indptr[i], whole.indptr[begin + i] - first);
  ASSERT_EQ(static_cast<std::int64_t>(part.indices.size()), whole.indptr[begin + n] - first);
  for (size_t k = 0; k < part.indices.size(); ++k) {
    EXPECT_EQ(part.indices[k], whole.indices[first + k]);
    EXPECT_EQ(part.data[k], whole.data[first + k]);
  }
}

TEST(DatasetTest, RoundTripDense) {
  TempDir dir;
  const std::string path = dir.File("dense.h5");
  const Dataset data = MakeDataset(false, 50, 20, 30, 7, 4, /*clean_labels=*/true);
  WriteDataset(path, data);
  EXPECT_EQ(dir.Entries(), std::vector<std::string>{"dense.h5"});  // no temporary file left

  const DatasetInfo info = ReadDatasetInfo(path);
  EXPECT_EQ(info.format_version, 1);
  EXPECT_FALSE(info.csr());
  EXPECT_EQ(info.attributes.num_features, 7);
  EXPECT_EQ(info.attributes.num_classes, 4);
  EXPECT_EQ(info.attributes.storage, "dense");
  EXPECT_EQ(info.attributes.sources, data.attributes.sources);
  EXPECT_EQ(info.attributes.source_sha256, data.attributes.source_sha256);
  EXPECT_EQ(info.attributes.corruption_rate, 0.25);
  EXPECT_EQ(info.attributes.corruption_seed, 7);
  EXPECT_EQ(info.attributes.split_seed, 11);
  EXPECT_EQ(info.train.rows, 50);
  EXPECT_EQ(info.val.rows, 20);
  EXPECT_EQ(info.test.rows, 30);
  EXPECT_EQ(info.ForSplit("val").nnz, 20 * 7);
  EXPECT_TRUE(info.train.has_clean_labels);
  EXPECT_FALSE(info.test.has_clean_labels);
  EXPECT_THROW(info.ForSplit("dev"), std::invalid_argument);

  const SplitShard* splits[3] = {&data.train, &data.val, &data.test};
  for (int k = 0; k < 3; ++k) {
    const std::string& name = SplitNames()[k];
    const Index n = static_cast<Index>(splits[k]->labels.size());
    const SplitShard read = ReadSplitShard(path, name, 0, n);
    EXPECT_EQ(read.num_rows, n);
    EXPECT_EQ(read.num_features, 7);
    EXPECT_EQ(read.num_classes, 4);
    SCOPED_TRACE(name);
    ExpectRowsEqual(*splits[k], read);
  }
}

TEST(DatasetTest, RoundTripCsrWithEmptySplitAndRows) {
  TempDir dir;
  const std::string path = dir.File("csr.h5");
  const Dataset data = MakeDataset(true, 60, 25, 0, 40, 3, /*clean_labels=*/false);
  WriteDataset(path, data);
  const DatasetInfo info = ReadDatasetInfo(path);
  EXPECT_TRUE(info.csr());
  EXPECT_EQ(info.train.rows, 60);
  EXPECT_EQ(info.train.nnz, static_cast<Index>(data.train.indices.size()));
  EXPECT_EQ(info.test.rows, 0);
  EXPECT_EQ(info.test.nnz, 0);
  EXPECT_FALSE(info.train.has_clean_labels);
  for (const std::string& name : SplitNames()) {
    SCOPED_TRACE(name);
    const SplitShard& whole = name == "train" ? data.train : name == "val" ? data.val : data.test;
    const Index n = static_cast<Index>(whole.labels.size());
    ExpectRowsEqual(whole, ReadSplitShard(path, name, 0, n));
  }
  // An empty block of rows anywhere is fine.
  const SplitShard none = ReadSplitShard(path, "train", 17, 17);
  EXPECT_EQ(none.size(), 0);
  EXPECT_EQ(none.indptr, std::vector<std::int64_t>{0});
}

// Each of 4 ranks reads its block; the blocks put together are the split.
TEST(DatasetTest, FourRankShardsReassembleTheSplit) {
  for (bool csr : {false, true}) {
    SCOPED_TRACE(csr ? "csr" : "dense");
    TempDir dir;
    const std::string path = dir.File("data.h5");
    const Dataset data = MakeDataset(csr, 103, 10, 5, 9, 5, /*clean_labels=*/true);
    WriteDataset(path, data);
    const Index n = ReadDatasetInfo(path).train.rows;
    Index next = 0;
    for (int rank = 0; rank < 4; ++rank) {
      const Shard block = BlockShard(n, rank, 4);
      const SplitShard shard = ReadSplitShard(path, "train", block.begin, block.end);
      EXPECT_EQ(shard.begin, next);
      EXPECT_EQ(shard.num_rows, n);
      EXPECT_NEAR(static_cast<double>(shard.size()), n / 4.0, 1.0);
      ExpectRowsEqual(data.train, shard);
      next = shard.end;
    }
    EXPECT_EQ(next, n);
  }
}

// Bytes this process has read so far (read(2), pread(2), ...), from /proc/self/io.
long long ReadBytes() {
  std::ifstream in("/proc/self/io");
  std::string key;
  long long value = -1;
  while (in >> key >> value)
    if (key == "rchar:") return value;
  return -1;
}

// A rank's read of its block costs about its share of the bytes, not the whole split.
TEST(DatasetTest, ShardReadsAboutItsShareOfTheBytes) {
  if (ReadBytes() < 0) GTEST_SKIP() << "/proc/self/io has no rchar here";
  for (bool csr : {false, true}) {
    SCOPED_TRACE(csr ? "csr" : "dense");
    TempDir dir;
    const std::string path = dir.File("big.h5");
    // Dense: 8000 x 64 floats = 2 MB of features; CSR: 8000 x 400 at 10% = 2.5 MB of entries.
    const Dataset data = MakeDataset(csr, 8000, 10, 10, csr ? 400 : 64, 10, false, 0.1);
    WriteDataset(path, data);
    const Index n = 8000;

    long long before = ReadBytes();
    const SplitShard whole = ReadSplitShard(path, "train", 0, n);
    const long long whole_bytes = ReadBytes() - before;
    const Shard block = BlockShard(n, 0, 4);
    before = ReadBytes();
    const SplitShard part = ReadSplitShard(path, "train", block.begin, block.end);
    const long long part_bytes = ReadBytes() - before;

    std::printf("%s: whole train split read %lld bytes, rank 0 of 4 read %lld bytes\n",
                csr ? "csr" : "dense", whole_bytes, part_bytes);
    const long long payload = csr ? static_cast<long long>(whole.indices.size()) * 8 : n * 64 * 4;
    EXPECT_GE(whole_bytes, payload) << "the whole split is not read through read(2)?";
    EXPECT_LT(part_bytes, whole_bytes / 2)
        << "rank 0 of 4 read " << part_bytes << " of " << whole_bytes << " bytes";
    EXPECT_LT(part_bytes, whole_bytes * 0.35);  // a quarter, plus metadata and sieve reads
    EXPECT_GT(part_bytes, whole_bytes * 0.2);
    ExpectRowsEqual(whole, part);
  }
}

// --- The reader's checks, on files damaged in place ---------------------------------------

// Runs `damage` on the open file, then expects `read` to throw an IoError whose one-line
// message contains every one of `parts`.
template <typename Damage, typename Read>
void ExpectDamageReported(bool csr, Damage damage, Read read,
                          const std::vector<std::string>& parts) {
  TempDir dir;
  const std::string path = dir.File("bad.h5");
  WriteDataset(path, MakeDataset(csr, 40, 10, 10, 6, 3, /*clean_labels=*/true));
  {
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
    const hid_t file = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
    ASSERT_GE(file, 0);
    damage(file);
    H5Fclose(file);
  }
  try {
    read(path);
    ADD_FAILURE() << "no error for the damaged file";
  } catch (const IoError& e) {
    const std::string message = e.what();
    EXPECT_EQ(message.find('\n'), std::string::npos) << message;
    EXPECT_EQ(message.rfind(path, 0), 0u) << message;
    for (const auto& part : parts) EXPECT_NE(message.find(part), std::string::npos) << message;
  }
}

template <typename T>
void Overwrite(hid_t file, const char* name, hid_t type, std::vector<T> values) {
  const hid_t set = H5Dopen2(file, name, H5P_DEFAULT);
  ASSERT_GE(set, 0) << name;
  const hid_t space = H5Dget_space(set);
  hsize_t dims[2] = {0, 0};
  H5Sget_simple_extent_dims(space, dims, nullptr);
  // Read all, change the first values, write all back.
  const hssize_t count = H5Sget_simple_extent_npoints(space);
  std::vector<T> all(count);
  ASSERT_GE(H5Dread(set, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, all.data()), 0);
  for (size_t i = 0; i < values.size(); ++i) all[i] = values[i];
  ASSERT_GE(H5Dwrite(set, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, all.data()), 0);
  H5Sclose(space);
  H5Dclose(set);
}

// Sets element `index` of a dataset to `value`.
template <typename T>
void SetElement(hid_t file, const char* name, hid_t type, hsize_t index, T value) {
  const hid_t set = H5Dopen2(file, name, H5P_DEFAULT);
  ASSERT_GE(set, 0) << name;
  const hid_t space = H5Dget_space(set);
  const int rank = H5Sget_simple_extent_ndims(space);
  hsize_t dims[2] = {0, 0};
  H5Sget_simple_extent_dims(space, dims, nullptr);
  hsize_t start[2] = {index, 0}, one[2] = {1, 1};
  if (rank == 2) start[0] = index / dims[1], start[1] = index % dims[1];
  H5Sselect_hyperslab(space, H5S_SELECT_SET, start, nullptr, one, nullptr);
  const hid_t mem = H5Screate_simple(rank, one, nullptr);
  ASSERT_GE(H5Dwrite(set, type, mem, space, H5P_DEFAULT, &value), 0);
  H5Sclose(mem);
  H5Sclose(space);
  H5Dclose(set);
}

// Replaces a dataset by a 1-D one of `n` zeros of `type`.
void Replace(hid_t file, const char* name, hid_t type, hsize_t n) {
  ASSERT_GE(H5Ldelete(file, name, H5P_DEFAULT), 0);
  const hid_t space = H5Screate_simple(1, &n, nullptr);
  const hid_t set = H5Dcreate2(file, name, type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  H5Dclose(set);
  H5Sclose(space);
}

void Info(const std::string& path) { ReadDatasetInfo(path); }
auto ReadRows(const char* split, Index begin, Index end) {
  return [=](const std::string& path) { ReadSplitShard(path, split, begin, end); };
}

TEST(DatasetTest, InfoReportsInconsistentDatasets) {
  // indptr decreasing.
  ExpectDamageReported(
      true, [](hid_t f) { SetElement<std::int64_t>(f, "train/indptr", H5T_NATIVE_INT64, 5, 0); },
      Info, {"train/indptr", "row 5", "smaller than the previous"});
  // indptr not ending at nnz.
  ExpectDamageReported(true,
                       [](hid_t f) {
                         Replace(f, "val/data", H5T_IEEE_F32LE, 3);
                         Replace(f, "val/indices", H5T_STD_I32LE, 3);
                       },
                       Info, {"val/indptr", "nnz = 3"});
  // indptr of the wrong length.
  ExpectDamageReported(true, [](hid_t f) { Replace(f, "test/indptr", H5T_STD_I64LE, 4); }, Info,
                       {"test/indptr", "length 4, expected 11"});
  // data and indices of different lengths.
  ExpectDamageReported(true, [](hid_t f) { Replace(f, "train/data", H5T_IEEE_F32LE, 2); }, Info,
                       {"train/data", "length 2"});
  // A missing dataset and a missing group.
  ExpectDamageReported(true, [](hid_t f) { H5Ldelete(f, "val/indices", H5P_DEFAULT); }, Info,
                       {"val/indices", "missing"});
  ExpectDamageReported(false, [](hid_t f) { H5Ldelete(f, "test", H5P_DEFAULT); }, Info,
                       {"no group test"});
  // Labels out of range, in labels and clean_labels.
  ExpectDamageReported(
      false, [](hid_t f) { SetElement<std::int32_t>(f, "val/labels", H5T_NATIVE_INT32, 7, 3); },
      Info, {"val/labels", "row 7", "label 3 is not in [0, 3)"});
  ExpectDamageReported(
      false,
      [](hid_t f) { SetElement<std::int32_t>(f, "train/clean_labels", H5T_NATIVE_INT32, 2, -1); },
      Info, {"train/clean_labels", "row 2"});
  ExpectDamageReported(false, [](hid_t f) { Replace(f, "train/clean_labels", H5T_STD_I32LE, 39); },
                       Info, {"train/clean_labels", "length 39, expected 40"});
  // Dense features of the wrong shape or type.
  ExpectDamageReported(false, [](hid_t f) { Replace(f, "val/features", H5T_IEEE_F32LE, 60); }, Info,
                       {"val/features", "1 dimensions, expected 2"});
  ExpectDamageReported(false, [](hid_t f) { Replace(f, "train/labels", H5T_IEEE_F32LE, 40); }, Info,
                       {"train/labels", "not of integer type"});
  // Attributes.
  ExpectDamageReported(false,
                       [](hid_t f) {
                         const int two = 2;
                         const hid_t attr = H5Aopen(f, "format_version", H5P_DEFAULT);
                         H5Awrite(attr, H5T_NATIVE_INT, &two);
                         H5Aclose(attr);
                       },
                       Info, {"format_version 2 is not 1"});
  ExpectDamageReported(false, [](hid_t f) { H5Adelete(f, "num_classes"); }, Info,
                       {"no attribute num_classes"});
}

TEST(DatasetTest, ShardReportsBadValuesWithTheirRow) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  // Dense: NaN in row 3 (6 columns), Inf in row 30.
  ExpectDamageReported(
      false,
      [&](hid_t f) { SetElement<float>(f, "train/features", H5T_NATIVE_FLOAT, 3 * 6 + 2, nan); },
      ReadRows("train", 0, 10), {"train/features", "row 3", "column 2"});
  ExpectDamageReported(
      false,
      [&](hid_t f) { SetElement<float>(f, "train/features", H5T_NATIVE_FLOAT, 30 * 6, inf); },
      ReadRows("train", 20, 40), {"train/features", "row 30"});
  // CSR: a value, a column out of range, columns not increasing.
  ExpectDamageReported(true,
                       [&](hid_t f) { SetElement<float>(f, "val/data", H5T_NATIVE_FLOAT, 0, nan); },
                       ReadRows("val", 0, 10), {"val/data", "row 0"});
  ExpectDamageReported(
      true, [](hid_t f) { SetElement<std::int32_t>(f, "train/indices", H5T_NATIVE_INT32, 0, 6); },
      ReadRows("train", 0, 5), {"train/indices", "row 0", "column 6 is not in [0, 6)"});
  ExpectDamageReported(true,
                       [](hid_t f) {
                         Overwrite<std::int32_t>(f, "train/indices", H5T_NATIVE_INT32, {4, 4});
                       },
                       ReadRows("train", 0, 3), {"train/indices", "row 0", "not increasing"});
  // Labels, in the rows read.
  ExpectDamageReported(
      true, [](hid_t f) { SetElement<std::int32_t>(f, "test/labels", H5T_NATIVE_INT32, 9, 5); },
      ReadRows("test", 5, 10), {"test/labels", "row 9"});
  // Rows outside the split, and an unknown split.
  ExpectDamageReported(true, [](hid_t) {}, ReadRows("val", 5, 11), {"val", "[5, 11)", "[0, 10)"});
  ExpectDamageReported(true, [](hid_t) {}, ReadRows("dev", 0, 1), {"no split 'dev'"});
  // Damage outside the block read is not seen (and not read).
  TempDir dir;
  const std::string path = dir.File("ok.h5");
  WriteDataset(path, MakeDataset(false, 40, 10, 10, 6, 3, false));
  EXPECT_NO_THROW(ReadSplitShard(path, "train", 0, 10));
}

TEST(DatasetTest, NotAnHdf5File) {
  TempDir dir;
  const std::string path = dir.File("text.h5");
  std::ofstream(path) << "hello\n";
  try {
    ReadDatasetInfo(path);
    ADD_FAILURE();
  } catch (const IoError& e) {
    EXPECT_EQ(std::string(e.what()), path + ": not a readable HDF5 file");
  }
  EXPECT_THROW(ReadSplitShard(dir.File("missing.h5"), "train", 0, 0), IoError);
}

// --- The writer -----------------------------------------------------------------------------

TEST(DatasetTest, WriterRefusesBadDataAndLeavesNoFile) {
  TempDir dir;
  const std::string path = dir.File("out.h5");
  auto expect_refused = [&](const Dataset& data, const std::string& part) {
    try {
      WriteDataset(path, data);
      ADD_FAILURE() << "written: " << part;
    } catch (const IoError& e) {
      EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
    }
    EXPECT_TRUE(dir.Entries().empty()) << "a file was left behind: " << dir.Entries()[0];
  };
  Dataset data = MakeDataset(true, 20, 5, 5, 8, 3, true);
  data.train.labels[4] = 3;
  expect_refused(data, "train/labels: row 4");
  data = MakeDataset(true, 20, 5, 5, 8, 3, false);
  data.val.indices[0] = 8;
  expect_refused(data, "val/indices");
  data = MakeDataset(true, 20, 5, 5, 8, 3, false);
  data.test.indptr.back() += 1;
  expect_refused(data, "test/indptr");
  data = MakeDataset(false, 20, 5, 5, 8, 3, false);
  data.val.features(2, 1) = std::numeric_limits<float>::infinity();
  expect_refused(data, "val/features: row 2");
  data = MakeDataset(false, 20, 5, 5, 8, 3, false);
  data.attributes.storage = "csr";
  expect_refused(data, "dense rows in a file of storage 'csr'");
  data = MakeDataset(false, 20, 5, 5, 8, 3, false);
  data.train.clean_labels.assign(19, 0);
  expect_refused(data, "train/clean_labels");

  // A directory that does not exist: nothing is created anywhere.
  const std::string nowhere = dir.File("no/such/dir/out.h5");
  EXPECT_THROW(WriteDataset(nowhere, MakeDataset(false, 4, 1, 1, 2, 2, false)), IoError);
  EXPECT_TRUE(dir.Entries().empty());

  // Writing over an existing file replaces it whole.
  WriteDataset(path, MakeDataset(false, 4, 1, 1, 2, 2, false));
  WriteDataset(path, MakeDataset(false, 6, 1, 1, 2, 2, false));
  EXPECT_EQ(ReadDatasetInfo(path).train.rows, 6);
  EXPECT_EQ(dir.Entries(), std::vector<std::string>{"out.h5"});
}

// --- Source files ---------------------------------------------------------------------------

std::string ReadAll(SourceFile* in, size_t chunk) {
  std::string out;
  std::vector<char> buf(chunk);
  for (size_t k; (k = in->Read(buf.data(), buf.size())) > 0;) out.append(buf.data(), k);
  return out;
}

bool HaveTool(const std::string& tool) {
  return std::system(("command -v " + tool + " >/dev/null 2>&1").c_str()) == 0;
}

TEST(DatasetTest, SourceFileSha256) {
  TempDir dir;
  const std::string path = dir.File("abc.txt");
  std::ofstream(path) << "abc";
  SourceFile in(path);
  EXPECT_STREQ(in.format(), "plain");
  EXPECT_EQ(ReadAll(&in, 2), "abc");
  EXPECT_EQ(in.Sha256Hex(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  std::ofstream(dir.File("empty")).close();
  SourceFile empty(dir.File("empty"));
  EXPECT_EQ(empty.Sha256Hex(), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  // More than one block, and the digest of a file not read at all.
  const std::string long_path = dir.File("long.txt");
  std::ofstream(long_path) << "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
  SourceFile unread(long_path);
  EXPECT_EQ(unread.Sha256Hex(), "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_THROW(SourceFile(dir.File("missing")), IoError);
}

TEST(DatasetTest, SourceFileDecompresses) {
  TempDir dir;
  // About 3 MB of text, more than one input buffer.
  std::string text;
  for (int i = 0; i < 200000; ++i) text += std::to_string(i * 7919 % 100003) + " line\n";
  const std::string plain = dir.File("text");
  std::ofstream(plain, std::ios::binary) << text;
  struct Variant {
    const char* tool;
    const char* format;
    const char* suffix;
  };
  int tested = 0;
  for (const Variant& v : {Variant{"gzip", "gzip", ".gz"}, Variant{"xz", "xz", ".xz"},
                           Variant{"bzip2", "bzip2", ".bz2"}}) {
    SCOPED_TRACE(v.tool);
    if (!HaveTool(v.tool)) continue;
    const std::string packed = plain + v.suffix;
    ASSERT_EQ(std::system((std::string(v.tool) + " -c " + plain + " > " + packed).c_str()), 0);
    {
      SourceFile in(packed);
      EXPECT_STREQ(in.format(), v.format);
      EXPECT_TRUE(ReadAll(&in, 65536) == text);
      // The digest is of the compressed file's bytes.
      const std::string sum = dir.File("sum");
      if (HaveTool("sha256sum")) {
        ASSERT_EQ(std::system(("sha256sum " + packed + " > " + sum).c_str()), 0);
        std::ifstream s(sum);
        std::string expected;
        s >> expected;
        EXPECT_EQ(in.Sha256Hex(), expected);
      }
    }
    // Two streams one after the other read as their concatenation.
    const std::string twice = packed + ".twice";
    ASSERT_EQ(std::system(("cat " + packed + " " + packed + " > " + twice).c_str()), 0);
    {
      SourceFile in(twice);
      EXPECT_TRUE(ReadAll(&in, 1 << 20) == text + text);
    }
    // A truncated stream is an error naming the file.
    const std::string cut = packed + ".cut";
    fs::copy_file(packed, cut);
    fs::resize_file(cut, fs::file_size(packed) / 2);
    try {
      SourceFile in(cut);
      ReadAll(&in, 65536);
      ADD_FAILURE() << "no error for a truncated file";
    } catch (const IoError& e) {
      EXPECT_EQ(std::string(e.what()).rfind(cut + ": ", 0), 0u) << e.what();
      EXPECT_NE(std::string(e.what()).find("truncated"), std::string::npos) << e.what();
    }
    // Corrupt data in the middle.
    {
      std::fstream f(packed, std::ios::in | std::ios::out | std::ios::binary);
      f.seekp(static_cast<std::streamoff>(fs::file_size(packed) / 3));
      f.write("\x55\xAA\x55\xAA\x55\xAA\x55\xAA", 8);
    }
    try {
      SourceFile in(packed);
      const std::string got = ReadAll(&in, 65536);
      // xz and bzip2 check every block; gzip at least checks the CRC at the end.
      ADD_FAILURE() << "no error for corrupt data (" << got.size() << " bytes read)";
    } catch (const IoError& e) {
      EXPECT_EQ(std::string(e.what()).rfind(packed + ": ", 0), 0u) << e.what();
    }
    ++tested;
  }
  if (tested == 0) GTEST_SKIP() << "none of gzip, xz, bzip2 is installed";
}

}  // namespace
}  // namespace bilevel::io
