#include "sys/event_loop.h"

#include <sys/epoll.h>

#include <algorithm>

namespace kernelet {

Result<EventLoop> EventLoop::create() {
  int fd = ::epoll_create1(EPOLL_CLOEXEC);
  if (fd < 0) {
    return sysError("epoll_create1");
  }
  return EventLoop(UniqueFd(fd));
}

Result<void> EventLoop::add(int fd, uint32_t events, Callback cb) {
  epoll_event ev{.events = events, .data = {.fd = fd}};
  if (::epoll_ctl(epfd_.get(), EPOLL_CTL_ADD, fd, &ev) != 0) {
    return sysError("epoll_ctl add", "fd " + std::to_string(fd));
  }
  callbacks_[fd] = std::make_shared<Callback>(std::move(cb));
  return {};
}

void EventLoop::remove(int fd) {
  if (callbacks_.erase(fd) > 0) {
    ::epoll_ctl(epfd_.get(), EPOLL_CTL_DEL, fd, nullptr);
  }
}

Result<int> EventLoop::runOnce(std::chrono::milliseconds timeout) {
  epoll_event events[32];
  int n = ::epoll_wait(epfd_.get(), events, 32, static_cast<int>(timeout.count()));
  if (n < 0) {
    if (errno == EINTR) {
      return 0;
    }
    return sysError("epoll_wait");
  }
  int ran = 0;
  for (int i = 0; i < n; i++) {
    auto it = callbacks_.find(events[i].data.fd);
    if (it == callbacks_.end()) {
      continue;  // removed by an earlier callback of this round
    }
    std::shared_ptr<Callback> cb = it->second;
    (*cb)(events[i].events);
    ran++;
  }
  return ran;
}

Result<void> EventLoop::run(std::chrono::steady_clock::time_point deadline) {
  using namespace std::chrono;
  stopped_ = false;
  while (!stopped_ && !callbacks_.empty()) {
    milliseconds wait(-1);
    if (deadline != steady_clock::time_point::max()) {
      auto left = duration_cast<milliseconds>(deadline - steady_clock::now());
      if (left.count() <= 0) {
        return {};
      }
      wait = left;
    }
    TRY_VOID(runOnce(wait));
  }
  return {};
}

}  // namespace kernelet
