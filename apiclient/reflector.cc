#include "apiclient/reflector.h"

#include <rapidjson/document.h>
#include <sys/socket.h>

#include <random>
#include <set>

#include "apiclient/watch_stream.h"

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

}  // namespace

void Reflector::start() {
  stopping_ = false;
  finished_ = false;
  thread_ = std::thread([this] {
    run();
    std::lock_guard lock(mu_);
    finished_ = true;
    cv_.notify_all();
  });
}

void Reflector::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (!thread_.joinable()) {
    return;
  }
  // A blocked read returns once its socket is shut down; again and again, in
  // case a request was just being started when we looked.
  while (!finished_) {
    int fd = stream_fd_.load();
    if (fd >= 0) {
      ::shutdown(fd, SHUT_RDWR);
    }
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, std::chrono::milliseconds(50), [this] { return finished_.load(); });
  }
  thread_.join();
}

std::string Reflector::lastError() const {
  std::lock_guard lock(const_cast<std::mutex&>(mu_));
  return last_error_;
}

void Reflector::fail(const std::string& why) {
  std::lock_guard lock(mu_);
  last_error_ = why;
}

bool Reflector::sleepFor(std::chrono::milliseconds d) {
  std::unique_lock lock(mu_);
  cv_.wait_for(lock, d, [this] { return stopping_.load(); });
  return !stopping_;
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
  handler_(e);
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
  if (synced_) {
    synced_();
  }
}

bool Reflector::relist() {
  relists_++;
  ListOptions lo{.label_selector = options_.label_selector,
                 .field_selector = options_.field_selector,
                 .limit = options_.page_size};
  auto list = client_.list(options_.path, lo);
  if (!list) {
    fail(list.error().str());
    return false;
  }
  std::vector<ObjectEvent> fresh;
  for (const auto& item : list->items) {
    ObjectEvent e{};
    if (readMeta(item, e)) {
      fresh.push_back(std::move(e));
    }
  }
  resource_version_ = list->resource_version;
  replace(std::move(fresh));
  return true;
}

bool Reflector::watchOnce(bool& failed) {
  watches_++;
  failed = false;
  static thread_local std::mt19937 rng(std::random_device{}());
  auto timeout = options_.watch_timeout.count() +
                 std::uniform_int_distribution<int64_t>(0, options_.watch_timeout.count())(rng);
  bool initial = resource_version_.empty() && options_.streaming_list;
  std::string q = options_.path +
                  "?watch=true&allowWatchBookmarks=true&timeoutSeconds=" + std::to_string(timeout);
  if (initial) {
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
  bool expired = false;
  std::vector<ObjectEvent> initial_set;
  bool initial_done = !initial;
  WatchStream ws([&](WatchEvent ev) {
    using T = WatchEvent::Type;
    if (ev.type == T::kError) {
      if (ev.code == 410) {
        expired = true;
      } else {
        failed = true;
        fail("watch error " + std::to_string(ev.code) + " " + ev.reason);
      }
      return;
    }
    if (!ev.resource_version.empty()) {
      resource_version_ = ev.resource_version;
    }
    if (ev.type == T::kBookmark) {
      if (ev.initial_events_end && !initial_done) {
        initial_done = true;
        relists_++;
        replace(std::move(initial_set));
      }
      return;
    }
    ObjectEvent e{};
    if (ev.parsed == nullptr || !readMeta(*ev.parsed, ev.object, e)) {
      return;
    }
    if (!initial_done) {
      initial_set.push_back(std::move(e));  // the streaming list, delivered at its end
      return;
    }
    deliver(ev.type == T::kDeleted    ? ObjectEvent::Type::kDeleted
            : ev.type == T::kModified ? ObjectEvent::Type::kModified
                                      : ObjectEvent::Type::kAdded,
            std::move(e));
  });
  if (stopping_) {
    return false;
  }
  auto r = client_.stream(
      q, [&](std::string_view piece) { return ws.feed(piece); }, &stream_fd_, options_.idle);
  if (!r) {
    if (r.error().code == 410) {
      return true;
    }
    if (!stopping_) {
      failed = true;
      fail(r.error().str());
    }
    return false;
  }
  if (initial && !initial_done) {
    resource_version_.clear();  // the streaming list did not finish: start over
  }
  return expired;
}

void Reflector::run() {
  std::mt19937 rng(std::random_device{}());
  auto backoff = options_.backoff_initial;
  auto pause = [&]() {
    // Jittered: between the back-off and twice it, then doubled, capped.
    auto jitter = std::uniform_int_distribution<int64_t>(0, backoff.count())(rng);
    bool go_on = sleepFor(backoff + std::chrono::milliseconds(jitter));
    backoff = std::min(backoff * 2, options_.backoff_max);
    return go_on;
  };
  bool need_list = !options_.streaming_list;
  while (!stopping_) {
    if (need_list) {
      if (!relist()) {
        if (!pause()) {
          return;
        }
        continue;
      }
      need_list = false;
    }
    bool failed = false;
    bool expired = watchOnce(failed);
    if (stopping_) {
      return;
    }
    if (expired) {
      // 410: the version is gone; list again (or start a new streaming list).
      resource_version_.clear();
      need_list = !options_.streaming_list;
      continue;
    }
    if (failed) {
      if (!pause()) {
        return;
      }
    } else {
      backoff = options_.backoff_initial;  // a watch that ended normally (timeout)
    }
  }
}

}  // namespace kernelet::apiclient
