// The child side of a container start, top to bottom, like nsjail's
// containProc: namespaces, stdio, rootfs and mounts, pivot_root, masked and
// read-only paths, hostname, rlimits, user and capabilities, no_new_privs,
// seccomp last, exec. Only syscalls here: the plan was built before clone3.
// The agent has threads; this child is a copy of one of them, so it must not
// allocate or take a lock another thread may have held at clone time (glibc's
// set*id wrappers do: they signal every thread of the process and wait).
#include <fcntl.h>
#include <grp.h>
#include <linux/close_range.h>
#include <linux/keyctl.h>
#include <linux/openat2.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>  // the ST_* flags statfs also reports
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>

#include "isolation/channel.h"
#include "isolation/child_plan.h"
#include "isolation/terminal.h"
#include "sys/syscalls.h"

namespace kernelet::isolation {

namespace {

int g_report_fd = -1;
constexpr int kConsoleFd = 4;  // where a terminal's console socket waits for its use
int g_start_fifo = -1;         // O_PATH handle, opened before pivot_root hides the host path

[[noreturn]] void fail(const char* op, const char* path, int err = errno) {
  sendReport(g_report_fd, ChildMessage::kFailed, err, op, path);
  ::_exit(1);
}

// "/proc/self/fd/N" into buf, without snprintf.
const char* fdPath(char (&buf)[32], int fd) {
  char digits[12];
  int n = 0;
  do {
    digits[n++] = static_cast<char>('0' + fd % 10);
    fd /= 10;
  } while (fd > 0);
  std::memcpy(buf, "/proc/self/fd/", 14);
  int i = 14;
  while (n > 0) {
    buf[i++] = digits[--n];
  }
  buf[i] = '\0';
  return buf;
}

// Opens `rel` inside the rootfs: symlinks resolve as if the rootfs were /, so
// a hostile image cannot point a mount point outside of it.
int openInRoot(int rootfd, const char* rel, int flags, uint64_t resolve = 0) {
  open_how how{};
  how.flags = static_cast<uint64_t>(flags | O_CLOEXEC);
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | resolve;
  return static_cast<int>(::syscall(SYS_openat2, rootfd, rel, &how, sizeof how));
}

// Creates the missing directories of `rel` (and the last one as a file unless
// is_dir), each one relative to its parent resolved inside the rootfs.
void ensureMountpoint(int rootfd, const MountStep& m) {
  char buf[4096];
  size_t len = std::strlen(m.relative);
  if (len >= sizeof buf) {
    fail("mount point too long", m.destination, ENAMETOOLONG);
  }
  std::memcpy(buf, m.relative, len + 1);
  for (size_t i = 0; i <= len; i++) {
    if (buf[i] != '/' && buf[i] != '\0') {
      continue;
    }
    bool last = i == len;
    char saved = buf[i];
    buf[i] = '\0';
    int fd = openInRoot(rootfd, buf, O_PATH);
    if (fd >= 0) {
      ::close(fd);
    } else if (errno == ENOENT) {
      // Split into parent and name; the parent exists (created in the previous round).
      char* slash = std::strrchr(buf, '/');
      const char* name = slash == nullptr ? buf : slash + 1;
      int parent;
      if (slash == nullptr) {
        parent = ::fcntl(rootfd, F_DUPFD_CLOEXEC, 0);
      } else {
        *slash = '\0';
        parent = openInRoot(rootfd, buf, O_PATH | O_DIRECTORY);
        *slash = '/';
      }
      if (parent < 0) {
        fail("open mount point parent", m.destination);
      }
      int rc;
      if (!last || m.source_is_dir) {
        rc = ::mkdirat(parent, name, 0755);
      } else {
        rc = ::openat(parent, name, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0644);
        if (rc >= 0) {
          ::close(rc);
          rc = 0;
        }
      }
      ::close(parent);
      if (rc != 0 && errno != EEXIST) {
        fail("create mount point", m.destination);
      }
    } else {
      fail("open mount point", m.destination);
    }
    buf[i] = saved;
  }
}

// The devices every container gets on its /dev tmpfs (OCI runtime-spec).
void populateDev(int rootfd) {
  int dev = openInRoot(rootfd, "dev", O_PATH | O_DIRECTORY);
  if (dev < 0) {
    fail("open", "/dev");
  }
  struct Node {
    const char* name;
    unsigned major, minor;
  };
  static const Node nodes[] = {{"null", 1, 3},   {"zero", 1, 5},    {"full", 1, 7},
                               {"random", 1, 8}, {"urandom", 1, 9}, {"tty", 5, 0}};
  for (const Node& n : nodes) {
    if (::mknodat(dev, n.name, S_IFCHR | 0666, makedev(n.major, n.minor)) != 0 && errno != EEXIST) {
      fail("mknod /dev/", n.name);
    }
  }
  static const char* const links[][2] = {
      {"/proc/self/fd", "fd"},       {"/proc/self/fd/0", "stdin"}, {"/proc/self/fd/1", "stdout"},
      {"/proc/self/fd/2", "stderr"}, {"pts/ptmx", "ptmx"},         {"/proc/kcore", "core"}};
  for (const auto& l : links) {
    if (::symlinkat(l[0], dev, l[1]) != 0 && errno != EEXIST) {
      fail("symlink /dev/", l[1]);
    }
  }
  ::close(dev);
}

// The mount_setattr flags of a bind's options: the kernel ignores them on a
// MS_BIND mount(2), so they are set on the detached tree instead.
mount_attr bindAttributes(const MountStep& m) {
  mount_attr attr{};
  attr.attr_set =
      (m.readonly ? MOUNT_ATTR_RDONLY : 0) | (m.flags & MS_NOSUID ? MOUNT_ATTR_NOSUID : 0) |
      (m.flags & MS_NODEV ? MOUNT_ATTR_NODEV : 0) | (m.flags & MS_NOEXEC ? MOUNT_ATTR_NOEXEC : 0) |
      (m.flags & MS_NODIRATIME ? MOUNT_ATTR_NODIRATIME : 0);
  // The atime mode is one value of three: setting one clears the others.
  uint64_t atime = m.flags & MS_NOATIME       ? MOUNT_ATTR_NOATIME
                   : m.flags & MS_STRICTATIME ? MOUNT_ATTR_STRICTATIME
                   : m.flags & MS_RELATIME    ? MOUNT_ATTR_RELATIME
                                              : ~0ULL;
  if (atime != ~0ULL) {
    attr.attr_set |= atime;
    attr.attr_clr |= MOUNT_ATTR__ATIME;
  }
  return attr;
}

// A bind mount built detached (open_tree), made read-only and nosuid/nodev/
// noexec as asked before anyone can see it, then moved onto the mount point
// held by `target`. Nothing is resolved by path after the move, so a sibling
// container that swaps a directory of a shared volume cannot redirect the
// read-only flag or the propagation to another mount (a bind then a remount
// by path could be).
//
// A subPath's tree comes made (m.tree): the agent resolved it inside the
// volume and cloned it in its own mount namespace, where the inode it found
// is mounted (open_tree clones only from the caller's namespace, and ours is
// a copy by now).
void bindOnto(int target, const MountStep& m) {
  unsigned recursive = (m.flags & MS_REC) != 0 ? AT_RECURSIVE : 0;
  int tree = m.tree >= 0 ? m.tree
                         : sys::openTree(AT_FDCWD, m.source,
                                         OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | recursive);
  if (tree < 0) {
    fail("open_tree", m.source);
  }
  // ro, nosuid, nodev, noexec and atime go on the mount itself, as runc's
  // remount of a bind sets them (submounts keep theirs); "rro" makes every
  // submount read-only too.
  mount_attr attr = bindAttributes(m);
  if (attr.attr_set != 0 && sys::mountSetattr(tree, "", AT_EMPTY_PATH, &attr) != 0) {
    fail("mount_setattr", m.destination);
  }
  if (m.recursive_readonly) {
    mount_attr rro{};
    rro.attr_set = MOUNT_ATTR_RDONLY;
    if (sys::mountSetattr(tree, "", AT_EMPTY_PATH | AT_RECURSIVE, &rro) != 0) {
      fail("mount_setattr recursive read-only", m.destination);
    }
  }
  if (sys::moveMount(tree, "", target, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) !=
      0) {
    fail("move_mount", m.destination);
  }
  // After the move `tree` names the attached mount itself: its propagation
  // (a detached tree has none to change) is set through the same fd.
  if (m.propagation != 0) {
    mount_attr prop{};
    prop.propagation = m.propagation & ~static_cast<unsigned long>(MS_REC);
    unsigned rec = (m.propagation & MS_REC) != 0 ? AT_RECURSIVE : 0;
    if (sys::mountSetattr(tree, "", AT_EMPTY_PATH | rec, &prop) != 0) {
      fail("set mount propagation", m.destination);
    }
  }
  ::close(tree);
}

void mountOne(int rootfd, const MountStep& m) {
  ensureMountpoint(rootfd, m);
  // proc and sysfs only on a real directory, never through a symlink of the
  // image (/proc -> /tmp/x would move them, and what is masked under them),
  // as runc refuses them on anything but an ordinary directory.
  bool plain_dir = m.fstype != nullptr &&
                   (std::strcmp(m.fstype, "proc") == 0 || std::strcmp(m.fstype, "sysfs") == 0);
  int target = plain_dir ? openInRoot(rootfd, m.relative, O_PATH | O_DIRECTORY, RESOLVE_NO_SYMLINKS)
                         : openInRoot(rootfd, m.relative, O_PATH);
  if (target < 0) {
    fail(plain_dir ? "open mount point (a directory, no symlink)" : "open mount point",
         m.destination);
  }
  if (m.bind) {
    bindOnto(target, m);
    ::close(target);
    return;
  }
  char tpath[32];
  fdPath(tpath, target);
  if (::mount(m.source, tpath, m.fstype, m.flags, m.data) != 0) {
    fail("mount", m.destination);
  }
  ::close(target);
  if (m.propagation != 0) {
    // The fd above names the directory under the new mount; reopen to get the mount.
    target = openInRoot(rootfd, m.relative, O_PATH);
    if (target < 0) {
      fail("open mount", m.destination);
    }
    fdPath(tpath, target);
    if (::mount(nullptr, tpath, nullptr, m.propagation, nullptr) != 0) {
      fail("set mount propagation", m.destination);
    }
    ::close(target);
  }
  if (m.is_dev) {
    populateDev(rootfd);
  }
}

void pivotInto(int rootfd) {
  // pivot_root(".", ".") stacks the old root under the new one; detaching it
  // leaves the container with only its own tree.
  if (::fchdir(rootfd) != 0) {
    fail("chdir", "rootfs");
  }
  if (sys::pivotRoot(".", ".") != 0) {
    fail("pivot_root", "rootfs");
  }
  if (::umount2(".", MNT_DETACH) != 0) {
    fail("umount old root", ".");
  }
  if (::chdir("/") != 0) {
    fail("chdir", "/");
  }
}

void maskPaths(const ChildPlan& plan) {
  for (const char* p : plan.masked_paths) {
    struct stat st {};
    if (::lstat(p, &st) != 0) {
      if (errno == ENOENT) {
        continue;
      }
      fail("stat masked path", p);
    }
    int rc = S_ISDIR(st.st_mode) ? ::mount("tmpfs", p, "tmpfs", MS_RDONLY, "size=0")
                                 : ::mount("/dev/null", p, nullptr, MS_BIND, nullptr);
    if (rc != 0) {
      fail("mask", p);
    }
  }
  for (const char* p : plan.readonly_paths) {
    if (::mount(p, p, nullptr, MS_BIND | MS_REC, nullptr) != 0) {
      if (errno == ENOENT) {
        continue;
      }
      fail("bind read-only path", p);
    }
    if (::mount(nullptr, p, nullptr,
                MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
                nullptr) != 0) {
      fail("remount read-only", p);
    }
  }
}

// The propagation the old root gets before pivot_root. pivot_root refuses a
// new root (or its parent) with shared propagation (EINVAL), so a requested
// shared root starts as a slave, as does a slave one (host mounts still come
// in); everything else is private, so nothing we mount reaches the host. The
// requested propagation is set on the new root once the tree is complete.
unsigned long propagationBeforePivot(unsigned long requested) {
  return (requested & (MS_SHARED | MS_SLAVE)) != 0 ? MS_REC | MS_SLAVE : MS_REC | MS_PRIVATE;
}

void setupRootfs(const ChildPlan& plan) {
  if (::mount(nullptr, "/", nullptr, propagationBeforePivot(plan.rootfs_propagation), nullptr) !=
      0) {
    fail("set mount propagation", "/");
  }
  // pivot_root needs the new root to be a mount point.
  if (::mount(plan.rootfs, plan.rootfs, nullptr, MS_BIND | MS_REC, nullptr) != 0) {
    fail("bind rootfs", plan.rootfs);
  }
  int rootfd = ::open(plan.rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (rootfd < 0) {
    fail("open rootfs", plan.rootfs);
  }
  for (const MountStep& m : plan.mounts) {
    mountOne(rootfd, m);
  }
  pivotInto(rootfd);
  ::close(rootfd);
  maskPaths(plan);
  if (plan.readonly_rootfs) {
    // statfs, not glibc's statvfs: the latter may read /proc/mounts with
    // stdio, which allocates.
    struct statfs fs {};
    if (::statfs("/", &fs) != 0) {
      fail("statfs", "/");
    }
    unsigned long keep = (fs.f_flags & ST_NOSUID ? MS_NOSUID : 0) |
                         (fs.f_flags & ST_NODEV ? MS_NODEV : 0) |
                         (fs.f_flags & ST_NOEXEC ? MS_NOEXEC : 0);
    if (::mount(nullptr, "/", nullptr, MS_BIND | MS_REMOUNT | MS_RDONLY | keep, nullptr) != 0) {
      fail("remount rootfs read-only", "/");
    }
  }
  // Last: the masks and read-only paths above are binds, which an unbindable
  // tree would refuse.
  if (plan.rootfs_propagation != 0 &&
      ::mount(nullptr, "/", nullptr, plan.rootfs_propagation, nullptr) != 0) {
    fail("set rootfs propagation", "/");
  }
}

// Writes `value` to a file of the agent's /proc, before pivot_root: the
// container's /proc could be redirected by its mounts or image. The files
// follow the calling process (oom_score_adj) and its namespaces (sysctls of
// net, ipc, uts), not the /proc mount they are reached through.
void writeProcFile(const char* path, const char* value, const char* op) {
  int fd = ::open(path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0 || ::write(fd, value, std::strlen(value)) < 0) {
    fail(op, path);
  }
  ::close(fd);
}

// close_range(first, ~0U, flags), or where the kernel lacks it (ENOSYS before
// 5.9, EINVAL for CLOSE_RANGE_CLOEXEC before 5.11) the same fd by fd up to
// the open-file limit. Any other failure fails the start: a descriptor of the
// agent must not reach the container.
void closeRange(unsigned first, unsigned last, unsigned flags) {
  if (::syscall(SYS_close_range, first, last, flags) == 0) {
    return;
  }
  if (errno != ENOSYS && errno != EINVAL) {
    fail("close_range", "");
  }
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) {
    fail("getrlimit", "RLIMIT_NOFILE");
  }
  for (rlim_t fd = first; fd < limit.rlim_cur && fd <= last; fd++) {
    if ((flags & CLOSE_RANGE_CLOEXEC) != 0) {
      ::fcntl(static_cast<int>(fd), F_SETFD, FD_CLOEXEC);  // EBADF: not open
    } else {
      ::close(static_cast<int>(fd));
    }
  }
}

void closeFrom(unsigned first, unsigned flags) { closeRange(first, ~0U, flags); }

// closeFrom(first), but the detached mounts the mounts step attaches stay
// (plan.tree_fds: sorted, all above first).
void closeFromExceptTrees(const ChildPlan& plan, unsigned first) {
  for (int fd : plan.tree_fds) {
    if (static_cast<unsigned>(fd) > first) {
      closeRange(first, static_cast<unsigned>(fd) - 1, 0);
    }
    first = static_cast<unsigned>(fd) + 1;
  }
  closeFrom(first, 0);
}

void switchUser(const ChildPlan& plan) {
  // Keep the permitted set across the uid change; applySets() then sets exactly
  // what the spec asks for.
  if (::prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0) {
    fail("prctl PR_SET_KEEPCAPS", "");
  }
  // Raw system calls: they change this thread's credentials, which in the
  // child is the whole process. glibc's wrappers would broadcast to threads
  // that do not exist here, under a lock that may have been held at clone.
  if (::syscall(SYS_setgroups, plan.additional_gids.size(), plan.additional_gids.data()) != 0) {
    fail("setgroups", "");
  }
  if (::syscall(SYS_setresgid, plan.gid, plan.gid, plan.gid) != 0) {
    fail("setresgid", "");
  }
  if (::syscall(SYS_setresuid, plan.uid, plan.uid, plan.uid) != 0) {
    fail("setresuid", "");
  }
  if (::prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) != 0) {
    fail("prctl PR_SET_KEEPCAPS", "");
  }
}

void loadSeccomp(const ChildPlan& plan) {
  if (plan.seccomp.filter.empty()) {
    return;
  }
  sock_fprog prog{static_cast<unsigned short>(plan.seccomp.filter.size()),
                  const_cast<sock_filter*>(plan.seccomp.filter.data())};
  if (::syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) != 0) {
    fail("seccomp", "");
  }
}

