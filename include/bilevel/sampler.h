// Minibatches as global sample indices, drawn identically on every rank.
#ifndef BILEVEL_SAMPLER_H_
#define BILEVEL_SAMPLER_H_

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "bilevel/batch.h"
#include "bilevel/problem.h"

namespace bilevel {

// One batch of one split: how many samples it has globally and which of them this rank owns.
class MiniBatch {
 public:
  Split split() const { return split_; }
  Index global_size() const { return global_size_; }
  bool full() const { return full_; }
  // This rank's part, as local indices.
  Batch local() const {
    return full_ ? Batch::Range(0, local_full_size_)
                 : Batch::List(local_.data(), static_cast<Index>(local_.size()));
  }

 private:
  friend class Sampler;
  Split split_ = Split::kInner;
  Index global_size_ = 0;
  bool full_ = false;
  Index local_full_size_ = 0;
  std::vector<Index> local_;
};

// Draws minibatches from one seeded generator that every rank advances identically: a batch
// is a set of global indices, the same on every rank, and each rank keeps the indices of its
// own shard. The trajectory of a run is therefore the same for any number of ranks.
class Sampler {
 public:
  Sampler(const Problem& problem, std::uint64_t seed);

  // The whole split (does not advance the generator).
  void Full(Split split, MiniBatch* out) const;
  // `size` distinct samples drawn uniformly without replacement. A size of at least the split's
  // sample count gives the whole split and does not advance the generator. Allocation-free
  // after the first call with a given size.
  void Draw(Split split, Index size, MiniBatch* out);

  // A uniform draw from {0, ..., n - 1} (n >= 1) from the same generator, so every rank draws
  // the same number.
  Index UniformIndex(Index n);

  // The generator's state, for checkpoints.
  std::string SaveState() const;
  void LoadState(const std::string& state);

 private:
  std::mt19937_64 rng_;
  Index count_[2];
  Shard shard_[2];
  std::vector<Index> perm_[2];  // the identity between draws
  std::vector<Index> chosen_;
  std::vector<std::uint64_t> seen_;  // a bit per local row: sorting a large batch by a scan
};

}  // namespace bilevel

#endif  // BILEVEL_SAMPLER_H_
