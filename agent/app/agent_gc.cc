// The agent's side of garbage collection (agent/gc/gc_manager.h): what is in
// use, as only the agent knows it, and the Node events.
#include <limits>

#include "agent/app/agent.h"
#include "agent/log/log.h"
#include "agent/status/pod_status.h"

namespace kernelet::agent {

void Agent::startGarbageCollection() {
  gc::GarbageCollector::Hooks hooks;
  hooks.images_in_use = [this] { return imagesInUse(); };
  hooks.containers = [this] { return containerRuns(); };
  hooks.pull_in_flight = [this] { return !puller_->pulling().empty(); };
  hooks.node_event = [this](const std::string& type, const std::string& reason,
                            const std::string& message) {
    if (ctx_.node_event) {
      ctx_.node_event(type, reason, message);
    }
  };
  // The kubelet pins its sandbox (pause) image; kernelet has none, so
  // nothing is pinned.
  gc_ = std::make_unique<gc::GarbageCollector>(
      *timers_, *images_, images::ImageGarbageCollector::Options{.policy = ctx_.config.image_gc},
      ctx_.config.container_gc, std::move(hooks));
  // The eviction manager's node-level reclaim, before it ranks pods for a
  // disk signal (the kubelet's reclaimNodeLevelResources with the image store
  // on the node's filesystem): dead containers first, then every unused image
  // old enough (its DeleteUnusedImages). Synchronous: the manager measures
  // again right after.
  setNodeReclaim([this](const std::string& signal) {
    if (!signal.starts_with("nodefs.") && !signal.starts_with("imagefs.")) {
      return;
    }
    gc_->collectDeadContainers();
    auto freed = gc_->freeImageSpace(std::numeric_limits<int64_t>::max());
    if (!freed) {
      log::error("Eviction manager: could not delete unused images",
                 {{"signal", signal}, {"err", freed.error().message()}});
      return;
    }
    log::info("Eviction manager: reclaimed node-level resources",
              {{"signal", signal}, {"imageBytesFreed", std::to_string(*freed)}});
  });
}

std::vector<std::string> Agent::imagesInUse() const {
  // Every container of every pod the agent has a worker for, whatever its
  // state: running, waiting to restart, terminated but not removed yet.
  std::vector<std::string> refs;
  for (const auto& [uid, w] : workers_) {
    const Pod& pod = w->pod();
    for (const auto* list : {&pod.init_containers, &pod.containers}) {
      for (const auto& c : *list) {
        refs.push_back(c.image);
      }
    }
    for (const auto& c : pod.ephemeral_containers) {
      refs.push_back(c.image);
    }
    // What a run started from (the spec may name another image by now).
    PodStatus status = w->status();
    for (const auto* list : {&status.init_container_statuses, &status.container_statuses,
                             &status.ephemeral_container_statuses}) {
      for (const auto& c : *list) {
        if (!c.image.empty()) {
          refs.push_back(c.image);
        }
      }
    }
  }
  // Pulls in flight: their images may be in the store already (a re-pull).
  for (auto& ref : puller_->pulling()) {
    refs.push_back(std::move(ref));
  }
  return refs;
}

std::vector<gc::ContainerRuns> Agent::containerRuns() const {
  std::vector<gc::ContainerRuns> out;
  for (const auto& [uid, w] : workers_) {
    const Pod& pod = w->pod();
    std::string dir =
        ctx_.config.pod_log_dir + "/" + pod.namespace_ + "_" + pod.name + "_" + pod.uid + "/";
    PodStatus status = w->status();
    for (const auto* list : {&status.init_container_statuses, &status.container_statuses,
                             &status.ephemeral_container_statuses}) {
      for (const auto& c : *list) {
        using Kind = ContainerState::Kind;
        // Ended: terminated, or waiting to restart after it (lastState).
        bool ended = c.state.kind == Kind::kTerminated ||
                     (c.state.kind == Kind::kWaiting && c.last_state.kind == Kind::kTerminated);
        out.push_back({.dir = dir + c.name, .latest = c.restart_count, .latest_ended = ended});
      }
    }
  }
  return out;
}

}  // namespace kernelet::agent
