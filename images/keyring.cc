#include "images/keyring.h"

#include <algorithm>
#include <functional>

#include "apiclient/base64.h"
#include "images/digest.h"
#include "sys/fileio.h"
#include "sys/json.h"

namespace kernelet::images {

namespace {

// One ENTRY: "auth" wins over "username"/"password" (DockerConfigEntry's
// UnmarshalJSON); a wrong type is an error naming the key, never the value.
Result<RegistryCredentials> entry(const json::Cursor& v) {
  TRY_VOID(v.expectObject());
  RegistryCredentials c;
  TRY(c.username, v.optStr("username"));
  TRY(c.password, v.optStr("password"));
  TRY(std::string auth, v.optStr("auth"));
  if (auth.empty()) {
    return c;
  }
  auto plain = apiclient::base64Decode(auth);
  if (!plain) {
    TRY(json::Cursor at, v.field("auth"));
    return at.error("not base64");
  }
  size_t colon = plain->find(':');
  if (colon == std::string::npos) {
    TRY(json::Cursor at, v.field("auth"));
    return at.error("unable to parse auth field, must be formatted as base64(username:password)");
  }
  return RegistryCredentials{plain->substr(0, colon), plain->substr(colon + 1)};
}

Result<DockerAuths> entries(const json::Cursor& auths) {
  TRY_VOID(auths.expectObject());
  DockerAuths out;
  TRY_VOID(auths.members([&](const std::string& key, const json::Cursor& v) -> Result<void> {
    TRY(RegistryCredentials c, entry(v));
    out.emplace_back(key, std::move(c));
    return {};
  }));
  return out;
}

// filepath.Match on one label (no separators in it): '*', '?', '[...]' with
// ranges and '^', '\' escapes. A malformed pattern matches nothing.
bool globMatch(std::string_view p, std::string_view s) {
  size_t pi = 0, si = 0;
  size_t star_p = std::string_view::npos, star_s = 0;
  while (si < s.size()) {
    if (pi < p.size() && p[pi] == '*') {
      star_p = pi++;
      star_s = si;
      continue;
    }
    if (pi < p.size()) {
      bool ok = false;
      size_t next = pi + 1;
      if (p[pi] == '?') {
        ok = true;
      } else if (p[pi] == '[') {
        size_t j = pi + 1;
        bool negate = j < p.size() && p[j] == '^';
        if (negate) {
          j++;
        }
        bool in = false, closed = false;
        for (bool first = true; j < p.size(); first = false) {
          if (p[j] == ']' && !first) {
            closed = true;
            j++;
            break;
          }
          char lo = p[j] == '\\' && j + 1 < p.size() ? p[++j] : p[j];
          j++;
          char hi = lo;
          if (j + 1 < p.size() && p[j] == '-' && p[j + 1] != ']') {
            hi = p[j + 1] == '\\' && j + 2 < p.size() ? p[j + 2] : p[j + 1];
            j += p[j + 1] == '\\' ? 3 : 2;
          }
          in = in || (lo <= s[si] && s[si] <= hi);
        }
        if (!closed) {
          return false;
        }
        ok = in != negate;
        next = j;
      } else if (p[pi] == '\\' && pi + 1 < p.size()) {
        ok = p[pi + 1] == s[si];
        next = pi + 2;
      } else {
        ok = p[pi] == s[si];
      }
      if (ok) {
        pi = next;
        si++;
        continue;
      }
    }
    if (star_p == std::string_view::npos) {
      return false;
    }
    pi = star_p + 1;
    si = ++star_s;
  }
  while (pi < p.size() && p[pi] == '*') {
    pi++;
  }
  return pi == p.size();
}

struct SchemelessUrl {
  std::vector<std::string> labels;
  std::string port, path;
};

// "host[:port][/path]" as ParseSchemelessURL and splitURL read it.
SchemelessUrl splitUrl(std::string_view u) {
  SchemelessUrl out;
  size_t slash = u.find('/');
  std::string_view host = u.substr(0, slash);
  out.path = slash == std::string_view::npos ? "" : std::string(u.substr(slash));
  if (size_t q = out.path.find_first_of("?#"); q != std::string::npos) {
    out.path.resize(q);
  }
  if (size_t colon = host.rfind(':'); colon != std::string_view::npos) {
    out.port = host.substr(colon + 1);
    host = host.substr(0, colon);
  }
  for (size_t start = 0;;) {
    size_t dot = host.find('.', start);
    out.labels.emplace_back(host.substr(start, dot - start));
    if (dot == std::string_view::npos) {
      break;
    }
    start = dot + 1;
  }
  return out;
}

// isDefaultRegistryMatch: "busybox", "docker.io/x" and "user/x" are Docker Hub's.
bool isDockerHub(const std::string& image) {
  size_t slash = image.find('/');
  std::string first = image.substr(0, slash);
  if (first.empty()) {
    return false;
  }
  return slash == std::string::npos || first == "docker.io" ||
         first.find_first_of(".:") == std::string::npos;
}

}  // namespace

Result<DockerAuths> parseDockerConfigJson(const std::string& text, const std::string& what) {
  TRY(rapidjson::Document d, json::parse(text, "read registry credentials of", what));
  json::Cursor top(d, "read registry credentials of", what);
  TRY_VOID(top.expectObject());
  TRY(std::optional<json::Cursor> auths, top.opt("auths"));
  if (!auths || auths->isNull()) {
    return DockerAuths{};
  }
  return entries(*auths);
}

Result<DockerAuths> parseDockercfg(const std::string& text, const std::string& what) {
  TRY(rapidjson::Document d, json::parse(text, "read registry credentials of", what));
  return entries(json::Cursor(d, "read registry credentials of", what));
}

Result<DockerAuths> loadDockerAuthFile(const std::string& path) {
  TRY(std::string text, readFile(path));
  if (path.ends_with(".dockercfg")) {
    return parseDockercfg(text, path);
  }
  return parseDockerConfigJson(text, path);
}

Result<DockerAuths> secretAuths(const std::string& type,
                                const std::map<std::string, std::string>& data,
                                const std::string& what) {
  if (type == kSecretTypeDockerConfigJson) {
    if (auto it = data.find(kDockerConfigJsonKey); it != data.end() && !it->second.empty()) {
      return parseDockerConfigJson(it->second, what + " " + kDockerConfigJsonKey);
    }
  } else if (type == kSecretTypeDockercfg) {
    if (auto it = data.find(kDockercfgKey); it != data.end() && !it->second.empty()) {
      return parseDockercfg(it->second, what + " " + kDockercfgKey);
    }
  }
  return DockerAuths{};
}

void DockerKeyring::add(const DockerAuths& auths) {
  for (const auto& [loc, creds] : auths) {
    std::string value = loc;
    if (value.starts_with("https://")) {
      value = value.substr(8);
    } else if (value.starts_with("http://")) {
      value = value.substr(7);
    }
    size_t slash = value.find('/');
    std::string host = value.substr(0, slash);
    std::string path = slash == std::string::npos ? "" : value.substr(slash);
    if (size_t q = path.find_first_of("?#"); q != std::string::npos) {
      path.resize(q);
    }
    bool bad = host.empty() || std::any_of(value.begin(), value.end(),
                                           [](unsigned char c) { return c <= ' ' || c == 0x7f; });
    if (bad) {
      continue;  // not a URL: the kubelet logs and ignores the entry
    }
    // "/v1/" and "/v2/" are the API's paths, not a repository's.
    if (path.starts_with("/v1/") || path.starts_with("/v2/")) {
      path = path.substr(3);
    }
    std::string key = !path.empty() && path != "/" ? host + path : host;
    if (!creds_.contains(key)) {
      index_.push_back(key);
    }
    creds_[key].push_back(creds);
  }
  std::sort(index_.begin(), index_.end(), std::greater<>());
}

bool keyMatches(const std::string& glob, const std::string& target) {
  SchemelessUrl g = splitUrl(glob), t = splitUrl(target);
  if (g.port != t.port || g.labels.size() != t.labels.size() || !t.path.starts_with(g.path)) {
    return false;
  }
  for (size_t i = 0; i < g.labels.size(); i++) {
    if (!globMatch(g.labels[i], t.labels[i])) {
      return false;
    }
  }
  return true;
}

std::string credentialsFingerprint(const std::vector<RegistryCredentials>& creds) {
  if (creds.empty()) {
    return "";
  }
  std::string all;
  for (const auto& c : creds) {
    // Length-prefixed, so no two lists give the same bytes.
    for (const std::string* s : {&c.username, &c.password}) {
      all += std::to_string(s->size()) + ":" + *s;
    }
  }
  return sha256Of(all);
}

std::vector<RegistryCredentials> DockerKeyring::lookup(const std::string& repository) const {
  std::vector<RegistryCredentials> out;
  for (const auto& key : index_) {
    if (keyMatches(key, repository)) {
      const auto& c = creds_.at(key);
      out.insert(out.end(), c.begin(), c.end());
    }
  }
  if (out.empty() && isDockerHub(repository)) {
    if (auto it = creds_.find("index.docker.io"); it != creds_.end()) {
      return it->second;
    }
  }
  return out;
}

}  // namespace kernelet::images
