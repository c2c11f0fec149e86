#pragma once
// The Prometheus text exposition format, version 0.0.4, as client_golang's
// expfmt writes it: one "# HELP" and one "# TYPE" line per family, then its
// samples; label values escape backslash, double quote and newline; HELP
// text escapes backslash and newline; values are Go floats (+Inf, -Inf,
// NaN); an optional timestamp is milliseconds since the epoch.
//
//   TextWriter w;
//   w.family("node_cpu_usage_seconds_total", "Cumulative cpu time ...", MetricType::kCounter);
//   w.sample("node_cpu_usage_seconds_total", {}, 12.5, 1700000000000);
//   response.body = w.take();

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace kernelet::agent::stats {

enum class MetricType { kCounter, kGauge, kHistogram, kUntyped };

// Label name and value pairs, in the order they are written.
using Labels = std::vector<std::pair<std::string, std::string>>;

// The Content-Type a 0.0.4 scrape answers with.
inline constexpr std::string_view kTextContentType = "text/plain; version=0.0.4; charset=utf-8";

class TextWriter {
 public:
  void family(std::string_view name, std::string_view help, MetricType type);
  // One line: NAME{labels} VALUE [TIMESTAMP_MS]. `name` carries its suffix
  // (_bucket, _sum, _count) for a histogram's lines.
  void sample(std::string_view name, const Labels& labels, double value,
              std::optional<int64_t> timestamp_ms = std::nullopt);
  const std::string& text() const { return out_; }
  std::string take() { return std::move(out_); }

 private:
  std::string out_;
};

// Escapes as the format wants inside a label value's quotes.
std::string escapeLabelValue(std::string_view value);
// Escapes HELP text.
std::string escapeHelp(std::string_view help);
// A value as Go's strconv.FormatFloat(v, 'g', -1, 64) spells it in expfmt
// (shortest round-trip form), with +Inf, -Inf and NaN.
std::string formatValue(double v);

}  // namespace kernelet::agent::stats
