#include "sys/loop_queue.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

namespace kernelet {

Result<std::unique_ptr<LoopQueue>> LoopQueue::create(EventLoop& loop) {
  int fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (fd < 0) {
    return sysError("eventfd");
  }
  std::unique_ptr<LoopQueue> q(new LoopQueue(loop, UniqueFd(fd)));
  LoopQueue* self = q.get();
  TRY_VOID(loop.add(fd, EPOLLIN, [self](uint32_t) { self->drain(); }));
  return q;
}

LoopQueue::~LoopQueue() { loop_.remove(fd_.get()); }

void LoopQueue::post(std::function<void()> fn) {
  {
    std::lock_guard lock(mu_);
    pending_.push_back(std::move(fn));
  }
  uint64_t one = 1;
  (void)!::write(fd_.get(), &one, sizeof one);
}

void LoopQueue::drain() {
  uint64_t n;
  (void)!::read(fd_.get(), &n, sizeof n);
  std::vector<std::function<void()>> ready;
  {
    std::lock_guard lock(mu_);
    ready.swap(pending_);
  }
  for (auto& fn : ready) {
    fn();
  }
}

}  // namespace kernelet
