// Static pod manifests and API pods: YAML or JSON, several documents per text
// (agent/model/pod.h). Whatever the text, decoding returns pods or an error;
// the walk for refused fields (pod_fields.h) runs in both of its modes.

#include <cstdint>
#include <string>

#include "agent/model/pod.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  auto pods = kernelet::agent::parseManifests(text, "/etc/kubernetes/manifests/fuzz.yaml");
  (void)pods;
  auto api = kernelet::agent::parseManifests(text, "pod default/fuzz",
                                             kernelet::agent::RefusedFields::kRecord);
  (void)api;
  return 0;
}
