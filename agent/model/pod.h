#pragma once
// The part of a Kubernetes Pod the agent acts on, decoded from YAML or JSON
// manifests (several documents per file, as the kubelet's staticPodPath takes
// them). Unknown fields are ignored, as the kubelet's decoder does; fields of
// the wrong type and invalid values are errors naming file, line and field, and
// so is a field kernelet refuses (agent/model/pod_fields.h).

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "agent/model/qos.h"
#include "sys/result.h"

namespace kernelet::agent {

// valueFrom.configMapKeyRef / secretKeyRef: one key of an API object.
struct KeySelector {
  std::string name, key;
  bool optional = false;
};

struct EnvVar {
  std::string name;
  std::string value;
  std::string field_path;  // valueFrom.fieldRef.fieldPath
  std::string resource;    // valueFrom.resourceFieldRef.resource
  std::string resource_container;
  std::optional<KeySelector> config_map_key, secret_key;
};

// envFrom: every key of a ConfigMap or Secret (config_map or secret is set).
struct EnvFromSource {
  std::string prefix, config_map, secret;
  bool optional = false;
};

struct VolumeMount {
  std::string name;
  std::string mount_path;
  bool read_only = false;
  // Where in the volume the mount starts: relative, without "..". At most one
  // of them is set; sub_path_expr has $(VAR) of the container's env expanded
  // when the container starts (agent/runtime/subpath.h).
  std::string sub_path, sub_path_expr;
  // mountPropagation: None (rprivate, also when unset), HostToContainer
  // (rslave: mounts made later under the source on the node show inside),
  // Bidirectional (rshared, privileged containers only).
  std::string mount_propagation = "None";
  // recursiveReadOnly of a readOnly mount: Disabled (also when unset; only
  // the mount itself is read-only, submounts stay as they are), IfPossible
  // and Enabled (every submount too; this kernel always can).
  std::string recursive_read_only;
  bool recursiveReadOnly() const {
    return read_only && (recursive_read_only == "Enabled" || recursive_read_only == "IfPossible");
  }
};

struct SecurityContext {
  std::optional<int64_t> run_as_user, run_as_group;
  std::optional<bool> run_as_non_root, privileged, read_only_root_filesystem,
      allow_privilege_escalation;
  std::vector<std::string> capabilities_add, capabilities_drop;
  std::string seccomp_type;  // RuntimeDefault, Unconfined, Localhost
  std::string seccomp_localhost_profile;
};

struct ContainerPort {
  std::string name;
  int container_port = 0;
};

// livenessProbe, readinessProbe, startupProbe. A named port is resolved
// against the container's ports when the manifest is decoded.
struct Probe {
  enum class Kind { kExec, kHttpGet, kTcpSocket, kGrpc } kind = Kind::kExec;
  std::vector<std::string> command;               // exec
  std::string path = "/", host, scheme = "HTTP";  // httpGet; host empty: the pod's IP
  std::vector<std::pair<std::string, std::string>> headers;
  int port = 0;  // httpGet, tcpSocket
  int initial_delay_seconds = 0, period_seconds = 10, timeout_seconds = 1;
  int success_threshold = 1, failure_threshold = 3;
  std::string grpc_service;  // grpc: the HealthCheckRequest's service ("" is the server's)
};

// lifecycle.postStart / preStop: exactly one action, as the API validates.
// exec and httpGet run as a probe's would (in `action`, without its
// timeout); sleep waits `sleep_seconds`; tcpSocket is accepted as the API
// does (deprecated, never validated) and fails when run, as with the kubelet.
struct LifecycleHandler {
  enum class Kind { kExec, kHttpGet, kSleep, kTcpSocket } kind = Kind::kExec;
  Probe action;
  int64_t sleep_seconds = 0;
};

struct ContainerLifecycle {
  std::optional<LifecycleHandler> post_start, pre_stop;
  // stopSignal (containers only): the signal's API name, sent at stop instead
  // of the image's STOPSIGNAL or SIGTERM; empty: not set.
  std::string stop_signal;
};

struct Container {
  std::string name;
  std::string image;
  std::vector<std::string> command, args;
  std::string working_dir;
  std::vector<EnvVar> env;
  std::vector<EnvFromSource> env_from;
  ContainerResources resources;
  // resizePolicy: resource ("cpu", "memory") -> "NotRequired" or
  // "RestartContainer"; a resource not named is NotRequired, as the API
  // defaults it. Says whether an in-place resize restarts the container.
  std::map<std::string, std::string> resize_policy;
  std::vector<VolumeMount> volume_mounts;
  SecurityContext security_context;
  std::string image_pull_policy;
  std::string restart_policy;  // init containers: "Always" makes a sidecar
  std::vector<ContainerPort> ports;
  std::optional<Probe> liveness_probe, readiness_probe, startup_probe;
  ContainerLifecycle lifecycle;
  // The stdio it starts with (kubectl run -it, attach): `stdin` a pipe the
  // agent holds the write end of (else /dev/null), `tty` a terminal as 0, 1
  // and 2 (its output is the log's stdout); `stdin_once` closes stdin for
  // good when the first attach session that sent stdin ends.
  bool stdin = false, stdin_once = false, tty = false;
  // Where the container writes why it ended (a fresh empty file from the pod's
  // dir, bind-mounted rw), read into state.terminated.message; empty: no file.
  // FallbackToLogsOnError: an empty file and a failed run take the log's tail.
  std::string termination_message_path = "/dev/termination-log";
  std::string termination_message_policy = "File";
};

// spec.ephemeralContainers[]: a container added to a running pod through the
// ephemeralcontainers subresource (kubectl debug). The API forbids ports,
// resources, probes, lifecycle, resizePolicy, restartPolicy and volume
// subPaths for it; the decoder refuses them by name. It runs once, is never
// restarted, and with targetContainerName shares that container's PID
// namespace.
struct EphemeralContainer : Container {
  std::string target_container_name;
};

struct DownwardItem {
  std::string path;
  std::string field_path;  // fieldRef.fieldPath
  std::string resource, resource_container;
  std::optional<int> mode;
};

// items[] of a configMap or secret source: key -> relative path.
struct KeyToPath {
  std::string key, path;
  std::optional<int> mode;
};

// One source of files in a configMap, secret, downwardAPI or projected volume.
struct Projection {
  enum class Kind { kConfigMap, kSecret, kDownwardApi, kServiceAccountToken } kind;
  std::string name;              // the ConfigMap or Secret
  std::vector<KeyToPath> items;  // empty: every key
  bool optional = false;
  std::vector<DownwardItem> fields;  // downwardAPI
  std::string audience, token_path;  // serviceAccountToken
  int64_t expiration_seconds = 3600;
};

struct Volume {
  std::string name;
  enum class Kind {
    kEmptyDir,
    kHostPath,
    kDownwardApi,
    kConfigMap,
    kSecret,
    kProjected,
    kOther
  } kind = Kind::kOther;
  std::string medium;      // emptyDir: "" or "Memory"
  std::string size_limit;  // emptyDir
  std::string path, host_path_type;
  // downwardAPI, configMap, secret: one source; projected: its sources in order.
  std::vector<Projection> sources;
  int default_mode = 0644;
  std::string source;  // kOther: the kind named in the manifest ("iscsi")
};

// spec.securityContext.sysctls[]: `name` as written (dotted or slash form).
struct Sysctl {
  std::string name, value;
};

// spec.hostAliases[]: lines the kubelet appends to the pod's /etc/hosts.
struct HostAlias {
  std::string ip;
  std::vector<std::string> hostnames;
};

struct PodDnsOption {
  std::string name;
  std::optional<std::string> value;
};

// spec.dnsConfig: merged into what dnsPolicy gives (all of it with None).
struct PodDnsConfig {
  std::vector<std::string> nameservers, searches;
  std::vector<PodDnsOption> options;
};

struct Pod {
  std::string name, namespace_ = "default", uid;
  std::map<std::string, std::string> labels, annotations;
  std::vector<Container> init_containers, containers;
  std::vector<EphemeralContainer> ephemeral_containers;
  std::vector<Volume> volumes;
  std::string restart_policy = "Always";
  int64_t termination_grace_period_seconds = 30;
  // Seconds from status.startTime after which the pod is failed and killed
  // (the kubelet's activeDeadlineHandler): DeadlineExceeded.
  std::optional<int64_t> active_deadline_seconds;
  bool host_network = false, share_process_namespace = false;
  // hostPID / hostIPC: the containers stay in the node's PID / IPC namespace
  // (the agent's), as CRI's NamespaceMode NODE; hostPID wins over an
  // ephemeral container's target, as with the kubelet.
  bool host_pid = false, host_ipc = false;
  std::string dns_policy = "ClusterFirst", hostname, subdomain, node_name;
  std::optional<PodDnsConfig> dns_config;
  std::vector<HostAlias> host_aliases;
  // With a subdomain: the UTS hostname is the pod's FQDN, not its short name.
  bool set_hostname_as_fqdn = false;
  std::string service_account_name;
  // spec.imagePullSecrets[].name, in order; entries with no name are dropped
  // (the API allowed them; the kubelet skips them).
  std::vector<std::string> image_pull_secrets;
  // Which pods a node shutdown stops last (agent/node/shutdown_manager.h).
  std::string priority_class_name;
  std::optional<int32_t> priority;
  SecurityContext security_context;  // pod level
  std::optional<int64_t> fs_group;
  std::vector<int64_t> supplemental_groups;
  // enableServiceLinks (the API defaults it to true): the Services of the
  // pod's namespace as environment variables, besides the master service's.
  bool enable_service_links = true;
  // readinessGates: condition types that must be True for the pod to be Ready.
  std::vector<std::string> readiness_gates;
  // API pods: those conditions as the pod's status in the API has them (type
  // -> "True", "False", "Unknown"). Other controllers set them, through the
  // status subresource; they are no part of the spec.
  std::map<std::string, std::string> gate_conditions;
  std::vector<Sysctl> sysctls;  // written into the pod's namespaces once, for all containers
  // API pods only: the first field set to something kernelet refuses
  // ("spec.containers[1].lifecycle: not supported by kernelet"). Admission
  // rejects the pod with it, so that it shows in the pod's status.
  std::string refused;
};

// A static pod: from the manifest directory. Sources set the annotation, as
// the kubelet's config sources do; the API source overwrites what an API pod
// says of itself ("api"), so a pod cannot claim to be static.
inline bool isStaticPod(const Pod& pod) {
  auto source = pod.annotations.find("kubernetes.io/config.source");
  return source != pod.annotations.end() && source->second == "file";
}

struct ManifestPod {
  Pod pod;
  int line = 0;          // where its document starts, 1-based
  std::string document;  // the document as parsed, re-emitted: what a change is judged by
  std::string json;      // the document as JSON, quoted scalars kept strings (mirror pods)
};

// What a field kernelet refuses does: a static manifest's is an error; an API
// pod's is kept in Pod::refused, for admission to reject the pod.
enum class RefusedFields { kError, kRecord };

// Decodes every document of `text` (read from `file`, named in errors).
Result<std::vector<ManifestPod>> parseManifests(const std::string& text, const std::string& file,
                                                RefusedFields refused = RefusedFields::kError);

}  // namespace kernelet::agent
