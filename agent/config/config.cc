#include "agent/config/config.h"

#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <boost/asio/ip/address.hpp>
#include <cctype>
#include <cstdlib>
#include <set>
#include <sstream>

#include "agent/server/tls.h"
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

const std::set<std::string>& evictionSignals() {
  static const std::set<std::string> signals = {"memory.available",   "nodefs.available",
                                                "nodefs.inodesFree",  "imagefs.available",
                                                "imagefs.inodesFree", "pid.available"};
  return signals;
}

// "100Mi", "100000" or "10%"; errors say what was wrong, the caller where.
Result<Threshold> parseThreshold(const std::string& value) {
  Threshold t;
  if (!value.empty() && value.back() == '%') {
    char* end = nullptr;
    double p = std::strtod(value.c_str(), &end);
    if (end != value.c_str() + value.size() - 1 || p < 0 || p > 100) {
      return makeError("parse threshold", value, "not a percentage between 0% and 100%");
    }
    t.percent = p;
    return t;
  }
  auto q = apiclient::Quantity::parse(value);
  if (!q || q->value() < 0) {
    return makeError("parse threshold", value, "not a quantity or a percentage");
  }
  t.quantity = q->value();
  return t;
}

Result<void> addThreshold(std::map<std::string, Threshold>& out, const std::string& signal,
                          const std::string& value) {
  if (!evictionSignals().contains(signal)) {
    return makeError("parse eviction threshold", signal,
                     "unknown signal (memory.available, nodefs.available, nodefs.inodesFree, "
                     "imagefs.available, imagefs.inodesFree, pid.available)");
  }
  TRY(out[signal], parseThreshold(value));
  return {};
}

// evictionSoftGracePeriod's value: a Go duration, not negative.
Result<void> addGrace(std::map<std::string, int64_t>& out, const std::string& signal,
                      const std::string& value) {
  if (!evictionSignals().contains(signal)) {
    return makeError("parse eviction grace period", signal,
                     "unknown signal (memory.available, nodefs.available, nodefs.inodesFree, "
                     "imagefs.available, imagefs.inodesFree, pid.available)");
  }
  if (!value.empty() && value.front() == '-') {
    return makeError("parse eviction grace period", value, "must be a positive value");
  }
  TRY(out[signal], parseDurationSeconds(value, signal));
  return {};
}

// A map field of the file (evictionSoft, evictionSoftGracePeriod,
// evictionMinimumReclaim): each entry through `add`, errors naming FIELD.SIGNAL.
template <typename Map, typename Add>
Result<void> readSignalMap(const std::string& file, const YAML::Node& root, const char* key,
                           Map& out, Add add) {
  YAML::Node n = root[key];
  if (!n || n.IsNull()) {
    return {};
  }
  if (!n.IsMap()) {
    return fieldError(file, n, key, "must be a map of signal to value");
  }
  out.clear();
  for (const auto& kv : n) {
    std::string signal = kv.first.as<std::string>("");
    if (!kv.second.IsScalar()) {
      return fieldError(file, kv.second, std::string(key) + "." + signal, "must be a string");
    }
    if (auto r = add(out, signal, kv.second.Scalar()); !r) {
      return fieldError(file, kv.second, std::string(key) + "." + signal, r.error().detail);
    }
  }
  return {};
}

Result<void> addReserved(Reserved& r, const std::string& name, const std::string& value) {
  auto q = apiclient::Quantity::parse(value);
  if (!q || q->value() < 0) {
    return makeError("parse reservation", name + "=" + value, "not a quantity");
  }
  if (name == "cpu") {
    r.milli_cpu = q->milliValue();
  } else if (name == "memory") {
    r.memory = q->value();
  } else if (name == "ephemeral-storage") {
    r.ephemeral_storage = q->value();
  } else if (name == "pid") {
    r.pids = q->value();
  } else {
    return makeError("parse reservation", name,
                     "unknown resource (cpu, memory, ephemeral-storage or pid)");
  }
  return {};
}

