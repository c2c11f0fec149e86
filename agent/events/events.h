#pragma once
// Kubernetes Events as the kubelet records them: POST a new Event named
// <object>.<hex unix nanos>; a repeat of the same object, reason and message
// within 10 minutes PATCHes that Event's count and lastTimestamp instead
// (the kubelet's aggregation of repeats; on 404 it is POSTed anew).

#include <chrono>
#include <map>
#include <string>

#include "apiclient/api_client.h"
#include "apiclient/objects.h"

namespace kernelet::agent {

struct EventRecord {
  std::string involved_kind = "Pod", involved_name, involved_namespace, involved_uid;
  std::string field_path;  // spec.containers{app}
  std::string type = "Normal", reason, message;
};

class EventRecorder {
 public:
  EventRecorder(apiclient::ApiClient& client, std::string node)
      : client_(client), node_(std::move(node)) {}
  // Sends it now (called from a writer thread). False when the API did not take it.
  bool record(const EventRecord& e);

 private:
  struct Seen {
    std::string name, namespace_, first;
    int32_t count = 0;
    std::chrono::steady_clock::time_point last;
  };
  apiclient::ApiClient& client_;
  std::string node_;
  std::map<std::string, Seen> seen_;  // by object uid, reason, message
};

}  // namespace kernelet::agent
