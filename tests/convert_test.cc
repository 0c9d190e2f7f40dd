// `bilevel convert idx|libsvm` on small IDX and LIBSVM files made here: the dataset files they
// write, label mapping and corruption, the stratified split, compressed input, every bad input
// (exit code, one line naming the file and line, no output left). Most cases call the command
// in this process on a serial communicator; a few run the real program, under mpirun too, and
// one converts the real a9a set from the shared data folder.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "bilevel/communicator.h"
#include "cli/convert_command.h"
#include "io/dataset.h"

namespace bilevel {
namespace {

namespace fs = std::filesystem;

constexpr const char* kExe = BILEVEL_EXE;
constexpr const char* kMpiexec = BILEVEL_MPIEXEC;
constexpr const char* kSourceDir = BILEVEL_SOURCE_DIR;

std::string ReadText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

void WriteText(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    if (line.find_first_not_of(" \t\r") != std::string::npos) lines.push_back(line);
  return lines;
}

bool HaveTool(const std::string& tool) {
  return std::system(("command -v " + tool + " >/dev/null 2>&1").c_str()) == 0;
}

// A fresh directory under /tmp, removed with everything in it at the end of its scope.
class TempDir {
 public:
  TempDir() {
    char name[] = "/tmp/bilevel_convert_test_XXXXXX";
    if (mkdtemp(name) != nullptr) path_ = name;
  }
  ~TempDir() {
    std::error_code ignored;
    if (!path_.empty()) fs::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string File(const std::string& name) const { return path_ + "/" + name; }
  // Whether any entry's name starts with `prefix` (an output file or its temporary).
  bool HasEntryStartingWith(const std::string& prefix) const {
    for (const auto& entry : fs::directory_iterator(path_))
      if (entry.path().filename().string().rfind(prefix, 0) == 0) return true;
    return false;
  }

 private:
  std::string path_;
};

struct Outcome {
  int code = -1;
  std::string out, err;
  std::string Describe() const {
    return "exit " + std::to_string(code) + "\n--- stdout:\n" + out + "--- stderr:\n" + err;
  }
};

// `bilevel convert ARGS` in this process on a serial communicator, stdout and stderr caught.
Outcome Convert(const TempDir& dir, const std::vector<std::string>& args) {
  const std::string out_path = dir.File(".stdout"), err_path = dir.File(".stderr");
  std::cout.flush();
  std::fflush(stdout);
  std::fflush(stderr);
  const int saved_out = dup(1), saved_err = dup(2);
  const int out_fd = open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  const int err_fd = open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  dup2(out_fd, 1);
  dup2(err_fd, 2);
  Outcome o;
  {
    SerialCommunicator comm;
    o.code = cli::Convert(args, comm);
  }
  std::cout.flush();
  std::fflush(stdout);
  std::fflush(stderr);
  dup2(saved_out, 1);
  dup2(saved_err, 2);
  for (int fd : {saved_out, saved_err, out_fd, err_fd}) close(fd);
  o.out = ReadText(out_path);
  o.err = ReadText(err_path);
  fs::remove(out_path);
  fs::remove(err_path);
  return o;
}

// Single-quotes `s` for /bin/sh.
std::string Quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// The environment CTest gives the test (tests/CMakeLists.txt), for runs by hand; values already
// set win.
void EnsureMpiEnvironment() {
  setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 0);
  setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 0);
  setenv("OMPI_MCA_rmaps_base_oversubscribe", "1", 0);
  setenv("OMPI_MCA_mpi_yield_when_idle", "1", 0);
  setenv("OMPI_MCA_btl_vader_single_copy_mechanism", "none", 0);
}

// Runs the real program: `PREFIX bilevel ARGS` in `dir`, PREFIX empty or mpirun's.
Outcome RunProgram(const TempDir& dir, const std::string& prefix,
                   const std::vector<std::string>& args) {
  EnsureMpiEnvironment();
  std::string command = "cd " + Quote(dir.path()) + " && timeout 120 " + prefix + Quote(kExe);
  for (const auto& a : args) command += " " + Quote(a);
  const std::string out = dir.File(".stdout"), err = dir.File(".stderr");
  command += " >" + Quote(out) + " 2>" + Quote(err) + " </dev/null";
  Outcome o;
  const int status = std::system(command.c_str());
  if (status != -1 && WIFEXITED(status)) o.code = WEXITSTATUS(status);
  o.out = ReadText(out);
  o.err = ReadText(err);
  fs::remove(out);
  fs::remove(err);
  return o;
}

// The lines of stderr the program wrote, without mpirun's notices (blocks between lines of
// dashes, and one-line forms).
std::vector<std::string> ProgramErrorLines(const std::string& err) {
  std::vector<std::string> kept;
  bool in_block = false;
  for (const std::string& line : Lines(err)) {
    if (line.rfind("---", 0) == 0) {
      in_block = !in_block;
      continue;
    }
    if (in_block || line.find("mpirun") != std::string::npos ||
        line.find("Primary job") != std::string::npos)
      continue;
    kept.push_back(line);
  }
  return kept;
}

// Expects a failed conversion: `code`, exactly one line on stderr containing every part, no
// output file (nor its temporary) in `dir`.
void ExpectFailure(const Outcome& o, const TempDir& dir, int code,
                   const std::vector<std::string>& parts, const std::string& output = "out.h5") {
  EXPECT_EQ(o.code, code) << o.Describe();
  const std::vector<std::string> lines = ProgramErrorLines(o.err);
  ASSERT_EQ(lines.size(), 1u) << o.Describe();
  for (const auto& part : parts) EXPECT_NE(lines[0].find(part), std::string::npos) << lines[0];
  EXPECT_FALSE(dir.HasEntryStartingWith(output)) << "output left behind";
}

// --- IDX files ------------------------------------------------------------------------------

void PutWord(std::string* s, std::uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) s->push_back(static_cast<char>((v >> shift) & 0xff));
}

