#pragma once
// The steps behind the `kernelet oci` verbs, one function each, usable without
// the command line.

#include <string>

#include "isolation/isolation.h"
#include "isolation/oci_state.h"
#include "sys/result.h"

namespace kernelet::isolation::oci {

struct Created {
  Process process;
  OciState state;
  std::string dir;  // ROOT/ID
};

// Sets the container up from its bundle: state dir, cgroup with limits and
// device rules, the process. With `wait_for_start` the process stops before
// exec until start(). On any failure everything made so far is removed.
Result<Created> create(const std::string& root, const std::string& id, const std::string& bundle,
                       bool wait_for_start);
Result<void> start(const std::string& root, const std::string& id);
Result<OciState> state(const std::string& root, const std::string& id);
// With `all`, every process in the container's cgroup gets the signal.
Result<void> kill(const std::string& root, const std::string& id, int signal, bool all = false);
// Refuses a container that is not stopped unless `force` (which kills it first).
Result<void> remove(const std::string& root, const std::string& id, bool force);

// Parses "KILL", "SIGKILL" or "9".
Result<int> parseSignal(const std::string& s);

}  // namespace kernelet::isolation::oci
