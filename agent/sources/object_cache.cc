#include "agent/sources/object_cache.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <set>

#include "agent/log/log.h"
#include "apiclient/json_fields.h"
#include "apiclient/objects.h"

namespace kernelet::agent {
namespace {

std::string tokenRequestJson(const TokenRef& ref) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  w.Key("apiVersion");
  w.String("authentication.k8s.io/v1");
  w.Key("kind");
  w.String("TokenRequest");
  w.Key("spec");
  w.StartObject();
  if (!ref.audience.empty()) {  // none: the API server's own audiences
    w.Key("audiences");
    w.StartArray();
    w.String(ref.audience.c_str());
    w.EndArray();
  }
  w.Key("expirationSeconds");
  w.Int64(ref.expiration_seconds);
  w.Key("boundObjectRef");
  w.StartObject();
  w.Key("apiVersion");
  w.String("v1");
  w.Key("kind");
  w.String("Pod");
  w.Key("name");
  w.String(ref.pod_name.c_str());
  w.Key("uid");
  w.String(ref.pod_uid.c_str());
  w.EndObject();
  w.EndObject();
  w.EndObject();
  return {buf.GetString(), buf.GetSize()};
}

std::string collection(const ObjectRef& ref) {
  return "/api/v1/namespaces/" + ref.namespace_ +
         (ref.kind == ObjectRef::Kind::kConfigMap ? "/configmaps" : "/secrets");
}

template <typename T>
void addOnce(std::vector<T>& list, const T& x) {
  if (std::find(list.begin(), list.end(), x) == list.end()) {
    list.push_back(x);
  }
}

// A failed request is tried again after this long; a pod waiting for it
// meanwhile shows the error.
constexpr auto kTokenRetry = std::chrono::seconds(10);

}  // namespace

Result<std::unique_ptr<ObjectCache>> ObjectCache::create(
    apiclient::ApiClient& client, apiclient::ApiLoop& net, EventLoop& loop,
    std::function<void(const PodRefs&)> changed) {
  std::unique_ptr<ObjectCache> c(new ObjectCache(client, net, std::move(changed)));
  TRY(c->to_loop_, LoopQueue::create(loop));
  return c;
}

ObjectCache::~ObjectCache() {
  std::map<ObjectRef, std::shared_ptr<Watch>> watches;
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    watches.swap(watches_);
  }
  // Everything that may call back into this object lives on the network
  // thread: ended there, in one go (outside mu_: a handler may wait for it).
  net_.runOnLoop([&] {
    watches.clear();  // each reflector stops as it goes
    token_timer_.cancel();
    for (auto& [ref, call] : token_calls_) {
      call->cancel();
    }
    token_calls_.clear();
  });
}

size_t ObjectCache::watches() const {
  std::lock_guard lock(mu_);
  return watches_.size();
}

std::optional<ObjectData> ObjectCache::object(const ObjectRef& ref) {
  std::shared_ptr<Watch> w;
  {
    std::lock_guard lock(mu_);
    auto it = watches_.find(ref);
    if (it != watches_.end()) {
      return it->second->data;
    }
    w = std::make_shared<Watch>();
    watches_[ref] = w;
  }
  apiclient::ReflectorOptions o;
  o.path = collection(ref);
  o.field_selector = "metadata.name=" + ref.name;
  w->reflector = std::make_unique<apiclient::Reflector>(
      client_, net_, o, [this, ref](const apiclient::ObjectEvent& e) { onEvent(ref, e); },
      [this, ref] { onSynced(ref); });
  w->reflector->start();
  log::v(3, "Watching", {{"object", ref.quoted()}, {"namespace", ref.namespace_}});
  return std::nullopt;
}

void ObjectCache::onEvent(const ObjectRef& ref, const apiclient::ObjectEvent& e) {
  ObjectData d;
  if (e.type != apiclient::ObjectEvent::Type::kDeleted) {
    std::string where = ref.quoted() + " in " + ref.namespace_;
    auto data = ref.kind == ObjectRef::Kind::kConfigMap
                    ? apiclient::decodeConfigMapData(e.object, where)
                    : apiclient::decodeSecretData(e.object, where);
    if (!data) {
      log::error("Decode object", {{"err", data.error().message()}});
      return;  // the pods keep what they had
    }
    if (ref.kind == ObjectRef::Kind::kSecret) {
      auto type = apiclient::decodeSecretType(e.object, where);
      if (!type) {
        log::error("Decode object", {{"err", type.error().message()}});
        return;
      }
      d.type = std::move(*type);
    }
    d.found = true;
    d.data = std::move(*data);
  }
  {
    std::lock_guard lock(mu_);
    auto it = watches_.find(ref);
    if (it == watches_.end()) {
      return;
    }
    it->second->data = std::move(d);
    notify(ref);
  }
}

void ObjectCache::onSynced(const ObjectRef& ref) {
  {
    std::lock_guard lock(mu_);
    auto it = watches_.find(ref);
    if (it == watches_.end() || it->second->data) {
      return;
    }
    it->second->data = ObjectData{};  // listed and not there: not found
    notify(ref);
  }
}

void ObjectCache::notify(const ObjectRef& ref) {
  addOnce(changed_refs_.objects, ref);
  postChanged();
}

void ObjectCache::notify(const TokenRef& ref) {
  addOnce(changed_refs_.tokens, ref);
  postChanged();
}

// Many changes in a row reach the loop as one call.
void ObjectCache::postChanged() {
  if (notify_posted_ || stopping_) {
    return;
  }
  notify_posted_ = true;
  to_loop_->post([this] {
    PodRefs changed;
    {
      std::lock_guard lock(mu_);
      notify_posted_ = false;
      std::swap(changed, changed_refs_);
    }
    changed_(changed);
  });
}

