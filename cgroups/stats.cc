#include <sstream>
#include <string_view>

#include "cgroups/cgroups.h"

namespace kernelet::cgroups {

namespace {

// Reads "key value" lines (cpu.stat, memory.stat, memory.events) into a lookup.
template <typename F>
void forEachKeyValue(const std::string& text, F&& f) {
  std::istringstream in(text);
  std::string key;
  uint64_t value;
  while (in >> key >> value) {
    f(key, value);
  }
}

uint64_t toU64(const std::string& s) {
  return s.starts_with("max") ? UINT64_MAX : std::strtoull(s.c_str(), nullptr, 10);
}

}  // namespace

Result<Stats> Cgroup::stats() const {
  Stats s;
  // A controller not enabled for this group has no files: its stats stay zero.
  if (auto cpu = read("cpu.stat")) {
    forEachKeyValue(*cpu, [&](const std::string& k, uint64_t v) {
      if (k == "usage_usec") {
        s.cpu_usage_usec = v;
      } else if (k == "nr_periods") {
        s.cpu_nr_periods = v;
      } else if (k == "nr_throttled") {
        s.cpu_nr_throttled = v;
      } else if (k == "throttled_usec") {
        s.cpu_throttled_usec = v;
      }
    });
  }
  if (auto cur = read("memory.current")) {
    s.memory_current = toU64(*cur);
    uint64_t inactive_file = 0;
    if (auto stat = read("memory.stat")) {
      forEachKeyValue(*stat, [&](const std::string& k, uint64_t v) {
        if (k == "inactive_file") {
          inactive_file = v;
        }
      });
    }
    s.memory_working_set = s.memory_current > inactive_file ? s.memory_current - inactive_file : 0;
  }
  if (auto ev = read("memory.events")) {
    forEachKeyValue(*ev, [&](const std::string& k, uint64_t v) {
      if (k == "oom") {
        s.memory_oom = v;
      } else if (k == "oom_kill") {
        s.memory_oom_kill = v;
      }
    });
  }
  if (auto pids = read("pids.current")) {
    s.pids_current = toU64(*pids);
  }
  return s;
}

}  // namespace kernelet::cgroups
