#pragma once
// Work handed to an EventLoop from other threads: post() from anywhere, the
// closures run on the loop's thread, in order, woken through an eventfd.

#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "sys/event_loop.h"
#include "sys/result.h"
#include "sys/unique_fd.h"

namespace kernelet {

class LoopQueue {
 public:
  static Result<std::unique_ptr<LoopQueue>> create(EventLoop& loop);
  ~LoopQueue();
  LoopQueue(const LoopQueue&) = delete;
  LoopQueue& operator=(const LoopQueue&) = delete;

  void post(std::function<void()> fn);

 private:
  LoopQueue(EventLoop& loop, UniqueFd fd) : loop_(loop), fd_(std::move(fd)) {}
  void drain();
  EventLoop& loop_;
  UniqueFd fd_;
  std::mutex mu_;
  std::vector<std::function<void()>> pending_;  // guarded by mu_
};

}  // namespace kernelet
