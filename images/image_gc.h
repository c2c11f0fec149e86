#pragma once
// Image garbage collection as the kubelet's image manager does it
// (pkg/kubelet/images/image_gc_manager.go): when the filesystem that holds
// the store is at or above imageGCHighThresholdPercent used, the least
// recently used images no container uses are deleted until it is down to
// imageGCLowThresholdPercent; images unused for longer than imageMaximumGCAge
// (when set) go whatever the usage. An image the store has had for less than
// imageMinimumGCAge, an image in use and a pinned image are never deleted.
//
// This knows images, not pods: the caller says which references are in use
// (every container of every pod the agent knows, and the pulls in flight).

#include <cstdint>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include "images/image_gc_policy.h"
#include "images/image_store.h"
#include "sys/result.h"

namespace kernelet::images {

struct FsUsage {
  int64_t capacity = 0;   // bytes
  int64_t available = 0;  // bytes an unprivileged writer may still use (f_bavail)
};
// statfs of `path`.
Result<FsUsage> filesystemUsage(const std::string& path);

// The kubelet's arithmetic: percent used is 100 - available*100/capacity
// (integer); at or above high, the bytes to free to be at low; else 0.
int usagePercent(const FsUsage& u);
int64_t bytesToFree(const FsUsage& u, const ImageGcPolicy& p);

// The images that may go, in the order they go: least recently used first,
// then first detected first. Left out: in use (by name or id), pinned,
// detected less than min_age ago.
std::vector<ImageRecord> deletionOrder(const std::vector<ImageRecord>& images,
                                       const std::set<std::string>& in_use_ids,
                                       const std::set<std::string>& pinned_ids,
                                       const ImageGcPolicy& p, int64_t now);

class ImageGarbageCollector {
 public:
  struct Options {
    ImageGcPolicy policy;
    // References (as pods write them) never deleted: the kubelet's pinned images.
    std::vector<std::string> pinned;
    // The store's filesystem: filesystemUsage(store.root()) unless given (tests).
    std::function<Result<FsUsage>()> usage;
  };
  ImageGarbageCollector(ImageStore& store, Options options);

  struct Pass {
    FsUsage usage;                     // before
    int usage_percent = 0;             // before
    int64_t to_free = 0;               // 0: under the high threshold
    int64_t freed = 0;                 // bytes, by the images removed (both passes)
    std::vector<std::string> removed;  // names, in removal order
  };
  // One run of the kubelet's GarbageCollect: images in use get lastUsed =
  // now, those unused past max age go, then, at or above the high threshold,
  // the LRU ones down to the low one. Not freeing enough is an error with
  // the kubelet's message ("Failed to garbage collect required amount of
  // images. Attempted to free N bytes, but only found M bytes eligible to
  // free."); `pass`, when given, says what was done all the same.
  Result<Pass> collect(const std::vector<std::string>& in_use, int64_t now, Pass* pass = nullptr);
  // For the eviction manager: deletes LRU unused images (same rules) until
  // at least `bytes` are freed or none is left; returns the bytes freed.
  Result<int64_t> freeSpace(int64_t bytes, const std::vector<std::string>& in_use, int64_t now);

  const ImageGcPolicy& policy() const { return options_.policy; }

 private:
  // The ids (config digests) of what the references name, as stored now.
  std::set<std::string> idsOf(const std::vector<ImageRecord>& all,
                              const std::vector<std::string>& refs) const;
  Result<int64_t> freeLru(int64_t bytes, const std::vector<ImageRecord>& all,
                          const std::set<std::string>& in_use, int64_t now, Pass& pass);
  ImageStore& store_;
  Options options_;
};

}  // namespace kernelet::images
