#pragma once
// One pod's life on the node, driven by events on the agent's loop (container
// exits, image pulls, probes, timers), never by polling, and doing everything
// to the kernel through the runtime seam (agent/runtime/runtime.h):
//   sandbox (cgroup, namespaces, network, volumes)
//   -> init containers one at a time (sidecars, restartPolicy Always, are
//      started and kept running before the next one)
//   -> the regular containers
//   -> restarts per restartPolicy with the CrashLoopBackOff back-off
//   -> graceful termination: stop signal, grace period, SIGKILL, then the
//      sidecars, then the sandbox.
// The pod moves Syncing -> (Completed) -> Terminating -> Terminated, or is
// Rejected; each container Waiting -> Creating -> Running -> Stopping ->
// Exited/BackOff (states.h). Every step is idempotent: sync() looks at the
// states and does what is due, so a step that failed is retried by the next.
// Each change recomputes the PodStatus and hands it to the agent.
//
// The files: pod_worker.cc (the pod: sandbox, updates, status), containers.cc
// (starts and restarts), termination.cc (stops and cleanup), probes.cc,
// hooks.cc (postStart and preStop).

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "agent/config/config.h"
#include "agent/lifecycle/admission.h"
#include "agent/lifecycle/backoff.h"
#include "agent/lifecycle/states.h"
#include "agent/model/pod.h"
#include "agent/prober/prober.h"
#include "agent/runtime/runtime.h"
#include "agent/sources/pod_objects.h"
#include "agent/status/pod_status.h"
#include "sys/event_loop.h"
#include "sys/timer_queue.h"

namespace kernelet::agent {

// What every worker shares: the agent owns it and outlives the workers.
struct NodeContext {
  AgentConfig config;
  EventLoop* loop = nullptr;
  TimerQueue* timers = nullptr;
  runtime::PodRuntime* runtime = nullptr;
  NodeResources node;
  std::string node_ip;
  // ConfigMaps, Secrets and tokens from the API server; null when there is none.
  PodObjects* objects = nullptr;
  // The cluster's Services (the containers' service variables); null when
  // there is no API server.
  const ServiceLister* services = nullptr;
  // How long one of the pod's seconds lasts (back-offs, grace periods, probe
  // periods and delays): a second, except in tests that must not sleep.
  std::chrono::steady_clock::duration second = std::chrono::seconds(1);
  // The agent is exiting and leaving its pods running (runtime leaveRunning):
  // a worker destroyed now releases its pod, it does not remove the sandbox.
  bool leaving = false;
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
  // The pod's status as the previous agent last wrote it (ROOT/pods/UID/status.json),
  // read before this agent wrote any; null or nullopt when there is none. An
  // adopted container keeps its `ready` from it until its readiness probe says
  // otherwise, so a restart of the agent does not flap the pod's Ready.
  std::function<std::optional<PodStatus>(const std::string& uid)> last_status;
  // The other admitted pods, with what is allocated to them: what an
  // in-place resize is admitted beside (pod_resize.cc). Null: none.
  std::function<std::vector<const Pod*>(const std::string& uid)> admitted_pods;
};

// The kubelet's words for a pod past its activeDeadlineSeconds.
inline constexpr const char* kDeadlineExceededMessage =
    "Pod was active on the node longer than the specified deadline";

class PodWorker : public std::enable_shared_from_this<PodWorker> {
 public:
  PodWorker(NodeContext& ctx, Pod pod, std::string hash);
  ~PodWorker();

