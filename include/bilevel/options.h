// The solver's options: one field per command-line flag of `bilevel solve`.
#ifndef BILEVEL_OPTIONS_H_
#define BILEVEL_OPTIONS_H_

#include <cstdint>
#include <string>

#include "bilevel/types.h"

namespace bilevel {

struct SolverOptions {
  std::string algorithm = "aid-cg";  // one of AlgorithmNames()
  int outer_iters = 100;             // K: outer iterations (hypergradient steps)
  int inner_steps = 10;              // T: inner (S)GD steps per outer iteration, warm-started
  int hessian_steps = 10;            // N (AID: CG or fixed-point steps) or Q (stocBiO: Neumann terms)
  double inner_lr = 0.1;             // alpha: inner step size
  std::string inner_lr_origin;       // how an automatic alpha was found, for the run's header
  double outer_lr = 0.1;             // beta: outer step size
  double eta = 0.1;                  // Neumann / fixed-point scale; needs eta lambda_max(H) < 1
  bool eta_auto = false;             // instead: eta = 0.9 / lambda_max(H), estimated by power
                                     // iteration before the run and every 100 iterations
  Index batch_size = 64;             // stochastic methods: minibatch of each inner step
  Index outer_batch_size = 0;        // stochastic methods: batch D_F for grad F; 0 = batch_size
  Index hessian_batch_size = 0;      // stochastic methods: batches B_j and D_G; 0 = batch_size
  std::uint64_t seed = 0;            // seed of the minibatch generator
  int eval_every = 10;               // evaluate (metrics, progress) every this many iterations
  double max_time = 0;               // stop after this many seconds of solver time in this
                                     // invocation (a resumed run counts afresh); 0 = no limit
  int checkpoint_every = 0;          // offer a checkpoint every this many iterations; 0 = only at the end
  std::string outer_optimizer = "sgd";  // one of OuterOptimizerNames()
  double momentum = 0.9;             // mu of the momentum outer optimizer
  Index slice_min = 4096;            // on more than one rank, y-space vectors of at least
                                     // this many doubles are updated in per-rank slices
                                     // (Algorithm::Sliced); not a command-line option: tests
                                     // compare both ways
  bool block_sparse = true;          // minibatch steps on the touched blocks only, for
                                     // problems that declare blocks (Problem::BlockSize);
                                     // false: --dense-steps (the same iterates but for
                                     // rounding, so not part of a run's identity)

  Index EffectiveOuterBatch() const { return outer_batch_size > 0 ? outer_batch_size : batch_size; }
  Index EffectiveHessianBatch() const {
    return hessian_batch_size > 0 ? hessian_batch_size : batch_size;
  }

  // True when every field is in range; otherwise false, with `error` naming the field (as its
  // command-line flag), the value and the constraint it violates.
  bool IsValid(std::string* error) const;
};

}  // namespace bilevel

#endif  // BILEVEL_OPTIONS_H_
