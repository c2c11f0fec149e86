#pragma once
// ROOT/pods/<uid>/status.json, the files `kernelet pods` reads, written in
// batches: every change of a pod marks it dirty, and the pods marked during
// one turn of the loop are written once each, on the next turn, with the
// status as it is then. A pod whose containers start, become ready and get
// an IP in one turn costs one write instead of several.
//
// What must survive a crash: each file is replaced by rename, so a reader
// never sees a torn file, and without an fsync. Nothing reads these files
// after a crash of the node: the agent's recovery removes ROOT/pods at start
// (agent/runtime/recovery.cc), and a new agent writes every pod's status again. The
// one kind of status worth a disk flush is a terminal one (phase Succeeded or
// Failed): it is the last word on a pod whose processes are gone, which an
// agent that adopts pods after a restart will read back. Those are written with
// their data fsynced, and their directories fsynced once per batch after all
// renames, so the flushes of one batch are paid together.

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "sys/result.h"
#include "sys/timer_queue.h"

namespace kernelet::agent {

class StatusFiles {
 public:
  struct Content {
    std::string json;
    bool terminal = false;  // written durably (see above)
  };
  // The status as it is when the batch is written; nullopt: nothing to write
  // (the pod is gone, or its uid is not fit to be a path component).
  using Render = std::function<std::optional<Content>()>;
  // Writes one file; the default is writeFileAtomic, with Sync::kData when durable.
  using WriteFn =
      std::function<Result<void>(const std::string& path, std::string_view json, bool durable)>;
  // Makes a directory's renames durable; the default is syncDir.
  using SyncDirFn = std::function<Result<void>(const std::string& dir)>;

  // `pods_dir` is ROOT/pods. `timers` (on the agent's loop) must outlive this.
  StatusFiles(TimerQueue& timers, std::string pods_dir, WriteFn write = {}, SyncDirFn sync = {});
  ~StatusFiles();
  StatusFiles(const StatusFiles&) = delete;
  StatusFiles& operator=(const StatusFiles&) = delete;

  // The pod's status changed: its file is written in this turn's batch.
  void changed(const std::string& uid, Render render);
  // The pod is being removed: a pending write must not bring its file back.
  void forget(const std::string& uid);
  // Writes the pending batch now (the timer does this on the next turn).
  void flush();
  size_t pending() const { return dirty_.size(); }

 private:
  TimerQueue& timers_;
  std::string pods_dir_;
  WriteFn write_;
  SyncDirFn sync_;
  std::map<std::string, Render> dirty_;  // by uid: the latest render wins
  TimerQueue::Id timer_ = 0;
  // Timer callbacks hold this weakly: TimerQueue takes due timers out before
  // running them, so cancel() cannot stop one that is due in the same round
  // as the callback that destroys this object.
  std::shared_ptr<char> life_ = std::make_shared<char>();
};

}  // namespace kernelet::agent
