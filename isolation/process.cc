#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <sstream>

#include "isolation/channel.h"
#include "isolation/child_plan.h"
#include "isolation/isolation.h"
#include "sys/syscalls.h"

namespace kernelet::isolation {

namespace {

using Clock = std::chrono::steady_clock;

// What the messages about a start name: the container's rootfs, or for an
// exec into a running one, its command.
std::string startTarget(const ContainerSpec& spec) {
  return spec.rootfs.empty() ? spec.argv.front() : spec.rootfs;
}

std::string describe(const ExitStatus& s) {
  if (s.signal != 0) {
    const char* name = ::sigabbrev_np(s.signal);
    return "killed by signal " + std::to_string(s.signal) +
           (name != nullptr ? std::string(" (SIG") + name + ")" : "");
  }
  return "exited with status " + std::to_string(s.code);
}

int millisUntil(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return static_cast<int>(std::clamp<int64_t>(left.count(), 0, INT32_MAX));
}

// Reaps a child that has ended its side of the handshake (it failed, or the
// pipe closed without an exec) and so is exiting; one still there at the
// deadline is killed first, so this never blocks past it for long.
Result<ExitStatus> reapWithin(Process& proc, Clock::time_point deadline) {
  pollfd p{proc.pidfd(), POLLIN, 0};
  int rc;
  do {
    rc = ::poll(&p, 1, millisUntil(deadline));
  } while (rc < 0 && errno == EINTR);
  if (rc == 0) {
    (void)proc.signal(SIGKILL);
  }
  return proc.wait();
}

// Every signal blocked in this thread while it lives, glibc's internal ones
// included (see sys::blockAllSignals).
class AllSignalsBlocked {
 public:
  AllSignalsBlocked() { sys::blockAllSignals(&saved_); }
  ~AllSignalsBlocked() { sys::restoreSignals(saved_); }
  AllSignalsBlocked(const AllSignalsBlocked&) = delete;
  AllSignalsBlocked& operator=(const AllSignalsBlocked&) = delete;

 private:
  sigset_t saved_{};
};

}  // namespace

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
  // CLONE_CLEAR_SIGHAND: the child starts with default handlers, so none of
  // the agent's can run on its copy of our memory.
  args.flags = plan.clone_flags | CLONE_PIDFD | CLONE_CLEAR_SIGHAND;
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
  pid_t pid;
  int clone_errno;
  {
    // The child inherits this mask: it unblocks signals only once their
    // handlers are back to default (runChild step 1).
    AllSignalsBlocked blocked;
    pid = sys::clone3(args);
    if (pid == 0) {
      runChild(plan, report[1]);
    }
    clone_errno = errno;
  }
  if (own_pid_ns && ::setns(own_pid_ns.get(), CLONE_NEWPID) != 0) {
    // Later children of this thread would land in the container's namespace.
    std::abort();
  }
  if (pid < 0) {
    return sysError(clone_errno, "clone3", spec.rootfs);
  }
  Process proc(pid, UniqueFd(pidfd));
  report_write.reset();

  // The child's messages until it execs, waits for start or fails, each read
  // against one deadline: a child stuck in setup is killed, not waited on.
  auto deadline = Clock::now() + spec.setup_timeout;
  bool execing = false;
  for (;;) {
    pollfd p{report_read.get(), POLLIN, 0};
    int rc = ::poll(&p, 1, millisUntil(deadline));
    if (rc < 0 && errno == EINTR) {
      continue;
    }
    if (rc == 0) {
      (void)proc.signal(SIGKILL);
      (void)proc.wait();
      auto secs = std::chrono::duration<double>(spec.setup_timeout).count();
      std::ostringstream detail;
      detail << "setup timed out after " << secs << " s, before exec of `" << spec.argv.front()
             << "`; the child was killed";
      return makeError("start container", startTarget(spec), detail.str());
    }
    ChildReport r{};
    ssize_t n = rc < 0 ? -1 : ::read(report_read.get(), &r, sizeof r);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n == sizeof r && r.kind == ChildMessage::kExecing) {
      execing = true;
      continue;
    }
    if (n == sizeof r && r.kind == ChildMessage::kReady) {
      return proc;  // waiting for start
    }
    if (n == 0 && execing) {
      return proc;  // the pipe closed with the exec
    }
    // A failure, or the end of file from a child that died in setup (killed,
    // or out of memory): reap it within the deadline.
    int read_errno = errno;
    auto status = reapWithin(proc, deadline);
    if (n == sizeof r && r.kind == ChildMessage::kFailed) {
      Error e{.errnum = r.errnum, .op = r.op, .path = r.path};
      return std::unexpected(std::move(e));
    }
    if (n < 0) {
      return sysError(read_errno, "read report pipe", startTarget(spec));
    }
    std::string how = status ? describe(*status) : status.error().message();
    return makeError("start container", startTarget(spec),
                     n == 0 ? "the child died during setup, before exec: " + how
                            : "lost contact with the child: " + how);
  }
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
