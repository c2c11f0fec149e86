#include "agent/model/field_refs.h"

namespace kernelet::agent {
namespace {

// labels['key'] -> key, or empty when `path` is not of that form.
std::string subscript(const std::string& path, const std::string& prefix) {
  if (!path.starts_with(prefix + "['") || !path.ends_with("']")) {
    return "";
  }
  return path.substr(prefix.size() + 2, path.size() - prefix.size() - 4);
}

std::string mapText(const std::map<std::string, std::string>& m) {
  std::string out;
  for (const auto& [k, v] : m) {
    std::string quoted;
    for (char c : v) {
      if (c == '"' || c == '\\') {
        quoted += '\\';
      }
      if (c == '\n') {
        quoted += "\\n";
        continue;
      }
      quoted += c;
    }
    out += k + "=\"" + quoted + "\"\n";
  }
  return out;
}

}  // namespace

Result<std::string> fieldRefValue(const Pod& pod, const std::string& path,
                                  const PodRuntimeInfo& info, bool whole_maps) {
  if (path == "metadata.name") {
    return pod.name;
  }
  if (path == "metadata.namespace") {
    return pod.namespace_;
  }
  if (path == "metadata.uid") {
    return pod.uid;
  }
  if (path == "spec.nodeName") {
    return pod.node_name;
  }
  if (path == "spec.serviceAccountName") {
    return std::string("default");
  }
  if (path == "status.podIP" || path == "status.podIPs") {
    return info.pod_ip;
  }
  if (path == "status.hostIP" || path == "status.hostIPs") {
    return info.host_ip;
  }
  for (auto [prefix, map] :
       {std::pair{"metadata.labels", &pod.labels}, {"metadata.annotations", &pod.annotations}}) {
    if (whole_maps && path == prefix) {
      return mapText(*map);
    }
    if (std::string key = subscript(path, prefix); !key.empty()) {
      auto it = map->find(key);
      return it != map->end() ? it->second : "";
    }
  }
  return makeError("resolve fieldRef", path, "unsupported fieldPath");
}

Result<std::string> resourceFieldValue(const Pod& pod, const std::string& container,
                                       const std::string& resource, const PodRuntimeInfo& info) {
  const Container* c = nullptr;
  for (const auto* list : {&pod.init_containers, &pod.containers}) {
    for (const auto& k : *list) {
      if (k.name == container) {
        c = &k;
      }
    }
  }
  for (const auto& k : pod.ephemeral_containers) {
    if (k.name == container) {
      c = &k;  // no resources of its own (the API forbids them): the node's, as for any unset
    }
  }
  if (c == nullptr) {
    return makeError("resolve resourceFieldRef", resource, "no container \"" + container + "\"");
  }
  bool limits = resource.starts_with("limits.");
  bool requests = resource.starts_with("requests.");
  std::string name = resource.substr(resource.find('.') + 1);
  if ((!limits && !requests) ||
      (name != "cpu" && name != "memory" && name != "ephemeral-storage")) {
    return makeError("resolve resourceFieldRef", resource, "unsupported resource");
  }
  const ResourceList& list = limits ? c->resources.limits : c->resources.requests;
  auto it = list.find(name);
  if (name == "cpu") {
    int64_t milli = it != list.end() ? it->second.milliValue() : (limits ? info.node_milli_cpu : 0);
    return std::to_string((milli + 999) / 1000);  // divisor 1: whole cores, rounded up
  }
  int64_t bytes = it != list.end() ? it->second.value() : (limits ? info.node_memory : 0);
  return std::to_string(bytes);
}

std::string expandVars(const std::string& s, const std::map<std::string, std::string>& vars) {
  std::string out;
  for (size_t i = 0; i < s.size(); i++) {
    if (s[i] != '$' || i + 1 >= s.size()) {
      out += s[i];
      continue;
    }
    if (s[i + 1] == '$') {
      out += '$';
      i++;
      continue;
    }
    if (s[i + 1] == '(') {
      size_t close = s.find(')', i + 2);
      if (close != std::string::npos) {
        std::string name = s.substr(i + 2, close - i - 2);
        if (auto it = vars.find(name); it != vars.end()) {
          out += it->second;
          i = close;
          continue;
        }
      }
    }
    out += s[i];
  }
  return out;
}

}  // namespace kernelet::agent
