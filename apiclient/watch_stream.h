#pragma once
// The body of a Kubernetes watch: one JSON object per line,
//   {"type":"ADDED|MODIFIED|DELETED|BOOKMARK|ERROR","object":{...}}
// fed as it arrives, in pieces of any size; every complete event is decoded at
// once, nothing waits for the whole response.

#include <rapidjson/document.h>

#include <functional>
#include <string>
#include <string_view>

#include "sys/result.h"

namespace kernelet::apiclient {

struct WatchEvent {
  enum class Type { kAdded, kModified, kDeleted, kBookmark, kError } type;
  std::string object;            // the object's JSON text
  std::string resource_version;  // object.metadata.resourceVersion, if any
  // For ERROR events: the Status' code and reason (410/"Expired" means relist).
  int code = 0;
  std::string reason;
  // A BOOKMARK carrying the annotation k8s.io/initial-events-end: "true".
  bool initial_events_end = false;
  // The object decoded, valid during the handler's call only (no second parse
  // needed to read it).
  const rapidjson::Value* parsed = nullptr;
};

class WatchStream {
 public:
  using Handler = std::function<void(WatchEvent)>;
  explicit WatchStream(Handler handler) : handler_(std::move(handler)) {}

  // Decodes every complete line in `piece` (plus what was pending); a line
  // that is not a watch event is an error naming its position.
  Result<void> feed(std::string_view piece);
  // The stream ended: a partial last line is an error.
  Result<void> finish();
  size_t events() const { return events_; }

 private:
  Result<void> decodeLine(std::string_view line);
  Handler handler_;
  std::string pending_;
  size_t events_ = 0;
  // Reused for every event: the line parsed in place, and the DOM's memory.
  std::string scratch_;
  rapidjson::MemoryPoolAllocator<> pool_{64 * 1024};
};

}  // namespace kernelet::apiclient
