#include "sys/timer_queue.h"

#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <vector>

namespace kernelet {

Result<std::unique_ptr<TimerQueue>> TimerQueue::create(EventLoop& loop) {
  int fd = ::timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
  if (fd < 0) {
    return sysError("timerfd_create");
  }
  std::unique_ptr<TimerQueue> q(new TimerQueue(loop, UniqueFd(fd)));
  TimerQueue* self = q.get();
  TRY_VOID(loop.add(fd, EPOLLIN, [self](uint32_t) { self->fire(); }));
  return q;
}

TimerQueue::~TimerQueue() { loop_.remove(fd_.get()); }

TimerQueue::Id TimerQueue::at(Clock::time_point when, std::function<void()> cb) {
  Id id = next_id_++;
  auto it = queue_.emplace(when, std::make_pair(id, std::move(cb)));
  by_id_[id] = it;
  if (it == queue_.begin()) {
    arm();
  }
  return id;
}

void TimerQueue::cancel(Id id) {
  auto it = by_id_.find(id);
  if (it == by_id_.end()) {
    return;
  }
  bool first = it->second == queue_.begin();
  queue_.erase(it->second);
  by_id_.erase(it);
  if (first) {
    arm();
  }
}

// Sets the timerfd to the earliest deadline (absolute, so a late arm still fires
// at once), or disarms it when nothing is queued.
void TimerQueue::arm() {
  itimerspec spec{};
  if (!queue_.empty()) {
    auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                  queue_.begin()->first.time_since_epoch())
                  .count();
    // steady_clock is CLOCK_MONOTONIC on Linux; 0 would disarm, so at least 1 ns.
    ns = std::max<int64_t>(ns, 1);
    spec.it_value.tv_sec = ns / 1000000000;
    spec.it_value.tv_nsec = ns % 1000000000;
  }
  ::timerfd_settime(fd_.get(), TFD_TIMER_ABSTIME, &spec, nullptr);
}

void TimerQueue::fire() {
  uint64_t expirations;
  while (::read(fd_.get(), &expirations, sizeof expirations) > 0) {
  }
  // Take the due timers out first: a callback may add or cancel timers.
  std::vector<std::function<void()>> due;
  auto now = Clock::now();
  while (!queue_.empty() && queue_.begin()->first <= now) {
    auto it = queue_.begin();
    due.push_back(std::move(it->second.second));
    by_id_.erase(it->second.first);
    queue_.erase(it);
  }
  arm();
  for (auto& cb : due) {
    cb();
  }
}

}  // namespace kernelet
