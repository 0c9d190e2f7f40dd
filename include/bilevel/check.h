// Checks a problem's oracles against finite differences, in one call: the test to run on a new
// problem class before solving with it.
//
//   bilevel::OracleCheckReport report = bilevel::CheckOracles(problem, x, y);
//   std::cout << report.ToString();
//   if (!report.passed) return 1;
//
// On a batch of this rank's samples of each split (a range and a random sorted list), each
// oracle is compared with central differences of another one (MATH.md section 1):
//
//   oracle       reference
//   ValueF/G     the sum of its values on the single samples of the batch; 0 on an empty batch
//   GradXF       differences of ValueF in x      GradYF   differences of ValueF in y
//   GradYG       differences of ValueG in y      GradXG   differences of ValueG in x
//   HessianVec   differences of GradYG along v:  (grad_y G(y + h v) - grad_y G(y - h v)) / 2h
//   JacobianVec  differences of <GradYG, v> in x, coordinate by coordinate
//
// with a random direction v. Every vector oracle must also give 0 on an empty batch and
// overwrite `out` (it is filled with NaN before each call, so an oracle that adds to it or
// leaves entries unwritten shows NaN). The error of an oracle is the relative one,
// |a - b| / max(|a|, |b|) (0 when both are 0), the worst over the batches.
//
// Purely local: it calls the oracles of this rank's instance and never communicates. Under MPI,
// call it on every rank (each checks its own shard) and combine the verdicts, or on one rank.
// Choose x and y where the derivatives are not tiny (not at a solution), so that the relative
// errors measure the oracles and not rounding.
#ifndef BILEVEL_CHECK_H_
#define BILEVEL_CHECK_H_

#include <cstdint>
#include <string>
#include <vector>

#include "bilevel/problem.h"
#include "bilevel/types.h"

namespace bilevel {

struct CheckOptions {
  Index batch_size = 8;        // local samples per batch (fewer if the shard is smaller)
  double step = 1e-5;          // difference step, scaled by max(1, |entry|)
  double tolerance = 1e-5;     // the largest relative error that passes
  Index max_coordinates = 64;  // differentiate at most this many random coordinates of x, y
  std::uint64_t seed = 1;      // the direction v, the batches and the coordinates
};

// The verdict on one oracle.
struct OracleCheck {
  std::string oracle;     // "GradXF", ...
  std::string reference;  // what it was compared with
  double error = 0;       // the worst relative error (NaN: a non-finite result)
  bool passed = true;     // error <= tolerance and no other fault
  std::string note;       // a fault besides the error ("not 0 on an empty batch"), or why
                          // the check was skipped
};

struct OracleCheckReport {
  std::string problem;  // Problem::Name()
  Index dim_outer = 0, dim_inner = 0;
  Index batch_inner = 0, batch_outer = 0;  // samples per batch (0: this rank has none)
  double tolerance = 0;
  std::vector<OracleCheck> checks;  // ValueF, ValueG, GradXF, GradYF, GradYG, GradXG,
                                    // HessianVec, JacobianVec
  bool passed = true;               // every check passed

  // The names of the oracles that failed.
  std::vector<std::string> Failed() const;
  // A few lines: a header, one line per oracle (name, error, pass/FAIL, reference, note), and
  // the verdict naming the oracles that failed.
  std::string ToString() const;
};

// Runs the checks at (x, y); x has DimOuter() entries and y DimInner() (else
// std::invalid_argument). A split of which this rank holds no samples is skipped: its oracles
// pass with the note "skipped: no local samples".
OracleCheckReport CheckOracles(Problem& problem, const Vec& x, const Vec& y,
                               const CheckOptions& options = CheckOptions());

}  // namespace bilevel

#endif  // BILEVEL_CHECK_H_
