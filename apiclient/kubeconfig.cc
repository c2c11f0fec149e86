#include "apiclient/kubeconfig.h"

#include <yaml-cpp/yaml.h>

#include <filesystem>

#include "apiclient/base64.h"
#include "sys/fileio.h"

namespace kernelet::apiclient {

namespace {

namespace fs = std::filesystem;

struct Reader {
  std::string file;
  std::unexpected<Error> error(const std::string& field, const std::string& what) const {
    return makeError("kubeconfig", file, field + ": " + what);
  }
};

Result<std::string> decodeBase64(const Reader& r, const std::string& field, const std::string& in) {
  auto out = base64Decode(in);
  if (!out) {
    return r.error(field, "invalid base64");
  }
  return *out;
}

// A PEM from FIELD-data (base64) or FIELD (a path, relative to the kubeconfig).
Result<std::string> pem(const Reader& r, const YAML::Node& node, const std::string& where,
                        const std::string& field) {
  if (node[field + "-data"]) {
    return decodeBase64(r, where + "." + field + "-data", node[field + "-data"].as<std::string>());
  }
  if (!node[field]) {
    return std::string();
  }
  fs::path p = node[field].as<std::string>();
  if (p.is_relative()) {
    p = fs::path(r.file).parent_path() / p;
  }
  auto text = readFile(p);
  if (!text) {
    return r.error(where + "." + field, text.error().message());
  }
  return *text;
}

// The entry of list `key` whose name is `name`, with its payload under `inner`;
// `referrer` is the field that named it, for the error.
Result<YAML::Node> named(const Reader& r, const YAML::Node& root, const std::string& key,
                         const std::string& inner, const std::string& name,
                         const std::string& referrer) {
  if (root[key] && root[key].IsSequence()) {
    for (size_t i = 0; i < root[key].size(); i++) {
      const YAML::Node& e = root[key][i];
      if (e["name"] && e["name"].as<std::string>() == name) {
        if (!e[inner] || !e[inner].IsMap()) {
          return r.error(key + "[" + std::to_string(i) + "]." + inner, "missing");
        }
        return e[inner];
      }
    }
  }
  return r.error(referrer, "\"" + name + "\" is not in " + key);
}

}  // namespace

Result<ClusterAccess> loadKubeconfig(const std::string& path, const std::string& context) {
  Reader r{path};
  YAML::Node root;
  try {
    TRY(std::string text, readFile(path));
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    return makeError("kubeconfig", path,
                     "line " + std::to_string(e.mark.line + 1) + ", column " +
                         std::to_string(e.mark.column + 1) + ": " + e.msg);
  }
  if (!root.IsMap()) {
    return r.error("(top)", "not a mapping");
  }
  try {
    std::string ctx_name = context;
    if (ctx_name.empty()) {
      if (!root["current-context"] || root["current-context"].as<std::string>().empty()) {
        return r.error("current-context", "not set and no context was asked for");
      }
      ctx_name = root["current-context"].as<std::string>();
    }
    TRY(YAML::Node ctx, named(r, root, "contexts", "context", ctx_name,
                              context.empty() ? "current-context" : "context"));
    if (!ctx["cluster"]) {
      return r.error("contexts[" + ctx_name + "].context.cluster", "missing");
    }
    std::string cluster_name = ctx["cluster"].as<std::string>();
    TRY(YAML::Node cluster, named(r, root, "clusters", "cluster", cluster_name,
                                  "contexts[" + ctx_name + "].context.cluster"));
    ClusterAccess a;
    std::string cw = "clusters[" + cluster_name + "].cluster";
    if (!cluster["server"]) {
      return r.error(cw + ".server", "missing");
    }
    a.server = cluster["server"].as<std::string>();
    if (!a.server.starts_with("https://") && !a.server.starts_with("http://")) {
      return r.error(cw + ".server", "must be an http(s) URL, got \"" + a.server + "\"");
    }
    if (cluster["proxy-url"]) {
      return r.error(cw + ".proxy-url", "not supported by kernelet");
    }
    TRY(a.ca_pem, pem(r, cluster, cw, "certificate-authority"));
    a.insecure_skip_tls_verify =
        cluster["insecure-skip-tls-verify"] && cluster["insecure-skip-tls-verify"].as<bool>();
    if (cluster["tls-server-name"]) {
      a.tls_server_name = cluster["tls-server-name"].as<std::string>();
    }
    a.namespace_ = ctx["namespace"] ? ctx["namespace"].as<std::string>() : "default";
    if (ctx["user"]) {
      std::string user_name = ctx["user"].as<std::string>();
      TRY(YAML::Node user,
          named(r, root, "users", "user", user_name, "contexts[" + ctx_name + "].context.user"));
      std::string uw = "users[" + user_name + "].user";
      for (const char* unsupported : {"exec", "auth-provider", "username", "as"}) {
        if (user[unsupported]) {
          return r.error(uw + "." + unsupported, "not supported by kernelet");
        }
      }
      TRY(a.client_cert_pem, pem(r, user, uw, "client-certificate"));
      TRY(a.client_key_pem, pem(r, user, uw, "client-key"));
      if (a.client_cert_pem.empty() != a.client_key_pem.empty()) {
        return r.error(uw, "client-certificate and client-key go together");
      }
      if (user["token"]) {
        a.token = user["token"].as<std::string>();
      }
      if (user["tokenFile"]) {
        fs::path p = user["tokenFile"].as<std::string>();
        a.token_file = p.is_relative() ? (fs::path(path).parent_path() / p).string() : p.string();
        if (a.token.empty()) {
          auto t = readFile(a.token_file);
          if (!t) {
            return r.error(uw + ".tokenFile", t.error().message());
          }
          a.token = *t;
          while (!a.token.empty() && std::isspace(static_cast<unsigned char>(a.token.back()))) {
            a.token.pop_back();
          }
        }
      }
    }
    return a;
  } catch (const YAML::Exception& e) {
    return makeError("kubeconfig", path, "line " + std::to_string(e.mark.line + 1) + ": " + e.msg);
  }
}

}  // namespace kernelet::apiclient
