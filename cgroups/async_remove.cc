// A cgroup removed from an event loop: the processes killed at once, the wait
// for them to leave done by inotify on cgroup.events, so a process that is
// slow to exit (stuck in the kernel, in D state) delays only its own pod.
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "cgroups/cgroups.h"

namespace kernelet::cgroups {

std::unique_ptr<AsyncRemoval> removeAsync(EventLoop& loop, TimerQueue& timers, Cgroup group,
                                          std::chrono::milliseconds timeout,
                                          AsyncRemoval::Done done) {
  std::unique_ptr<AsyncRemoval> r(
      new AsyncRemoval(loop, timers, std::move(group), std::move(done)));
  Result<bool> waiting = r->begin(timeout);
  if (!waiting || !*waiting) {
    // Nothing to wait for, or a step failed: `done` still runs from the
    // loop, never from inside this call, so callers see one order always.
    AsyncRemoval* self = r.get();
    auto outcome = std::make_shared<Result<void>>();
    if (!waiting) {
      *outcome = std::unexpected(std::move(waiting.error()));
    }
    auto life = std::weak_ptr<char>(r->life_);
    r->timer_ = timers.after(std::chrono::seconds(0), [self, outcome, life] {
      if (life.expired()) {
        return;
      }
      self->timer_ = 0;
      self->finish(*outcome ? self->group_.removeTree() : *outcome);
    });
  }
  return r;
}

AsyncRemoval::~AsyncRemoval() { disarm(); }

// Returns whether the group is still populated after cgroup.kill, i.e.
// whether the loop has to wait.
Result<bool> AsyncRemoval::begin(std::chrono::milliseconds timeout) {
  timeout_ = timeout;
  if (group_.fd() < 0) {
    return false;
  }
  // The watch first, then the check and the kill: a change after the check
  // is an event, a change before it is in what the check reads.
  inotify_.reset(::inotify_init1(IN_NONBLOCK | IN_CLOEXEC));
  if (!inotify_) {
    return sysError("inotify_init1");
  }
  // inotify has no *at() form: the path goes through our directory handle.
  std::string events = "/proc/self/fd/" + std::to_string(group_.fd()) + "/cgroup.events";
  if (::inotify_add_watch(inotify_.get(), events.c_str(), IN_MODIFY) < 0) {
    return sysError("inotify_add_watch", group_.path() + "/cgroup.events");
  }
  TRY(bool busy, group_.populated());
  if (!busy) {
    return false;
  }
  // cgroup.kill (5.14+) SIGKILLs the whole subtree at once, without racing forks.
  TRY_VOID(group_.write("cgroup.kill", "1"));
  TRY_VOID(loop_.add(inotify_.get(), EPOLLIN, [this](uint32_t) { onChange(); }));
  watching_ = true;
  timer_ = timers_.after(timeout, [this, life = std::weak_ptr<char>(life_)] {
    if (life.expired()) {
      return;
    }
    timer_ = 0;
    finish(makeError(
        "remove cgroup", group_.path(),
        "processes still running " + std::to_string(timeout_.count()) + " ms after cgroup.kill"));
  });
  return true;
}

void AsyncRemoval::onChange() {
  char buf[4096];
  while (::read(inotify_.get(), buf, sizeof buf) > 0) {
  }
  Result<bool> busy = group_.populated();
  if (!busy) {
    finish(std::unexpected(std::move(busy.error())));
  } else if (!*busy) {
    finish(group_.removeTree());
  }
}

void AsyncRemoval::finish(Result<void> r) {
  disarm();
  // Last: `done` may destroy this object.
  Done done = std::move(done_);
  if (done) {
    done(std::move(r));
  }
}

void AsyncRemoval::disarm() {
  if (watching_) {
    loop_.remove(inotify_.get());
    watching_ = false;
  }
  timers_.cancel(timer_);
  timer_ = 0;
}

}  // namespace kernelet::cgroups
