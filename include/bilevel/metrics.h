// An ordered record of named values: one line of the metrics file, or the final summary.
#ifndef BILEVEL_METRICS_H_
#define BILEVEL_METRICS_H_

#include <cstdint>
#include <string>
#include <variant>
#include <vector>

namespace bilevel {

class MetricsRecord {
 public:
  using Value = std::variant<std::int64_t, double, std::string>;

  // Sets `key`, keeping its first position if it exists.
  void Set(const std::string& key, double value) { Put(key, value); }
  void SetInt(const std::string& key, std::int64_t value) { Put(key, value); }
  void SetString(const std::string& key, const std::string& value) { Put(key, value); }

  bool Has(const std::string& key) const;
  // The value as a double (ints converted); throws std::out_of_range when absent.
  double Number(const std::string& key) const;
  const std::string& String(const std::string& key) const;
  const std::vector<std::pair<std::string, Value>>& entries() const { return entries_; }

  // One JSON object on one line. Doubles keep 17 significant digits; NaN and Inf are null.
  std::string ToJson() const;

 private:
  void Put(const std::string& key, Value value);
  std::vector<std::pair<std::string, Value>> entries_;
};

}  // namespace bilevel

#endif  // BILEVEL_METRICS_H_
