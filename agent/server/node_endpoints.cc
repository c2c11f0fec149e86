#include "agent/server/node_endpoints.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "agent/status/pod_status.h"
#include "apiclient/json_fields.h"
#include "apiclient/quantity.h"
#include "sys/json.h"

namespace kernelet::agent::server {
namespace {

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

using apiclient::put;

void putMap(Writer& w, const char* key, const std::map<std::string, std::string>& m) {
  if (m.empty()) {
    return;
  }
  w.Key(key);
  w.StartObject();
  for (const auto& [k, v] : m) {
    put(w, k.c_str(), v);
  }
  w.EndObject();
}

void putStrings(Writer& w, const char* key, const std::vector<std::string>& list) {
  w.Key(key);
  w.StartArray();
  for (const auto& s : list) {
    w.String(s.c_str(), static_cast<rapidjson::SizeType>(s.size()));
  }
  w.EndArray();
}

// The pod's spec from its source document; without one (or if it does not
// parse), what the snapshot knows: the node and the containers' names.
void writeSpec(Writer& w, const PodSnapshot& p) {
  w.Key("spec");
  if (p.source_json) {
    auto doc = json::parse(*p.source_json, "decode", "pod " + p.namespace_ + "/" + p.name);
    if (doc && doc->IsObject()) {
      auto spec = doc->FindMember("spec");
      if (spec != doc->MemberEnd() && spec->value.IsObject()) {
        spec->value.Accept(w);
        return;
      }
    }
  }
  w.StartObject();
  put(w, "nodeName", p.node_name);
  for (auto [key, list] :
       {std::pair{"initContainers", &p.init_containers}, std::pair{"containers", &p.containers},
        std::pair{"ephemeralContainers", &p.ephemeral_containers}}) {
    if (list->empty()) {
      continue;
    }
    w.Key(key);
    w.StartArray();
    for (const auto& name : *list) {
      w.StartObject();
      put(w, "name", name);
      w.EndObject();
    }
    w.EndArray();
  }
  w.EndObject();
}

}  // namespace

std::string goDuration(int64_t seconds) {
  if (seconds == 0) {
    return "0s";
  }
  std::string out;
  if (seconds >= 3600) {
    out += std::to_string(seconds / 3600) + "h";
    seconds %= 3600;
    out += std::to_string(seconds / 60) + "m";
  } else if (seconds >= 60) {
    out += std::to_string(seconds / 60) + "m";
  }
  return out + std::to_string(seconds % 60) + "s";
}

std::string podListJson(const NodeSnapshot& snapshot) {
  rapidjson::StringBuffer buf;
  Writer w(buf);
  w.StartObject();
  put(w, "kind", "PodList");
  put(w, "apiVersion", "v1");
  w.Key("metadata");
  w.StartObject();
  w.EndObject();
  w.Key("items");
  w.StartArray();
  for (const auto& [uid, p] : snapshot.pods) {
    w.StartObject();
    put(w, "kind", "Pod");
    put(w, "apiVersion", "v1");
    w.Key("metadata");
    w.StartObject();
    put(w, "name", p->name);
    put(w, "namespace", p->namespace_);
    put(w, "uid", p->uid);
    put(w, "creationTimestamp", p->created);
    putMap(w, "labels", p->labels);
    putMap(w, "annotations", p->annotations);
    w.EndObject();
    writeSpec(w, *p);
    std::string status = podStatusJson(p->status);
    w.Key("status");
    w.RawValue(status.c_str(), status.size(), rapidjson::kObjectType);
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return buf.GetString();
}

std::string configzJson(const AgentConfig& c) {
  const ServerSettings& s = c.server;
  rapidjson::StringBuffer buf;
  Writer w(buf);
  w.StartObject();
  w.Key("kubeletconfig");
  w.StartObject();
  put(w, "staticPodPath", c.pod_manifest_path);
  put(w, "address", s.address);
  w.Key("port");
  w.Int(s.port);
  put(w, "tlsCertFile", s.tls_cert_file);
  put(w, "tlsPrivateKeyFile", s.tls_private_key_file);
  put(w, "tlsMinVersion", s.tls_min_version);
  putStrings(w, "tlsCipherSuites", s.tls_cipher_suites);
  put(w, "streamingConnectionIdleTimeout", goDuration(s.streaming_idle_timeout));
  w.Key("authentication");
  w.StartObject();
  w.Key("x509");
  w.StartObject();
  put(w, "clientCAFile", s.client_ca_file);
  w.EndObject();
  w.Key("webhook");
  w.StartObject();
  w.Key("enabled");
  w.Bool(s.webhook_authn);
  put(w, "cacheTTL", goDuration(s.webhook_cache_ttl));
  w.EndObject();
  w.Key("anonymous");
  w.StartObject();
  w.Key("enabled");
  w.Bool(s.anonymous);
  w.EndObject();
  w.EndObject();
  w.Key("authorization");
  w.StartObject();
  put(w, "mode", s.authorization_mode);
  w.Key("webhook");
  w.StartObject();
  put(w, "cacheAuthorizedTTL", goDuration(s.authz_cache_authorized_ttl));
  put(w, "cacheUnauthorizedTTL", goDuration(s.authz_cache_unauthorized_ttl));
  w.EndObject();
  w.EndObject();
  put(w, "cgroupRoot", c.cgroup_root);
  put(w, "podCIDR", c.pod_cidr);
  putStrings(w, "clusterDNS", c.cluster_dns);
  put(w, "clusterDomain", c.cluster_domain);
  put(w, "resolvConf", c.resolv_conf);
  if (!c.allowed_unsafe_sysctls.empty()) {  // omitempty, as the kubelet's
    putStrings(w, "allowedUnsafeSysctls", c.allowed_unsafe_sysctls);
  }
  w.Key("maxPods");
  w.Int(c.max_pods);
  put(w, "containerLogMaxSize",
      apiclient::Quantity::fromInt(c.container_log_max_size, apiclient::Quantity::Format::kBinarySI)
          .str());
  w.Key("containerLogMaxFiles");
  w.Int(c.container_log_max_files);
  w.Key("seccompDefault");
  w.Bool(c.seccomp_default);
  w.Key("oomScoreAdj");
  w.Int(c.oom_score_adj);
  put(w, "shutdownGracePeriod", goDuration(c.shutdown_grace_seconds));
  put(w, "shutdownGracePeriodCriticalPods", goDuration(c.shutdown_grace_critical_seconds));
  w.Key("imageGCHighThresholdPercent");
  w.Int(c.image_gc.high_threshold_percent);
  w.Key("imageGCLowThresholdPercent");
  w.Int(c.image_gc.low_threshold_percent);
  put(w, "imageMinimumGCAge", goDuration(c.image_gc.min_age_seconds));
  put(w, "imageMaximumGCAge", goDuration(c.image_gc.max_age_seconds));
  w.Key("evictionHard");
  w.StartObject();
  for (const auto& [signal, t] : c.eviction_hard) {
    std::string value = t.percent
                            ? std::to_string(static_cast<int>(*t.percent)) + "%"
                            : apiclient::Quantity::fromInt(t.quantity.value_or(0),
                                                           apiclient::Quantity::Format::kBinarySI)
                                  .str();
    put(w, signal.c_str(), value);
  }
  w.EndObject();
  w.EndObject();
  w.EndObject();
  return buf.GetString();
}

void addNodeEndpoints(Endpoints& endpoints, const SnapshotPublisher& snapshots,
                      const AgentConfig& config) {
  endpoints.pods = [&snapshots](const Request&, const Responder& respond) {
    respond(Response::json(200, podListJson(*snapshots.current())));
  };
  // The settings do not change while the agent runs: the answer is made once.
  auto configz = std::make_shared<const std::string>(configzJson(config));
  endpoints.configz = [configz](const Request&, const Responder& respond) {
    respond(Response::json(200, *configz));
  };
}

}  // namespace kernelet::agent::server
