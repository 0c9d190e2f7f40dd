#include "bilevel/problem.h"

#include <algorithm>

namespace bilevel {

Shard BlockShard(Index n, int rank, int ranks) {
  const Index base = n / ranks, extra = n % ranks;
  Shard s;
  s.begin = rank * base + std::min<Index>(rank, extra);
  s.end = s.begin + base + (rank < extra ? 1 : 0);
  return s;
}

std::vector<std::pair<std::string, std::string>> Problem::Identity() const {
  return {{"name", Name()},
          {"dim_outer", std::to_string(DimOuter())},
          {"dim_inner", std::to_string(DimInner())},
          {"samples_inner", std::to_string(NumSamples(Split::kInner))},
          {"samples_outer", std::to_string(NumSamples(Split::kOuter))}};
}

}  // namespace bilevel
