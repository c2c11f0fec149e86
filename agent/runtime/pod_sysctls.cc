#include "agent/runtime/pod_sysctls.h"

#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include <thread>

#include "agent/model/pod_names.h"
#include "isolation/sysctl.h"
#include "sys/unique_fd.h"

namespace kernelet::agent {
namespace {

Result<void> join(const std::string& path, int type) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) {
    return sysError("open namespace", path);
  }
  if (::setns(fd.get(), type) != 0) {
    return sysError("setns", path);
  }
  return {};
}

Result<void> writeOne(const Sysctl& s) {
  std::string path = "/proc/sys/" + sysctlProcPath(s.name);
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd) {
    return sysError("open sysctl", path);
  }
  ssize_t n = ::write(fd.get(), s.value.data(), s.value.size());
  if (n < 0) {
    return sysError("write sysctl", path);
  }
  if (static_cast<size_t>(n) != s.value.size()) {
    return makeError("write sysctl", path, "short write");
  }
  return {};
}

}  // namespace

std::string sysctlProcPath(const std::string& name) {
  std::string path = normalizeSysctlName(name);
  for (char& c : path) {
    c = c == '.' ? '/' : c == '/' ? '.' : c;
  }
  return path;
}

Result<void> writePodSysctls(const std::vector<Sysctl>& sysctls, const std::string& ipc_ns,
                             const std::string& net_ns) {
  if (sysctls.empty()) {
    return {};
  }
  for (const Sysctl& s : sysctls) {
    // The UTS namespace is the pod's own too, but no sysctl of it is allowed
    // (kernel.hostname is spec.hostname's).
    TRY_VOID(isolation::validateSysctl(normalizeSysctlName(s.name), !net_ns.empty(), false, true));
  }
  // setns of an IPC or network namespace changes only the calling thread:
  // this one, which ends right after, so the agent's own stay the node's.
  Result<void> result;
  std::thread t([&] {
    result = [&]() -> Result<void> {
      TRY_VOID(join(ipc_ns, CLONE_NEWIPC));
      if (!net_ns.empty()) {
        TRY_VOID(join(net_ns, CLONE_NEWNET));
      }
      for (const Sysctl& s : sysctls) {
        TRY_VOID(writeOne(s));
      }
      return {};
    }();
  });
  t.join();
  return result;
}

}  // namespace kernelet::agent
