#pragma once
// One pod's life on the node, driven by events on the agent's loop (container
// exits through pidfds, log pipes, timers), never by polling:
//   sandbox (cgroup, namespaces, network, volumes)
//   -> init containers one at a time (sidecars, restartPolicy Always, are
//      started and kept running before the next one)
//   -> the regular containers
//   -> restarts per restartPolicy with the CrashLoopBackOff back-off
//   -> graceful termination: stop signal, grace period, SIGKILL, then the
//      sidecars, then the sandbox.
// Each change recomputes the PodStatus and hands it to the agent.

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "agent/config/config.h"
#include "agent/lifecycle/admission.h"
#include "agent/lifecycle/backoff.h"
#include "agent/model/pod.h"
#include "agent/prober/prober.h"
#include "agent/runtime/image_puller.h"
#include "agent/runtime/pod_sandbox.h"
#include "agent/runtime/volumes.h"
#include "agent/sources/pod_objects.h"
#include "agent/status/pod_status.h"
#include "images/image_config.h"
#include "images/image_store.h"
#include "images/rootfs.h"
#include "isolation/container_exit.h"
#include "isolation/cri_log.h"
#include "sys/event_loop.h"
#include "sys/timer_queue.h"

namespace kernelet::agent {

// What every worker shares: the agent owns it and outlives the workers.
struct NodeContext {
  AgentConfig config;
  EventLoop* loop = nullptr;
  TimerQueue* timers = nullptr;
  images::ImageStore* images = nullptr;
  ImagePuller* puller = nullptr;
  SandboxEnv sandbox;
  NodeResources node;
  std::string node_ip;
  // ConfigMaps, Secrets and tokens from the API server; null when there is none.
  PodObjects* objects = nullptr;
  // Called after a pod's status changed.
  std::function<void(const std::string& uid)> status_changed;
  // A Kubernetes Event about a pod (or one of its containers): Normal or Warning.
  std::function<void(const Pod& pod, const std::string& container, const std::string& type,
                     const std::string& reason, const std::string& message)>
      event;
  // A Kubernetes Event about the node itself (OOMKilling).
  std::function<void(const std::string& type, const std::string& reason,
                     const std::string& message)>
      node_event;
};

class PodWorker : public std::enable_shared_from_this<PodWorker> {
 public:
  PodWorker(NodeContext& ctx, Pod pod, std::string hash);
  ~PodWorker();

  // Sets the sandbox up and starts the first containers.
  void start();
  // Admission failed: the pod ends Failed with the kubelet's reason, nothing runs.
  void reject(const std::string& reason, const std::string& message);
  // Stops every container within the grace period (the pod's unless given),
  // then removes the sandbox; `done` runs once nothing of the pod is left.
  void terminate(std::function<void()> done, std::optional<int64_t> grace_seconds = {});
  // The API changed what it lets change in a running pod: container images
  // (a running container with a new image is stopped and started again, as
  // the kubelet does when a container's definition changed), labels and
  // annotations (downwardAPI files follow). Same containers, same order.
  void update(const Pod& pod);
  // A ConfigMap, Secret or token changed or arrived: a pod waiting for its
  // volumes tries again, one running gets its volumes rewritten, containers
  // held by CreateContainerConfigError are retried now.
  void objectsChanged();

  const Pod& pod() const { return pod_; }
  const std::string& hash() const { return hash_; }
  const PodStatus& status() const { return status_; }
  const std::string& created() const { return created_; }
  // Admitted and not yet terminated: counts against allocatable.
  bool active() const { return !rejected_ && !done_; }

