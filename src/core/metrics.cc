#include "bilevel/metrics.h"

#include <cmath>
#include <cstdio>
#include <stdexcept>

namespace bilevel {

namespace {

void AppendJsonString(const std::string& s, std::string* out) {
  out->push_back('"');
  for (char c : s) {
    switch (c) {
      case '"': *out += "\\\""; break;
      case '\\': *out += "\\\\"; break;
      case '\n': *out += "\\n"; break;
      case '\t': *out += "\\t"; break;
      case '\r': *out += "\\r"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof(buf), "\\u%04x", c);
          *out += buf;
        } else {
          out->push_back(c);
        }
    }
  }
  out->push_back('"');
}

}  // namespace

void MetricsRecord::Put(const std::string& key, Value value) {
  for (auto& entry : entries_) {
    if (entry.first == key) {
      entry.second = std::move(value);
      return;
    }
  }
  entries_.emplace_back(key, std::move(value));
}

bool MetricsRecord::Has(const std::string& key) const {
  for (const auto& entry : entries_)
    if (entry.first == key) return true;
  return false;
}

double MetricsRecord::Number(const std::string& key) const {
  for (const auto& entry : entries_) {
    if (entry.first != key) continue;
    if (auto* i = std::get_if<std::int64_t>(&entry.second)) return static_cast<double>(*i);
    if (auto* d = std::get_if<double>(&entry.second)) return *d;
    throw std::out_of_range("metric '" + key + "' is not a number");
  }
  throw std::out_of_range("no metric '" + key + "'");
}

const std::string& MetricsRecord::String(const std::string& key) const {
  for (const auto& entry : entries_) {
    if (entry.first != key) continue;
    if (auto* s = std::get_if<std::string>(&entry.second)) return *s;
    throw std::out_of_range("metric '" + key + "' is not a string");
  }
  throw std::out_of_range("no metric '" + key + "'");
}

std::string MetricsRecord::ToJson() const {
  std::string out = "{";
  bool first = true;
  for (const auto& [key, value] : entries_) {
    if (!first) out += ", ";
    first = false;
    AppendJsonString(key, &out);
    out += ": ";
    if (auto* i = std::get_if<std::int64_t>(&value)) {
      out += std::to_string(*i);
    } else if (auto* d = std::get_if<double>(&value)) {
      if (std::isfinite(*d)) {
        char buf[32];
        std::snprintf(buf, sizeof(buf), "%.17g", *d);
        out += buf;
      } else {
        out += "null";
      }
    } else {
      AppendJsonString(std::get<std::string>(value), &out);
    }
  }
  out += "}";
  return out;
}

}  // namespace bilevel
