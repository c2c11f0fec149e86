#pragma once
// client-go's reflector: list, then watch from the list's resourceVersion,
// with bookmarks; a 410 Expired relists; a broken or ended watch is resumed
// from the last resourceVersion seen, after a capped, jittered back-off when
// it failed. A cache of the objects by uid makes every change arrive exactly
// once: after a relist, objects the cache lacks come as ADDED, changed ones as
// MODIFIED and vanished ones as DELETED; events already seen are dropped.
// Runs on the network thread (ApiLoop) as callbacks and timers, however many
// reflectors there are; the handler is called on that thread.

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "apiclient/api_client.h"
#include "apiclient/api_loop.h"
#include "apiclient/watch_stream.h"

namespace kernelet::apiclient {

struct ReflectorOptions {
  std::string path;  // a collection: /api/v1/pods
  std::string field_selector, label_selector;
  // The streaming list (sendInitialEvents=true, then the initial-events-end
  // bookmark) instead of a paged list.
  bool streaming_list = false;
  int page_size = 500;
  std::chrono::seconds watch_timeout{300};  // timeoutSeconds: this plus up to as much again
  std::chrono::milliseconds backoff_initial{800}, backoff_max{30000};
  std::chrono::seconds idle{120};  // silence on a watch (no bookmark either): reconnect
};

struct ObjectEvent {
  enum class Type { kAdded, kModified, kDeleted } type;
  std::string uid, namespace_, name, resource_version;
  std::string object;  // JSON text
};

class Reflector {
 public:
  using Handler = std::function<void(const ObjectEvent&)>;
  Reflector(ApiClient& client, ApiLoop& loop, ReflectorOptions options, Handler handler,
            std::function<void()> synced = {});
  ~Reflector() { stop(); }
  Reflector(const Reflector&) = delete;
  Reflector& operator=(const Reflector&) = delete;

  // From any thread: the first list starts on the loop.
  void start();
  // From any thread, the handler included: ends the running call and timer.
  // Once it returns, the handler is not called again.
  void stop();

  // For tests and logs.
  int relists() const { return relists_; }
  int watches() const { return watches_; }
  std::string lastError() const;

 private:
  struct Cached {
    std::string resource_version, namespace_, name, object;
  };
  // All on the loop thread.
  void next();
  void relist();
  void listPage();
  void watch();
  void onWatchEvent(WatchEvent ev);
  void watchEnded(const ApiResult<void>& r);
  void pause();
  void deliver(ObjectEvent::Type type, ObjectEvent e);
  void replace(std::vector<ObjectEvent> fresh);
  void fail(const std::string& why);

  ApiClient& client_;
  ApiLoop& loop_;
  ReflectorOptions options_;
  Handler handler_;
  std::function<void()> synced_;
  LoopTimer timer_;
  // The loop thread's own:
  bool running_ = false;
  bool need_list_ = false;
  std::shared_ptr<AsyncCall> call_;      // the list page or watch in flight
  std::map<std::string, Cached> cache_;  // by uid
  std::string resource_version_;
  std::chrono::milliseconds backoff_;
  ListResult list_;       // the pages so far
  std::string continue_;  // of the next page
  // The watch in flight: its decoder and what its events said.
  std::unique_ptr<WatchStream> stream_;
  bool initial_ = false, initial_done_ = false, expired_ = false, failed_ = false;
  std::vector<ObjectEvent> initial_set_;

  mutable std::mutex mu_;
  std::string last_error_;  // guarded by mu_
  std::atomic<int> relists_{0}, watches_{0};
};

}  // namespace kernelet::apiclient
