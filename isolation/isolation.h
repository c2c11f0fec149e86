#pragma once
// isolation: one container process from a ContainerSpec, started in-process
// with clone3 (no runtime binary in between), observed through its pidfd.

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "isolation/container_spec.h"
#include "sys/event_loop.h"
#include "sys/result.h"
#include "sys/timer_queue.h"
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

// A container start in progress: clone3 is done and the child is setting up.
// Nothing here blocks; the caller waits for fd() to become readable (or for
// deadline()) and then calls poll(), which reads what the child reported.
//
//   TRY(PendingStart p, beginStart(spec));
//   ... when fd() is readable or deadline() has passed:
//   TRY(std::optional<Process> proc, p.poll());  // nullopt: not yet, wait again
//
// fd() is the report pipe while the child sets up; once the child has failed
// (or the deadline killed it) it becomes the child's pidfd, so that the child
// is reaped without waiting for it: watch the new fd after every poll().
// Past spec.setup_timeout the child is SIGKILLed and poll() fails with
// "setup timed out". Destroying (or cancel()ing) a start that has not finished
// kills and reaps the child: no process, fd or mount of it is left (the
// cgroup it was born in is the caller's, as in start()).
class PendingStart {
 public:
  using Clock = std::chrono::steady_clock;

  PendingStart() = default;
  PendingStart(PendingStart&& other) noexcept;
  PendingStart& operator=(PendingStart&& other) noexcept;
  ~PendingStart() { cancel(); }

  // The descriptor to wait on (EPOLLIN); -1 once the start is over.
  int fd() const;
  // When poll() must be called even if fd() stayed quiet: the setup deadline,
  // or never (max()) once the child was killed and is only being reaped.
  Clock::time_point deadline() const;
  pid_t pid() const { return proc_.pid(); }
  bool done() const { return phase_ == Phase::kDone; }

  // Reads the child's messages without blocking. nullopt: not yet. A Process:
  // it exec'ed (or, with start_fifo, waits for start). An error: the child's
  // own (exec `/bin/nope`: No such file or directory), a death in setup, or
  // the timeout; the child is reaped by then. After a result, done() is true.
  Result<std::optional<Process>> poll();
  // Kills and reaps the child of an unfinished start (the kernel tears a
  // SIGKILLed child down promptly; this waits for that). No-op when done().
  void cancel();

 private:
  friend Result<PendingStart> beginStart(const ContainerSpec& spec);
  enum class Phase { kSetup, kReaping, kDone };
  Result<std::optional<Process>> readReports();
  Result<std::optional<Process>> reap();
  void startReaping(std::optional<Error> error, bool kill);

  Phase phase_ = Phase::kDone;
  Process proc_;
  UniqueFd report_;  // read end of the report pipe, O_NONBLOCK
  Clock::time_point deadline_{};
  std::chrono::milliseconds timeout_{0};
  std::string target_;  // the rootfs, or for an exec its command: what messages name
  std::string command_;
  bool execing_ = false;
  bool killed_ = false;
  // Reaping: the error to return once reaped; none means "the child died in
  // setup", described with its exit status (as with_status_ adds it to error_).
  std::optional<Error> error_;
  bool with_status_ = false;
};

// Clones the child and returns at once; errors here are the parent's own
// (the spec is invalid, clone3 failed) and leave nothing behind.
Result<PendingStart> beginStart(const ContainerSpec& spec);

// Starts the container. Returns once the command was exec'ed (or, with
// spec.start_fifo, once setup is done and it waits for start). A failure in the
// child comes back as its error, e.g. exec `/bin/nope`: No such file or
// directory; the child is then reaped and nothing of it is left. Blocks the
// calling thread for up to spec.setup_timeout: for the `kernelet oci` CLI and
// tests; an event loop uses beginStart() and watchStart().
Result<Process> start(const ContainerSpec& spec);

// A PendingStart driven by an event loop: its fd watched on `loop`, its
// deadline on `timers`, `done` called once, from the loop, with the started
// Process or the error. `done` may destroy the returned handle. Destroying
// the handle before `done` ran cancels the start (the child is killed and
// reaped) and `done` never runs. loop and timers must outlive the handle.
class StartWatch {
 public:
  using Done = std::function<void(Result<Process>)>;
  ~StartWatch();
  StartWatch(const StartWatch&) = delete;
  StartWatch& operator=(const StartWatch&) = delete;
  pid_t pid() const { return pending_.pid(); }

 private:
  friend Result<std::unique_ptr<StartWatch>> watchStart(EventLoop& loop, TimerQueue& timers,
                                                        PendingStart pending, Done done);
  StartWatch(EventLoop& loop, TimerQueue& timers, PendingStart pending, Done done)
      : loop_(loop), timers_(timers), pending_(std::move(pending)), done_(std::move(done)) {}
  Result<void> arm();
  void disarm();
  void step();

  EventLoop& loop_;
  TimerQueue& timers_;
  PendingStart pending_;
  Done done_;
  int watched_fd_ = -1;
  TimerQueue::Id timer_ = 0;
  PendingStart::Clock::time_point timer_at_{};
  // Timer callbacks hold this weakly: TimerQueue takes due timers out before
  // running them, so cancel() cannot stop one that is due in the same round
  // as the callback that destroys this object.
  std::shared_ptr<char> life_ = std::make_shared<char>();
};

Result<std::unique_ptr<StartWatch>> watchStart(EventLoop& loop, TimerQueue& timers,
                                               PendingStart pending, StartWatch::Done done);

// What `crun exec` runs: `argv` in the running container `pid` that `spec`
// started - its namespaces joined, as its user, with its capabilities, no_new_privs
// and seccomp profile. Set the stdio and cgroup_fd, then start() it.
ContainerSpec execSpec(const ContainerSpec& spec, pid_t pid, std::vector<std::string> argv);

}  // namespace kernelet::isolation
