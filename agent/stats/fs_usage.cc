#include "agent/stats/fs_usage.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <memory>
#include <set>
#include <utility>

#include "sys/unique_fd.h"

namespace kernelet::agent::stats {

namespace {

// Deeper directories are not entered: each level holds one open fd.
constexpr size_t kMaxDepth = 64;

struct Walk {
  dev_t dev = 0;
  size_t max_entries = 0;
  DiskUsage usage;
  std::set<std::pair<dev_t, ino_t>> linked;  // inodes with nlink > 1 seen

  bool full() const { return usage.inodes >= max_entries; }

  void count(const struct stat& st) {
    if (!S_ISDIR(st.st_mode) && st.st_nlink > 1 && !linked.emplace(st.st_dev, st.st_ino).second) {
      return;  // another name of an inode already counted
    }
    ++usage.inodes;
    usage.bytes += static_cast<uint64_t>(st.st_blocks) * 512;
  }

  // The entries of the open directory `fd` (taken), recursively.
  void dir(int fd, size_t depth) {
    std::unique_ptr<DIR, int (*)(DIR*)> d(fdopendir(fd), closedir);
    if (!d) {
      close(fd);
      return;
    }
    while (dirent* e = readdir(d.get())) {
      std::string_view name = e->d_name;
      if (name == "." || name == "..") {
        continue;
      }
      if (full()) {
        usage.truncated = true;
        return;
      }
      struct stat st {};
      if (fstatat(dirfd(d.get()), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
        continue;  // removed while we walk: nothing to count
      }
      if (S_ISDIR(st.st_mode) && st.st_dev != dev) {
        continue;  // a mount point: another filesystem's usage (du -x)
      }
      count(st);
      if (!S_ISDIR(st.st_mode)) {
        continue;
      }
      if (depth + 1 >= kMaxDepth) {
        usage.truncated = true;
        continue;
      }
      int child = openat(dirfd(d.get()), e->d_name,
                         O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC | O_NOATIME);
      if (child < 0) {
        // O_NOATIME needs ownership; retry without it.
        child = openat(dirfd(d.get()), e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      }
      if (child >= 0) {
        dir(child, depth + 1);
      }
    }
  }
};

}  // namespace

Result<DiskUsage> measureDiskUsage(const std::string& path, size_t max_entries) {
  int fd = open(path.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    return sysError("measure disk usage: open", path);
  }
  struct stat st {};
  if (fstat(fd, &st) != 0) {
    auto err = sysError("measure disk usage: stat", path);
    close(fd);
    return err;
  }
  Walk w;
  w.dev = st.st_dev;
  w.max_entries = max_entries;
  w.count(st);
  w.dir(fd, 0);
  w.usage.time = Clock::now();
  return w.usage;
}

Result<FsCapacity> fsCapacity(const std::string& path) {
  struct statvfs v {};
  if (statvfs(path.c_str(), &v) != 0) {
    return sysError("statvfs", path);
  }
  FsCapacity c;
  c.time = Clock::now();
  c.capacity = static_cast<uint64_t>(v.f_blocks) * v.f_frsize;
  c.available = static_cast<uint64_t>(v.f_bavail) * v.f_frsize;
  c.used = static_cast<uint64_t>(v.f_blocks - v.f_bfree) * v.f_frsize;
  c.inodes = v.f_files;
  c.inodes_free = v.f_ffree;
  c.inodes_used = v.f_files - v.f_ffree;
  return c;
}

FsUsageCache::FsUsageCache(Targets targets, std::chrono::milliseconds interval, size_t max_entries)
    : targets_(std::move(targets)), interval_(interval), max_entries_(max_entries) {}

FsUsageCache::~FsUsageCache() { thread_.join(); }

void FsUsageCache::start() {
  thread_.start([this] { run(); });
}

std::optional<DiskUsage> FsUsageCache::get(const std::string& path) const {
  std::lock_guard lock(thread_.mutex());
  auto it = usage_.find(path);
  if (it == usage_.end()) {
    return std::nullopt;
  }
  return it->second;
}

uint64_t FsUsageCache::passes() const {
  std::lock_guard lock(thread_.mutex());
  return passes_;
}

bool FsUsageCache::refreshAndWait(std::chrono::milliseconds timeout) {
  std::unique_lock lock(thread_.mutex());
  // A pass that began after now ends with passes_ > started_ (as of now).
  uint64_t target = started_ + 1;
  wake_ = true;
  thread_.notify();
  return thread_.waitFor(lock, timeout, [&] { return passes_ >= target; }) && passes_ >= target;
}

void FsUsageCache::run() {
  while (true) {
    {
      std::unique_lock lock(thread_.mutex());
      wake_ = false;
      ++started_;
    }
    std::vector<std::string> paths = targets_();
    std::map<std::string, DiskUsage> measured;
    for (const auto& p : paths) {
      if (auto u = measureDiskUsage(p, max_entries_)) {
        measured.emplace(p, *u);
      }
      // A directory that is not (yet) there has no usage: left out.
    }
    {
      std::unique_lock lock(thread_.mutex());
      usage_ = std::move(measured);
      ++passes_;
      thread_.notify();
      if (!thread_.waitFor(lock, interval_, [&] { return wake_; })) {
        return;
      }
    }
  }
}

}  // namespace kernelet::agent::stats
