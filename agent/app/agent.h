#pragma once
// The standalone agent (`kernelet run`): one event loop that watches the pod
// sources, keeps a PodWorker per desired pod, and writes each pod's status to
// ROOT/pods/<uid>/status.json for `kernelet pods`. SIGTERM or SIGINT makes it
// exit and leave every pod running, for the next agent to adopt (the kubelet's
// behaviour under a service manager); with --stop-pods-on-exit it stops every
// pod gracefully and exits instead, and a second signal kills them at once.
// Pods a previous agent left are adopted by the workers of the pods still
// wanted; the others are stopped once every source has told its pods.

#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>

#include "agent/app/cluster_sync.h"
#include "agent/app/last_status.h"
#include "agent/app/sd_notify.h"
#include "agent/config/config.h"
#include "agent/eviction/eviction_manager.h"
#include "agent/gc/gc_manager.h"
#include "agent/lifecycle/pod_worker.h"
#include "agent/node/shutdown_manager.h"
#include "agent/runtime/holder_keeper.h"
#include "agent/runtime/image_puller.h"
#include "agent/runtime/kernel_runtime.h"
#include "agent/server/run_endpoint.h"
#include "agent/server/server.h"
#include "agent/sources/manifest_source.h"
#include "agent/sources/object_cache.h"
#include "agent/sources/service_cache.h"
#include "agent/stats/cpu_sampler.h"
#include "agent/stats/fs_usage.h"
#include "agent/stats/summary.h"
#include "agent/status/snapshot.h"
#include "agent/status/status_files.h"
#include "agent/streams/pod_access.h"
#include "images/image_store.h"
#include "netns/dial.h"
#include "netns/netns.h"
#include "sys/event_loop.h"
#include "sys/loop_queue.h"
#include "sys/timer_queue.h"
#include "sys/unique_fd.h"

namespace kernelet::agent {

class Agent {
 public:
  // Checks the node (cgroup v2 controllers, or --limits-unenforced with a
  // warning), removes what a dead predecessor left, opens the image store and
  // the pod network, and loads the manifests. Nothing runs until run().
  static Result<std::unique_ptr<Agent>> create(AgentConfig config);
  ~Agent();

  // Until a stop signal, and (--stop-pods-on-exit) every pod has terminated.
  Result<void> run();

  // The pods as of the last loop turn, for readers on any thread.
  const SnapshotPublisher& snapshots() const { return snapshots_; }

  // Node-level reclaim the eviction manager calls, on the loop, before it
  // evicts pods for a disk signal (nodefs.* or imagefs.*, named): unused
  // images and dead containers go first, as with the kubelet. Unset: none.
  void setNodeReclaim(std::function<void(const std::string& signal)> reclaim) {
    node_reclaim_ = std::move(reclaim);
  }

 private:
  Agent() = default;
  void reconcile();
  void publishStaticPods(const std::map<std::string, StaticPod>& statics);
  void writeStatus(const std::string& uid);
  void removePod(const std::string& uid);
  // Watches and tokens only for what the pods still refer to.
  void retainObjects();
  void onSignal();
  // The node server (:10250), once the agent's parts exist; in cluster mode
  // with `access` for its TokenReviews and SubjectAccessReviews. Standalone
  // it runs only with a client CA. Sets ctx_'s bound port.
  Result<void> startServer(const apiclient::ClusterAccess* access);
  // The node server's /run, on the loop: the command in a running container.
  void runInPod(const server::RunRequest& r, const server::Responder& respond);
  // /exec, /attach and /portForward (agent_streams.cc): the endpoints, and what they
  // ask of the loop.
  void addStreamEndpoints(server::Endpoints& endpoints);
  PodWorker* findWorker(const streams::PodRef& ref);
  void execInPod(streams::ExecRequest& r, streams::ExecHooks hooks);
  void attachInPod(streams::AttachRequest& r, streams::AttachHooks hooks);
  void dialInPod(const streams::PodRef& ref, uint16_t port,
                 std::function<void(Result<UniqueFd>)> done);
  // Stops the pod (a terminate within `grace`, else its own) and removes its
  // worker once nothing of it is left; a pod the API deletes then gets its
  // final DELETE.
  void terminateWorker(const std::string& uid, PodWorker& w, std::optional<int64_t> grace,
                       bool final_delete);

  // Live restore (issue #16).
  // The signal's answer without --stop-pods-on-exit: the agent exits after
  // this turn, every pod left running.
  void leavePodsRunning(int signo);
  // Every source has given its first complete set of pods. Until then a pod
  // no source gives may be one a source has not told yet (an API server that
  // is away must not make the agent stop pods).
  bool sourcesSynced() const;
  // Stops the previous agent's pods that no source wants (and, when stopping,
  // all of them); each is stopped once.
  void stopLeftovers();
  // READY=1 to the service manager, once every source delivered (see .cc).
  void notifyReady();
  // A node shutdown (ShutdownManager): terminates the active pods of one
  // group (critical or not), each with the shorter of its grace and
  // `grace_seconds`, marks them Failed with the kubelet's reason, and calls
  // `done` on the loop once all of them terminated. They stay (terminated)
  // until the node goes down: their last status is what the API keeps.
  void shutDownNode(bool critical, int64_t grace_seconds, std::function<void()> done);

