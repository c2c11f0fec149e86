#pragma once
// The agent's settings: the kubelet's flags and the fields of a
// KubeletConfiguration file (kubelet.config.k8s.io/v1beta1) that apply to
// kernelet, with the kubelet's defaults. Flags given on the command line win
// over the file, as with the kubelet.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "agent/config/gc_settings.h"
#include "sys/result.h"

namespace kernelet::agent {

// Resources set aside for the system or Kubernetes daemons (systemReserved,
// kubeReserved): subtracted from capacity for allocatable.
struct Reserved {
  int64_t milli_cpu = 0, memory = 0, ephemeral_storage = 0;
  int64_t pids = 0;  // "pid": kept from the pods' kubepods pids.max
};

// A hard eviction threshold ("100Mi" or "10%" of the signal's capacity).
struct Threshold {
  std::optional<int64_t> quantity;
  std::optional<double> percent;
  // How much of `capacity` it keeps free.
  int64_t of(int64_t capacity) const;
};

// evictionHard by signal (memory.available, nodefs.available,
// nodefs.inodesFree, imagefs.available, imagefs.inodesFree, pid.available):
// the kubelet's defaults. A signal without a threshold never fires.
std::map<std::string, Threshold> defaultEvictionHard();

// The node server (:10250) and who may use it: the kubelet's flags and
// KubeletConfiguration fields (address, port, tls*, authentication,
// authorization), with v1beta1's defaults except anonymous (off).
struct ServerSettings {
  std::string address = "0.0.0.0";
  int port = 10250;  // 0: any free port (a kernelet extension, for tests)
  std::string tls_cert_file, tls_private_key_file;
  std::string cert_dir;  // empty: ROOT/pki
  std::string tls_min_version = "VersionTLS12";
  std::vector<std::string> tls_cipher_suites;
  std::string client_ca_file;                  // authentication.x509.clientCAFile
  bool anonymous = false;                      // authentication.anonymous.enabled
  bool webhook_authn = true;                   // authentication.webhook.enabled
  int64_t webhook_cache_ttl = 120;             // authentication.webhook.cacheTTL, seconds
  std::string authorization_mode = "Webhook";  // or AlwaysAllow
  int64_t authz_cache_authorized_ttl = 300;    // authorization.webhook.cacheAuthorizedTTL
  int64_t authz_cache_unauthorized_ttl = 30;   // authorization.webhook.cacheUnauthorizedTTL
  // streamingConnectionIdleTimeout, seconds: an exec, attach or port-forward
  // connection with no traffic either way for this long is closed; 0: never.
  int64_t streaming_idle_timeout = 4 * 3600;
};

// Checks the server's settings; errors name the flag and field.
Result<void> validateServerSettings(const ServerSettings& s);

struct AgentConfig {
  std::string pod_manifest_path;  // staticPodPath; empty: no static pods
  std::string kubeconfig;         // join the cluster it names; empty: standalone
  std::string root_dir = "/var/lib/kernelet";
  std::string pod_log_dir = "/var/log/pods";
  std::string run_dir = "/run/kernelet";  // network namespace files, the agent's socket
  std::string node_name;                  // --hostname-override, else the hostname lowercased
  std::string node_ip;
  int max_pods = 110;
  std::string cgroup_root = "/";
  int64_t container_log_max_size = 10 << 20;  // containerLogMaxSize 10Mi
  int container_log_max_files = 5;
  std::vector<std::string> cluster_dns;
  std::string cluster_domain = "cluster.local";
  std::string resolv_conf = "/etc/resolv.conf";
  // allowedUnsafeSysctls: sysctls or prefixes ("kernel.msg*") pods may set
  // beyond the safe set (agent/lifecycle/sysctl_allowlist.h).
  std::vector<std::string> allowed_unsafe_sysctls;
  std::string pod_cidr = "10.88.0.0/16";
  Reserved system_reserved, kube_reserved;
  std::map<std::string, Threshold> eviction_hard = defaultEvictionHard();
  // The eviction manager's other settings (agent/eviction), the kubelet's
  // names and defaults: soft thresholds act once met for their grace period
  // (every soft threshold needs one); a soft eviction gives a pod at most
  // evictionMaxPodGracePeriod (0: its own terminationGracePeriodSeconds is
  // capped at 0 too, as the kubelet's min()); a met threshold stays met
  // until evictionMinimumReclaim more is free; a pressure condition stays
  // True for evictionPressureTransitionPeriod after its last observation.
  std::map<std::string, Threshold> eviction_soft;
  std::map<std::string, int64_t> eviction_soft_grace_seconds;
  int64_t eviction_max_pod_grace_seconds = 0;
  std::map<std::string, Threshold> eviction_minimum_reclaim;
  int64_t eviction_pressure_transition_seconds = 300;
  // seccompDefault: RuntimeDefault for containers that set no profile.
  // kernelet's default is true, unlike the kubelet's: Unconfined let any
  // container create a user namespace with CAP_SYS_ADMIN over a new mount
  // namespace. --seccomp-default=false gives the kubelet's Unconfined back.
  bool seccomp_default = true;
  int verbosity = 0;
  // On a host whose cgroup v2 lacks cpu, memory or pids: run pods without their
  // limits, warning loudly, instead of refusing to start.
  bool limits_unenforced = false;
  // What SIGTERM or SIGINT does. false (the default, the kubelet's behaviour
  // under a service manager): the agent exits and leaves every pod running
  // for the next agent to adopt. true (--stop-pods-on-exit): every pod is
  // terminated within its grace period, then the agent exits; a second signal
  // kills them at once.
  bool stop_pods_on_exit = false;
  // oomScoreAdj: the agent's own /proc/self/oom_score_adj, the kubelet's -999,
  // so the OOM killer takes a pod's process before the agent that keeps it.
  int oom_score_adj = -999;
  // Graceful node shutdown through systemd-logind (shutdownGracePeriod,
  // shutdownGracePeriodCriticalPods): 0 disables it, as with the kubelet.
  int64_t shutdown_grace_seconds = 0, shutdown_grace_critical_seconds = 0;
  ServerSettings server;
  // Garbage collection (gc_settings.h).
  images::ImageGcPolicy image_gc;
  ContainerGcPolicy container_gc;
};

// Reads a KubeletConfiguration (YAML or JSON) over `config`. Errors name the
// file and the field; a kind or apiVersion that is not the kubelet's is refused.
Result<void> loadKubeletConfiguration(const std::string& file, AgentConfig& config);

// The flags' forms, as the kubelet's: "cpu=500m,memory=1Gi,ephemeral-storage=1Gi,pid=1000"
// and "memory.available<100Mi,nodefs.available<10%". `what` names the flag.
Result<Reserved> parseReserved(const std::string& text, const std::string& what);
Result<std::map<std::string, Threshold>> parseEvictionHard(const std::string& text,
                                                           const std::string& what);

// evictionSoftGracePeriod ("memory.available=1m30s,...") and
// evictionMinimumReclaim ("memory.available=0Mi,nodefs.available=500Mi").
Result<std::map<std::string, int64_t>> parseEvictionGracePeriods(const std::string& text,
                                                                 const std::string& what);
Result<std::map<std::string, Threshold>> parseEvictionMinimumReclaim(const std::string& text,
                                                                     const std::string& what);
// The kubelet's checks across the eviction settings: each soft threshold has
// a grace period, no grace period or maximum is negative. The op names the field.
Result<void> validateEvictionSettings(const AgentConfig& config);

// oomScoreAdj in [-1000, 1000], shutdownGracePeriodCriticalPods at most
// shutdownGracePeriod; the error's op names the field.
Result<void> validateServiceSettings(const AgentConfig& config);

// A Go duration as KubeletConfiguration fields and the kubelet's flags write
// them ("30s", "1m30s", "2h", "0"), in whole seconds; `what` names the field.
Result<int64_t> parseDurationSeconds(const std::string& text, const std::string& what);

// The node's name as the kubelet picks it: the override, else the hostname, lowercased.
std::string nodeName(const std::string& override_name);

}  // namespace kernelet::agent
