// The kernel text files the stats read (agent/stats/kernel_files.h): cgroup v2
// cpu.stat, memory.stat, io.stat, single values and the pressure files
// (*.pressure, /proc/pressure/*), /proc/meminfo, /proc/stat, /proc/PID/net/dev
// and /proc/PID/stat. The kernel writes them, but a
// reader must not crash on junk: the first byte picks the parser, the rest is
// the file; every parser takes whatever comes and returns what it could read.
// The parsers never read beyond the text (ASan) and never overflow (UBSan).

#include <cmath>
#include <cstdint>
#include <string_view>

#include "agent/stats/kernel_files.h"
#include "agent/stats/prometheus.h"

using namespace kernelet::agent::stats;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) {
    return 0;
  }
  std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 9) {
    case 0:
      (void)parseKeyValues(text);
      break;
    case 1:
      (void)parseKeyValues(text, /*meminfo=*/true);
      break;
    case 2:
      (void)parseSingleValue(text);
      break;
    case 3:
      (void)parseIoStat(text);
      break;
    case 4:
      (void)parseProcStatBusyTicks(text);
      break;
    case 5:
      for (const auto& i : parseNetDev(text)) {
        if (i.name.empty()) {
          __builtin_trap();  // an interface always has a name
        }
      }
      break;
    case 6:
      (void)parseProcPidStat(text);
      break;
    case 8:
      // The averages go into the Summary's JSON as numbers: never NaN,
      // infinite or negative, whatever the file says.
      if (auto p = parsePressure(text)) {
        for (const PressureLine* l : {&p->some, &p->full}) {
          for (double v : {l->avg10, l->avg60, l->avg300}) {
            if (!std::isfinite(v) || v < 0) {
              __builtin_trap();
            }
          }
        }
      }
      break;
    default:
      // Label values come from pods (names, images): whatever they hold,
      // the escaped form has no raw newline and no unescaped quote.
      {
        std::string escaped = escapeLabelValue(text);
        for (size_t i = 0; i < escaped.size(); ++i) {
          if (escaped[i] == '\n') {
            __builtin_trap();
          }
          if (escaped[i] == '\\') {
            ++i;  // an escape: the next byte is part of it
          } else if (escaped[i] == '"') {
            __builtin_trap();
          }
        }
      }
      break;
  }
  return 0;
}
