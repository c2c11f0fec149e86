#include <fcntl.h>
#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>

#include "isolation/channel.h"
#include "isolation/child_plan.h"
#include "isolation/isolation.h"
#include "sys/syscalls.h"

namespace kernelet::isolation {

Result<Process> start(const ContainerSpec& spec) {
  TRY(ChildPlan plan, buildPlan(spec));
  int report[2];
  if (::pipe2(report, O_CLOEXEC) != 0) {
    return sysError("pipe2");
  }
  UniqueFd report_read(report[0]);
  UniqueFd report_write(report[1]);

  int pidfd = -1;
  clone_args args{};
  args.flags = plan.clone_flags | CLONE_PIDFD;
  args.pidfd = reinterpret_cast<uint64_t>(&pidfd);
  args.exit_signal = SIGCHLD;
  if (spec.cgroup_fd >= 0) {
    // Born in its cgroup: no window in which it runs unlimited.
    args.flags |= CLONE_INTO_CGROUP;
    args.cgroup = static_cast<uint64_t>(spec.cgroup_fd);
  }
  // Joining a pid namespace: this thread's children are born in it while the
  // thread has entered it; the thread itself stays where it is and comes back
  // right after (setns into one's own active pid namespace is always allowed).
  UniqueFd own_pid_ns;
  if (plan.pid_ns) {
    own_pid_ns.reset(::open("/proc/thread-self/ns/pid", O_RDONLY | O_CLOEXEC));
    if (!own_pid_ns) {
      return sysError("open", "/proc/thread-self/ns/pid");
    }
    if (::setns(plan.pid_ns.get(), CLONE_NEWPID) != 0) {
      return sysError("setns", plan.pid_ns_path);
    }
  }
  pid_t pid = sys::clone3(args);
  if (pid == 0) {
    runChild(plan, report[1]);
  }
  int clone_errno = errno;
  if (own_pid_ns && ::setns(own_pid_ns.get(), CLONE_NEWPID) != 0) {
    // Later children of this thread would land in the container's namespace.
    std::abort();
  }
  if (pid < 0) {
    return sysError(clone_errno, "clone3", spec.rootfs);
  }
  Process proc(pid, UniqueFd(pidfd));
  report_write.reset();

  ChildReport r{};
  ssize_t n;
  do {
    n = ::read(report_read.get(), &r, sizeof r);
  } while (n < 0 && errno == EINTR);
  if (n == 0 || (n == sizeof r && r.kind == ChildMessage::kReady)) {
    return proc;  // exec'ed (the pipe closed with it), or waiting for start
  }
  // A failed setup: the child has exited or is about to; reap it.
  (void)proc.wait();
  if (n != sizeof r) {
    return makeError("start container", spec.rootfs, "lost contact with the child");
  }
  Error e{.errnum = r.errnum, .op = r.op, .path = r.path};
  return std::unexpected(std::move(e));
}

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