 private:
  struct Instance;
  struct Ctr {
    const Container* spec = nullptr;
    bool init = false, sidecar = false;
    ContainerStatus status;
    std::unique_ptr<Instance> running;  // the live run, if any
    bool creating = false;              // image pull or start in progress
    bool ever_started = false;
    TimerQueue::Id restart_timer = 0;  // a restart or retried creation is due
    std::chrono::steady_clock::time_point last_started;
    std::optional<images::ImageRecord> image;
    images::ImageConfig image_config;
    int stop_signal = 15;           // SIGTERM, or the image's StopSignal
    bool replace = false;           // stopping for a new image: start again once exited
    TimerQueue::Id stop_timer = 0;  // SIGKILL when its grace runs out
    struct ProbeState {
      enum class Type { kStartup, kReadiness, kLiveness } type;
      Probe spec;
      int successes = 0, failures = 0;
      TimerQueue::Id timer = 0;
      std::unique_ptr<ProbeRun> run;
    };
    std::vector<ProbeState> probes;  // of the running instance
  };

  // Decides what to start or restart next (the kubelet's computePodActions);
  // re-entrant calls from a synchronous start are folded into one more round.
  void sync();
  void syncOnce();
  // More containers wait to start than one turn takes: sync again on the next.
  void paceStarts();
  void startContainer(Ctr& c);
  void runContainer(Ctr& c);
  void ensureImage(Ctr& c);
  void onExit(Ctr& c, Result<isolation::ContainerExit> exit);
  // An exited container: restart after the back-off, CrashLoopBackOff meanwhile.
  void scheduleRestart(Ctr& c);
  void restartNow(Ctr& c);
  // A container that could not be created (image, config): try again later,
  // keeping its waiting reason.
  void retryLater(Ctr& c);
  void armRetry(Ctr& c, std::chrono::seconds delay, bool restart);
  void setWaiting(Ctr& c, const std::string& reason, const std::string& message);
  bool shouldRestart(const Ctr& c) const;
  void retryStart(const std::string& step, const std::string& what, const Error& e);
  void finishPod();
  void killAll();
  void stopContainers(bool sidecars);
  void maybeCleanUp();
  void publish();
  // publish() on the next turn of the loop, once for whatever changed by then.
  void publishSoon();
  // Probes of a container that just started: startup first, then readiness
  // and liveness; each outcome moves started/ready or kills the container.
  void startProbes(Ctr& c);
  void scheduleProbes(Ctr& c);
  void scheduleProbe(Ctr& c, size_t i, std::chrono::steady_clock::duration delay);
  void runProbe(Ctr& c, size_t i);
  void onProbe(Ctr& c, size_t i, const ProbeOutcome& o);
  void stopProbes(Ctr& c);
  // Stops a running container with its grace period (SIGKILL after it);
  // `replace` starts it again once it exited, whatever the restart policy.
  void stopContainer(Ctr& c, const std::string& why, bool replace);
  // The API objects this pod may use: none for static pods, as with the kubelet.
  PodObjects* objects() const;
  PodRuntimeInfo runtimeInfo() const;
  std::string logDir(const Ctr& c) const;
  void emit(const Ctr* c, const std::string& type, const std::string& reason,
            const std::string& message);

  NodeContext& ctx_;
  Pod pod_;
  std::string hash_, created_;
  QosClass qos_;
  PodStatus status_;
  std::optional<PodSandbox> sandbox_;
  std::optional<PodVolumes> volumes_;
  std::vector<Ctr> ctrs_;  // init containers first, in order, then the regular ones
  Backoff backoff_;
  bool rejected_ = false, finished_ = false, terminating_ = false, done_ = false;
  bool syncing_ = false, resync_ = false;
  bool waiting_for_objects_ = false;  // start() waits for ConfigMaps, Secrets or tokens
  TimerQueue::Id kill_timer_ = 0, retry_timer_ = 0;
  // Containers started in this turn of the loop: a pod of hundreds starts
  // them kStartsPerTurn at a time, so that a SIGTERM or another pod's exit is
  // not kept waiting behind all of them.
  static constexpr int kStartsPerTurn = 8;
  int starts_this_turn_ = 0;
  TimerQueue::Id pace_timer_ = 0;
  TimerQueue::Id publish_timer_ = 0;
  std::vector<std::function<void()>> on_done_;
};

}  // namespace kernelet::agent
