#pragma once
// isolation: one container process from a ContainerSpec, started in-process
// with clone3 (no runtime binary in between), observed through its pidfd.

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "isolation/container_spec.h"
#include "sys/result.h"
#include "sys/unique_fd.h"

namespace kernelet::isolation {

struct ExitStatus {
  int code = 0;    // exit code when it exited
  int signal = 0;  // the signal that killed it, else 0
  // The shell's convention, which `crun run` also exits with: code, or 128 + signal.
  int shellStatus() const { return signal != 0 ? 128 + signal : code; }
};

class Process {
 public:
  Process() = default;
  Process(pid_t pid, UniqueFd pidfd) : pid_(pid), pidfd_(std::move(pidfd)) {}

  pid_t pid() const { return pid_; }
  // Readable (EPOLLIN) when the process has exited: put it on an EventLoop.
  int pidfd() const { return pidfd_.get(); }

  Result<void> signal(int sig) const;
  // Reaps the process: blocks until it exits.
  Result<ExitStatus> wait();
  // Reaps it if it has exited, without blocking.
  Result<std::optional<ExitStatus>> tryWait();

 private:
  pid_t pid_ = -1;
  UniqueFd pidfd_;
};

// Starts the container. Returns once the command was exec'ed (or, with
// spec.start_fifo, once setup is done and it waits for start). A failure in the
// child comes back as its error, e.g. exec `/bin/nope`: No such file or
// directory; the child is then reaped and nothing of it is left.
Result<Process> start(const ContainerSpec& spec);

// What `crun exec` runs: `argv` in the running container `pid` that `spec`
// started - its namespaces joined, as its user, with its capabilities, no_new_privs
// and seccomp profile. Set the stdio and cgroup_fd, then start() it.
ContainerSpec execSpec(const ContainerSpec& spec, pid_t pid, std::vector<std::string> argv);

}  // namespace kernelet::isolation
