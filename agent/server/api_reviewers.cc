#include "agent/server/api_reviewers.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "apiclient/json_fields.h"
#include "sys/json.h"

namespace kernelet::agent::server {
namespace {

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

using apiclient::put;

}  // namespace

std::string tokenReviewJson(const std::string& token) {
  rapidjson::StringBuffer buf;
  Writer w(buf);
  w.StartObject();
  put(w, "apiVersion", "authentication.k8s.io/v1");
  put(w, "kind", "TokenReview");
  w.Key("spec");
  w.StartObject();
  put(w, "token", token);
  w.EndObject();
  w.EndObject();
  return buf.GetString();
}

Result<TokenAnswer> decodeTokenReview(const std::string& body) {
  TRY(auto doc, json::parse(body, "decode", "TokenReview"));
  json::Cursor root(doc, "decode", "TokenReview");
  TRY(auto status, root.optObject("status"));
  TokenAnswer a;
  if (!status) {
    return a;
  }
  TRY(a.authenticated, status->optBool("authenticated"));
  TRY(a.error, status->optStr("error"));
  TRY(auto user, status->optObject("user"));
  if (user) {
    TRY(a.user.name, user->optStr("username"));
    TRY(a.user.groups, user->optStrings("groups"));
  }
  if (a.authenticated && a.user.name.empty()) {
    return makeError("decode", "TokenReview",
                     "status.user.username: empty for an authenticated "
                     "token");
  }
  return a;
}

std::string accessReviewJson(const AccessRequest& r, const std::string& node) {
  rapidjson::StringBuffer buf;
  Writer w(buf);
  w.StartObject();
  put(w, "apiVersion", "authorization.k8s.io/v1");
  put(w, "kind", "SubjectAccessReview");
  w.Key("spec");
  w.StartObject();
  put(w, "user", r.user.name);
  w.Key("groups");
  w.StartArray();
  for (const auto& g : r.user.groups) {
    w.String(g.c_str(), static_cast<rapidjson::SizeType>(g.size()));
  }
  w.EndArray();
  w.Key("resourceAttributes");
  w.StartObject();
  put(w, "verb", r.verb);
  put(w, "resource", "nodes");
  put(w, "subresource", r.subresource);
  put(w, "name", node);
  w.EndObject();
  w.EndObject();
  w.EndObject();
  return buf.GetString();
}

Result<AccessAnswer> decodeAccessReview(const std::string& body) {
  TRY(auto doc, json::parse(body, "decode", "SubjectAccessReview"));
  json::Cursor root(doc, "decode", "SubjectAccessReview");
  TRY(auto status, root.optObject("status"));
  AccessAnswer a;
  if (status) {
    TRY(a.allowed, status->optBool("allowed"));
    TRY(a.reason, status->optStr("reason"));
  }
  return a;
}

ApiCalls::~ApiCalls() {
  loop_.runOnLoop([this] {
    for (const auto& c : calls_) {
      c->cancel();
    }
    calls_.clear();
  });
}

void ApiCalls::post(std::string path, std::string body,
                    std::function<void(apiclient::ApiResult<std::string>)> done) {
  loop_.post([this, path = std::move(path), body = std::move(body), done = std::move(done)] {
    auto holder = std::make_shared<std::shared_ptr<apiclient::AsyncCall>>();
    *holder = client_.asyncCall(loop_, "POST", path, body, "application/json",
                                [this, holder, done](apiclient::ApiResult<std::string> r) {
                                  calls_.erase(*holder);
                                  holder->reset();
                                  done(std::move(r));
                                });
    if (*holder) {
      calls_.insert(*holder);
    }
  });
}

void ApiTokenReviewer::review(const std::string& token,
                              std::function<void(Result<TokenAnswer>)> done) {
  calls_.post("/apis/authentication.k8s.io/v1/tokenreviews", tokenReviewJson(token),
              [done = std::move(done)](apiclient::ApiResult<std::string> r) {
                if (!r) {
                  done(makeError("TokenReview", "", r.error().str()));
                  return;
                }
                done(decodeTokenReview(*r));
              });
}

void ApiAccessReviewer::review(const AccessRequest& request,
                               std::function<void(Result<AccessAnswer>)> done) {
  calls_.post("/apis/authorization.k8s.io/v1/subjectaccessreviews",
              accessReviewJson(request, node_),
              [done = std::move(done)](apiclient::ApiResult<std::string> r) {
                if (!r) {
                  done(makeError("SubjectAccessReview", "", r.error().str()));
                  return;
                }
                done(decodeAccessReview(*r));
              });
}

}  // namespace kernelet::agent::server
