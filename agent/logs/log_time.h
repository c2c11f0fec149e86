#pragma once
// Times in container logs and log queries: RFC 3339 as Go's time.Parse reads
// it (a fraction of any width, "Z" or a numeric offset), and the fixed-width
// RFC3339Nano the kubelet prints before a line (`timestamps=true`:
// 2006-01-02T15:04:05.000000000Z). Times are nanoseconds since the epoch,
// which holds every time a log can carry (years 1678 to 2262).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace kernelet::agent::logs {

// nullopt: not RFC 3339 (the whole text must be one time).
std::optional<int64_t> parseRfc3339(std::string_view text);

// Appends the time in UTC with nine fraction digits and 'Z' (the kubelet's
// timeFormatOut), as 30 bytes.
void appendTimestamp(std::string& out, int64_t unix_nanos);

}  // namespace kernelet::agent::logs
