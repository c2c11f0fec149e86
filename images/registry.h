#pragma once
// The OCI distribution API, as a client: manifests by tag or digest (OCI and
// Docker schema 2, indexes and manifest lists), blobs with redirects, and the
// auth schemes registries use: a Bearer token from the realm the 401 names
// (anonymous, or with Basic credentials), or Basic directly.

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "apiclient/http_client.h"
#include "images/content_store.h"
#include "images/reference.h"
#include "sys/result.h"

namespace kernelet::images {

struct RegistryCredentials {
  std::string username;
  std::string password;
};

// Reads a Docker config.json: "auths": {"HOST": {"auth": base64("user:pass")}}
// (or "username"/"password"). Errors name the file and the host entry.
Result<std::map<std::string, RegistryCredentials>> loadDockerConfig(const std::string& path);

struct RegistryOptions {
  apiclient::TlsOptions tls;
  std::string docker_config;  // the node's auth file; empty: none
  // A pod's credentials for this image (from its imagePullSecrets), tried in
  // order before the auth file's; a pull with credentials never falls back to
  // an anonymous one, as the kubelet's.
  std::vector<RegistryCredentials> credentials;
  bool plain_http = false;  // talk http:// (tests, and registries that ask for it)
};

struct FetchedManifest {
  std::string digest;  // sha256 of the bytes; verified against the one asked for
  std::string media_type;
  std::string body;
};

class Registry {
 public:
  // Talks to the registry with the first of options.credentials, else the
  // auth file's first match for the image (see keyring.h), else anonymously.
  static Result<Registry> open(const Reference& ref, const RegistryOptions& options);

  // `tag_or_digest` as in the reference; a digest is verified against the bytes.
  Result<FetchedManifest> manifest(const std::string& tag_or_digest);
  // Streams the blob into the store, verified; present blobs are not fetched.
  Result<void> blob(const std::string& digest, int64_t size, ContentStore& store);

 private:
  Registry(Reference ref, RegistryOptions options, std::optional<RegistryCredentials> creds)
      : ref_(std::move(ref)),
        options_(std::move(options)),
        creds_(std::move(creds)),
        http_(options_.tls) {}
  // GET with the auth dance and redirects; `sink` streams a 2xx body.
  Result<apiclient::HttpResponse> get(const std::string& path, const std::string& accept,
                                      const apiclient::BodySink& sink = {});
  Result<void> authenticate(const std::string& challenge);
  std::string base() const;

  Reference ref_;
  RegistryOptions options_;
  std::optional<RegistryCredentials> creds_;
  apiclient::HttpClient http_;
  // Layers are fetched from several threads; held by pointer so Registry moves.
  std::unique_ptr<std::mutex> auth_mutex_ = std::make_unique<std::mutex>();
  std::string authorization_;  // "Bearer ..." or "Basic ...", once earned
};

}  // namespace kernelet::images
