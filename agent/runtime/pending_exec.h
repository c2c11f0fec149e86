#pragma once
// An exec (an exec probe, kubectl exec) whose child is still setting up
// when it is handed back: the loop waits for the child's report with the
// setup deadline (isolation::watchStart) and then for its exit, and exitFd()
// becomes readable once either ended - a setup that failed or stalled reads
// as the error from reap(). So an exec into a container that starves its
// child of CPU never holds up the agent's loop.

#include <functional>
#include <memory>
#include <optional>

#include "agent/runtime/runtime.h"
#include "isolation/isolation.h"
#include "sys/event_loop.h"
#include "sys/timer_queue.h"
#include "sys/unique_fd.h"

namespace kernelet::agent::runtime {

class PendingExec : public ExecProcess {
 public:
  // `pending` from isolation::beginStart of an execSpec; `started` (may be
  // empty) is ExecIo::started.
  static Result<std::unique_ptr<ExecProcess>> watch(
      EventLoop& loop, TimerQueue& timers, isolation::PendingStart pending,
      std::function<void(Result<void>)> started = nullptr);
  // Kills and reaps the child, whether it is setting up or running.
  ~PendingExec() override;

  int exitFd() const override { return ended_.get(); }
  Result<int> reap() override;

 private:
  PendingExec(EventLoop& loop, UniqueFd ended, std::function<void(Result<void>)> on_started)
      : loop_(loop), ended_(std::move(ended)), on_started_(std::move(on_started)) {}
  void started(Result<isolation::Process> proc);
  void end();

  EventLoop& loop_;
  UniqueFd ended_;  // an eventfd: readable once the run is over
  std::function<void(Result<void>)> on_started_;
  std::unique_ptr<isolation::StartWatch> watch_;
  std::optional<isolation::Process> proc_;
  std::optional<Error> failed_;
  bool watching_exit_ = false, reaped_ = false;
};

}  // namespace kernelet::agent::runtime
