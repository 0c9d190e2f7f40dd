// Failure handling of the real program under the real mpirun: an exception or a fatal signal on
// one rank ends the whole job with one "[rank r] error: ..." line; malformed input files (a
// damaged checkpoint, a damaged dataset, a bad or unreadable config file) get one clear line
// naming the file and the field, and a nonzero exit on every rank, without a hang.
#include <gtest/gtest.h>
#include <hdf5.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "cli/option_parser.h"
#include "io/checkpoint.h"
#include "io/dataset.h"
#include "io/idx.h"
#include "process_util.h"

namespace bilevel {
namespace {

using testing::Job;
using testing::Outcome;
using testing::Quote;
using testing::RunIn;
using testing::ScratchDir;

const std::string kExe = BILEVEL_EXE;

std::string Mpirun(int ranks, const std::string& args) {
  return std::string(BILEVEL_MPIEXEC) + " -np " + std::to_string(ranks) + " " + kExe +
         " solve -q " + args;
}

// Each rank's exit status goes to rc.<rank> in the job's directory (for errors found before
// the run, where every rank exits by itself rather than being aborted).
std::string MpirunRecordingExits(int ranks, const std::string& args) {
  return std::string(BILEVEL_MPIEXEC) + " -np " + std::to_string(ranks) + " sh -c " +
         Quote(Quote(kExe) + " solve -q " + args + "; echo $? > rc.$OMPI_COMM_WORLD_RANK");
}

// The lines the program wrote to stderr, without what mpirun adds about the job's end.
std::vector<std::string> ProgramLines(const std::string& err) {
  std::vector<std::string> kept;
  bool in_block = false;
  for (const std::string& line : testing::SplitLines(err)) {
    if (line.rfind("---", 0) == 0) {
      in_block = !in_block;
      continue;
    }
    if (in_block || line.find_first_not_of(" \t\r") == std::string::npos) continue;
    if (line.find("mpirun") != std::string::npos || line.find("mpiexec") != std::string::npos ||
        line.find("Primary job") != std::string::npos ||
        std::regex_search(line, std::regex(R"(^\[[^ \]]+:[0-9]+\] )")))  // "[host:pid] ..."
      continue;
    kept.push_back(line);
  }
  return kept;
}

// The processes of `exe` still working in `dir`, after giving them `seconds` to go.
std::vector<testing::ProcessInfo> Survivors(const ScratchDir& dir, double seconds) {
  std::vector<testing::ProcessInfo> left;
  for (int i = 0; i <= seconds * 10; ++i) {
    left.clear();
    for (const testing::ProcessInfo& p : testing::ProcessesIn(dir.path()))
      if (p.exe == kExe || p.rank >= 0) left.push_back(p);
    if (left.empty()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return left;
}

std::string Describe(const std::vector<testing::ProcessInfo>& processes) {
  std::string out;
  for (const auto& p : processes)
    out += std::to_string(p.pid) + " " + p.exe + " rank " + std::to_string(p.rank) + "\n";
  return out;
}

// --- An exception or a signal during the run ----------------------------------------------------

TEST(RunFailure, AnExceptionOnRankZeroAbortsTheWholeJob) {
  ScratchDir dir;
  // The metrics stream's first write fails (ENOSPC) on rank 0, in the middle of the run, while
  // rank 1 waits in a collective.
  Job job(dir, Mpirun(2, "--outer-iters 100000000 --eval-every 1 --metrics /dev/full"), "full");
  const auto outcome = job.Wait(30);
  ASSERT_TRUE(outcome.has_value()) << "mpirun still running 30 s after the write failed";
  EXPECT_NE(outcome->exit_code, 0) << outcome->Describe();
  EXPECT_LT(outcome->wall_s, 30);
  const std::vector<std::string> lines = ProgramLines(outcome->err);
  ASSERT_EQ(lines.size(), 1u) << outcome->Describe();
  EXPECT_EQ(lines[0].rfind("[rank 0] error: ", 0), 0u) << lines[0];
  EXPECT_NE(lines[0].find("/dev/full"), std::string::npos) << lines[0];
  EXPECT_EQ(outcome->out, "") << "no summary after an abort";
  const auto left = Survivors(dir, 5);
  EXPECT_TRUE(left.empty()) << "still running after mpirun ended:\n" << Describe(left);
}

TEST(RunFailure, AFatalSignalOnANonRootRankEndsTheWholeJob) {
  ScratchDir dir;
  // The test hook of src/cli/solve_command.cc: rank 1 raises SIGSEGV 0.5 s into the solve.
  Job job(dir, "env BILEVEL_TEST_FATAL_SIGNAL_RANK=1 " +
                   Mpirun(3, "--algorithm stocbio --outer-iters 100000000 --eval-every 1000"),
          "segv");
  const auto outcome = job.Wait(30);
  ASSERT_TRUE(outcome.has_value()) << "mpirun still running 30 s after rank 1 died";
  EXPECT_NE(outcome->exit_code, 0) << outcome->Describe();
  EXPECT_LT(outcome->wall_s, 30);
  EXPECT_NE(outcome->err.find("[rank 1] error: fatal signal SIGSEGV"), std::string::npos)
      << outcome->Describe();
  // Only rank 1 reports.
  EXPECT_EQ(outcome->err.find("[rank 0]"), std::string::npos) << outcome->err;
  EXPECT_EQ(outcome->err.find("[rank 2]"), std::string::npos) << outcome->err;
  const auto left = Survivors(dir, 5);
  EXPECT_TRUE(left.empty()) << "still running after mpirun ended:\n" << Describe(left);
}

// --- Malformed input files ----------------------------------------------------------------------

// Runs `args` on 2 ranks and expects a refusal before the run: one line from the program naming
// every part of `mentions`, a nonzero exit on every rank, nothing on stdout, no hang.
void ExpectRefused(const ScratchDir& dir, const std::string& args,
                   const std::vector<std::string>& mentions) {
  SCOPED_TRACE(args);
  std::filesystem::remove(dir.File("rc.0"));
  std::filesystem::remove(dir.File("rc.1"));
  const Outcome o = RunIn(dir, MpirunRecordingExits(2, args));
  EXPECT_LT(o.wall_s, 20) << o.Describe();
  for (const char* rc : {"rc.0", "rc.1"}) {
    const std::string code = testing::ReadText(dir.File(rc));
    EXPECT_FALSE(code.empty()) << rc << " missing: the rank did not exit by itself\n" << o.Describe();
    if (!code.empty()) EXPECT_NE(std::stoi(code), 0) << rc << "\n" << o.Describe();
  }
  EXPECT_EQ(o.out, "") << o.Describe();
  const std::vector<std::string> lines = ProgramLines(o.err);
  ASSERT_EQ(lines.size(), 1u) << o.Describe();
  for (const std::string& m : mentions)
    EXPECT_NE(lines[0].find(m), std::string::npos) << "'" << m << "' not in: " << lines[0];
}

// A whole checkpoint of a 2-rank aid-cg run, to damage copies of.
class DamagedCheckpoint : public ::testing::Test {
 protected:
  void SetUp() override {
    const Outcome o = RunIn(dir_, Mpirun(2, "--outer-iters 3 --checkpoint ck.h5"));
    ASSERT_EQ(o.exit_code, 0) << o.Describe();
  }
  // Copies ck.h5 to `name` and applies `damage` to the copy, opened read-write.
  std::string Damage(const std::string& name, void (*damage)(hid_t)) {
    std::filesystem::copy_file(dir_.File("ck.h5"), dir_.File(name),
                               std::filesystem::copy_options::overwrite_existing);
    const hid_t f = H5Fopen(dir_.File(name).c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
    EXPECT_GE(f, 0);
    damage(f);
    H5Fclose(f);
    return name;
  }
  ScratchDir dir_;
};

// Replaces root attribute `name` by a string attribute holding `value`.
void StringAttribute(hid_t f, const char* name, const char* value) {
  H5Adelete(f, name);
  const hid_t type = H5Tcopy(H5T_C_S1);
  H5Tset_size(type, std::strlen(value) + 1);
  const hid_t space = H5Screate(H5S_SCALAR);
  const hid_t attr = H5Acreate2(f, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
  H5Awrite(attr, type, value);
  H5Aclose(attr);
  H5Sclose(space);
  H5Tclose(type);
}

void IntAttribute(hid_t f, const char* name, long long value) {
  H5Adelete(f, name);
  const hid_t space = H5Screate(H5S_SCALAR);
  const hid_t attr = H5Acreate2(f, name, H5T_STD_I64LE, space, H5P_DEFAULT, H5P_DEFAULT);
  H5Awrite(attr, H5T_NATIVE_LLONG, &value);
  H5Aclose(attr);
  H5Sclose(space);
}

TEST_F(DamagedCheckpoint, MissingDatasetIsNamed) {
  const std::string bad = Damage("no_x.h5", [](hid_t f) { H5Ldelete(f, "x", H5P_DEFAULT); });
  ExpectRefused(dir_, "--outer-iters 5 --resume " + bad, {"[rank 0] error: ", bad, "'x'"});
}

TEST_F(DamagedCheckpoint, WrongTypedAttributesAreNamed) {
  std::string bad = Damage("iteration_string.h5",
                           [](hid_t f) { StringAttribute(f, "iteration", "three"); });
  ExpectRefused(dir_, "--outer-iters 5 --resume " + bad, {bad, "'iteration'", "not an integer"});
  bad = Damage("solve_s_string.h5", [](hid_t f) { StringAttribute(f, "solve_s", "1.5"); });
  ExpectRefused(dir_, "--outer-iters 5 --resume " + bad, {bad, "'solve_s'", "not a number"});
  bad = Damage("sampler_int.h5", [](hid_t f) { IntAttribute(f, "sampler_state", 7); });
  ExpectRefused(dir_, "--outer-iters 5 --resume " + bad, {bad, "'sampler_state'", "string"});
}

TEST_F(DamagedCheckpoint, ValuesOutOfRangeAreNamed) {
  std::string bad = Damage("iteration_huge.h5",
                           [](hid_t f) { IntAttribute(f, "iteration", 1LL << 40); });
  ExpectRefused(dir_, "--outer-iters 5 --resume " + bad, {bad, "'iteration'", "1099511627776"});
  bad = Damage("ranks_zero.h5", [](hid_t f) { IntAttribute(f, "ranks", 0); });
  ExpectRefused(dir_, "--outer-iters 5 --resume " + bad, {bad, "'ranks'"});
  bad = Damage("sampler_garbage.h5",
               [](hid_t f) { StringAttribute(f, "sampler_state", "12 34 not a state"); });
  ExpectRefused(dir_, "--outer-iters 5 --resume " + bad, {bad, "'sampler_state'"});
}

TEST_F(DamagedCheckpoint, MissingAlgorithmStateIsNamed) {
  // Found by the solver once the algorithm exists, on every rank at the same point.
  const std::string bad =
      Damage("no_y.h5", [](hid_t f) { H5Ldelete(f, "algorithm/y", H5P_DEFAULT); });
  ExpectRefused(dir_, "--outer-iters 5 --resume " + bad,
                {"bilevel solve: error: --resume " + bad + ": the algorithm state 'y' is missing"});
}

TEST_F(DamagedCheckpoint, TruncatedFileIsNamed) {
  std::filesystem::copy_file(dir_.File("ck.h5"), dir_.File("cut.h5"));
  std::filesystem::resize_file(dir_.File("cut.h5"), std::filesystem::file_size(dir_.File("cut.h5")) / 3);
  ExpectRefused(dir_, "--outer-iters 5 --resume cut.h5", {"[rank 0] error: cut.h5: "});
}

TEST(MalformedInput, DamagedDatasetFileIsNamed) {
  ScratchDir dir;
  io::Dataset data;
  data.attributes.num_features = 3;
  data.attributes.num_classes = 2;
  data.attributes.sources = "generated";
  data.attributes.source_sha256 = "0";
  for (io::SplitShard* s : {&data.train, &data.val, &data.test}) {
    s->labels = {0, 1, 1, 0};
    s->features = io::FeatureMatrix::Constant(4, 3, 0.5f);
  }
  io::WriteDataset(dir.File("good.h5"), data);
  std::filesystem::copy_file(dir.File("good.h5"), dir.File("bad.h5"));
  const hid_t f = H5Fopen(dir.File("bad.h5").c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  ASSERT_GE(f, 0);
  H5Ldelete(f, "val/labels", H5P_DEFAULT);
  H5Fclose(f);
  ExpectRefused(dir, "--problem l2reg --outer-iters 2 --data bad.h5",
                {"[rank 0] error: ", "bad.h5", "val/labels", "missing"});
  std::ofstream(dir.File("text.h5")) << "not hdf5\n";
  ExpectRefused(dir, "--problem hyperclean --outer-iters 2 --data text.h5",
                {"[rank 0] error: ", "text.h5", "not a readable HDF5 file"});
}

TEST(MalformedInput, ConfigFileWithABadValueIsNamed) {
  ScratchDir dir;
  std::ofstream(dir.File("bad.ini")) << "algorithm = aid-cg\nouter-iters = many\n";
  ExpectRefused(dir, "--config bad.ini",
                {"bilevel solve: error: config file 'bad.ini'", "outer-iters", "many"});
  std::ofstream(dir.File("neg.ini")) << "inner-lr = -0.5\n";
  ExpectRefused(dir, "--config neg.ini", {"bilevel solve: error: option --inner-lr", "-0.5"});
}

TEST(MalformedInput, UnreadableConfigIsNamed) {
  ScratchDir dir;
  std::filesystem::create_directory(dir.File("conf.d"));
  ExpectRefused(dir, "--config conf.d",
                {"bilevel solve: error: option --config: cannot read 'conf.d'"});
  ExpectRefused(dir, "--config missing.ini",
                {"bilevel solve: error: option --config: cannot read 'missing.ini'"});
}

// --- The readers in this process: regressions of what hardening found -------------------------

// An IDX header whose count x rows x cols wraps around 2^64 to 0 was accepted as 4 images of
// 2^31 x 2^31 pixels with no pixels at all (found by fuzz_idx;
// tests/fuzz/regressions/idx/images_size_wraps_to_zero).
TEST(ParserRegression, IdxImageCountTimesSizeMustNotWrapAround) {
  ScratchDir dir;
  const std::string path = dir.File("wrap.idx");
  const unsigned char header[16] = {0, 0, 8, 3, 0, 0, 0, 4, 0x80, 0, 0, 0, 0x80, 0, 0, 0};
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(header), 16);
  try {
    io::ReadIdxImages(path);
    ADD_FAILURE() << "accepted";
  } catch (const io::IoError& e) {
    EXPECT_EQ(std::string(e.what()),
              path + ": the header announces 4 images of 2147483648 x 2147483648 pixels, more "
                     "bytes than a file can hold");
  }
}

// --batch-size beyond the range of long long was taken as LLONG_MAX.
TEST(ParserRegression, ConfigBatchSizeOutOfRangeIsRefused) {
  try {
    cli::ParseSolveConfigText("batch-size = 99999999999999999999999\n", "run.ini");
    ADD_FAILURE() << "accepted";
  } catch (const cli::UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("option --batch-size: '99999999999999999999999'"),
              std::string::npos)
        << e.what();
  }
}

// Boost.Program_options loops forever formatting an error about a value that holds its own
// placeholder (found by fuzz_config: tests/fuzz/regressions/config/): `--seed %value%` or a
// config line `data-seed = %value%` hung `bilevel solve`.
TEST(ParserRegression, PlaceholdersInBadValuesDoNotHang) {
  const auto refused = [](auto parse, const std::string& want) {
    try {
      parse();
      ADD_FAILURE() << "accepted";
    } catch (const cli::UsageError& e) {
      EXPECT_NE(std::string(e.what()).find(want), std::string::npos) << e.what();
    }
  };
  refused([] { cli::ParseSolveConfigText("data-seed = %value%\n", "run.ini"); },
          "config file 'run.ini': the argument for option 'data-seed' is invalid");
  refused([] { cli::ParseSolveConfigText("%invalid_line%\n", "run.ini"); },
          "config file 'run.ini': a line is not 'key = value'");
  refused([] { cli::ParseSolveArgs({"--seed", "%value%"}); },
          "the argument for option '--seed' is invalid");
  refused([] { cli::ParseSolveArgs({"--outer-iters", "%canonical_option%"}); },
          "the argument for option '--outer-iters' is invalid");
  // Without placeholders, Boost's own message, with the value.
  refused([] { cli::ParseSolveArgs({"--seed", "x%y"}); }, "('x%y')");
}

// The config text parser is the --config path: the same errors, naming the file.
TEST(ParserRegression, ConfigTextErrorsNameTheFile) {
  try {
    cli::ParseSolveConfigText("outer-iters = 3\ncolour = red\n", "run.ini");
    ADD_FAILURE() << "accepted";
  } catch (const cli::UsageError& e) {
    EXPECT_EQ(std::string(e.what()).rfind("config file 'run.ini': unknown option 'colour'", 0), 0u)
        << e.what();
  }
  const cli::SolveConfig c = cli::ParseSolveConfigText("algorithm = stocbio\nouter-iters = 7\n");
  EXPECT_EQ(c.solver.algorithm, "stocbio");
  EXPECT_EQ(c.solver.outer_iters, 7);
}

// --outer-batch-size: left out, the problem's recommendation; 0, --batch-size; a count, itself.
TEST(ParserRegression, OuterBatchSizeAutoZeroAndCount) {
  ProblemDefaults defaults;
  defaults.batch_size = 100;
  defaults.outer_batch_size = 5000;
  for (const auto& [args, want] :
       std::vector<std::pair<std::vector<std::string>, Index>>{
           {{}, 5000}, {{"--outer-batch-size", "auto"}, 5000},
           {{"--outer-batch-size", "0"}, 0}, {{"--outer-batch-size", "30"}, 30}}) {
    cli::SolveConfig c = cli::ParseSolveArgs(args);
    cli::ResolveDefaults(defaults, &c);
    EXPECT_EQ(c.solver.outer_batch_size, want) << args.size();
    EXPECT_EQ(c.solver.EffectiveOuterBatch(), want > 0 ? want : 100);
  }
}

// A dataset whose dimensions promise far more than the file holds (declared, never written: the
// file stays small) is refused naming it, instead of an attempt to allocate the promised size.
TEST(ParserRegression, DatasetLongerThanTheFileIsRefused) {
  ScratchDir dir;
  io::Dataset data;
  data.attributes.num_features = 3;
  data.attributes.num_classes = 2;
  for (io::SplitShard* s : {&data.train, &data.val, &data.test}) {
    s->labels = {0, 1, 1, 0};
    s->features = io::FeatureMatrix::Constant(4, 3, 0.5f);
  }
  const std::string path = dir.File("huge.h5");
  io::WriteDataset(path, data);
  const hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  ASSERT_GE(f, 0);
  ASSERT_GE(H5Ldelete(f, "val/labels", H5P_DEFAULT), 0);
  const hsize_t n = hsize_t{1} << 40;
  const hid_t space = H5Screate_simple(1, &n, nullptr);
  const hid_t set = H5Dcreate2(f, "val/labels", H5T_STD_I32LE, space, H5P_DEFAULT, H5P_DEFAULT,
                               H5P_DEFAULT);
  ASSERT_GE(set, 0);
  H5Dclose(set);
  H5Sclose(space);
  H5Fclose(f);
  EXPECT_LT(std::filesystem::file_size(path), 1u << 20);
  try {
    io::ReadDatasetInfo(path);
    ADD_FAILURE() << "accepted";
  } catch (const io::IoError& e) {
    EXPECT_EQ(std::string(e.what()).rfind(path + ": val/labels: declares 1099511627776 entries of 4 bytes, more than the whole file", 0),
              0u)
        << e.what();
  }
}

// The same for a checkpoint's vector: x declared with 2^40 entries.
TEST_F(DamagedCheckpoint, VectorLongerThanTheFileIsRefused) {
  const std::string bad = Damage("huge_x.h5", [](hid_t f) {
    H5Ldelete(f, "x", H5P_DEFAULT);
    const hsize_t n = hsize_t{1} << 40;
    const hid_t space = H5Screate_simple(1, &n, nullptr);
    H5Dclose(H5Dcreate2(f, "x", H5T_IEEE_F64LE, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
    H5Sclose(space);
  });
  ExpectRefused(dir_, "--outer-iters 5 --resume " + bad,
                {"[rank 0] error: " + bad + ": dataset 'x' declares 1099511627776 entries"});
}

}  // namespace
}  // namespace bilevel