std::optional<Result<std::string>> ObjectCache::token(const TokenRef& ref) {
  std::lock_guard lock(mu_);
  auto [it, added] = tokens_.try_emplace(ref);
  if (added) {
    it->second.refresh_at = Clock::now();
    net_.post([this] { scheduleTokens(); });
  }
  return it->second.value;
}

void ObjectCache::retain(const std::vector<PodRefs>& in_use) {
  std::set<ObjectRef> objects;
  std::set<TokenRef> tokens;
  for (const auto& refs : in_use) {
    objects.insert(refs.objects.begin(), refs.objects.end());
    tokens.insert(refs.tokens.begin(), refs.tokens.end());
  }
  std::vector<std::shared_ptr<Watch>> dropped;
  {
    std::lock_guard lock(mu_);
    for (auto it = watches_.begin(); it != watches_.end();) {
      if (objects.contains(it->first)) {
        ++it;
      } else {
        log::v(3, "Stopped watching", {{"object", it->first.quoted()}});
        dropped.push_back(std::move(it->second));
        it = watches_.erase(it);
      }
    }
    std::erase_if(tokens_, [&](const auto& kv) { return !tokens.contains(kv.first); });
  }
  // Stopped on the network thread, all in one go.
  if (!dropped.empty()) {
    net_.runOnLoop([&] { dropped.clear(); });
  }
}

// The token in a TokenRequest's answer, and when to renew it.
ObjectCache::Token ObjectCache::tokenFrom(const TokenRef& ref, const std::string& path,
                                          const apiclient::ApiResult<std::string>& answer) {
  Token t;
  auto now = Clock::now();
  if (!answer) {
    t.value =
        makeError("request token", "serviceaccount " + ref.namespace_ + "/" + ref.service_account,
                  answer.error().str());
    t.refresh_at = now + kTokenRetry;
    return t;
  }
  auto parsed = apiclient::parseApiJson(*answer, path);  // iterative, depth-limited
  rapidjson::Document d = parsed ? std::move(*parsed) : rapidjson::Document();
  const char* token = nullptr;
  if (!d.HasParseError() && d.IsObject() && d.HasMember("status") && d["status"].IsObject() &&
      d["status"].HasMember("token") && d["status"]["token"].IsString()) {
    token = d["status"]["token"].GetString();
  }
  if (token == nullptr) {
    t.value = makeError("request token", path, "the answer has no status.token");
    t.refresh_at = now + kTokenRetry;
    return t;
  }
  t.value = std::string(token);
  // The server may grant another lifetime than asked: its expirationTimestamp rules.
  auto expires = now + std::chrono::seconds(ref.expiration_seconds);
  if (d["status"].HasMember("expirationTimestamp") &&
      d["status"]["expirationTimestamp"].IsString()) {
    if (auto ts = apiclient::parseTime(d["status"]["expirationTimestamp"].GetString())) {
      expires = Clock::from_time_t(ts->tv_sec);
    }
  }
  auto ttl = std::max(expires - now, Clock::duration::zero());
  t.refresh_at = now + std::min<Clock::duration>(ttl * 8 / 10, std::chrono::hours(24));
  return t;
}

void ObjectCache::scheduleTokens() {
  std::vector<TokenRef> due;
  std::optional<Clock::time_point> wake;
  {
    std::lock_guard lock(mu_);
    if (stopping_) {
      return;
    }
    auto now = Clock::now();
    for (const auto& [ref, t] : tokens_) {
      if (token_calls_.contains(ref)) {
        continue;  // asked already
      }
      if (t.refresh_at <= now) {
        due.push_back(ref);
      } else if (!wake || t.refresh_at < *wake) {
        wake = t.refresh_at;
      }
    }
  }
  for (const auto& ref : due) {
    requestToken(ref);
  }
  if (wake) {
    token_timer_.after(*wake - Clock::now(), [this] { scheduleTokens(); });
  } else {
    token_timer_.cancel();
  }
}

void ObjectCache::requestToken(const TokenRef& ref) {
  std::string path =
      "/api/v1/namespaces/" + ref.namespace_ + "/serviceaccounts/" + ref.service_account + "/token";
  token_calls_[ref] =
      client_.asyncCall(net_, "POST", path, tokenRequestJson(ref), "application/json",
                        [this, ref, path](apiclient::ApiResult<std::string> answer) {
                          token_calls_.erase(ref);
                          tokenAnswered(ref, tokenFrom(ref, path, answer));
                          scheduleTokens();
                        });
}

void ObjectCache::tokenAnswered(const TokenRef& ref, Token fresh) {
  std::lock_guard lock(mu_);
  auto it = tokens_.find(ref);
  if (it == tokens_.end()) {
    return;  // its pod went meanwhile
  }
  bool ok = fresh.value && *fresh.value;
  bool had = it->second.value && *it->second.value;
  std::string err = ok ? "" : fresh.value->error().message();
  if (ok || !had) {
    it->second.value = std::move(fresh.value);  // a failed renewal keeps the old token
  }
  it->second.refresh_at = fresh.refresh_at;
  if (ok) {
    log::v(3, "Token issued",
           {{"serviceAccount", ref.namespace_ + "/" + ref.service_account}, {"pod", ref.pod_name}});
  } else {
    log::error("Token request failed",
               {{"pod", ref.namespace_ + "/" + ref.pod_name}, {"err", err}});
  }
  if (ok || !had) {
    notify(ref);
  }
}

}  // namespace kernelet::agent