  // Sets the sandbox up and starts the first containers; what a previous
  // agent left of the pod (runtime adopt()) is taken over instead (adoption.cc).
  void start();
  // Admission failed: the pod ends Failed with the kubelet's reason, nothing runs.
  void reject(const std::string& reason, const std::string& message);
  // Stops every container within the grace period (the pod's unless given,
  // and never past the SIGKILL time a previous agent set for an adopted pod),
  // then removes the sandbox; `done` runs once nothing of the pod is left.
  void terminate(std::function<void()> done, std::optional<int64_t> grace_seconds = {});
  // The API changed what it lets change in a running pod: container images
  // (a running container with a new image is stopped and started again, as
  // the kubelet does when a container's definition changed), labels and
  // annotations (downwardAPI files follow), and ephemeral containers (new
  // ones are started; the others are left as they are). Same containers,
  // same order.
  // Container cpu and memory requests and limits are not taken from `pod`
  // as they are: they are a resize (pod_resize.cc), admitted against the
  // node and then applied, while pod() keeps what is allocated.
  void update(const Pod& pod);
  // In-place resize (pod_resize.cc): whether `wanted` asks other cpu or
  // memory of a container than the API asked last (update() takes it).
  bool resourcesChanged(const Pod& wanted) const;
  // Another pod ended: a resize Deferred for lack of room is tried again.
  void retryResize();
  // A ConfigMap, Secret or token changed or arrived: a pod waiting for its
  // volumes tries again, one running gets its volumes rewritten, containers
  // held by CreateContainerConfigError are retried now.
  void objectsChanged();
  // `argv` in the running container `name` (the node server's /run): exit 0
  // or not, and what it printed (stdout and stderr, at most `max_output`
  // bytes), through `done` on the loop within `timeout`. An error: no such
  // container, or it is not running. Commands still running when the worker
  // goes are killed, and their `done` never runs.
  void runCommand(const std::string& name, const std::vector<std::string>& argv,
                  std::chrono::seconds timeout, size_t max_output,
                  std::function<void(Result<ProbeOutcome>)> done);

  // kubectl exec (agent/streams): `argv` in the running container `name`
  // with `io` (its stdio, a terminal, `io.started`). `exited` runs once on
  // the loop with its status, or the error that ended it (its setup failed,
  // the worker went: the process is killed then). An error: no such
  // container, it is not running, or nothing could be started; neither
  // callback runs then.
  Result<void> exec(const std::string& name, const std::vector<std::string>& argv,
                    const runtime::ExecIo& io, std::function<void(Result<int>)> exited);
  // kubectl attach (agent/streams): joins the stdio the running container
  // `name` started with (runtime::PodRuntime::attach); `ended` runs once on
  // the loop when its run ended (or the worker went). An error, as the user
  // sees it: no such container, not running, no stdin or no terminal to join.
  struct Attachment {
    runtime::ContainerHandle handle = 0;  // for runtime detach
    runtime::AttachedIo io;
  };
  Result<Attachment> attach(const std::string& name, const runtime::AttachIo& io, bool tty,
                            std::function<void()> ended);
  // Where the pod's network is (port-forward dials there): empty for
  // hostNetwork pods; nullopt while there is no sandbox.
  std::optional<std::string> netnsPath() const {
    return sandbox_ ? std::optional(sandbox_->netns_path) : std::nullopt;
  }

  const Pod& pod() const { return pod_; }
  const std::string& hash() const { return hash_; }
  const PodStatus& status() const { return status_; }
  const std::string& created() const { return created_; }
  PodState state() const { return state_; }
  // Admitted and not yet terminated: counts against allocatable.
  bool active() const { return state_ != PodState::kRejected && state_ != PodState::kTerminated; }

 private:
  using Clock = std::chrono::steady_clock;
  struct ProbeState {
    enum class Type { kStartup, kReadiness, kLiveness } type;
    Probe spec;
    int successes = 0, failures = 0;
    TimerQueue::Id timer = 0;
    std::unique_ptr<ProbeRun> run;
  };
  struct Ctr {
    const Container* spec = nullptr;
    bool init = false, sidecar = false;
    // spec.ephemeralContainers: started once, never restarted, no part of the
    // pod's phase; `target` (targetContainerName) lends it its PID namespace.
    bool ephemeral = false;
    std::string target;
    CtrState state = CtrState::kWaiting;
    std::string state_reason;  // why it is in `state`: logged with each transition
    ContainerStatus status;
    runtime::ContainerHandle handle = 0;  // the live run: Running or Stopping
    bool started_once = false;            // restartCount counts the starts after the first
    // A restart is under way: restartCount goes up once it ran (as the
    // kubelet counts container instances), not while its start is pending, so
    // the status never shows the new count beside the old back-off.
    bool restarting = false;
    Clock::time_point last_started;
    Clock::time_point pull_started;  // the last Pulling event
    std::optional<runtime::ImageInfo> image;
    int stop_signal = 15;  // SIGTERM, or the image's StopSignal
    // Stopping for a new image: started again once exited, whatever the policy.
    bool replace = false;
    // What its running instance's cgroup has (in-place resize): what it
    // started with, then what resizes applied; unset when not running.
    std::optional<ContainerResources> actual;
    // Adopted after exiting while no agent watched: when it exited, so its
    // first back-off counts from then (used once).
    std::optional<Clock::time_point> exited_at;
    TimerQueue::Id timer = 0;        // BackOff: the restart or retried creation
    TimerQueue::Id stop_timer = 0;   // Stopping: SIGKILL when its grace runs out
    std::vector<ProbeState> probes;  // of the running instance
    // Lifecycle hooks (hooks.cc). While `post_start` holds, the container
    // runs but its status stays Waiting (ContainerCreating) and the pod's
    // other starts wait, as in the kubelet's SyncPod: from the start until
    // its postStart succeeded, or until it exited after one that failed.
    bool post_start = false;
    std::string started_at;          // of the run whose postStart is running
    std::string post_start_error;    // the failed postStart's message, for the waiting state
    std::unique_ptr<ProbeRun> hook;  // an exec or httpGet action running
    TimerQueue::Id hook_timer = 0;   // a sleep action, or a tcpSocket's failure
    // preStop running: when it began, and the grace it was given.
    std::optional<Clock::time_point> pre_stop_since;
    int64_t pre_stop_grace = 0;
    bool pre_stop_owns_kill = false;  // its SIGKILL is its own timer's, not the pod's
  };