// "a=1,b=2" (sep '=') or "a<1,b<2" (sep '<'), each pair handed to `add`.
template <typename Add>
Result<void> forEachPair(const std::string& text, char sep, const std::string& what, Add add) {
  std::istringstream in(text);
  for (std::string item; std::getline(in, item, ',');) {
    size_t at = item.find(sep);
    if (at == std::string::npos || at == 0) {
      return makeError("parse " + what, item, std::string("expected NAME") + sep + "VALUE");
    }
    if (auto r = add(item.substr(0, at), item.substr(at + 1)); !r) {
      return makeError("parse " + what, item, r.error().detail);
    }
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

Result<void> readDuration(const std::string& file, const YAML::Node& root, const char* key,
                          int64_t& seconds) {
  YAML::Node n = root[key];
  if (!n || n.IsNull()) {
    return {};
  }
  auto parsed = parseDurationSeconds(n.IsScalar() ? n.as<std::string>("") : "", key);
  if (!parsed) {
    return fieldError(file, n, key, parsed.error().detail);
  }
  seconds = *parsed;
  return {};
}

// The fields of graceful node shutdown and the agent's own OOM score, checked
// as the kubelet's validation does.
Result<void> readNodeShutdown(const std::string& file, const YAML::Node& root,
                              AgentConfig& config) {
  TRY_VOID(read(file, root, "oomScoreAdj", config.oom_score_adj));
  TRY_VOID(readDuration(file, root, "shutdownGracePeriod", config.shutdown_grace_seconds));
  TRY_VOID(readDuration(file, root, "shutdownGracePeriodCriticalPods",
                        config.shutdown_grace_critical_seconds));
  if (auto r = validateServiceSettings(config); !r) {
    return fieldError(file, root, r.error().op, r.error().detail);
  }
  return {};
}

// A nested map of the server's settings: each key must be one of `known`
// (a misspelt security setting must not be dropped silently).
Result<YAML::Node> section(const std::string& file, const YAML::Node& parent,
                           const std::string& key, const std::string& where,
                           const std::set<std::string>& known) {
  YAML::Node n = parent[key];
  if (!n || n.IsNull()) {
    return YAML::Node();
  }
  if (!n.IsMap()) {
    return fieldError(file, n, where, "must be a map");
  }
  for (const auto& kv : n) {
    std::string name = kv.first.as<std::string>("");
    if (!known.contains(name)) {
      return fieldError(file, kv.first, where + ("." + name), "unknown field");
    }
  }
  return n;
}

// address, port, tls*, streamingConnectionIdleTimeout, authentication, authorization.
Result<void> readServer(const std::string& file, const YAML::Node& root, ServerSettings& s) {
  TRY_VOID(read(file, root, "address", s.address));
  TRY_VOID(read(file, root, "port", s.port));
  TRY_VOID(read(file, root, "tlsCertFile", s.tls_cert_file));
  TRY_VOID(read(file, root, "tlsPrivateKeyFile", s.tls_private_key_file));
  TRY_VOID(read(file, root, "tlsMinVersion", s.tls_min_version));
  TRY_VOID(readDuration(file, root, "streamingConnectionIdleTimeout", s.streaming_idle_timeout));
  if (YAML::Node n = root["tlsCipherSuites"]; n && !n.IsNull()) {
    if (!n.IsSequence()) {
      return fieldError(file, n, "tlsCipherSuites", "must be a list of cipher suite names");
    }
    s.tls_cipher_suites.clear();
    for (const auto& c : n) {
      s.tls_cipher_suites.push_back(c.as<std::string>(""));
    }
  }
  TRY(YAML::Node authn,
      section(file, root, "authentication", "authentication", {"x509", "webhook", "anonymous"}));
  if (authn) {
    TRY(YAML::Node x509, section(file, authn, "x509", "authentication.x509", {"clientCAFile"}));
    if (x509) {
      TRY_VOID(read(file, x509, "clientCAFile", s.client_ca_file));
    }
    TRY(YAML::Node hook,
        section(file, authn, "webhook", "authentication.webhook", {"enabled", "cacheTTL"}));
    if (hook) {
      TRY_VOID(read(file, hook, "enabled", s.webhook_authn));
      TRY_VOID(readDuration(file, hook, "cacheTTL", s.webhook_cache_ttl));
    }
    TRY(YAML::Node anon,
        section(file, authn, "anonymous", "authentication.anonymous", {"enabled"}));
    if (anon) {
      TRY_VOID(read(file, anon, "enabled", s.anonymous));
    }
  }
  TRY(YAML::Node authz, section(file, root, "authorization", "authorization", {"mode", "webhook"}));
  if (authz) {
    TRY_VOID(read(file, authz, "mode", s.authorization_mode));
    TRY(YAML::Node hook, section(file, authz, "webhook", "authorization.webhook",
                                 {"cacheAuthorizedTTL", "cacheUnauthorizedTTL"}));
    if (hook) {
      TRY_VOID(readDuration(file, hook, "cacheAuthorizedTTL", s.authz_cache_authorized_ttl));
      TRY_VOID(readDuration(file, hook, "cacheUnauthorizedTTL", s.authz_cache_unauthorized_ttl));
    }
  }
  if (auto r = validateServerSettings(s); !r) {
    return fieldError(file, root, r.error().op, r.error().detail);
  }
  return {};
}

}  // namespace

Result<void> validateServerSettings(const ServerSettings& s) {
  boost::system::error_code ec;
  (void)boost::asio::ip::make_address(s.address, ec);  // only whether it parses
  if (ec) {
    return makeError("address (--address)", "", "\"" + s.address + "\" is not an IP address");
  }
  if (s.port < 0 || s.port > 65535) {
    return makeError("port (--port)", "", "must be between 0 and 65535");
  }
  if (s.tls_cert_file.empty() != s.tls_private_key_file.empty()) {
    return makeError("tlsCertFile/tlsPrivateKeyFile (--tls-cert-file/--tls-private-key-file)", "",
                     "give both or neither");
  }
  if (auto r = server::checkTlsSettings(s.tls_min_version, s.tls_cipher_suites); !r) {
    return makeError(r.error().op, "", "\"" + r.error().path + "\": " + r.error().detail);
  }
  if (s.authorization_mode != "Webhook" && s.authorization_mode != "AlwaysAllow") {
    return makeError("authorization.mode (--authorization-mode)", "",
                     "\"" + s.authorization_mode + "\" is not Webhook or AlwaysAllow");
  }
  return {};
}

Result<void> validateServiceSettings(const AgentConfig& config) {
  if (config.oom_score_adj < -1000 || config.oom_score_adj > 1000) {
    return makeError("oomScoreAdj (--oom-score-adj)", "", "must be between -1000 and 1000");
  }
  if (config.shutdown_grace_critical_seconds > config.shutdown_grace_seconds) {
    return makeError("shutdownGracePeriodCriticalPods (--shutdown-grace-period-critical-pods)", "",
                     "must be at most shutdownGracePeriod (" +
                         std::to_string(config.shutdown_grace_seconds) + "s)");
  }
  return {};
}

Result<int64_t> parseDurationSeconds(const std::string& text, const std::string& what) {
  if (text == "0") {
    return 0;
  }
  static const std::pair<const char*, double> units[] = {{"ns", 1e-9}, {"us", 1e-6}, {"ms", 1e-3},
                                                         {"s", 1},     {"m", 60},    {"h", 3600}};
  double total = 0;
  size_t at = 0;
  while (at < text.size()) {
    size_t start = at;
    while (at < text.size() &&
           (std::isdigit(static_cast<unsigned char>(text[at])) != 0 || text[at] == '.')) {
      at++;
    }
    size_t unit_start = at;
    while (at < text.size() && std::isalpha(static_cast<unsigned char>(text[at])) != 0) {
      at++;
    }
    std::string number = text.substr(start, unit_start - start);
    std::string unit = text.substr(unit_start, at - unit_start);
    const auto* found = std::find_if(std::begin(units), std::end(units),
                                     [&](const auto& u) { return unit == u.first; });
    char* end = nullptr;
    double value = number.empty() ? -1 : std::strtod(number.c_str(), &end);
    if (found == std::end(units) || value < 0 || end != number.c_str() + number.size()) {
      return makeError("parse duration", what,
                       "\"" + text + "\" is not a duration such as 30s, 1m30s or 2h");
    }
    total += value * found->second;
  }
  if (text.empty() || total > 1e12) {
    return makeError("parse duration", what,
                     "\"" + text + "\" is not a duration such as 30s, 1m30s or 2h");
  }
  return static_cast<int64_t>(total);  // whole seconds, truncated as the kubelet's
}

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
  if (YAML::Node n = root["allowedUnsafeSysctls"]; n) {
    if (!n.IsSequence()) {
      return fieldError(file, n, "allowedUnsafeSysctls", "must be a list of sysctl patterns");
    }
    config.allowed_unsafe_sysctls.clear();
    for (const auto& s : n) {
      if (!s.IsScalar()) {
        return fieldError(file, s, "allowedUnsafeSysctls", "must be a list of sysctl patterns");
      }
      config.allowed_unsafe_sysctls.push_back(s.Scalar());
    }
  }
  for (auto [key, out] : {std::pair{"systemReserved", &config.system_reserved},
                          std::pair{"kubeReserved", &config.kube_reserved}}) {
    YAML::Node n = root[key];
    if (!n) {
      continue;
    }
    if (!n.IsMap()) {
      return fieldError(file, n, key, "must be a map of quantities");
    }
    *out = Reserved{};
    for (const auto& kv : n) {
      std::string name = kv.first.as<std::string>("");
      if (auto r = addReserved(*out, name, kv.second.as<std::string>("")); !r) {
        return fieldError(file, kv.second, std::string(key) + "." + name, r.error().detail);
      }
    }
  }
  // Without mergeDefaultEvictionSettings, an evictionHard replaces the
  // defaults: a signal it leaves out has no threshold (the kubelet's rule).
  bool merge = false;
  TRY_VOID(read(file, root, "mergeDefaultEvictionSettings", merge));
  if (YAML::Node n = root["evictionHard"]; n) {
    if (!n.IsMap()) {
      return fieldError(file, n, "evictionHard", "must be a map of signal to threshold");
    }
    std::map<std::string, Threshold> hard =
        merge ? defaultEvictionHard() : std::map<std::string, Threshold>{};
    for (const auto& kv : n) {
      std::string signal = kv.first.as<std::string>("");
      if (auto r = addThreshold(hard, signal, kv.second.as<std::string>("")); !r) {
        return fieldError(file, kv.second, "evictionHard." + signal, r.error().detail);
      }
    }
    config.eviction_hard = std::move(hard);
  }
  TRY_VOID(readSignalMap(file, root, "evictionSoft", config.eviction_soft, addThreshold));
  TRY_VOID(readSignalMap(file, root, "evictionSoftGracePeriod", config.eviction_soft_grace_seconds,
                         addGrace));
  TRY_VOID(readSignalMap(file, root, "evictionMinimumReclaim", config.eviction_minimum_reclaim,
                         addThreshold));
  TRY_VOID(read(file, root, "evictionMaxPodGracePeriod", config.eviction_max_pod_grace_seconds));
  TRY_VOID(readDuration(file, root, "evictionPressureTransitionPeriod",
                        config.eviction_pressure_transition_seconds));
  if (auto r = validateEvictionSettings(config); !r) {
    return fieldError(file, root, r.error().op, r.error().detail);
  }
  TRY_VOID(readNodeShutdown(file, root, config));
  TRY_VOID(readImageGcFields(file, root, config.image_gc));
  TRY_VOID(readServer(file, root, config.server));
  if (config.max_pods <= 0) {
    return fieldError(file, root["maxPods"], "maxPods", "must be positive");
  }
  if (config.container_log_max_files < 2) {
    return fieldError(file, root["containerLogMaxFiles"], "containerLogMaxFiles",
                      "must be at least 2");
  }
  return {};
}

