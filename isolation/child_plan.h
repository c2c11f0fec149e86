#pragma once
// A ContainerSpec flattened for the child side: every string already built,
// every name resolved, every flag parsed, so that code after clone3 only makes
// syscalls (the parent may have threads; the child must not allocate).

#include <sys/resource.h>

#include <deque>
#include <string>
#include <vector>

#include "isolation/capabilities.h"
#include "isolation/container_spec.h"
#include "isolation/seccomp.h"
#include "isolation/terminal.h"
#include "sys/result.h"
#include "sys/unique_fd.h"

namespace kernelet::isolation {

struct MountStep {
  const char* destination;  // absolute inside the container, for messages
  const char* relative;     // the same without the leading '/', for openat2
  const char* source;
  const char* fstype;         // nullptr for binds
  unsigned long flags;        // for a bind: MS_BIND, MS_REC and the MS_* mount_setattr applies
  unsigned long propagation;  // MS_PRIVATE, MS_SHARED, ... with MS_REC, or 0
  const char* data;
  bool bind;
  bool readonly;            // a bind with "ro": read-only before it is attached
  bool recursive_readonly;  // "rro": its submounts too (mount_setattr AT_RECURSIVE)
  bool source_is_dir;       // creates a directory (else a file) as the mount point
  bool is_dev;              // the /dev tmpfs: populate the standard devices
  int tree;                 // a bind's detached mount to attach (Mount::source_fd), or -1
};

struct SysctlStep {
  const char* path;  // /proc/sys/net/ipv4/..., written through the agent's /proc
  const char* value;
};

struct NamespaceJoin {
  UniqueFd fd;
  int type;  // CLONE_NEWNET, ...
  const char* path;
};

struct ChildPlan {
  std::deque<std::string> strings;  // owns every char* below (deque: stable addresses)
  const char* keep(std::string s) { return strings.emplace_back(std::move(s)).c_str(); }

  uint64_t clone_flags = 0;  // the CLONE_NEW* of namespaces to create
  std::vector<NamespaceJoin> joins;
  UniqueFd pid_ns;  // a pid namespace to start in (shareProcessNamespace), or none
  const char* pid_ns_path = nullptr;

  std::vector<char*> argv;  // nullptr-terminated
  std::vector<char*> envp;  // nullptr-terminated
  const char* path_env = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  const char* cwd = "/";

  bool new_mount_ns = false;
  const char* rootfs = nullptr;
  bool readonly_rootfs = false;
  unsigned long rootfs_propagation = 0;
  std::vector<MountStep> mounts;
  // The detached mounts of MountStep::tree: our copies, numbered above the
  // report pipe and console socket the child moves to 3 and 4, and sorted,
  // so that the child can close everything else around them.
  std::vector<UniqueFd> trees;
  std::vector<int> tree_fds;
  std::vector<const char*> masked_paths;
  std::vector<const char*> readonly_paths;
  std::vector<SysctlStep> sysctls;

  const char* hostname = nullptr;
  std::vector<std::pair<int, rlimit>> rlimits;
  const char* oom_score_adj = nullptr;

  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> additional_gids;
  mode_t umask = 022;
  CapabilityPlan caps;
  bool no_new_privileges = false;
  SeccompProgram seccomp;

  int stdio[3] = {-1, -1, -1};
  // With a terminal: the console socket as the caller gave it (terminal.socket
  // is the number runChild moves it to).
  int console_socket = -1;
  TerminalPlan terminal;
  const char* start_fifo = nullptr;
};

// Validates the spec and builds the plan; errors name the field.
Result<ChildPlan> buildPlan(const ContainerSpec& spec);

// The child side of clone3: sets the container up and execs. Never returns;
// failures are reported on `report_fd` before _exit.
[[noreturn]] void runChild(const ChildPlan& plan, int report_fd);

}  // namespace kernelet::isolation