// A new, anonymous session keyring: otherwise the container shares root's
// session keyring with the node and every other root container, and could read
// or plant keys there (runc gives each container its own too). Before the
// capabilities and the uid change, and before seccomp, which blocks keyctl.
void joinNewSessionKeyring() {
  if (::syscall(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, nullptr) < 0) {
    if (errno == ENOSYS) {
      return;  // a kernel without keys: there is nothing to share
    }
    fail("keyctl join session keyring", "");
  }
  // The possessor (this process and its descendants) may do anything with it;
  // its owner uid (root) may only see, read and search it, as runc sets it.
  // (KEY_POS_ALL | KEY_USR_VIEW | KEY_USR_READ | KEY_USR_SEARCH of keyutils.h,
  // which the kernel's uapi headers do not carry.)
  constexpr uint32_t kPerm = 0x3f000000 | 0x00010000 | 0x00020000 | 0x00080000;
  if (::syscall(SYS_keyctl, KEYCTL_SETPERM, KEY_SPEC_SESSION_KEYRING, kPerm) < 0) {
    fail("keyctl setperm session keyring", "");
  }
}

// Waits until `kernelet oci start` opens the FIFO for reading.
void waitForStart(const ChildPlan& plan) {
  sendReport(g_report_fd, ChildMessage::kReady);
  char path[32];
  int fd = ::open(fdPath(path, g_start_fifo), O_WRONLY | O_CLOEXEC);
  if (fd < 0) {
    fail("open start fifo", plan.start_fifo);
  }
  if (::write(fd, "0", 1) != 1) {
    fail("write start fifo", plan.start_fifo);
  }
  ::close(fd);
  ::close(g_start_fifo);
}

