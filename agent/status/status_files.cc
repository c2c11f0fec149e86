#include "agent/status/status_files.h"

#include <filesystem>
#include <vector>

#include "agent/log.h"
#include "sys/fileio.h"

namespace kernelet::agent {

StatusFiles::StatusFiles(TimerQueue& timers, std::string pods_dir, WriteFn write, SyncDirFn sync)
    : timers_(timers),
      pods_dir_(std::move(pods_dir)),
      write_(std::move(write)),
      sync_(std::move(sync)) {
  if (!write_) {
    write_ = [](const std::string& path, std::string_view json, bool durable) {
      return writeFileAtomic(path, json, 0644, durable ? Sync::kData : Sync::kNone);
    };
  }
  if (!sync_) {
    sync_ = [](const std::string& dir) { return syncDir(dir); };
  }
}

StatusFiles::~StatusFiles() { timers_.cancel(timer_); }

void StatusFiles::changed(const std::string& uid, Render render) {
  dirty_[uid] = std::move(render);
  if (timer_ == 0) {
    // A timer that is already due runs on the loop's next turn: after every
    // change this turn makes, which is what coalesces them.
    timer_ = timers_.after(std::chrono::seconds(0), [this, life = std::weak_ptr<char>(life_)] {
      if (life.expired()) {
        return;
      }
      timer_ = 0;
      flush();
    });
  }
}

void StatusFiles::forget(const std::string& uid) { dirty_.erase(uid); }

void StatusFiles::flush() {
  timers_.cancel(timer_);
  timer_ = 0;
  std::map<std::string, Render> batch;
  batch.swap(dirty_);
  std::vector<std::string> durable_dirs;
  for (auto& [uid, render] : batch) {
    std::optional<Content> content = render();
    if (!content) {
      continue;
    }
    std::string dir = pods_dir_ + "/" + uid;
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (auto r = write_(dir + "/status.json", content->json, content->terminal); !r) {
      log::error("Write pod status", {{"err", r.error().message()}});
    } else if (content->terminal) {
      durable_dirs.push_back(dir);
    }
  }
  // After all renames of the batch: one flush of each directory that holds a
  // terminal status, so that its rename survives a crash too.
  if (!durable_dirs.empty()) {
    durable_dirs.push_back(pods_dir_);  // where a new pod's directory was made
  }
  for (const std::string& dir : durable_dirs) {
    if (auto r = sync_(dir); !r) {
      log::error("Write pod status", {{"err", r.error().message()}});
    }
  }
}

}  // namespace kernelet::agent
