#include "bilevel/options.h"

#include <cmath>
#include <sstream>

#include "bilevel/algorithm.h"
#include "bilevel/outer_optimizer.h"

namespace bilevel {

namespace {

std::string Join(const std::vector<std::string>& names) {
  std::string out;
  for (size_t i = 0; i < names.size(); ++i) out += (i ? ", " : "") + names[i];
  return out;
}

bool OneOf(const std::string& value, const std::vector<std::string>& allowed) {
  for (const auto& a : allowed)
    if (a == value) return true;
  return false;
}

template <class T>
std::string Str(T value) {
  std::ostringstream s;
  s << value;
  return s.str();
}

}  // namespace

bool SolverOptions::IsValid(std::string* error) const {
  auto fail = [&](const std::string& flag, const std::string& value, const std::string& rule) {
    *error = "option --" + flag + ": " + value + " " + rule;
    return false;
  };
  if (!OneOf(algorithm, AlgorithmNames()))
    return fail("algorithm", "'" + algorithm + "'", "is not one of: " + Join(AlgorithmNames()));
  if (!OneOf(outer_optimizer, OuterOptimizerNames()))
    return fail("outer-optimizer", "'" + outer_optimizer + "'",
                "is not one of: " + Join(OuterOptimizerNames()));
  if (outer_iters < 1) return fail("outer-iters", Str(outer_iters), "must be >= 1");
  if (inner_steps < 1) return fail("inner-steps", Str(inner_steps), "must be >= 1");
  if (hessian_steps < 0) return fail("hessian-steps", Str(hessian_steps), "must be >= 0");
  auto positive = [&](const char* flag, double v) {
    return std::isfinite(v) && v > 0 ? true : fail(flag, Str(v), "must be a finite number > 0");
  };
  if (!positive("inner-lr", inner_lr) || !positive("outer-lr", outer_lr) ||
      (!eta_auto && !positive("eta", eta)))
    return false;
  if (!(std::isfinite(momentum) && momentum >= 0 && momentum < 1))
    return fail("momentum", Str(momentum), "must be in [0, 1)");
  if (batch_size < 1) return fail("batch-size", Str(batch_size), "must be >= 1");
  if (outer_batch_size < 0)
    return fail("outer-batch-size", Str(outer_batch_size), "must be >= 1 (or 0: --batch-size)");
  if (hessian_batch_size < 0)
    return fail("hessian-batch-size", Str(hessian_batch_size),
                "must be >= 1 (or 0: --batch-size)");
  if (eval_every < 1) return fail("eval-every", Str(eval_every), "must be >= 1");
  if (checkpoint_every < 0)
    return fail("checkpoint-every", Str(checkpoint_every), "must be >= 0 (0: only at the end)");
  if (!(std::isfinite(max_time) && max_time >= 0))
    return fail("max-time", Str(max_time), "must be >= 0 seconds (0: no limit)");
  return true;
}

}  // namespace bilevel
