#include "apiclient/reflector.h"

#include <rapidjson/document.h>

#include <random>
#include <set>

namespace kernelet::apiclient {
namespace {

// uid, namespace, name and resourceVersion of an object's metadata.
bool readMeta(const rapidjson::Value& d, const std::string& json, ObjectEvent& e) {
  if (!d.IsObject() || !d.HasMember("metadata") || !d["metadata"].IsObject()) {
    return false;
  }
  const auto& m = d["metadata"];
  auto str = [&m](const char* k) {
    auto it = m.FindMember(k);
    return it != m.MemberEnd() && it->value.IsString() ? std::string(it->value.GetString())
                                                       : std::string();
  };
  e.uid = str("uid");
  e.namespace_ = str("namespace");
  e.name = str("name");
  e.resource_version = str("resourceVersion");
  e.object = json;
  return !e.uid.empty();
}

bool readMeta(const std::string& json, ObjectEvent& e) {
  rapidjson::Document d;
  d.Parse(json.c_str(), json.size());
  return !d.HasParseError() && readMeta(d, json, e);
}

std::mt19937& rng() {
  static thread_local std::mt19937 r(std::random_device{}());
  return r;
}

}  // namespace

Reflector::Reflector(ApiClient& client, ApiLoop& loop, ReflectorOptions options, Handler handler,
                     std::function<void()> synced)
    : client_(client),
      loop_(loop),
      options_(std::move(options)),
      handler_(std::move(handler)),
      synced_(std::move(synced)),
      timer_(loop),
      backoff_(options_.backoff_initial) {}

void Reflector::start() {
  auto begin = [this] {
    if (running_) {
      return;
    }
    running_ = true;
    need_list_ = !options_.streaming_list;
    backoff_ = options_.backoff_initial;
    next();
  };
  // Posted from elsewhere: the loop runs it before anything posted later,
  // such as this reflector's destruction.
  if (loop_.onLoopThread()) {
    begin();
  } else {
    loop_.post(begin);
  }
}

void Reflector::stop() {
  loop_.runOnLoop([this] {
    running_ = false;
    timer_.cancel();
    if (call_) {
      call_->cancel();
      call_.reset();
    }
  });
}

std::string Reflector::lastError() const {
  std::lock_guard lock(mu_);
  return last_error_;
}

void Reflector::fail(const std::string& why) {
  std::lock_guard lock(mu_);
  last_error_ = why;
}

void Reflector::deliver(ObjectEvent::Type type, ObjectEvent e) {
  auto it = cache_.find(e.uid);
  if (type == ObjectEvent::Type::kDeleted) {
    if (it == cache_.end()) {
      return;  // never seen, or its deletion was delivered already
    }
    cache_.erase(it);
  } else {
    if (it != cache_.end() && it->second.resource_version == e.resource_version) {
      return;  // seen already (a replay after a reconnect)
    }
    type = it == cache_.end() ? ObjectEvent::Type::kAdded : ObjectEvent::Type::kModified;
    cache_[e.uid] = {e.resource_version, e.namespace_, e.name, e.object};
  }
  e.type = type;
  if (running_) {  // the handler may have stopped us in the middle of a relist
    handler_(e);
  }
}

// After a relist: the fresh state against the cache.
void Reflector::replace(std::vector<ObjectEvent> fresh) {
  std::set<std::string> uids;
  for (const auto& e : fresh) {
    uids.insert(e.uid);
  }
  std::vector<ObjectEvent> gone;
  for (const auto& [uid, c] : cache_) {
    if (!uids.contains(uid)) {
      gone.push_back(
          {ObjectEvent::Type::kDeleted, uid, c.namespace_, c.name, c.resource_version, c.object});
    }
  }
  for (auto& g : gone) {
    deliver(ObjectEvent::Type::kDeleted, std::move(g));
  }
  for (auto& e : fresh) {
    deliver(ObjectEvent::Type::kAdded, std::move(e));  // in list order
  }
  if (synced_ && running_) {
    synced_();
  }
}

// What comes next: a list, or a watch from where the last one ended.
void Reflector::next() {
  if (!running_) {
    return;
  }
  if (need_list_) {
    relist();
  } else {
    watch();
  }
}

// Jittered: between the back-off and twice it, then doubled, capped.
void Reflector::pause() {
  auto jitter = std::uniform_int_distribution<int64_t>(0, backoff_.count())(rng());
  timer_.after(backoff_ + std::chrono::milliseconds(jitter), [this] { next(); });
  backoff_ = std::min(backoff_ * 2, options_.backoff_max);
}

void Reflector::relist() {
  relists_++;
  list_ = {};
  continue_.clear();
  listPage();
}

void Reflector::listPage() {
  ListOptions lo{.label_selector = options_.label_selector,
                 .field_selector = options_.field_selector,
                 .limit = options_.page_size};
  call_ = client_.asyncCall(loop_, "GET", options_.path + listQuery(lo, continue_), "", "",
                            [this](ApiResult<std::string> body) {
                              call_.reset();
                              auto cont =
                                  body ? decodeListPage(*body, options_.path, list_)
                                       : ApiResult<std::string>(std::unexpected(body.error()));
                              if (!cont) {
                                fail(cont.error().str());
                                pause();
                                return;
                              }
                              if (!cont->empty()) {
                                continue_ = std::move(*cont);
                                listPage();
                                return;
                              }
                              std::vector<ObjectEvent> fresh;
                              for (const auto& item : list_.items) {
                                ObjectEvent e{};
                                if (readMeta(item, e)) {
                                  fresh.push_back(std::move(e));
                                }
                              }
                              resource_version_ = list_.resource_version;
                              list_ = {};
                              need_list_ = false;
                              replace(std::move(fresh));
                              next();
                            });
}

void Reflector::watch() {
  watches_++;
  auto timeout = options_.watch_timeout.count() +
                 std::uniform_int_distribution<int64_t>(0, options_.watch_timeout.count())(rng());
  initial_ = resource_version_.empty() && options_.streaming_list;
  initial_done_ = !initial_;
  expired_ = failed_ = false;
  initial_set_.clear();
  std::string q = options_.path +
                  "?watch=true&allowWatchBookmarks=true&timeoutSeconds=" + std::to_string(timeout);
  if (initial_) {
    q += "&sendInitialEvents=true&resourceVersionMatch=NotOlderThan";
  } else {
    q += "&resourceVersion=" + queryEscape(resource_version_);
  }
  if (!options_.field_selector.empty()) {
    q += "&fieldSelector=" + queryEscape(options_.field_selector);
  }
  if (!options_.label_selector.empty()) {
    q += "&labelSelector=" + queryEscape(options_.label_selector);
  }
  stream_ = std::make_unique<WatchStream>([this](WatchEvent ev) { onWatchEvent(std::move(ev)); });
  call_ = client_.asyncStream(
      loop_, q, [this](std::string_view piece) { return stream_->feed(piece); }, options_.idle,
      [this](const ApiResult<void>& r) {
        call_.reset();
        watchEnded(r);
      });
}

void Reflector::onWatchEvent(WatchEvent ev) {
  if (!running_) {
    return;  // stopped by the handler of an earlier event in the same piece
  }
  using T = WatchEvent::Type;
  if (ev.type == T::kError) {
    if (ev.code == 410) {
      expired_ = true;
    } else {
      failed_ = true;
      fail("watch error " + std::to_string(ev.code) + " " + ev.reason);
    }
    return;
  }
  if (!ev.resource_version.empty()) {
    resource_version_ = ev.resource_version;
  }
  if (ev.type == T::kBookmark) {
    if (ev.initial_events_end && !initial_done_) {
      initial_done_ = true;
      relists_++;
      replace(std::move(initial_set_));
      initial_set_.clear();
    }
    return;
  }
  ObjectEvent e{};
  if (ev.parsed == nullptr || !readMeta(*ev.parsed, ev.object, e)) {
    return;
  }
  if (!initial_done_) {
    initial_set_.push_back(std::move(e));  // the streaming list, delivered at its end
    return;
  }
  deliver(ev.type == T::kDeleted    ? ObjectEvent::Type::kDeleted
          : ev.type == T::kModified ? ObjectEvent::Type::kModified
                                    : ObjectEvent::Type::kAdded,
          std::move(e));
}

void Reflector::watchEnded(const ApiResult<void>& r) {
  bool expired = expired_, failed = failed_;
  if (!r) {
    expired = r.error().code == 410;
    failed = !expired;
    if (failed) {
      fail(r.error().str());
    }
  } else if (initial_ && !initial_done_) {
    resource_version_.clear();  // the streaming list did not finish: start over
  }
  if (expired) {
    // 410: the version is gone; list again (or start a new streaming list).
    resource_version_.clear();
    need_list_ = !options_.streaming_list;
    next();
  } else if (failed) {
    pause();
  } else {
    backoff_ = options_.backoff_initial;  // a watch that ended normally (timeout)
    next();
  }
}

}  // namespace kernelet::apiclient
