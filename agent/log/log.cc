#include "agent/log/log.h"

#include <sys/time.h>
#include <unistd.h>

#include <cstdio>
#include <ctime>

namespace kernelet::agent::log {
namespace {

int verbosity = 0;

std::string quote(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
    }
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out + "\"";
}

void emit(char severity, const std::string& msg, const Fields& fields) {
  timeval tv{};
  ::gettimeofday(&tv, nullptr);
  tm local{};
  ::localtime_r(&tv.tv_sec, &local);
  char head[64];
  std::snprintf(head, sizeof head, "%c%02d%02d %02d:%02d:%02d.%06ld %7d kernelet] ", severity,
                local.tm_mon + 1, local.tm_mday, local.tm_hour, local.tm_min, local.tm_sec,
                static_cast<long>(tv.tv_usec), static_cast<int>(::getpid()));
  std::string line = head + quote(msg);
  for (const auto& [k, v] : fields) {
    line += " " + k + "=" + quote(v);
  }
  line += "\n";
  // One write per line: lines of concurrent writers do not interleave.
  (void)!::write(2, line.data(), line.size());
}

}  // namespace

void setVerbosity(int v) { verbosity = v; }
bool enabled(int v) { return verbosity >= v; }
void info(const std::string& msg, const Fields& fields) { emit('I', msg, fields); }
void v(int level, const std::string& msg, const Fields& fields) {
  if (enabled(level)) {
    emit('I', msg, fields);
  }
}
void warning(const std::string& msg, const Fields& fields) { emit('W', msg, fields); }
void error(const std::string& msg, const Fields& fields) { emit('E', msg, fields); }

}  // namespace kernelet::agent::log