int64_t Threshold::of(int64_t capacity) const {
  if (quantity) {
    return *quantity;
  }
  return percent ? static_cast<int64_t>(static_cast<double>(capacity) * *percent / 100) : 0;
}

std::map<std::string, Threshold> defaultEvictionHard() {
  return {{"memory.available", {.quantity = 100 << 20}},
          {"nodefs.available", {.percent = 10}},
          {"nodefs.inodesFree", {.percent = 5}},
          {"imagefs.available", {.percent = 15}}};
}

Result<Reserved> parseReserved(const std::string& text, const std::string& what) {
  Reserved r;
  TRY_VOID(forEachPair(text, '=', what, [&](const std::string& name, const std::string& value) {
    return addReserved(r, name, value);
  }));
  return r;
}

Result<std::map<std::string, Threshold>> parseEvictionHard(const std::string& text,
                                                           const std::string& what) {
  std::map<std::string, Threshold> out;
  TRY_VOID(forEachPair(text, '<', what, [&](const std::string& signal, const std::string& value) {
    return addThreshold(out, signal, value);
  }));
  return out;
}

Result<std::map<std::string, int64_t>> parseEvictionGracePeriods(const std::string& text,
                                                                 const std::string& what) {
  std::map<std::string, int64_t> out;
  TRY_VOID(forEachPair(text, '=', what, [&](const std::string& signal, const std::string& value) {
    return addGrace(out, signal, value);
  }));
  return out;
}

Result<std::map<std::string, Threshold>> parseEvictionMinimumReclaim(const std::string& text,
                                                                     const std::string& what) {
  std::map<std::string, Threshold> out;
  TRY_VOID(forEachPair(text, '=', what, [&](const std::string& signal, const std::string& value) {
    return addThreshold(out, signal, value);
  }));
  return out;
}

Result<void> validateEvictionSettings(const AgentConfig& config) {
  for (const auto& [signal, threshold] : config.eviction_soft) {
    if (!config.eviction_soft_grace_seconds.contains(signal)) {
      return makeError("evictionSoftGracePeriod (--eviction-soft-grace-period)", "",
                       "grace period must be specified for the soft eviction threshold " + signal);
    }
  }
  if (config.eviction_max_pod_grace_seconds < 0) {
    return makeError("evictionMaxPodGracePeriod (--eviction-max-pod-grace-period)", "",
                     "must not be negative");
  }
  if (config.eviction_pressure_transition_seconds < 0) {
    return makeError("evictionPressureTransitionPeriod (--eviction-pressure-transition-period)", "",
                     "must not be negative");
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
