#pragma once
// What one container is, independent of any file format: the agent fills it
// from a Pod, `kernelet oci` from an OCI config.json.

#include <sys/resource.h>
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace kernelet::isolation {

struct Mount {
  std::string destination;  // absolute, inside the container
  std::string type;         // "bind", "proc", "tmpfs", "sysfs", "devpts", "mqueue", "cgroup"...
  std::string source;
  std::vector<std::string> options;  // OCI/mount(8) words: "ro", "nosuid", "rbind", "mode=755"
  // A bind whose source the caller resolved itself: a detached mount
  // (open_tree OPEN_TREE_CLONE) that is attached instead of `source` being
  // opened by path, which then only names it in messages. The caller keeps
  // it open until the start is reported and closes it after; one start only.
  int source_fd = -1;
  // The source path must never be opened (a subPath: the caller resolved it
  // safely and only source_fd names what it found): without source_fd the
  // mount is refused, not bound by path.
  bool source_fd_only = false;
};

enum class Namespace { kPid, kMount, kUts, kIpc, kNet, kCgroup, kUser };

struct NamespaceRef {
  Namespace type;
  // Empty: create a new one. Else join this one: /proc/PID/ns/net, a bind-mounted
  // ns file, or /proc/self/fd/N for a namespace held as an fd.
  std::string path;
};

struct Capabilities {
  // Names as in the OCI spec and capabilities(7): "CAP_NET_BIND_SERVICE".
  std::vector<std::string> bounding, effective, permitted, inheritable, ambient;
};

struct Rlimit {
  std::string type;  // "RLIMIT_NOFILE"
  uint64_t soft = 0;
  uint64_t hard = 0;
};

struct SeccompProfile {
  enum class Kind { kUnconfined, kRuntimeDefault, kJson } kind = Kind::kRuntimeDefault;
  std::string json;    // for kJson: an OCI linux.seccomp object or a Docker profile
  std::string origin;  // where the JSON came from, for error messages
};

struct Sysctl {
  std::string key;  // "net.ipv4.ip_unprivileged_port_start"
  std::string value;
};

// A terminal's window, as OCI's process.consoleSize.
struct ConsoleSize {
  unsigned rows = 0;
  unsigned cols = 0;
};

struct ContainerSpec {
  std::vector<std::string> argv;
  std::vector<std::string> env;  // "KEY=value"
  std::string cwd = "/";
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> additional_gids;
  mode_t umask = 022;
  std::string hostname;

  std::string rootfs;  // host path of the root filesystem
  bool readonly_rootfs = false;
  // How the container's mounts propagate: MS_PRIVATE, MS_SLAVE or MS_SHARED (| MS_REC).
  unsigned long rootfs_propagation = 0;  // 0: private, recursively
  std::vector<Mount> mounts;
  std::vector<NamespaceRef> namespaces;
  std::vector<std::string> masked_paths;
  std::vector<std::string> readonly_paths;

  Capabilities capabilities;
  bool no_new_privileges = false;
  SeccompProfile seccomp;
  std::vector<Rlimit> rlimits;
  std::optional<int> oom_score_adj;
  std::vector<Sysctl> sysctls;

  // Descriptors the container gets as 0, 1, 2; -1 inherits ours.
  int stdin_fd = -1;
  int stdout_fd = -1;
  int stderr_fd = -1;

  // A pseudo-terminal made in the container's devpts (/dev/ptmx, as mounted at
  // /dev/pts) as 0, 1 and 2 and as the controlling terminal, instead of the
  // descriptors above (which must stay -1). Its master is sent over
  // console_socket_fd (SCM_RIGHTS, the terminal's name as the data), as runc
  // and crun send it to --console-socket; the socket is the caller's, the
  // child only writes to its copy.
  bool terminal = false;
  int console_socket_fd = -1;
  // The terminal's window before exec; none leaves the kernel's 0x0.
  std::optional<ConsoleSize> console_size;

  // The cgroup directory to start in (clone3 CLONE_INTO_CGROUP); -1: ours.
  int cgroup_fd = -1;
  // If set, the container stops after setup, before exec, until this FIFO is
  // opened for reading (OCI create/start).
  std::string start_fifo;
  // How long the child may take from clone3 to exec (or to waiting on the
  // start FIFO). One that takes longer is killed and start() fails with
  // "timed out": a child stuck in setup must not block its caller forever.
  std::chrono::milliseconds setup_timeout = std::chrono::seconds(60);
  // Exec into a running container (crun exec, probes): every namespace is
  // joined by path, its mount namespace included, whose root is the
  // container's; rootfs, mounts, masked paths, sysctls and hostname are not
  // set up again.
  bool join_running = false;
};

// The defaults containerd and Docker give a container.
std::vector<std::string> defaultCapabilities();
std::vector<std::string> defaultMaskedPaths();
std::vector<std::string> defaultReadonlyPaths();
// /proc, /dev (tmpfs), /dev/pts, /dev/shm, /dev/mqueue, /sys (ro), /sys/fs/cgroup (ro).
std::vector<Mount> defaultMounts();

}  // namespace kernelet::isolation
