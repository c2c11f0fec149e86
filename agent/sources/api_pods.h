#pragma once
// The API pod source: a reflector on the pods bound to this node
// (spec.nodeName), decoded into the agent's desired pods and handed to the
// loop, a burst of changes as one call. What else the watch shows goes where
// it is needed: each pod's status as the API has it to the status writer (the
// base of its patches), mirror pods to MirrorPods.

#include <rapidjson/document.h>

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "agent/model/pod.h"
#include "agent/sources/mirror_pods.h"
#include "agent/status/status_writer.h"
#include "apiclient/api_client.h"
#include "apiclient/objects.h"
#include "apiclient/reflector.h"
#include "sys/loop_queue.h"

namespace kernelet::agent {

// A pod the API server binds to this node.
struct ApiPod {
  Pod pod;
  std::string hash;                // of its spec but images: a change restarts it
  std::string deletion_timestamp;  // set: terminate it
  int64_t deletion_grace_seconds = 30;
  std::shared_ptr<const std::string> json;  // the object as the API gave it (/pods shows its spec)
};

class ApiPodSource {
 public:
  // Called on the loop with every API pod bound to the node, mirror pods
  // excluded; a burst of changes is one call.
  using PodsChanged = std::function<void(std::map<std::string, ApiPod>)>;

  // Starts the watch, on the network thread `net`. `synced` (may be empty) is
  // called on the loop after each complete list of the pods, once `changed`
  // has been given what it listed: from then on a pod the source does not
  // give is one the API server does not bind here (not one it has not told yet).
  ApiPodSource(apiclient::ApiClient& client, apiclient::ApiLoop& net, const std::string& node_name,
               LoopQueue& to_loop, StatusWriter& status, MirrorPods& mirrors, PodsChanged changed,
               std::function<void()> synced = {});
  // Stops the watch: no call reaches the loop, the writer or the mirrors after it.
  ~ApiPodSource();
  ApiPodSource(const ApiPodSource&) = delete;
  ApiPodSource& operator=(const ApiPodSource&) = delete;

 private:
  void onPodEvent(const apiclient::ObjectEvent& e);
  void onMirrorEvent(const apiclient::ObjectEvent& e, const rapidjson::Value& object,
                     const apiclient::ObjectMeta& meta);
  void postToLoop(std::unique_lock<std::mutex>& lock);

  LoopQueue& to_loop_;
  StatusWriter& status_;
  MirrorPods& mirrors_;
  PodsChanged changed_;
  std::function<void()> synced_;
  std::mutex mu_;
  // Guarded by mu_:
  std::map<std::string, ApiPod> pods_;                  // by uid
  std::map<std::string, std::string> pod_fingerprint_;  // uid -> what its Pod was decoded from
  bool posted_ = false;                                 // the loop has a call to changed_ coming
  std::unique_ptr<apiclient::Reflector> reflector_;     // last: stopped first
};

}  // namespace kernelet::agent
