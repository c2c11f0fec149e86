#include "agent/stats/kernel_files.h"

#include <charconv>
#include <cmath>

namespace kernelet::agent::stats {

namespace {

// Splits off the next whitespace-separated field of `text`.
std::string_view nextField(std::string_view& text) {
  size_t start = text.find_first_not_of(" \t");
  if (start == std::string_view::npos) {
    text = {};
    return {};
  }
  size_t end = text.find_first_of(" \t", start);
  std::string_view field = text.substr(start, end - start);
  text = end == std::string_view::npos ? std::string_view{} : text.substr(end);
  return field;
}

std::optional<uint64_t> toNumber(std::string_view s) {
  uint64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size() || s.empty()) {
    return std::nullopt;
  }
  return v;
}

// Calls `line` with each line of `text`, without its newline.
template <typename F>
void eachLine(std::string_view text, F line) {
  while (!text.empty()) {
    size_t nl = text.find('\n');
    line(text.substr(0, nl));
    if (nl == std::string_view::npos) {
      break;
    }
    text.remove_prefix(nl + 1);
  }
}

}  // namespace

std::map<std::string, uint64_t, std::less<>> parseKeyValues(std::string_view text, bool meminfo) {
  std::map<std::string, uint64_t, std::less<>> out;
  eachLine(text, [&](std::string_view line) {
    std::string_view key = nextField(line);
    std::string_view value = nextField(line);
    std::string_view unit = nextField(line);
    if (meminfo) {
      if (key.empty() || key.back() != ':') {
        return;
      }
      key.remove_suffix(1);
    }
    auto v = toNumber(value);
    if (key.empty() || !v) {
      return;
    }
    if (meminfo && unit == "kB") {
      if (*v > UINT64_MAX / 1024) {
        return;
      }
      *v *= 1024;
    }
    out.emplace(std::string(key), *v);
  });
  return out;
}

std::optional<uint64_t> parseSingleValue(std::string_view text) {
  std::string_view rest = text;
  std::string_view field = nextField(rest);
  size_t nl = field.find('\n');
  if (nl != std::string_view::npos) {
    field = field.substr(0, nl);
  }
  return toNumber(field);
}

IoTotals parseIoStat(std::string_view text) {
  IoTotals t;
  auto addTo = [](uint64_t& total, uint64_t v) {
    // Saturate rather than wrap on hostile input.
    total = v > UINT64_MAX - total ? UINT64_MAX : total + v;
  };
  eachLine(text, [&](std::string_view line) {
    (void)nextField(line);  // the device, MAJ:MIN: every device is summed
    for (std::string_view kv = nextField(line); !kv.empty(); kv = nextField(line)) {
      size_t eq = kv.find('=');
      if (eq == std::string_view::npos) {
        continue;
      }
      auto v = toNumber(kv.substr(eq + 1));
      if (!v) {
        continue;
      }
      std::string_view k = kv.substr(0, eq);
      if (k == "rbytes") {
        addTo(t.rbytes, *v);
      } else if (k == "wbytes") {
        addTo(t.wbytes, *v);
      } else if (k == "rios") {
        addTo(t.rios, *v);
      } else if (k == "wios") {
        addTo(t.wios, *v);
      }
    }
  });
  return t;
}

namespace {

// A pressure average: a finite, non-negative decimal ("inf", "nan" and
// negatives are junk: the JSON could not carry them).
std::optional<double> toAverage(std::string_view s) {
  double v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v, std::chars_format::fixed);
  if (ec != std::errc() || end != s.data() + s.size() || s.empty() || !std::isfinite(v) || v < 0) {
    return std::nullopt;
  }
  return v;
}

