// The progress on stderr of the real program: plain lines, one per evaluation, when stderr is a
// file or a pipe; one status line redrawn with \r on a pseudo-terminal (util-linux `script`),
// directly and under mpirun; the header and the closing summary; --quiet; BILEVEL_PROGRESS.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "process_util.h"

namespace bilevel {
namespace {

using testing::Outcome;
using testing::Quote;
using testing::RunIn;
using testing::ScratchDir;
using testing::SplitLines;

const std::string kExe = BILEVEL_EXE;

std::string Mpirun(int ranks, const std::string& args) {
  return std::string(BILEVEL_MPIEXEC) + " -np " + std::to_string(ranks) + " " + kExe +
         " solve " + args;
}

// `command` on a pseudo-terminal: script(1) runs it with stdin, stdout and stderr on a new
// pty, and copies what the terminal shows to its own stdout.
std::string OnTerminal(const std::string& command) {
  return "script -qfec " + Quote(command) + " /dev/null";
}

int Count(const std::string& text, const std::string& what) {
  int n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

std::vector<std::string> StartingWith(const std::vector<std::string>& lines,
                                      const std::string& prefix) {
  std::vector<std::string> out;
  for (const std::string& line : lines)
    if (line.rfind(prefix, 0) == 0) out.push_back(line);
  return out;
}

TEST(Progress, PipedIsOnePlainLinePerEvaluation) {
  ScratchDir dir;
  Outcome o = RunIn(dir, Mpirun(2, "--outer-iters 40 --eval-every 10 --metrics m.jsonl"));
  ASSERT_EQ(o.exit_code, 0) << o.Describe();
  EXPECT_EQ(o.err.find('\r'), std::string::npos) << o.err;
  EXPECT_EQ(o.err.find('\033'), std::string::npos) << o.err;
  const auto lines = SplitLines(o.err);
  // The header: the problem with its shapes, then the algorithm, ranks and options.
  ASSERT_GE(lines.size(), 2u) << o.err;
  EXPECT_EQ(lines[0].rfind("bilevel solve: problem quadratic: dim_outer=20 dim_inner=50 "
                           "samples_inner=2000 samples_outer=2000",
                           0),
            0u)
      << lines[0];
  EXPECT_EQ(lines[1].rfind("bilevel solve: algorithm aid-cg on 2 ranks: outer_iters=40 ", 0), 0u)
      << lines[1];
  EXPECT_NE(lines[1].find("inner_steps=10"), std::string::npos) << lines[1];
  // One line per evaluation, as many as the metrics file has.
  const auto progress = StartingWith(lines, "iter ");
  ASSERT_EQ(progress.size(), 4u) << o.err;
  EXPECT_EQ(SplitLines(testing::ReadText(dir.File("m.jsonl"))).size(), 4u);
  for (int k = 0; k < 4; ++k) {
    const std::string& line = progress[k];
    EXPECT_EQ(line.rfind("iter " + std::to_string(10 * (k + 1)) + "/40 (" +
                             std::to_string(25 * (k + 1)) + "%)  elapsed ",
                         0),
              0u)
        << line;
    for (const char* part : {"  eta ", "  outer_loss ", "  hypergrad_norm ", "  phi_gap "})
      EXPECT_NE(line.find(part), std::string::npos) << part << " in " << line;
  }
  EXPECT_NE(progress.back().find("eta 0.00s"), std::string::npos) << progress.back();
  // The summary: termination and times, then oracle counts and communication.
  const auto closing = StartingWith(lines, "bilevel solve: max_iters (completed 40 outer iterations); wall ");
  EXPECT_EQ(closing.size(), 1u) << o.err;
  const auto counts = StartingWith(lines, "bilevel solve: oracle samples grad_f ");
  ASSERT_EQ(counts.size(), 1u) << o.err;
  for (const char* part : {"grad_g ", "hvp ", "jvp ", "; communication ", " collectives, ", "allreduce "})
    EXPECT_NE(counts[0].find(part), std::string::npos) << part << " in " << counts[0];
  EXPECT_EQ(lines.back(), counts[0]);
  // stdout: the JSON summary keeps its fields.
  const std::string summary = testing::LastLine(o.out);
  for (const char* key : {"termination", "message", "problem", "algorithm", "iterations", "ranks",
                          "wall_s", "grad_f", "comm_bytes"})
    EXPECT_NE(testing::JsonField(summary, key), "") << key << " in " << summary;
}

TEST(Progress, ProblemMetricsAndTestAccuracyAppear) {
  // stocBiO's line carries the problem's metrics after the engine's.
  ScratchDir dir;
  Outcome o = RunIn(dir, kExe + " solve --algorithm stocbio --outer-iters 20 --eval-every 20");
  ASSERT_EQ(o.exit_code, 0) << o.Describe();
  const auto progress = StartingWith(SplitLines(o.err), "iter 20/20 ");
  ASSERT_EQ(progress.size(), 1u) << o.err;
  EXPECT_NE(progress[0].find("true_hypergrad_norm "), std::string::npos) << progress[0];
  EXPECT_EQ(progress[0].find("test_acc"), std::string::npos) << progress[0];
}

TEST(Progress, QuietPrintsNothing) {
  ScratchDir dir;
  Outcome o = RunIn(dir, Mpirun(2, "--quiet --outer-iters 20 --metrics m.jsonl"));
  ASSERT_EQ(o.exit_code, 0) << o.Describe();
  EXPECT_EQ(o.err, "");
  EXPECT_EQ(SplitLines(testing::ReadText(dir.File("m.jsonl"))).size(), 2u);
  // Quiet wins over BILEVEL_PROGRESS.
  o = RunIn(dir, "env BILEVEL_PROGRESS=live " + kExe + " solve -q --outer-iters 20");
  EXPECT_EQ(o.err, "");
}

// The pty output of one run: what came before the first status line, the status part, what
// came after it.
struct TerminalOutput {
  std::string header, status, after;
};

TerminalOutput SplitTerminal(const std::string& text) {
  TerminalOutput t;
  const auto first = text.find("\riter ");
  if (first == std::string::npos) return {text, "", ""};
  t.header = text.substr(0, first);
  const auto end = text.find('\n', first);
  t.status = text.substr(first, end == std::string::npos ? std::string::npos : end - first);
  if (end != std::string::npos) t.after = text.substr(end + 1);
  return t;
}

void ExpectLiveStatus(const std::string& pty, int total) {
  const TerminalOutput t = SplitTerminal(pty);
  ASSERT_FALSE(t.status.empty()) << "no status line in:\n" << pty;
  // The header lines came first, whole.
  EXPECT_NE(t.header.find("bilevel solve: problem quadratic:"), std::string::npos) << t.header;
  EXPECT_NE(t.header.find("bilevel solve: algorithm aid-cg on "), std::string::npos) << t.header;
  // The status part is one line: each report starts with \r and clears the rest of the line;
  // the terminal ends it with "\r\n" once, after the last report.
  const std::string final_report = "\riter " + std::to_string(total) + "/" +
                                   std::to_string(total) + " (100%)  elapsed ";
  EXPECT_NE(t.status.find(final_report), std::string::npos) << t.status;
  EXPECT_GE(Count(t.status, "\riter "), 2) << t.status;
  EXPECT_EQ(Count(t.status, "\riter "), Count(t.status, "\033[K")) << t.status;
  EXPECT_EQ(t.status.back(), '\r');  // the pty's \r\n after the last report
  EXPECT_EQ(t.status.find("hypergrad_norm"), std::string::npos) << "live line is the short one";
  for (const char* part : {"  eta ", "  outer_loss "})
    EXPECT_NE(t.status.find(part), std::string::npos) << part;
  // Then the summary, on lines of its own.
  EXPECT_EQ(t.after.rfind("bilevel solve: max_iters", 0), 0u) << t.after;
  EXPECT_NE(t.after.find("bilevel solve: oracle samples"), std::string::npos) << t.after;
  EXPECT_EQ(t.after.find("\riter"), std::string::npos) << t.after;
}

TEST(Progress, OnATerminalTheStatusLineIsRedrawn) {
  ScratchDir dir;
  // Enough iterations for several redraws (at most 10 a second).
  Outcome o = RunIn(dir, OnTerminal(kExe + " solve --outer-iters 1500 --eval-every 10 "
                                           "--metrics m.jsonl"));
  ASSERT_EQ(o.exit_code, 0) << o.Describe();
  ExpectLiveStatus(o.out, 1500);
  // The metrics file does not depend on the terminal.
  EXPECT_EQ(SplitLines(testing::ReadText(dir.File("m.jsonl"))).size(), 150u);
}

TEST(Progress, UnderMpirunOnATerminalTheStatusLineIsRedrawn) {
  // Rank 0's stderr is a pipe to mpirun; mpirun's own stderr is the terminal. (stdout goes to
  // a file: mpirun forwards the two streams separately, in no fixed order between them.)
  ScratchDir dir;
  Outcome o = RunIn(dir, OnTerminal(Mpirun(2, "--outer-iters 1000 --eval-every 10") +
                                    " >summary.json"));
  ASSERT_EQ(o.exit_code, 0) << o.Describe();
  ExpectLiveStatus(o.out, 1000);
  EXPECT_NE(o.out.find("aid-cg on 2 ranks"), std::string::npos);
  EXPECT_EQ(testing::JsonField(testing::ReadText(dir.File("summary.json")), "termination"),
            "max_iters");
}

TEST(Progress, MpirunWithStderrToAFileIsPlainEvenFromATerminal) {
  ScratchDir dir;
  Outcome o = RunIn(dir, OnTerminal(Mpirun(2, "--outer-iters 30 --eval-every 10") + " 2>log.txt"));
  ASSERT_EQ(o.exit_code, 0) << o.Describe();
  const std::string log = testing::ReadText(dir.File("log.txt"));
  EXPECT_EQ(log.find('\r'), std::string::npos) << log;
  EXPECT_EQ(StartingWith(SplitLines(log), "iter ").size(), 3u) << log;
}

TEST(Progress, TheStatusLineFitsTheTerminalWidth) {
  ScratchDir dir;
  // script's pty has no size when its stdin is not a terminal: COLUMNS is the width then.
  Outcome o = RunIn(dir, OnTerminal("env COLUMNS=40 " + kExe + " solve --outer-iters 300 "
                                    "--eval-every 100"));
  ASSERT_EQ(o.exit_code, 0) << o.Describe();
  const TerminalOutput t = SplitTerminal(o.out);
  ASSERT_FALSE(t.status.empty()) << o.out;
  size_t start = 0;
  int reports = 0;
  while ((start = t.status.find("\riter ", start)) != std::string::npos) {
    const size_t end = t.status.find("\033[K", start);
    ASSERT_NE(end, std::string::npos);
    EXPECT_LE(end - start - 1, 39u) << t.status.substr(start, end - start);
    start = end;
    ++reports;
  }
  EXPECT_GE(reports, 1);
}

TEST(Progress, EnvironmentOverridesTheChoice) {
  ScratchDir dir;
  // Plain on a terminal.
  Outcome o = RunIn(dir, OnTerminal("env BILEVEL_PROGRESS=plain " + kExe +
                                    " solve --outer-iters 30 --eval-every 10"));
  ASSERT_EQ(o.exit_code, 0) << o.Describe();
  EXPECT_EQ(o.out.find("\riter"), std::string::npos) << o.out;
  EXPECT_EQ(Count(o.out, "\niter "), 3) << o.out;
  // Live into a pipe.
  o = RunIn(dir, "env BILEVEL_PROGRESS=live " + kExe + " solve --outer-iters 30 --eval-every 10");
  ASSERT_EQ(o.exit_code, 0) << o.Describe();
  EXPECT_NE(o.err.find("\riter 30/30 (100%)"), std::string::npos) << o.err;
  // Off.
  o = RunIn(dir, "env BILEVEL_PROGRESS=off " + kExe + " solve --outer-iters 30");
  ASSERT_EQ(o.exit_code, 0) << o.Describe();
  EXPECT_EQ(o.err.find("iter "), std::string::npos) << o.err;
  EXPECT_NE(o.err.find("bilevel solve: algorithm aid-cg"), std::string::npos) << o.err;
  EXPECT_NE(o.err.find("bilevel solve: max_iters"), std::string::npos) << o.err;
}

}  // namespace
}  // namespace bilevel
