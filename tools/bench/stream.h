// The STREAM triad a = b + s c (McCalpin), the memory-bandwidth ceiling the oracles are
// measured against. Counted as STREAM counts it: 3 x 8 bytes per element (read b and c, write
// a), without the write-allocate read of a that a cache without streaming stores adds (which
// makes the true traffic 4/3 of the count).
#ifndef BILEVEL_TOOLS_BENCH_STREAM_H_
#define BILEVEL_TOOLS_BENCH_STREAM_H_

#include <chrono>
#include <cstddef>
#include <vector>

namespace bilevel::bench {

inline constexpr double kTriadBytesPerElement = 3 * sizeof(double);

class TriadArrays {
 public:
  // Three arrays of n doubles, each page first touched here (not inside the timing).
  explicit TriadArrays(std::size_t n) : a_(n, 0.0), b_(n, 1.0), c_(n, 2.0) {}

  std::size_t size() const { return a_.size(); }
  double bytes() const { return kTriadBytesPerElement * static_cast<double>(a_.size()); }

  // One pass of a = b + s c; returns its seconds.
  double Run() {
    double* __restrict a = a_.data();
    const double* __restrict b = b_.data();
    const double* __restrict c = c_.data();
    const std::size_t n = a_.size();
    const auto start = std::chrono::steady_clock::now();
    for (std::size_t i = 0; i < n; ++i) a[i] = b[i] + kScalar * c[i];
    // The clock call after the loop is opaque to the compiler: the stores stay.
    const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start;
    return elapsed.count();
  }

 private:
  static constexpr double kScalar = 3.0;
  std::vector<double> a_, b_, c_;
};

}  // namespace bilevel::bench

#endif  // BILEVEL_TOOLS_BENCH_STREAM_H_