  // Garbage collection (agent_gc.cc): the collector and what it asks of the agent.
  void startGarbageCollection();
  std::vector<std::string> imagesInUse() const;
  std::vector<gc::ContainerRuns> containerRuns() const;

  // The eviction manager (agent_eviction.cc): started in create(); the pods'
  // usage from their specs and Summary stats; an eviction (the pod stops
  // within `grace`, Failed with reason Evicted and `message`); what the
  // node's decisions (shutdown, eviction) change in a pod's status.
  void startEviction(const std::string& cgroup_mount);
  std::vector<eviction::PodUsage> podUsages();
  bool evictPod(const std::string& uid, int64_t grace, const std::string& message);
  void markNodeDecisions(const std::string& uid, PodStatus& status) const;
  // Under pressure, the kubelet's eviction admission: why `pod` is refused.
  std::optional<std::string> pressureRejection(const Pod& pod) const;

  // In cluster mode, READY=1 waits at most this long for the API server's
  // pods: the first list usually answers in well under a second, and a node
  // whose API server is away still runs its adopted and static pods.
  static constexpr std::chrono::seconds kApiReadyWait{10};

  NodeContext ctx_;
  std::unique_ptr<EventLoop> loop_;
  std::unique_ptr<TimerQueue> timers_;
  std::unique_ptr<ServiceNotifier> service_;   // sd_notify: READY, WATCHDOG, STOPPING
  std::unique_ptr<ShutdownManager> shutdown_;  // with --shutdown-grace-period: logind's lock
  std::unique_ptr<StatusFiles> status_files_;  // ROOT/pods/<uid>/status.json, batched
  std::unique_ptr<images::ImageStore> images_;
  std::unique_ptr<ImagePuller> puller_;
  std::unique_ptr<netns::Network> network_;
  std::unique_ptr<runtime::HolderKeeper> keeper_;    // null: no live restore
  std::unique_ptr<runtime::KernelRuntime> runtime_;  // uses the five above
  std::unique_ptr<gc::GarbageCollector> gc_;         // images and dead containers' logs
  std::unique_ptr<ManifestSource> manifests_;
  std::unique_ptr<apiclient::ApiLoop> net_;  // with --kubeconfig: the network thread
  std::unique_ptr<ClusterSync> cluster_;     // with --kubeconfig
  std::unique_ptr<ObjectCache> objects_;     // with --kubeconfig: ConfigMaps, Secrets, tokens
  std::unique_ptr<ServiceCache> services_;   // with --kubeconfig: the Services, for env
  std::map<std::string, ApiPod> api_pods_;   // the API's pods for this node, by uid
  // The static pods last given to ClusterSync, uid -> hash (the hash covers the
  // whole manifest): their mirror pods are built again only when this changes.
  std::optional<std::map<std::string, std::string>> published_statics_;
  std::map<std::string, std::shared_ptr<PodWorker>> workers_;  // by uid
  std::set<std::string> terminating_;                          // uids being stopped
  // Running pods whose update set a refused field: uid -> the message said.
  std::map<std::string, std::string> refused_updates_;
  SnapshotPublisher snapshots_;  // staged by writeStatus, published once per loop turn
  UniqueFd signals_;
  bool stopping_ = false;
  // Live restore: what the previous agent last wrote of each pod's status,
  // taken by the pod's worker when it adopts it.
  std::map<std::string, PodStatus> last_statuses_;
  bool api_synced_ = false;                   // the API's first pod list arrived
  bool leaving_ = false;                      // exit now, leaving every pod running
  std::set<std::string> leftovers_stopping_;  // uids of a previous agent's pods being stopped
  // Pods stopped for a node shutdown, uid -> when: their status says so.
  std::map<std::string, std::string> shut_down_;
  // Pods evicted, uid -> the message and when: their status says so.
  struct Evicted {
    std::string message, time;
  };
  std::map<std::string, Evicted> evicted_;
  std::unique_ptr<stats::SummarySources> eviction_sources_;
  std::unique_ptr<stats::CpuSampler> eviction_cpu_;
  std::unique_ptr<stats::FsUsageCache> eviction_disk_;  // its thread reads snapshots_
  std::unique_ptr<eviction::EvictionManager> eviction_;
  std::function<void(const std::string& signal)> node_reclaim_;
  bool api_delivered_ = false;  // the API's pods arrived once (or kApiReadyWait passed)
  // The pods' source documents by uid (static manifests and API objects), for /pods.
  std::map<std::string, std::shared_ptr<const std::string>> source_json_;
  // The node server and, in cluster mode, its own API client and reviewers
  // (on the network thread). Stopped first: its handlers read the above.
  // The node server's requests for the loop (/run), and the commands they
  // started that still run.
  std::unique_ptr<LoopQueue> server_queue_;
  std::unique_ptr<apiclient::ApiClient> review_client_;
  std::unique_ptr<server::TokenReviewer> token_reviewer_;
  std::unique_ptr<server::AccessReviewer> access_reviewer_;
  // Port-forward's connections into pods' networks, made off the loop.
  std::unique_ptr<netns::Dialer> dialer_;
  std::unique_ptr<server::NodeServer> server_;
  int server_port_ = 0;  // bound; 0: no server
};

}  // namespace kernelet::agent
