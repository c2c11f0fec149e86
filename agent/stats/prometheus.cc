#include "agent/stats/prometheus.h"

#include <charconv>
#include <cmath>
#include <cstdlib>

namespace kernelet::agent::stats {

namespace {

const char* typeName(MetricType type) {
  switch (type) {
    case MetricType::kCounter:
      return "counter";
    case MetricType::kGauge:
      return "gauge";
    case MetricType::kHistogram:
      return "histogram";
    case MetricType::kUntyped:
      break;
  }
  return "untyped";
}

}  // namespace

std::string escapeLabelValue(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string escapeHelp(std::string_view help) {
  std::string out;
  out.reserve(help.size());
  for (char c : help) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string formatValue(double v) {
  if (std::isnan(v)) {
    return "NaN";
  }
  if (std::isinf(v)) {
    return v > 0 ? "+Inf" : "-Inf";
  }
  // Go's 'g' with the shortest precision: the shortest digits that round-trip,
  // written as %e when the decimal exponent is < -4 or >= 6 ("2.6e+07"),
  // else as %f ("0.5", "123456").
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v, std::chars_format::scientific);
  if (ec != std::errc()) {
    return "NaN";  // cannot happen for a finite double in 64 bytes
  }
  std::string sci(buf, end);
  int exp = std::atoi(sci.c_str() + sci.find('e') + 1);
  if (exp < -4 || exp >= 6) {
    return sci;
  }
  auto [fend, fec] = std::to_chars(buf, buf + sizeof(buf), v, std::chars_format::fixed);
  if (fec != std::errc()) {
    return sci;
  }
  return std::string(buf, fend);
}

void TextWriter::family(std::string_view name, std::string_view help, MetricType type) {
  out_ += "# HELP ";
  out_ += name;
  out_ += ' ';
  out_ += escapeHelp(help);
  out_ += "\n# TYPE ";
  out_ += name;
  out_ += ' ';
  out_ += typeName(type);
  out_ += '\n';
}

void TextWriter::sample(std::string_view name, const Labels& labels, double value,
                        std::optional<int64_t> timestamp_ms) {
  out_ += name;
  if (!labels.empty()) {
    out_ += '{';
    bool first = true;
    for (const auto& [label, val] : labels) {
      if (!first) {
        out_ += ',';
      }
      first = false;
      out_ += label;
      out_ += "=\"";
      out_ += escapeLabelValue(val);
      out_ += '"';
    }
    out_ += '}';
  }
  out_ += ' ';
  out_ += formatValue(value);
  if (timestamp_ms) {
    out_ += ' ';
    out_ += std::to_string(*timestamp_ms);
  }
  out_ += '\n';
}

}  // namespace kernelet::agent::stats
