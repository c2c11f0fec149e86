#pragma once
// What `kernelet oci` remembers of a container between invocations, in
// ROOT/ID/state.json (ROOT defaults to /run/kernelet/oci, like runc's /run/runc).

#include <sys/types.h>

#include <map>
#include <string>

#include "sys/result.h"

namespace kernelet::isolation {

struct OciState {
  std::string oci_version;
  std::string id;
  std::string bundle;
  std::string rootfs;
  pid_t pid = 0;
  uint64_t start_time = 0;  // /proc/PID/stat field 22: tells a reused pid apart
  std::string cgroup;       // absolute path of the container's cgroup
  std::string created;      // RFC 3339
  std::map<std::string, std::string> annotations;

  // "created", "running" or "stopped", from the process and the start FIFO.
  std::string status(const std::string& dir) const;
  // The OCI state JSON that `state` prints.
  std::string toJson(const std::string& dir) const;
};

// The start time of a live process, or 0 when there is none with that pid.
uint64_t processStartTime(pid_t pid);

Result<void> saveState(const std::string& dir, const OciState& s);
Result<OciState> loadState(const std::string& dir);
// The same from the text of a state.json; `where` names it in errors.
Result<OciState> parseState(const std::string& json, const std::string& where);

}  // namespace kernelet::isolation
