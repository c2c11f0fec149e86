#include "images/image_gc.h"

#include <sys/statvfs.h>

#include <algorithm>

#include "images/reference.h"

namespace kernelet::images {

Result<void> validateImageGcPolicy(const ImageGcPolicy& p) {
  // The kubelet's messages (pkg/kubelet/apis/config/validation).
  if (p.high_threshold_percent < 0 || p.high_threshold_percent > 100) {
    return makeError(
        "imageGCHighThresholdPercent (--image-gc-high-threshold)", "",
        std::to_string(p.high_threshold_percent) + " must be between 0 and 100, inclusive");
  }
  if (p.low_threshold_percent < 0 || p.low_threshold_percent > 100) {
    return makeError(
        "imageGCLowThresholdPercent (--image-gc-low-threshold)", "",
        std::to_string(p.low_threshold_percent) + " must be between 0 and 100, inclusive");
  }
  if (p.low_threshold_percent >= p.high_threshold_percent) {
    return makeError("imageGCLowThresholdPercent (--image-gc-low-threshold)", "",
                     std::to_string(p.low_threshold_percent) +
                         " must be less than imageGCHighThresholdPercent "
                         "(--image-gc-high-threshold) " +
                         std::to_string(p.high_threshold_percent));
  }
  if (p.min_age_seconds < 0) {
    return makeError("imageMinimumGCAge (--minimum-image-ttl-duration)", "",
                     std::to_string(p.min_age_seconds) + "s must not be negative");
  }
  if (p.max_age_seconds < 0) {
    return makeError("imageMaximumGCAge", "",
                     std::to_string(p.max_age_seconds) + "s must not be negative");
  }
  if (p.max_age_seconds > 0 && p.max_age_seconds <= p.min_age_seconds) {
    return makeError("imageMaximumGCAge", "",
                     std::to_string(p.max_age_seconds) +
                         "s must be greater than imageMinimumGCAge " +
                         std::to_string(p.min_age_seconds) + "s");
  }
  return {};
}

Result<FsUsage> filesystemUsage(const std::string& path) {
  struct statvfs st {};
  if (::statvfs(path.c_str(), &st) != 0) {
    return sysError("statfs", path);
  }
  return FsUsage{
      .capacity = static_cast<int64_t>(st.f_blocks) * static_cast<int64_t>(st.f_frsize),
      .available = static_cast<int64_t>(st.f_bavail) * static_cast<int64_t>(st.f_frsize)};
}

int usagePercent(const FsUsage& u) {
  if (u.capacity <= 0) {
    return 0;
  }
  return 100 - static_cast<int>(u.available * 100 / u.capacity);
}

int64_t bytesToFree(const FsUsage& u, const ImageGcPolicy& p) {
  if (u.capacity <= 0 || usagePercent(u) < p.high_threshold_percent) {
    return 0;
  }
  // As the kubelet: enough to be at the low threshold (with 100 as high, GC
  // runs only on a full filesystem).
  return std::max<int64_t>(0, u.capacity * (100 - p.low_threshold_percent) / 100 - u.available);
}

std::vector<ImageRecord> deletionOrder(const std::vector<ImageRecord>& images,
                                       const std::set<std::string>& in_use_ids,
                                       const std::set<std::string>& pinned_ids,
                                       const ImageGcPolicy& p, int64_t now) {
  std::vector<ImageRecord> out;
  for (const auto& r : images) {
    if (in_use_ids.contains(r.config_digest) || pinned_ids.contains(r.config_digest)) {
      continue;
    }
    if (now - r.first_detected < p.min_age_seconds) {
      continue;  // the kubelet's "Image ID was detected too recently"
    }
    out.push_back(r);
  }
  std::stable_sort(out.begin(), out.end(), [](const ImageRecord& a, const ImageRecord& b) {
    if (a.last_used != b.last_used) {
      return a.last_used < b.last_used;
    }
    return a.first_detected < b.first_detected;
  });
  return out;
}

ImageGarbageCollector::ImageGarbageCollector(ImageStore& store, Options options)
    : store_(store), options_(std::move(options)) {
  if (!options_.usage) {
    std::string root = store_.root();
    options_.usage = [root] { return filesystemUsage(root); };
  }
}

std::set<std::string> ImageGarbageCollector::idsOf(const std::vector<ImageRecord>& all,
                                                   const std::vector<std::string>& refs) const {
  std::set<std::string> names(refs.begin(), refs.end());
  for (const auto& ref : refs) {
    if (auto parsed = parseReference(ref)) {
      names.insert(parsed->str());
      if (!parsed->digest.empty()) {
        names.insert(parsed->digest);
      }
    }
  }
  std::set<std::string> ids;
  for (const auto& r : all) {
    if (names.contains(r.name) || names.contains(r.config_digest) ||
        names.contains(r.manifest_digest)) {
      ids.insert(r.config_digest);
    }
  }
  return ids;
}

Result<int64_t> ImageGarbageCollector::freeLru(int64_t bytes, const std::vector<ImageRecord>& all,
                                               const std::set<std::string>& in_use, int64_t now,
                                               Pass& pass) {
  std::set<std::string> pinned = idsOf(all, options_.pinned);
  int64_t freed = 0;
  for (const auto& r : deletionOrder(all, in_use, pinned, options_.policy, now)) {
    if (freed >= bytes) {
      break;
    }
    TRY(int64_t got, store_.removeImage(r.name));
    freed += got;
    pass.removed.push_back(r.name);
  }
  pass.freed += freed;
  return freed;
}

Result<ImageGarbageCollector::Pass> ImageGarbageCollector::collect(
    const std::vector<std::string>& in_use, int64_t now, Pass* out) {
  Pass local;
  Pass& pass = out != nullptr ? *out : local;
  pass = Pass{};
  TRY(std::vector<ImageRecord> all, store_.list());
  std::set<std::string> used = idsOf(all, in_use);
  // What containers use now was used now (the kubelet's detectImages).
  std::vector<std::string> used_names;
  for (auto& r : all) {
    if (used.contains(r.config_digest)) {
      used_names.push_back(r.name);
      r.last_used = std::max(r.last_used, now);
    }
  }
  TRY_VOID(store_.touchAll(used_names, now));
  if (options_.policy.max_age_seconds > 0) {
    // The kubelet's freeOldImages: unused for longer than the maximum age.
    std::set<std::string> pinned = idsOf(all, options_.pinned);
    std::vector<ImageRecord> kept;
    for (const auto& r : all) {
      if (!used.contains(r.config_digest) && !pinned.contains(r.config_digest) &&
          now - r.last_used > options_.policy.max_age_seconds) {
        TRY(int64_t got, store_.removeImage(r.name));
        pass.freed += got;
        pass.removed.push_back(r.name);
      } else {
        kept.push_back(r);
      }
    }
    all = std::move(kept);
  }
  TRY(pass.usage, options_.usage());
  pass.usage_percent = usagePercent(pass.usage);
  pass.to_free = bytesToFree(pass.usage, options_.policy);
  if (pass.to_free == 0) {
    return pass;
  }
  TRY(int64_t freed, freeLru(pass.to_free, all, used, now, pass));
  if (freed < pass.to_free) {
    return makeError("Failed to garbage collect required amount of images. Attempted to free " +
                         std::to_string(pass.to_free) + " bytes, but only found " +
                         std::to_string(freed) + " bytes eligible to free.",
                     "", "");
  }
  return pass;
}

Result<int64_t> ImageGarbageCollector::freeSpace(int64_t bytes,
                                                 const std::vector<std::string>& in_use,
                                                 int64_t now) {
  if (bytes <= 0) {
    return 0;
  }
  TRY(std::vector<ImageRecord> all, store_.list());
  Pass pass;
  return freeLru(bytes, all, idsOf(all, in_use), now, pass);
}

}  // namespace kernelet::images
