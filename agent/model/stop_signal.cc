#include "agent/model/stop_signal.h"

#include <array>
#include <string>
#include <utility>

namespace kernelet::agent {

namespace {

constexpr int kRtMin = 34, kRtMax = 64;

// The API's supportedStopSignalsLinux, canonical names before their aliases
// (stopSignalName picks the first of a number). The real-time ones follow.
constexpr std::array<std::pair<std::string_view, int>, 34> kClassic = {{
    {"SIGABRT", 6},    {"SIGALRM", 14},  {"SIGBUS", 7},   {"SIGCHLD", 17}, {"SIGCLD", 17},
    {"SIGCONT", 18},   {"SIGFPE", 8},    {"SIGHUP", 1},   {"SIGILL", 4},   {"SIGINT", 2},
    {"SIGIO", 29},     {"SIGIOT", 6},    {"SIGKILL", 9},  {"SIGPIPE", 13}, {"SIGPOLL", 29},
    {"SIGPROF", 27},   {"SIGPWR", 30},   {"SIGQUIT", 3},  {"SIGSEGV", 11}, {"SIGSTKFLT", 16},
    {"SIGSTOP", 19},   {"SIGSYS", 31},   {"SIGTERM", 15}, {"SIGTRAP", 5},  {"SIGTSTP", 20},
    {"SIGTTIN", 21},   {"SIGTTOU", 22},  {"SIGURG", 23},  {"SIGUSR1", 10}, {"SIGUSR2", 12},
    {"SIGVTALRM", 26}, {"SIGWINCH", 28}, {"SIGXCPU", 24}, {"SIGXFSZ", 25},
}};

// SIGRTMIN, SIGRTMIN+1..+15, SIGRTMAX-14..-1, SIGRTMAX: the API's names for 34..64.
std::string realTimeName(int signal) {
  if (signal == kRtMin) {
    return "SIGRTMIN";
  }
  if (signal == kRtMax) {
    return "SIGRTMAX";
  }
  if (signal - kRtMin <= 15) {
    return "SIGRTMIN+" + std::to_string(signal - kRtMin);
  }
  return "SIGRTMAX-" + std::to_string(kRtMax - signal);
}

}  // namespace

std::optional<int> linuxStopSignal(std::string_view name) {
  for (const auto& [n, number] : kClassic) {
    if (n == name) {
      return number;
    }
  }
  for (int s = kRtMin; s <= kRtMax; s++) {
    if (realTimeName(s) == name) {
      return s;
    }
  }
  return std::nullopt;
}

const std::string& linuxStopSignalList() {
  static const std::string list = [] {
    std::string out;
    auto add = [&out](std::string_view n) {
      out += (out.empty() ? "\"" : ", \"") + std::string(n) + "\"";
    };
    for (const auto& entry : kClassic) {
      add(entry.first);
    }
    for (int s = kRtMin; s <= kRtMax; s++) {
      add(realTimeName(s));
    }
    return out;
  }();
  return list;
}

std::string stopSignalName(int signal) {
  for (const auto& [n, number] : kClassic) {
    if (number == signal) {
      return std::string(n);
    }
  }
  if (signal >= kRtMin && signal <= kRtMax) {
    return realTimeName(signal);
  }
  return std::to_string(signal);  // 32, 33: no name of the API's
}

}  // namespace kernelet::agent