std::string IdxImages(int count, int rows, int cols, int salt) {
  std::string s;
  PutWord(&s, 0x00000803);
  PutWord(&s, count), PutWord(&s, rows), PutWord(&s, cols);
  for (int i = 0; i < count; ++i)
    for (int k = 0; k < rows * cols; ++k)
      s.push_back(static_cast<char>((i * 13 + k * 7 + salt) % 256));
  return s;
}

std::string IdxLabels(const std::vector<int>& labels) {
  std::string s;
  PutWord(&s, 0x00000801);
  PutWord(&s, static_cast<std::uint32_t>(labels.size()));
  for (int l : labels) s.push_back(static_cast<char>(l));
  return s;
}

// Train: 40 images of 3 x 4 pixels, labels i % 5; test: 10 images, labels (i + 2) % 5.
struct IdxFiles {
  std::string images, labels, test_images, test_labels;
};

IdxFiles MakeIdx(const TempDir& dir, int count = 40, const std::vector<int>& train_labels = {}) {
  IdxFiles f{dir.File("train-images-idx3-ubyte"), dir.File("train-labels-idx1-ubyte"),
             dir.File("t10k-images-idx3-ubyte"), dir.File("t10k-labels-idx1-ubyte")};
  std::vector<int> labels = train_labels, test_labels;
  if (labels.empty())
    for (int i = 0; i < count; ++i) labels.push_back(i % 5);
  for (int i = 0; i < 10; ++i) test_labels.push_back((i + 2) % 5);
  WriteText(f.images, IdxImages(count, 3, 4, 0));
  WriteText(f.labels, IdxLabels(labels));
  WriteText(f.test_images, IdxImages(10, 3, 4, 100));
  WriteText(f.test_labels, IdxLabels(test_labels));
  return f;
}

