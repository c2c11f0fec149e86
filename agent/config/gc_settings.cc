#include "agent/config/gc_settings.h"

#include <yaml-cpp/yaml.h>

#include "agent/config/config.h"
#include "images/image_gc_policy.h"

namespace kernelet::agent {
namespace {

std::unexpected<Error> fieldError(const std::string& file, const YAML::Node& n,
                                  const std::string& field, const std::string& what) {
  return makeError("load kubelet config", file,
                   "line " + std::to_string(n.Mark().line + 1) + ": " + field + ": " + what);
}

Result<void> readPercent(const std::string& file, const YAML::Node& root, const char* key,
                         int& out) {
  YAML::Node n = root[key];
  if (!n || n.IsNull()) {
    return {};
  }
  try {
    if (!n.IsScalar()) {
      throw YAML::Exception(n.Mark(), "not a scalar");
    }
    out = n.as<int>();
  } catch (const YAML::Exception&) {
    return fieldError(file, n, key, "must be an integer percentage");
  }
  return {};
}

Result<void> readAge(const std::string& file, const YAML::Node& root, const char* key,
                     int64_t& seconds) {
  YAML::Node n = root[key];
  if (!n || n.IsNull()) {
    return {};
  }
  auto parsed = parseDurationSeconds(n.IsScalar() ? n.Scalar() : "", key);
  if (!parsed) {
    return fieldError(file, n, key, parsed.error().detail);
  }
  seconds = *parsed;
  return {};
}

}  // namespace

Result<void> validateContainerGcPolicy(const ContainerGcPolicy& p) {
  if (p.min_age_seconds < 0) {
    // The kubelet's NewContainerGC.
    return makeError(
        "--minimum-container-ttl-duration", "",
        "invalid minimum garbage collection age: " + std::to_string(p.min_age_seconds) + "s");
  }
  return {};
}

Result<void> readImageGcFields(const std::string& file, const YAML::Node& root,
                               images::ImageGcPolicy& p) {
  TRY_VOID(readPercent(file, root, "imageGCHighThresholdPercent", p.high_threshold_percent));
  TRY_VOID(readPercent(file, root, "imageGCLowThresholdPercent", p.low_threshold_percent));
  TRY_VOID(readAge(file, root, "imageMinimumGCAge", p.min_age_seconds));
  TRY_VOID(readAge(file, root, "imageMaximumGCAge", p.max_age_seconds));
  if (auto r = images::validateImageGcPolicy(p); !r) {
    // The line of the field the error names first.
    std::string field = r.error().op.substr(0, r.error().op.find(' '));
    YAML::Node at = root[field];
    return fieldError(file, at ? at : root, r.error().op, r.error().detail);
  }
  return {};
}

}  // namespace kernelet::agent
