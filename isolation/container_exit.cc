#include "isolation/container_exit.h"

#include <sys/epoll.h>

namespace kernelet::isolation {

std::string ContainerExit::reason() const {
  if (oom_killed) {
    return "OOMKilled";
  }
  return status.signal == 0 && status.code == 0 ? "Completed" : "Error";
}

uint64_t oomKills(const cgroups::Cgroup& group) {
  auto s = group.stats();
  return s ? s->memory_oom_kill : 0;
}

Result<ContainerExit> reap(Process& proc, const cgroups::Cgroup* group,
                           uint64_t oom_kills_at_start) {
  ContainerExit e;
  TRY(e.status, proc.wait());
  if (group != nullptr) {
    e.oom_killed = oomKills(*group) > oom_kills_at_start;
  }
  return e;
}

Result<void> watchExit(EventLoop& loop, Process& proc, const cgroups::Cgroup* group,
                       std::function<void(Result<ContainerExit>)> done) {
  uint64_t before = group != nullptr ? oomKills(*group) : 0;
  int fd = proc.pidfd();
  return loop.add(fd, EPOLLIN, [&loop, &proc, group, before, fd, done = std::move(done)](uint32_t) {
    loop.remove(fd);
    done(reap(proc, group, before));
  });
}

}  // namespace kernelet::isolation
