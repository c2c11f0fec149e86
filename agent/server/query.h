#pragma once
// A request's query string (?follow=true&tailLines=10&command=a&command=b),
// decoded as Go's url.ParseQuery does: '&' separates pairs, '+' is a space,
// %XX escapes; a malformed escape is an error naming the parameter. The
// typed accessors bound what they accept and name the parameter in the error,
// so an endpoint answers 400 with the kubelet's kind of message.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "sys/result.h"

namespace kernelet::agent::server {

class Query {
 public:
  Query() = default;
  // At most kMaxPairs pairs; each name and value decoded.
  static Result<Query> parse(std::string_view raw);
  static constexpr size_t kMaxPairs = 256;

  bool has(std::string_view name) const;
  // The first value of `name`, if given.
  std::optional<std::string> get(std::string_view name) const;
  // Every value of `name`, in order (command=a&command=b).
  std::vector<std::string> all(std::string_view name) const;
  // "true"/"1"/"false"/"0" (Go's strconv.ParseBool forms: also t, T, TRUE,
  // True, f, F, FALSE, False); absent: `dflt`.
  Result<bool> boolean(std::string_view name, bool dflt = false) const;
  // A base-10 integer in [min, max]; absent: nullopt.
  Result<std::optional<int64_t>> integer(std::string_view name, int64_t min, int64_t max) const;

  const std::vector<std::pair<std::string, std::string>>& pairs() const { return pairs_; }

 private:
  std::vector<std::pair<std::string, std::string>> pairs_;
};

// %XX and '+' decoding of one query component (`plus_is_space`) or path
// segment (not). Error: a bad escape.
Result<std::string> percentDecode(std::string_view text, bool plus_is_space);

}  // namespace kernelet::agent::server
