#pragma once
// Which registry credentials go with which image, as the kubelet decides it
// (pkg/credentialprovider: BasicDockerKeyring, MakeDockerKeyring):
//   - a key of a Docker auth file is a registry host, with an optional port
//     and path prefix ("reg.example:5000/team"); "https://" or "http://" in
//     front and a "/v1/" or "/v2/" path are the same as the bare host;
//   - each dot-separated label of the host may be a glob ("*.example.com"),
//     so a glob covers exactly one label; ports must be equal; the image's
//     repository path must start with the key's path;
//   - every matching key's credentials are returned, keys in reverse
//     lexical order (so "reg/team/app" before "reg/team" before "reg"), and
//     the caller tries them in turn until one pull works;
//   - Docker Hub images (docker.io/..., or names without a registry) fall
//     back to the "index.docker.io" key (how `docker login` names the Hub).
// Secrets come as kubernetes.io/dockerconfigjson (".dockerconfigjson":
// {"auths": {KEY: ENTRY}}) or kubernetes.io/dockercfg (".dockercfg":
// {KEY: ENTRY}); an ENTRY has "auth" (base64 of user:password, which wins)
// or "username" and "password".

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "images/registry.h"
#include "sys/result.h"

namespace kernelet::images {

// One auth file's entries, in the file's order. `what` names the document in
// errors ("secret default/regcred"); no error ever holds a credential.
using DockerAuths = std::vector<std::pair<std::string, RegistryCredentials>>;
Result<DockerAuths> parseDockerConfigJson(const std::string& text, const std::string& what);
Result<DockerAuths> parseDockercfg(const std::string& text, const std::string& what);
// A node's auth file: config.json ({"auths": ...}) or, named .dockercfg, the old form.
Result<DockerAuths> loadDockerAuthFile(const std::string& path);

// The Secret types and keys the kubelet reads pull credentials from.
inline constexpr const char* kSecretTypeDockerConfigJson = "kubernetes.io/dockerconfigjson";
inline constexpr const char* kSecretTypeDockercfg = "kubernetes.io/dockercfg";
inline constexpr const char* kDockerConfigJsonKey = ".dockerconfigjson";
inline constexpr const char* kDockercfgKey = ".dockercfg";

// A pull secret's credentials, as MakeDockerKeyring reads it: a Secret of
// either type with its key present and not empty; any other Secret gives none.
Result<DockerAuths> secretAuths(const std::string& type,
                                const std::map<std::string, std::string>& data,
                                const std::string& what);

class DockerKeyring {
 public:
  // Keys that are not a URL are skipped, as the kubelet skips them.
  void add(const DockerAuths& auths);
  // The credentials for `repository` ("reg.example:5000/team/app", or
  // "docker.io/library/busybox"): every match, most specific key first.
  std::vector<RegistryCredentials> lookup(const std::string& repository) const;
  bool empty() const { return index_.empty(); }

 private:
  std::map<std::string, std::vector<RegistryCredentials>> creds_;
  std::vector<std::string> index_;  // keys, reverse lexical order
};

// A digest of `creds`, to tell pulls with other credentials apart without
// keeping or showing the credentials themselves; "" for none.
std::string credentialsFingerprint(const std::vector<RegistryCredentials>& creds);

// Whether the key `glob` (host[:port][/path], labels may be globs) covers
// `target` (host[:port]/path). Exposed for tests.
bool keyMatches(const std::string& glob, const std::string& target);

}  // namespace kernelet::images
