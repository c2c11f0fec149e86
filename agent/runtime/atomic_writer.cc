#include "agent/runtime/atomic_writer.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <climits>
#include <ctime>
#include <memory>
#include <set>
#include <vector>

#include "sys/fileio.h"
#include "sys/unique_fd.h"

namespace kernelet::agent {
namespace {

// The volume dir may hold anything a container put there: every name below it
// is looked up relative to a descriptor of the volume dir, one that was opened
// without following a symlink, and every open below it goes through openat2
// with RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS. Nothing the writer reads, writes
// or removes can be outside the volume, whatever links were planted in it.

constexpr char kData[] = "..data";
constexpr char kDataTmp[] = "..data_tmp";
// The kubelet's limits on a payload path (pkg/volume/util/atomic_writer.go).
constexpr size_t kMaxPathLength = 4096;
constexpr size_t kMaxFileNameLength = 255;
// We write a few levels at most; a deeper tree was planted, and is not recursed into forever.
constexpr int kMaxDepth = 32;

using Files = std::map<std::string, VolumeFile>;

// openat2 below `dirfd`: no symlink on the way or at the end, no "..", no
// absolute path, no other mount. EAGAIN means a rename raced the lookup: retry a few times.
int openBeneath(int dirfd, const std::string& rel, uint64_t flags, mode_t mode = 0) {
  open_how how{};
  how.flags = flags | O_CLOEXEC | O_NOFOLLOW;
  how.mode = (flags & O_CREAT) != 0 ? mode : 0;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV;
  int fd = -1;
  for (int attempt = 0; attempt < 8; attempt++) {
    fd = static_cast<int>(::syscall(SYS_openat2, dirfd, rel.c_str(), &how, sizeof how));
    if (fd >= 0 || errno != EAGAIN) {
      break;
    }
  }
  return fd;
}

// The target of a symlink in `dirfd`; nothing when NAME is missing or not a link.
std::optional<std::string> readLinkAt(int dirfd, const std::string& name) {
  char buf[PATH_MAX];
  ssize_t n = ::readlinkat(dirfd, name.c_str(), buf, sizeof buf);
  if (n < 0 || static_cast<size_t>(n) >= sizeof buf) {
    return std::nullopt;
  }
  return std::string(buf, static_cast<size_t>(n));
}

// The names in a directory, "." and ".." left out.
Result<std::vector<std::string>> listDir(int dirfd, const std::string& shown) {
  int fd = openBeneath(dirfd, ".", O_RDONLY | O_DIRECTORY);
  if (fd < 0) {
    return sysError("open", shown);
  }
  std::unique_ptr<DIR, int (*)(DIR*)> d(::fdopendir(fd), ::closedir);
  if (!d) {
    Error e = sysError("opendir", shown).error();
    ::close(fd);
    return std::unexpected(e);
  }
  std::vector<std::string> out;
  errno = 0;
  while (dirent* e = ::readdir(d.get())) {
    std::string name = e->d_name;
    if (name != "." && name != "..") {
      out.push_back(std::move(name));
    }
  }
  if (errno != 0) {
    return sysError("readdir", shown);
  }
  return out;
}

// Removes NAME in `dirfd` and, for a directory, what it holds; a symlink is
// removed itself, never what it points at.
Result<void> removeTree(int dirfd, const std::string& name, const std::string& shown,
                        int depth = 0) {
  struct stat st {};
  if (::fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    return errno == ENOENT ? Result<void>() : sysError("stat", shown);
  }
  if (!S_ISDIR(st.st_mode)) {
    if (::unlinkat(dirfd, name.c_str(), 0) != 0 && errno != ENOENT) {
      return sysError("unlink", shown);
    }
    return {};
  }
  if (depth >= kMaxDepth) {
    return makeError("remove", shown, "more than " + std::to_string(kMaxDepth) + " levels deep");
  }
  UniqueFd fd(openBeneath(dirfd, name, O_PATH | O_DIRECTORY));
  if (!fd) {
    return sysError("open", shown);
  }
  TRY(auto names, listDir(fd.get(), shown));
  for (const auto& n : names) {
    TRY_VOID(removeTree(fd.get(), n, shown + "/" + n, depth + 1));
  }
  if (::unlinkat(dirfd, name.c_str(), AT_REMOVEDIR) != 0 && errno != ENOENT) {
    return sysError("rmdir", shown);
  }
  return {};
}

// The kubelet's validatePath, then path.Clean: relative, no ".." element, not
// starting with ".." (those names are the writer's own), no over-long names.
Result<std::string> cleanPath(const std::string& path) {
  auto bad = [&](const std::string& why) {
    return makeError("write volume file", path, "invalid path: " + why);
  };
  if (path.empty()) {
    return bad("must not be empty");
  }
  if (path.find('\0') != std::string::npos) {
    return bad("must not contain a NUL byte");
  }
  if (path.front() == '/') {
    return bad("must be a relative path");
  }
  if (path.size() > kMaxPathLength) {
    return bad("must be at most " + std::to_string(kMaxPathLength) + " characters");
  }
  std::string clean;
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = std::min(path.find('/', start), path.size());
    std::string item = path.substr(start, end - start);
    start = end + 1;
    if (item == "..") {
      return bad("must not contain '..'");
    }
    if (item.size() > kMaxFileNameLength) {
      return bad("file names must be at most " + std::to_string(kMaxFileNameLength) +
                 " characters");
    }
    if (item.empty() || item == ".") {
      continue;
    }
    if (clean.empty() && item.starts_with("..")) {
      return bad("must not start with '..'");
    }
    clean += (clean.empty() ? "" : "/") + item;
  }
  if (clean.empty()) {
    return bad("must name a file");
  }
  return clean;
}

std::set<std::string> topLevel(const Files& files) {
  std::set<std::string> out;
  for (const auto& [path, f] : files) {
    out.insert(path.substr(0, path.find('/')));
  }
  return out;
}

// A name the writer could have given a timestamped dir: one component, "..".
bool isTimestampName(const std::string& name) {
  return name.size() > 2 && name.starts_with("..") && name.find('/') == std::string::npos &&
         name != kData && name != kDataTmp;
}

// Every entry below `dirfd`: relative path -> its lstat.
bool listTree(int dirfd, const std::string& prefix, int depth,
              std::map<std::string, struct stat>& out) {
  auto names = listDir(dirfd, prefix);
  if (!names || depth >= kMaxDepth) {
    return false;
  }
  for (const auto& n : *names) {
    struct stat st {};
    if (::fstatat(dirfd, n.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      return false;
    }
    std::string rel = prefix.empty() ? n : prefix + "/" + n;
    out[rel] = st;
    if (S_ISDIR(st.st_mode)) {
      UniqueFd sub(openBeneath(dirfd, n, O_PATH | O_DIRECTORY));
      if (!sub || !listTree(sub.get(), rel, depth + 1, out)) {
        return false;
      }
    }
  }
  return true;
}

// Whether the timestamped dir TS holds exactly `want`: the same files, modes
// and contents, and nothing else (a symlink or other file in it is a change).
bool holdsExactly(int root, const std::string& ts, const Files& want) {
  UniqueFd tsfd(openBeneath(root, ts, O_PATH | O_DIRECTORY));
  std::map<std::string, struct stat> entries;
  if (!tsfd || !listTree(tsfd.get(), "", 0, entries)) {
    return false;
  }
  size_t dirs = 0;
  for (const auto& [rel, st] : entries) {
    if (S_ISDIR(st.st_mode)) {
      auto next = want.lower_bound(rel + "/");
      dirs++;
      if (next == want.end() || !next->first.starts_with(rel + "/")) {
        return false;
      }
      continue;
    }
    auto it = want.find(rel);
    if (!S_ISREG(st.st_mode) || it == want.end() ||
        static_cast<int>(st.st_mode & 07777) != it->second.mode ||
        static_cast<size_t>(st.st_size) != it->second.content.size()) {
      return false;
    }
  }
  if (entries.size() - dirs != want.size()) {
    return false;
  }
  for (const auto& [rel, f] : want) {
    // Listed as a regular file, but it may have been swapped since: a FIFO
    // would block this open and the agent's loop with it, so never block and
    // read only what is still a regular file.
    UniqueFd fd(openBeneath(tsfd.get(), rel, O_RDONLY | O_NONBLOCK));
    struct stat st {};
    if (!fd || ::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) {
      return false;
    }
    std::string text(f.content.size() + 1, '\0');
    ssize_t n = ::pread(fd.get(), text.data(), text.size(), 0);
    if (n < 0 || text.substr(0, static_cast<size_t>(n)) != f.content) {
      return false;
    }
  }
  return true;
}

// Whether the volume dir is laid out as the writer leaves it: ..data -> TS, a
// real directory, each top-level name a link through ..data, nothing else.
bool laidOut(int root, const std::string& ts, const std::set<std::string>& top) {
  struct stat st {};
  if (::fstatat(root, ts.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISDIR(st.st_mode)) {
    return false;
  }
  auto names = listDir(root, ts);
  if (!names || names->size() != top.size() + 2) {
    return false;
  }
  for (const auto& n : *names) {
    if (n != kData && n != ts && (!top.contains(n) || readLinkAt(root, n) != "..data/" + n)) {
      return false;
    }
  }
  return true;
}

std::string timestampedName() {
  timespec now{};
  ::clock_gettime(CLOCK_REALTIME, &now);
  tm utc{};
  ::gmtime_r(&now.tv_sec, &utc);
  char buf[64];
  size_t n = std::strftime(buf, sizeof buf, "..%Y_%m_%d_%H_%M_%S.", &utc);
  return std::string(buf, n) + std::to_string(now.tv_nsec);
}

// Writes one file of the payload below the new timestamped dir, its parent
// dirs first; every step is relative to a descriptor below `tsfd`.
Result<void> writeOne(int tsfd, const std::string& rel, const VolumeFile& f,
                      std::optional<gid_t> group, const std::string& shown_ts) {
  std::string shown = shown_ts + "/" + rel;
  std::string made;  // the parent dirs made so far, relative to tsfd
  for (size_t at = 0, slash; (slash = rel.find('/', at)) != std::string::npos; at = slash + 1) {
    std::string name = rel.substr(at, slash - at);
    UniqueFd parent(openBeneath(tsfd, made.empty() ? "." : made, O_PATH | O_DIRECTORY));
    made = rel.substr(0, slash);
    if (!parent || (::mkdirat(parent.get(), name.c_str(), 0755) != 0 && errno != EEXIST)) {
      return sysError("mkdir", shown_ts + "/" + made);
    }
  }
  UniqueFd fd(openBeneath(tsfd, rel, O_WRONLY | O_CREAT | O_EXCL, 0600));
  if (!fd) {
    return sysError("create", shown);
  }
  for (size_t done = 0; done < f.content.size();) {
    ssize_t n = ::write(fd.get(), f.content.data() + done, f.content.size() - done);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0) {
      return sysError("write", shown);
    }
    done += static_cast<size_t>(n);
  }
  // The mode exactly, past the umask; the group before the group bits matter.
  if (group && ::fchown(fd.get(), static_cast<uid_t>(-1), *group) != 0) {
    return sysError("chown", shown);
  }
  if (::fchmod(fd.get(), static_cast<mode_t>(f.mode)) != 0) {
    return sysError("chmod", shown);
  }
  return {};
}

// Steps 4-5 of the kubelet's Write: a new timestamped dir holding the payload.
Result<void> writeGeneration(int root, const std::string& stamp, const Files& want,
                             std::optional<gid_t> group, const std::string& shown) {
  UniqueFd tsfd(openBeneath(root, stamp, O_RDONLY | O_DIRECTORY));
  if (!tsfd) {
    return sysError("open", shown);
  }
  if (group && ::fchown(tsfd.get(), static_cast<uid_t>(-1), *group) != 0) {
    return sysError("chown", shown);
  }
  if (::fchmod(tsfd.get(), 0755) != 0) {
    return sysError("chmod", shown);
  }
  for (const auto& [rel, f] : want) {
    TRY_VOID(writeOne(tsfd.get(), rel, f, group, shown));
  }
  return {};
}

// Step 6: ..data_tmp -> STAMP, renamed over ..data, so readers switch at once.
Result<void> swapData(int root, const std::string& stamp, const std::string& dir) {
  // Whatever sits at ..data_tmp, or a non-link at ..data (rename cannot replace a dir), goes first.
  TRY_VOID(removeTree(root, kDataTmp, dir + "/" + kDataTmp));
  struct stat st {};
  if (::fstatat(root, kData, &st, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISLNK(st.st_mode)) {
    TRY_VOID(removeTree(root, kData, dir + "/" + kData));
  }
  if (::symlinkat(stamp.c_str(), root, kDataTmp) != 0) {
    return sysError("symlink", dir + "/" + kDataTmp);
  }
  if (::renameat(root, kDataTmp, root, kData) != 0) {
    Error e = sysError("rename", dir + "/" + kData).error();
    ::unlinkat(root, kDataTmp, 0);
    return std::unexpected(e);
  }
  return {};
}

// Steps 7-8: each top-level name a link ..data/NAME (a planted file, dir or
// link in its place is replaced), then everything else goes: names no longer
// in the payload, old timestamped dirs, and whatever else was planted.
Result<void> relink(int root, const std::string& stamp, const std::set<std::string>& top,
                    const std::string& dir) {
  for (const auto& name : top) {
    std::string target = std::string(kData) + "/" + name;
    if (readLinkAt(root, name) == target) {
      continue;
    }
    TRY_VOID(removeTree(root, name, dir + "/" + name));
    if (::symlinkat(target.c_str(), root, name.c_str()) != 0) {
      return sysError("symlink", dir + "/" + name);
    }
  }
  TRY(auto names, listDir(root, dir));
  for (const auto& n : names) {
    if (n != kData && n != stamp && !top.contains(n)) {
      TRY_VOID(removeTree(root, n, dir + "/" + n));
    }
  }
  return {};
}

}  // namespace

Result<bool> writeAtomically(const std::string& dir, const Files& files,
                             std::optional<gid_t> group) {
  // Step 1: the payload's paths, checked before anything is touched.
  Files want;
  for (const auto& [path, f] : files) {
    TRY(std::string clean, cleanPath(path));
    VolumeFile v = f;
    if (group) {
      v.mode |= 0440;  // the fsGroup can read every file, as with the kubelet's SetVolumeOwnership
    }
    if (!want.emplace(clean, v).second) {
      return makeError("write volume file", path, "invalid path: names the same file as another");
    }
  }
  TRY(UniqueFd root, openDir(dir));
  std::set<std::string> top = topLevel(want);

  // Steps 2-3: nothing to do when ..data names one of our dirs that holds these files.
  std::optional<std::string> old = readLinkAt(root.get(), kData);
  if (old && isTimestampName(*old) && laidOut(root.get(), *old, top) &&
      holdsExactly(root.get(), *old, want)) {
    return false;
  }

  std::string stamp = timestampedName();
  std::string shown = dir + "/" + stamp;
  if (::mkdirat(root.get(), stamp.c_str(), 0755) != 0) {
    return sysError("mkdir", shown);
  }
  if (auto r = writeGeneration(root.get(), stamp, want, group, shown); !r) {
    Error e = r.error();
    if (auto c = removeTree(root.get(), stamp, shown); !c) {
      e.cleanup.push_back(c.error().message());
    }
    return std::unexpected(e);
  }
  if (auto r = swapData(root.get(), stamp, dir); !r) {
    Error e = r.error();
    if (auto c = removeTree(root.get(), stamp, shown); !c) {
      e.cleanup.push_back(c.error().message());
    }
    return std::unexpected(e);
  }
  TRY_VOID(relink(root.get(), stamp, top, dir));
  return true;
}

}  // namespace kernelet::agent
