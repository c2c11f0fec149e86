#pragma once
// Whether a user may do what a request of the node server does, as the
// kubelet asks it: a SubjectAccessReview of verb on nodes/NODE/SUBRESOURCE
// (Webhook mode), answers cached (allowed cacheAuthorizedTTL, 5m; denied
// cacheUnauthorizedTTL, 30s; failed reviews not at all), or AlwaysAllow when
// the configuration asks for it. The route's subresources are tried in order
// (healthz, then proxy); the request is forbidden once every one is denied,
// with the kubelet's message.
//
// Threads: as Authenticator (authn.h): the server thread's, answers brought
// back with `post`.

#include <chrono>
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "agent/server/authn.h"
#include "agent/server/router.h"
#include "sys/result.h"

namespace kernelet::agent::server {

struct AccessRequest {
  UserInfo user;
  std::string verb, subresource;  // on resource nodes, name = the node
};

struct AccessAnswer {
  bool allowed = false;
  std::string reason;
};

// Asks the API server (SubjectAccessReview). `done` once, from any thread.
class AccessReviewer {
 public:
  virtual ~AccessReviewer() = default;
  virtual void review(const AccessRequest& request,
                      std::function<void(Result<AccessAnswer>)> done) = 0;
};

struct AuthzOptions {
  AccessReviewer* reviewer = nullptr;  // null: AlwaysAllow
  std::chrono::seconds allowed_ttl{300};
  std::chrono::seconds denied_ttl{30};
  size_t cache_size = 4096;
};

struct AuthzResult {
  bool allowed = false;
  int status = 403;     // 403 denied, 500 the review failed
  std::string message;  // when not allowed: the body
};

// "Forbidden (user=U, verb=V, resource=nodes, subresource(s)=[S1 S2])", the kubelet's.
std::string forbiddenMessage(const std::string& user, const AccessAttributes& access);

class Authorizer {
 public:
  using Clock = Authenticator::Clock;
  using Post = Authenticator::Post;
  Authorizer(AuthzOptions options, Post post, Clock clock = nullptr);

  void authorize(const UserInfo& user, const AccessAttributes& access,
                 std::function<void(AuthzResult)> done);

  size_t reviews() const { return reviews_; }
  size_t cacheEntries() const { return cache_.size(); }

 private:
  struct Entry {
    AccessAnswer answer;
    std::chrono::steady_clock::time_point expires;
  };
  // One subresource after the other, from `index`.
  void tryFrom(const std::shared_ptr<const UserInfo>& user,
               const std::shared_ptr<const AccessAttributes>& access, size_t index,
               const std::shared_ptr<std::function<void(AuthzResult)>>& done);
  void remember(const std::string& key, const AccessAnswer& answer);

  AuthzOptions options_;
  Post post_;
  Clock clock_;
  std::map<std::string, Entry> cache_;
  size_t reviews_ = 0;
};

}  // namespace kernelet::agent::server
