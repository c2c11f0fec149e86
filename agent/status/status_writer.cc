#include "agent/status/status_writer.h"

#include <algorithm>
#include <optional>

#include "agent/log/log.h"
#include "apiclient/json_fields.h"
#include "apiclient/merge_patch.h"
#include "apiclient/objects.h"

namespace kernelet::agent {

using apiclient::resourcePath;

StatusWriter::StatusWriter(apiclient::ApiClient& client, MirrorPods& mirrors, LoopQueue& to_loop)
    : client_(client), mirrors_(mirrors), to_loop_(to_loop) {
  thread_.start([this] { run(); });
}

void StatusWriter::podStatus(const std::string& uid, const std::string& namespace_,
                             const std::string& name, const std::string& status, bool is_static) {
  {
    std::lock_guard lock(thread_.mutex());
    dirty_[uid] = {namespace_, name, status, is_static};
    if (is_static) {
      static_status_[namespace_ + "/" + name] = {uid, dirty_[uid]};
    }
  }
  thread_.notify();
}

void StatusWriter::finalDelete(const std::string& uid, const std::string& namespace_,
                               const std::string& name, std::function<void()> done) {
  {
    std::lock_guard lock(thread_.mutex());
    deletions_.push_back({uid, namespace_, name, std::move(done)});
  }
  thread_.notify();
}

void StatusWriter::retainStatic(const std::set<std::string>& keys) {
  std::lock_guard lock(thread_.mutex());
  std::erase_if(static_status_, [&](const auto& kv) { return !keys.contains(kv.first); });
}

void StatusWriter::apiStatus(const std::string& uid, std::string status, bool bound) {
  std::lock_guard lock(thread_.mutex());
  api_status_[uid] = std::move(status);
  if (bound) {
    bound_.insert(uid);
  }
}

void StatusWriter::apiPodGone(const std::string& uid) {
  std::lock_guard lock(thread_.mutex());
  api_status_.erase(uid);
  bound_.erase(uid);
}

void StatusWriter::mirrorsChanged() {
  {
    std::lock_guard lock(thread_.mutex());
    mirrors_dirty_ = true;
  }
  thread_.notify();
}

// Sends one pod's latest status as a strategic merge patch of the API's
// status against ours; true when nothing is left to send for it.
bool StatusWriter::writeStatus(const std::string& uid) {
  Pending p;
  std::string target_uid, base;
  {
    std::lock_guard lock(thread_.mutex());
    auto it = dirty_.find(uid);
    if (it == dirty_.end()) {
      return true;
    }
    p = it->second;
    if (p.is_static) {
      auto mirror = mirrors_.mirrorUid(p.namespace_ + "/" + p.name);
      if (!mirror) {
        log::v(4, "No mirror pod yet", {{"pod", p.namespace_ + "/" + p.name}});
        return false;  // its mirror pod is not there yet
      }
      target_uid = *mirror;
    } else {
      target_uid = uid;
      if (!bound_.contains(uid)) {
        dirty_.erase(it);  // gone from the API: nobody to tell
        return true;
      }
    }
    auto b = api_status_.find(target_uid);
    base = b != api_status_.end() ? b->second : "{}";
  }
  // The conditions other controllers own (readiness gates) stay as the API
  // has them, as the kubelet's mergePodStatus keeps them.
  static const std::set<std::string> kOwned = {"PodScheduled",
                                               "Ready",
                                               "Initialized",
                                               "ContainersReady",
                                               "PodReadyToStartContainers",
                                               "PodResizePending",
                                               "PodResizeInProgress"};
  auto status = apiclient::keepForeignConditions(base, p.status, kOwned);
  auto patch = apiclient::twoWayMergePatch(
      base, "{\"status\":" + (status ? *status : p.status) + "}", apiclient::podStatusMergeKeys());
  if (!patch) {
    log::error("Compute status patch",
               {{"pod", p.namespace_ + "/" + p.name}, {"err", patch.error().message()}});
    std::lock_guard lock(thread_.mutex());
    dirty_.erase(uid);
    return true;
  }
  log::v(4, "Pod status patch", {{"pod", p.namespace_ + "/" + p.name}, {"patch", *patch}});
  if (*patch != "{}") {
    std::string body = *patch;
    body.insert(1, R"("metadata":{"uid":")" + target_uid + R"("},)");  // the uid guard
    auto r = client_.patch(resourcePath("v1", "pods", p.namespace_, p.name, "status"),
                           apiclient::PatchType::kStrategicMerge, body);
    if (!r && r.error().code != 404 && r.error().code != 409) {
      log::error("Failed to update status for pod",
                 {{"pod", p.namespace_ + "/" + p.name}, {"err", r.error().str()}});
      return false;  // kept: sent again when the API answers
    }
    if (r) {
      auto answer = apiclient::parseApiJson(*r, "pod " + p.namespace_ + "/" + p.name);
      std::string status = answer ? apiclient::statusOf(*answer) : "{}";
      std::lock_guard lock(thread_.mutex());
      api_status_[target_uid] = std::move(status);
    }
  }
  std::lock_guard lock(thread_.mutex());
  auto it = dirty_.find(uid);
  if (it != dirty_.end() && it->second.status == p.status) {
    dirty_.erase(it);  // unless a newer one came meanwhile
  }
  return true;
}

void StatusWriter::nodeBeat(const std::string& node_uid) {
  {
    std::lock_guard lock(thread_.mutex());
    node_uid_ = node_uid;
    mirrors_dirty_ = true;
  }
  thread_.notify();
}

// A new mirror (maybe after someone deleted the old one) gets its static
// pod's status at once.
bool StatusWriter::syncMirrors() {
  std::string node_uid;
  {
    std::lock_guard lock(thread_.mutex());
    node_uid = node_uid_;
  }
  std::vector<MirrorPods::Created> created;
  bool ok = mirrors_.sync(node_uid, created);
  std::lock_guard lock(thread_.mutex());
  for (auto& c : created) {
    api_status_[c.uid] = std::move(c.status);
    if (auto st = static_status_.find(c.key); st != static_status_.end()) {
      dirty_[st->second.first] = st->second.second;
    }
  }
  return ok;
}

// Its final status first, then the DELETE that takes it from the API; false
// when it must be tried again.
bool StatusWriter::deletePod(Deletion& d) {
  (void)writeStatus(d.uid);  // best effort: the pod is deleted whether or not it went through
  auto r = client_.remove(resourcePath("v1", "pods", d.namespace_, d.name),
                          {.grace_period_seconds = 0, .precondition_uid = d.uid});
  if (r || r.error().code == 404 || r.error().code == 409) {
    log::v(2, "Pod deleted from the API", {{"pod", d.namespace_ + "/" + d.name}});
    to_loop_.post(std::move(d.done));
    return true;
  }
  log::error("Failed to delete pod", {{"err", r.error().str()}});
  return false;
}

void StatusWriter::run() {
  for (;;) {
    std::vector<std::string> uids;
    bool mirrors = false;
    std::optional<Deletion> deletion;
    {
      std::unique_lock lock(thread_.mutex());
      if (!thread_.waitFor(lock, std::chrono::seconds(1), [this] {
            return !dirty_.empty() || !deletions_.empty() || mirrors_dirty_;
          })) {
        return;
      }
      for (const auto& [uid, p] : dirty_) {
        uids.push_back(uid);
      }
      mirrors = mirrors_dirty_;
      mirrors_dirty_ = false;
      if (!deletions_.empty()) {
        deletion = std::move(deletions_.front());
        deletions_.pop_front();
      }
    }
    bool failed = false;
    if (mirrors) {
      failed = !syncMirrors() || failed;
    }
    for (const auto& uid : uids) {
      failed = !writeStatus(uid) || failed;
    }
    if (deletion && !deletePod(*deletion)) {
      std::lock_guard lock(thread_.mutex());
      deletions_.push_back(std::move(*deletion));
      failed = true;
    }
    if (failed && !thread_.sleep(std::chrono::seconds(1))) {
      return;  // the API is away: try again in a second
    }
  }
}

}  // namespace kernelet::agent
