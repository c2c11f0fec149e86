#include "agent/stats/cgroup_stats.h"

#include <sys/sysinfo.h>
#include <unistd.h>

#include "sys/fileio.h"

namespace kernelet::agent::stats {

namespace {

uint64_t get(const std::map<std::string, uint64_t, std::less<>>& kv, std::string_view key) {
  auto it = kv.find(key);
  return it == kv.end() ? 0 : it->second;
}

std::optional<std::string> readOptional(const std::string& path) {
  auto text = readFile(path);
  if (!text) {
    return std::nullopt;  // the controller is not enabled here, or the file went
  }
  return std::move(*text);
}

std::optional<Pressure> readPressure(const std::string& path) {
  auto text = readOptional(path);
  return text ? parsePressure(*text) : std::nullopt;
}

}  // namespace

Result<CgroupSample> readCgroup(const std::string& mount, const std::string& relative,
                                Clock::time_point now, bool with_io) {
  std::string dir = relative.empty() ? mount : mount + "/" + relative;
  CgroupSample s;
  s.time = now;
  // cpu.stat exists in every v2 group, the cpu controller enabled or not:
  // its absence means no group (one read fewer than probing for the group).
  auto cpu = readFile(dir + "/cpu.stat");
  if (!cpu) {
    return std::unexpected(withContext(std::move(cpu.error()), "read cgroup stats"));
  }
  auto kv = parseKeyValues(*cpu);
  s.has_cpu = kv.contains("usage_usec");
  s.cpu_usage_usec = get(kv, "usage_usec");
  s.cpu_user_usec = get(kv, "user_usec");
  s.cpu_system_usec = get(kv, "system_usec");
  if (auto text = readOptional(dir + "/memory.current")) {
    if (auto v = parseSingleValue(*text)) {
      s.has_memory = true;
      s.memory_current = *v;
    }
  }
  if (auto text = readOptional(dir + "/memory.max")) {
    s.memory_max = parseSingleValue(*text);
  }
  if (auto text = readOptional(dir + "/memory.stat")) {
    auto kv = parseKeyValues(*text);
    s.anon = get(kv, "anon");
    s.file = get(kv, "file");
    s.inactive_file = get(kv, "inactive_file");
    s.pgfault = get(kv, "pgfault");
    s.pgmajfault = get(kv, "pgmajfault");
  }
  s.working_set = s.memory_current > s.inactive_file ? s.memory_current - s.inactive_file : 0;
  if (auto text = with_io ? readOptional(dir + "/io.stat") : std::nullopt) {
    s.io = parseIoStat(*text);
  }
  if (auto text = readOptional(dir + "/pids.current")) {
    s.pids_current = parseSingleValue(*text);
  }
  s.cpu_pressure = readPressure(dir + "/cpu.pressure");
  s.memory_pressure = readPressure(dir + "/memory.pressure");
  s.io_pressure = readPressure(dir + "/io.pressure");
  if (auto text = readOptional(dir + "/memory.swap.current")) {
    s.swap_current = parseSingleValue(*text);
    if (auto max = readOptional(dir + "/memory.swap.max")) {
      s.swap_max = parseSingleValue(*max);
    }
  }
  return s;
}

Result<NodeSample> readNode(const std::string& cgroup_mount, const std::string& proc,
                            Clock::time_point now) {
  NodeSample n;
  n.time = now;
  TRY(std::string meminfo_text, addContext(readFile(proc + "/meminfo"), "read node stats"));
  auto meminfo = parseKeyValues(meminfo_text, /*meminfo=*/true);
  n.memory_total = get(meminfo, "MemTotal");
  uint64_t free = get(meminfo, "MemFree");
  n.memory_usage = n.memory_total > free ? n.memory_total - free : 0;
  if (meminfo.contains("SwapTotal") && meminfo.contains("SwapFree")) {
    n.swap_total = get(meminfo, "SwapTotal");
    n.swap_free = get(meminfo, "SwapFree");
  }

  // The root group has cpu.stat and memory.stat but no memory.current; where
  // the v2 root is not the whole machine's (a hybrid host), procfs answers.
  std::optional<std::map<std::string, uint64_t, std::less<>>> root_mem;
  if (auto text = readOptional(cgroup_mount + "/memory.stat")) {
    root_mem = parseKeyValues(*text);
  }
  uint64_t inactive_file =
      root_mem ? get(*root_mem, "inactive_file") : get(meminfo, "Inactive(file)");
  n.working_set = n.memory_usage > inactive_file ? n.memory_usage - inactive_file : 0;
  n.available = n.memory_total > n.working_set ? n.memory_total - n.working_set : 0;
  n.rss = root_mem ? get(*root_mem, "anon") : get(meminfo, "AnonPages");
  if (root_mem) {
    n.pgfault = get(*root_mem, "pgfault");
    n.pgmajfault = get(*root_mem, "pgmajfault");
  } else if (auto text = readOptional(proc + "/vmstat")) {
    auto vm = parseKeyValues(*text);
    n.pgfault = get(vm, "pgfault");
    n.pgmajfault = get(vm, "pgmajfault");
  }

  if (auto text = readOptional(cgroup_mount + "/cpu.stat")) {
    auto kv = parseKeyValues(*text);
    if (kv.contains("usage_usec")) {
      n.cpu_usage_ns = get(kv, "usage_usec") * 1000;
    }
  }
  if (!n.cpu_usage_ns) {
    if (auto text = readOptional(proc + "/stat")) {
      long hz = sysconf(_SC_CLK_TCK);
      if (auto ticks = parseProcStatBusyTicks(*text); ticks && hz > 0) {
        n.cpu_usage_ns = *ticks * (1000000000 / static_cast<uint64_t>(hz));
      }
    }
  }
  if (auto text = readOptional(proc + "/sys/kernel/pid_max")) {
    n.pid_max = parseSingleValue(*text);
  }
  n.cpu_pressure = readPressure(proc + "/pressure/cpu");
  n.memory_pressure = readPressure(proc + "/pressure/memory");
  n.io_pressure = readPressure(proc + "/pressure/io");
  struct sysinfo info {};
  if (proc == "/proc" && sysinfo(&info) == 0) {
    n.processes = info.procs;
  }
  return n;
}

}  // namespace kernelet::agent::stats
