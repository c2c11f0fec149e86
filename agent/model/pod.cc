#include "agent/model/pod.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <set>

#include "agent/model/decode.h"
#include "agent/model/pod_fields.h"
#include "agent/model/pod_names.h"
#include "agent/model/yaml_json.h"
#include "agent/model/yaml_stream.h"

namespace kernelet::agent {

namespace {

using decode::Ctx;
using decode::opt;
using decode::str;

// spec.ephemeralContainers: names unique among all the pod's containers
// (`names` holds the others'), a target that is one of the others.
Result<std::vector<EphemeralContainer>> ephemeralContainers(const Ctx& c, const YAML::Node& spec,
                                                            const Pod& p,
                                                            std::set<std::string>& names) {
  std::vector<EphemeralContainer> out;
  const YAML::Node list = spec["ephemeralContainers"];
  if (!list || list.IsNull()) {
    return out;
  }
  if (!list.IsSequence()) {
    return c.error(list, "spec.ephemeralContainers", "must be a list");
  }
  size_t i = 0;
  for (const auto& n : list) {
    std::string f = "spec.ephemeralContainers[" + std::to_string(i++) + "]";
    TRY(EphemeralContainer e, decode::ephemeralContainer(c, n, f));
    if (!names.insert(e.name).second) {
      return c.error(n, f + ".name", "duplicate container name \"" + e.name + "\"");
    }
    const std::string& target = e.target_container_name;
    auto named = [&](const Container& k) { return k.name == target; };
    if (!target.empty() && std::none_of(p.containers.begin(), p.containers.end(), named) &&
        std::none_of(p.init_containers.begin(), p.init_containers.end(), named)) {
      return c.error(n, f + ".targetContainerName", "Not found: \"" + target + "\"");
    }
    out.push_back(std::move(e));
  }
  return out;
}

// spec.securityContext.supplementalGroups: group ids the API server accepts.
Result<std::vector<int64_t>> supplementalGroups(const Ctx& c, const YAML::Node& list) {
  std::vector<int64_t> out;
  const std::string f = "spec.securityContext.supplementalGroups";
  if (!list || list.IsNull()) {
    return out;
  }
  if (!list.IsSequence()) {
    return c.error(list, f, "must be a list of integers");
  }
  size_t i = 0;
  for (const auto& g : list) {
    int64_t gid = -1;
    if (!g.IsScalar() || !YAML::convert<int64_t>::decode(g, gid) || gid < 0 || gid > 2147483647) {
      return c.error(g, f + "[" + std::to_string(i) + "]",
                     "must be between 0 and 2147483647, inclusive");
    }
    out.push_back(gid);
    i++;
  }
  return out;
}

Result<std::vector<std::string>> imagePullSecrets(const Ctx& c, const YAML::Node& list) {
  std::vector<std::string> out;
  auto entry = [&](const YAML::Node& ref, const std::string& at) -> Result<void> {
    TRY(std::string name, str(c, ref, "name", at));
    if (!name.empty()) {
      out.push_back(std::move(name));
    }
    return {};
  };
  TRY_VOID(forEachEntry(c, list, "spec.imagePullSecrets", entry,
                        {.not_list = "must be a list of {name: SECRET}",
                         .not_map = "must be an object with a name"}));
  return out;
}

// spec.readinessGates: the condition types, each once.
Result<std::vector<std::string>> readinessGates(const Ctx& c, const YAML::Node& list) {
  std::vector<std::string> out;
  auto entry = [&](const YAML::Node& g, const std::string& f) -> Result<void> {
    TRY(std::string type, str(c, g, "conditionType", f));
    if (type.empty()) {
      return c.error(g, f + ".conditionType", "Required value");
    }
    out.push_back(std::move(type));
    return {};
  };
  TRY_VOID(forEachEntry(c, list, "spec.readinessGates", entry, {.not_map = "must be an object"}));
  return out;
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
      TRY(Container k, decode::container(c, n, f));
      if (std::string(list) == "initContainers" && !k.resize_policy.empty() &&
          k.restart_policy != "Always") {
        // The API allows it on restartable (sidecar) init containers only.
        return c.error(n["resizePolicy"], f + ".resizePolicy",
                       "Forbidden: must not be set for init containers");
      }
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
  TRY(p.ephemeral_containers, ephemeralContainers(c, spec, p, names));
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
  TRY(p.active_deadline_seconds, opt<int64_t>(c, spec, "activeDeadlineSeconds", "spec"));
  if (p.active_deadline_seconds && *p.active_deadline_seconds <= 0) {
    // The API's validation: a positive number of seconds.
    return c.error(spec, "spec.activeDeadlineSeconds", "must be greater than or equal to 1");
  }
  TRY_VOID(decode::checkSleepHooks(c, spec, p));
  std::string os;  // anything but linux is refused by the field table, after the decode
  if (spec["os"] && spec["os"].IsMap()) {
    TRY(os, str(c, spec["os"], "name", "spec.os"));
  }
  TRY_VOID(decode::checkStopSignals(c, spec, p, os));
  TRY(auto host_net, opt<bool>(c, spec, "hostNetwork", "spec"));
  p.host_network = host_net.value_or(false);
  TRY(auto share, opt<bool>(c, spec, "shareProcessNamespace", "spec"));
  p.share_process_namespace = share.value_or(false);
  TRY(auto host_pid, opt<bool>(c, spec, "hostPID", "spec"));
  p.host_pid = host_pid.value_or(false);
  TRY(auto host_ipc, opt<bool>(c, spec, "hostIPC", "spec"));
  p.host_ipc = host_ipc.value_or(false);
  if (p.host_pid && p.share_process_namespace) {
    // The API's validateShareProcessNamespace, which sees both in the
    // internal PodSecurityContext: hence its path.
    return c.error(spec["shareProcessNamespace"], "spec.securityContext.shareProcessNamespace",
                   "Invalid value: true: ShareProcessNamespace and HostPID cannot both be enabled");
  }
  TRY(auto links, opt<bool>(c, spec, "enableServiceLinks", "spec"));
  p.enable_service_links = links.value_or(true);
  TRY(p.readiness_gates, readinessGates(c, spec["readinessGates"]));
  TRY(auto dns, opt<std::string>(c, spec, "dnsPolicy", "spec"));
  p.dns_policy = dns.value_or("ClusterFirst");
  TRY(p.hostname, str(c, spec, "hostname", "spec"));
  TRY(p.subdomain, str(c, spec, "subdomain", "spec"));
  TRY(p.dns_config, decode::dnsConfig(c, spec, p.dns_policy));
  TRY(p.host_aliases, decode::hostAliases(c, spec["hostAliases"]));
  TRY(auto fqdn, opt<bool>(c, spec, "setHostnameAsFQDN", "spec"));
  p.set_hostname_as_fqdn = fqdn.value_or(false);
  TRY(p.node_name, str(c, spec, "nodeName", "spec"));
  TRY(p.service_account_name, str(c, spec, "serviceAccountName", "spec"));
  if (p.service_account_name.empty()) {
    TRY(p.service_account_name, str(c, spec, "serviceAccount", "spec"));  // deprecated alias
  }
  TRY(p.image_pull_secrets, imagePullSecrets(c, spec["imagePullSecrets"]));
  TRY(p.priority_class_name, str(c, spec, "priorityClassName", "spec"));
  TRY(p.priority, opt<int32_t>(c, spec, "priority", "spec"));
  TRY(p.security_context,
      decode::securityContext(c, spec["securityContext"], "spec.securityContext"));
  if (spec["securityContext"]) {
    TRY(p.fs_group, opt<int64_t>(c, spec["securityContext"], "fsGroup", "spec.securityContext"));
    TRY(p.supplemental_groups,
        supplementalGroups(c, spec["securityContext"]["supplementalGroups"]));
    TRY(p.sysctls, decode::sysctls(c, spec["securityContext"]["sysctls"]));
  }
  if (spec["volumes"] && spec["volumes"].IsSequence()) {
    TRY(p.volumes, decode::volumes(c, spec["volumes"]));
  }
  // Every mount names a volume of the pod.
  std::vector<const Container*> all;
  for (const auto* list : {&p.init_containers, &p.containers}) {
    for (const auto& k : *list) {
      all.push_back(&k);
    }
  }
  for (const auto& k : p.ephemeral_containers) {
    all.push_back(&k);
  }
  for (const Container* k : all) {
    for (const auto& m : k->volume_mounts) {
      if (std::none_of(p.volumes.begin(), p.volumes.end(),
                       [&](const Volume& v) { return v.name == m.name; })) {
        return c.error(spec, "container " + k->name + " volumeMounts",
                       "no volume named \"" + m.name + "\"");
      }
    }
  }
  return p;
}

}  // namespace

Result<std::vector<ManifestPod>> parseManifests(const std::string& text, const std::string& file,
                                                RefusedFields refused) {
  Ctx c{file};
  TRY(std::vector<YAML::Node> docs, loadYamlDocuments(text, "parse manifest", file));
  std::vector<ManifestPod> out;
  for (const auto& d : docs) {
    if (!d || d.IsNull()) {
      continue;  // an empty document between separators
    }
    try {
      TRY(Pod p, pod(c, d));
      // After the decode, so that a value the API would refuse is named as
      // such (an ephemeral container's ports are Forbidden, not unsupported).
      if (auto f = firstRefusedField(d)) {
        if (refused == RefusedFields::kError) {
          return makeError("parse manifest", file,
                           "line " + std::to_string(f->mark.line + 1) + ": " + refusedMessage(*f));
        }
        p.refused = refusedMessage(*f);
      }
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
