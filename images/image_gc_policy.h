#pragma once
// Image GC's settings alone (image_gc.h does the collecting), so that the
// agent's config can hold them without the image store's headers.

#include <cstdint>

#include "sys/result.h"

namespace kernelet::images {

// The KubeletConfiguration fields, with the kubelet's defaults.
struct ImageGcPolicy {
  int high_threshold_percent = 85;  // imageGCHighThresholdPercent (100: only when full)
  int low_threshold_percent = 80;   // imageGCLowThresholdPercent
  int64_t min_age_seconds = 120;    // imageMinimumGCAge 2m
  int64_t max_age_seconds = 0;      // imageMaximumGCAge; 0: no maximum
};

// The kubelet's validation; the error's op names the field and its flag.
Result<void> validateImageGcPolicy(const ImageGcPolicy& p);

}  // namespace kernelet::images
