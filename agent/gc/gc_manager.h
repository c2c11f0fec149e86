#pragma once
// The agent's garbage collection on its loop (the kubelet's
// StartGarbageCollection): container GC every minute (ContainerGCPeriod),
// image GC every kImagePeriod (the kubelet's ImageGCPeriod is 5 minutes; a
// statfs is cheap, so kernelet looks more often and acts only above the
// high threshold). Failures are logged and become the kubelet's Warning
// events on the Node: FreeDiskSpaceFailed whenever image GC cannot get under
// the threshold, ImageGCFailed when image GC fails twice in a row,
// ContainerGCFailed when container GC does.
//
// What is in use comes from the agent (Hooks): every image a pod it knows
// names (running or not, being removed, being pulled), every container's
// newest run. The eviction manager asks for space with freeImageSpace().

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "agent/config/gc_settings.h"
#include "agent/gc/container_gc.h"
#include "images/image_gc.h"
#include "images/image_store.h"
#include "sys/timer_queue.h"

namespace kernelet::agent::gc {

class GarbageCollector {
 public:
  static constexpr std::chrono::seconds kImagePeriod{60};
  static constexpr std::chrono::seconds kContainerPeriod{60};
  // The first passes: soon after start, so an agent started on a full disk acts.
  static constexpr std::chrono::seconds kFirstPass{10};

  struct Hooks {
    // The image references in use (pods' specs, pulls in flight).
    std::function<std::vector<std::string>()> images_in_use;
    // Every container of every pod the agent knows, with its newest run.
    std::function<std::vector<ContainerRuns>()> containers;
    // A Node event (type, reason, message); may be empty (standalone).
    std::function<void(const std::string&, const std::string&, const std::string&)> node_event;
    // Whether a pull is in flight: its layers are checked and unpacked before
    // its image is recorded, so removing images then could take a layer the
    // new image is about to use. Image removal waits for the next pass.
    std::function<bool()> pull_in_flight;
    // Unix seconds now (tests).
    std::function<int64_t()> now;
  };

  // Arms the timers; nothing runs until the loop turns.
  GarbageCollector(TimerQueue& timers, images::ImageStore& store,
                   images::ImageGarbageCollector::Options image_options,
                   ContainerGcPolicy container_policy, Hooks hooks);
  ~GarbageCollector();
  GarbageCollector(const GarbageCollector&) = delete;
  GarbageCollector& operator=(const GarbageCollector&) = delete;

  // For the eviction manager (on the loop): deletes least recently used
  // unused images until at least `bytes` are freed; returns the bytes freed.
  Result<int64_t> freeImageSpace(int64_t bytes);
  // For the eviction manager too: dead containers' runs beyond the policy, now.
  void collectDeadContainers();
  // One pass of each, now, and the next one armed (the timers call these;
  // so may tests).
  void imagePass();
  void containerPass();

 private:
  bool pullInFlight() const;

  TimerQueue& timers_;
  images::ImageGarbageCollector images_;
  ContainerGcPolicy container_policy_;
  Hooks hooks_;
  bool prev_image_gc_failed_ = false;
  TimerQueue::Id image_timer_ = 0, container_timer_ = 0;
};

}  // namespace kernelet::agent::gc
