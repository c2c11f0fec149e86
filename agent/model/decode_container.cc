// Decoding a container: its env, resources, security context, ports and probes
// (its lifecycle hooks: decode_lifecycle.cc).

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "agent/model/decode.h"
#include "agent/model/pod.h"
#include "agent/model/pod_names.h"

namespace kernelet::agent::decode {

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

Result<int> port(const Ctx& c, const YAML::Node& action, const std::string& field,
                 const std::vector<ContainerPort>& ports) {
  const YAML::Node v = action["port"];
  if (!v || !v.IsScalar()) {
    return c.error(action, field + ".port", "required");
  }
  int number = 0;
  if (YAML::convert<int>::decode(v, number)) {
    if (number < 1 || number > 65535) {
      return c.error(v, field + ".port", "must be between 1 and 65535");
    }
    return number;
  }
  std::string name = v.as<std::string>();
  for (const auto& cp : ports) {
    if (cp.name == name) {
      return cp.container_port;
    }
  }
  return c.error(v, field + ".port", "no container port named \"" + name + "\"");
}

Result<void> httpGet(const Ctx& c, const YAML::Node& h, const std::string& field,
                     const std::vector<ContainerPort>& ports, Probe& p) {
  TRY(p.port, port(c, h, field, ports));
  TRY(auto path, opt<std::string>(c, h, "path", field));
  p.path = path.value_or("/");
  if (p.path.empty() || p.path[0] != '/') {
    p.path = "/" + p.path;
  }
  TRY(p.host, str(c, h, "host", field));
  TRY(auto scheme, opt<std::string>(c, h, "scheme", field));
  p.scheme = scheme.value_or("HTTP");
  if (p.scheme != "HTTP" && p.scheme != "HTTPS") {
    return c.error(h, field + ".scheme", "must be HTTP or HTTPS");
  }
  size_t i = 0;
  for (const auto& hd :
       h["httpHeaders"] ? h["httpHeaders"] : YAML::Node(YAML::NodeType::Sequence)) {
    std::string hf = field + ".httpHeaders[" + std::to_string(i++) + "]";
    TRY(std::string name, str(c, hd, "name", hf));
    TRY(std::string value, str(c, hd, "value", hf));
    p.headers.emplace_back(name, value);
  }
  return {};
}

namespace {

// The API's validateLocalDescendingPath: a subPath stays inside its volume,
// as written (symlinks are the runtime's concern: agent/runtime/subpath.h).
Result<void> localDescendingPath(const Ctx& c, const YAML::Node& n, const std::string& field,
                                 const std::string& path) {
  auto invalid = [&](const std::string& why) {
    return c.error(n, field, "Invalid value: \"" + path + "\": " + why);
  };
  if (path.starts_with('/')) {
    return invalid("must be a relative path");
  }
  for (size_t at = 0; at <= path.size();) {
    size_t end = std::min(path.find('/', at), path.size());
    if (path.compare(at, end - at, "..") == 0) {
      return invalid("must not contain '..'");
    }
    at = end + 1;
  }
  return {};
}

// The API's validateMountPropagation and validateMountRecursiveReadOnly, in
// their order and words (the supported values sorted, as sets.List gives them).
Result<void> mountModes(const Ctx& c, const YAML::Node& m, const std::string& field,
                        const VolumeMount& vm, bool privileged) {
  const std::string& p = vm.mount_propagation;
  const std::string pf = field + ".mountPropagation";
  if (p != "None" && p != "HostToContainer" && p != "Bidirectional") {
    return c.error(m["mountPropagation"], pf,
                   "Unsupported value: \"" + p +
                       "\": supported values: \"Bidirectional\", \"HostToContainer\", \"None\"");
  }
  if (p == "Bidirectional" && !privileged) {
    return c.error(m["mountPropagation"], pf,
                   "Forbidden: Bidirectional mount propagation is available only to privileged "
                   "containers");
  }
  const std::string& rro = vm.recursive_read_only;
  const std::string rf = field + ".recursiveReadOnly";
  if (rro == "Enabled" || rro == "IfPossible") {
    if (!vm.read_only) {
      return c.error(m["recursiveReadOnly"], rf,
                     "Forbidden: may only be specified when readOnly is true");
    }
    if (p != "None") {
      return c.error(m["recursiveReadOnly"], rf,
                     "Forbidden: may only be specified when mountPropagation is None or not "
                     "specified");
    }
  } else if (!rro.empty() && rro != "Disabled") {
    return c.error(m["recursiveReadOnly"], rf,
                   "Unsupported value: \"" + rro +
                       "\": supported values: \"Disabled\", \"Enabled\", \"IfPossible\"");
  }
  return {};
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

// One of a container's probes; `ports` resolves a named port.
Result<std::optional<Probe>> probe(const Ctx& c, const YAML::Node& n, const std::string& field,
                                   const std::vector<ContainerPort>& ports) {
  if (!n || n.IsNull()) {
    return std::optional<Probe>();
  }
  Probe p;
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
    p.kind = Probe::Kind::kHttpGet;
    TRY_VOID(httpGet(c, n["httpGet"], field + ".httpGet", ports, p));
  }
  if (n["tcpSocket"]) {
    kinds++;
    p.kind = Probe::Kind::kTcpSocket;
    TRY(p.port, port(c, n["tcpSocket"], field + ".tcpSocket", ports));
  }
  if (n["grpc"]) {
    kinds++;
    p.kind = Probe::Kind::kGrpc;
    const YAML::Node g = n["grpc"];
    // GRPCAction.port is a number: no named ports, unlike httpGet and tcpSocket.
    TRY(auto number, opt<int>(c, g, "port", field + ".grpc"));
    if (!number) {
      return c.error(g, field + ".grpc.port", "required");
    }
    if (*number < 1 || *number > 65535) {
      return c.error(g["port"], field + ".grpc.port", "must be between 1 and 65535");
    }
    p.port = *number;
    TRY(auto service, opt<std::string>(c, g, "service", field + ".grpc"));
    p.grpc_service = service.value_or("");
  }
  if (kinds != 1) {
    return c.error(n, field, "must have exactly one of exec, httpGet, tcpSocket or grpc");
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

// The container's env, a sequence.
Result<std::vector<EnvVar>> env(const Ctx& c, const YAML::Node& list, const std::string& field) {
  std::vector<EnvVar> out;
  size_t i = 0;
  for (const auto& e : list) {
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
        TRY(v.resource_container,
            str(c, from["resourceFieldRef"], "containerName", ef + ".valueFrom.resourceFieldRef"));
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
    out.push_back(std::move(v));
  }
  return out;
}

// The container's envFrom, a sequence.
Result<std::vector<EnvFromSource>> envFrom(const Ctx& c, const YAML::Node& list,
                                           const std::string& field) {
  std::vector<EnvFromSource> out;
  size_t i = 0;
  for (const auto& e : list) {
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
    out.push_back(std::move(from));
  }
  return out;
}

}  // namespace

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

namespace {

// resizePolicy[]: at most one entry per resource, cpu or memory, each
// NotRequired or RestartContainer, in the API's words (validateResizePolicy).
Result<std::map<std::string, std::string>> resizePolicy(const Ctx& c, const YAML::Node& n,
                                                        const std::string& field) {
  std::map<std::string, std::string> out;
  const YAML::Node list = n["resizePolicy"];
  if (!list || list.IsNull()) {
    return out;
  }
  if (!list.IsSequence()) {
    return c.error(list, field + ".resizePolicy", "must be a list");
  }
  size_t i = 0;
  for (const auto& p : list) {
    std::string pf = field + ".resizePolicy[" + std::to_string(i++) + "]";
    if (!p.IsMap()) {
      return c.error(p, pf, "must be a map");
    }
    TRY(std::string resource, str(c, p, "resourceName", pf));
    TRY(std::string policy, str(c, p, "restartPolicy", pf));
    if (resource != "cpu" && resource != "memory") {
      return c.error(p, pf + ".resourceName",
                     resource.empty() ? "Required value"
                                      : "Unsupported value: \"" + resource +
                                            "\": supported values: \"cpu\", \"memory\"");
    }
    if (policy != "NotRequired" && policy != "RestartContainer") {
      return c.error(p, pf + ".restartPolicy",
                     policy.empty() ? "Required value"
                                    : "Unsupported value: \"" + policy +
                                          "\": supported values: \"NotRequired\", "
                                          "\"RestartContainer\"");
    }
    if (!out.emplace(resource, policy).second) {
      return c.error(p, pf, "Duplicate value: \"" + resource + "\"");
    }
  }
  return out;
}

}  // namespace

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
  TRY(auto in, opt<bool>(c, n, "stdin", field));
  TRY(auto once, opt<bool>(c, n, "stdinOnce", field));
  TRY(auto tty, opt<bool>(c, n, "tty", field));
  k.stdin = in.value_or(false);
  k.stdin_once = once.value_or(false);
  k.tty = tty.value_or(false);
  // Unset or empty is the API's default, as for a static pod the kubelet defaults.
  TRY(auto term_path, opt<std::string>(c, n, "terminationMessagePath", field));
  if (term_path && !term_path->empty()) {
    k.termination_message_path = *term_path;
  }
  if (k.termination_message_path[0] != '/' ||
      k.termination_message_path.find('\0') != std::string::npos) {
    return c.error(n, field + ".terminationMessagePath", "must be an absolute path");
  }
  for (std::string_view rest = k.termination_message_path; !rest.empty();) {
    size_t slash = rest.find('/');
    if (rest.substr(0, slash) == "..") {
      return c.error(n, field + ".terminationMessagePath", "must not contain '..'");
    }
    rest = slash == std::string_view::npos ? std::string_view() : rest.substr(slash + 1);
  }
  TRY(auto term_policy, opt<std::string>(c, n, "terminationMessagePolicy", field));
  if (term_policy && !term_policy->empty()) {
    k.termination_message_policy = *term_policy;
  }
  if (k.termination_message_policy != "File" &&
      k.termination_message_policy != "FallbackToLogsOnError") {
    // The API's words.
    return c.error(n, field + ".terminationMessagePolicy",
                   "Unsupported value: \"" + k.termination_message_policy +
                       "\": supported values: \"File\", \"FallbackToLogsOnError\"");
  }
  if (n["env"] && n["env"].IsSequence()) {
    TRY(k.env, env(c, n["env"], field));
  }
  if (n["envFrom"] && n["envFrom"].IsSequence()) {
    TRY(k.env_from, envFrom(c, n["envFrom"], field));
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
  TRY(k.resize_policy, resizePolicy(c, n, field));
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
      TRY(vm.sub_path, str(c, m, "subPath", mf));
      TRY(vm.sub_path_expr, str(c, m, "subPathExpr", mf));
      // The API's validation (ValidateVolumeMounts), in its order and words.
      if (!vm.sub_path.empty()) {
        TRY_VOID(localDescendingPath(c, m["subPath"], mf + ".subPath", vm.sub_path));
      }
      if (!vm.sub_path_expr.empty()) {
        if (!vm.sub_path.empty()) {
          return c.error(m["subPathExpr"], mf + ".subPathExpr",
                         "Invalid value: \"" + vm.sub_path_expr +
                             "\": subPathExpr and subPath are mutually exclusive");
        }
        TRY_VOID(localDescendingPath(c, m["subPathExpr"], mf + ".subPathExpr", vm.sub_path_expr));
      }
      TRY(auto propagation, opt<std::string>(c, m, "mountPropagation", mf));
      vm.mount_propagation = propagation.value_or("None");
      TRY(vm.recursive_read_only, str(c, m, "recursiveReadOnly", mf));
      k.volume_mounts.push_back(std::move(vm));
    }
  }
  TRY(k.security_context, securityContext(c, n["securityContext"], field + ".securityContext"));
  for (size_t i = 0; i < k.volume_mounts.size(); i++) {
    TRY_VOID(mountModes(c, n["volumeMounts"][i], field + ".volumeMounts[" + std::to_string(i) + "]",
                        k.volume_mounts[i], k.security_context.privileged.value_or(false)));
  }
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
  TRY(k.lifecycle, lifecycle(c, n["lifecycle"], field + ".lifecycle", k.ports));
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

}  // namespace kernelet::agent::decode
