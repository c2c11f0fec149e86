// A PendingStart on an event loop: the agent's loop keeps serving every other
// pod while a container sets up.
#include <sys/epoll.h>

#include "isolation/isolation.h"

namespace kernelet::isolation {

Result<std::unique_ptr<StartWatch>> watchStart(EventLoop& loop, TimerQueue& timers,
                                               PendingStart pending, StartWatch::Done done) {
  if (pending.done()) {
    return makeError("watch start", "", "the start has already finished");
  }
  std::unique_ptr<StartWatch> w(new StartWatch(loop, timers, std::move(pending), std::move(done)));
  TRY_VOID(w->arm());
  return w;
}

StartWatch::~StartWatch() {
  disarm();
  // pending_'s destructor kills and reaps a child that is still setting up.
}

// Watches what the pending start waits on now: its fd (which changes from the
// report pipe to the pidfd when the child is being reaped) and its deadline.
Result<void> StartWatch::arm() {
  if (pending_.fd() != watched_fd_) {
    if (watched_fd_ >= 0) {
      loop_.remove(watched_fd_);
    }
    watched_fd_ = -1;
    TRY_VOID(loop_.add(pending_.fd(), EPOLLIN, [this](uint32_t) { step(); }));
    watched_fd_ = pending_.fd();
  }
  if (pending_.deadline() != timer_at_) {
    timers_.cancel(timer_);
    timer_ = 0;
    timer_at_ = pending_.deadline();
    if (timer_at_ != PendingStart::Clock::time_point::max()) {
      timer_ = timers_.at(timer_at_, [this, life = std::weak_ptr<char>(life_)] {
        if (life.expired()) {
          return;
        }
        timer_ = 0;  // it ran: nothing to cancel
        timer_at_ = {};
        step();
      });
    }
  }
  return {};
}

void StartWatch::disarm() {
  if (watched_fd_ >= 0) {
    loop_.remove(watched_fd_);
    watched_fd_ = -1;
  }
  timers_.cancel(timer_);
  timer_ = 0;
}

void StartWatch::step() {
  Result<std::optional<Process>> r = pending_.poll();
  Result<Process> outcome;
  if (!r) {
    outcome = std::unexpected(std::move(r.error()));
  } else if (*r) {
    outcome = std::move(**r);
  } else if (auto armed = arm(); !armed) {
    // Cannot wait for it any more: give up on the start, as a timeout would.
    pending_.cancel();
    outcome = std::unexpected(withContext(armed.error(), "start container"));
  } else {
    return;  // not yet
  }
  disarm();
  // Last: `done` may destroy this watch.
  Done done = std::move(done_);
  done(std::move(outcome));
}

}  // namespace kernelet::isolation
