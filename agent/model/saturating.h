#pragma once
// Sums of resource quantities. A Quantity clamps what it parses to INT64_MAX
// ("8Ei" is 2^63, one more than an int64 holds), so two such requests added
// as plain int64 wrap negative and would pass every "fits the node" check:
// resource sums saturate at the int64 bounds instead.

#include <cstdint>
#include <limits>

namespace kernelet::agent {

inline int64_t saturatingAdd(int64_t a, int64_t b) {
  int64_t sum = 0;
  if (__builtin_add_overflow(a, b, &sum)) {
    return b > 0 ? std::numeric_limits<int64_t>::max() : std::numeric_limits<int64_t>::min();
  }
  return sum;
}

}  // namespace kernelet::agent
