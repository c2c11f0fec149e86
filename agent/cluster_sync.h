#pragma once
// The agent's side of a cluster (`kernelet run --kubeconfig`): everything it
// says to the API server, off the event loop.
//   - heartbeat thread: registers the Node (or reconciles it on AlreadyExists),
//     renews the Lease every 10 s, patches the node status when it changed or
//     every 5 minutes;
//   - a reflector on the pods bound to this node (spec.nodeName), whose
//     changes reach the loop as snapshots;
//   - writer thread: pod status patches (only what changed, with the uid
//     guard), mirror pods for static pods, and the final DELETE of pods that
//     finished terminating;
//   - event thread: Events, with the kubelet's aggregation of repeats.
// The API server being away stops none of the pods: writes wait and retry.

#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "agent/config.h"
#include "agent/events.h"
#include "agent/node_status.h"
#include "agent/pod.h"
#include "apiclient/api_client.h"
#include "apiclient/kubeconfig.h"
#include "apiclient/reflector.h"
#include "sys/event_loop.h"
#include "sys/loop_queue.h"

namespace kernelet::agent {

// A pod the API server binds to this node.
struct ApiPod {
  Pod pod;
  std::string hash;                // of its spec but images: a change restarts it
  std::string deletion_timestamp;  // set: terminate it
  int64_t deletion_grace_seconds = 30;
};

// A static pod whose mirror the agent keeps in the API.
struct MirrorPod {
  std::string namespace_, name, hash;
  std::string object;  // the manifest's pod as JSON, without status
};

class ClusterSync {
 public:
  // Called on the loop with every API pod bound to the node, mirror pods
  // excluded; a burst of changes is one call.
  using PodsChanged = std::function<void(std::map<std::string, ApiPod>)>;

  // The pod watch runs on `net`, which must outlive this.
  static Result<std::unique_ptr<ClusterSync>> start(const AgentConfig& config,
                                                    const apiclient::ClusterAccess& access,
                                                    EventLoop& loop, apiclient::ApiLoop& net,
                                                    NodeFacts facts, PodsChanged changed);
  ~ClusterSync();

  // From the loop. `status` is a v1.PodStatus; static pods go to their mirror.
  void podStatus(const std::string& uid, const std::string& namespace_, const std::string& name,
                 const std::string& status, bool is_static);
  // From the loop: the pod terminated. Its last status is sent, then the final
  // DELETE (grace 0, uid precondition); `done` runs on the loop afterwards.
  void finalDelete(const std::string& uid, const std::string& namespace_, const std::string& name,
                   std::function<void()> done);
  // From the loop: the static pods now wanted, for their mirror pods.
  void setStaticPods(std::vector<MirrorPod> pods);
  // From any thread: an Event to record (kept at most 1000 while the API is away).
  void event(EventRecord e);

  apiclient::ApiClient& client() { return *client_; }

 private:
  ClusterSync(AgentConfig config, NodeFacts facts)
      : config_(std::move(config)), facts_(std::move(facts)) {}
  void heartbeat();
  bool registerNode();
  EventRecord startingEvent() const;
  void renewLease();
  void reportNodeStatus(bool force);
  void writer();
  void eventWriter();
  bool writeStatus(const std::string& uid);
  bool syncMirrors();
  void onPodEvent(const apiclient::ObjectEvent& e);
  bool sleep(std::chrono::milliseconds d);

  AgentConfig config_;
  NodeFacts facts_;
  std::unique_ptr<apiclient::ApiClient> client_;
  std::unique_ptr<LoopQueue> to_loop_;
  std::unique_ptr<apiclient::Reflector> reflector_;
  PodsChanged changed_;
  std::thread heartbeat_thread_, writer_thread_, event_thread_;
  static constexpr size_t kMaxQueuedEvents = 1000;  // while the API is away

  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  // Guarded by mu_:
  std::string node_uid_, lease_json_;
  std::map<std::string, ApiPod> api_pods_;              // by uid
  std::map<std::string, std::string> api_status_;       // uid -> the API's {"status":...}
  std::map<std::string, std::string> pod_fingerprint_;  // uid -> what its Pod was decoded from
  std::map<std::string, std::string> mirror_uid_;       // "ns/name" -> uid of the mirror
  std::map<std::string, std::string> mirror_deletes_;   // mirrors someone deleted: "ns/name" -> uid
  struct PendingStatus {
    std::string namespace_, name, status;
    bool is_static = false;
  };
  std::map<std::string, PendingStatus> dirty_;  // uid -> latest status to send
  // Static pods: "ns/name" -> (pod uid, latest status), for a mirror made anew.
  std::map<std::string, std::pair<std::string, PendingStatus>> static_status_;
  struct Deletion {
    std::string uid, namespace_, name;
    std::function<void()> done;
  };
  std::deque<Deletion> deletions_;
  std::vector<MirrorPod> static_pods_;
  std::deque<EventRecord> events_;
  std::unique_ptr<EventRecorder> recorder_;  // the event thread's
  bool mirrors_dirty_ = false;
  bool pods_posted_ = false;  // the loop has a call to changed_ coming
  std::string last_node_fingerprint_;
  std::chrono::steady_clock::time_point last_node_report_;
  std::map<std::string, std::string> node_transitions_;
};

}  // namespace kernelet::agent
