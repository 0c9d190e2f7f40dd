// `bilevel info` on files the real program made: datasets from `bilevel convert` (LIBSVM text
// and IDX with corrupted labels, both made here), a checkpoint, a result file; bad input.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "io/checkpoint.h"
#include "process_util.h"

namespace bilevel {
namespace {

using testing::Outcome;
using testing::RunIn;
using testing::ScratchDir;

const std::string kExe = BILEVEL_EXE;

void Write(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

void ExpectHas(const std::string& text, const std::string& part) {
  EXPECT_NE(text.find(part), std::string::npos) << "'" << part << "' not in:\n" << text;
}

// Whether `word` is one of the whitespace-separated words of `text`.
bool HasWord(const std::string& text, const std::string& word) {
  std::istringstream in(text);
  for (std::string w; in >> w;)
    if (w == word) return true;
  return false;
}

// The line of `text` that starts with `prefix` (after spaces), or "".
std::string LineStarting(const std::string& text, const std::string& prefix) {
  for (const std::string& line : testing::SplitLines(text)) {
    const auto first = line.find_first_not_of(' ');
    if (first != std::string::npos && line.compare(first, prefix.size(), prefix) == 0) return line;
  }
  return "";
}

TEST(Info, LibsvmDataset) {
  ScratchDir dir;
  // 12 training rows (labels -1, +1 and 3 -> classes 0, 1, 2), 5 test rows, 6 features, with
  // one explicit zero among the stored entries.
  Write(dir.File("train.txt"),
        "-1 1:0.5 3:1\n+1 2:1 6:2\n3 1:1\n-1 4:0.25 5:0.5 6:1\n+1 1:1 2:1 3:1\n3 6:0\n"
        "-1 2:0.5\n+1 3:0.5\n3 4:1 5:1\n-1 1:2\n+1 5:1\n3 2:1 4:1\n");
  Write(dir.File("test.txt"), "-1 1:1\n+1 2:1\n3 3:1\n-1 4:1\n+1 5:1 6:1\n");
  Outcome c = RunIn(dir, kExe + " convert libsvm --train train.txt --test test.txt "
                                "--val-fraction 0.25 --output data.h5");
  ASSERT_EQ(c.exit_code, 0) << c.Describe();

  Outcome o = RunIn(dir, kExe + " info data.h5");
  ASSERT_EQ(o.exit_code, 0) << o.Describe();
  EXPECT_EQ(o.err, "");
  ExpectHas(o.out, "data.h5: bilevel dataset (format 1), csr storage, 6 features, 3 classes");
  ExpectHas(o.out, "sources: train.txt; test.txt");
  // Splits: 12 rows stratified 3 + 1 per class: train 9, val 3; test 5.
  const std::string train = LineStarting(o.out, "train ");
  const std::string val = LineStarting(o.out, "val ");
  const std::string test = LineStarting(o.out, "test ");
  ASSERT_NE(train, "") << o.out;
  ASSERT_NE(val, "") << o.out;
  ASSERT_NE(test, "") << o.out;
  EXPECT_NE(train.find(" 9 "), std::string::npos) << train;
  EXPECT_NE(train.find("0: 3 (33.3%), 1: 3 (33.3%), 2: 3 (33.3%)"), std::string::npos) << train;
  EXPECT_NE(val.find(" 3 "), std::string::npos) << val;
  EXPECT_NE(val.find("0: 1 (33.3%), 1: 1 (33.3%), 2: 1 (33.3%)"), std::string::npos) << val;
  // Test: 5 rows, 6 stored entries, all nonzero: density 6 / 30 = 0.2.
  EXPECT_NE(test.find("         5            6            6        0.2  0: 2 (40.0%), 1: 2 "
                      "(40.0%), 2: 1 (20.0%)"),
            std::string::npos)
      << test;
  ExpectHas(o.out, "shapes: features [rows x 6] as CSR");
  ExpectHas(o.out, "label corruption: none");
  // Stored entries of train + val: 20, of which one is 0.
  int stored = 0, nonzero = 0;
  for (const std::string& line : {train, val}) {
    long long rows = 0, s = 0, nz = 0;
    char name[16];
    ASSERT_EQ(std::sscanf(line.c_str(), " %15s %lld %lld %lld", name, &rows, &s, &nz), 4) << line;
    stored += static_cast<int>(s), nonzero += static_cast<int>(nz);
  }
  EXPECT_EQ(stored, 20);
  EXPECT_EQ(nonzero, 19);
}

void PutWord(std::string* s, std::uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) s->push_back(static_cast<char>((v >> shift) & 0xff));
}

TEST(Info, IdxDatasetWithCorruptedLabels) {
  ScratchDir dir;
  // 60 training images of 2 x 3 pixels, 4 classes; 8 test images. Pixel k of image i is
  // (i + k) % 4 * 60: a quarter of the pixels are 0.
  auto images = [](int count) {
    std::string s;
    PutWord(&s, 0x00000803), PutWord(&s, count), PutWord(&s, 2), PutWord(&s, 3);
    for (int i = 0; i < count; ++i)
      for (int k = 0; k < 6; ++k) s.push_back(static_cast<char>((i + k) % 4 * 60));
    return s;
  };
  auto labels = [](int count) {
    std::string s;
    PutWord(&s, 0x00000801), PutWord(&s, count);
    for (int i = 0; i < count; ++i) s.push_back(static_cast<char>(i % 4));
    return s;
  };
  Write(dir.File("train-images"), images(60));
  Write(dir.File("train-labels"), labels(60));
  Write(dir.File("test-images"), images(8));
  Write(dir.File("test-labels"), labels(8));
  Outcome c = RunIn(dir, kExe + " convert idx --images train-images --labels train-labels "
                                "--test-images test-images --test-labels test-labels "
                                "--n-train 40 --n-val 20 --noise 0.5 --seed 7 --output mnist.h5");
  ASSERT_EQ(c.exit_code, 0) << c.Describe();

  Outcome o = RunIn(dir, kExe + " info mnist.h5");
  ASSERT_EQ(o.exit_code, 0) << o.Describe();
  ExpectHas(o.out, "mnist.h5: bilevel dataset (format 1), dense storage, 6 features, 4 classes");
  ExpectHas(o.out, "shapes: features [rows x 6] dense float32");
  const std::string train = LineStarting(o.out, "train ");
  // Dense: 40 x 6 stored, a quarter of them 0.
  EXPECT_NE(train.find("        40          240          180       0.75  "), std::string::npos)
      << o.out;
  EXPECT_NE(LineStarting(o.out, "test ").find("         8           48           36       0.75  "
                                              "0: 2 (25.0%), 1: 2 (25.0%), 2: 2 (25.0%), 3: 2 (25.0%)"),
            std::string::npos)
      << o.out;
  // The corruption: the rate and seed stored, and the count measured against clean_labels.
  const std::string corruption = LineStarting(o.out, "label corruption: ");
  ASSERT_EQ(corruption.rfind("  label corruption: rate 0.5 (seed 7); ", 0), 0u) << o.out;
  int corrupted = -1, rows = -1;
  ASSERT_EQ(std::sscanf(corruption.c_str(), "  label corruption: rate 0.5 (seed 7); %d of %d",
                        &corrupted, &rows),
            2)
      << corruption;
  EXPECT_EQ(rows, 40);
  EXPECT_GT(corrupted, 8);   // about 20 of 40
  EXPECT_LT(corrupted, 32);
  char fraction[32];
  std::snprintf(fraction, sizeof(fraction), "%.4g", corrupted / 40.0);
  ExpectHas(corruption, std::string("train labels differ from the clean labels (") + fraction + ")");
}

TEST(Info, Checkpoint) {
  ScratchDir dir;
  Outcome run = RunIn(dir, std::string(BILEVEL_MPIEXEC) + " -np 2 " + kExe +
                               " solve -q --algorithm stocbio --outer-iters 17 --eval-every 5 "
                               "--seed 4 --checkpoint ck.h5 --metrics m.jsonl");
  ASSERT_EQ(run.exit_code, 0) << run.Describe();

  Outcome o = RunIn(dir, kExe + " info ck.h5");
  ASSERT_EQ(o.exit_code, 0) << o.Describe();
  ExpectHas(o.out, "ck.h5: bilevel checkpoint after 17 of 17 outer iterations\n");
  ExpectHas(o.out, "  problem quadratic, algorithm stocbio, written by a run on 2 ranks, solver time ");
  ExpectHas(o.out, "  options:\n");
  for (const char* option : {"algorithm=stocbio", "outer-iters=17", "seed=4", "eval-every=5",
                             "inner-lr=0.1", "batch-size=256"})
    EXPECT_TRUE(HasWord(o.out, option)) << option << " not in:\n" << o.out;
  ExpectHas(o.out, "  problem identity:\n");
  ExpectHas(o.out, "dim_outer=20");
  ExpectHas(o.out, "state: x [20]; algorithm ");
  ExpectHas(o.out, "sampler saved");
  ExpectHas(o.out, "oracle samples (calls): grad_f ");
  ExpectHas(o.out, "communication (calls, bytes): allreduce ");
  // The metrics so far: the latest evaluation, iteration 17, as in the metrics file.
  ExpectHas(o.out, "metrics so far (the latest evaluation):\n    iter=17 time_s=");
  const std::string last = testing::LastLine(testing::ReadText(dir.File("m.jsonl")));
  const std::string grad_f = testing::JsonField(last, "grad_f");
  ASSERT_NE(grad_f, "");
  EXPECT_TRUE(HasWord(o.out, "grad_f=" + grad_f)) << o.out;
  const io::Checkpoint c = io::ReadCheckpoint(dir.File("ck.h5"));
  ExpectHas(o.out, "grad_f " + std::to_string(c.state.oracles.grad_f) + " (");
  ExpectHas(o.out, "allreduce " + std::to_string(c.state.comm.allreduce_calls) + ", " +
                       std::to_string(c.state.comm.allreduce_bytes) + ";");

  // A checkpoint written mid-run (SIGTERM would do the same): the iteration so far.
  run = RunIn(dir, kExe + " solve -q --outer-iters 30 --max-time 1e-9 --checkpoint mid.h5");
  ASSERT_EQ(run.exit_code, 0) << run.Describe();
  o = RunIn(dir, kExe + " info mid.h5");
  ASSERT_EQ(o.exit_code, 0) << o.Describe();
  ExpectHas(o.out, "mid.h5: bilevel checkpoint after 1 of 30 outer iterations\n");
  ExpectHas(o.out, "algorithm aid-cg, written by a run on 1 rank");
}

TEST(Info, ResultFileSeveralFilesAndErrors) {
  ScratchDir dir;
  ASSERT_EQ(RunIn(dir, kExe + " solve -q --outer-iters 5 --output r.h5 --checkpoint ck.h5").exit_code, 0);
  Write(dir.File("notes.txt"), "not a bilevel file\n");
  // Every file is described even when one fails; the exit code says one failed.
  Outcome o = RunIn(dir, std::string(BILEVEL_MPIEXEC) + " -np 2 " + kExe +
                             " info r.h5 missing.h5 notes.txt ck.h5");
  EXPECT_EQ(o.exit_code, 1) << o.Describe();
  ExpectHas(o.out, "r.h5: bilevel result: problem quadratic, algorithm aid-cg, termination "
                   "max_iters after 5 iterations on 1 rank\n  x [20], |x| = ");
  ExpectHas(o.out, "ck.h5: bilevel checkpoint after 5 of 5 outer iterations");
  // Once, from rank 0.
  EXPECT_EQ(o.out.find("ck.h5: bilevel checkpoint"), o.out.rfind("ck.h5: bilevel checkpoint"));
  ExpectHas(o.err, "bilevel info: error: missing.h5: cannot open for reading\n");
  ExpectHas(o.err, "bilevel info: error: notes.txt: ");

  o = RunIn(dir, kExe + " info");
  EXPECT_EQ(o.exit_code, 2);
  ExpectHas(o.err, "Usage: bilevel info FILE...");
  o = RunIn(dir, kExe + " info --bogus r.h5");
  EXPECT_EQ(o.exit_code, 2);
  ExpectHas(o.err, "unknown option '--bogus'");
  o = RunIn(dir, kExe + " info --help");
  EXPECT_EQ(o.exit_code, 0);
  ExpectHas(o.out, "Usage: bilevel info FILE...");
  o = RunIn(dir, kExe + " --help");
  ExpectHas(o.out, "  info       describe a dataset, checkpoint or result file");
}

}  // namespace
}  // namespace bilevel
