#include "agent/logs/log_options.h"

#include <limits>

#include "agent/logs/log_time.h"

namespace kernelet::agent::logs {
namespace {

constexpr int64_t kMin = std::numeric_limits<int64_t>::min();
constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
// The kubelet answers a query that does not decode into PodLogOptions with
// 400 and options its validation refuses with 422.
constexpr const char* kInvalidOp = "invalid log options";
constexpr const char* kDecodeOp = "decode log options";

// The API server's field error form (field.Invalid / field.Forbidden).
std::unexpected<Error> invalid(const std::string& field, const std::string& value,
                               const std::string& detail) {
  return makeError(kInvalidOp, "", field + ": Invalid value: " + value + ": " + detail);
}

}  // namespace

int logOptionsStatus(const Error& e) { return e.op == kInvalidOp ? 422 : 400; }

Result<void> validateLogOptions(const LogOptions& o) {
  if (o.tail_lines && *o.tail_lines < 0) {
    return invalid("tailLines", std::to_string(*o.tail_lines),
                   "must be greater than or equal to 0");
  }
  if (o.limit_bytes && *o.limit_bytes < 1) {
    return invalid("limitBytes", std::to_string(*o.limit_bytes), "must be greater than 0");
  }
  if (o.tail_lines && o.stream != StreamFilter::kAll) {
    return makeError(kInvalidOp, "",
                     "tailLines: Forbidden: `tailLines` and specific `stream` are mutually "
                     "exclusive for now");
  }
  return {};
}

Result<LogOptions> parseLogOptions(const server::Query& q, int64_t now_nanos) {
  LogOptions o;
  TRY(o.follow, q.boolean("follow"));
  TRY(o.previous, q.boolean("previous"));
  TRY(o.timestamps, q.boolean("timestamps"));
  // The kubelet's older name: tail=N is tailLines=N, tail=all is no limit.
  const char* tail_name = q.has("tailLines") ? "tailLines" : "tail";
  if (q.get(tail_name).value_or("") != "all") {
    TRY(o.tail_lines, q.integer(tail_name, kMin, kMax));
  }
  TRY(o.limit_bytes, q.integer("limitBytes", kMin, kMax));
  TRY(auto since_seconds, q.integer("sinceSeconds", kMin, kMax));
  auto since_time = q.get("sinceTime");
  if (since_seconds && since_time) {
    return makeError(kInvalidOp, "",
                     "at most one of `sinceTime` or `sinceSeconds` may be specified");
  }
  if (since_seconds) {
    if (*since_seconds < 1) {
      return invalid("sinceSeconds", std::to_string(*since_seconds), "must be greater than 0");
    }
    // Older than the epoch is everything: no need to go below it.
    int64_t back =
        *since_seconds > now_nanos / 1000000000 ? now_nanos : *since_seconds * 1000000000;
    o.since_nanos = now_nanos - back;
  }
  if (since_time) {
    auto t = parseRfc3339(*since_time);
    if (!t) {
      // Not a time at all: the query does not decode (400), as the kubelet's.
      return makeError(kDecodeOp, "",
                       "sinceTime: Invalid value: \"" + since_time->substr(0, 64) +
                           "\": must be an RFC 3339 time (2006-01-02T15:04:05Z)");
    }
    o.since_nanos = t;
  }
  if (auto s = q.get("stream")) {
    if (*s == "All") {
      o.stream = StreamFilter::kAll;
    } else if (*s == "Stdout") {
      o.stream = StreamFilter::kStdout;
    } else if (*s == "Stderr") {
      o.stream = StreamFilter::kStderr;
    } else {
      return makeError(kInvalidOp, "",
                       "stream: Unsupported value: \"" + s->substr(0, 64) +
                           "\": supported values: \"All\", \"Stderr\", \"Stdout\"");
    }
  }
  TRY_VOID(validateLogOptions(o));
  return o;
}

}  // namespace kernelet::agent::logs
