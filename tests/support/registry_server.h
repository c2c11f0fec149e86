#pragma once
// A real CNCF distribution registry (Debian's docker-registry) for pull tests:
// started on a loopback port with a TLS certificate generated here, Basic auth
// from an htpasswd file, and a push helper that uploads the fixture layouts.

#include <sys/types.h>

#include <string>

#include "sys/result.h"

namespace kernelet::testing {

class RegistryServer {
 public:
  enum class Auth { kBasic, kToken };
  // Starts the registry under `dir`; "user"/"secret" are its only credentials,
  // checked by the registry itself (Basic) or by a token service (Bearer).
  static Result<RegistryServer> start(const std::string& dir, Auth auth = Auth::kBasic);
  RegistryServer(RegistryServer&& o) noexcept;
  ~RegistryServer();

  std::string host() const { return "127.0.0.1:" + std::to_string(port_); }
  const std::string& caFile() const { return ca_; }
  // A Docker config.json with the registry's credentials.
  const std::string& authFile() const { return auth_; }
  std::string storage() const { return dir_ + "/storage"; }
  // The registry's request log so far.
  std::string log() const;

  // Uploads the OCI layout's single image as REPO:TAG (blobs, then the manifest).
  Result<void> push(const std::string& layout, const std::string& repo, const std::string& tag);

 private:
  RegistryServer() = default;
  std::string dir_, ca_, auth_;
  int port_ = 0;
  pid_t pid_ = -1;
  pid_t token_pid_ = -1;
};

}  // namespace kernelet::testing