  // The one place states change.
  void transition(PodState to, std::string_view why);
  void transition(Ctr& c, CtrState to, std::string_view why);
  bool stopping() const {
    return state_ == PodState::kCompleted || state_ == PodState::kTerminating;
  }
  bool live(const Ctr& c) const {
    return c.state == CtrState::kRunning || c.state == CtrState::kStopping;
  }

  // pod_worker.cc
  // ConfigMaps, Secrets or tokens the pod refers to have not all arrived:
  // objectsChanged() starts it again once they have.
  bool waitingForObjects();
  void retryStart(const std::string& step, const std::string& what, const Error& e);
  PodObjects* objects() const;
  PodRuntimeInfo runtimeInfo() const;
  std::string who() const { return pod_.namespace_ + "/" + pod_.name; }
  void emit(const Ctr* c, const std::string& type, const std::string& reason,
            const std::string& message);
  void publish();
  // publish() on the next turn of the loop, once for whatever changed by then.
  void publishSoon();
  // A timer in the pod's seconds, calling `fn` on this worker if it still exists.
  TimerQueue::Id after(double seconds, std::function<void(PodWorker&)> fn);
  // The restart back-off of `key` for a run that started at `started`.
  std::chrono::seconds backoff(const std::string& key, Clock::time_point started);

  // pod_resize.cc (the kubelet's allocation manager and resize actuation)
  // The resources per container pod_ has now (what is allocated).
  std::map<std::string, ContainerResources> allocatedResources() const;
  // After pod_ took a new spec: what it asks is remembered as wanted, and
  // its containers' cpu and memory are set back to `allocated`.
  void keepAllocated(const std::map<std::string, ContainerResources>& allocated);
  // Admits what the API wants (Deferred, Infeasible) and applies what is allocated.
  void resize();
  void actuateResize();
  // The pod the pod cgroup's limits are set from: each container as its
  // cgroup has it, a container restarting for a resize with the larger of
  // what its old process has and what it restarts with.
  Pod podAsApplied() const;
  // Sets the pod cgroup's limits from `pod` unless they are those already
  // set (pod_cgroup_); false, with resize_error_, if that failed.
  bool applyPodCgroup(const Pod& pod);
  void saveAllocation();
  // Reads the checkpoint a previous agent left (in the constructor).
  void loadAllocation();
  // The allocatedResources and resources of the status, and the resize conditions.
  void resizeStatus(PodStatus& s) const;

