// API objects as the agent decodes them (apiclient/objects.h): metadata,
// ConfigMap, Secret and Service data, times, in-place edits of an object's JSON,
// and the strategic merge patch between two versions (apiclient/merge_patch.h).
// Input: two JSON documents separated by a "#--#" line.

#include <cstdint>
#include <string>

#include "apiclient/merge_patch.h"
#include "apiclient/objects.h"
#include "fuzz/fuzz_support.h"

namespace api = kernelet::apiclient;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto parts = kernelet::fuzz::splitParts(data, size, 2);
  const std::string& json = parts[0];
  (void)api::decodeMeta(json, "fuzz");
  (void)api::decodeConfigMapData(json, "fuzz");
  (void)api::decodeSecretData(json, "fuzz");
  (void)api::decodeService(json, "fuzz");
  (void)api::keepForeignConditions(json, parts[1], {"Ready", "PodScheduled"});
  (void)api::parseTime(parts[1]);
  (void)api::withString(json, {"metadata", "annotations", "kernelet"}, parts[1]);
  (void)api::withInt(json, {"spec", "leaseDurationSeconds"}, 40);
  (void)api::twoWayMergePatch(json, parts[1], api::podStatusMergeKeys());
  (void)api::twoWayMergePatch(
      json, parts[1], api::MergeKeys{{"conditions", "type"}, {"addresses", api::kReplaceList}});
  return 0;
}
