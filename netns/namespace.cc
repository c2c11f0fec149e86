// A network namespace held by a bind mount of its nsfs file, as `ip netns add`
// does, so that no process has to live in it.
#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <unistd.h>

#include <filesystem>
#include <thread>

#include "netns/netlink.h"
#include "netns/netns.h"
#include "sys/unique_fd.h"

namespace kernelet::netns {

Result<void> createNamespace(const std::string& path) {
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
  UniqueFd file(::open(path.c_str(), O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444));
  if (!file) {
    return sysError("create namespace file", path);
  }
  file.reset();
  // unshare() moves only the calling thread, so a short-lived thread makes the
  // namespace, pins it on the file and brings its loopback up; the agent's own
  // threads never leave the node's namespace.
  Result<void> result;
  std::thread([&] {
    if (::unshare(CLONE_NEWNET) != 0) {
      result = sysError("unshare(CLONE_NEWNET)", path);
      return;
    }
    if (::mount("/proc/thread-self/ns/net", path.c_str(), nullptr, MS_BIND, nullptr) != 0) {
      result = sysError("bind network namespace", path);
      return;
    }
    auto nl = Netlink::open();
    result = nl ? nl->setUp("lo") : std::unexpected(nl.error());
  }).join();
  if (!result) {
    ::umount2(path.c_str(), MNT_DETACH);
    ::unlink(path.c_str());
  }
  return result;
}

Result<void> removeNamespace(const std::string& path) {
  if (::umount2(path.c_str(), MNT_DETACH) != 0 && errno != EINVAL && errno != ENOENT) {
    return sysError("unmount network namespace", path);
  }
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    return sysError("remove", path);
  }
  return {};
}

}  // namespace kernelet::netns
