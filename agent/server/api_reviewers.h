#pragma once
// The reviewers the node server asks in cluster mode: TokenReview
// (authentication.k8s.io/v1) and SubjectAccessReview (authorization.k8s.io/v1),
// POSTed through the agent's API client on its network thread (asyncCall),
// never blocking the server's thread. Calls still out when a reviewer is
// destroyed are cancelled (their answers never come).

#include <memory>
#include <set>
#include <string>

#include "agent/server/authn.h"
#include "agent/server/authz.h"
#include "apiclient/api_client.h"

namespace kernelet::agent::server {

// The request and answer bodies, apart for tests and fuzzing.
std::string tokenReviewJson(const std::string& token);
Result<TokenAnswer> decodeTokenReview(const std::string& body);
std::string accessReviewJson(const AccessRequest& r, const std::string& node);
Result<AccessAnswer> decodeAccessReview(const std::string& body);

class ApiCalls {
 public:
  ApiCalls(apiclient::ApiClient& client, apiclient::ApiLoop& loop) : client_(client), loop_(loop) {}
  ~ApiCalls();  // cancels what is still out, on the loop's thread
  // POSTs `body` to `path` from the loop's thread; `done` runs there.
  void post(std::string path, std::string body,
            std::function<void(apiclient::ApiResult<std::string>)> done);

 private:
  apiclient::ApiClient& client_;
  apiclient::ApiLoop& loop_;
  std::set<std::shared_ptr<apiclient::AsyncCall>> calls_;  // the loop thread's
};

class ApiTokenReviewer : public TokenReviewer {
 public:
  ApiTokenReviewer(apiclient::ApiClient& client, apiclient::ApiLoop& loop) : calls_(client, loop) {}
  void review(const std::string& token, std::function<void(Result<TokenAnswer>)> done) override;

 private:
  ApiCalls calls_;
};

class ApiAccessReviewer : public AccessReviewer {
 public:
  ApiAccessReviewer(apiclient::ApiClient& client, apiclient::ApiLoop& loop, std::string node)
      : calls_(client, loop), node_(std::move(node)) {}
  void review(const AccessRequest& request,
              std::function<void(Result<AccessAnswer>)> done) override;

 private:
  ApiCalls calls_;
  std::string node_;
};

}  // namespace kernelet::agent::server
