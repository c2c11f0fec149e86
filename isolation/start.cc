// Parent side of a container start: clone3, then the child's report read
// without blocking (PendingStart), and start(), the blocking form on top.
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
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

using Clock = PendingStart::Clock;

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
  if (deadline == Clock::time_point::max()) {
    return -1;
  }
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  // Rounded up: a wake-up just before the deadline would only poll again.
  return static_cast<int>(std::clamp<int64_t>(left.count() + 1, 0, INT32_MAX));
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

Result<PendingStart> beginStart(const ContainerSpec& spec) {
  TRY(ChildPlan plan, buildPlan(spec));
  int report[2];
  if (::pipe2(report, O_CLOEXEC) != 0) {
    return sysError("pipe2");
  }
  UniqueFd report_read(report[0]);
  UniqueFd report_write(report[1]);
  // Only our end: the child's writes stay blocking (and one report is far
  // below PIPE_BUF, so it is written whole).
  if (::fcntl(report[0], F_SETFL, O_NONBLOCK) != 0) {
    return sysError("fcntl O_NONBLOCK", "report pipe");
  }

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
  PendingStart p;
  p.proc_ = Process(pid, UniqueFd(pidfd));
  p.report_ = std::move(report_read);
  p.phase_ = PendingStart::Phase::kSetup;
  p.timeout_ = spec.setup_timeout;
  p.deadline_ = Clock::now() + spec.setup_timeout;
  p.target_ = startTarget(spec);
  p.command_ = spec.argv.front();
  return p;
}

PendingStart::PendingStart(PendingStart&& other) noexcept { *this = std::move(other); }

PendingStart& PendingStart::operator=(PendingStart&& other) noexcept {
  if (this != &other) {
    cancel();
    phase_ = std::exchange(other.phase_, Phase::kDone);
    proc_ = std::move(other.proc_);
    report_ = std::move(other.report_);
    deadline_ = other.deadline_;
    timeout_ = other.timeout_;
    target_ = std::move(other.target_);
    command_ = std::move(other.command_);
    execing_ = other.execing_;
    killed_ = other.killed_;
    with_status_ = other.with_status_;
    error_ = std::move(other.error_);
  }
  return *this;
}

int PendingStart::fd() const {
  switch (phase_) {
    case Phase::kSetup:
      return report_.get();
    case Phase::kReaping:
      return proc_.pidfd();
    case Phase::kDone:
      break;
  }
  return -1;
}

Clock::time_point PendingStart::deadline() const {
  // A killed child is only reaped: its pidfd says when, no timer needed.
  return phase_ == Phase::kDone || killed_ ? Clock::time_point::max() : deadline_;
}

Result<std::optional<Process>> PendingStart::poll() {
  if (phase_ == Phase::kSetup) {
    TRY(std::optional<Process> started, readReports());
    if (started) {
      return started;
    }
  }
  if (phase_ == Phase::kSetup && Clock::now() >= deadline_) {
    auto secs = std::chrono::duration<double>(timeout_).count();
    std::ostringstream detail;
    detail << "setup timed out after " << secs << " s, before exec of `" << command_
           << "`; the child was killed";
    startReaping(makeError("start container", target_, detail.str()).error(), true);
  }
  if (phase_ == Phase::kReaping) {
    if (!killed_ && Clock::now() >= deadline_) {
      // It ended its side of the handshake but is still there at the
      // deadline: stuck on its way out, so it is killed like a stuck setup.
      (void)proc_.signal(SIGKILL);  // it may have died meanwhile: the reap tells
      killed_ = true;
    }
    return reap();
  }
  if (phase_ == Phase::kDone) {
    return makeError("start container", target_, "poll() after the start finished");
  }
  return std::optional<Process>{};
}

// The child's messages until it execs, waits for start or fails. The pipe
// closes both when the child execs and when it dies, so end of file is a
// start only after kExecing.
Result<std::optional<Process>> PendingStart::readReports() {
  for (;;) {
    ChildReport r{};
    ssize_t n = ::read(report_.get(), &r, sizeof r);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0 && errno == EAGAIN) {
      return std::optional<Process>{};  // not yet
    }
    if (n == sizeof r && r.kind == ChildMessage::kExecing) {
      execing_ = true;
      continue;
    }
    if ((n == sizeof r && r.kind == ChildMessage::kReady) || (n == 0 && execing_)) {
      // Waiting for start, or the pipe closed with the exec.
      phase_ = Phase::kDone;
      report_.reset();
      return std::optional<Process>(std::move(proc_));
    }
    if (n == sizeof r && r.kind == ChildMessage::kFailed) {
      // The child exits right after its report: reaped without a kill.
      startReaping(Error{.errnum = r.errnum, .op = r.op, .path = r.path}, false);
    } else if (n < 0) {
      // Without the pipe we cannot know how setup goes: the child must go.
      startReaping(sysError("read report pipe", target_).error(), true);
    } else if (n > 0) {
      startReaping(makeError("start container", target_, "lost contact with the child").error(),
                   true);
      with_status_ = true;
    } else {
      // End of file from a child that died in setup (killed, out of memory):
      // described with its exit status once reaped.
      startReaping(std::nullopt, false);
    }
    return std::optional<Process>{};
  }
}

void PendingStart::startReaping(std::optional<Error> error, bool kill) {
  phase_ = Phase::kReaping;
  error_ = std::move(error);
  if (kill) {
    (void)proc_.signal(SIGKILL);  // it may have died meanwhile: the reap tells
    killed_ = true;
  }
}

Result<std::optional<Process>> PendingStart::reap() {
  TRY(std::optional<ExitStatus> status, proc_.tryWait());
  if (!status) {
    return std::optional<Process>{};
  }
  phase_ = Phase::kDone;
  report_.reset();
  proc_ = Process();
  if (!error_) {
    return makeError("start container", target_,
                     "the child died during setup, before exec: " + describe(*status));
  }
  if (with_status_) {
    error_->detail += ": " + describe(*status);
  }
  return std::unexpected(std::move(*error_));
}

void PendingStart::cancel() {
  if (phase_ == Phase::kDone) {
    return;
  }
  // SIGKILL ends even a child in a frozen cgroup or in setup; wait() then
  // only waits for the kernel to tear it down.
  (void)proc_.signal(SIGKILL);  // it may have died meanwhile: wait() reaps it either way
  (void)proc_.wait();           // nothing to report it to: the start is abandoned
  phase_ = Phase::kDone;
  report_.reset();
  proc_ = Process();
}

Result<Process> start(const ContainerSpec& spec) {
  TRY(PendingStart p, beginStart(spec));
  for (;;) {
    pollfd pfd{p.fd(), POLLIN, 0};
    int rc = ::poll(&pfd, 1, millisUntil(p.deadline()));
    if (rc < 0 && errno != EINTR) {
      return sysError("poll", "report pipe");
    }
    TRY(std::optional<Process> proc, p.poll());
    if (proc) {
      return std::move(*proc);
    }
  }
}

}  // namespace kernelet::isolation
