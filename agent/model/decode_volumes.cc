// Decoding a pod's volumes: their sources, key-to-path items, paths and modes.

#include <yaml-cpp/yaml.h>

#include <algorithm>

#include "agent/model/decode.h"
#include "agent/model/pod.h"
#include "agent/model/pod_names.h"

namespace kernelet::agent::decode {

namespace {

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

}  // namespace

Result<std::vector<Volume>> volumes(const Ctx& c, const YAML::Node& list) {
  std::vector<Volume> out;
  size_t i = 0;
  for (const auto& v : list) {
    std::string vf = "spec.volumes[" + std::to_string(i++) + "]";
    Volume vol;
    TRY(vol.name, str(c, v, "name", vf));
    // The name is a path component of the volume's directory, and the one
    // a mount refers to: a DNS label, unique in the pod (the API server's rules).
    if (!isDnsLabel(vol.name)) {
      return c.error(v, vf + ".name", "Invalid value: \"" + vol.name + "\": must be a DNS label");
    }
    if (std::any_of(out.begin(), out.end(), [&](const Volume& x) { return x.name == vol.name; })) {
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
      TRY(auto p,
          objectSource(c, v["configMap"], Projection::Kind::kConfigMap, "name", vf + ".configMap"));
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
    out.push_back(std::move(vol));
  }
  return out;
}

}  // namespace kernelet::agent::decode
