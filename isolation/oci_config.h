#pragma once
// An OCI runtime-spec bundle's config.json -> ContainerSpec and cgroup settings.
// Every field kernelet does not implement is an error naming it, never ignored.

#include <map>
#include <string>
#include <vector>

#include "cgroups/cgroups.h"
#include "isolation/container_spec.h"
#include "sys/result.h"

namespace kernelet::isolation {

struct OciBundle {
  std::string dir;  // absolute
  std::string oci_version;
  ContainerSpec spec;
  cgroups::Limits limits;
  std::vector<cgroups::DeviceRule> devices;    // the config's rules, before the defaults
  std::map<std::string, std::string> unified;  // linux.resources.unified: file -> value
  std::string cgroups_path;                    // linux.cgroupsPath, may be empty
  std::map<std::string, std::string> annotations;
};

// Reads DIR/config.json; root.path is taken relative to DIR.
Result<OciBundle> loadOciBundle(const std::string& dir);
// The same from text, for tests: `dir` only anchors root.path.
Result<OciBundle> parseOciConfig(const std::string& json, const std::string& dir);

}  // namespace kernelet::isolation
