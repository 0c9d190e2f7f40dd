// The least memory traffic of one oracle call of the softmax problems (hyperclean, l2reg): what
// the call cannot avoid moving between memory and the core, each item once.
//
//   feature rows of the batch, as stored:  dense  rows x d x 4 bytes (float32, no bias column)
//                                          packed (dense rows mostly zeros, SoftmaxRows) and
//                                          CSR    nnz x (4 + 4) bytes (index, value)
//                                                 + rows x 8 bytes (row pointers)
//   labels of the batch:                   rows x 4 bytes (int32), when the oracle needs them
//   every input vector read once:          lambda (x) as the oracle uses it: the batch's rows x 8
//                                          (hyperclean's per-sample weights) or all p x 8
//                                          (l2reg's per-feature weights); y = W and v, q x 8
//   the output written once:               p x 8 (grad_x, J v) or q x 8 (grad_y, H v)
//
// Not counted: scratch (logits, residuals), the write-allocate read of the output, the
// engine's scaling of the sum by 1/|batch|, and re-reads of W when it does not fit in cache.
// Which items an oracle needs follows from its formula (src/problems/hyperclean.h, l2reg.h):
// l2reg's grad_x G and J v depend on W, v and lambda alone, not on the data; grad_x F = 0 of
// both problems only writes its output.
#ifndef BILEVEL_TOOLS_BENCH_ORACLE_TRAFFIC_H_
#define BILEVEL_TOOLS_BENCH_ORACLE_TRAFFIC_H_

#include <cstdint>
#include <string>

#include "bilevel/types.h"

namespace bilevel::bench {

enum class Oracle { kGradYG, kGradXG, kGradYF, kGradXF, kHessianVec, kJacobianVec };
inline constexpr Oracle kAllOracles[] = {Oracle::kGradYG,     Oracle::kGradXG,
                                         Oracle::kGradYF,     Oracle::kGradXF,
                                         Oracle::kHessianVec, Oracle::kJacobianVec};

inline const char* OracleName(Oracle o) {
  switch (o) {
    case Oracle::kGradYG: return "GradYG";
    case Oracle::kGradXG: return "GradXG";
    case Oracle::kGradYF: return "GradYF";
    case Oracle::kGradXF: return "GradXF";
    case Oracle::kHessianVec: return "HessianVec";
    case Oracle::kJacobianVec: return "JacobianVec";
  }
  return "";
}

// The F oracles run on the outer (validation) split, the G oracles on the inner (train) one.
inline bool OnOuterSplit(Oracle o) { return o == Oracle::kGradYF || o == Oracle::kGradXF; }
// Whether the output has p entries (else q).
inline bool OuterOutput(Oracle o) {
  return o == Oracle::kGradXG || o == Oracle::kGradXF || o == Oracle::kJacobianVec;
}

// The batch as the traffic model sees it.
struct BatchData {
  Index rows = 0;
  std::int64_t feature_bytes = 0;  // its feature rows as stored (see the top of this file)
};

// The model's byte count for `oracle` of `problem` ("hyperclean" or "l2reg") on `batch`, with
// p = dim x and q = dim y.
inline std::int64_t MinOracleBytes(const std::string& problem, Oracle oracle,
                                   const BatchData& batch, Index p, Index q) {
  const bool per_sample_x = problem == "hyperclean";
  const bool data = oracle != Oracle::kGradXF &&
                    (per_sample_x || (oracle != Oracle::kGradXG && oracle != Oracle::kJacobianVec));
  const bool labels = data && oracle != Oracle::kHessianVec;
  const bool reads_x = !OnOuterSplit(oracle);  // f does not depend on x
  const bool reads_y = oracle != Oracle::kGradXF;
  const bool reads_v = oracle == Oracle::kHessianVec || oracle == Oracle::kJacobianVec;
  std::int64_t bytes = 0;
  if (data) bytes += batch.feature_bytes;
  if (labels) bytes += 4 * batch.rows;
  if (reads_x) bytes += 8 * (per_sample_x ? batch.rows : p);
  if (reads_y) bytes += 8 * q;
  if (reads_v) bytes += 8 * q;
  bytes += 8 * (OuterOutput(oracle) ? p : q);
  return bytes;
}

}  // namespace bilevel::bench

#endif  // BILEVEL_TOOLS_BENCH_ORACLE_TRAFFIC_H_
