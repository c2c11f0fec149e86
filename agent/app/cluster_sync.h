#pragma once
// The agent's side of a cluster (`kernelet run --kubeconfig`): the parts that
// talk to the API server, off the event loop, owned together and stopped in
// order. Each lives in the folder of its concern:
//   - node/node_heartbeat: registers the Node, renews the Lease, reports the
//     node status;
//   - sources/api_pods: the watch on the pods bound to this node, whose
//     changes reach the loop as snapshots;
//   - status/status_writer: pod status patches, the final DELETE of pods that
//     finished terminating, and (on the same thread) the mirror pods of
//     sources/mirror_pods;
//   - events/event_writer: Events, with the kubelet's aggregation of repeats.
// The API server being away stops none of the pods: writes wait and retry.

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "agent/config/config.h"
#include "agent/events/event_writer.h"
#include "agent/node/node_heartbeat.h"
#include "agent/node/node_status.h"
#include "agent/sources/api_pods.h"
#include "agent/sources/mirror_pods.h"
#include "agent/status/status_writer.h"
#include "apiclient/api_client.h"
#include "apiclient/kubeconfig.h"
#include "sys/event_loop.h"
#include "sys/loop_queue.h"

namespace kernelet::agent {

class ClusterSync {
 public:
  using PodsChanged = ApiPodSource::PodsChanged;

  // The pod watch runs on `net`, which must outlive this. `synced` (may be
  // empty) runs on the loop after each complete list of this node's pods.
  static Result<std::unique_ptr<ClusterSync>> start(const AgentConfig& config,
                                                    const apiclient::ClusterAccess& access,
                                                    EventLoop& loop, apiclient::ApiLoop& net,
                                                    NodeFacts facts, PodsChanged changed,
                                                    std::function<void()> synced = {});
  ~ClusterSync();

  // From the loop. `status` is a v1.PodStatus; static pods go to their mirror.
  void podStatus(const std::string& uid, const std::string& namespace_, const std::string& name,
                 const std::string& status, bool is_static) {
    status_->podStatus(uid, namespace_, name, status, is_static);
  }
  // From the loop: the pod terminated. Its last status is sent, then the final
  // DELETE (grace 0, uid precondition); `done` runs on the loop afterwards.
  void finalDelete(const std::string& uid, const std::string& namespace_, const std::string& name,
                   std::function<void()> done) {
    status_->finalDelete(uid, namespace_, name, std::move(done));
  }
  // From the loop: the static pods now wanted, for their mirror pods.
  void setStaticPods(std::vector<MirrorPod> pods);
  // From any thread: an Event to record (kept at most 1000 while the API is away).
  void event(EventRecord e) { events_->record(std::move(e)); }

  apiclient::ApiClient& client() { return *client_; }

 private:
  ClusterSync() = default;

  // In the order they are made; the destructor takes them apart the other way.
  std::unique_ptr<apiclient::ApiClient> client_;
  std::unique_ptr<LoopQueue> to_loop_;
  std::unique_ptr<EventWriter> events_;
  std::unique_ptr<MirrorPods> mirrors_;
  std::unique_ptr<StatusWriter> status_;
  std::unique_ptr<NodeHeartbeat> heartbeat_;
  std::unique_ptr<ApiPodSource> pods_;
};

}  // namespace kernelet::agent
