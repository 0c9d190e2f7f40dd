// Everything needed to continue a run bit for bit: what a checkpoint holds besides the options
// and the identity of the problem.
#ifndef BILEVEL_RUN_STATE_H_
#define BILEVEL_RUN_STATE_H_

#include <string>
#include <utility>
#include <vector>

#include "bilevel/communicator.h"
#include "bilevel/oracles.h"
#include "bilevel/types.h"

namespace bilevel {

using NamedVectors = std::vector<std::pair<std::string, Vec>>;

struct RunState {
  int iteration = 0;        // outer iterations completed
  Vec x;                    // x after `iteration` updates
  NamedVectors algorithm;   // the algorithm's state: y, warm starts, memories
  NamedVectors optimizer;   // the outer optimizer's state (momentum, moments, step count)
  std::string sampler;      // the minibatch generator's state
  OracleCounts oracles;     // oracle work so far
  CommStats comm;           // the algorithm's communication so far (evaluations excluded)
  double solve_s = 0;       // solver time so far (evaluations excluded)
};

}  // namespace bilevel

#endif  // BILEVEL_RUN_STATE_H_
