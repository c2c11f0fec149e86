#include "apiclient/api_client.h"

#include <rapidjson/document.h>

#include <thread>

#include "apiclient/gzip.h"
#include "apiclient/json_fields.h"
#include "apiclient/request_observer.h"
#include "sys/fileio.h"

namespace kernelet::apiclient {
namespace {

std::string reasonForCode(int code) {
  switch (code) {
    case 400:
      return "BadRequest";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "NotFound";
    case 405:
      return "MethodNotAllowed";
    case 409:
      return "Conflict";
    case 410:
      return "Gone";
    case 415:
      return "UnsupportedMediaType";
    case 422:
      return "Invalid";
    case 429:
      return "TooManyRequests";
    case 500:
      return "InternalError";
    case 503:
      return "ServiceUnavailable";
    case 504:
      return "Timeout";
    default:
      return "Unknown";
  }
}

// The Status the server sent, or what the HTTP status alone says.
ApiError decodeError(const HttpResponse& r, const std::string& method, const std::string& path) {
  ApiError e{.code = r.status,
             .reason = reasonForCode(r.status),
             .message = r.body,
             .method = method,
             .path = path};
  auto parsed = parseApiJson(r.body, method + " " + path);
  if (parsed && stringField(*parsed, "kind") == "Status") {
    if (std::string reason = stringField(*parsed, "reason"); !reason.empty()) {
      e.reason = reason;
    }
    if (auto m = parsed->FindMember("message"); m != parsed->MemberEnd() && m->value.IsString()) {
      e.message = m->value.GetString();
    }
  }
  if (auto ra = r.header("retry-after"); !ra.empty()) {
    e.retry_after = std::atoi(ra.c_str());
  }
  return e;
}

ApiError transport(const Error& err, const std::string& method, const std::string& path) {
  return {
      .code = 0, .reason = "Transport", .message = err.message(), .method = method, .path = path};
}

// Tells the request observer (rest_client_requests_total) how a request ended.
void observe(const std::string& host, const std::string& method, const Result<HttpResponse>& r) {
  observeRequest({.method = method, .host = host, .code = r ? r->status : 0});
}

// "https://host:port/..." -> "host:port", the label client-go gives a request.
std::string hostOf(const std::string& server) {
  std::string s = server;
  if (auto scheme = s.find("://"); scheme != std::string::npos) {
    s = s.substr(scheme + 3);
  }
  return s.substr(0, s.find('/'));
}

// The body of a 2xx answer (gunzipped), else the error it is.
ApiResult<std::string> decodeAnswer(Result<HttpResponse> r, const std::string& method,
                                    const std::string& path) {
  if (!r) {
    return std::unexpected(transport(r.error(), method, path));
  }
  if (r->header("content-encoding") == "gzip") {
    auto plain = gunzip(r->body, method + " " + path);
    if (!plain) {
      return std::unexpected(transport(plain.error(), method, path));
    }
    r->body = std::move(*plain);
  }
  if (r->status >= 200 && r->status < 300) {
    return std::move(r->body);
  }
  return std::unexpected(decodeError(*r, method, path));
}

}  // namespace

std::string ApiError::str() const {
  if (code == 0) {
    return method + " " + path + ": " + message;
  }
  return method + " " + path + ": " + std::to_string(code) + " " + reason + ": " + message;
}

std::string queryEscape(const std::string& s) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

std::string resourcePath(const std::string& group_version, const std::string& plural,
                         const std::string& namespace_, const std::string& name,
                         const std::string& subresource) {
  std::string p = group_version == "v1" ? "/api/v1" : "/apis/" + group_version;
  if (!namespace_.empty()) {
    p += "/namespaces/" + namespace_;
  }
  p += "/" + plural;
  if (!name.empty()) {
    p += "/" + name;
  }
  if (!subresource.empty()) {
    p += "/" + subresource;
  }
  return p;
}

Result<std::unique_ptr<ApiClient>> ApiClient::create(const ClusterAccess& access,
                                                     ClientOptions options) {
  PoolOptions po{.server = access.server,
                 .ca_pem = access.ca_pem,
                 .insecure_skip_verify = access.insecure_skip_tls_verify,
                 .server_name = access.tls_server_name,
                 .client_cert_pem = access.client_cert_pem,
                 .client_key_pem = access.client_key_pem,
                 .timeout = options.timeout};
  TRY(auto pool, ConnectionPool::create(po));
  return std::unique_ptr<ApiClient>(new ApiClient(access, options, std::move(pool)));
}

// client-go re-reads a token file every minute, so rotated tokens are picked up.
std::string ApiClient::bearerToken() {
  if (access_.token_file.empty()) {
    return access_.token;
  }
  std::lock_guard lock(token_mu_);
  auto now = std::chrono::steady_clock::now();
  if (token_.empty() || now - token_read_ >= std::chrono::minutes(1)) {
    if (auto t = readFile(access_.token_file)) {
      token_ = *t;
      while (!token_.empty() && std::isspace(static_cast<unsigned char>(token_.back()))) {
        token_.pop_back();
      }
      token_read_ = now;
    }
  }
  return token_;
}

std::vector<std::pair<std::string, std::string>> ApiClient::headers(
    const std::string& content_type) {
  std::vector<std::pair<std::string, std::string>> h = {{"Accept", "application/json"},
                                                        {"Accept-Encoding", "gzip"},
                                                        {"User-Agent", options_.user_agent}};
  if (!content_type.empty()) {
    h.emplace_back("Content-Type", content_type);
  }
  if (std::string t = bearerToken(); !t.empty()) {
    h.emplace_back("Authorization", "Bearer " + t);
  }
  return h;
}

ApiResult<std::string> ApiClient::call(const std::string& method, const std::string& path,
                                       const std::string& body, const std::string& content_type) {
  for (int attempt = 0;; attempt++) {
    limiter_.acquire();
    requests_++;
    HttpRequest req{.method = method, .url = path, .headers = headers(content_type), .body = body};
    auto response = pool_->roundTrip(req);
    observe(hostOf(access_.server), method, response);
    auto answer = decodeAnswer(std::move(response), method, path);
    if (answer) {
      return answer;
    }
    const ApiError& e = answer.error();
    // 429 and 5xx with Retry-After: the server asks to come back, as client-go does.
    bool retryable = e.retry_after > 0 && (e.code == 429 || e.code >= 500);
    if (!retryable || attempt + 1 >= options_.max_retries) {
      return answer;
    }
    std::this_thread::sleep_for(
        std::min<std::chrono::seconds>(std::chrono::seconds(e.retry_after), options_.timeout));
  }
}

ApiResult<std::string> ApiClient::get(const std::string& path) { return call("GET", path, "", ""); }

std::string listQuery(const ListOptions& o, const std::string& cont) {
  std::string q = "?limit=" + std::to_string(o.limit);
  if (!o.label_selector.empty()) {
    q += "&labelSelector=" + queryEscape(o.label_selector);
  }
  if (!o.field_selector.empty()) {
    q += "&fieldSelector=" + queryEscape(o.field_selector);
  }
  if (!cont.empty()) {
    q += "&continue=" + queryEscape(cont);
  } else if (!o.resource_version.empty()) {
    q += "&resourceVersion=" + queryEscape(o.resource_version);
    if (!o.resource_version_match.empty()) {
      q += "&resourceVersionMatch=" + o.resource_version_match;
    }
  }
  return q;
}

ApiResult<std::string> decodeListPage(const std::string& body, const std::string& path,
                                      ListResult& out) {
  auto parsed = parseApiJson(body, "GET " + path);
  rapidjson::Document d = parsed ? std::move(*parsed) : rapidjson::Document();
  if (!d.IsObject() || !d.HasMember("items") || !d["items"].IsArray()) {
    return std::unexpected(ApiError{.code = 200,
                                    .reason = "BadResponse",
                                    .message = "not a list",
                                    .method = "GET",
                                    .path = path});
  }
  if (d.HasMember("kind") && d["kind"].IsString()) {
    out.kind = d["kind"].GetString();
  }
  for (auto& item : d["items"].GetArray()) {
    out.items.push_back(serialize(item));
  }
  std::string cont;
  if (d.HasMember("metadata") && d["metadata"].IsObject()) {
    const auto& m = d["metadata"];
    if (m.HasMember("resourceVersion") && m["resourceVersion"].IsString()) {
      out.resource_version = m["resourceVersion"].GetString();
    }
    if (m.HasMember("continue") && m["continue"].IsString()) {
      cont = m["continue"].GetString();
    }
  }
  return cont;
}

ApiResult<ListResult> ApiClient::list(const std::string& path, const ListOptions& o) {
  ListResult out;
  std::string cont;
  for (;;) {
    auto body = call("GET", path + listQuery(o, cont), "", "");
    if (!body) {
      return std::unexpected(body.error());
    }
    auto next = decodeListPage(*body, path, out);
    if (!next) {
      return std::unexpected(next.error());
    }
    cont = std::move(*next);
    if (cont.empty()) {
      return out;
    }
  }
}

ApiResult<std::string> ApiClient::create(const std::string& path, const std::string& object) {
  return call("POST", path, object, "application/json");
}

ApiResult<std::string> ApiClient::update(const std::string& path, const std::string& object) {
  return call("PUT", path, object, "application/json");
}

ApiResult<std::string> ApiClient::patch(const std::string& path, PatchType type,
                                        const std::string& patch) {
  const char* ct = type == PatchType::kStrategicMerge ? "application/strategic-merge-patch+json"
                   : type == PatchType::kMerge        ? "application/merge-patch+json"
                                                      : "application/json-patch+json";
  return call("PATCH", path, patch, ct);
}

ApiResult<std::string> ApiClient::remove(const std::string& path, const DeleteOptions& o) {
  std::string body = R"({"kind":"DeleteOptions","apiVersion":"v1")";
  if (o.grace_period_seconds) {
    body += ",\"gracePeriodSeconds\":" + std::to_string(*o.grace_period_seconds);
  }
  if (!o.precondition_uid.empty() || !o.precondition_resource_version.empty()) {
    body += ",\"preconditions\":{";
    if (!o.precondition_uid.empty()) {
      body += "\"uid\":\"" + o.precondition_uid + "\"";
    }
    if (!o.precondition_resource_version.empty()) {
      body += std::string(o.precondition_uid.empty() ? "" : ",") + "\"resourceVersion\":\"" +
              o.precondition_resource_version + "\"";
    }
    body += "}";
  }
  body += "}";
  return call("DELETE", path, body, "application/json");
}

ApiResult<void> ApiClient::stream(const std::string& path_and_query, const BodySink& sink,
                                  std::atomic<int>* fd, std::chrono::seconds idle) {
  limiter_.acquire();
  requests_++;
  auto h = headers("");
  std::erase_if(h, [](const auto& kv) { return kv.first == "Accept-Encoding"; });
  HttpRequest req{.method = "GET", .url = path_and_query, .headers = h};
  auto r = pool_->roundTrip(req, sink, fd, idle);
  observe(hostOf(access_.server), "GET", r);
  if (!r) {
    return std::unexpected(transport(r.error(), "GET", path_and_query));
  }
  if (r->status < 200 || r->status >= 300) {
    return std::unexpected(decodeError(*r, "GET", path_and_query));
  }
  return {};
}

std::shared_ptr<AsyncCall> ApiClient::asyncCall(ApiLoop& loop, const std::string& method,
                                                const std::string& path, const std::string& body,
                                                const std::string& content_type,
                                                std::function<void(ApiResult<std::string>)> done) {
  requests_++;
  AsyncRequest r{
      .request = {.method = method, .url = path, .headers = headers(content_type), .body = body},
      .delay = limiter_.reserve(RateLimiter::Clock::now()),
      .done = [method, path, host = hostOf(access_.server),
               done = std::move(done)](Result<HttpResponse> answer) {
        observe(host, method, answer);
        done(decodeAnswer(std::move(answer), method, path));
      }};
  return startAsyncCall(loop.context(), pool_->asyncTarget(), std::move(r));
}

std::shared_ptr<AsyncCall> ApiClient::asyncStream(ApiLoop& loop, const std::string& path_and_query,
                                                  BodySink sink, std::chrono::seconds idle,
                                                  std::function<void(ApiResult<void>)> done) {
  requests_++;
  auto h = headers("");
  std::erase_if(h, [](const auto& kv) { return kv.first == "Accept-Encoding"; });
  AsyncRequest r{.request = {.method = "GET", .url = path_and_query, .headers = std::move(h)},
                 .sink = std::move(sink),
                 .idle = idle,
                 .delay = limiter_.reserve(RateLimiter::Clock::now()),
                 .done = [path_and_query, host = hostOf(access_.server),
                          done = std::move(done)](Result<HttpResponse> answer) {
                   observe(host, "GET", answer);
                   if (!answer) {
                     done(std::unexpected(transport(answer.error(), "GET", path_and_query)));
                   } else if (answer->status < 200 || answer->status >= 300) {
                     done(std::unexpected(decodeError(*answer, "GET", path_and_query)));
                   } else {
                     done({});
                   }
                 }};
  return startAsyncCall(loop.context(), pool_->asyncTarget(), std::move(r));
}

}  // namespace kernelet::apiclient
