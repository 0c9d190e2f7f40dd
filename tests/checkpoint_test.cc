// Checkpoints, exact resume and failure handling, with the real program under the real mpirun.
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <thread>

#include "io/checkpoint.h"
#include "io/result_file.h"
#include "process_util.h"

namespace bilevel {
namespace {

using testing::Job;
using testing::JsonField;
using testing::LastLine;
using testing::Outcome;
using testing::Quote;
using testing::RunIn;
using testing::ScratchDir;

const std::string kExe = BILEVEL_EXE;

std::string Mpirun(int ranks, const std::string& args, bool quiet = true) {
  return std::string(BILEVEL_MPIEXEC) + " -np " + std::to_string(ranks) + " " + kExe +
         (quiet ? " solve -q " : " solve ") + args;
}

// Metrics lines without their timing, which no two runs share.
std::string WithoutTimes(const std::string& metrics) {
  std::string out;
  for (const std::string& line : testing::SplitLines(metrics)) {
    const auto at = line.find("\"time_s\": ");
    const auto end = line.find(',', at);
    out += line.substr(0, at) + line.substr(end + 2) + "\n";
  }
  return out;
}

TEST(Resume, SameRanksIsBitForBitTheUninterruptedRun) {
  for (const char* algorithm : {"stocbio", "aid-cg"}) {
    ScratchDir dir;
    const std::string common = std::string("--algorithm ") + algorithm + " --eval-every 5 ";
    Outcome full = RunIn(dir, Mpirun(2, common + "--outer-iters 40 --output full.h5 --metrics full.jsonl"));
    ASSERT_EQ(full.exit_code, 0) << full.Describe();
    Outcome part = RunIn(dir, Mpirun(2, common + "--outer-iters 17 --checkpoint ck.h5 --metrics part.jsonl"));
    ASSERT_EQ(part.exit_code, 0) << part.Describe();
    Outcome rest = RunIn(dir, Mpirun(2, common + "--outer-iters 40 --resume ck.h5 --output resumed.h5 --metrics part.jsonl"));
    ASSERT_EQ(rest.exit_code, 0) << rest.Describe();
    EXPECT_EQ(JsonField(LastLine(rest.out), "iterations"), "40");

    // h5diff without a tolerance: every element of /x and /y identical.
    Outcome diff = RunIn(dir, "h5diff full.h5 resumed.h5 /x /x");
    EXPECT_EQ(diff.exit_code, 0) << algorithm << ": " << diff.Describe();
    diff = RunIn(dir, "h5diff full.h5 resumed.h5 /y /y");
    EXPECT_EQ(diff.exit_code, 0) << algorithm << ": " << diff.Describe();
    const io::RunResult a = io::ReadResult(dir.File("full.h5"));
    const io::RunResult b = io::ReadResult(dir.File("resumed.h5"));
    EXPECT_TRUE(a.x == b.x && a.y == b.y) << algorithm;
    // The metrics stream reads as if the run had never stopped (timings aside).
    EXPECT_EQ(WithoutTimes(testing::ReadText(dir.File("full.jsonl"))),
              WithoutTimes(testing::ReadText(dir.File("part.jsonl"))))
        << algorithm;
  }
}

// l2reg on sparse rows: stocBiO's block-sparse steps defer the regularizer's steps within an
// iteration only, so a checkpoint between iterations holds everything and the resumed run is
// the uninterrupted one bit for bit (and the steps were block-sparse: allgathers, on 2 ranks).
TEST(Resume, BlockSparseStepsAreBitForBitTheUninterruptedRun) {
  ScratchDir dir;
  // 240 documents of 4 classes over 400 features, a few per row: a batch of 8 touches few rows.
  std::mt19937 rng(11);
  std::string svm;
  for (int i = 0; i < 240; ++i) {
    const int label = static_cast<int>(rng() % 4);
    svm += std::to_string(label);
    for (int j = 1; j <= 400; ++j)
      if ((j % 4 == label && rng() % 20 == 0) || rng() % 100 == 0)
        svm += " " + std::to_string(j) + ":" + std::to_string(1 + rng() % 3);
    svm += "\n";
  }
  std::ofstream(dir.File("docs.svm")) << svm;
  Outcome c = RunIn(dir, kExe + " convert libsvm --train docs.svm --test docs.svm --seed 1 "
                                "--output docs.h5");
  ASSERT_EQ(c.exit_code, 0) << c.Describe();
  const std::string common =
      "--problem l2reg --data docs.h5 --algorithm stocbio --batch-size 8 --eval-every 4 ";
  Outcome full = RunIn(dir, Mpirun(2, common + "--outer-iters 20 --output full.h5"));
  ASSERT_EQ(full.exit_code, 0) << full.Describe();
  EXPECT_GT(std::stoll(JsonField(LastLine(full.out), "allgather_calls")), 0) << full.out;
  Outcome part = RunIn(dir, Mpirun(2, common + "--outer-iters 9 --checkpoint ck.h5"));
  ASSERT_EQ(part.exit_code, 0) << part.Describe();
  Outcome rest =
      RunIn(dir, Mpirun(2, common + "--outer-iters 20 --resume ck.h5 --output resumed.h5"));
  ASSERT_EQ(rest.exit_code, 0) << rest.Describe();
  const io::RunResult a = io::ReadResult(dir.File("full.h5"));
  const io::RunResult b = io::ReadResult(dir.File("resumed.h5"));
  EXPECT_GT(a.y.norm(), 0);
  EXPECT_TRUE(a.x == b.x && a.y == b.y);
}

TEST(Resume, OtherRanksAgreesToTenDigits) {
  for (const char* algorithm : {"stocbio", "aid-cg"}) {
    ScratchDir dir;
    const std::string common = std::string("--algorithm ") + algorithm + " ";
    ASSERT_EQ(RunIn(dir, Mpirun(2, common + "--outer-iters 40 --output full.h5")).exit_code, 0);
    ASSERT_EQ(RunIn(dir, Mpirun(2, common + "--outer-iters 17 --checkpoint ck.h5")).exit_code, 0);
    Outcome rest = RunIn(dir, Mpirun(3, common + "--outer-iters 40 --resume ck.h5 --output r3.h5"));
    ASSERT_EQ(rest.exit_code, 0) << rest.Describe();
    const io::RunResult a = io::ReadResult(dir.File("full.h5"));
    const io::RunResult b = io::ReadResult(dir.File("r3.h5"));
    EXPECT_LE((a.x - b.x).norm(), 1e-10 * a.x.norm()) << algorithm;
    EXPECT_LE((a.y - b.y).norm(), 1e-10 * a.y.norm()) << algorithm;
    EXPECT_EQ(b.ranks, 3);
  }
}

TEST(Resume, RefusesAnotherProblemAlgorithmOrTrajectoryOption) {
  ScratchDir dir;
  ASSERT_EQ(RunIn(dir, Mpirun(2, "--algorithm aid-cg --outer-iters 5 --checkpoint ck.h5")).exit_code, 0);
  const struct {
    const char* args;
    const char* named;
  } cases[] = {{"--algorithm stocbio", "--algorithm"},
               {"--algorithm aid-cg --inner-lr 0.05", "--inner-lr"},
               {"--algorithm aid-cg --hessian-steps 3", "--hessian-steps"},
               {"--algorithm aid-cg --kappa 20", "kappa"},
               {"--algorithm aid-cg --dim-inner 30", "dim_inner"}};
  for (const auto& c : cases) {
    Outcome o = RunIn(dir, Mpirun(2, std::string(c.args) + " --outer-iters 10 --resume ck.h5"));
    EXPECT_EQ(o.exit_code, 2) << c.args << "\n" << o.Describe();
    EXPECT_NE(o.err.find(c.named), std::string::npos) << c.args << "\n" << o.err;
    EXPECT_NE(o.err.find("ck.h5"), std::string::npos) << o.err;
    EXPECT_EQ(o.out, "") << c.args;
  }
  // Options that do not change the trajectory may change.
  Outcome ok = RunIn(dir, Mpirun(2, "--algorithm aid-cg --outer-iters 12 --max-time 100 "
                                  "--eval-every 3 --checkpoint-every 4 --resume ck.h5"));
  EXPECT_EQ(ok.exit_code, 0) << ok.Describe();
  EXPECT_EQ(JsonField(LastLine(ok.out), "iterations"), "12");
}

TEST(Resume, RejectsABrokenCheckpointFileNamingIt) {
  ScratchDir dir;
  ASSERT_EQ(RunIn(dir, Mpirun(1, "--outer-iters 3 --checkpoint ck.h5")).exit_code, 0);
  // Truncate a copy to half its size; and a file that is not HDF5 at all.
  ASSERT_EQ(RunIn(dir, "head -c 2000 ck.h5 > half.h5 && echo hello > text.h5").exit_code, 0);
  for (const char* bad : {"half.h5", "text.h5", "missing.h5"}) {
    Outcome o = RunIn(dir, Mpirun(2, std::string("--outer-iters 5 --resume ") + bad));
    EXPECT_NE(o.exit_code, 0) << bad;
    EXPECT_NE(o.err.find(bad), std::string::npos) << o.err;
    EXPECT_LT(o.wall_s, 20);
  }
}

TEST(Checkpoints, KeepsTheLastN) {
  ScratchDir dir;
  Outcome o = RunIn(dir, Mpirun(2, "--outer-iters 30 --checkpoint ck.h5 --checkpoint-every 5 "
                                 "--checkpoint-keep 3"));
  ASSERT_EQ(o.exit_code, 0) << o.Describe();
  EXPECT_EQ(io::ReadCheckpoint(dir.File("ck.h5")).state.iteration, 30);
  EXPECT_EQ(io::ReadCheckpoint(dir.File("ck.h5.25")).state.iteration, 25);
  EXPECT_EQ(io::ReadCheckpoint(dir.File("ck.h5.20")).state.iteration, 20);
  EXPECT_FALSE(std::filesystem::exists(dir.File("ck.h5.15")));
  EXPECT_FALSE(std::filesystem::exists(dir.File("ck.h5.10")));
  // h5dump reads it.
  EXPECT_EQ(RunIn(dir, "h5dump ck.h5 > /dev/null").exit_code, 0);
}

TEST(Failure, AKilledRankEndsTheJobAndTheLastCheckpointResumes) {
  ScratchDir dir;
  Job job(dir, Mpirun(3, "--algorithm stocbio --outer-iters 100000000 --eval-every 1000 "
                         "--checkpoint ck.h5 --checkpoint-every 200"),
          "job");
  // Wait for a first checkpoint, then kill rank 1.
  for (int i = 0; i < 300 && !std::filesystem::exists(dir.File("ck.h5")); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  ASSERT_TRUE(std::filesystem::exists(dir.File("ck.h5")));
  const auto ranks = testing::RankProcesses(kExe, dir.path());
  ASSERT_EQ(ranks.size(), 3u);
  ASSERT_EQ(kill(ranks[1].second, SIGKILL), 0);
  const auto killed_at = job.Elapsed();
  const auto outcome = job.Wait(30);
  ASSERT_TRUE(outcome.has_value()) << "mpirun still running 30 s after a rank died";
  EXPECT_NE(outcome->exit_code, 0);
  EXPECT_LT(outcome->wall_s - killed_at, 30);
  const io::Checkpoint last = io::ReadCheckpoint(dir.File("ck.h5"));
  EXPECT_GE(last.state.iteration, 200);
  EXPECT_EQ(last.state.iteration % 200, 0);
  Outcome resumed = RunIn(dir, Mpirun(2, "--algorithm stocbio --outer-iters " +
                                           std::to_string(last.state.iteration + 10) +
                                           " --eval-every 1000 --checkpoint-every 200 "
                                           "--resume ck.h5"));
  EXPECT_EQ(resumed.exit_code, 0) << resumed.Describe();
  EXPECT_EQ(JsonField(LastLine(resumed.out), "iterations"),
            std::to_string(last.state.iteration + 10));
}

TEST(Failure, KillingTheCoordinatorMidWriteNeverBreaksTheCheckpoint) {
  // Each checkpoint write is stretched by 30 ms (a test hook) and written every iteration, so
  // most kills land inside a write.
  ScratchDir dir;
  setenv("BILEVEL_TEST_CHECKPOINT_DELAY_MS", "30", 1);
  std::mt19937 rng(5);
  int loaded = 0;
  for (int attempt = 0; attempt < 6; ++attempt) {
    Job job(dir, Mpirun(2, "--dim-inner 400 --dim-outer 400 --samples 400 --outer-iters "
                           "100000000 --eval-every 100000 --checkpoint ck.h5 --checkpoint-every 1"),
            "kill" + std::to_string(attempt));
    // The first checkpoint and both ranks, however slow the build (sanitizers) or the machine.
    std::vector<std::pair<int, pid_t>> ranks;
    for (int i = 0; i < 6000 && (ranks.size() < 2 || !std::filesystem::exists(dir.File("ck.h5")));
         ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      ranks = testing::RankProcesses(kExe, dir.path());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100 + rng() % 400));
    ranks = testing::RankProcesses(kExe, dir.path());
    if (ranks.empty()) {
      const auto outcome = job.Wait(1);
      FAIL() << "no rank running; " << (outcome ? outcome->Describe() : "job still running");
    }
    ASSERT_EQ(ranks[0].first, 0);
    kill(ranks[0].second, SIGKILL);
    ASSERT_TRUE(job.Wait(30).has_value());
    // Whatever instant the kill hit, the checkpoint is whole and loads.
    const io::Checkpoint c = io::ReadCheckpoint(dir.File("ck.h5"));
    EXPECT_GE(c.state.iteration, 1);
    EXPECT_EQ(c.state.x.size(), 400);
    ++loaded;
  }
  unsetenv("BILEVEL_TEST_CHECKPOINT_DELAY_MS");
  EXPECT_EQ(loaded, 6);
}

// Waits (up to 60 s) until the job's rank 0 has printed the run header on stderr (file
// `err`; a run without -q): every rank has then installed its signal handlers (before a collective that comes
// first). A fixed sleep was not enough for a sanitizer build on a loaded machine, whose
// MPI_Init alone can take longer.
bool WaitForHeader(const std::string& err) {
  for (int i = 0; i < 600; ++i) {
    std::ifstream in(err);
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (text.find("bilevel solve: problem") != std::string::npos) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return false;
}

TEST(Signals, SigtermWritesACheckpointAndStops) {
  ScratchDir dir;
  Job job(dir, Mpirun(2, "--algorithm aid-cg --outer-iters 100000000 --eval-every 1000 "
                         "--checkpoint ck.h5", /*quiet=*/false),
          "term");
  ASSERT_TRUE(WaitForHeader(dir.File("term.err"))) << "no run header within 60 s";
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // into the iterations
  // As Slurm does at a time limit or on scancel: SIGTERM to every task.
  const auto ranks = testing::RankProcesses(kExe, dir.path());
  ASSERT_EQ(ranks.size(), 2u);
  const double signalled_at = job.Elapsed();
  for (const auto& [rank, pid] : ranks) kill(pid, SIGTERM);
  const auto outcome = job.Wait(10);
  ASSERT_TRUE(outcome.has_value()) << "still running 10 s after SIGTERM";
  EXPECT_LT(outcome->wall_s - signalled_at, 10);
  EXPECT_EQ(outcome->exit_code, 0) << outcome->Describe();
  const std::string summary = LastLine(outcome->out);
  EXPECT_EQ(JsonField(summary, "termination"), "signal") << summary;
  const io::Checkpoint c = io::ReadCheckpoint(dir.File("ck.h5"));
  EXPECT_EQ(std::to_string(c.state.iteration), JsonField(summary, "iterations"));
}

TEST(Signals, SigusrOneToMpirunIsForwardedAndStopsWithACheckpoint) {
  ScratchDir dir;
  Job job(dir, Mpirun(2, "--algorithm stocbio --outer-iters 100000000 "
                                   "--eval-every 1000 --checkpoint ck.h5", /*quiet=*/false),
          "usr1");
  ASSERT_TRUE(WaitForHeader(dir.File("usr1.err"))) << "no run header within 60 s";
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // into the iterations
  const pid_t mpirun = testing::MpirunIn(dir.path());
  ASSERT_GT(mpirun, 0);
  ASSERT_EQ(kill(mpirun, SIGUSR1), 0);  // mpirun forwards SIGUSR1 to every rank
  const auto outcome = job.Wait(10);
  ASSERT_TRUE(outcome.has_value());
  EXPECT_EQ(outcome->exit_code, 0) << outcome->Describe();
  EXPECT_EQ(JsonField(LastLine(outcome->out), "termination"), "signal");
  EXPECT_GE(io::ReadCheckpoint(dir.File("ck.h5")).state.iteration, 1);
}

TEST(Divergence, EndsWithDivergedAndKeepsTheLastGoodCheckpoint) {
  ScratchDir dir;
  // An inner step of 0.25 > 2/L = 0.2: y grows by a factor 1.5 per step until it overflows.
  Outcome o = RunIn(dir, Mpirun(2, "--algorithm aid-cg --inner-lr 0.25 --outer-iters 1000 "
                                 "--checkpoint ck.h5 --checkpoint-every 10"));
  EXPECT_EQ(o.exit_code, 3) << o.Describe();
  const std::string summary = LastLine(o.out);
  EXPECT_EQ(JsonField(summary, "termination"), "diverged");
  const int diverged_at = std::stoi(JsonField(summary, "iterations"));
  EXPECT_NE(JsonField(summary, "message").find("iteration " + std::to_string(diverged_at)),
            std::string::npos);
  const io::Checkpoint c = io::ReadCheckpoint(dir.File("ck.h5"));
  EXPECT_EQ(c.state.iteration, (diverged_at - 1) / 10 * 10);
  EXPECT_GE(c.state.iteration, 10);
  EXPECT_TRUE(c.state.x.allFinite());
  for (const auto& [name, v] : c.state.algorithm) EXPECT_TRUE(v.allFinite()) << name;
}

}  // namespace
}  // namespace bilevel
