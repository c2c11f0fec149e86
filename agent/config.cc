#include "agent/config.h"

#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>

#include "apiclient/quantity.h"
#include "sys/fileio.h"

namespace kernelet::agent {
namespace {

std::unexpected<Error> fieldError(const std::string& file, const YAML::Node& n,
                                  const std::string& field, const std::string& what) {
  return makeError("load kubelet config", file,
                   "line " + std::to_string(n.Mark().line + 1) + ": " + field + ": " + what);
}

template <typename T>
Result<void> read(const std::string& file, const YAML::Node& root, const char* key, T& out) {
  YAML::Node n = root[key];
  if (!n || n.IsNull()) {
    return {};
  }
  try {
    if (!n.IsScalar()) {
      throw YAML::Exception(n.Mark(), "not a scalar");
    }
    out = n.as<T>();
  } catch (const YAML::Exception&) {
    return fieldError(file, n, key, "wrong type");
  }
  return {};
}

Result<int64_t> bytes(const std::string& file, const YAML::Node& n, const std::string& field) {
  auto q = apiclient::Quantity::parse(n.as<std::string>(""));
  if (!q || q->value() < 0) {
    return fieldError(file, n, field, "not a quantity of bytes");
  }
  return q->value();
}

}  // namespace

Result<void> loadKubeletConfiguration(const std::string& file, AgentConfig& config) {
  TRY(std::string text, readFile(file));
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    return makeError("load kubelet config", file,
                     "line " + std::to_string(e.mark.line + 1) + ": " + e.msg);
  }
  if (!root.IsMap()) {
    return makeError("load kubelet config", file, "not a KubeletConfiguration object");
  }
  std::string kind, api_version;
  TRY_VOID(read(file, root, "kind", kind));
  TRY_VOID(read(file, root, "apiVersion", api_version));
  if (kind != "KubeletConfiguration") {
    return fieldError(file, root, "kind", "must be KubeletConfiguration, not \"" + kind + "\"");
  }
  if (api_version != "kubelet.config.k8s.io/v1beta1") {
    return fieldError(file, root, "apiVersion",
                      "must be kubelet.config.k8s.io/v1beta1, not \"" + api_version + "\"");
  }
  TRY_VOID(read(file, root, "staticPodPath", config.pod_manifest_path));
  TRY_VOID(read(file, root, "maxPods", config.max_pods));
  TRY_VOID(read(file, root, "cgroupRoot", config.cgroup_root));
  TRY_VOID(read(file, root, "clusterDomain", config.cluster_domain));
  TRY_VOID(read(file, root, "resolvConf", config.resolv_conf));
  TRY_VOID(read(file, root, "podCIDR", config.pod_cidr));
  TRY_VOID(read(file, root, "containerLogMaxFiles", config.container_log_max_files));
  TRY_VOID(read(file, root, "seccompDefault", config.seccomp_default));
  if (YAML::Node n = root["containerLogMaxSize"]; n) {
    TRY(config.container_log_max_size, bytes(file, n, "containerLogMaxSize"));
  }
  if (YAML::Node n = root["clusterDNS"]; n) {
    if (!n.IsSequence()) {
      return fieldError(file, n, "clusterDNS", "must be a list of addresses");
    }
    config.cluster_dns.clear();
    for (const auto& s : n) {
      config.cluster_dns.push_back(s.as<std::string>(""));
    }
  }
  if (YAML::Node n = root["systemReserved"]; n) {
    if (!n.IsMap()) {
      return fieldError(file, n, "systemReserved", "must be a map of quantities");
    }
    if (n["memory"]) {
      TRY(config.system_reserved_memory, bytes(file, n["memory"], "systemReserved.memory"));
    }
    if (n["cpu"]) {
      auto q = apiclient::Quantity::parse(n["cpu"].as<std::string>(""));
      if (!q) {
        return fieldError(file, n["cpu"], "systemReserved.cpu", "not a quantity");
      }
      config.system_reserved_milli_cpu = q->milliValue();
    }
  }
  if (config.max_pods <= 0) {
    return fieldError(file, root["maxPods"], "maxPods", "must be positive");
  }
  if (config.container_log_max_files < 2) {
    return fieldError(file, root["containerLogMaxFiles"], "containerLogMaxFiles",
                      "must be at least 2");
  }
  return {};
}

std::string nodeName(const std::string& override_name) {
  std::string name = override_name;
  if (name.empty()) {
    char host[256] = {};
    ::gethostname(host, sizeof host - 1);
    name = host;
  }
  std::transform(name.begin(), name.end(), name.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  return name;
}

}  // namespace kernelet::agent
