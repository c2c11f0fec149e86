#pragma once
// client-go's reflector: list, then watch from the list's resourceVersion,
// with bookmarks; a 410 Expired relists; a broken or ended watch is resumed
// from the last resourceVersion seen, after a capped, jittered back-off when
// it failed. A cache of the objects by uid makes every change arrive exactly
// once: after a relist, objects the cache lacks come as ADDED, changed ones as
// MODIFIED and vanished ones as DELETED; events already seen are dropped.
// Runs on its own thread; the handler is called from it.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "apiclient/api_client.h"

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
  Reflector(ApiClient& client, ReflectorOptions options, Handler handler,
            std::function<void()> synced = {})
      : client_(client),
        options_(std::move(options)),
        handler_(std::move(handler)),
        synced_(std::move(synced)) {}
  ~Reflector() { stop(); }

  void start();
  // Ends the running watch and joins the thread.
  void stop();

  // For tests and logs.
  int relists() const { return relists_; }
  int watches() const { return watches_; }
  std::string lastError() const;

 private:
  struct Cached {
    std::string resource_version, namespace_, name, object;
  };
  void run();
  bool relist();
  // Returns true when the watch ended in a way that needs a relist (410).
  bool watchOnce(bool& failed);
  void deliver(ObjectEvent::Type type, ObjectEvent e);
  void replace(std::vector<ObjectEvent> fresh);
  void fail(const std::string& why);
  bool sleepFor(std::chrono::milliseconds d);  // false when stopped meanwhile

  ApiClient& client_;
  ReflectorOptions options_;
  Handler handler_;
  std::function<void()> synced_;
  std::map<std::string, Cached> cache_;  // by uid; the reflector thread's own
  std::string resource_version_;
  std::thread thread_;
  std::atomic<bool> stopping_{false}, finished_{false};
  std::atomic<int> stream_fd_{-1};
  std::mutex mu_;
  std::condition_variable cv_;
  std::string last_error_;  // guarded by mu_
  std::atomic<int> relists_{0}, watches_{0};
};

}  // namespace kernelet::apiclient
