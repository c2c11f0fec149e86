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

struct CreateOptions {
  // Stop the process before exec until start() (OCI create); else exec at once.
  bool wait_for_start = false;
  // Where the cgroup v2 hierarchy lacks a controller the limits need, run
  // without those limits and warn on stderr, instead of refusing.
  bool limits_unenforced = false;
  // --console-socket: the AF_UNIX socket a process.terminal's master is sent
  // to (runc's and crun's contract); required with a terminal, refused
  // without one.
  std::string console_socket;
};

// Sets the container up from its bundle: state dir, cgroup with limits and
// device rules, the process. On any failure everything made so far is removed.
Result<Created> create(const std::string& root, const std::string& id, const std::string& bundle,
                       const CreateOptions& options = {});
Result<void> start(const std::string& root, const std::string& id);
Result<OciState> state(const std::string& root, const std::string& id);
// With `all`, every process in the container's cgroup gets the signal.
Result<void> kill(const std::string& root, const std::string& id, int signal, bool all = false);
// Refuses a container that is not stopped unless `force` (which kills it first).
Result<void> remove(const std::string& root, const std::string& id, bool force);

// Parses "KILL", "SIGKILL" or "9".
Result<int> parseSignal(const std::string& s);

}  // namespace kernelet::isolation::oci
