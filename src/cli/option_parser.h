// Command-line and config-file options of `bilevel solve`, with Boost.Program_options.
#ifndef BILEVEL_SRC_CLI_OPTION_PARSER_H_
#define BILEVEL_SRC_CLI_OPTION_PARSER_H_

#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "bilevel/options.h"
#include "bilevel/problem.h"
#include "bilevel/problems/quadratic.h"

namespace bilevel::cli {

// A mistake in the command line or config file; the program exits with code 2.
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Everything `bilevel solve` was asked to do. Values the user left at "auto" are filled from
// the problem's recommendations by ResolveDefaults.
struct SolveConfig {
  std::string problem = "quadratic";
  SolverOptions solver;
  bool auto_inner_lr = true, auto_outer_lr = true, auto_eta = true, auto_batch_size = true,
       auto_outer_batch_size = true, auto_outer_optimizer = true, auto_inner_steps = true;
  QuadraticOptions quadratic;
  std::string data_path;     // --data: the dataset file of hyperclean and l2reg
  std::string config_path;   // --config
  std::string metrics_path;  // --metrics
  std::string output_path;   // --output
  std::string checkpoint_path;  // --checkpoint (with --resume and no --checkpoint: the resumed file)
  int checkpoint_keep = 1;      // --checkpoint-keep
  std::string resume_path;      // --resume
  bool quiet = false;
  bool help = false;
};

const std::vector<std::string>& ProblemNames();

// Parses the arguments after `solve`. Command-line values win over the config file's.
// Throws UsageError with one line naming the option (and the file, for config errors).
SolveConfig ParseSolveArgs(const std::vector<std::string>& args);

// `bilevel solve --config FILE` alone, with FILE's contents given as `text` (the same parser and
// checks, no file read); errors name the file as `name`. For the config-file fuzzer and tests.
SolveConfig ParseSolveConfigText(const std::string& text,
                                 const std::string& name = "<config text>");

// Fills the "auto" values from `defaults`, then checks every option; throws UsageError.
void ResolveDefaults(const ProblemDefaults& defaults, SolveConfig* config);

// `bilevel solve --help`: every option with its default.
std::string SolveHelp();

// Every option that shapes the run's trajectory, resolved, by flag name (no dashes), as
// checkpoints record them. Doubles are written with 17 significant digits.
std::vector<std::pair<std::string, std::string>> ResolvedOptions(const SolveConfig& config);

// Options that may differ between a run and its resumption (they do not change the trajectory).
bool MayChangeOnResume(const std::string& flag);

}  // namespace bilevel::cli

#endif  // BILEVEL_SRC_CLI_OPTION_PARSER_H_
