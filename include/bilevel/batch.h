// A batch of samples as a problem sees it: indices local to this rank's shard.
#ifndef BILEVEL_BATCH_H_
#define BILEVEL_BATCH_H_

#include "bilevel/types.h"

namespace bilevel {

// A non-owning view of local sample indices, 0-based within the rank's shard of one split.
// Either a contiguous range [begin, end) (full-batch passes) or a sorted list.
class Batch {
 public:
  static Batch Range(Index begin, Index end) { return Batch(begin, end, nullptr); }
  static Batch List(const Index* indices, Index count) { return Batch(0, count, indices); }

  Index size() const { return end_ - begin_; }
  bool empty() const { return size() == 0; }
  bool is_range() const { return list_ == nullptr; }
  // First index of a range batch.
  Index begin() const { return begin_; }
  // The i-th local sample index of the batch, 0 <= i < size().
  Index operator[](Index i) const { return list_ ? list_[i] : begin_ + i; }

 private:
  Batch(Index begin, Index end, const Index* list) : begin_(begin), end_(end), list_(list) {}
  Index begin_;
  Index end_;
  const Index* list_;
};

}  // namespace bilevel

#endif  // BILEVEL_BATCH_H_
