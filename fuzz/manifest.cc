// Static pod manifests and API pods: YAML or JSON, several documents per text
// (agent/model/pod.h). Whatever the text, decoding returns pods or an error;
// the walk for refused fields (pod_fields.h) runs in both of its modes. A
// volume mount's subPathExpr is expanded with the container's literal env
// values, as the agent expands it at start (agent/runtime/subpath.h).

#include <cstdint>
#include <map>
#include <string>

#include "agent/model/pod.h"
#include "agent/runtime/subpath.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  auto pods = kernelet::agent::parseManifests(text, "/etc/kubernetes/manifests/fuzz.yaml");
  if (pods) {
    for (const auto& m : *pods) {
      for (const auto& c : m.pod.containers) {
        std::map<std::string, std::string> env;
        for (const auto& e : c.env) {
          env[e.name] = e.value;
        }
        for (const auto& vm : c.volume_mounts) {
          auto sub_path = kernelet::agent::mountSubPath(vm, env);
          // What comes out is what the resolver is given: relative, no "..".
          if (sub_path &&
              (sub_path->starts_with('/') || sub_path->find("/../") != std::string::npos ||
               *sub_path == ".." || sub_path->starts_with("../") || sub_path->ends_with("/.."))) {
            __builtin_trap();
          }
        }
      }
    }
  }
  auto api = kernelet::agent::parseManifests(text, "pod default/fuzz",
                                             kernelet::agent::RefusedFields::kRecord);
  (void)api;
  return 0;
}
