#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sstream>
#include <thread>

#include "cgroups/cgroups.h"
#include "sys/fileio.h"

namespace kernelet::cgroups {

Result<Cgroup> Cgroup::open(const std::string& mount, const std::string& relative) {
  std::string path = mount + "/" + relative;
  TRY(UniqueFd dir, openDir(path));
  return Cgroup(path, std::move(dir));
}

Result<Cgroup> Cgroup::create(const std::string& mount, const std::string& relative) {
  // Walk down from the mount with *at() calls, creating what is missing.
  TRY(UniqueFd dir, openDir(mount));
  std::string path = mount;
  std::istringstream parts(relative);
  for (std::string part; std::getline(parts, part, '/');) {
    if (part.empty() || part == "." || part == "..") {
      if (part == "..") {
        return makeError("create cgroup", mount + "/" + relative, "'..' is not allowed");
      }
      continue;
    }
    path += "/" + part;
    if (::mkdirat(dir.get(), part.c_str(), 0755) != 0 && errno != EEXIST) {
      return sysError("mkdir", path);
    }
    TRY(UniqueFd next, openDirAt(dir.get(), part, path));
    dir = std::move(next);
  }
  return Cgroup(path, std::move(dir));
}

Result<std::string> Cgroup::read(const std::string& file) const {
  return readFileAt(dir_.get(), file, path_ + "/" + file);
}

Result<void> Cgroup::write(const std::string& file, const std::string& value) {
  return writeFileAt(dir_.get(), file, value, path_ + "/" + file);
}

Result<void> Cgroup::enableControllers(const std::vector<std::string>& controllers) {
  std::string line;
  for (const std::string& c : controllers) {
    line += (line.empty() ? "+" : " +") + c;
  }
  return write("cgroup.subtree_control", line);
}

Result<bool> Cgroup::populated() const {
  TRY(std::string events, read("cgroup.events"));
  return events.find("populated 1") != std::string::npos;
}

Result<void> Cgroup::addProcess(pid_t pid) { return write("cgroup.procs", std::to_string(pid)); }

Result<std::vector<pid_t>> Cgroup::processes() const {
  TRY(std::string procs, read("cgroup.procs"));
  std::vector<pid_t> out;
  std::istringstream in(procs);
  for (pid_t p; in >> p;) {
    out.push_back(p);
  }
  return out;
}

namespace {

// Removes the child groups of `dir` depth first; the caller removes `dir` itself.
Result<void> removeChildren(int dirfd, const std::string& path) {
  int fd = ::openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    return sysError("open", path);
  }
  DIR* d = ::fdopendir(fd);
  if (d == nullptr) {
    ::close(fd);
    return sysError("opendir", path);
  }
  std::vector<std::string> children;
  while (dirent* e = ::readdir(d)) {
    if (e->d_type == DT_DIR && std::string_view(e->d_name) != "." &&
        std::string_view(e->d_name) != "..") {
      children.emplace_back(e->d_name);
    }
  }
  ::closedir(d);
  for (const std::string& c : children) {
    std::string child_path = path + "/" + c;
    TRY(UniqueFd child, openDirAt(dirfd, c, child_path));
    TRY_VOID(removeChildren(child.get(), child_path));
    if (::unlinkat(dirfd, c.c_str(), AT_REMOVEDIR) != 0 && errno != ENOENT) {
      return sysError("rmdir", child_path);
    }
  }
  return {};
}

}  // namespace

Result<void> Cgroup::remove(int timeout_ms) {
  if (!dir_) {
    return {};
  }
  // cgroup.kill (5.14+) SIGKILLs the whole subtree at once, without racing forks.
  TRY(bool busy, populated());
  if (busy) {
    TRY_VOID(write("cgroup.kill", "1"));
    // Killed processes leave asynchronously; wait for "populated 0".
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    for (;;) {
      TRY(bool still, populated());
      if (!still) {
        break;
      }
      if (std::chrono::steady_clock::now() > deadline) {
        return makeError(
            "remove cgroup", path_,
            "processes still running " + std::to_string(timeout_ms) + " ms after cgroup.kill");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
  return removeTree();
}

Result<void> Cgroup::removeTree() {
  if (!dir_) {
    return {};
  }
  TRY_VOID(removeChildren(dir_.get(), path_));
  dir_.reset();
  if (::rmdir(path_.c_str()) != 0 && errno != ENOENT) {
    return sysError("rmdir", path_);
  }
  return {};
}

namespace {

// "kubepods" under the configured cgroup root, relative to the mount.
}  // namespace

std::string kubepodsPath(const std::string& cgroup_root) {
  std::string base = cgroup_root + "/kubepods";
  while (base.starts_with("/")) {
    base.erase(0, 1);
  }
  return base;
}

std::string podCgroupPath(const std::string& cgroup_root, QosClass qos, const std::string& uid) {
  std::string base = kubepodsPath(cgroup_root);
  switch (qos) {
    case QosClass::kGuaranteed:
      return base + "/pod" + uid;
    case QosClass::kBurstable:
      return base + "/burstable/pod" + uid;
    case QosClass::kBestEffort:
      return base + "/besteffort/pod" + uid;
  }
  return base + "/pod" + uid;
}

Result<void> ensureQosTree(const std::string& mount, const std::string& cgroup_root,
                           const std::vector<std::string>& controllers) {
  // Each level must delegate the controllers to the next one.
  TRY(Cgroup top, Cgroup::open(mount, ""));
  if (!controllers.empty()) {
    TRY_VOID(top.enableControllers(controllers));
  }
  std::string walked;
  std::istringstream parts(kubepodsPath(cgroup_root));
  for (std::string part; std::getline(parts, part, '/');) {
    if (part.empty()) {
      continue;
    }
    walked += (walked.empty() ? "" : "/") + part;
    TRY(Cgroup level, Cgroup::create(mount, walked));
    if (!controllers.empty()) {
      TRY_VOID(level.enableControllers(controllers));
    }
  }
  for (const char* q : {"burstable", "besteffort"}) {
    TRY(Cgroup g, Cgroup::create(mount, walked + "/" + q));
    if (!controllers.empty()) {
      TRY_VOID(g.enableControllers(controllers));
    }
  }
  return {};
}

}  // namespace kernelet::cgroups
