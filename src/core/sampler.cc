#include "bilevel/sampler.h"

#include <algorithm>
#include <numeric>
#include <sstream>
#include <stdexcept>

namespace bilevel {

namespace {
__extension__ typedef unsigned __int128 Uint128;
}  // namespace

Sampler::Sampler(const Problem& problem, std::uint64_t seed) : rng_(seed) {
  for (Split split : {Split::kInner, Split::kOuter}) {
    const int k = static_cast<int>(split);
    count_[k] = problem.NumSamples(split);
    shard_[k] = problem.LocalShard(split);
  }
}

void Sampler::Full(Split split, MiniBatch* out) const {
  const int k = static_cast<int>(split);
  out->split_ = split;
  out->full_ = true;
  out->global_size_ = count_[k];
  out->local_full_size_ = shard_[k].size();
  out->local_.clear();
}

void Sampler::Draw(Split split, Index size, MiniBatch* out) {
  const int k = static_cast<int>(split);
  const Index n = count_[k];
  if (size >= n) {
    Full(split, out);
    return;
  }
  std::vector<Index>& perm = perm_[k];
  if (static_cast<Index>(perm.size()) != n) {
    perm.resize(n);
    std::iota(perm.begin(), perm.end(), Index{0});
  }
  // Partial Fisher-Yates: the first `size` entries become a uniform sample without
  // replacement; the swaps are then undone so that perm stays the identity and the
  // generator is the whole state.
  chosen_.resize(size);
  for (Index i = 0; i < size; ++i) {
    // A uniform draw from [0, n - i): the high word of a 64 x 64-bit product.
    const Index j =
        i + static_cast<Index>((static_cast<Uint128>(rng_()) * static_cast<Uint128>(n - i)) >> 64);
    std::swap(perm[i], perm[j]);
    chosen_[i] = j;
  }
  out->split_ = split;
  out->full_ = false;
  out->global_size_ = size;
  out->local_.clear();
  const Shard& own = shard_[k];
  for (Index i = 0; i < size; ++i) {
    if (perm[i] >= own.begin && perm[i] < own.end) out->local_.push_back(perm[i] - own.begin);
  }
  for (Index i = size - 1; i >= 0; --i) std::swap(perm[i], perm[chosen_[i]]);
  // In increasing order (the rows are read in memory order). The indices are distinct: a
  // batch that is large against the shard is sorted by setting a bit per row and reading the
  // bits back, a small one by a comparison sort.
  std::vector<Index>& local = out->local_;
  const Index words = (own.end - own.begin + 63) / 64;
  if (words > 4 * static_cast<Index>(local.size())) {
    std::sort(local.begin(), local.end());
    return;
  }
  seen_.assign(words, 0);
  for (const Index i : local) seen_[i >> 6] |= std::uint64_t{1} << (i & 63);
  local.clear();
  for (Index w = 0; w < words; ++w)
    for (std::uint64_t bits = seen_[w]; bits != 0; bits &= bits - 1)
      local.push_back(w * 64 + __builtin_ctzll(bits));
}

Index Sampler::UniformIndex(Index n) {
  return static_cast<Index>((static_cast<Uint128>(rng_()) * static_cast<Uint128>(n)) >> 64);
}

std::string Sampler::SaveState() const {
  std::ostringstream s;
  s << rng_;
  return s.str();
}

void Sampler::LoadState(const std::string& state) {
  std::istringstream s(state);
  s >> rng_;
  if (!s) throw std::invalid_argument("malformed random generator state");
}

}  // namespace bilevel
