#pragma once
// Timers on an EventLoop from one timerfd: the agent's back-offs and grace
// periods wait here instead of sleeping or polling. Single-threaded, like the loop.

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>

#include "sys/event_loop.h"
#include "sys/result.h"
#include "sys/unique_fd.h"

namespace kernelet {

class TimerQueue {
 public:
  using Clock = std::chrono::steady_clock;
  using Id = uint64_t;

  // Watches its timerfd on `loop`, which must outlive the queue.
  static Result<std::unique_ptr<TimerQueue>> create(EventLoop& loop);
  ~TimerQueue();
  TimerQueue(const TimerQueue&) = delete;
  TimerQueue& operator=(const TimerQueue&) = delete;

  // Runs `cb` from the loop once `when` has passed. Ids are never 0, so 0 can
  // mean "no timer".
  Id at(Clock::time_point when, std::function<void()> cb);
  Id after(Clock::duration d, std::function<void()> cb) {
    return at(Clock::now() + d, std::move(cb));
  }
  // Cancelling a timer that already ran (or 0) is fine.
  void cancel(Id id);
  size_t size() const { return by_id_.size(); }

 private:
  TimerQueue(EventLoop& loop, UniqueFd fd) : loop_(loop), fd_(std::move(fd)) {}
  void fire();
  void arm();
  using Queue = std::multimap<Clock::time_point, std::pair<Id, std::function<void()>>>;
  EventLoop& loop_;
  UniqueFd fd_;
  Queue queue_;
  std::map<Id, Queue::iterator> by_id_;
  Id next_id_ = 1;
};

}  // namespace kernelet
