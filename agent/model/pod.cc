#include "agent/model/pod.h"

#include <yaml-cpp/yaml.h>

#include <limits>
#include <set>
#include <type_traits>

#include "agent/model/pod_names.h"
#include "agent/model/yaml_json.h"
#include "agent/model/yaml_stream.h"

namespace kernelet::agent {

namespace {

// Where we are in the file, for errors like
//   parse manifest `/etc/pods/web.yaml`: line 12: spec.containers[0].image: required
struct Ctx {
  std::string file;
  std::unexpected<Error> error(const YAML::Node& at, const std::string& field,
                               const std::string& what) const {
    return makeError("parse manifest", file,
                     "line " + std::to_string(at.Mark().line + 1) + ": " + field + ": " + what);
  }
};

template <typename T>
Result<std::optional<T>> opt(const Ctx& c, const YAML::Node& parent, const char* key,
                             const std::string& field) {
  const YAML::Node n = parent[key];
  if (!n || n.IsNull()) {
    return std::optional<T>();
  }
  try {
    if (!n.IsScalar()) {
      throw YAML::Exception(n.Mark(), "not a scalar");
    }
    return std::optional<T>(n.as<T>());
  } catch (const YAML::Exception&) {
    if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
      // A number too large for the field is named as such, not as a crash.
      const std::string s = n.IsScalar() ? n.Scalar() : std::string();
      size_t i = (!s.empty() && (s[0] == '-' || s[0] == '+')) ? 1 : 0;
      if (i < s.size() && s.find_first_not_of("0123456789", i) == std::string::npos) {
        return c.error(n, field + "." + key,
                       "must be an integer between " +
                           std::to_string(std::numeric_limits<T>::min()) + " and " +
                           std::to_string(std::numeric_limits<T>::max()));
      }
    }
    return c.error(n, field + "." + key, "wrong type");
  }
}

Result<std::string> str(const Ctx& c, const YAML::Node& parent, const char* key,
                        const std::string& field) {
  TRY(auto v, opt<std::string>(c, parent, key, field));
  return v.value_or("");
}

Result<std::vector<std::string>> strings(const Ctx& c, const YAML::Node& parent, const char* key,
                                         const std::string& field) {
  std::vector<std::string> out;
  const YAML::Node n = parent[key];
  if (!n || n.IsNull()) {
    return out;
  }
  if (!n.IsSequence()) {
    return c.error(n, field + "." + key, "must be a list of strings");
  }
  for (const auto& s : n) {
    if (!s.IsScalar()) {
      return c.error(s, field + "." + key, "must be a list of strings");
    }
    out.push_back(s.as<std::string>());
  }
  return out;
}

Result<ResourceList> resources(const Ctx& c, const YAML::Node& n, const std::string& field) {
  ResourceList out;
  if (!n || n.IsNull()) {
    return out;
  }
  if (!n.IsMap()) {
    return c.error(n, field, "must be a map of quantities");
  }
  for (const auto& kv : n) {
    if (!kv.first.IsScalar()) {
      return c.error(kv.first, field, "a resource name must be a string");
    }
    std::string name = kv.first.Scalar();
    if (!kv.second.IsScalar()) {
      return c.error(kv.second, field + "." + name, "must be a quantity");
    }
    auto q = apiclient::Quantity::parse(kv.second.Scalar());
    if (!q) {
      return c.error(kv.second, field + "." + name, q.error().detail);
    }
    // The API server's rule: a negative limit would mean no limit at all.
    if (*q < apiclient::Quantity::fromInt(0)) {
      return c.error(
          kv.second, field + "." + name,
          "Invalid value: \"" + kv.second.Scalar() + "\": must be greater than or equal to 0");
    }
    out.emplace(name, *q);
  }
  return out;
}

Result<SecurityContext> securityContext(const Ctx& c, const YAML::Node& n,
                                        const std::string& field) {
  SecurityContext s;
  if (!n || n.IsNull()) {
    return s;
  }
  TRY(s.run_as_user, opt<int64_t>(c, n, "runAsUser", field));
  TRY(s.run_as_group, opt<int64_t>(c, n, "runAsGroup", field));
  TRY(s.run_as_non_root, opt<bool>(c, n, "runAsNonRoot", field));
  TRY(s.privileged, opt<bool>(c, n, "privileged", field));
  TRY(s.read_only_root_filesystem, opt<bool>(c, n, "readOnlyRootFilesystem", field));
  TRY(s.allow_privilege_escalation, opt<bool>(c, n, "allowPrivilegeEscalation", field));
  if (n["capabilities"]) {
    TRY(s.capabilities_add, strings(c, n["capabilities"], "add", field + ".capabilities"));
    TRY(s.capabilities_drop, strings(c, n["capabilities"], "drop", field + ".capabilities"));
  }
  if (n["seccompProfile"]) {
    TRY(s.seccomp_type, str(c, n["seccompProfile"], "type", field + ".seccompProfile"));
    TRY(s.seccomp_localhost_profile,
        str(c, n["seccompProfile"], "localhostProfile", field + ".seccompProfile"));
    static const std::set<std::string> types = {"RuntimeDefault", "Unconfined", "Localhost"};
    if (!types.contains(s.seccomp_type)) {
      return c.error(n["seccompProfile"], field + ".seccompProfile.type",
                     "must be RuntimeDefault, Unconfined or Localhost");
    }
  }
  return s;
}

Result<KeySelector> keySelector(const Ctx& c, const YAML::Node& n, const std::string& field) {
  KeySelector k;
  TRY(k.name, str(c, n, "name", field));
  TRY(k.key, str(c, n, "key", field));
  TRY(auto optional, opt<bool>(c, n, "optional", field));
  k.optional = optional.value_or(false);
  if (k.name.empty() || k.key.empty()) {
    return c.error(n, field + (k.name.empty() ? ".name" : ".key"), "required");
  }
  return k;
}

// A file's path inside a volume: relative, without '..'.
Result<std::string> relativePath(const Ctx& c, const YAML::Node& n, const char* key,
                                 const std::string& field) {
  TRY(std::string path, str(c, n, key, field));
  bool dotdot = false;
  for (size_t at = 0; at <= path.size();) {
    size_t end = std::min(path.find('/', at), path.size());
    dotdot = dotdot || path.compare(at, end - at, "..") == 0;
    at = end + 1;
  }
  if (path.empty() || path[0] == '/' || dotdot || path.starts_with("..")) {
    return c.error(n, field + "." + key,
                   "must be a relative path without '..' that does not start with '..'");
  }
  return path;
}

// A file mode: 0 to 0777 (YAML's 0644 is octal, JSON's 420 decimal).
Result<std::optional<int>> fileMode(const Ctx& c, const YAML::Node& n, const char* key,
                                    const std::string& field) {
  TRY(auto mode, opt<int>(c, n, key, field));
  if (mode && (*mode < 0 || *mode > 0777)) {
    return c.error(n, field + "." + key, "must be a number between 0 and 0777 (octal)");
  }
  return mode;
}

Result<std::vector<DownwardItem>> downwardItems(const Ctx& c, const YAML::Node& items,
                                                const std::string& field) {
  std::vector<DownwardItem> out;
  size_t j = 0;
  for (const auto& it : items ? items : YAML::Node(YAML::NodeType::Sequence)) {
    std::string itf = field + ".items[" + std::to_string(j++) + "]";
    DownwardItem item;
    TRY(item.path, relativePath(c, it, "path", itf));
    TRY(item.mode, fileMode(c, it, "mode", itf));
    if (it["fieldRef"]) {
      TRY(item.field_path, str(c, it["fieldRef"], "fieldPath", itf + ".fieldRef"));
    } else if (it["resourceFieldRef"]) {
      TRY(item.resource, str(c, it["resourceFieldRef"], "resource", itf + ".resourceFieldRef"));
      TRY(item.resource_container,
          str(c, it["resourceFieldRef"], "containerName", itf + ".resourceFieldRef"));
    } else {
      return c.error(it, itf, "needs fieldRef or resourceFieldRef");
    }
    out.push_back(std::move(item));
  }
  return out;
}

// A configMap or secret source; `name_key` is "secretName" in a secret volume.
Result<Projection> objectSource(const Ctx& c, const YAML::Node& n, Projection::Kind kind,
                                const char* name_key, const std::string& field) {
  Projection p{.kind = kind};
  TRY(p.name, str(c, n, name_key, field));
  if (p.name.empty()) {
    return c.error(n, field + "." + name_key, "required");
  }
  TRY(auto optional, opt<bool>(c, n, "optional", field));
  p.optional = optional.value_or(false);
  size_t j = 0;
  for (const auto& it : n["items"] ? n["items"] : YAML::Node(YAML::NodeType::Sequence)) {
    std::string itf = field + ".items[" + std::to_string(j++) + "]";
    KeyToPath k;
    TRY(k.key, str(c, it, "key", itf));
    if (k.key.empty()) {
      return c.error(it, itf + ".key", "required");
    }
    TRY(k.path, relativePath(c, it, "path", itf));
    TRY(k.mode, fileMode(c, it, "mode", itf));
    p.items.push_back(std::move(k));
  }
  return p;
}

Result<std::vector<Projection>> projectedSources(const Ctx& c, const YAML::Node& n,
                                                 const std::string& field) {
  std::vector<Projection> out;
  size_t j = 0;
  for (const auto& s : n ? n : YAML::Node(YAML::NodeType::Sequence)) {
    std::string sf = field + "[" + std::to_string(j++) + "]";
    if (s["configMap"]) {
      TRY(auto p,
          objectSource(c, s["configMap"], Projection::Kind::kConfigMap, "name", sf + ".configMap"));
      out.push_back(std::move(p));
    } else if (s["secret"]) {
      TRY(auto p, objectSource(c, s["secret"], Projection::Kind::kSecret, "name", sf + ".secret"));
      out.push_back(std::move(p));
    } else if (s["downwardAPI"]) {
      Projection p{.kind = Projection::Kind::kDownwardApi};
      TRY(p.fields, downwardItems(c, s["downwardAPI"]["items"], sf + ".downwardAPI"));
      out.push_back(std::move(p));
    } else if (s["serviceAccountToken"]) {
      const YAML::Node t = s["serviceAccountToken"];
      std::string tf = sf + ".serviceAccountToken";
      Projection p{.kind = Projection::Kind::kServiceAccountToken};
      TRY(p.audience, str(c, t, "audience", tf));
      TRY(p.token_path, relativePath(c, t, "path", tf));
      TRY(auto seconds, opt<int64_t>(c, t, "expirationSeconds", tf));
      p.expiration_seconds = seconds.value_or(3600);
      if (p.expiration_seconds < 600) {
        return c.error(t, tf + ".expirationSeconds",
                       "may not specify a duration less than 10 minutes");
      }
      out.push_back(std::move(p));
    } else {
      return c.error(s, sf, "needs configMap, secret, downwardAPI or serviceAccountToken");
    }
  }
  return out;
}

// One of a container's probes; `ports` resolves a named port.
Result<std::optional<Probe>> probe(const Ctx& c, const YAML::Node& n, const std::string& field,
                                   const std::vector<ContainerPort>& ports) {
  if (!n || n.IsNull()) {
    return std::optional<Probe>();
  }
  Probe p;
  auto port = [&](const YAML::Node& h, const std::string& f) -> Result<int> {
    const YAML::Node v = h["port"];
    if (!v || !v.IsScalar()) {
      return c.error(h, f + ".port", "required");
    }
    int number = 0;
    if (YAML::convert<int>::decode(v, number)) {
      if (number < 1 || number > 65535) {
        return c.error(v, f + ".port", "must be between 1 and 65535");
      }
      return number;
    }
    std::string name = v.as<std::string>();
    for (const auto& cp : ports) {
      if (cp.name == name) {
        return cp.container_port;
      }
    }
    return c.error(v, f + ".port", "no container port named \"" + name + "\"");
  };
  int kinds = 0;
  if (n["exec"]) {
    kinds++;
    p.kind = Probe::Kind::kExec;
    TRY(p.command, strings(c, n["exec"], "command", field + ".exec"));
    if (p.command.empty()) {
      return c.error(n["exec"], field + ".exec.command", "required");
    }
  }
  if (n["httpGet"]) {
    kinds++;
    const YAML::Node h = n["httpGet"];
    std::string f = field + ".httpGet";
    p.kind = Probe::Kind::kHttpGet;
    TRY(p.port, port(h, f));
    TRY(auto path, opt<std::string>(c, h, "path", f));
    p.path = path.value_or("/");
    if (p.path.empty() || p.path[0] != '/') {
      p.path = "/" + p.path;
    }
    TRY(p.host, str(c, h, "host", f));
    TRY(auto scheme, opt<std::string>(c, h, "scheme", f));
    p.scheme = scheme.value_or("HTTP");
    if (p.scheme != "HTTP" && p.scheme != "HTTPS") {
      return c.error(h, f + ".scheme", "must be HTTP or HTTPS");
    }
    size_t i = 0;
    for (const auto& hd :
         h["httpHeaders"] ? h["httpHeaders"] : YAML::Node(YAML::NodeType::Sequence)) {
      std::string hf = f + ".httpHeaders[" + std::to_string(i++) + "]";
      TRY(std::string name, str(c, hd, "name", hf));
      TRY(std::string value, str(c, hd, "value", hf));
      p.headers.emplace_back(name, value);
    }
  }
  if (n["tcpSocket"]) {
    kinds++;
    p.kind = Probe::Kind::kTcpSocket;
    TRY(p.port, port(n["tcpSocket"], field + ".tcpSocket"));
  }
  if (n["grpc"]) {
    return c.error(n["grpc"], field + ".grpc", "gRPC probes are not supported");
  }
  if (kinds != 1) {
    return c.error(n, field, "must have exactly one of exec, httpGet or tcpSocket");
  }
  struct Timing {
    const char* key;
    int* value;
    int min;
  };
  for (const Timing& t : {Timing{"initialDelaySeconds", &p.initial_delay_seconds, 0},
                          Timing{"periodSeconds", &p.period_seconds, 1},
                          Timing{"timeoutSeconds", &p.timeout_seconds, 1},
                          Timing{"successThreshold", &p.success_threshold, 1},
                          Timing{"failureThreshold", &p.failure_threshold, 1}}) {
    TRY(auto v, opt<int>(c, n, t.key, field));
    if (v) {
      if (*v < t.min) {
        return c.error(n[t.key], field + "." + t.key,
                       "must be greater than or equal to " + std::to_string(t.min));
      }
      *t.value = *v;
    }
  }
  return std::optional<Probe>(std::move(p));
}

Result<Container> container(const Ctx& c, const YAML::Node& n, const std::string& field) {
  Container k;
  if (!n.IsMap()) {
    return c.error(n, field, "must be a map");
  }
  TRY(k.name, str(c, n, "name", field));
  if (!isDnsLabel(k.name)) {
    return c.error(n, field + ".name",
                   k.name.empty() ? "required" : "\"" + k.name + "\" is not a DNS label");
  }
  TRY(k.image, str(c, n, "image", field));
  if (k.image.empty()) {
    return c.error(n, field + ".image", "required");
  }
  TRY(k.command, strings(c, n, "command", field));
  TRY(k.args, strings(c, n, "args", field));
  TRY(k.working_dir, str(c, n, "workingDir", field));
  TRY(k.image_pull_policy, str(c, n, "imagePullPolicy", field));
  TRY(k.restart_policy, str(c, n, "restartPolicy", field));
  if (n["env"] && n["env"].IsSequence()) {
    size_t i = 0;
    for (const auto& e : n["env"]) {
      std::string ef = field + ".env[" + std::to_string(i++) + "]";
      EnvVar v;
      TRY(v.name, str(c, e, "name", ef));
      if (v.name.empty()) {
        return c.error(e, ef + ".name", "required");
      }
      TRY(v.value, str(c, e, "value", ef));
      if (e["valueFrom"]) {
        const YAML::Node from = e["valueFrom"];
        if (from["fieldRef"]) {
          TRY(v.field_path, str(c, from["fieldRef"], "fieldPath", ef + ".valueFrom.fieldRef"));
        } else if (from["resourceFieldRef"]) {
          TRY(v.resource,
              str(c, from["resourceFieldRef"], "resource", ef + ".valueFrom.resourceFieldRef"));
          TRY(v.resource_container, str(c, from["resourceFieldRef"], "containerName",
                                        ef + ".valueFrom.resourceFieldRef"));
        } else if (from["configMapKeyRef"]) {
          TRY(v.config_map_key,
              keySelector(c, from["configMapKeyRef"], ef + ".valueFrom.configMapKeyRef"));
        } else if (from["secretKeyRef"]) {
          TRY(v.secret_key, keySelector(c, from["secretKeyRef"], ef + ".valueFrom.secretKeyRef"));
        } else {
          return c.error(from, ef + ".valueFrom",
                         "needs fieldRef, resourceFieldRef, configMapKeyRef or secretKeyRef");
        }
      }
      k.env.push_back(std::move(v));
    }
  }
  if (n["envFrom"] && n["envFrom"].IsSequence()) {
    size_t i = 0;
    for (const auto& e : n["envFrom"]) {
      std::string ef = field + ".envFrom[" + std::to_string(i++) + "]";
      EnvFromSource from;
      TRY(from.prefix, str(c, e, "prefix", ef));
      const char* ref = e["configMapRef"] ? "configMapRef" : "secretRef";
      if (!e[ref]) {
        return c.error(e, ef, "needs configMapRef or secretRef");
      }
      TRY(std::string name, str(c, e[ref], "name", ef + "." + ref));
      if (name.empty()) {
        return c.error(e[ref], ef + "." + ref + ".name", "required");
      }
      (std::string(ref) == "configMapRef" ? from.config_map : from.secret) = name;
      TRY(auto optional, opt<bool>(c, e[ref], "optional", ef + "." + ref));
      from.optional = optional.value_or(false);
      k.env_from.push_back(std::move(from));
    }
  }
  if (n["resources"]) {
    TRY(k.resources.requests,
        resources(c, n["resources"]["requests"], field + ".resources.requests"));
    TRY(k.resources.limits, resources(c, n["resources"]["limits"], field + ".resources.limits"));
    for (const auto& [name, request] : k.resources.requests) {
      auto limit = k.resources.limits.find(name);
      if (limit != k.resources.limits.end() && limit->second < request) {
        return c.error(n["resources"], field + ".resources.requests." + name,
                       "must be less than or equal to the " + name + " limit");
      }
    }
  }
  if (n["volumeMounts"] && n["volumeMounts"].IsSequence()) {
    size_t i = 0;
    for (const auto& m : n["volumeMounts"]) {
      std::string mf = field + ".volumeMounts[" + std::to_string(i++) + "]";
      VolumeMount vm;
      TRY(vm.name, str(c, m, "name", mf));
      TRY(vm.mount_path, str(c, m, "mountPath", mf));
      TRY(auto ro, opt<bool>(c, m, "readOnly", mf));
      vm.read_only = ro.value_or(false);
      if (vm.mount_path.empty() || vm.mount_path[0] != '/') {
        return c.error(m, mf + ".mountPath", "must be an absolute path");
      }
      k.volume_mounts.push_back(std::move(vm));
    }
  }
  TRY(k.security_context, securityContext(c, n["securityContext"], field + ".securityContext"));
  if (n["ports"] && n["ports"].IsSequence()) {
    size_t i = 0;
    for (const auto& pn : n["ports"]) {
      std::string pf = field + ".ports[" + std::to_string(i++) + "]";
      ContainerPort cp;
      TRY(cp.name, str(c, pn, "name", pf));
      TRY(auto number, opt<int>(c, pn, "containerPort", pf));
      cp.container_port = number.value_or(0);
      k.ports.push_back(std::move(cp));
    }
  }
  TRY(k.liveness_probe, probe(c, n["livenessProbe"], field + ".livenessProbe", k.ports));
  TRY(k.readiness_probe, probe(c, n["readinessProbe"], field + ".readinessProbe", k.ports));
  TRY(k.startup_probe, probe(c, n["startupProbe"], field + ".startupProbe", k.ports));
  for (const auto* pr : {&k.liveness_probe, &k.startup_probe}) {
    if (*pr && (*pr)->success_threshold != 1) {
      return c.error(n,
                     field + (pr == &k.liveness_probe ? ".livenessProbe" : ".startupProbe") +
                         ".successThreshold",
                     "must be 1");
    }
  }
  return k;
}

Result<Pod> pod(const Ctx& c, const YAML::Node& doc) {
  if (!doc.IsMap()) {
    return c.error(doc, "(document)", "not a mapping");
  }
  TRY(std::string kind, str(c, doc, "kind", ""));
  TRY(std::string api, str(c, doc, "apiVersion", ""));
  if (kind != "Pod" || api != "v1") {
    return c.error(doc, "kind",
                   "expected apiVersion v1, kind Pod; got " + (api.empty() ? "(none)" : api) +
                       ", " + (kind.empty() ? "(none)" : kind));
  }
  Pod p;
  const YAML::Node meta = doc["metadata"];
  if (!meta || !meta.IsMap()) {
    return c.error(doc, "metadata", "required");
  }
  TRY(p.name, str(c, meta, "name", "metadata"));
  if (!isDnsSubdomain(p.name)) {
    return c.error(meta, "metadata.name",
                   p.name.empty() ? "required" : "\"" + p.name + "\" is not a DNS subdomain");
  }
  TRY(auto ns, opt<std::string>(c, meta, "namespace", "metadata"));
  p.namespace_ = ns && !ns->empty() ? *ns : "default";
  TRY(p.uid, str(c, meta, "uid", "metadata"));
  for (const char* which : {"labels", "annotations"}) {
    const YAML::Node m = meta[which];
    if (!m || m.IsNull()) {
      continue;
    }
    std::string f = std::string("metadata.") + which;
    if (!m.IsMap()) {
      return c.error(m, f, "must be a map of strings");
    }
    for (const auto& kv : m) {
      // Strings by the schema, whatever they look like: `v: 1e400` is "1e400".
      if (!kv.first.IsScalar()) {
        return c.error(kv.first, f, "keys must be strings");
      }
      if (!kv.second.IsScalar() && !kv.second.IsNull()) {
        return c.error(kv.second, f + "." + kv.first.Scalar(), "must be a string");
      }
      (std::string(which) == "labels" ? p.labels : p.annotations)[kv.first.Scalar()] =
          kv.second.IsNull() ? "" : kv.second.Scalar();
    }
  }
  const YAML::Node spec = doc["spec"];
  if (!spec || !spec.IsMap()) {
    return c.error(doc, "spec", "required");
  }
  std::set<std::string> names;
  for (const char* list : {"initContainers", "containers"}) {
    const YAML::Node cs = spec[list];
    if (cs && !cs.IsSequence()) {
      return c.error(cs, std::string("spec.") + list, "must be a list");
    }
    size_t i = 0;
    for (const auto& n : cs) {
      std::string f = std::string("spec.") + list + "[" + std::to_string(i++) + "]";
      TRY(Container k, container(c, n, f));
      if (!names.insert(k.name).second) {
        return c.error(n, f + ".name", "duplicate container name \"" + k.name + "\"");
      }
      (std::string(list) == "containers" ? p.containers : p.init_containers)
          .push_back(std::move(k));
    }
  }
  if (p.containers.empty()) {
    return c.error(spec, "spec.containers", "at least one container is required");
  }
  TRY(auto restart, opt<std::string>(c, spec, "restartPolicy", "spec"));
  p.restart_policy = restart.value_or("Always");
  if (p.restart_policy != "Always" && p.restart_policy != "OnFailure" &&
      p.restart_policy != "Never") {
    return c.error(spec, "spec.restartPolicy", "must be Always, OnFailure or Never");
  }
  TRY(auto grace, opt<int64_t>(c, spec, "terminationGracePeriodSeconds", "spec"));
  p.termination_grace_period_seconds = grace.value_or(30);
  if (p.termination_grace_period_seconds < 0) {
    return c.error(spec, "spec.terminationGracePeriodSeconds", "must not be negative");
  }
  TRY(auto host_net, opt<bool>(c, spec, "hostNetwork", "spec"));
  p.host_network = host_net.value_or(false);
  TRY(auto share, opt<bool>(c, spec, "shareProcessNamespace", "spec"));
  p.share_process_namespace = share.value_or(false);
  TRY(auto dns, opt<std::string>(c, spec, "dnsPolicy", "spec"));
  p.dns_policy = dns.value_or("ClusterFirst");
  TRY(p.hostname, str(c, spec, "hostname", "spec"));
  TRY(p.subdomain, str(c, spec, "subdomain", "spec"));
  TRY(p.node_name, str(c, spec, "nodeName", "spec"));
  TRY(p.service_account_name, str(c, spec, "serviceAccountName", "spec"));
  if (p.service_account_name.empty()) {
    TRY(p.service_account_name, str(c, spec, "serviceAccount", "spec"));  // deprecated alias
  }
  TRY(p.security_context, securityContext(c, spec["securityContext"], "spec.securityContext"));
  if (spec["securityContext"]) {
    TRY(p.fs_group, opt<int64_t>(c, spec["securityContext"], "fsGroup", "spec.securityContext"));
  }
  if (spec["volumes"] && spec["volumes"].IsSequence()) {
    size_t i = 0;
    for (const auto& v : spec["volumes"]) {
      std::string vf = "spec.volumes[" + std::to_string(i++) + "]";
      Volume vol;
      TRY(vol.name, str(c, v, "name", vf));
      // The name is a path component of the volume's directory, and the one
      // a mount refers to: a DNS label, unique in the pod (the API server's rules).
      if (!isDnsLabel(vol.name)) {
        return c.error(v, vf + ".name", "Invalid value: \"" + vol.name + "\": must be a DNS label");
      }
      if (std::any_of(p.volumes.begin(), p.volumes.end(),
                      [&](const Volume& x) { return x.name == vol.name; })) {
        return c.error(v, vf + ".name", "Duplicate value: \"" + vol.name + "\"");
      }
      if (v["emptyDir"]) {
        vol.kind = Volume::Kind::kEmptyDir;
        TRY(vol.medium, str(c, v["emptyDir"], "medium", vf + ".emptyDir"));
        TRY(vol.size_limit, str(c, v["emptyDir"], "sizeLimit", vf + ".emptyDir"));
        if (!vol.size_limit.empty()) {
          auto q = apiclient::Quantity::parse(vol.size_limit);
          if (!q || *q < apiclient::Quantity::fromInt(0)) {
            return c.error(
                v["emptyDir"]["sizeLimit"], vf + ".emptyDir.sizeLimit",
                q ? "Invalid value: \"" + vol.size_limit + "\": must be greater than or equal to 0"
                  : q.error().detail);
          }
        }
      } else if (v["hostPath"]) {
        vol.kind = Volume::Kind::kHostPath;
        TRY(vol.path, str(c, v["hostPath"], "path", vf + ".hostPath"));
        TRY(vol.host_path_type, str(c, v["hostPath"], "type", vf + ".hostPath"));
      } else if (v["downwardAPI"]) {
        vol.kind = Volume::Kind::kDownwardApi;
        Projection p{.kind = Projection::Kind::kDownwardApi};
        TRY(p.fields, downwardItems(c, v["downwardAPI"]["items"], vf + ".downwardAPI"));
        vol.sources.push_back(std::move(p));
      } else if (v["configMap"]) {
        vol.kind = Volume::Kind::kConfigMap;
        TRY(auto p, objectSource(c, v["configMap"], Projection::Kind::kConfigMap, "name",
                                 vf + ".configMap"));
        vol.sources.push_back(std::move(p));
      } else if (v["secret"]) {
        vol.kind = Volume::Kind::kSecret;
        TRY(auto p,
            objectSource(c, v["secret"], Projection::Kind::kSecret, "secretName", vf + ".secret"));
        vol.sources.push_back(std::move(p));
      } else if (v["projected"]) {
        vol.kind = Volume::Kind::kProjected;
        TRY(vol.sources, projectedSources(c, v["projected"]["sources"], vf + ".projected.sources"));
      }
      for (const char* kind : {"downwardAPI", "configMap", "secret", "projected"}) {
        if (v[kind]) {
          TRY(auto mode, fileMode(c, v[kind], "defaultMode", vf + "." + kind));
          vol.default_mode = mode.value_or(0644);
        }
      }
      if (vol.kind == Volume::Kind::kOther) {
        for (const auto& kv : v) {
          if (kv.first.as<std::string>() != "name") {
            vol.source = kv.first.as<std::string>();
          }
        }
      }
      p.volumes.push_back(std::move(vol));
    }
  }
  // Every mount names a volume of the pod.
  for (const auto* list : {&p.init_containers, &p.containers}) {
    for (const auto& k : *list) {
      for (const auto& m : k.volume_mounts) {
        if (std::none_of(p.volumes.begin(), p.volumes.end(),
                         [&](const Volume& v) { return v.name == m.name; })) {
          return c.error(spec, "container " + k.name + " volumeMounts",
                         "no volume named \"" + m.name + "\"");
        }
      }
    }
  }
  return p;
}

}  // namespace

Result<std::vector<ManifestPod>> parseManifests(const std::string& text, const std::string& file) {
  Ctx c{file};
  TRY(std::vector<YAML::Node> docs, loadYamlDocuments(text, "parse manifest", file));
  std::vector<ManifestPod> out;
  for (const auto& d : docs) {
    if (!d || d.IsNull()) {
      continue;  // an empty document between separators
    }
    try {
      TRY(Pod p, pod(c, d));
      YAML::Emitter canonical;
      canonical << d;
      out.push_back({std::move(p), d.Mark().line + 1, canonical.c_str(), yamlNodeToJson(d)});
    } catch (const YAML::Exception& e) {
      return makeError("parse manifest", file,
                       "line " + std::to_string(e.mark.line + 1) + ": " + e.msg);
    } catch (const std::exception& e) {
      // Whatever a library throws on hostile input is this file's error, not
      // the agent's end.
      return makeError("parse manifest", file,
                       "line " + std::to_string(d.Mark().line + 1) + ": " + e.what());
    }
  }
  return out;
}

}  // namespace kernelet::agent
