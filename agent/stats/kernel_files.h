#pragma once
// Parsers of the kernel's text files the stats come from: cgroup v2
// interface files (cpu.stat, memory.stat, io.stat, single values) and procfs
// (/proc/stat, /proc/meminfo, /proc/PID/net/dev). The kernel writes them, but
// a reader must still not trust them: a line that does not parse is skipped,
// a number too large is skipped, never a crash (fuzz/stats_cgroup_files.cc).

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kernelet::agent::stats {

// "KEY VALUE" lines (cpu.stat, memory.stat, and "Key: VALUE kB" lines of
// /proc/meminfo with `meminfo`: the colon is dropped, kB becomes bytes).
std::map<std::string, uint64_t, std::less<>> parseKeyValues(std::string_view text,
                                                            bool meminfo = false);

// One number (memory.current, pids.current); "max" and junk: nullopt.
std::optional<uint64_t> parseSingleValue(std::string_view text);

// io.stat: "MAJ:MIN rbytes=N wbytes=N rios=N wios=N dbytes=N dios=N" per
// device, summed over the devices.
struct IoTotals {
  uint64_t rbytes = 0, wbytes = 0, rios = 0, wios = 0;
};
IoTotals parseIoStat(std::string_view text);

// /proc/stat's first "cpu" line: the time every CPU spent busy (user, nice,
// system, irq, softirq, steal; not idle or iowait), in USER_HZ ticks.
std::optional<uint64_t> parseProcStatBusyTicks(std::string_view text);

// cpu.pressure, memory.pressure, io.pressure (and /proc/pressure/*), the
// kernel's pressure stall information:
//   some avg10=0.12 avg60=0.05 avg300=0.00 total=123456
//   full avg10=0.00 avg60=0.00 avg300=0.00 total=0
// The averages are percentages of wall time, total is microseconds stalled.
// A file without a "full" line (/proc/pressure/cpu before Linux 5.13) leaves
// it zero, as Go's zero PSIData; nullopt when no line parses.
struct PressureLine {
  uint64_t total = 0;
  double avg10 = 0, avg60 = 0, avg300 = 0;
};
struct Pressure {
  PressureLine full, some;
};
std::optional<Pressure> parsePressure(std::string_view text);

// /proc/PID/net/dev: one entry per interface, in file order.
struct InterfaceCounters {
  std::string name;
  uint64_t rx_bytes = 0, rx_errors = 0, tx_bytes = 0, tx_errors = 0;
};
std::vector<InterfaceCounters> parseNetDev(std::string_view text);

}  // namespace kernelet::agent::stats

namespace kernelet::agent::stats {

// /proc/PID/stat: the fields process_* metrics need. The command name is in
// parentheses and may hold spaces and parentheses itself: the fields start
// after the last ')'.
struct ProcSelfStat {
  uint64_t utime_ticks = 0, stime_ticks = 0, start_ticks = 0, vsize_bytes = 0, rss_pages = 0;
};
std::optional<ProcSelfStat> parseProcPidStat(std::string_view text);

}  // namespace kernelet::agent::stats
