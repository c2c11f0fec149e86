#pragma once
// The Kubernetes API: verbs over a pooled keep-alive connection, with the
// kubeconfig's credentials (bearer token, re-read from its file every minute;
// client certificate), client-go's QPS/burst rate limit, gzip responses,
// errors decoded from the server's Status, and 429/5xx answers with
// Retry-After retried after that delay. Objects travel as JSON text: callers
// decode what they need and write back what they read, unknown fields kept.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "apiclient/api_loop.h"
#include "apiclient/async_call.h"
#include "apiclient/connection_pool.h"
#include "apiclient/kubeconfig.h"
#include "apiclient/rate_limiter.h"
#include "sys/result.h"

namespace kernelet::apiclient {

// A failed call: the server's Status, or (code 0) a transport error.
struct ApiError {
  int code = 0;        // HTTP status; 0 when no answer came
  std::string reason;  // NotFound, AlreadyExists, Conflict, Expired, Gone, Unauthorized,
                       // Forbidden, TooManyRequests, Invalid, ...; "Transport" for code 0
  std::string message;
  int retry_after = 0;  // seconds, from Retry-After
  std::string method, path;
  std::string str() const;  // GET /api/v1/pods: 403 Forbidden: pods is forbidden: ...
};
template <typename T>
using ApiResult = std::expected<T, ApiError>;

struct ClientOptions {
  double qps = 50;  // client-go's defaults for the kubelet
  int burst = 100;
  std::chrono::seconds timeout{30};
  int max_retries = 5;  // answers with Retry-After
  std::string user_agent = "kernelet";
};

struct ListOptions {
  std::string label_selector, field_selector;
  std::string resource_version, resource_version_match;
  int limit = 500;  // per page; the pages are joined
};

struct ListResult {
  std::string kind;              // PodList
  std::string resource_version;  // of the list: where a watch starts
  std::vector<std::string> items;
};

struct DeleteOptions {
  std::optional<int64_t> grace_period_seconds;
  std::string precondition_uid, precondition_resource_version;
};

enum class PatchType { kStrategicMerge, kMerge, kJson };

// /api/v1/namespaces/NS/pods/NAME/status, /apis/coordination.k8s.io/v1/...
std::string resourcePath(const std::string& group_version, const std::string& plural,
                         const std::string& namespace_ = "", const std::string& name = "",
                         const std::string& subresource = "");
// The query of one page of a list: "?limit=..." and the selectors, `cont`
// when it is not the first page.
std::string listQuery(const ListOptions& options, const std::string& cont);
// Adds one page's items to `out`; returns its continue token ("" on the last).
ApiResult<std::string> decodeListPage(const std::string& body, const std::string& path,
                                      ListResult& out);
// Percent-encodes a query value (selectors: "spec.nodeName=n1" -> spec.nodeName%3Dn1).
std::string queryEscape(const std::string& s);

class ApiClient {
 public:
  static Result<std::unique_ptr<ApiClient>> create(const ClusterAccess& access,
                                                   ClientOptions options = {});

  ApiResult<std::string> get(const std::string& path);
  ApiResult<ListResult> list(const std::string& path, const ListOptions& options = {});
  ApiResult<std::string> create(const std::string& path, const std::string& object);
  ApiResult<std::string> update(const std::string& path, const std::string& object);
  ApiResult<std::string> patch(const std::string& path, PatchType type, const std::string& patch);
  ApiResult<std::string> remove(const std::string& path, const DeleteOptions& options = {});

  // A streamed GET (watch=true): the body goes to `sink` as it arrives, until
  // the server ends it, `sink` fails, or another thread shuts `*fd` down.
  // `idle` bounds the silence between pieces.
  ApiResult<void> stream(const std::string& path_and_query, const BodySink& sink,
                         std::atomic<int>* fd, std::chrono::seconds idle);

  // The same calls on the network thread, started from its thread: `done`
  // runs there, and never once the returned call was cancelled. The rate
  // limit delays them on a timer; 429s and 5xx are not retried here (their
  // callers back off). `path` includes the query.
  std::shared_ptr<AsyncCall> asyncCall(ApiLoop& loop, const std::string& method,
                                       const std::string& path, const std::string& body,
                                       const std::string& content_type,
                                       std::function<void(ApiResult<std::string>)> done);
  std::shared_ptr<AsyncCall> asyncStream(ApiLoop& loop, const std::string& path_and_query,
                                         BodySink sink, std::chrono::seconds idle,
                                         std::function<void(ApiResult<void>)> done);

  size_t requestCount() const { return requests_; }
  const ConnectionPool& pool() const { return *pool_; }

 private:
  ApiClient(ClusterAccess access, ClientOptions options, std::unique_ptr<ConnectionPool> pool)
      : access_(std::move(access)),
        options_(options),
        pool_(std::move(pool)),
        limiter_(options.qps, options.burst) {}
  ApiResult<std::string> call(const std::string& method, const std::string& path,
                              const std::string& body, const std::string& content_type);
  std::vector<std::pair<std::string, std::string>> headers(const std::string& content_type);
  std::string bearerToken();

  ClusterAccess access_;
  ClientOptions options_;
  std::unique_ptr<ConnectionPool> pool_;
  RateLimiter limiter_;
  std::mutex token_mu_;
  std::string token_;                                 // guarded by token_mu_
  std::chrono::steady_clock::time_point token_read_;  // guarded by token_mu_
  std::atomic<size_t> requests_{0};
};

}  // namespace kernelet::apiclient
