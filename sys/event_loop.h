#pragma once
// A minimal epoll loop: the agent and the runtime wait on fds (pidfds, inotify,
// pipes, sockets) instead of polling. Single-threaded: callbacks run in run().

#include <chrono>
#include <functional>
#include <map>
#include <memory>

#include "sys/result.h"
#include "sys/unique_fd.h"

namespace kernelet {

class EventLoop {
 public:
  using Callback = std::function<void(uint32_t events)>;

  static Result<EventLoop> create();

  // Watches fd for `events` (EPOLLIN, ...). The fd must outlive the watch.
  Result<void> add(int fd, uint32_t events, Callback cb);
  void remove(int fd);
  bool empty() const { return callbacks_.empty(); }

  // Waits at most `timeout` (negative: forever) and runs the callbacks of ready fds.
  // Returns how many ran.
  Result<int> runOnce(std::chrono::milliseconds timeout);
  // Runs until nothing is watched, stop() is called, or `deadline` passes.
  Result<void> run(std::chrono::steady_clock::time_point deadline =
                       std::chrono::steady_clock::time_point::max());
  void stop() { stopped_ = true; }

 private:
  explicit EventLoop(UniqueFd epfd) : epfd_(std::move(epfd)) {}
  UniqueFd epfd_;
  // Shared so a callback that removes itself does not destroy the running closure.
  std::map<int, std::shared_ptr<Callback>> callbacks_;
  bool stopped_ = false;
};

}  // namespace kernelet
