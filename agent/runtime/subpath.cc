#include "agent/runtime/subpath.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <set>
#include <vector>

#include "sys/syscalls.h"

namespace kernelet::agent {

namespace {

// openat2 below `dir`: symlinks may be followed, but never out of `dir`, and
// no /proc magic link (whose target is not a path at all).
int openBeneath(int dir, const std::string& rel, int flags) {
  open_how how{};
  how.flags = static_cast<uint64_t>(flags | O_CLOEXEC);
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
  int fd = -1;
  // EAGAIN: a rename or mount elsewhere on the system raced a ".." of the
  // lookup. A few tries, not more: a container that renames in a loop while
  // its symlinks make each lookup slow could otherwise hold the agent's loop
  // here for good; the start fails instead and is retried with back-off.
  for (int tries = 0; tries < 16; tries++) {
    fd = static_cast<int>(::syscall(SYS_openat2, dir, rel.c_str(), &how, sizeof how));
    if (fd >= 0 || errno != EAGAIN) {
      break;
    }
  }
  return fd;
}

std::vector<std::string> components(const std::string& path) {
  std::vector<std::string> out;
  for (size_t at = 0; at <= path.size();) {
    size_t end = std::min(path.find('/', at), path.size());
    std::string part = path.substr(at, end - at);
    if (!part.empty() && part != ".") {
      out.push_back(std::move(part));
    }
    at = end + 1;
  }
  return out;
}

// Creates the missing directories of `parts` below `volume_dir`. Each parent
// is resolved from the volume again (a symlink inside it may lead elsewhere
// inside it), and the new directory is made by name under that fd: mkdirat
// never follows a symlink in its last component (one planted there is EEXIST,
// and the open after it refuses it).
Result<void> makeDirs(int volume_dir, const std::vector<std::string>& parts, mode_t mode) {
  std::string prefix;
  for (const std::string& name : parts) {
    std::string path = prefix.empty() ? name : prefix + "/" + name;
    UniqueFd existing(openBeneath(volume_dir, path, O_PATH));
    if (existing) {
      prefix = path;
      continue;
    }
    if (errno != ENOENT) {
      return sysError("open subPath component", path);
    }
    UniqueFd parent(prefix.empty() ? ::fcntl(volume_dir, F_DUPFD_CLOEXEC, 0)
                                   : openBeneath(volume_dir, prefix, O_PATH | O_DIRECTORY));
    if (!parent) {
      return sysError("open subPath component", prefix);
    }
    if (::mkdirat(parent.get(), name.c_str(), mode) != 0 && errno != EEXIST) {
      return sysError("create subPath directory", path);
    }
    // The mode again: mkdirat's went through the umask. Opened without
    // following a symlink, so a link swapped in for the new directory is
    // refused instead of having its target's mode changed.
    open_how how{};
    how.flags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS;
    UniqueFd made(
        static_cast<int>(::syscall(SYS_openat2, parent.get(), name.c_str(), &how, sizeof how)));
    if (!made) {
      return sysError("open created subPath directory", path);
    }
    if (::fchmod(made.get(), mode) != 0) {
      return sysError("chmod subPath directory", path);
    }
    prefix = path;
  }
  return {};
}

}  // namespace

Result<std::string> expandSubPathExpr(const std::string& expr,
                                      const std::map<std::string, std::string>& env) {
  // The grammar of Kubernetes' expansion.Expand, with every reference replaced
  // (by nothing when unset) and the unset ones collected.
  std::string out;
  std::set<std::string> missing;
  for (size_t i = 0; i < expr.size(); i++) {
    if (expr[i] != '$' || i + 1 >= expr.size()) {
      out += expr[i];
      continue;
    }
    char next = expr[i + 1];
    size_t close = next == '(' ? expr.find(')', i + 2) : std::string::npos;
    if (next == '$') {
      out += '$';
    } else if (next == '(' && close != std::string::npos) {
      std::string name = expr.substr(i + 2, close - i - 2);
      auto it = env.find(name);
      if (it == env.end() || it->second.empty()) {
        missing.insert(name);
      } else {
        out += it->second;
      }
      i = close;
      continue;
    } else {
      out += '$';  // "$(" unclosed, or '$' before anything else: both as written
      out += next;
    }
    i++;
  }
  if (!missing.empty()) {
    std::string names;
    for (const std::string& n : missing) {
      names += (names.empty() ? "" : ", ") + n;
    }
    return std::unexpected(Error{.op = "missing value for " + names});
  }
  return out;
}

Result<std::string> mountSubPath(const VolumeMount& m,
                                 const std::map<std::string, std::string>& env) {
  std::string sub_path = m.sub_path;
  if (!m.sub_path_expr.empty()) {
    TRY(sub_path, expandSubPathExpr(m.sub_path_expr, env));
  }
  if (sub_path.empty()) {
    return sub_path;
  }
  // The kubelet's words (makeMounts): an expansion may have made either.
  if (sub_path.starts_with('/')) {
    return std::unexpected(
        Error{.op = "error SubPath `" + sub_path + "` must not be an absolute path"});
  }
  for (const std::string& part : components(sub_path)) {
    if (part == "..") {
      return std::unexpected(
          Error{.op = "unable to provision SubPath `" + sub_path + "`: must not contain '..'"});
    }
  }
  return sub_path;
}

Result<void> makeSubPathDirs(int volume_dir, const std::string& sub_path) {
  std::vector<std::string> parts = components(sub_path);
  if (sub_path.starts_with('/') || parts.empty()) {
    return makeError("create subPath", sub_path, "must be a relative path below the volume");
  }
  // Whatever else is wrong (a link out of the volume) is for the open to say.
  if (UniqueFd fd(openBeneath(volume_dir, sub_path, O_PATH)); fd || errno != ENOENT) {
    return {};
  }
  struct stat st {};
  if (::fstat(volume_dir, &st) != 0) {
    return sysError("stat volume directory");
  }
  return makeDirs(volume_dir, parts, st.st_mode & 07777);
}

Result<UniqueFd> openSubPath(int volume_dir, const std::string& sub_path) {
  if (sub_path.starts_with('/') || components(sub_path).empty()) {
    return makeError("open subPath", sub_path, "must be a relative path below the volume");
  }
  UniqueFd fd(openBeneath(volume_dir, sub_path, O_PATH));
  if (!fd) {
    if (errno == EXDEV) {
      return makeError("open subPath", sub_path, "resolves outside of the volume");
    }
    return sysError("open subPath", sub_path);
  }
  return fd;
}

Result<UniqueFd> detachedMount(int fd, bool recursive) {
  unsigned rec = recursive ? AT_RECURSIVE : 0;
  UniqueFd tree(sys::openTree(fd, "", AT_EMPTY_PATH | OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | rec));
  if (!tree) {
    return sysError("open_tree subPath");
  }
  mount_attr attr{};
  attr.propagation = MS_PRIVATE;
  if (sys::mountSetattr(tree.get(), "", AT_EMPTY_PATH | AT_RECURSIVE, &attr) != 0) {
    return sysError("make subPath mount private");
  }
  return tree;
}

}  // namespace kernelet::agent
