#include <string>

#include "isolation/isolation.h"

namespace kernelet::isolation {

ContainerSpec execSpec(const ContainerSpec& spec, pid_t pid, std::vector<std::string> argv) {
  ContainerSpec e = spec;  // the same user, groups, env, cwd, capabilities, seccomp
  e.argv = std::move(argv);
  e.join_running = true;
  e.hostname.clear();
  e.mounts.clear();
  e.masked_paths.clear();
  e.readonly_paths.clear();
  e.sysctls.clear();
  e.start_fifo.clear();
  e.stdin_fd = e.stdout_fd = e.stderr_fd = -1;
  e.terminal = false;  // the exec's own, if any, is the caller's to ask for
  e.console_socket_fd = -1;
  e.console_size.reset();
  e.cgroup_fd = -1;
  // Every namespace the container has (created or joined), through its pid.
  e.namespaces.clear();
  std::string dir = "/proc/" + std::to_string(pid) + "/ns/";
  for (const NamespaceRef& ns : spec.namespaces) {
    static const char* names[] = {"pid", "mnt", "uts", "ipc", "net", "cgroup", "user"};
    e.namespaces.push_back({ns.type, dir + names[static_cast<int>(ns.type)]});
  }
  return e;
}

}  // namespace kernelet::isolation
