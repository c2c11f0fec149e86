#include "agent/server/query.h"

#include <charconv>

namespace kernelet::agent::server {
namespace {

int hexValue(char c) {
  if (c >= '0' && c <= '9') {
    return c - '0';
  }
  if (c >= 'a' && c <= 'f') {
    return c - 'a' + 10;
  }
  if (c >= 'A' && c <= 'F') {
    return c - 'A' + 10;
  }
  return -1;
}

}  // namespace

Result<std::string> percentDecode(std::string_view text, bool plus_is_space) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); i++) {
    char c = text[i];
    if (c == '%') {
      int hi = i + 2 < text.size() ? hexValue(text[i + 1]) : -1;
      int lo = i + 2 < text.size() ? hexValue(text[i + 2]) : -1;
      if (hi < 0 || lo < 0) {
        return makeError("decode", std::string(text.substr(0, 64)),
                         "invalid URL escape \"" + std::string(text.substr(i, 3)) + "\"");
      }
      out += static_cast<char>(hi * 16 + lo);
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out += ' ';
    } else {
      out += c;
    }
  }
  return out;
}

Result<Query> Query::parse(std::string_view raw) {
  Query q;
  while (!raw.empty()) {
    size_t amp = raw.find('&');
    std::string_view pair = raw.substr(0, amp);
    raw = amp == std::string_view::npos ? std::string_view() : raw.substr(amp + 1);
    if (pair.empty()) {
      continue;
    }
    if (q.pairs_.size() == kMaxPairs) {
      return makeError("parse query", "", "more than " + std::to_string(kMaxPairs) + " parameters");
    }
    size_t eq = pair.find('=');
    std::string_view name = pair.substr(0, eq);
    std::string_view value =
        eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1);
    auto n = percentDecode(name, true);
    if (!n) {
      return std::unexpected(withContext(n.error(), "parse query"));
    }
    auto v = percentDecode(value, true);
    if (!v) {
      return std::unexpected(withContext(v.error(), "parse query parameter " + *n));
    }
    q.pairs_.emplace_back(std::move(*n), std::move(*v));
  }
  return q;
}

bool Query::has(std::string_view name) const {
  for (const auto& [n, v] : pairs_) {
    if (n == name) {
      return true;
    }
  }
  return false;
}

std::optional<std::string> Query::get(std::string_view name) const {
  for (const auto& [n, v] : pairs_) {
    if (n == name) {
      return v;
    }
  }
  return std::nullopt;
}

std::vector<std::string> Query::all(std::string_view name) const {
  std::vector<std::string> out;
  for (const auto& [n, v] : pairs_) {
    if (n == name) {
      out.push_back(v);
    }
  }
  return out;
}

Result<bool> Query::boolean(std::string_view name, bool dflt) const {
  auto v = get(name);
  if (!v) {
    return dflt;
  }
  for (const char* t : {"1", "t", "T", "true", "TRUE", "True"}) {
    if (*v == t) {
      return true;
    }
  }
  for (const char* f : {"0", "f", "F", "false", "FALSE", "False"}) {
    if (*v == f) {
      return false;
    }
  }
  return makeError("parse query parameter", std::string(name),
                   "invalid boolean \"" + v->substr(0, 64) + "\"");
}

Result<std::optional<int64_t>> Query::integer(std::string_view name, int64_t min,
                                              int64_t max) const {
  auto v = get(name);
  if (!v) {
    return std::optional<int64_t>();
  }
  int64_t n = 0;
  const char* end = v->data() + v->size();
  auto [p, ec] = std::from_chars(v->data(), end, n);
  if (v->empty() || ec != std::errc() || p != end) {
    return makeError("parse query parameter", std::string(name),
                     "invalid integer \"" + v->substr(0, 64) + "\"");
  }
  if (n < min || n > max) {
    return makeError("parse query parameter", std::string(name),
                     std::to_string(n) + " is out of range [" + std::to_string(min) + ", " +
                         std::to_string(max) + "]");
  }
  return std::optional<int64_t>(n);
}

}  // namespace kernelet::agent::server
