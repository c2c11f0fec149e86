#include <fcntl.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <sstream>

#include "cgroups/cgroups.h"
#include "sys/fileio.h"

namespace kernelet::cgroups {

namespace {

uint64_t field(const std::string& text, const std::string& key) {
  std::istringstream in(text);
  std::string k;
  uint64_t v;
  while (in >> k >> v) {
    if (k == key) {
      return v;
    }
  }
  return 0;
}

}  // namespace

Result<EventWatcher> EventWatcher::watch(const Cgroup& group) {
  int dup = ::fcntl(group.fd(), F_DUPFD_CLOEXEC, 0);
  if (dup < 0) {
    return sysError("dup", group.path());
  }
  UniqueFd dir(dup);
  UniqueFd in(::inotify_init1(IN_NONBLOCK | IN_CLOEXEC));
  if (!in) {
    return sysError("inotify_init1");
  }
  // The kernel signals changes of these files as IN_MODIFY. inotify has no *at()
  // form, so the path goes through our directory handle.
  std::string base = "/proc/self/fd/" + std::to_string(dir.get()) + "/";
  for (const char* file : {"cgroup.events", "memory.events"}) {
    if (::inotify_add_watch(in.get(), (base + file).c_str(), IN_MODIFY) < 0) {
      // memory.events is missing when the memory controller is off: then no OOM events.
      if (std::string(file) == "cgroup.events" || errno != ENOENT) {
        return sysError("inotify_add_watch", group.path() + "/" + file);
      }
    }
  }
  EventWatcher w(group.path(), std::move(dir), std::move(in));
  // Start from the current state, so check() reports only what happens next.
  TRY(Changes ignored, w.check());
  (void)ignored;
  return w;
}

Result<EventWatcher::Changes> EventWatcher::check() {
  char buf[4096];
  while (::read(inotify_.get(), buf, sizeof buf) > 0) {
  }
  Changes c;
  TRY(std::string events, readFileAt(dir_.get(), "cgroup.events", path_ + "/cgroup.events"));
  bool populated = field(events, "populated") != 0;
  c.became_empty = populated_ && !populated;
  populated_ = populated;
  if (auto mem = readFileAt(dir_.get(), "memory.events", path_ + "/memory.events")) {
    uint64_t kills = field(*mem, "oom_kill");
    c.new_oom_kills = kills > oom_kills_ ? kills - oom_kills_ : 0;
    oom_kills_ = kills;
  }
  return c;
}

}  // namespace kernelet::cgroups
