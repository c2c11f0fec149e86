#pragma once
// Who a request of the node server comes from, as the kubelet's
// authenticators decide it, in order: a client certificate the client CA
// verified (user = CN, groups = O); a bearer token, asked of the API server
// by TokenReview and cached; anonymous (system:anonymous in
// system:unauthenticated) only when allowed. A certificate that did not
// verify is refused (401) rather than passed on as anonymous.
//
// Threads: authenticate() and the cache are the server thread's; a reviewer
// may answer on any thread, and its answer is brought back with `post`.

#include <chrono>
#include <cstddef>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "sys/result.h"

namespace kernelet::agent::server {

struct UserInfo {
  std::string name;
  std::vector<std::string> groups;
};

// What the connection and the request carry.
struct Credentials {
  bool cert_present = false;
  bool cert_verified = false;  // against the client CA
  std::string cert_error;      // why it did not verify
  std::string cert_cn;
  std::vector<std::string> cert_orgs;
  std::optional<std::string> bearer;  // from "Authorization: Bearer ..."
  std::string peer;                   // the client's address, for its own review budget
};

struct TokenAnswer {
  bool authenticated = false;
  UserInfo user;
  std::string error;  // status.error when not authenticated
};

// Asks whether a token is good (TokenReview). `done` once, from any thread;
// an error is a failed review (not an answer), never cached.
class TokenReviewer {
 public:
  virtual ~TokenReviewer() = default;
  virtual void review(const std::string& token, std::function<void(Result<TokenAnswer>)> done) = 0;
};

struct AuthnOptions {
  bool x509 = false;                // a client CA is configured
  TokenReviewer* tokens = nullptr;  // null: bearer tokens are not accepted
  bool anonymous = false;
  std::chrono::seconds cache_ttl{120};   // webhook.cacheTTL: authenticated answers
  std::chrono::seconds failure_ttl{10};  // "not authenticated" answers (shorter)
  size_t cache_size = 4096;              // entries at most
  // TokenReviews for tokens not in the cache: a bucket of `review_burst`
  // refilled at `review_qps`. Beyond the kubelet, which asks for every new
  // token: the reviews share the agent's API client and its QPS with status
  // updates, so a client sending many distinct bad tokens could starve the
  // node's own traffic. Over the budget the answer is 429 with Retry-After,
  // as the API server's max-in-flight filter answers. 0: no limit (and
  // no client bucket either).
  double review_qps = 10;
  int review_burst = 20;
  // And each client address its own smaller bucket in front of that one, so
  // one client cannot spend the whole budget and lock out the others (a
  // scraper whose token expired while a bad client sends new tokens). 0: none.
  double peer_review_qps = 5;
  int peer_review_burst = 10;
  size_t peer_buckets = 1024;  // client addresses remembered at most
};

// nullopt: unauthenticated (401, with the reason for the log), or, with
// `throttled`, not asked because the review budget is spent (429).
struct AuthnResult {
  std::optional<UserInfo> user;
  std::string reason;
  bool throttled = false;
};

class Authenticator {
 public:
  using Clock = std::function<std::chrono::steady_clock::time_point()>;
  using Post = std::function<void(std::function<void()>)>;
  // `post` runs a function on the thread that calls authenticate();
  // `clock` is steady_clock::now unless a test gives its own.
  Authenticator(AuthnOptions options, Post post, Clock clock = nullptr);

  void authenticate(const Credentials& creds, std::function<void(AuthnResult)> done);

  size_t cacheEntries() const { return cache_.size(); }
  size_t reviews() const { return reviews_; }  // asked of the reviewer
  size_t peerBuckets() const { return peers_.size(); }

 private:
  struct Entry {
    TokenAnswer answer;
    std::chrono::steady_clock::time_point expires;
  };
  // A token bucket: `tokens` left, refilled by the time since `refilled`.
  struct Bucket {
    double tokens = 0;
    std::chrono::steady_clock::time_point refilled{};
  };
  void remember(const std::string& key, const TokenAnswer& answer);
  // Takes one review from the client's bucket and the shared one; false,
  // taking nothing, when either is empty.
  bool takeReview(const std::string& peer);
  Bucket& peerBucket(const std::string& peer, std::chrono::steady_clock::time_point now);

  AuthnOptions options_;
  Post post_;
  Clock clock_;
  std::map<std::string, Entry> cache_;  // by SHA-256 of the token
  // Requests waiting for a review in flight, by the token's key: the same
  // token sent many times at once is reviewed once.
  std::map<std::string, std::vector<std::function<void(AuthnResult)>>> waiting_;
  Bucket shared_;
  std::map<std::string, Bucket> peers_;  // by client address, bounded by peer_buckets
  size_t reviews_ = 0;
};

// Whose review bucket a client address spends: an IPv4 address (also when
// IPv4-mapped), or an IPv6 address's /64, which one client holds whole.
std::string clientKey(const std::string& address);

// The SHA-256 of `s`, hex: what the cache keeps instead of a token.
std::string sha256Hex(const std::string& s);

}  // namespace kernelet::agent::server