  // containers.cc: decides what to start or restart next (the kubelet's
  // computePodActions); re-entrant calls are folded into one more round.
  void sync();
  void syncOnce();
  bool syncInit();
  // Ephemeral containers not started yet: started whatever the init
  // containers are doing, as the kubelet starts them first.
  void syncEphemeral();
  void addCtr(const Container& spec, bool init, bool ephemeral);
  // `pod`'s ephemeral containers as this worker runs them: those it has
  // keep their spec (the API never changes nor removes one), new ones follow.
  std::vector<EphemeralContainer> mergeEphemeral(const Pod& pod) const;
  // The running target of an ephemeral container, or null.
  const Ctr* targetOf(const Ctr& c) const;
  // More containers wait to start than one turn takes: sync again on the next.
  void paceStarts();
  void startContainer(Ctr& c);
  // image_pulls.cc: the pod's pull secrets' credentials for `image` (a
  // FailedToRetrieveImagePullSecret event for those it cannot have; an error
  // for one that is malformed), and what a pull's outcome does to the container.
  Result<std::vector<images::RegistryCredentials>> pullCredentials(const std::string& image);
  void onImage(size_t index, const runtime::ImageOutcome& o, bool async);
  void runContainer(Ctr& c);
  void onStarted(size_t index, runtime::StartResult r, bool async);
  void onRunning(Ctr& c, const runtime::StartedContainer& run);
  // A step finished: sync again, now or (`async` false) within the running sync.
  void resyncAfter(bool async);
  void onExit(size_t index, const runtime::ContainerExit& exit);
  // An exited container: restart after the back-off, CrashLoopBackOff meanwhile.
  void scheduleRestart(Ctr& c);
  void restartNow(Ctr& c);
  // A container that could not be created (image, config): try again later,
  // keeping its waiting reason.
  void retryLater(Ctr& c);
  void armRetry(Ctr& c, std::chrono::seconds delay, bool restart);
  void setWaiting(Ctr& c, const std::string& reason, const std::string& message);
  bool shouldRestart(const Ctr& c) const;
  std::string logDir(const Ctr& c) const;
  // containerStatuses[].stopSignal: the spec's name as written (SIGIOT stays
  // SIGIOT), else the name of the signal the runtime chose.
  static std::string effectiveStopSignal(const Ctr& c);
  // containerStatuses[].volumeMounts, from the spec.
  static std::vector<VolumeMountStatus> volumeMountStatuses(const Container& spec);

  // adoption.cc: takes over what adopt() found, instead of a new start.
  void adopt(const runtime::AdoptedPod& a);
  void adoptContainer(Ctr& c, const runtime::AdoptedContainer& a, const ContainerStatus* last);
  void watchRun(Ctr& c);
  // The grace period of a termination, capped by kill_at_; in the pod's seconds.
  int64_t cappedGrace(int64_t grace) const;

  // termination.cc
  // spec.activeDeadlineSeconds (the kubelet's activeDeadlineHandler): a timer
  // at start time + the deadline, set again when an update changes it; when
  // it fires on a pod still syncing, the pod fails with DeadlineExceeded and
  // its containers are stopped as for a completed pod.
  void armDeadline();
  void onDeadline();
  void finishPod();
  void killAll();
  // The pod's SIGKILL time came: every live container is killed but those
  // on the clock of their preStop (the hook, or the grace left after it).
  void killOverdue();
  // What is left of the pod's grace period, in its seconds (0 when none runs).
  int64_t graceLeft() const;
  void stopContainers(bool sidecars);
  // Stops a running container with its grace period (SIGKILL after it);
  // `replace` starts it again once it exited, whatever the restart policy.
  void stopContainer(Ctr& c, const std::string& why, bool replace);
  void maybeCleanUp();
  void onSandboxDestroyed();

  // hooks.cc: lifecycle.postStart and preStop, as the kubelet runs them.
  // `done(worker, container, ok, message)` once on the loop, unless the hook
  // is cancelled first (cancelHook, the container's exit).
  using HookDone = std::function<void(PodWorker&, Ctr&, bool, const std::string&)>;
  void runHook(Ctr& c, const LifecycleHandler& h, HookDone done);
  void cancelHook(Ctr& c);
  void startPostStart(Ctr& c);
  void onPostStart(Ctr& c, bool ok, const std::string& message);
  // Stops a live container already in Stopping: its preStop first (within
  // `grace`, the pod's seconds), then the stop signal with what is left of
  // the grace (at least 2 s after a preStop, as the kubelet gives), SIGKILL
  // after it. Without a preStop: the signal now, and SIGKILL after `grace` on
  // its own timer when `own_kill`, else the pod's.
  void stopGracefully(Ctr& c, int64_t grace, bool own_kill);
  void afterPreStop(Ctr& c);
  void signalStop(Ctr& c);
  // A container's run, for exec probes and hooks (runtime::exec in it).
  ProbeTarget execTarget(const Ctr& c, const char* op);

