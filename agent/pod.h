#pragma once
// The part of a Kubernetes Pod the agent acts on, decoded from YAML or JSON
// manifests (several documents per file, as the kubelet's staticPodPath takes
// them). Unknown fields are ignored, as the kubelet's decoder does; fields of
// the wrong type and invalid values are errors naming file, line and field.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "agent/qos.h"
#include "sys/result.h"

namespace kernelet::agent {

struct EnvVar {
  std::string name;
  std::string value;
  std::string field_path;  // valueFrom.fieldRef.fieldPath
  std::string resource;    // valueFrom.resourceFieldRef.resource
  std::string resource_container;
};

struct VolumeMount {
  std::string name;
  std::string mount_path;
  bool read_only = false;
};

struct SecurityContext {
  std::optional<int64_t> run_as_user, run_as_group;
  std::optional<bool> run_as_non_root, privileged, read_only_root_filesystem,
      allow_privilege_escalation;
  std::vector<std::string> capabilities_add, capabilities_drop;
  std::string seccomp_type;  // RuntimeDefault, Unconfined, Localhost
  std::string seccomp_localhost_profile;
};

struct Container {
  std::string name;
  std::string image;
  std::vector<std::string> command, args;
  std::string working_dir;
  std::vector<EnvVar> env;
  ContainerResources resources;
  std::vector<VolumeMount> volume_mounts;
  SecurityContext security_context;
  std::string image_pull_policy;
  std::string restart_policy;  // init containers: "Always" makes a sidecar
};

struct DownwardItem {
  std::string path;
  std::string field_path;  // fieldRef.fieldPath
  std::string resource, resource_container;
};

struct Volume {
  std::string name;
  enum class Kind { kEmptyDir, kHostPath, kDownwardApi, kOther } kind = Kind::kOther;
  std::string medium;      // emptyDir: "" or "Memory"
  std::string size_limit;  // emptyDir
  std::string path, host_path_type;
  std::vector<DownwardItem> items;  // downwardAPI
  std::string source;               // kOther: the kind named in the manifest ("configMap")
};

struct Pod {
  std::string name, namespace_ = "default", uid;
  std::map<std::string, std::string> labels, annotations;
  std::vector<Container> init_containers, containers;
  std::vector<Volume> volumes;
  std::string restart_policy = "Always";
  int64_t termination_grace_period_seconds = 30;
  bool host_network = false, share_process_namespace = false;
  std::string dns_policy = "ClusterFirst", hostname, subdomain, node_name;
  SecurityContext security_context;  // pod level
  std::optional<int64_t> fs_group;
  std::vector<int64_t> supplemental_groups;
};

struct ManifestPod {
  Pod pod;
  int line = 0;          // where its document starts, 1-based
  std::string document;  // the document as parsed, re-emitted: what a change is judged by
  std::string json;      // the document as JSON, quoted scalars kept strings (mirror pods)
};

// Decodes every document of `text` (read from `file`, named in errors).
Result<std::vector<ManifestPod>> parseManifests(const std::string& text, const std::string& file);

}  // namespace kernelet::agent