std::vector<std::string> IdxArgs(const IdxFiles& f, const std::string& output,
                                 const std::vector<std::string>& extra = {}) {
  std::vector<std::string> args = {"idx",         "--images",      f.images,      "--labels",
                                   f.labels,      "--test-images", f.test_images, "--test-labels",
                                   f.test_labels, "--output",      output};
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

io::SplitShard ReadAll(const std::string& path, const std::string& split) {
  const io::DatasetInfo info = io::ReadDatasetInfo(path);
  return io::ReadSplitShard(path, split, 0, info.ForSplit(split).rows);
}

std::string Sha256(const std::string& path) {
  io::SourceFile in(path);
  return in.Sha256Hex();
}

void CheckIdxOutput(const std::string& output, const IdxFiles& f) {
  const io::DatasetInfo info = io::ReadDatasetInfo(output);
  EXPECT_EQ(info.attributes.storage, "dense");
  EXPECT_EQ(info.attributes.num_features, 12);
  EXPECT_EQ(info.attributes.num_classes, 5);
  EXPECT_EQ(info.train.rows, 25);
  EXPECT_EQ(info.val.rows, 10);
  EXPECT_EQ(info.test.rows, 10);
  EXPECT_FALSE(info.train.has_clean_labels);
  EXPECT_EQ(info.attributes.corruption_rate, 0);
  EXPECT_EQ(info.attributes.sources, io::BaseName(f.images) + "; " + io::BaseName(f.labels) + "; " +
                                         io::BaseName(f.test_images) + "; " +
                                         io::BaseName(f.test_labels));
  EXPECT_EQ(info.attributes.source_sha256, Sha256(f.images) + "; " + Sha256(f.labels) + "; " +
                                               Sha256(f.test_images) + "; " +
                                               Sha256(f.test_labels));
  const io::SplitShard train = ReadAll(output, "train"), val = ReadAll(output, "val"),
                       test = ReadAll(output, "test");
  for (int i = 0; i < 25; ++i) {
    EXPECT_EQ(train.labels[i], i % 5);
    for (int k = 0; k < 12; ++k)
      ASSERT_EQ(train.features(i, k), static_cast<float>((i * 13 + k * 7) % 256) / 255.0f);
  }
  for (int i = 0; i < 10; ++i) {  // val: images 25..34
    EXPECT_EQ(val.labels[i], (25 + i) % 5);
    EXPECT_EQ(val.features(i, 5), static_cast<float>(((25 + i) * 13 + 35) % 256) / 255.0f);
    EXPECT_EQ(test.labels[i], (i + 2) % 5);
    EXPECT_EQ(test.features(i, 0), static_cast<float>((i * 13 + 100) % 256) / 255.0f);
  }
}

TEST(ConvertTest, IdxPlain) {
  TempDir dir;
  const IdxFiles f = MakeIdx(dir);
  const std::string output = dir.File("out.h5");
  const Outcome o = Convert(dir, IdxArgs(f, output, {"--n-train", "25", "--n-val", "10"}));
  ASSERT_EQ(o.code, 0) << o.Describe();
  EXPECT_NE(o.out.find("wrote " + output), std::string::npos) << o.out;
  EXPECT_TRUE(o.err.empty()) << o.err;
  CheckIdxOutput(output, f);
}

TEST(ConvertTest, IdxGzip) {
  if (!HaveTool("gzip")) GTEST_SKIP() << "gzip is not installed";
  TempDir dir;
  IdxFiles f = MakeIdx(dir);
  for (std::string* path : {&f.images, &f.labels, &f.test_images, &f.test_labels}) {
    ASSERT_EQ(std::system(("gzip " + Quote(*path)).c_str()), 0);
    *path += ".gz";
  }
  const std::string output = dir.File("out.h5");
  const Outcome o = Convert(dir, IdxArgs(f, output, {"--n-train", "25", "--n-val", "10"}));
  ASSERT_EQ(o.code, 0) << o.Describe();
  CheckIdxOutput(output, f);
}

TEST(ConvertTest, IdxLabelCorruption) {
  TempDir dir;
  // 21000 images of one pixel; labels cycle through 10 classes.
  const int count = 21000;
  std::vector<int> labels(count);
  for (int i = 0; i < count; ++i) labels[i] = (i * 7) % 10;
  IdxFiles f = MakeIdx(dir, 0, {});
  WriteText(f.images, IdxImages(count, 1, 1, 0));
  WriteText(f.labels, IdxLabels(labels));
  WriteText(f.test_images, IdxImages(10, 1, 1, 0));
  const double p = 0.3;
  const std::vector<std::string> split = {"--n-train", "20000", "--n-val", "1000"};
  auto convert = [&](const std::string& name, const std::string& noise, const std::string& seed) {
    std::vector<std::string> extra = split;
    extra.insert(extra.end(), {"--noise", noise, "--seed", seed});
    const Outcome o = Convert(dir, IdxArgs(f, dir.File(name), extra));
    EXPECT_EQ(o.code, 0) << o.Describe();
    return ReadAll(dir.File(name), "train");
  };
  const io::SplitShard train = convert("a.h5", "0.3", "5");
  const io::DatasetInfo info = io::ReadDatasetInfo(dir.File("a.h5"));
  EXPECT_EQ(info.attributes.num_classes, 10);
  EXPECT_EQ(info.attributes.corruption_rate, p);
  EXPECT_EQ(info.attributes.corruption_seed, 5);
  EXPECT_TRUE(info.train.has_clean_labels);
  EXPECT_FALSE(info.val.has_clean_labels);
  EXPECT_FALSE(info.test.has_clean_labels);

  ASSERT_EQ(train.clean_labels.size(), 20000u);
  int corrupted = 0;
  std::map<int, int> offsets;  // (noisy - clean) mod 10 over the corrupted labels
  for (int i = 0; i < 20000; ++i) {
    ASSERT_EQ(train.clean_labels[i], labels[i]) << "row " << i;
    if (train.labels[i] != train.clean_labels[i]) {
      ++corrupted;
      ++offsets[(train.labels[i] - train.clean_labels[i] + 10) % 10];
    }
  }
  // Every draw below p must change the label (to another class): the share of changed labels
  // is p, not p * 9/10. Standard deviation sqrt(p (1 - p) / n) = 0.0032.
  EXPECT_NEAR(corrupted / 20000.0, p, 0.015);
  ASSERT_EQ(offsets.count(0), 0u);
  for (int k = 1; k < 10; ++k)  // uniform over the 9 other classes: ~667 each, sd ~24
    EXPECT_NEAR(offsets[k], corrupted / 9.0, corrupted / 9.0 * 0.2) << "offset " << k;
  // Val keeps its labels.
  const io::SplitShard val = ReadAll(dir.File("a.h5"), "val");
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(val.labels[i], labels[20000 + i]);

  // The same seed gives the same labels, another seed others; p = 1 changes every label.
  EXPECT_EQ(convert("b.h5", "0.3", "5").labels, train.labels);
  EXPECT_NE(convert("c.h5", "0.3", "6").labels, train.labels);
  const io::SplitShard all = convert("d.h5", "1", "5");
  for (int i = 0; i < 20000; ++i) ASSERT_NE(all.labels[i], all.clean_labels[i]);
}

TEST(ConvertTest, IdxBadInput) {
  TempDir dir;
  const IdxFiles good = MakeIdx(dir);
  const std::string out = dir.File("out.h5");
  auto with = [&](std::string IdxFiles::*member, const std::string& content) {
    IdxFiles f = good;
    f.*member = dir.File("bad");
    WriteText(f.*member, content);
    return Convert(dir, IdxArgs(f, out, {"--n-train", "25", "--n-val", "10"}));
  };
  const std::string images = IdxImages(40, 3, 4, 0);
  const std::string bad = dir.File("bad");
  ExpectFailure(with(&IdxFiles::images, IdxLabels({1, 2})), dir, 1,
                {bad + ": ", "magic number 0x00000801 is not 0x00000803"});
  ExpectFailure(with(&IdxFiles::labels, images), dir, 1,
                {bad + ": ", "magic number 0x00000803 is not 0x00000801"});
  ExpectFailure(with(&IdxFiles::images, images.substr(0, images.size() - 6)), dir, 1,
                {bad + ": ", "truncated data", "39 of 40 images"});
  ExpectFailure(with(&IdxFiles::images, images.substr(0, 10)), dir, 1,
                {bad + ": ", "truncated header"});
  ExpectFailure(with(&IdxFiles::test_images, IdxImages(10, 3, 4, 0) + "xy"), dir, 1,
                {bad + ": ", "2 bytes after"});
  ExpectFailure(with(&IdxFiles::images, IdxImages(40, 0, 4, 0)), dir, 1,
                {bad + ": ", "zero dimension"});
  std::vector<int> short_labels(39, 1);
  ExpectFailure(with(&IdxFiles::labels, IdxLabels(short_labels)), dir, 1,
                {bad + ": ", "39 labels, but", "has 40 images"});
  ExpectFailure(with(&IdxFiles::test_images, IdxImages(10, 4, 3, 0)), dir, 1,
                {bad + ": ", "4 x 3 pixels"});
  ExpectFailure(Convert(dir, IdxArgs(good, out, {"--n-train", "35", "--n-val", "10"})), dir, 1,
                {good.images + ": ", "more than its 40 images"});
  IdxFiles missing = good;
  missing.test_labels = dir.File("nothing");
  ExpectFailure(Convert(dir, IdxArgs(missing, out, {"--n-train", "25", "--n-val", "10"})), dir, 1,
                {missing.test_labels + ": cannot open"});
  if (HaveTool("gzip")) {
    ASSERT_EQ(std::system(("gzip -c " + Quote(good.images) + " > " + Quote(bad)).c_str()), 0);
    fs::resize_file(bad, fs::file_size(bad) - 20);
    IdxFiles f = good;
    f.images = bad;
    ExpectFailure(Convert(dir, IdxArgs(f, out, {"--n-train", "25", "--n-val", "10"})), dir, 1,
                  {bad + ": ", "truncated gzip data"});
  }
}

// --- LIBSVM files ---------------------------------------------------------------------------

std::vector<std::string> LibsvmArgs(const std::string& train, const std::string& test,
                                    const std::string& output,
                                    const std::vector<std::string>& extra = {}) {
  std::vector<std::string> args = {"libsvm", "--train", train, "--output", output};
  if (!test.empty()) args.insert(args.end(), {"--test", test});
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

// The labels of train and val together, as a multiset, and the test labels in order.
std::multiset<int> TrainValLabels(const std::string& path) {
  std::multiset<int> out;
  for (const char* split : {"train", "val"})
    for (int l : ReadAll(path, split).labels) out.insert(l);
  return out;
}

TEST(ConvertTest, LibsvmLabelMapping) {
  TempDir dir;
  struct Case {
    std::vector<std::string> train_labels, test_labels;
    std::vector<int> train_classes, test_classes;
    int num_classes;
  };
  const std::vector<Case> cases = {
      {{"+1", "-1", "+1", "-1", "-1"}, {"-1", "+1"}, {1, 0, 1, 0, 0}, {0, 1}, 2},
      {{"1", "0", "0", "1"}, {"1", "0"}, {1, 0, 0, 1}, {1, 0}, 2},
      // Multiclass 1..10 (2.0 and 2 are one class) and 0..19.
      {{"10", "3", "2.0", "1", "2", "4", "5", "6", "8"},
       {"7", "9"},
       {9, 2, 1, 0, 1, 3, 4, 5, 7},
       {6, 8},
       10},
      {{"0", "19", "5", "1", "2", "3", "4", "6", "7", "8", "9", "10", "11", "13", "14", "15", "16",
        "17", "18"},
       {"12"},
       {0, 19, 5, 1, 2, 3, 4, 6, 7, 8, 9, 10, 11, 13, 14, 15, 16, 17, 18},
       {12},
       20},
  };
  int n = 0;
  for (const Case& c : cases) {
    SCOPED_TRACE("case " + std::to_string(n));
    std::string train, test;
    for (const auto& l : c.train_labels) train += l + " 1:0.5 3:1\n";
    for (const auto& l : c.test_labels) test += l + " 2:-1\n";
    const std::string name = "case" + std::to_string(n++);
    WriteText(dir.File(name + ".train"), train);
    WriteText(dir.File(name + ".test"), test);
    const std::string output = dir.File(name + ".h5");
    const Outcome o = Convert(dir, LibsvmArgs(dir.File(name + ".train"), dir.File(name + ".test"),
                                              output, {"--val-fraction", "0"}));
    ASSERT_EQ(o.code, 0) << o.Describe();
    const io::DatasetInfo info = io::ReadDatasetInfo(output);
    EXPECT_EQ(info.attributes.num_classes, c.num_classes);
    EXPECT_EQ(info.attributes.storage, "csr");
    EXPECT_EQ(ReadAll(output, "train").labels,
              std::vector<std::int32_t>(c.train_classes.begin(), c.train_classes.end()));
    EXPECT_EQ(ReadAll(output, "test").labels,
              std::vector<std::int32_t>(c.test_classes.begin(), c.test_classes.end()));
  }
}

// Rows with a row id in feature 1, so that train and val can be traced back to the file.
std::string StratifiedFile(const std::vector<int>& class_sizes) {
  std::string text;
  int id = 0;
  for (size_t k = 0; k < class_sizes.size(); ++k)
    for (int i = 0; i < class_sizes[k]; ++i)
      text += std::to_string(k + 1) + " 1:" + std::to_string(++id) + " 4:0.25\n";
  // Interleave the classes: sort lines by a scrambled key.
  std::vector<std::string> lines = Lines(text);
  std::vector<std::pair<int, std::string>> keyed;
  for (size_t i = 0; i < lines.size(); ++i)
    keyed.push_back({static_cast<int>(i * 37 % 101), lines[i]});
  std::sort(keyed.begin(), keyed.end());
  std::string out = "# a comment line\n\n";
  for (const auto& [key, line] : keyed) out += line + "\r\n";
  return out;
}

TEST(ConvertTest, LibsvmStratifiedSplit) {
  TempDir dir;
  const std::string train = dir.File("strat.svm");
  WriteText(train, StratifiedFile({10, 7, 1, 40}));  // 58 rows
  auto split = [&](const std::string& name, const std::string& fraction, const std::string& seed) {
    const Outcome o = Convert(
        dir, LibsvmArgs(train, "", dir.File(name), {"--val-fraction", fraction, "--seed", seed}));
    EXPECT_EQ(o.code, 0) << o.Describe();
    return std::make_pair(ReadAll(dir.File(name), "train"), ReadAll(dir.File(name), "val"));
  };
  const auto [tr, va] = split("a.h5", "0.5", "3");
  const io::DatasetInfo info = io::ReadDatasetInfo(dir.File("a.h5"));
  EXPECT_EQ(info.test.rows, 0);  // no --test
  EXPECT_EQ(info.attributes.split_seed, 3);
  EXPECT_EQ(info.attributes.sources, "strat.svm");
  // Per class round(0.5 * count), halves away from zero: 5, 4 (3.5), 1 (0.5), 20.
  std::map<int, int> val_count, train_count;
  for (int l : va.labels) ++val_count[l];
  for (int l : tr.labels) ++train_count[l];
  EXPECT_EQ(val_count, (std::map<int, int>{{0, 5}, {1, 4}, {2, 1}, {3, 20}}));
  EXPECT_EQ(train_count, (std::map<int, int>{{0, 5}, {1, 3}, {3, 20}}));
  // Every row once, in the file's order within each split (the row id is feature 1's value).
  auto ids = [](const io::SplitShard& s) {
    std::vector<int> out;
    for (Index i = 0; i < s.size(); ++i) {
      EXPECT_EQ(s.indptr[i + 1] - s.indptr[i], 2);
      EXPECT_EQ(s.indices[s.indptr[i]], 0);
      EXPECT_EQ(s.indices[s.indptr[i] + 1], 3);
      EXPECT_EQ(s.data[s.indptr[i] + 1], 0.25f);
      out.push_back(static_cast<int>(s.data[s.indptr[i]]));
    }
    return out;
  };
  const std::vector<int> train_ids = ids(tr), val_ids = ids(va);
  std::set<int> all(train_ids.begin(), train_ids.end());
  all.insert(val_ids.begin(), val_ids.end());
  EXPECT_EQ(all.size(), 58u);
  const std::vector<std::string> file_lines = Lines(ReadText(train));
  std::vector<int> file_order;  // ids in file order
  for (const auto& line : file_lines)
    if (line[0] != '#') file_order.push_back(std::stoi(line.substr(line.find("1:") + 2)));
  auto in_file_order = [&](const std::vector<int>& v) {
    std::vector<size_t> pos;
    for (int id : v)
      pos.push_back(std::find(file_order.begin(), file_order.end(), id) - file_order.begin());
    return std::is_sorted(pos.begin(), pos.end());
  };
  EXPECT_TRUE(in_file_order(train_ids));
  EXPECT_TRUE(in_file_order(val_ids));
  // Seeded: the same seed, the same split; another seed, another.
  EXPECT_EQ(ids(split("b.h5", "0.5", "3").second), val_ids);
  EXPECT_NE(ids(split("c.h5", "0.5", "4").second), val_ids);
  EXPECT_EQ(split("d.h5", "0", "3").second.size(), 0);
}

TEST(ConvertTest, LibsvmNumFeatures) {
  TempDir dir;
  WriteText(dir.File("tr"), "1 1:1 5:2\n2 qid:3 2:1\n1 3:1\n2 4:1\n");
  WriteText(dir.File("te"), "1 9:1\n");
  ASSERT_EQ(Convert(dir, LibsvmArgs(dir.File("tr"), dir.File("te"), dir.File("a.h5"))).code, 0);
  EXPECT_EQ(io::ReadDatasetInfo(dir.File("a.h5")).attributes.num_features, 9);
  ASSERT_EQ(Convert(dir, LibsvmArgs(dir.File("tr"), "", dir.File("b.h5"))).code, 0);
  EXPECT_EQ(io::ReadDatasetInfo(dir.File("b.h5")).attributes.num_features, 5);
  ASSERT_EQ(Convert(dir, LibsvmArgs(dir.File("tr"), dir.File("te"), dir.File("c.h5"),
                                    {"--num-features", "20"}))
                .code,
            0);
  EXPECT_EQ(io::ReadDatasetInfo(dir.File("c.h5")).attributes.num_features, 20);
  ExpectFailure(Convert(dir, LibsvmArgs(dir.File("tr"), dir.File("te"), dir.File("out.h5"),
                                        {"--num-features", "8"})),
                dir, 1, {dir.File("te") + ":1: ", "index 9 is above the number of features 8"});
}

// The same samples in every compressed form give the same dataset.
class LibsvmCompressed : public ::testing::TestWithParam<const char*> {};

TEST_P(LibsvmCompressed, SameDatasetAsPlain) {
  const std::string tool = GetParam();
  if (!HaveTool(tool)) GTEST_SKIP() << tool << " is not installed; its variant is not tested";
  TempDir dir;
  std::string text;
  for (int i = 0; i < 3000; ++i)  // about 100 kB
    text += (i % 3 ? "+1" : "-1") + std::string(" 2:") + std::to_string(i * 0.001) +
            " 7:" + std::to_string(i % 11) + "e-2 " + std::to_string(10 + i % 50) + ":1\n";
  const std::string plain = dir.File("data.svm");
  WriteText(plain, text);
  ASSERT_EQ(Convert(dir, LibsvmArgs(plain, plain, dir.File("plain.h5"))).code, 0);
  const std::string packed = plain + "." + tool;
  ASSERT_EQ(std::system((tool + " -c " + Quote(plain) + " > " + Quote(packed)).c_str()), 0);
  const Outcome o = Convert(dir, LibsvmArgs(packed, plain, dir.File("packed.h5")));
  ASSERT_EQ(o.code, 0) << o.Describe();
  for (const char* split : {"train", "val", "test"}) {
    SCOPED_TRACE(split);
    const io::SplitShard a = ReadAll(dir.File("plain.h5"), split),
                         b = ReadAll(dir.File("packed.h5"), split);
    EXPECT_EQ(a.labels, b.labels);
    EXPECT_EQ(a.indptr, b.indptr);
    EXPECT_EQ(a.indices, b.indices);
    EXPECT_EQ(a.data, b.data);
  }
  const io::DatasetInfo info = io::ReadDatasetInfo(dir.File("packed.h5"));
  EXPECT_EQ(info.train.rows + info.val.rows, 3000);
  EXPECT_EQ(info.attributes.num_features, 59);
  EXPECT_EQ(info.attributes.sources, "data.svm." + tool + "; data.svm");
  EXPECT_EQ(info.attributes.source_sha256.substr(0, 64), Sha256(packed));
  // Truncated: an error naming the file.
  fs::resize_file(packed, fs::file_size(packed) * 2 / 3);
  ExpectFailure(Convert(dir, LibsvmArgs(packed, "", dir.File("out.h5"))), dir, 1,
                {packed + ": ", "truncated"});
}

INSTANTIATE_TEST_SUITE_P(Tools, LibsvmCompressed, ::testing::Values("gzip", "xz", "bzip2"));

TEST(ConvertTest, LibsvmBadInput) {
  TempDir dir;
  const std::string good = "+1 1:0.5 3:1\n-1 2:0.25\n";
  const std::string file = dir.File("bad.svm");
  const std::string out = dir.File("out.h5");
  struct Case {
    std::string line;
    std::string problem;
    std::vector<std::string> extra;
  };
  const std::vector<Case> cases = {
      {"+1 3 4:1", "token '3' has no colon"},
      {"+1 0:1", "index 0 is not positive"},
      {"+1 -2:1", "index -2 is not positive"},
      {"+1 1.5:1", "index '1.5' is not an integer"},
      {"+1 a:1", "index 'a' is not an integer"},
      {"+1 :1", "index '' is not an integer"},
      {"+1 99999999999:1", "index '99999999999' is too large"},
      {"+1 7:1", "index 7 is above the number of features 5", {"--num-features", "5"}},
      {"+1 3:1 2:1", "index 2 does not increase (after 3)"},
      {"+1 2:1 2:1", "index 2 does not increase (after 2)"},
      {"+1 2:nan", "value 'nan' of index 2 is not finite"},
      {"+1 2:-inf", "value '-inf' of index 2 is not finite"},
      {"+1 2:1e999", "value '1e999' of index 2 is not finite"},
      {"+1 2:1e300", "value '1e300' of index 2 is out of float range"},
      {"+1 2:abc", "value 'abc' of index 2 is not a number"},
      {"+1 2:", "value '' of index 2 is not a number"},
      {"+1 2:1x", "value '1x' of index 2 is not a number"},
      {"abc 1:1", "label 'abc' is not a finite number"},
      {"nan 1:1", "label 'nan' is not a finite number"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.line);
    WriteText(file, good + c.line + "\n-1 1:1\n");
    ExpectFailure(Convert(dir, LibsvmArgs(file, "", out, c.extra)), dir, 1,
                  {"bilevel convert libsvm: error: " + file + ":3: " + c.problem});
  }
  // In the test file, the test file is named.
  WriteText(dir.File("good.svm"), good);
  ExpectFailure(Convert(dir, LibsvmArgs(dir.File("good.svm"), file, out)), dir, 1, {file + ":3: "});
  // A split that leaves train empty (one row per class, rounded up to val).
  WriteText(file, "1 1:1\n2 1:1\n");
  ExpectFailure(Convert(dir, LibsvmArgs(file, "", out)), dir, 1,
                {file + ": the split leaves no rows in train"});
  // No samples at all.
  WriteText(file, "# nothing\n\n");
  ExpectFailure(Convert(dir, LibsvmArgs(file, "", out)), dir, 1, {file + ": no samples"});
}

TEST(ConvertTest, OptionErrors) {
  TempDir dir;
  const IdxFiles f = MakeIdx(dir);
  WriteText(dir.File("a.svm"), "1 1:1\n2 2:1\n1 2:1\n2 1:3\n");
  const std::string out = dir.File("out.h5");
  const std::string svm = dir.File("a.svm");
  ExpectFailure(Convert(dir, IdxArgs(f, out, {"--noise", "1.5"})), dir, 2,
                {"bilevel convert idx: error: option --noise: 1.5 must be in [0, 1]"});
  ExpectFailure(Convert(dir, IdxArgs(f, out, {"--nosie", "0.1"})), dir, 2,
                {"unknown option '--nosie'"});
  ExpectFailure(Convert(dir, IdxArgs(f, out, {"--n-train", "abc"})), dir, 2, {"--n-train"});
  ExpectFailure(Convert(dir, IdxArgs(f, out, {"--n-train", "0"})), dir, 2,
                {"option --n-train: 0 must be >= 1"});
  ExpectFailure(Convert(dir, IdxArgs(f, out, {"--seed", "-3"})), dir, 2, {"option --seed"});
  ExpectFailure(Convert(dir, {"idx", "--images", f.images, "--output", out}), dir, 2,
                {"option --labels is required"});
  ExpectFailure(Convert(dir, {"libsvm", "--train", svm}), dir, 2, {"option --output is required"});
  ExpectFailure(Convert(dir, {"libsvm", "--output", out}), dir, 2, {"option --train is required"});
  ExpectFailure(Convert(dir, LibsvmArgs(svm, "", out, {"--val-fraction", "1"})), dir, 2,
                {"option --val-fraction: 1 must be in [0, 1)"});
  ExpectFailure(Convert(dir, LibsvmArgs(svm, "", out, {"--num-features", "-1"})), dir, 2,
                {"option --num-features"});
  ExpectFailure(Convert(dir, LibsvmArgs(svm, "", out, {"extra"})), dir, 2, {"unexpected argument"});
  ExpectFailure(Convert(dir, {"csv", "--output", out}), dir, 2,
                {"unknown format 'csv' (allowed: idx, libsvm)"});
  const Outcome none = Convert(dir, {});
  EXPECT_EQ(none.code, 2);
  EXPECT_NE(none.err.find("Usage: bilevel convert FORMAT"), std::string::npos);
  // An output directory that does not exist: exit 1, naming the output.
  ExpectFailure(Convert(dir, LibsvmArgs(svm, "", dir.File("no/dir/out.h5"))), dir, 1,
                {dir.File("no/dir/out.h5") + ": cannot create"});
}

// --- The real program -----------------------------------------------------------------------

TEST(ConvertProgramTest, Help) {
  TempDir dir;
  const Outcome idx = RunProgram(dir, "", {"convert", "idx", "--help"});
  EXPECT_EQ(idx.code, 0) << idx.Describe();
  for (const char* option :
       {"--images", "--labels", "--test-images", "--test-labels", "--n-train N (=20000)",
        "--n-val N (=5000)", "--noise P (=0)", "--seed S (=0)", "--output"})
    EXPECT_NE(idx.out.find(option), std::string::npos) << option;
  const Outcome libsvm = RunProgram(dir, "", {"convert", "libsvm", "--help"});
  EXPECT_EQ(libsvm.code, 0) << libsvm.Describe();
  for (const char* option : {"--train", "--test", "--val-fraction F (=0.5)", "--seed S (=0)",
                             "--num-features D (=0)", "--output"})
    EXPECT_NE(libsvm.out.find(option), std::string::npos) << option;
  const Outcome top = RunProgram(dir, "", {"--help"});
  EXPECT_NE(top.out.find("convert"), std::string::npos) << top.Describe();
}

// Under mpirun with 2 ranks: rank 0 converts, both end with its exit code, one error line.
TEST(ConvertProgramTest, UnderMpirun) {
  TempDir dir;
  const std::string mpirun = std::string(kMpiexec) + " -np 2 ";
  WriteText(dir.File("a.svm"), "1 1:1\n2 2:1\n1 2:1\n2 1:3\n");
  auto program = [](std::vector<std::string> args) {
    args.insert(args.begin(), "convert");
    return args;
  };
  const Outcome ok =
      RunProgram(dir, mpirun, program(LibsvmArgs(dir.File("a.svm"), "", dir.File("a.h5"))));
  EXPECT_EQ(ok.code, 0) << ok.Describe();
  EXPECT_EQ(Lines(ok.out).size(), 1u) << ok.Describe();
  EXPECT_EQ(io::ReadDatasetInfo(dir.File("a.h5")).val.rows, 2);

  WriteText(dir.File("bad.svm"), "1 1:1\n2 2:x\n");
  ExpectFailure(
      RunProgram(dir, mpirun, program(LibsvmArgs(dir.File("bad.svm"), "", dir.File("out.h5")))),
      dir, 1, {dir.File("bad.svm") + ":2: value 'x' of index 2 is not a number"});
  ExpectFailure(
      RunProgram(dir, mpirun,
                 program(LibsvmArgs(dir.File("a.svm"), "", dir.File("out.h5"), {"--seed", "x"}))),
      dir, 2, {"--seed"});
}

// The real a9a set (../shared/data/libsvm, SOURCE.md): 32561 x 123 train (-1: 24720,
// +1: 7841), 16281 test (largest index 122), and h5dump reads the file.
TEST(ConvertProgramTest, RealA9a) {
  const std::string shared = std::string(kSourceDir) + "/../shared/data/libsvm/";
  if (!fs::exists(shared + "a9a.xz") || !fs::exists(shared + "a9a.t.xz"))
    GTEST_SKIP() << "no " << shared << "a9a.xz / a9a.t.xz here";
  TempDir dir;
  const std::string output = dir.File("a9a.h5");
  std::vector<std::string> args =
      LibsvmArgs(shared + "a9a.xz", shared + "a9a.t.xz", output, {"--seed", "1"});
  args.insert(args.begin(), "convert");
  const Outcome o = RunProgram(dir, "", args);
  ASSERT_EQ(o.code, 0) << o.Describe();
  const io::DatasetInfo info = io::ReadDatasetInfo(output);
  EXPECT_EQ(info.train.rows + info.val.rows, 32561);
  EXPECT_NEAR(static_cast<double>(info.val.rows), 32561 / 2.0, 1.0);
  EXPECT_EQ(info.test.rows, 16281);
  EXPECT_EQ(info.attributes.num_features, 123);
  EXPECT_EQ(info.attributes.num_classes, 2);
  EXPECT_EQ(info.attributes.sources, "a9a.xz; a9a.t.xz");
  EXPECT_EQ(info.attributes.source_sha256,
            "cea7c541c650d123ac692cb8e2244d1c2e82f67c75cbfeccdb25a4b6fc88ef72; "
            "11dcdf09d2c3502c1e972986b8d8022b5adf895311e41e37e06e26ebc1ef45f3");
  const std::multiset<int> labels = TrainValLabels(output);
  EXPECT_EQ(labels.count(0), 24720u);  // -1
  EXPECT_EQ(labels.count(1), 7841u);   // +1
  if (!HaveTool("h5dump")) GTEST_SKIP() << "h5dump is not installed; the rest was checked";
  const std::string header = dir.File("header.txt");
  const int status =
      std::system(("h5dump -H " + Quote(output) + " > " + Quote(header) + " 2>&1").c_str());
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << ReadText(header);
  EXPECT_NE(ReadText(header).find("( 16281 )"), std::string::npos) << ReadText(header);
}

}  // namespace
}  // namespace bilevel
