// Parent side of a container start: everything that allocates or can fail for
// a reason of the input happens here, before clone3.
#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include <algorithm>
#include <iterator>
#include <map>
#include <string_view>

#include "isolation/child_plan.h"
#include "isolation/sysctl.h"
#include "sys/open_files.h"

namespace kernelet::isolation {

namespace {

struct MountFlag {
  bool clear;
  unsigned long flag;
};

const std::map<std::string, MountFlag>& mountFlags() {
  static const std::map<std::string, MountFlag> flags = {
      {"ro", {false, MS_RDONLY}},
      {"rw", {true, MS_RDONLY}},
      {"nosuid", {false, MS_NOSUID}},
      {"suid", {true, MS_NOSUID}},
      {"nodev", {false, MS_NODEV}},
      {"dev", {true, MS_NODEV}},
      {"noexec", {false, MS_NOEXEC}},
      {"exec", {true, MS_NOEXEC}},
      {"sync", {false, MS_SYNCHRONOUS}},
      {"async", {true, MS_SYNCHRONOUS}},
      {"dirsync", {false, MS_DIRSYNC}},
      {"remount", {false, MS_REMOUNT}},
      {"mand", {false, MS_MANDLOCK}},
      {"nomand", {true, MS_MANDLOCK}},
      {"atime", {true, MS_NOATIME}},
      {"noatime", {false, MS_NOATIME}},
      {"diratime", {true, MS_NODIRATIME}},
      {"nodiratime", {false, MS_NODIRATIME}},
      {"relatime", {false, MS_RELATIME}},
      {"norelatime", {true, MS_RELATIME}},
      {"strictatime", {false, MS_STRICTATIME}},
      {"nostrictatime", {true, MS_STRICTATIME}},
  };
  return flags;
}

const std::map<std::string, unsigned long>& propagationFlags() {
  static const std::map<std::string, unsigned long> flags = {
      {"private", MS_PRIVATE},       {"rprivate", MS_PRIVATE | MS_REC},
      {"shared", MS_SHARED},         {"rshared", MS_SHARED | MS_REC},
      {"slave", MS_SLAVE},           {"rslave", MS_SLAVE | MS_REC},
      {"unbindable", MS_UNBINDABLE}, {"runbindable", MS_UNBINDABLE | MS_REC},
  };
  return flags;
}

// `path` without repeated slashes, "." components or a trailing slash:
// "//proc/./self/" is "/proc/self", which is how the kernel resolves it.
std::string cleanPath(const std::string& path) {
  std::string out;
  size_t i = 0;
  while (i < path.size()) {
    size_t end = path.find('/', i);
    end = end == std::string::npos ? path.size() : end;
    std::string_view part(path.data() + i, end - i);
    if (!part.empty() && part != ".") {
      out += "/";
      out += part;
    }
    i = end + 1;
  }
  return out.empty() ? "/" : out;
}

// runc's checkProcMount: under /proc only what cannot redirect the files the
// runtime and the kernel use there (/proc/self/..., /proc/sys/...): a proc at
// /proc itself, and binds onto the files lxcfs emulates.
Result<void> checkProcDestination(const std::string& dest, const std::string& type, bool bind,
                                  const std::string& field) {
  if (dest == "/proc") {
    if (!bind && type == "proc") {
      return {};
    }
    return makeError("container spec", field + ".destination",
                     "only a proc filesystem can be mounted at /proc");
  }
  if (!dest.starts_with("/proc/")) {
    return {};
  }
  static const char* const kLxcfsFiles[] = {"cpuinfo", "diskstats", "meminfo", "stat",
                                            "swaps",   "uptime",    "loadavg", "slabinfo"};
  std::string name = dest.substr(6);
  bool allowed =
      std::any_of(std::begin(kLxcfsFiles), std::end(kLxcfsFiles),
                  [&](const char* f) { return name == f; }) ||
      (name.starts_with("pressure/") && name.size() > 9 && name.find('/', 9) == std::string::npos);
  if (bind && allowed) {
    return {};
  }
  return makeError("container spec", field + ".destination",
                   "\"" + dest +
                       "\" cannot be mounted because it is inside /proc (only binds onto "
                       "/proc/cpuinfo, diskstats, meminfo, stat, swaps, uptime, loadavg, "
                       "slabinfo and pressure/* are)");
}

Result<void> planMount(ChildPlan& plan, const Mount& m, size_t index) {
  std::string field = "mounts[" + std::to_string(index) + "]";
  if (m.destination.empty() || m.destination[0] != '/') {
    return makeError("container spec", field + ".destination",
                     "must be an absolute path, got \"" + m.destination + "\"");
  }
  if (m.destination.find("/../") != std::string::npos || m.destination.ends_with("/..")) {
    return makeError("container spec", field + ".destination", "must not contain '..'");
  }
  MountStep s{};
  s.tree = -1;
  std::string dest = cleanPath(m.destination);
  s.destination = plan.keep(dest);
  s.relative = plan.keep(dest == "/" ? "." : dest.substr(1));
  std::string data;
  bool rro = false;
  for (const std::string& o : m.options) {
    if (o == "rro") {
      // runc's recursive read-only: "ro" for the mount and every submount.
      rro = true;
      s.flags |= MS_RDONLY;
    } else if (auto f = mountFlags().find(o); f != mountFlags().end()) {
      s.flags = f->second.clear ? s.flags & ~f->second.flag : s.flags | f->second.flag;
    } else if (auto p = propagationFlags().find(o); p != propagationFlags().end()) {
      s.propagation = p->second;
    } else if (o == "bind" || o == "rbind") {
      s.bind = true;
      s.flags |= MS_BIND | (o == "rbind" ? MS_REC : 0);
    } else if (o == "tmpcopyup" || o == "idmap" || o == "ridmap" || o.starts_with("X-")) {
      return makeError("container spec", field + ".options", "unsupported option \"" + o + "\"");
    } else {
      data += (data.empty() ? "" : ",") + o;  // filesystem-specific: mode=755, size=...
    }
  }
  std::string type = m.type;
  if (type == "bind") {
    s.bind = true;
    s.flags |= MS_BIND;
  }
  if (s.bind) {
    if (m.source.empty()) {
      return makeError("container spec", field + ".source", "a bind mount needs a source");
    }
    struct stat st {};
    if (m.source_fd >= 0) {
      // What the mount point must be is what the detached mount's root is.
      if (::fstat(m.source_fd, &st) != 0) {
        return addContext<void>(sysError("fstat", m.source), field + ".source");
      }
      // Above 4: the child's report pipe and console socket go to 3 and 4.
      UniqueFd tree(::fcntl(m.source_fd, F_DUPFD_CLOEXEC, 5));
      if (!tree) {
        return addContext<void>(sysError("dup", m.source), field + ".source");
      }
      s.tree = tree.get();
      plan.tree_fds.insert(std::upper_bound(plan.tree_fds.begin(), plan.tree_fds.end(), s.tree),
                           s.tree);
      plan.trees.push_back(std::move(tree));
    } else if (m.source_fd_only) {
      return makeError("container spec", field + ".source",
                       "\"" + m.source +
                           "\" may only be bound through its resolved fd, and none "
                           "was given");
    } else if (::stat(m.source.c_str(), &st) != 0) {
      return addContext<void>(sysError("stat", m.source), field + ".source");
    }
    s.source_is_dir = S_ISDIR(st.st_mode);
    s.readonly = (s.flags & MS_RDONLY) != 0;
    s.recursive_readonly = rro && s.readonly;
    s.flags &= ~MS_RDONLY;  // applied with mount_setattr, not mount(2)
    s.fstype = nullptr;
  } else {
    if (type.empty()) {
      return makeError("container spec", field + ".type", "missing");
    }
    if (m.source_fd >= 0) {
      return makeError("container spec", field + ".source", "a detached mount is only for a bind");
    }
    if (rro) {
      return makeError("container spec", field + ".options", "\"rro\" is only for a bind mount");
    }
    // On a cgroup v2 host the "cgroup" filesystem of the OCI spec is cgroup2.
    s.fstype = plan.keep(type == "cgroup" ? "cgroup2" : type);
    s.source_is_dir = true;
    s.is_dev = m.destination == "/dev" && type == "tmpfs";
  }
  TRY_VOID(checkProcDestination(dest, type, s.bind, field));
  s.source = plan.keep(m.source.empty() ? type : m.source);
  s.data = data.empty() ? nullptr : plan.keep(data);
  plan.mounts.push_back(s);
  return {};
}

int cloneFlag(Namespace n) {
  switch (n) {
    case Namespace::kPid:
      return CLONE_NEWPID;
    case Namespace::kMount:
      return CLONE_NEWNS;
    case Namespace::kUts:
      return CLONE_NEWUTS;
    case Namespace::kIpc:
      return CLONE_NEWIPC;
    case Namespace::kNet:
      return CLONE_NEWNET;
    case Namespace::kCgroup:
      return CLONE_NEWCGROUP;
    case Namespace::kUser:
      return CLONE_NEWUSER;
  }
  return 0;
}

Result<int> rlimitResource(const std::string& name) {
  static const std::map<std::string, int> names = {
      {"RLIMIT_AS", RLIMIT_AS},
      {"RLIMIT_CORE", RLIMIT_CORE},
      {"RLIMIT_CPU", RLIMIT_CPU},
      {"RLIMIT_DATA", RLIMIT_DATA},
      {"RLIMIT_FSIZE", RLIMIT_FSIZE},
      {"RLIMIT_LOCKS", RLIMIT_LOCKS},
      {"RLIMIT_MEMLOCK", RLIMIT_MEMLOCK},
      {"RLIMIT_MSGQUEUE", RLIMIT_MSGQUEUE},
      {"RLIMIT_NICE", RLIMIT_NICE},
      {"RLIMIT_NOFILE", RLIMIT_NOFILE},
      {"RLIMIT_NPROC", RLIMIT_NPROC},
      {"RLIMIT_RSS", RLIMIT_RSS},
      {"RLIMIT_RTPRIO", RLIMIT_RTPRIO},
      {"RLIMIT_RTTIME", RLIMIT_RTTIME},
      {"RLIMIT_SIGPENDING", RLIMIT_SIGPENDING},
      {"RLIMIT_STACK", RLIMIT_STACK},
  };
  auto it = names.find(name);
  if (it == names.end()) {
    return makeError("container spec", "rlimits", "unknown rlimit \"" + name + "\"");
  }
  return it->second;
}

// The root filesystem, mounts, masked and read-only paths and sysctls of a
// new container.
Result<void> planRootfs(ChildPlan& plan, const ContainerSpec& spec) {
  if (spec.rootfs.empty()) {
    return makeError("container spec", "root.path", "missing");
  }
  struct stat st {};
  if (::stat(spec.rootfs.c_str(), &st) != 0) {
    return addContext<void>(sysError("stat", spec.rootfs), "root.path");
  }
  if (!S_ISDIR(st.st_mode)) {
    return makeError("container spec", "root.path", spec.rootfs + " is not a directory");
  }
  if (!plan.new_mount_ns) {
    return makeError("container spec", "namespaces",
                     "a container needs its own mount namespace for its rootfs");
  }
  plan.rootfs = plan.keep(spec.rootfs);
  plan.readonly_rootfs = spec.readonly_rootfs;
  plan.rootfs_propagation = spec.rootfs_propagation;
  for (size_t i = 0; i < spec.mounts.size(); i++) {
    TRY_VOID(planMount(plan, spec.mounts[i], i));
  }
  for (const std::string& p : spec.masked_paths) {
    plan.masked_paths.push_back(plan.keep(p));
  }
  for (const std::string& p : spec.readonly_paths) {
    plan.readonly_paths.push_back(plan.keep(p));
  }
  // Written through the agent's /proc (runChild): a name must stay a name.
  auto own = [&](int flag) {
    return (plan.clone_flags & static_cast<uint64_t>(flag)) != 0 ||
           std::any_of(plan.joins.begin(), plan.joins.end(),
                       [&](const NamespaceJoin& j) { return j.type == flag; });
  };
  for (const Sysctl& s : spec.sysctls) {
    TRY_VOID(validateSysctl(s.key, own(CLONE_NEWNET), own(CLONE_NEWUTS), own(CLONE_NEWIPC)));
    std::string path = "/proc/sys/" + s.key;
    for (size_t i = 10; i < path.size(); i++) {
      path[i] = path[i] == '.' ? '/' : path[i];
    }
    plan.sysctls.push_back({plan.keep(path), plan.keep(s.value)});
  }
  return {};
}

// The terminal, its console socket and its window: all or none of them.
Result<void> planTerminal(ChildPlan& plan, const ContainerSpec& spec) {
  if (!spec.terminal) {
    if (spec.console_socket_fd >= 0) {
      return makeError("container spec", "console socket", "given without process.terminal");
    }
    if (spec.console_size) {
      return makeError("container spec", "process.consoleSize", "given without process.terminal");
    }
    return {};
  }
  if (spec.console_socket_fd < 0) {
    return makeError("container spec", "process.terminal",
                     "a terminal needs a console socket to send its master to");
  }
  if (spec.stdin_fd >= 0 || spec.stdout_fd >= 0 || spec.stderr_fd >= 0) {
    return makeError("container spec", "process.terminal",
                     "the terminal is the process's stdin, stdout and stderr: give no other");
  }
  plan.console_socket = spec.console_socket_fd;
  plan.terminal.enabled = true;
  plan.terminal.owner = spec.uid;
  if (spec.console_size) {
    const ConsoleSize& size = *spec.console_size;
    if (size.rows > 65535 || size.cols > 65535) {
      return makeError("container spec", "process.consoleSize",
                       "height and width must be at most 65535");
    }
    plan.terminal.set_size = true;
    plan.terminal.size.ws_row = static_cast<unsigned short>(size.rows);
    plan.terminal.size.ws_col = static_cast<unsigned short>(size.cols);
  }
  return {};
}

}  // namespace

Result<ChildPlan> buildPlan(const ContainerSpec& spec) {
  ChildPlan plan;
  if (spec.argv.empty()) {
    return makeError("container spec", "process.args", "no command to run");
  }
  for (const std::string& a : spec.argv) {
    plan.argv.push_back(const_cast<char*>(plan.keep(a)));
  }
  plan.argv.push_back(nullptr);
  for (const std::string& e : spec.env) {
    plan.envp.push_back(const_cast<char*>(plan.keep(e)));
    if (e.starts_with("PATH=")) {
      plan.path_env = plan.keep(e.substr(5));
    }
  }
  plan.envp.push_back(nullptr);
  if (spec.cwd.empty() || spec.cwd[0] != '/') {
    return makeError("container spec", "process.cwd", "must be an absolute path");
  }
  plan.cwd = plan.keep(spec.cwd);

  for (const NamespaceRef& ns : spec.namespaces) {
    int flag = cloneFlag(ns.type);
    if (ns.type == Namespace::kUser) {
      return makeError("container spec", "namespaces", "user namespaces are not supported yet");
    }
    if (ns.path.empty()) {
      plan.clone_flags |= static_cast<uint64_t>(flag);
      continue;
    }
    int fd = ::open(ns.path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      return addContext<ChildPlan>(sysError("open namespace", ns.path), "namespaces");
    }
    if (ns.type == Namespace::kPid) {
      // Entered by the parent around clone3 (see start()): setns(CLONE_NEWPID)
      // only places the caller's future children.
      plan.pid_ns = UniqueFd(fd);
      plan.pid_ns_path = plan.keep(ns.path);
      continue;
    }
    plan.joins.push_back({UniqueFd(fd), flag, plan.keep(ns.path)});
  }
  plan.new_mount_ns = (plan.clone_flags & CLONE_NEWNS) != 0;

  if (spec.join_running) {
    bool joins_mounts = std::any_of(plan.joins.begin(), plan.joins.end(),
                                    [](const NamespaceJoin& j) { return j.type == CLONE_NEWNS; });
    if (!joins_mounts || plan.clone_flags != 0 || !spec.hostname.empty()) {
      return makeError("container spec", "namespaces",
                       "exec joins the container's namespaces, its mount namespace included, "
                       "and sets nothing of them up");
    }
  } else {
    TRY_VOID(planRootfs(plan, spec));
  }

  if (!spec.hostname.empty()) {
    if ((plan.clone_flags & CLONE_NEWUTS) == 0) {
      return makeError("container spec", "hostname", "needs a new UTS namespace");
    }
    plan.hostname = plan.keep(spec.hostname);
  }
  for (const Rlimit& r : spec.rlimits) {
    TRY(int resource, rlimitResource(r.type));
    plan.rlimits.push_back({resource, rlimit{r.soft, r.hard}});
  }
  // A container gets the open-file limit its runtime was started with, not
  // the one the agent raised for itself (see sys/open_files.h).
  bool sets_nofile = std::any_of(plan.rlimits.begin(), plan.rlimits.end(),
                                 [](const auto& l) { return l.first == RLIMIT_NOFILE; });
  if (auto original = originalOpenFileLimit(); original && !sets_nofile) {
    plan.rlimits.push_back({RLIMIT_NOFILE, *original});
  }
  if (spec.oom_score_adj) {
    if (*spec.oom_score_adj < -1000 || *spec.oom_score_adj > 1000) {
      return makeError("container spec", "process.oomScoreAdj", "must be in [-1000, 1000]");
    }
    plan.oom_score_adj = plan.keep(std::to_string(*spec.oom_score_adj));
  }

  plan.uid = spec.uid;
  plan.gid = spec.gid;
  plan.additional_gids = spec.additional_gids;
  plan.umask = spec.umask;
  TRY(plan.caps, CapabilityPlan::build(spec.capabilities));
  plan.no_new_privileges = spec.no_new_privileges;
  TRY(plan.seccomp, compileSeccomp(spec.seccomp, spec.capabilities.bounding));

  plan.stdio[0] = spec.stdin_fd;
  plan.stdio[1] = spec.stdout_fd;
  plan.stdio[2] = spec.stderr_fd;
  TRY_VOID(planTerminal(plan, spec));
  if (!spec.start_fifo.empty()) {
    plan.start_fifo = plan.keep(spec.start_fifo);
  }
  return plan;
}

}  // namespace kernelet::isolation
