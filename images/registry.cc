#include "images/registry.h"

#include <regex>

#include "apiclient/base64.h"
#include "images/digest.h"
#include "images/keyring.h"
#include "sys/fileio.h"
#include "sys/json.h"

namespace kernelet::images {

namespace {

constexpr const char* kManifestAccept =
    "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, "
    "application/vnd.docker.distribution.manifest.list.v2+json, "
    "application/vnd.docker.distribution.manifest.v2+json";

// key="value" pairs of a WWW-Authenticate challenge.
std::map<std::string, std::string> challengeParams(const std::string& header) {
  std::map<std::string, std::string> out;
  static const std::regex re(R"re(([a-zA-Z_]+)="([^"]*)")re");
  for (std::sregex_iterator it(header.begin(), header.end(), re), end; it != end; ++it) {
    out[(*it)[1]] = (*it)[2];
  }
  return out;
}

std::string urlEncode(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", c);
      out += buf;
    }
  }
  return out;
}

std::string statusError(const apiclient::HttpResponse& r) {
  std::string body = r.body.substr(0, 200);
  return "HTTP " + std::to_string(r.status) + (body.empty() ? "" : ": " + body);
}

}  // namespace

Result<std::map<std::string, RegistryCredentials>> loadDockerConfig(const std::string& path) {
  TRY(std::string text, readFile(path));
  TRY(rapidjson::Document d, json::parse(text, "parse registry auth file", path));
  json::Cursor top(d, "parse registry auth file", path);
  TRY_VOID(top.expectObject());
  std::map<std::string, RegistryCredentials> out;
  TRY(std::optional<json::Cursor> auths, top.optObject("auths"));
  if (!auths) {
    return out;
  }
  auto add = [&](std::string host, const json::Cursor& v) -> Result<void> {
    RegistryCredentials c;
    TRY(std::optional<json::Cursor> auth, v.opt("auth"));
    if (auth) {
      TRY(std::string encoded, auth->asString());
      auto plain = apiclient::base64Decode(encoded);
      size_t colon = plain ? plain->find(':') : std::string::npos;
      if (colon == std::string::npos) {
        return auth->error("expected base64 of user:password");
      }
      c = {plain->substr(0, colon), plain->substr(colon + 1)};
    } else if (v.has("username") && v.has("password")) {
      TRY(c.username, v.str("username"));
      TRY(c.password, v.str("password"));
    } else {
      return {};
    }
    // "https://index.docker.io/v1/" is how docker login names Docker Hub.
    if (host.find("index.docker.io") != std::string::npos) {
      host = "docker.io";
    }
    if (host.starts_with("https://")) {
      host = host.substr(8);
    }
    out[host.substr(0, host.find('/'))] = c;
    return {};
  };
  TRY_VOID(auths->members(add));
  return out;
}

Result<Registry> Registry::open(const Reference& ref, const RegistryOptions& options) {
  std::optional<RegistryCredentials> creds;
  if (!options.credentials.empty()) {
    creds = options.credentials.front();
  } else if (!options.docker_config.empty()) {
    TRY(DockerAuths auths, loadDockerAuthFile(options.docker_config));
    DockerKeyring keyring;
    keyring.add(auths);
    if (auto found = keyring.lookup(ref.domain + "/" + ref.repository); !found.empty()) {
      creds = found.front();
    }
  }
  return Registry(ref, options, creds);
}

std::string Registry::base() const {
  // Docker Hub's API lives on another host than its name.
  std::string host = ref_.domain == "docker.io" ? "registry-1.docker.io" : ref_.domain;
  return (options_.plain_http ? "http://" : "https://") + host + "/v2/" + ref_.repository;
}

Result<void> Registry::authenticate(const std::string& challenge) {
  std::string scheme = challenge.substr(0, challenge.find(' '));
  for (auto& c : scheme) {
    c = static_cast<char>(std::tolower(c));
  }
  std::string basic =
      creds_ ? "Basic " + apiclient::base64Encode(creds_->username + ":" + creds_->password)
             : std::string();
  if (scheme == "basic") {
    if (!creds_) {
      return makeError("authenticate to", ref_.domain,
                       "the registry wants credentials (Basic) and "
                       "none were given for this host");
    }
    std::lock_guard lock(*auth_mutex_);
    authorization_ = basic;
    return {};
  }
  if (scheme != "bearer") {
    return makeError("authenticate to", ref_.domain, "unsupported scheme in: " + challenge);
  }
  auto params = challengeParams(challenge);
  if (params["realm"].empty()) {
    return makeError("authenticate to", ref_.domain, "Bearer challenge without realm");
  }
  std::string url = params["realm"] + (params["realm"].find('?') == std::string::npos ? "?" : "&");
  if (!params["service"].empty()) {
    url += "service=" + urlEncode(params["service"]) + "&";
  }
  url += "scope=" + urlEncode(params["scope"].empty() ? "repository:" + ref_.repository + ":pull"
                                                      : params["scope"]);
  apiclient::HttpRequest req{.url = url};
  if (creds_) {
    req.headers.push_back({"Authorization", basic});
  }
  TRY(auto resp, http_.send(req));
  if (resp.status != 200) {
    return makeError("get token from", params["realm"], statusError(resp));
  }
  // The token server's answer: {"token": ...} or OAuth2's {"access_token": ...}.
  TRY(rapidjson::Document d, json::parse(resp.body, "get token from", params["realm"]));
  json::Cursor answer(d, "get token from", params["realm"]);
  TRY(std::string token, answer.optStr("token"));
  if (token.empty()) {
    TRY(token, answer.optStr("access_token"));
  }
  if (token.empty()) {
    return makeError("get token from", params["realm"], "no token in the answer");
  }
  std::lock_guard lock(*auth_mutex_);
  authorization_ = "Bearer " + token;
  return {};
}

Result<apiclient::HttpResponse> Registry::get(const std::string& path, const std::string& accept,
                                              const apiclient::BodySink& sink) {
  std::string url = base() + path;
  bool retried_auth = false;
  bool same_host = true;
  for (int hop = 0; hop < 8; hop++) {
    apiclient::HttpRequest req{.url = url};
    if (!accept.empty()) {
      req.headers.push_back({"Accept", accept});
    }
    {
      std::lock_guard lock(*auth_mutex_);
      // Credentials go to the registry only, never to where a blob redirects.
      if (same_host && !authorization_.empty()) {
        req.headers.push_back({"Authorization", authorization_});
      }
    }
    TRY(auto resp, http_.send(req, sink));
    if (resp.status == 401 && same_host && !retried_auth) {
      retried_auth = true;
      TRY_VOID(authenticate(resp.header("www-authenticate")));
      continue;
    }
    if (resp.status == 301 || resp.status == 302 || resp.status == 303 || resp.status == 307 ||
        resp.status == 308) {
      TRY(apiclient::Url from, apiclient::parseUrl(url));
      TRY(apiclient::Url to, apiclient::resolveUrl(from, resp.header("location")));
      // Credentials follow a redirect only to the same scheme, host and port:
      // never to another host, never down from https to cleartext.
      same_host =
          same_host && to.scheme == from.scheme && to.host == from.host && to.port == from.port;
      url = to.str();
      continue;
    }
    return resp;
  }
  return makeError("GET", url, "too many redirects");
}

Result<FetchedManifest> Registry::manifest(const std::string& tag_or_digest) {
  TRY(auto resp, get("/manifests/" + tag_or_digest, kManifestAccept));
  std::string what =
      ref_.name() + (tag_or_digest.starts_with("sha256:") ? "@" : ":") + tag_or_digest;
  if (resp.status == 404) {
    return makeError("pull", what, "manifest not found in the registry");
  }
  if (resp.status == 401 || resp.status == 403) {
    return makeError("pull", what, "access denied: " + statusError(resp));
  }
  if (resp.status != 200) {
    return makeError("pull", what, statusError(resp));
  }
  FetchedManifest m{sha256Of(resp.body), resp.header("content-type"), std::move(resp.body)};
  if (tag_or_digest.starts_with("sha256:") && m.digest != tag_or_digest) {
    return makeError("verify manifest", what, "the registry sent content with digest " + m.digest);
  }
  return m;
}

Result<void> Registry::blob(const std::string& digest, int64_t size, ContentStore& store) {
  if (store.has(digest)) {
    return {};
  }
  TRY(ContentStore::Writer w, store.writer());
  TRY(auto resp,
      get("/blobs/" + digest, "", [&](std::string_view piece) { return w.write(piece); }));
  if (resp.status != 200) {
    return makeError("fetch blob", ref_.name() + "@" + digest, statusError(resp));
  }
  return addContext(w.commit(digest, size), "fetch blob from " + ref_.domain);
}

}  // namespace kernelet::images
