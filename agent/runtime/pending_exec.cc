#include "agent/runtime/pending_exec.h"

#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>

namespace kernelet::agent::runtime {

Result<std::unique_ptr<ExecProcess>> PendingExec::watch(EventLoop& loop, TimerQueue& timers,
                                                        isolation::PendingStart pending,
                                                        std::function<void(Result<void>)> started) {
  UniqueFd ended(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!ended) {
    return sysError("eventfd", "exec");  // `pending` goes with this frame: its child is killed
  }
  std::unique_ptr<PendingExec> e(new PendingExec(loop, std::move(ended), std::move(started)));
  PendingExec* raw = e.get();
  TRY(e->watch_,
      isolation::watchStart(loop, timers, std::move(pending),
                            [raw](Result<isolation::Process> p) { raw->started(std::move(p)); }));
  return std::unique_ptr<ExecProcess>(std::move(e));
}

PendingExec::~PendingExec() {
  watch_.reset();  // a child still setting up is killed and reaped
  if (watching_exit_) {
    loop_.remove(proc_->pidfd());
  }
  if (proc_ && !reaped_) {
    // A run given up (its probe timed out or was cancelled): nothing of it may
    // stay, and a failed kill means it is gone already.
    (void)proc_->signal(SIGKILL);
    (void)proc_->wait();
  }
}

void PendingExec::started(Result<isolation::Process> proc) {
  // The watch has done its work; it is destroyed with this object, as
  // watchStart allows (not here: we are inside its callback).
  if (proc) {
    proc_ = std::move(*proc);
    if (auto r = loop_.add(proc_->pidfd(), EPOLLIN,
                           [this](uint32_t) {
                             loop_.remove(proc_->pidfd());
                             watching_exit_ = false;
                             end();
                           });
        !r) {
      failed_ = withContext(std::move(r.error()), "watch exec");
    } else {
      watching_exit_ = true;
    }
  } else {
    failed_ = std::move(proc.error());
  }
  if (failed_) {
    end();
  }
  if (on_started_) {
    // Last: the callback may destroy this object.
    auto cb = std::move(on_started_);
    cb(failed_ ? Result<void>(std::unexpected(*failed_)) : Result<void>{});
  }
}

void PendingExec::end() {
  uint64_t one = 1;
  (void)!::write(ended_.get(), &one, sizeof one);  // an eventfd write only fails on overflow
}

Result<int> PendingExec::reap() {
  if (failed_) {
    return std::unexpected(*failed_);  // the destructor kills what may still run
  }
  if (!proc_) {
    return makeError("exec", "", "the process has not started yet");
  }
  reaped_ = true;
  TRY(isolation::ExitStatus s, proc_->wait());
  return s.shellStatus();
}

}  // namespace kernelet::agent::runtime
