// Decoding spec.ephemeralContainers[]: a container's fields (decode_container.cc)
// less those the API forbids for an ephemeral container, plus targetContainerName.

#include <yaml-cpp/yaml.h>

#include <string>

#include "agent/model/decode.h"
#include "agent/model/pod.h"

namespace kernelet::agent::decode {

namespace {

// The API server's words for a field an ephemeral container may not set
// (validateEphemeralContainers).
constexpr const char* kForbidden = "Forbidden: cannot be set for an Ephemeral Container";

// Set, in the API's sense: present with a value other than null or an empty
// list or map (kubectl debug sends `resources: {}`, which is no resources).
bool isSet(const YAML::Node& n) {
  if (!n || n.IsNull()) {
    return false;
  }
  if (n.IsSequence() || n.IsMap()) {
    if (n.size() == 0) {
      return false;
    }
  }
  return true;
}

// resources: only `{}` or empty lists and maps of quantities.
bool hasResources(const YAML::Node& n) {
  if (!isSet(n)) {
    return false;
  }
  if (!n.IsMap()) {
    return true;
  }
  for (const auto& kv : n) {
    if (isSet(kv.second)) {
      return true;
    }
  }
  return false;
}

}  // namespace

Result<EphemeralContainer> ephemeralContainer(const Ctx& c, const YAML::Node& n,
                                              const std::string& field) {
  if (!n.IsMap()) {
    return c.error(n, field, "must be a map");
  }
  // Refused before the container is decoded, so the error names the field
  // the API forbids rather than whatever else is wrong with its value.
  for (const char* key : {"ports", "livenessProbe", "readinessProbe", "startupProbe", "lifecycle",
                          "resizePolicy", "restartPolicy"}) {
    if (isSet(n[key])) {
      return c.error(n[key], field + "." + key, kForbidden);
    }
  }
  if (hasResources(n["resources"])) {
    return c.error(n["resources"], field + ".resources", kForbidden);
  }
  // Subpaths are bind mounts that would outlive the container until the pod goes.
  if (n["volumeMounts"] && n["volumeMounts"].IsSequence()) {
    size_t i = 0;
    for (const auto& m : n["volumeMounts"]) {
      std::string mf = field + ".volumeMounts[" + std::to_string(i++) + "]";
      for (const char* key : {"subPath", "subPathExpr"}) {
        if (m.IsMap() && isSet(m[key]) && !(m[key].IsScalar() && m[key].Scalar().empty())) {
          return c.error(m[key], mf + "." + key, kForbidden);
        }
      }
    }
  }
  EphemeralContainer e;
  TRY(static_cast<Container&>(e), container(c, n, field));
  TRY(e.target_container_name, str(c, n, "targetContainerName", field));
  return e;
}

}  // namespace kernelet::agent::decode
