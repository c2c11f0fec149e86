// A started container process, observed and reaped through its pidfd.
#include <sys/wait.h>

#include <string>

#include "isolation/isolation.h"
#include "sys/syscalls.h"

namespace kernelet::isolation {

Result<void> Process::signal(int sig) const {
  if (sys::pidfdSendSignal(pidfd_.get(), sig) != 0) {
    return sysError("kill", "pid " + std::to_string(pid_));
  }
  return {};
}

static ExitStatus fromSiginfo(const siginfo_t& info) {
  ExitStatus s;
  if (info.si_code == CLD_EXITED) {
    s.code = info.si_status;
  } else {
    s.signal = info.si_status;
  }
  return s;
}

Result<ExitStatus> Process::wait() {
  siginfo_t info{};
  while (::waitid(P_PIDFD, static_cast<id_t>(pidfd_.get()), &info, WEXITED) != 0) {
    if (errno != EINTR) {
      return sysError("waitid", "pid " + std::to_string(pid_));
    }
  }
  return fromSiginfo(info);
}

Result<std::optional<ExitStatus>> Process::tryWait() {
  siginfo_t info{};
  if (::waitid(P_PIDFD, static_cast<id_t>(pidfd_.get()), &info, WEXITED | WNOHANG) != 0) {
    return sysError("waitid", "pid " + std::to_string(pid_));
  }
  if (info.si_pid == 0) {
    return std::optional<ExitStatus>{};
  }
  return std::optional<ExitStatus>(fromSiginfo(info));
}

}  // namespace kernelet::isolation