  // probes.cc: startup first, then readiness and liveness; each outcome moves
  // started/ready or stops the container.
  void startProbes(Ctr& c);
  void scheduleProbes(Ctr& c);
  void scheduleProbe(Ctr& c, size_t i, double seconds);
  void runProbe(Ctr& c, size_t i);
  void onProbe(Ctr& c, size_t i, const ProbeOutcome& o);
  void stopProbes(Ctr& c);

  NodeContext& ctx_;
  Pod pod_;
  std::string hash_, created_;
  QosClass qos_;
  PodState state_ = PodState::kSyncing;
  std::string state_reason_;
  PodStatus status_;
  std::optional<runtime::SandboxInfo> sandbox_;
  bool volumes_ready_ = false;
  bool waiting_for_objects_ = false;  // start() waits for ConfigMaps, Secrets or tokens
  bool adopt_asked_ = false;          // start() asked the runtime for a previous agent's pod
  // An adopted pod the previous agent was terminating: its SIGKILL time, which
  // no later grace period passes.
  std::optional<std::chrono::system_clock::time_point> kill_at_;
  bool destroying_ = false;  // the runtime is removing the sandbox
  std::vector<Ctr> ctrs_;    // init containers first, in order, then the regular ones
  Backoff backoff_;
  bool syncing_ = false, resync_ = false;
  // ensureImage and startContainer may answer before they return: an answer
  // within the call is folded into the sync running, a later one syncs.
  bool in_image_call_ = false, in_start_call_ = false;
  TimerQueue::Id kill_timer_ = 0, retry_timer_ = 0;
  // activeDeadlineSeconds counts from here (the pod's start, in steady time)
  TimerQueue::Id deadline_timer_ = 0;
  std::optional<Clock::time_point> active_since_;
  bool deadline_exceeded_ = false;
  // When kill_timer_ fires (Completed or Terminating): what preStops are given.
  std::optional<Clock::time_point> kill_due_;
  // Containers started in this turn of the loop: a pod of hundreds starts
  // them kStartsPerTurn at a time, so that a SIGTERM or another pod's exit is
  // not kept waiting behind all of them.
  static constexpr int kStartsPerTurn = 8;
  int starts_this_turn_ = 0;
  TimerQueue::Id pace_timer_ = 0;
  TimerQueue::Id publish_timer_ = 0;
  std::vector<std::function<void()>> on_done_;
  // runCommand()'s commands still running, by a number of their own.
  std::map<uint64_t, std::unique_ptr<ProbeRun>> commands_;
  uint64_t next_command_ = 0;
  // exec()'s processes still running, by a number of their own.
  struct ExecRun {
    EventLoop* loop = nullptr;
    std::unique_ptr<runtime::ExecProcess> proc;
    std::function<void(Result<int>)> exited;  // emptied once called
    ~ExecRun();                               // off the loop, kills what still runs, tells `exited`
  };
  std::map<uint64_t, std::unique_ptr<ExecRun>> execs_;
  // Metrics (agent/stats): when this worker first saw the pod, whether its
  // start (first Running) was counted, and what the next sync is in the
  // kubelet's terms (create, update, sync).
  std::chrono::steady_clock::time_point seen_ = std::chrono::steady_clock::now();
  bool start_counted_ = false;
  const char* sync_kind_ = "create";
  // In-place resize (pod_resize.cc). pod_'s containers have what is
  // allocated; this is what the API asked last, by container name.
  std::map<std::string, ContainerResources> wanted_resources_;
  // What a previous agent's checkpoint says each container's cgroup had.
  std::map<std::string, ContainerResources> restored_actuated_;
  // PodResizePending (Deferred, Infeasible) and the PodResizeInProgress
  // Error (a limit not applied), each with its reason and message.
  std::optional<PodCondition> resize_pending_, resize_error_;
  bool resized_ = false;  // a resize was allocated: the checkpoint is kept
  // Each container's resources the pod cgroup's limits were last set from
  // (unset until a resize: what the sandbox was made with, the actuals).
  std::optional<std::map<std::string, ContainerResources>> pod_cgroup_;
  // The pod cgroup keeps room for a restarting container's old process, or
  // a memory limit that could not be lowered yet: it is set again once a
  // container (re)starts.
  bool pod_cgroup_pending_ = false;
};

}  // namespace kernelet::agent