// The fields after "some"/"full": all four or the line is skipped.
std::optional<PressureLine> parsePressureFields(std::string_view line) {
  PressureLine p;
  bool avg10 = false, avg60 = false, avg300 = false, total = false;
  for (std::string_view kv = nextField(line); !kv.empty(); kv = nextField(line)) {
    size_t eq = kv.find('=');
    if (eq == std::string_view::npos) {
      return std::nullopt;
    }
    std::string_view k = kv.substr(0, eq), v = kv.substr(eq + 1);
    if (k == "total") {
      auto n = toNumber(v);
      if (!n) {
        return std::nullopt;
      }
      p.total = *n;
      total = true;
      continue;
    }
    auto avg = toAverage(v);
    if (!avg) {
      return std::nullopt;
    }
    if (k == "avg10") {
      p.avg10 = *avg;
      avg10 = true;
    } else if (k == "avg60") {
      p.avg60 = *avg;
      avg60 = true;
    } else if (k == "avg300") {
      p.avg300 = *avg;
      avg300 = true;
    }
  }
  if (!avg10 || !avg60 || !avg300 || !total) {
    return std::nullopt;
  }
  return p;
}

}  // namespace

std::optional<Pressure> parsePressure(std::string_view text) {
  Pressure out;
  bool any = false;
  eachLine(text, [&](std::string_view line) {
    std::string_view kind = nextField(line);
    if (kind != "some" && kind != "full") {
      return;
    }
    if (auto p = parsePressureFields(line)) {
      (kind == "some" ? out.some : out.full) = *p;
      any = true;
    }
  });
  if (!any) {
    return std::nullopt;
  }
  return out;
}

std::optional<uint64_t> parseProcStatBusyTicks(std::string_view text) {
  std::optional<uint64_t> busy;
  eachLine(text, [&](std::string_view line) {
    if (busy || nextField(line) != "cpu") {
      return;
    }
    // user nice system idle iowait irq softirq steal [guest guest_nice]
    // (guest time is already inside user and nice).
    uint64_t total = 0;
    for (int i = 0; i < 8; ++i) {
      auto v = toNumber(nextField(line));
      if (!v) {
        return;
      }
      if (i != 3 && i != 4 && *v <= UINT64_MAX - total) {
        total += *v;
      }
    }
    busy = total;
  });
  return busy;
}

std::vector<InterfaceCounters> parseNetDev(std::string_view text) {
  std::vector<InterfaceCounters> out;
  eachLine(text, [&](std::string_view line) {
    // "  eth0: 1234 5 0 0 0 0 0 0 5678 6 0 ...": two header lines have no colon
    // before the numbers ("Inter-|   Receive ..." and " face |bytes ...").
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) {
      return;
    }
    std::string_view name = line.substr(0, colon);
    std::string_view rest = nextField(name);
    if (rest.empty() || !nextField(name).empty()) {
      return;
    }
    std::string_view fields = line.substr(colon + 1);
    uint64_t v[16];
    for (uint64_t& x : v) {
      auto n = toNumber(nextField(fields));
      if (!n) {
        return;
      }
      x = *n;
    }
    // Receive: bytes packets errs drop fifo frame compressed multicast;
    // Transmit: bytes packets errs drop fifo colls carrier compressed.
    out.push_back({std::string(rest), v[0], v[2], v[8], v[10]});
  });
  return out;
}

}  // namespace kernelet::agent::stats

namespace kernelet::agent::stats {

std::optional<ProcSelfStat> parseProcPidStat(std::string_view text) {
  size_t paren = text.rfind(')');
  if (paren == std::string_view::npos) {
    return std::nullopt;
  }
  std::string_view rest = text.substr(paren + 1);
  // Fields from 3 (state) on; we want 14 utime, 15 stime, 22 starttime,
  // 23 vsize, 24 rss (1-based, as proc(5) numbers them).
  ProcSelfStat s;
  for (int field = 3; field <= 24; ++field) {
    std::string_view f = nextField(rest);
    if (f.empty()) {
      return std::nullopt;
    }
    if (field < 14 || (field > 15 && field < 22)) {
      continue;
    }
    // rss may be negative in theory (a long): not a number we can use.
    auto v = toNumber(f);
    if (!v) {
      return std::nullopt;
    }
    switch (field) {
      case 14:
        s.utime_ticks = *v;
        break;
      case 15:
        s.stime_ticks = *v;
        break;
      case 22:
        s.start_ticks = *v;
        break;
      case 23:
        s.vsize_bytes = *v;
        break;
      default:
        s.rss_pages = *v;
        break;
    }
  }
  return s;
}

}  // namespace kernelet::agent::stats
