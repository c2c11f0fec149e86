#pragma once
// A loaded YAML document as JSON text, with YAML 1.2's core schema for plain
// scalars (true/false, null, integers, floats); quoted scalars stay strings,
// so do the Pod's string fields (names, labels, annotations, command, args,
// env values) whatever they look like, and numbers that no int64 or double
// holds. Static pod manifests become the mirror pods sent to the API this way.

#include <yaml-cpp/yaml.h>

#include <string>

namespace kernelet::agent {

std::string yamlNodeToJson(const YAML::Node& node);

}  // namespace kernelet::agent
