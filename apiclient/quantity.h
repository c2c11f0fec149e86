#pragma once
// Kubernetes resource quantities ("100m", "1.5Gi", "1e3"), parsed and printed
// by apimachinery's rules: values are kept in nano units, rounded up, and printed
// in the canonical form of the suffix family they were written in.

#include <string>

#include "sys/result.h"

namespace kernelet::apiclient {

class Quantity {
 public:
  enum class Format { kDecimalSI, kBinarySI, kDecimalExponent };

  static Result<Quantity> parse(const std::string& text);
  static Quantity fromMilli(int64_t milli, Format f = Format::kDecimalSI);
  static Quantity fromInt(int64_t value, Format f = Format::kDecimalSI);

  // The canonical string: 1.5 -> "1500m", 1000 -> "1k", 1024Mi -> "1Gi".
  std::string str() const;
  // Rounded up, as the kubelet reads CPU requests and memory limits.
  int64_t milliValue() const;
  int64_t value() const;
  Format format() const { return format_; }

  bool operator==(const Quantity& o) const { return nanos_ == o.nanos_; }
  auto operator<=>(const Quantity& o) const { return nanos_ <=> o.nanos_; }

 private:
  Quantity(__int128 nanos, Format f) : nanos_(nanos), format_(f) {}
  __int128 nanos_ = 0;
  Format format_ = Format::kDecimalSI;
};

}  // namespace kernelet::apiclient
