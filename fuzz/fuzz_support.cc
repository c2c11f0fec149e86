#include "fuzz/fuzz_support.h"

#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>

namespace kernelet::fuzz {

namespace {

constexpr std::string_view kSeparator = "\n#--#\n";

[[noreturn]] void die(const char* what, const std::string& path) {
  std::fprintf(stderr, "fuzz: %s `%s`: %s\n", what, path.c_str(), std::strerror(errno));
  std::abort();
}

void writeProc(const char* file, const std::string& text) {
  int fd = ::open(file, O_WRONLY | O_CLOEXEC);
  if (fd < 0 || ::write(fd, text.data(), text.size()) != static_cast<ssize_t>(text.size())) {
    die("write", file);
  }
  ::close(fd);
}

}  // namespace

std::vector<std::string> splitParts(const uint8_t* data, size_t size, size_t count) {
  std::string_view rest(reinterpret_cast<const char*>(data), size);
  std::vector<std::string> parts;
  while (parts.size() + 1 < count) {
    size_t at = rest.find(kSeparator);
    if (at == std::string_view::npos) {
      break;
    }
    parts.emplace_back(rest.substr(0, at));
    rest.remove_prefix(at + kSeparator.size());
  }
  parts.emplace_back(rest);
  parts.resize(count);
  return parts;
}

std::string confineToScratch() {
  char cwd[PATH_MAX];
  if (::getcwd(cwd, sizeof cwd) == nullptr) {
    die("getcwd", ".");
  }
  uid_t uid = ::geteuid();
  gid_t gid = ::getegid();
  // Root may create a mount namespace by itself; anyone else needs a user
  // namespace for it (and then stays unprivileged on the host's files).
  if (::unshare(CLONE_NEWNS | (uid == 0 ? 0 : CLONE_NEWUSER)) != 0) {
    die("unshare", "mount namespace");
  }
  if (uid != 0) {
    writeProc("/proc/self/setgroups", "deny");
    writeProc("/proc/self/uid_map", "0 " + std::to_string(uid) + " 1");
    writeProc("/proc/self/gid_map", "0 " + std::to_string(gid) + " 1");
  }
  // Nothing done here may reach the host's mount table.
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
    die("make private", "/");
  }
  // The working directory becomes a mount of its own, so it can stay writable
  // when everything else is made read-only.
  if (::mount(cwd, cwd, nullptr, MS_BIND | MS_REC, nullptr) != 0) {
    die("bind", cwd);
  }
  mount_attr ro{.attr_set = MOUNT_ATTR_RDONLY};
  if (::mount_setattr(AT_FDCWD, "/", AT_RECURSIVE, &ro, sizeof ro) != 0) {
    die("make read-only", "/");
  }
  mount_attr rw{.attr_clr = MOUNT_ATTR_RDONLY};
  if (::mount_setattr(AT_FDCWD, cwd, 0, &rw, sizeof rw) != 0) {
    die("make writable", cwd);
  }
  // In the working directory, not on /tmp: a tmpfs there would hide the
  // checkout (corpus, artifacts) wherever it lives under /tmp, as CI's may.
  // nodev: a device node that an input makes cannot be opened.
  std::string scratch = std::string(cwd) + "/scratch";
  if (::mkdir(scratch.c_str(), 0755) != 0 && errno != EEXIST) {
    die("mkdir", scratch);
  }
  if (::mount("tmpfs", scratch.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, "size=512m,mode=0755") !=
      0) {
    die("mount tmpfs on", scratch);
  }
  return scratch;
}

void confineToLoopback() {
  uid_t uid = ::geteuid();
  gid_t gid = ::getegid();
  if (::unshare(CLONE_NEWNET | (uid == 0 ? 0 : CLONE_NEWUSER)) != 0) {
    die("unshare", "network namespace");
  }
  if (uid != 0) {
    writeProc("/proc/self/setgroups", "deny");
    writeProc("/proc/self/uid_map", "0 " + std::to_string(uid) + " 1");
    writeProc("/proc/self/gid_map", "0 " + std::to_string(gid) + " 1");
  }
  int s = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
  if (s < 0 || ::ioctl(s, SIOCGIFFLAGS, &ifr) != 0) {
    die("get flags of", "lo");
  }
  ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP);
  if (::ioctl(s, SIOCSIFFLAGS, &ifr) != 0) {
    die("bring up", "lo");
  }
  ::close(s);
}

void emptyDir(const std::string& dir) {
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    std::filesystem::remove_all(e.path(), ec);
  }
}

void writeFileOrDie(const std::string& path, std::string_view content) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0 ||
      ::write(fd, content.data(), content.size()) != static_cast<ssize_t>(content.size())) {
    die("write", path);
  }
  ::close(fd);
}

}  // namespace kernelet::fuzz
