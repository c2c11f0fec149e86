#include "agent/gc/gc_manager.h"

#include <ctime>

#include "agent/log/log.h"

namespace kernelet::agent::gc {

GarbageCollector::GarbageCollector(TimerQueue& timers, images::ImageStore& store,
                                   images::ImageGarbageCollector::Options image_options,
                                   ContainerGcPolicy container_policy, Hooks hooks)
    : timers_(timers),
      images_(store, std::move(image_options)),
      container_policy_(container_policy),
      hooks_(std::move(hooks)) {
  if (!hooks_.now) {
    hooks_.now = [] { return static_cast<int64_t>(::time(nullptr)); };
  }
  image_timer_ = timers_.after(kFirstPass, [this] { imagePass(); });
  container_timer_ = timers_.after(kFirstPass, [this] { containerPass(); });
}

GarbageCollector::~GarbageCollector() {
  timers_.cancel(image_timer_);
  timers_.cancel(container_timer_);
}

bool GarbageCollector::pullInFlight() const {
  if (hooks_.pull_in_flight && hooks_.pull_in_flight()) {
    log::v(2, "Image garbage collection deferred: a pull is in flight");
    return true;
  }
  return false;
}

Result<int64_t> GarbageCollector::freeImageSpace(int64_t bytes) {
  if (pullInFlight()) {
    return 0;
  }
  std::vector<std::string> in_use =
      hooks_.images_in_use ? hooks_.images_in_use() : std::vector<std::string>{};
  auto freed = images_.freeSpace(bytes, in_use, hooks_.now());
  if (freed) {
    log::info("Freed image space",
              {{"wanted", std::to_string(bytes)}, {"freed", std::to_string(*freed)}});
  }
  return freed;
}

void GarbageCollector::imagePass() {
  image_timer_ = timers_.after(kImagePeriod, [this] { imagePass(); });
  if (pullInFlight()) {
    return;
  }
  std::vector<std::string> in_use =
      hooks_.images_in_use ? hooks_.images_in_use() : std::vector<std::string>{};
  images::ImageGarbageCollector::Pass pass;
  auto done = images_.collect(in_use, hooks_.now(), &pass);
  if (pass.to_free > 0) {
    // The kubelet's line when usage crosses the high threshold.
    log::info(
        "Disk usage on image filesystem is over the high threshold, trying to free bytes "
        "down to the low threshold",
        {{"usage", std::to_string(pass.usage_percent)},
         {"highThreshold", std::to_string(images_.policy().high_threshold_percent)},
         {"amountToFree", std::to_string(pass.to_free)},
         {"lowThreshold", std::to_string(images_.policy().low_threshold_percent)}});
  }
  for (const auto& name : pass.removed) {
    log::info("Removed image", {{"image", name}});
  }
  if (done) {
    if (prev_image_gc_failed_) {
      log::info("Image garbage collection succeeded");
    }
    prev_image_gc_failed_ = false;
    return;
  }
  std::string message = done.error().message();
  bool short_of_space = pass.to_free > 0 && message.starts_with("Failed to garbage collect");
  if (short_of_space && hooks_.node_event) {
    hooks_.node_event("Warning", "FreeDiskSpaceFailed", message);
  }
  if (prev_image_gc_failed_) {
    log::error("Image garbage collection failed multiple times in a row", {{"err", message}});
    // Only an event for repeated failures, as the kubelet.
    if (hooks_.node_event) {
      hooks_.node_event("Warning", "ImageGCFailed", message);
    }
  } else {
    log::error("Image garbage collection failed once", {{"err", message}});
  }
  prev_image_gc_failed_ = true;
}

void GarbageCollector::containerPass() {
  container_timer_ = timers_.after(kContainerPeriod, [this] { containerPass(); });
  collectDeadContainers();
}

void GarbageCollector::collectDeadContainers() {
  if (!hooks_.containers) {
    return;
  }
  Removed r = collectContainers(hooks_.containers(), container_policy_, hooks_.now());
  if (r.runs > 0) {
    log::v(1, "Removed dead container runs",
           {{"runs", std::to_string(r.runs)}, {"files", std::to_string(r.files)}});
  }
  if (!r.errors.empty()) {
    std::string all;
    for (const auto& e : r.errors) {
      all += (all.empty() ? "" : "; ") + e;
    }
    log::error("Container garbage collection failed", {{"err", all}});
    if (hooks_.node_event) {
      hooks_.node_event("Warning", "ContainerGCFailed", all);
    }
  }
}

}  // namespace kernelet::agent::gc