[[noreturn]] void execCommand(const ChildPlan& plan) {
  const char* file = plan.argv[0];
  if (std::strchr(file, '/') != nullptr) {
    ::execve(file, plan.argv.data(), plan.envp.data());
    fail("exec", file);
  }
  // execvpe's PATH search, with the container's PATH rather than ours.
  int err = ENOENT;
  char buf[4096];
  size_t flen = std::strlen(file);
  for (const char* p = plan.path_env; *p != '\0';) {
    const char* end = std::strchr(p, ':');
    size_t dlen = end == nullptr ? std::strlen(p) : static_cast<size_t>(end - p);
    if (dlen > 0 && dlen + 1 + flen < sizeof buf) {
      std::memcpy(buf, p, dlen);
      buf[dlen] = '/';
      std::memcpy(buf + dlen + 1, file, flen + 1);
      ::execve(buf, plan.argv.data(), plan.envp.data());
      if (errno != ENOENT && errno != ENOTDIR) {
        err = errno;  // e.g. EACCES: remember it, as execvp does
      }
    }
    if (end == nullptr) {
      break;
    }
    p = end + 1;
  }
  fail("exec", file, err);
}

}  // namespace

[[noreturn]] void runChild(const ChildPlan& plan, int report_fd) {
  // 0. Not dumpable from the first instruction until execve (which sets it
  //    again by the kernel's rules): this process is a copy of the agent, with
  //    its memory and its /proc/PID/exe, and root in the container (same uid
  //    once we switch, ptrace allowed by RuntimeDefault) must reach neither.
  ::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  g_report_fd = report_fd;

  // 1. A clean signal state: nothing blocked, nothing ignored. The parent
  //    blocked every signal around clone3 and CLONE_CLEAR_SIGHAND reset the
  //    handlers, so no agent handler can run here; ignored ones go to default
  //    before anything is unblocked.
  for (int sig = 1; sig < NSIG; sig++) {
    ::signal(sig, SIG_DFL);
  }
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  ::umask(0);

  // The OOM score through the agent's /proc, before a joined mount namespace
  // (an exec's) puts the container's /proc in its place.
  if (plan.oom_score_adj != nullptr) {
    writeProcFile("/proc/self/oom_score_adj", plan.oom_score_adj, "write");
  }

  // 2. Namespaces to join (those to create came with clone3).
  for (const NamespaceJoin& j : plan.joins) {
    if (::setns(j.fd.get(), j.type) != 0) {
      fail("setns", j.path);
    }
  }
  // Sysctls, now that every namespace is the container's, through the
  // agent's /proc (see writeProcFile): before the container's mounts exist.
  for (const SysctlStep& s : plan.sysctls) {
    writeProcFile(s.path, s.value, "write sysctl");
  }

  // 3. A session of its own, and the stdio it was given.
  ::setsid();
  for (int i = 0; i < 3; i++) {
    if (plan.stdio[i] >= 0 && ::dup2(plan.stdio[i], i) < 0) {
      fail("dup2 stdio", "");
    }
  }
  // The agent's descriptors, inherited with its table, go now: from here on
  // the child needs only stdio, the report pipe (as 3) and with a terminal
  // the console socket (as 4). A node's worth of them would otherwise count
  // against the lower open-file limit the container gets below (rlimits),
  // and every open() would fail with EMFILE.
  int console = -1;
  if (plan.terminal.enabled) {
    // Out of the way first: the caller's number may be 3 or 4.
    console = ::fcntl(plan.console_socket, F_DUPFD_CLOEXEC, 5);
    if (console < 0) {
      fail("dup console socket", "");
    }
  }
  if (g_report_fd != 3) {
    if (::dup3(g_report_fd, 3, O_CLOEXEC) < 0) {
      fail("dup3 report pipe", "");
    }
    g_report_fd = 3;
  }
  if (console >= 0 && ::dup3(console, kConsoleFd, O_CLOEXEC) < 0) {
    fail("dup3 console socket", "");
  }
  closeFromExceptTrees(plan, console >= 0 ? kConsoleFd + 1 : kConsoleFd);

  // A session keyring of its own, for a container and for an exec into one.
  joinNewSessionKeyring();

  // 4. The filesystem: rootfs, mounts, pivot_root, masked and read-only paths.
  if (plan.start_fifo != nullptr) {
    g_start_fifo = ::open(plan.start_fifo, O_PATH | O_CLOEXEC);
    if (g_start_fifo < 0) {
      fail("open start fifo", plan.start_fifo);
    }
  }
  if (plan.rootfs != nullptr) {
    setupRootfs(plan);  // else an exec: the joined mount namespace is the container's
  }
  // 4b. The terminal, of the container's devpts: now that its /dev is the one
  //     we resolve (pivot_root done, or its mount namespace joined), and
  //     while still root (the slave's owner, the devpts' modes), before
  //     seccomp. Opening a terminal leaves the process not dumpable.
  if (plan.terminal.enabled) {
    TerminalPlan t = plan.terminal;
    t.socket = kConsoleFd;
    const char* top = "";
    const char* tpath = "";
    if (int err = setUpTerminal(t, &top, &tpath); err != 0) {
      fail(top, tpath, err);
    }
  }

  // 5. Hostname and rlimits: while still privileged.
  if (plan.hostname != nullptr && ::sethostname(plan.hostname, std::strlen(plan.hostname)) != 0) {
    fail("sethostname", plan.hostname);
  }
  for (const auto& [resource, limit] : plan.rlimits) {
    if (::setrlimit(static_cast<__rlimit_resource>(resource), &limit) != 0) {
      fail("setrlimit", "");
    }
  }

  // 6. Without no_new_privs the kernel only accepts a filter from a process
  //    with CAP_SYS_ADMIN: load it now, before the capabilities go (as runc does).
  if (!plan.no_new_privileges) {
    loadSeccomp(plan);
  }

  // 7. User, groups and capabilities.
  const char* op = "";
  if (int err = plan.caps.dropBounding(&op); err != 0) {
    fail(op, "", err);
  }
  switchUser(plan);
  if (int err = plan.caps.applySets(&op); err != 0) {
    fail(op, "", err);
  }
  // Again: the kernel set dumpable back to fs.suid_dumpable when setresuid
  // changed the effective uid (commit_creds), so with suid_dumpable=1 a
  // non-root container's processes (same uid) could read our memory until
  // the exec.
  if (::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) {
    fail("prctl PR_SET_DUMPABLE", "");
  }
  if (::chdir(plan.cwd) != 0) {
    fail("chdir", plan.cwd);
  }
  if (plan.no_new_privileges && ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
    fail("prctl PR_SET_NO_NEW_PRIVS", "");
  }

  // 8. OCI create: stop here until start.
  if (plan.start_fifo != nullptr) {
    waitForStart(plan);
  }

  // 9. Seccomp last, then exec. No descriptor of ours survives the exec.
  //    kExecing tells the parent that the end of file which follows is the
  //    exec's, not a death in setup; sent before the filter, which could deny
  //    write(2). After an OCI create nobody reads the pipe any more (and a
  //    write would raise SIGPIPE): the start FIFO was our handshake.
  if (plan.start_fifo == nullptr) {
    sendReport(g_report_fd, ChildMessage::kExecing);
  }
  if (plan.no_new_privileges) {
    loadSeccomp(plan);
  }
  ::umask(plan.umask);
  closeFrom(3, CLOSE_RANGE_CLOEXEC);
  execCommand(plan);
}

}  // namespace kernelet::isolation
