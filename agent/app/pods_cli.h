#pragma once
// `kernelet pods` and `kernelet logs`: what the local agent runs, read from the
// status files it writes and the CRI log files, printed like kubectl prints
// them.

#include <ctime>
#include <iosfwd>
#include <string>

#include "agent/status/pod_status.h"

namespace kernelet::agent {

// kubectl's STATUS column: Init:1/2, Init:CrashLoopBackOff, CrashLoopBackOff,
// ContainerCreating, Running, Completed, Error, OOMKilled, OutOfcpu, ...
std::string displayStatus(const PodSummary& pod);
// kubectl's AGE: 45s, 3m12s, 10m, 5h, 3d.
std::string humanAge(int64_t seconds);

// The table of every pod under ROOT/pods (NAMESPACE NAME READY STATUS RESTARTS AGE IP).
int listPods(const std::string& root_dir, std::ostream& out, std::ostream& err, time_t now);

// The message lines of a CRI log file, without timestamps and stream tags
// (partial lines joined), as `kubectl logs` shows them.
std::string criLogMessages(const std::string& cri_log);

// kubectl logs' flags (the same names and defaults).
struct LogsRequest {
  std::string root_dir, pod_log_dir;
  std::string namespace_ = "default";
  std::string pod, container;
  bool previous = false;
  bool follow = false;      // -f: until the container stops
  bool timestamps = false;  // each line prefixed with its RFC3339Nano time
  int64_t tail = -1;        // the last N lines; -1: all
  std::string since;        // a Go duration (5s, 2m, 1h30m): lines newer than that
  std::string since_time;   // RFC 3339: lines from then on
  int64_t limit_bytes = 0;  // at most this much output; 0: no cap
};
// Reads through the same code as the node server's /containerLogs
// (agent/logs); a followed log ends when ROOT/pods/UID/status.json says the
// container's run no longer runs.
int printLogs(const LogsRequest& req, std::ostream& out, std::ostream& err);

}  // namespace kernelet::agent
