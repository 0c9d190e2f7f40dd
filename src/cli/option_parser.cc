#include "cli/option_parser.h"

#include <algorithm>
#include <boost/program_options.hpp>
#include <cerrno>
#include <climits>
#include <cmath>
#include <cstdlib>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <regex>
#include <sstream>

#include "bilevel/algorithm.h"
#include "bilevel/outer_optimizer.h"

namespace po = boost::program_options;

namespace bilevel::cli {

namespace {

std::string Join(const std::vector<std::string>& names) {
  std::string out;
  for (size_t i = 0; i < names.size(); ++i) out += (i ? ", " : "") + names[i];
  return out;
}

// Raw option values: learning rates and the batch size may be "auto".
struct RawValues {
  std::string inner_lr, outer_lr, eta, batch_size, outer_batch_size, inner_steps;
  long long seed = 0, data_seed = 1;
  bool dense_steps = false;
};

po::options_description Describe(SolveConfig* c, RawValues* raw) {
  SolverOptions& s = c->solver;
  QuadraticOptions& q = c->quadratic;
  po::options_description general("General");
  general.add_options()
      ("help,h", po::bool_switch(&c->help), "print this help and exit")
      ("config", po::value(&c->config_path)->value_name("FILE"),
       "read options from an INI file (key = value, keys as the long option names); "
       "the command line wins")
      ("problem", po::value(&c->problem)->default_value(c->problem)->value_name("NAME"),
       ("problem to solve: " + Join(ProblemNames())).c_str())
      ("data", po::value(&c->data_path)->value_name("FILE.h5"),
       "dataset file of hyperclean and l2reg (made by 'bilevel convert')")
      ("metrics", po::value(&c->metrics_path)->value_name("FILE"),
       "write one JSON object per evaluation to FILE")
      ("output", po::value(&c->output_path)->value_name("FILE.h5"),
       "write the final x and y to an HDF5 file")
      ("quiet,q", po::bool_switch(&c->quiet), "no progress on stderr");
  po::options_description ckpt("Checkpoints");
  ckpt.add_options()
      ("checkpoint", po::value(&c->checkpoint_path)->value_name("FILE.h5"),
       "write checkpoints to FILE.h5 (atomically): every --checkpoint-every iterations, at the "
       "end, at --max-time and on SIGTERM or SIGUSR1")
      ("checkpoint-every",
       po::value(&s.checkpoint_every)->default_value(s.checkpoint_every)->value_name("K"),
       "checkpoint every K outer iterations (0: only when the run stops)")
      ("checkpoint-keep",
       po::value(&c->checkpoint_keep)->default_value(c->checkpoint_keep)->value_name("N"),
       "keep the last N checkpoints (older ones as FILE.h5.<iteration>)")
      ("resume", po::value(&c->resume_path)->value_name("FILE.h5"),
       "continue the run saved in FILE.h5 up to --outer-iters (checkpoints go on to FILE.h5 "
       "unless --checkpoint says otherwise)");
  po::options_description algo("Algorithm");
  algo.add_options()
      ("algorithm", po::value(&s.algorithm)->default_value(s.algorithm)->value_name("NAME"),
       ("hypergradient estimator: " + Join(AlgorithmNames())).c_str())
      ("outer-iters", po::value(&s.outer_iters)->default_value(s.outer_iters)->value_name("K"),
       "outer iterations (with --max-time and no --outer-iters: no limit but the time)")
      ("inner-steps", po::value(&raw->inner_steps)->default_value("auto")->value_name("T"),
       "inner (S)GD steps per outer iteration, warm-started (auto: the problem's "
       "recommendation, 10 unless it says otherwise)")
      ("hessian-steps",
       po::value(&s.hessian_steps)->default_value(s.hessian_steps)->value_name("N"),
       "CG or fixed-point steps (aid-*), Neumann terms Q (stocbio)")
      ("inner-lr", po::value(&raw->inner_lr)->default_value("auto")->value_name("ALPHA"),
       "inner step size (auto: the problem's recommendation: 1/L for the quadratic, 0.1 "
       "for hyperclean, for l2reg c / lambda_max(H) at the start, estimated on the data, c = "
       "3.5 for aid-cg and 1.75 otherwise)")
      ("outer-lr", po::value(&raw->outer_lr)->default_value("auto")->value_name("BETA"),
       "outer step size (auto: the problem's recommendation)")
      ("eta", po::value(&raw->eta)->default_value("auto")->value_name("ETA"),
       "Neumann / fixed-point scale (aid-neumann, stocbio, bsa, ttsa), needs "
       "eta lambda_max(H) < 1, checked before the run (auto: 0.9 / lambda_max(H), estimated "
       "by power iteration before the run and every 100 iterations)")
      ("batch-size", po::value(&raw->batch_size)->default_value("auto")->value_name("B"),
       "stocbio: minibatch of each inner step (auto: the problem's recommendation)")
      ("outer-batch-size",
       po::value(&raw->outer_batch_size)->default_value("auto")->value_name("B"),
       "stocbio: minibatch for grad F (0: --batch-size; auto: the problem's recommendation, "
       "the whole validation split for hyperclean, --batch-size otherwise)")
      ("hessian-batch-size",
       po::value(&s.hessian_batch_size)->default_value(s.hessian_batch_size)->value_name("B"),
       "stocbio: minibatch of each Hessian factor and of J v (0: --batch-size)")
      ("outer-optimizer",
       po::value(&s.outer_optimizer)->default_value("auto")->value_name("NAME"),
       ("outer update: " + Join(OuterOptimizerNames()) +
        " (auto: the problem's recommendation; sgd for every shipped problem)").c_str())
      ("momentum", po::value(&s.momentum)->default_value(s.momentum, "0.9")->value_name("MU"),
       "momentum of --outer-optimizer momentum")
      ("dense-steps", po::bool_switch(&raw->dense_steps),
       "minibatch steps over all of y, also on sparse data (l2reg), where by default a step "
       "updates only the rows of W its batch touches: for comparison, the iterates differ "
       "by rounding only")
      ("seed", po::value(&raw->seed)->default_value(raw->seed), "seed of the minibatch sampler")
      ("eval-every", po::value(&s.eval_every)->default_value(s.eval_every)->value_name("K"),
       "evaluate and report every K outer iterations (and at the last)")
      ("max-time", po::value(&s.max_time)->default_value(s.max_time)->value_name("SECONDS"),
       "stop after this much solver time (0: no limit)");
  po::options_description quad("Quadratic problem (--problem quadratic)");
  quad.add_options()
      ("dim-outer", po::value(&q.dim_outer)->default_value(q.dim_outer)->value_name("P"),
       "dimension of x")
      ("dim-inner", po::value(&q.dim_inner)->default_value(q.dim_inner)->value_name("Q"),
       "dimension of y")
      ("samples", po::value(&q.samples)->default_value(q.samples)->value_name("M"),
       "samples of f and of g")
      ("kappa", po::value(&q.kappa)->default_value(q.kappa), "condition number of the inner Hessian")
      ("noise", po::value(&q.noise)->default_value(q.noise, "0.1"), "noise of the targets")
      ("rho", po::value(&q.rho)->default_value(q.rho, "0.01"), "outer regularization weight")
      ("data-seed", po::value(&raw->data_seed)->default_value(raw->data_seed),
       "seed of the generated data");
  po::options_description all;
  all.add(general).add(algo).add(ckpt).add(quad);
  return all;
}

int Distance(const std::string& a, const std::string& b) {
  std::vector<int> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = static_cast<int>(j);
  for (size_t i = 1; i <= a.size(); ++i) {
    int diag = row[0];
    row[0] = static_cast<int>(i);
    for (size_t j = 1; j <= b.size(); ++j) {
      const int up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

std::string UnknownOption(const std::string& name, const po::options_description& desc) {
  std::string bare = name;
  while (!bare.empty() && bare[0] == '-') bare.erase(0, 1);
  std::string best;
  int best_distance = 4;
  for (const auto& option : desc.options()) {
    const int d = Distance(bare, option->long_name());
    if (d < best_distance) best_distance = d, best = option->long_name();
  }
  std::string msg = "unknown option '" + name + "'";
  if (!best.empty()) msg += " (did you mean --" + best + "?)";
  return msg + "; 'bilevel solve --help' lists the allowed options";
}

// "auto" or a finite number > 0.
bool ParseRate(const std::string& flag, const std::string& text, double* value) {
  if (text == "auto") return true;
  char* end = nullptr;
  errno = 0;
  const double v = std::strtod(text.c_str(), &end);
  if (text.empty() || *end != '\0' || errno != 0 || !std::isfinite(v) || v <= 0)
    throw UsageError("option --" + flag + ": '" + text +
                     "' must be a finite number > 0 or 'auto'");
  *value = v;
  return false;
}

// "auto" (returns true), or an integer from `min` to `max`, stored in *value (returns false).
bool ParseCount(const std::string& flag, const std::string& text, long long max,
                long long* value, long long min = 1) {
  if (text == "auto") return true;
  char* end = nullptr;
  errno = 0;
  const long long v = std::strtoll(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || errno == ERANGE || v < min || v > max)
    throw UsageError("option --" + flag + ": '" + text + "' must be an integer >= " +
                     std::to_string(min) + " or 'auto'");
  *value = v;
  return false;
}

void CheckChoice(const std::string& flag, const std::string& value,
                 const std::vector<std::string>& allowed) {
  if (std::find(allowed.begin(), allowed.end(), value) == allowed.end())
    throw UsageError("option --" + flag + ": '" + value + "' is not one of: " + Join(allowed));
}

}  // namespace

const std::vector<std::string>& ProblemNames() {
  static const std::vector<std::string> names = {"quadratic", "hyperclean", "l2reg"};
  return names;
}

namespace {

// The message of a Boost.Program_options error about `input` (the arguments or the config text).
// Boost (1.74) fills its messages by replacing placeholders such as %value% with the offending
// text until none is left, so text that contains the placeholder itself never stops being
// replaced: `--seed %value%` would hang. Such input gets a message without that text.
std::string ErrorText(const po::error& e, const std::string& input) {
  const auto* named = dynamic_cast<const po::error_with_option_name*>(&e);
  static const std::regex placeholder("%[A-Za-z_]+%");
  if (!named || !std::regex_search(input, placeholder)) return e.what();
  if (dynamic_cast<const po::invalid_syntax*>(&e))
    return "a line is not 'key = value' (or holds a '%name%' placeholder)";
  return "the argument for option '" + named->get_option_name() +
         "' is invalid (it holds a '%name%' placeholder)";
}

// Reads INI text into `vm`: the one path of --config FILE and of ParseSolveConfigText.
void StoreConfig(const std::string& text, const std::string& name,
                 const po::options_description& desc, po::variables_map* vm) {
  std::istringstream in(text);
  try {
    po::store(po::parse_config_file(in, desc, /*allow_unregistered=*/false), *vm);
  } catch (const po::unknown_option& e) {
    throw UsageError("config file '" + name + "': " + UnknownOption(e.get_option_name(), desc));
  } catch (const po::error& e) {
    throw UsageError("config file '" + name + "': " + ErrorText(e, text));
  }
}

// ParseSolveArgs, with the config file's text given (config_text) instead of read from the
// file --config names.
SolveConfig Parse(const std::vector<std::string>& args, const std::string* config_text,
                  const std::string& config_name) {
  SolveConfig c;
  RawValues raw;
  const po::options_description desc = Describe(&c, &raw);
  po::variables_map vm;
  std::string input;  // everything the user wrote, for ErrorText
  for (const std::string& arg : args) input += arg + " ";
  try {
    po::store(po::command_line_parser(args).options(desc).run(), vm);
  } catch (const po::unknown_option& e) {
    throw UsageError(UnknownOption(e.get_option_name(), desc));
  } catch (const po::too_many_positional_options_error&) {
    throw UsageError("unexpected argument; options are written --name value "
                     "('bilevel solve --help' lists them)");
  } catch (const po::invalid_option_value& e) {
    throw UsageError(ErrorText(e, input) + " (see 'bilevel solve --help' for " +
                     e.get_option_name() + ")");
  } catch (const po::error& e) {
    throw UsageError(ErrorText(e, input));
  }
  if (config_text) {
    input += *config_text;
    StoreConfig(*config_text, config_name, desc, &vm);
  } else if (vm.count("config")) {
    const std::string path = vm["config"].as<std::string>();
    std::ifstream in(path, std::ios::binary);
    if (!in) throw UsageError("option --config: cannot read '" + path + "': " + std::strerror(errno));
    // A directory opens, then reads as if empty.
    if (std::error_code ec; std::filesystem::is_directory(path, ec))
      throw UsageError("option --config: cannot read '" + path + "': " + std::strerror(EISDIR));
    std::ostringstream text;
    text << in.rdbuf();
    if (in.bad()) throw UsageError("option --config: cannot read '" + path + "'");
    input += text.str();
    StoreConfig(text.str(), path, desc, &vm);
  }
  try {
    po::notify(vm);
  } catch (const po::error& e) {
    throw UsageError(ErrorText(e, input));
  }
  if (c.help) return c;
  if (vm["outer-iters"].defaulted() && c.solver.max_time > 0)
    c.solver.outer_iters = std::numeric_limits<int>::max();

  CheckChoice("problem", c.problem, ProblemNames());
  c.auto_inner_lr = ParseRate("inner-lr", raw.inner_lr, &c.solver.inner_lr);
  c.auto_outer_lr = ParseRate("outer-lr", raw.outer_lr, &c.solver.outer_lr);
  c.auto_eta = ParseRate("eta", raw.eta, &c.solver.eta);
  long long count = 0;
  c.auto_batch_size = ParseCount("batch-size", raw.batch_size, LLONG_MAX, &count);
  if (!c.auto_batch_size) c.solver.batch_size = count;
  c.auto_outer_batch_size =
      ParseCount("outer-batch-size", raw.outer_batch_size, LLONG_MAX, &count, 0);
  if (!c.auto_outer_batch_size) c.solver.outer_batch_size = count;
  c.auto_inner_steps = ParseCount("inner-steps", raw.inner_steps, INT_MAX, &count);
  if (!c.auto_inner_steps) c.solver.inner_steps = static_cast<int>(count);
  c.auto_outer_optimizer = c.solver.outer_optimizer == "auto";
  if (c.auto_outer_optimizer) c.solver.outer_optimizer = "sgd";  // until the problem is known
  if (raw.seed < 0) throw UsageError("option --seed: " + std::to_string(raw.seed) + " must be >= 0");
  if (raw.data_seed < 0)
    throw UsageError("option --data-seed: " + std::to_string(raw.data_seed) + " must be >= 0");
  c.solver.seed = static_cast<std::uint64_t>(raw.seed);
  c.solver.block_sparse = !raw.dense_steps;
  c.quadratic.seed = static_cast<std::uint64_t>(raw.data_seed);

  if (c.checkpoint_keep < 1)
    throw UsageError("option --checkpoint-keep: " + std::to_string(c.checkpoint_keep) +
                     " must be >= 1");
  if (c.checkpoint_path.empty()) c.checkpoint_path = c.resume_path;

  // Everything that does not depend on the problem is checked now, before any data is built.
  std::string error;
  if (!c.solver.IsValid(&error)) throw UsageError(error);
  if (c.problem == "quadratic" && !c.quadratic.IsValid(&error)) throw UsageError(error);
  if (c.problem != "quadratic" && c.data_path.empty())
    throw UsageError("option --data: --problem " + c.problem +
                     " needs a dataset file (make one with 'bilevel convert')");
  return c;
}

}  // namespace

SolveConfig ParseSolveArgs(const std::vector<std::string>& args) {
  return Parse(args, nullptr, "");
}

SolveConfig ParseSolveConfigText(const std::string& text, const std::string& name) {
  return Parse({}, &text, name);
}

void ResolveDefaults(const ProblemDefaults& defaults, SolveConfig* c) {
  if (c->auto_inner_lr) c->solver.inner_lr = defaults.inner_lr;
  if (c->auto_outer_lr) c->solver.outer_lr = defaults.outer_lr;
  c->solver.eta_auto = c->auto_eta;
  if (c->auto_outer_optimizer) c->solver.outer_optimizer = defaults.outer_optimizer;
  if (c->auto_batch_size) c->solver.batch_size = defaults.batch_size;
  if (c->auto_outer_batch_size) c->solver.outer_batch_size = defaults.outer_batch_size;
  if (c->auto_inner_steps) c->solver.inner_steps = defaults.inner_steps;
  std::string error;
  if (!c->solver.IsValid(&error)) throw UsageError(error);
}

std::vector<std::pair<std::string, std::string>> ResolvedOptions(const SolveConfig& c) {
  auto exact = [](double v) {
    char buf[32];
    std::snprintf(buf, sizeof(buf), "%.17g", v);
    return std::string(buf);
  };
  const SolverOptions& s = c.solver;
  return {{"problem", c.problem},
          {"algorithm", s.algorithm},
          {"outer-iters", std::to_string(s.outer_iters)},
          {"inner-steps", std::to_string(s.inner_steps)},
          {"hessian-steps", std::to_string(s.hessian_steps)},
          {"inner-lr", exact(s.inner_lr)},
          {"outer-lr", exact(s.outer_lr)},
          {"eta", s.eta_auto ? std::string("auto") : exact(s.eta)},
          {"batch-size", std::to_string(s.batch_size)},
          {"outer-batch-size", std::to_string(s.outer_batch_size)},
          {"hessian-batch-size", std::to_string(s.hessian_batch_size)},
          {"outer-optimizer", s.outer_optimizer},
          {"momentum", exact(s.momentum)},
          {"seed", std::to_string(s.seed)},
          {"eval-every", std::to_string(s.eval_every)},
          {"max-time", exact(s.max_time)},
          {"checkpoint-every", std::to_string(s.checkpoint_every)}};
}

bool MayChangeOnResume(const std::string& flag) {
  return flag == "outer-iters" || flag == "max-time" || flag == "eval-every" ||
         flag == "checkpoint-every";
}

std::string SolveHelp() {
  SolveConfig c;
  RawValues raw;
  std::ostringstream out;
  out << "Usage: mpirun -np RANKS bilevel solve [options]\n\n"
         "Solves min_x f(x, y*(x)), y*(x) = argmin_y g(x, y), with the samples of f and g\n"
         "sharded over the MPI ranks. Prints progress on stderr and, as the last line of\n"
         "stdout, a JSON summary.\n\n"
      << Describe(&c, &raw);
  return out.str();
}

}  // namespace bilevel::cli
