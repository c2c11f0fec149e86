#pragma once
// Disk usage of the directories a pod writes (a container's rootfs upper dir,
// its log dir, each emptyDir), measured like `du -sx`: st_blocks of every
// inode (hard links once), no symlink followed, no other filesystem entered,
// and at most `max_entries` entries per walk (a bigger tree is reported as far
// as it was walked). Walking is slow on a big tree, so it never happens on a
// request: FsUsageCache walks on its own thread every interval and a request
// reads the last figure with the time it was measured.

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "agent/stats/cgroup_stats.h"
#include "sys/result.h"
#include "sys/stoppable_thread.h"

namespace kernelet::agent::stats {

struct DiskUsage {
  uint64_t bytes = 0;      // st_blocks * 512
  uint64_t inodes = 0;     // entries counted, the top directory included
  bool truncated = false;  // max_entries or the depth bound was reached
  Clock::time_point time;
};

inline constexpr size_t kDefaultMaxEntries = 1000000;

// One walk, on the calling thread. An error only if `path` itself cannot be opened.
Result<DiskUsage> measureDiskUsage(const std::string& path,
                                   size_t max_entries = kDefaultMaxEntries);

// statvfs of the filesystem holding `path`.
struct FsCapacity {
  uint64_t capacity = 0, available = 0, used = 0;
  uint64_t inodes = 0, inodes_free = 0, inodes_used = 0;
  Clock::time_point time;
};
Result<FsCapacity> fsCapacity(const std::string& path);

class FsUsageCache {
 public:
  // `targets` says, on the cache's thread, which directories to measure on
  // this pass; directories no longer named are forgotten.
  using Targets = std::function<std::vector<std::string>()>;
  FsUsageCache(Targets targets, std::chrono::milliseconds interval,
               size_t max_entries = kDefaultMaxEntries);
  ~FsUsageCache();
  FsUsageCache(const FsUsageCache&) = delete;
  FsUsageCache& operator=(const FsUsageCache&) = delete;

  // Starts the thread; the first pass begins at once.
  void start();
  // The last measure of `path`, if any pass measured it.
  std::optional<DiskUsage> get(const std::string& path) const;
  // Passes completed so far.
  uint64_t passes() const;
  // Asks for a pass now and waits (at most `timeout`) until one that began
  // after this call has ended. False on timeout or stop.
  bool refreshAndWait(std::chrono::milliseconds timeout);

 private:
  void run();

  const Targets targets_;
  const std::chrono::milliseconds interval_;
  const size_t max_entries_;
  // Guarded by thread_.mutex():
  std::map<std::string, DiskUsage> usage_;
  uint64_t passes_ = 0, started_ = 0;
  bool wake_ = false;
  mutable StoppableThread thread_;  // last: stopped first
};

}  // namespace kernelet::agent::stats
