#include "agent/app/cli.h"

#include <CLI/CLI.hpp>
#include <iostream>

#include "agent/app/agent.h"
#include "agent/app/gc_flags.h"
#include "agent/app/pods_cli.h"
#include "agent/config/config.h"
#include "agent/lifecycle/sysctl_allowlist.h"
#include "agent/log/log.h"
#include "agent/version.h"
#include "images/images_cli.h"
#include "isolation/oci_cli.h"
#include "sys/open_files.h"

namespace kernelet::agent {
namespace {

constexpr int kUsageError = 2;

// The kubelet's flags that apply; the config file is read first and flags
// given on the command line win, as with the kubelet.
struct RunFlags {
  std::string config_file, kubeconfig;
  std::string kube_reserved, system_reserved, eviction_hard;  // parsed after the file
  std::string eviction_soft, eviction_soft_grace, eviction_minimum_reclaim;
  std::string eviction_transition;                                            // a Go duration
  std::string shutdown_grace, shutdown_grace_critical;                        // Go durations
  std::string authn_cache_ttl, authz_authorized_ttl, authz_unauthorized_ttl;  // Go durations
  std::string streaming_idle_timeout;                                         // a Go duration
  GcFlags gc;                                                                 // gc_flags.h
  AgentConfig config;
};

// The node server (:10250) and its authentication and authorization.
void addServerFlags(CLI::App* run, RunFlags& f) {
  ServerSettings& s = f.config.server;
  run->add_option("--address", s.address, "the node server's address")->capture_default_str();
  run->add_option("--port", s.port, "the node server's port (0: any free port)")
      ->capture_default_str();
  run->add_option("--tls-cert-file", s.tls_cert_file, "the node server's certificate (PEM)");
  run->add_option("--tls-private-key-file", s.tls_private_key_file, "its private key (PEM)");
  run->add_option("--cert-dir", s.cert_dir,
                  "where the self-signed serving certificate is kept (default ROOT/pki)");
  run->add_option("--tls-min-version", s.tls_min_version, "VersionTLS12 or VersionTLS13")
      ->capture_default_str();
  run->add_option("--tls-cipher-suites", s.tls_cipher_suites,
                  "cipher suites, Go's names, comma-separated")
      ->delimiter(',');
  run->add_option("--client-ca-file", s.client_ca_file,
                  "client certificates signed by this CA authenticate (CN user, O groups)");
  run->add_flag("--anonymous-auth", s.anonymous,
                "let unauthenticated requests in as system:anonymous (default false)");
  run->add_flag("--authentication-token-webhook", s.webhook_authn,
                "check bearer tokens with TokenReview (default true with --kubeconfig)");
  run->add_option("--authentication-token-webhook-cache-ttl", f.authn_cache_ttl,
                  "how long TokenReview answers are cached (default 2m)");
  run->add_option("--streaming-connection-idle-timeout", f.streaming_idle_timeout,
                  "how long an exec, attach or port-forward connection may carry no traffic "
                  "before it is closed (default 4h; 0: never)");
  run->add_option("--authorization-mode", s.authorization_mode, "Webhook or AlwaysAllow")
      ->capture_default_str();
  run->add_option("--authorization-webhook-cache-authorized-ttl", f.authz_authorized_ttl,
                  "how long allowed SubjectAccessReview answers are cached (default 5m)");
  run->add_option("--authorization-webhook-cache-unauthorized-ttl", f.authz_unauthorized_ttl,
                  "how long denied answers are cached (default 30s)");
}

// The server's flags given on the command line, over the file's.
bool applyServerFlags(CLI::App* run, const RunFlags& flags, ServerSettings& s, std::string& error) {
  const ServerSettings& f = flags.config.server;
  auto given = [run](const char* name) { return run->count(name) > 0; };
  if (given("--address")) {
    s.address = f.address;
  }
  if (given("--port")) {
    s.port = f.port;
  }
  if (given("--tls-cert-file")) {
    s.tls_cert_file = f.tls_cert_file;
  }
  if (given("--tls-private-key-file")) {
    s.tls_private_key_file = f.tls_private_key_file;
  }
  if (given("--cert-dir")) {
    s.cert_dir = f.cert_dir;
  }
  if (given("--tls-min-version")) {
    s.tls_min_version = f.tls_min_version;
  }
  if (given("--tls-cipher-suites")) {
    s.tls_cipher_suites = f.tls_cipher_suites;
  }
  if (given("--client-ca-file")) {
    s.client_ca_file = f.client_ca_file;
  }
  if (given("--anonymous-auth")) {
    s.anonymous = f.anonymous;
  }
  if (given("--authentication-token-webhook")) {
    s.webhook_authn = f.webhook_authn;
  }
  if (given("--authorization-mode")) {
    s.authorization_mode = f.authorization_mode;
  }
  for (auto [name, text, target] :
       {std::tuple{"--authentication-token-webhook-cache-ttl", &flags.authn_cache_ttl,
                   &s.webhook_cache_ttl},
        std::tuple{"--authorization-webhook-cache-authorized-ttl", &flags.authz_authorized_ttl,
                   &s.authz_cache_authorized_ttl},
        std::tuple{"--authorization-webhook-cache-unauthorized-ttl", &flags.authz_unauthorized_ttl,
                   &s.authz_cache_unauthorized_ttl},
        std::tuple{"--streaming-connection-idle-timeout", &flags.streaming_idle_timeout,
                   &s.streaming_idle_timeout}}) {
    if (!given(name)) {
      continue;
    }
    auto parsed = parseDurationSeconds(*text, name);
    if (!parsed) {
      error = parsed.error().message();
      return false;
    }
    *target = *parsed;
  }
  if (auto r = validateServerSettings(s); !r) {
    error = r.error().message();
    return false;
  }
  return true;
}

void addRunFlags(CLI::App* run, RunFlags& f) {
  AgentConfig& c = f.config;
  run->add_option("--config", f.config_file,
                  "a KubeletConfiguration file (kubelet.config.k8s.io/v1beta1)");
  run->add_option("--kubeconfig", f.kubeconfig, "join the cluster this kubeconfig names");
  run->add_option("--pod-manifest-path", c.pod_manifest_path,
                  "directory of static pod manifests (staticPodPath)");
  run->add_option("--root-dir", c.root_dir, "agent state: images, pod volumes, status")
      ->capture_default_str();
  run->add_option("--pod-log-dir", c.pod_log_dir, "where container logs go")->capture_default_str();
  run->add_option("--run-dir", c.run_dir, "runtime state: network namespaces")
      ->capture_default_str();
  run->add_option("--hostname-override", c.node_name, "the node's name instead of the hostname");
  run->add_option("--node-ip", c.node_ip, "the node's address (hostIP of pods)");
  run->add_option("--max-pods", c.max_pods, "pods this node runs at most")->capture_default_str();
  run->add_option("--cgroup-root", c.cgroup_root, "parent cgroup of kubepods")
      ->capture_default_str();
  run->add_option("--pod-cidr", c.pod_cidr, "addresses for pods on the node bridge")
      ->capture_default_str();
  run->add_option("--cluster-dns", c.cluster_dns, "DNS server addresses for ClusterFirst pods")
      ->delimiter(',');
  run->add_option("--cluster-domain", c.cluster_domain, "the cluster's DNS domain")
      ->capture_default_str();
  run->add_option("--resolv-conf", c.resolv_conf, "the node resolv.conf for dnsPolicy Default")
      ->capture_default_str();
  run->add_option("--allowed-unsafe-sysctls", c.allowed_unsafe_sysctls,
                  "comma-separated unsafe sysctls or sysctl patterns (ending in *) pods may set "
                  "beyond the safe set, e.g. 'kernel.msg*,net.core.somaxconn' "
                  "(allowedUnsafeSysctls; use at your own risk)")
      ->delimiter(',');
  run->add_option("--kube-reserved", f.kube_reserved,
                  "resources set aside for Kubernetes daemons, e.g. cpu=100m,memory=256Mi,"
                  "ephemeral-storage=1Gi (kubeReserved)");
  run->add_option("--system-reserved", f.system_reserved,
                  "resources set aside for the system, same form (systemReserved)");
  run->add_option("--eviction-hard", f.eviction_hard,
                  "hard eviction thresholds, e.g. memory.available<100Mi,nodefs.available<10% "
                  "(evictionHard; the signals left out get none)");
  run->add_option("--eviction-soft", f.eviction_soft,
                  "soft eviction thresholds, same form, e.g. memory.available<1.5Gi "
                  "(evictionSoft; each needs --eviction-soft-grace-period)");
  run->add_option("--eviction-soft-grace-period", f.eviction_soft_grace,
                  "how long a soft threshold must hold before a pod is evicted, e.g. "
                  "memory.available=1m30s (evictionSoftGracePeriod)");
  run->add_option("--eviction-max-pod-grace-period", c.eviction_max_pod_grace_seconds,
                  "the most grace, in seconds, a pod evicted for a soft threshold gets "
                  "(evictionMaxPodGracePeriod)")
      ->capture_default_str();
  run->add_option("--eviction-minimum-reclaim", f.eviction_minimum_reclaim,
                  "how much beyond its threshold must be free before a met threshold is "
                  "resolved, e.g. memory.available=0Mi,nodefs.available=500Mi "
                  "(evictionMinimumReclaim)");
  run->add_option("--eviction-pressure-transition-period", f.eviction_transition,
                  "how long a pressure condition stays True after its threshold was last met "
                  "(evictionPressureTransitionPeriod, default 5m0s)");
  run->add_option("--oom-score-adj", c.oom_score_adj,
                  "the agent's own oom_score_adj, in [-1000, 1000] (oomScoreAdj)")
      ->capture_default_str();
  run->add_option("--shutdown-grace-period", f.shutdown_grace,
                  "on a node shutdown (systemd-logind), delay it this long to terminate the "
                  "pods, e.g. 30s (shutdownGracePeriod; 0: disabled)");
  run->add_option("--shutdown-grace-period-critical-pods", f.shutdown_grace_critical,
                  "of that, the part kept for critical pods, terminated last "
                  "(shutdownGracePeriodCriticalPods)");
  addServerFlags(run, f);
  addGcFlags(run, f.gc);
  run->add_option("-v,--v", c.verbosity, "log verbosity");
  run->add_flag("--seccomp-default", c.seccomp_default,
                "RuntimeDefault seccomp for containers that set no profile (seccompDefault; "
                "kernelet's default is true, --seccomp-default=false leaves them Unconfined)");
  run->add_flag(
      "--limits-unenforced", c.limits_unenforced,
      "run pods even where cgroup v2 lacks cpu, memory or pids (limits are NOT enforced)");
  run->add_flag("--stop-pods-on-exit", c.stop_pods_on_exit,
                "on SIGTERM or SIGINT, terminate every pod within its grace period before "
                "exiting (a second signal kills them now); without it the agent exits and "
                "leaves the pods running for the next agent to adopt");
}

// The settings `kernelet run` was given: the file, then the flags given. A
// non-zero status is the exit status, with `error` to print.
struct Configured {
  AgentConfig config;
  int status = 0;
  std::string error;
};

Configured configure(CLI::App* run, const RunFlags& flags) {
  Configured out;
  AgentConfig& config = out.config;
  if (!flags.config_file.empty()) {
    if (auto r = loadKubeletConfiguration(flags.config_file, config); !r) {
      return {config, 1, r.error().message()};
    }
  }
  // Only the flags given on the command line override the file.
  const AgentConfig& f = flags.config;
  auto given = [run](const char* name) { return run->count(name) > 0; };
  if (given("--pod-manifest-path")) config.pod_manifest_path = f.pod_manifest_path;
  if (given("--root-dir")) config.root_dir = f.root_dir;
  if (given("--pod-log-dir")) config.pod_log_dir = f.pod_log_dir;
  if (given("--run-dir")) config.run_dir = f.run_dir;
  if (given("--hostname-override")) config.node_name = f.node_name;
  if (given("--node-ip")) config.node_ip = f.node_ip;
  if (given("--max-pods")) config.max_pods = f.max_pods;
  if (given("--cgroup-root")) config.cgroup_root = f.cgroup_root;
  if (given("--pod-cidr")) config.pod_cidr = f.pod_cidr;
  if (given("--cluster-dns")) config.cluster_dns = f.cluster_dns;
  if (given("--cluster-domain")) config.cluster_domain = f.cluster_domain;
  if (given("--resolv-conf")) config.resolv_conf = f.resolv_conf;
  if (given("--allowed-unsafe-sysctls")) config.allowed_unsafe_sysctls = f.allowed_unsafe_sysctls;
  if (given("--seccomp-default")) config.seccomp_default = f.seccomp_default;
  if (given("-v")) config.verbosity = f.verbosity;
  if (given("--oom-score-adj")) {
    config.oom_score_adj = f.oom_score_adj;
  }
  if (given("--eviction-max-pod-grace-period")) {
    config.eviction_max_pod_grace_seconds = f.eviction_max_pod_grace_seconds;
  }
  // The kubelet's reservation and threshold flags, over the file's.
  auto flagValue = [&](const char* name, const std::string& text, auto parse, auto& target) {
    if (!given(name)) {
      return true;
    }
    auto parsed = parse(text, name);
    if (!parsed) {
      out.error = parsed.error().message();
      return false;
    }
    target = std::move(*parsed);
    return true;
  };
  if (!flagValue("--kube-reserved", flags.kube_reserved, parseReserved, config.kube_reserved) ||
      !flagValue("--system-reserved", flags.system_reserved, parseReserved,
                 config.system_reserved) ||
      !flagValue("--eviction-hard", flags.eviction_hard, parseEvictionHard, config.eviction_hard) ||
      !flagValue("--eviction-soft", flags.eviction_soft, parseEvictionHard, config.eviction_soft) ||
      !flagValue("--eviction-soft-grace-period", flags.eviction_soft_grace,
                 parseEvictionGracePeriods, config.eviction_soft_grace_seconds) ||
      !flagValue("--eviction-minimum-reclaim", flags.eviction_minimum_reclaim,
                 parseEvictionMinimumReclaim, config.eviction_minimum_reclaim) ||
      !flagValue("--eviction-pressure-transition-period", flags.eviction_transition,
                 parseDurationSeconds, config.eviction_pressure_transition_seconds) ||
      !flagValue("--shutdown-grace-period", flags.shutdown_grace, parseDurationSeconds,
                 config.shutdown_grace_seconds) ||
      !flagValue("--shutdown-grace-period-critical-pods", flags.shutdown_grace_critical,
                 parseDurationSeconds, config.shutdown_grace_critical_seconds)) {
    out.status = kUsageError;
    return out;
  }
  // A bad pattern stops the agent, as it stops the kubelet.
  if (auto r = SysctlAllowlist::create(config.allowed_unsafe_sysctls); !r) {
    out.status = kUsageError;
    out.error = r.error().message();
    return out;
  }
  if (auto r = validateEvictionSettings(config); !r) {
    out.status = kUsageError;
    out.error = r.error().message();
    return out;
  }
  if (auto r = validateServiceSettings(config); !r) {
    out.status = kUsageError;
    out.error = r.error().message();
    return out;
  }
  if (auto r = applyGcFlags(run, flags.gc, config); !r) {
    out.status = kUsageError;
    out.error = r.error().message();
    return out;
  }
  if (!applyServerFlags(run, flags, config.server, out.error)) {
    out.status = kUsageError;
    return out;
  }
  config.limits_unenforced = f.limits_unenforced;
  config.stop_pods_on_exit = f.stop_pods_on_exit;
  config.kubeconfig = flags.kubeconfig;
  if (config.pod_manifest_path.empty() && config.kubeconfig.empty()) {
    out.status = kUsageError;
    out.error =
        "no pod source: give --pod-manifest-path DIR (or staticPodPath in --config) and/or "
        "--kubeconfig FILE";
  } else if (config.kubeconfig.empty() && config.server.anonymous) {
    // Standalone, nobody can authorize a request: the server is x509 or off, never open.
    out.status = kUsageError;
    out.error =
        "--anonymous-auth (authentication.anonymous.enabled): not allowed without --kubeconfig "
        "(standalone, the node server takes only client certificates of --client-ca-file)";
  }
  return out;
}

int runAgent(CLI::App* run, RunFlags& flags) {
  Configured configured = configure(run, flags);
  if (configured.status != 0) {
    std::cerr << "kernelet run: " << configured.error << "\n";
    return configured.status;
  }
  const AgentConfig& config = configured.config;
  if (auto r = raiseOpenFileLimit(); !r) {  // a node's worth of pods needs more than 1024
    std::cerr << "kernelet run: " << r.error().message() << "\n";
    return 1;
  }
  auto agent = Agent::create(config);
  if (!agent) {
    std::cerr << "kernelet run: " << agent.error().message() << "\n";
    return 1;
  }
  if (auto r = (*agent)->run(); !r) {
    std::cerr << "kernelet run: " << r.error().message() << "\n";
    return 1;
  }
  return 0;
}

}  // namespace

Result<AgentConfig> runConfig(const std::vector<std::string>& args) {
  CLI::App run{"run", "run"};
  RunFlags flags;
  addRunFlags(&run, flags);
  std::vector<std::string> line = {"run"};
  line.insert(line.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : line) {
    argv.push_back(a.data());
  }
  try {
    run.parse(static_cast<int>(argv.size()), argv.data());
  } catch (const CLI::ParseError& e) {
    return makeError("kernelet run", "", e.what());
  }
  Configured configured = configure(&run, flags);
  if (configured.status != 0) {
    return makeError("kernelet run", "", configured.error);
  }
  return configured.config;
}

int runCli(int argc, char** argv) {
  CLI::App app{"kernelet: a Kubernetes node agent that isolates containers itself", "kernelet"};
  app.set_version_flag("--version", std::string("kernelet version ") + KERNELET_VERSION);
  app.require_subcommand(0, 1);

  auto* run = app.add_subcommand(
      "run",
      "run the node agent (kubelet); SIGTERM or SIGINT makes it exit and leave the pods running "
      "for the next agent to adopt, unless --stop-pods-on-exit");
  run->allow_extras(false);
  RunFlags run_flags;
  addRunFlags(run, run_flags);
  auto* pods = app.add_subcommand("pods", "list the pods this node runs, like kubectl get pods");
  std::string pods_root = "/var/lib/kernelet";
  pods->add_option("--root-dir", pods_root, "the agent's --root-dir")->capture_default_str();
  auto* logs = app.add_subcommand("logs", "print a container's log, like kubectl logs");
  LogsRequest logs_req{.root_dir = "/var/lib/kernelet", .pod_log_dir = "/var/log/pods"};
  logs->add_option("POD", logs_req.pod, "the pod's name")->required();
  logs->add_option("CONTAINER", logs_req.container,
                   "the container (needed when the pod has several)");
  logs->add_option("-c,--container", logs_req.container, "the container");
  logs->add_option("-n,--namespace", logs_req.namespace_, "the pod's namespace")
      ->capture_default_str();
  logs->add_flag("-p,--previous", logs_req.previous, "the previous run of the container");
  logs->add_flag("-f,--follow", logs_req.follow,
                 "stream the log as it is written, until the container stops");
  logs->add_option("--tail", logs_req.tail, "lines of recent log to show; -1 shows all")
      ->capture_default_str();
  logs->add_flag("--timestamps", logs_req.timestamps, "prefix each line with its RFC3339Nano time");
  logs->add_option("--since", logs_req.since,
                   "only lines newer than this duration (5s, 2m, 3h); not with --since-time");
  logs->add_option("--since-time", logs_req.since_time,
                   "only lines from this RFC 3339 time on; not with --since");
  logs->add_option("--limit-bytes", logs_req.limit_bytes,
                   "the most bytes of log to show; 0: no limit")
      ->capture_default_str();
  logs->add_option("--root-dir", logs_req.root_dir, "the agent's --root-dir")
      ->capture_default_str();
  logs->add_option("--pod-log-dir", logs_req.pod_log_dir, "the agent's --pod-log-dir")
      ->capture_default_str();
  auto* oci = app.add_subcommand("oci", "the OCI runtime interface (runc/crun arguments)");
  oci->prefix_command();
  oci->set_help_flag();  // `kernelet oci --help` is answered by the oci parser
  auto* images = app.add_subcommand("images", "pull, import, list, inspect and remove images");
  images->prefix_command();
  images->set_help_flag();

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << "kernelet: " << e.what() << "\nRun 'kernelet --help' for usage.\n";
    return kUsageError;
  }

  if (*run) {
    return runAgent(run, run_flags);
  }
  if (*pods) {
    return listPods(pods_root, std::cout, std::cerr, ::time(nullptr));
  }
  if (*logs) {
    return printLogs(logs_req, std::cout, std::cerr);
  }
  // The rest of the line belongs to the subcommand, which has its own parser.
  auto forward = [](CLI::App* sub, const char* name, int (*main)(int, char**)) {
    std::vector<std::string> rest = sub->remaining();
    std::vector<char*> args = {const_cast<char*>(name)};
    for (auto& a : rest) {
      args.push_back(a.data());
    }
    return main(static_cast<int>(args.size()), args.data());
  };
  if (*oci) {
    return forward(oci, "oci", isolation::ociMain);
  }
  if (*images) {
    return forward(images, "images", images::imagesMain);
  }
  std::cout << app.help();
  return 0;
}

}  // namespace kernelet::agent
