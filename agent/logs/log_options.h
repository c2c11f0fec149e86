#pragma once
// What a reader of a container's log asks for: the kubelet's PodLogOptions as
// the query parameters of /containerLogs (follow, previous, timestamps,
// sinceSeconds, sinceTime, tailLines, limitBytes, stream), checked as the API
// server's ValidatePodLogOptions checks them, so a bad value is refused with
// the parameter's name and the API's words, never read as something else.

#include <cstdint>
#include <optional>
#include <string>

#include "agent/server/query.h"
#include "sys/result.h"

namespace kernelet::agent::logs {

// Which of the container's streams (PodLogOptions.stream, Kubernetes 1.32+).
enum class StreamFilter { kAll, kStdout, kStderr };

struct LogOptions {
  bool follow = false;
  bool previous = false;
  bool timestamps = false;
  std::optional<int64_t> tail_lines;   // the last N lines; nullopt: all
  std::optional<int64_t> limit_bytes;  // at most this much output; nullopt: no cap
  // Lines stamped before this (nanoseconds since the epoch) are left out.
  std::optional<int64_t> since_nanos;
  StreamFilter stream = StreamFilter::kAll;
};

// From a /containerLogs query. `now_nanos` turns sinceSeconds into a time.
// Also takes the kubelet's old `tail` (a number, or "all"). Errors name the
// parameter: "tailLines: Invalid value: -1: must be greater than or equal to 0".
Result<LogOptions> parseLogOptions(const server::Query& query, int64_t now_nanos);

// The status the kubelet answers a parseLogOptions error with: 422 when
// PodLogOptions' validation refuses the options (a negative tailLines, both
// sinceTime and sinceSeconds, ...), 400 when the query does not decode.
int logOptionsStatus(const Error& error);

// The same checks for options built another way (the CLI's flags).
Result<void> validateLogOptions(const LogOptions& options);

}  // namespace kernelet::agent::logs
