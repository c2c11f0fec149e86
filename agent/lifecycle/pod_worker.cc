#include "agent/lifecycle/pod_worker.h"

#include <algorithm>
#include <map>

#include "agent/log/log.h"
#include "agent/stats/metrics.h"

namespace kernelet::agent {

using Kind = ContainerState::Kind;

PodWorker::PodWorker(NodeContext& ctx, Pod pod, std::string hash)
    : ctx_(ctx), pod_(std::move(pod)), hash_(std::move(hash)), created_(runtime::nowRfc3339()) {
  keepAllocated({});  // what the API wants is allocated, unless a checkpoint says otherwise
  loadAllocation();
  std::vector<ContainerResources> resources;
  for (const auto* list : {&pod_.init_containers, &pod_.containers}) {
    for (const auto& c : *list) {
      resources.push_back(c.resources);
    }
  }
  qos_ = podQos(resources);
  for (const auto& c : pod_.init_containers) {
    addCtr(c, true, false);
  }
  for (const auto& c : pod_.containers) {
    addCtr(c, false, false);
  }
  for (const auto& c : pod_.ephemeral_containers) {
    addCtr(c, false, true);
  }
}

void PodWorker::addCtr(const Container& spec, bool init, bool ephemeral) {
  Ctr k;
  k.spec = &spec;
  k.init = init;
  k.sidecar = init && spec.restart_policy == "Always";
  k.ephemeral = ephemeral;
  if (ephemeral) {
    k.target = static_cast<const EphemeralContainer&>(spec).target_container_name;
  }
  k.status.name = spec.name;
  k.status.image = spec.image;
  k.status.started = false;
  // The kubelet's default waiting state, ephemeral containers' included.
  bool waits_for_init = init || !pod_.init_containers.empty();
  k.status.state = {.kind = Kind::kWaiting,
                    .reason = waits_for_init ? "PodInitializing" : "ContainerCreating"};
  ctrs_.push_back(std::move(k));
}

std::vector<EphemeralContainer> PodWorker::mergeEphemeral(const Pod& pod) const {
  std::vector<EphemeralContainer> out = pod_.ephemeral_containers;
  for (const auto& e : pod.ephemeral_containers) {
    auto same = [&](const EphemeralContainer& k) { return k.name == e.name; };
    if (std::none_of(out.begin(), out.end(), same)) {
      out.push_back(e);
    }
  }
  return out;
}

PodWorker::~PodWorker() {
  // The agent terminates pods before dropping them; this is the last resort
  // that still leaves nothing behind. (After runtime leaveRunning(), remove()
  // releases a container without killing it: the pod stays for the next agent.)
  for (auto& c : ctrs_) {
    ctx_.timers->cancel(c.timer);
    ctx_.timers->cancel(c.stop_timer);
    cancelHook(c);
    stopProbes(c);
    if (c.handle != 0) {
      ctx_.runtime->remove(c.handle);
    }
  }
  ctx_.timers->cancel(kill_timer_);
  ctx_.timers->cancel(retry_timer_);
  ctx_.timers->cancel(deadline_timer_);
  ctx_.timers->cancel(pace_timer_);
  ctx_.timers->cancel(publish_timer_);
  // An agent leaving its pods running leaves their sandboxes to the next one.
  if ((sandbox_ || volumes_ready_) && !destroying_ && !ctx_.leaving) {
    ctx_.runtime->destroySandbox(pod_.uid, {});
  }
}

void PodWorker::transition(PodState to, std::string_view why) {
  if (state_ == to) {
    return;
  }
  if (log::enabled(4)) {
    log::v(4, "Pod worker transition",
           {{"pod", who()},
            {"from", stateName(state_)},
            {"to", stateName(to)},
            {"reason", std::string(why)}});
  }
  state_ = to;
  state_reason_ = why;
}

void PodWorker::transition(Ctr& c, CtrState to, std::string_view why) {
  if (c.state == to) {
    return;
  }
  if (log::enabled(4)) {
    log::v(4, "Container transition",
           {{"pod", who()},
            {"container", c.spec->name},
            {"from", stateName(c.state)},
            {"to", stateName(to)},
            {"reason", std::string(why)}});
  }
  c.state = to;
  c.state_reason = why;
}

void PodWorker::reject(const std::string& reason, const std::string& message) {
  transition(PodState::kRejected, reason);
  status_ = PodStatus{};
  status_.phase = "Failed";
  status_.reason = reason;
  status_.message = "Pod was rejected: " + message;
  status_.host_ip = ctx_.node_ip;
  status_.qos_class = qosName(qos_);
  log::warning("Pod rejected", {{"pod", who()}, {"reason", reason}, {"message", message}});
  // The kubelet's rejectPod: a Warning event with the reason and the bare message.
  emit(nullptr, "Warning", reason, message);
  ctx_.status_changed(pod_.uid);
}

void PodWorker::start() {
  if (status_.start_time.empty()) {
    status_.start_time = created_;
  }
  if (!active_since_) {
    active_since_ = Clock::now();
    armDeadline();
  }
  if (!adopt_asked_ && !sandbox_) {
    // A previous agent may have left the pod running: it is taken over as it
    // is, with volumes as adopt() sets them up, so that needs the pod's objects
    // as a new start would.
    if (waitingForObjects()) {
      return;
    }
    adopt_asked_ = true;
    if (auto found = ctx_.runtime->adopt(pod_, qos_, runtimeInfo(), objects())) {
      return adopt(*found);
    }
  }
  if (!sandbox_) {
    auto sb = ctx_.runtime->createSandbox(pod_, qos_, hash_);
    if (!sb) {
      // The kubelet's FailedCreatePodSandBox.
      return retryStart("sandbox", "Failed to create pod sandbox", sb.error());
    }
    for (const std::string& w : sb->dns_warnings) {
      emit(nullptr, "Warning", "DNSConfigForming", w);
    }
    sandbox_ = *sb;
    status_.pod_ip = sb->ip;
    pod_cgroup_ = allocatedResources();  // its limits were made from these (resize)
  }
  if (!volumes_ready_) {
    if (waitingForObjects()) {
      return;
    }
    if (auto v = ctx_.runtime->setUpVolumes(pod_, runtimeInfo(), objects()); !v) {
      // FailedMount: the containers wait.
      return retryStart("volumes", "Unable to attach or mount volumes", v.error());
    }
    volumes_ready_ = true;
  }
  status_.message.clear();
  log::v(2, "Pod sandbox ready", {{"pod", who()}, {"podIP", sandbox_->ip}});
  sync();
}

bool PodWorker::waitingForObjects() {
  PodObjects* objects = this->objects();
  if (objects == nullptr) {
    return false;
  }
  // Nothing is set up with half of what the pod refers to; the objects'
  // arrival calls objectsChanged(), which comes back to start().
  auto pending = pendingRefs(pod_, *objects);
  waiting_for_objects_ = !pending.empty();
  if (waiting_for_objects_) {
    log::v(3, "Waiting for the pod's API objects", {{"pod", who()}, {"first", pending[0]}});
  }
  return waiting_for_objects_;
}

void PodWorker::update(const Pod& pod) {
  if (std::string_view(sync_kind_) != "create") {
    sync_kind_ = "update";
  }
  std::map<std::string, std::string> old_images;
  for (const auto& c : ctrs_) {
    old_images[c.spec->name] = c.spec->image;
  }
  std::vector<EphemeralContainer> ephemeral = mergeEphemeral(pod);
  size_t had = pod_.ephemeral_containers.size();
  bool deadline_changed = pod.active_deadline_seconds != pod_.active_deadline_seconds;
  std::map<std::string, ContainerResources> allocated = allocatedResources();
  pod_ = pod;
  keepAllocated(allocated);  // a change of resources is a resize, admitted below
  pod_.ephemeral_containers = std::move(ephemeral);
  // ctrs_ point into pod_'s lists: point them at the new ones.
  size_t i = 0;
  for (const auto* list : {&pod_.init_containers, &pod_.containers}) {
    for (const auto& spec : *list) {
      ctrs_[i++].spec = &spec;
    }
  }
  for (size_t e = 0; e < pod_.ephemeral_containers.size(); e++) {
    if (e < had) {
      ctrs_[i++].spec = &pod_.ephemeral_containers[e];
    } else {
      log::info("Ephemeral container added",
                {{"pod", who()}, {"container", pod_.ephemeral_containers[e].name}});
      addCtr(pod_.ephemeral_containers[e], false, true);
    }
  }
  for (auto& c : ctrs_) {
    if (c.ephemeral || c.spec->image == old_images[c.spec->name]) {
      continue;
    }
    c.status.image = c.spec->image;
    c.image.reset();
    if (!live(c) || c.replace || stopping()) {
      continue;  // one not running takes the new image at its next start
    }
    log::info("Container definition changed, will be restarted",
              {{"pod", who()}, {"container", c.spec->name}, {"image", c.spec->image}});
    stopContainer(c, "Container " + c.spec->name + " definition changed, will be restarted", true);
  }
  if (volumes_ready_) {
    if (auto r = ctx_.runtime->refreshVolumes(pod_, runtimeInfo(), objects()); !r) {
      log::error("Update volumes", {{"pod", who()}, {"err", r.error().message()}});
    }
  }
  if (deadline_changed) {
    armDeadline();
  }
  resize();
  if (pod_.ephemeral_containers.size() > had) {
    sync();  // starts the new ones (and publishes)
    return;
  }
  publish();
}

PodObjects* PodWorker::objects() const { return isStaticPod(pod_) ? nullptr : ctx_.objects; }

PodRuntimeInfo PodWorker::runtimeInfo() const {
  return {sandbox_ ? sandbox_->ip : "", ctx_.node_ip, ctx_.node.allocatable_milli_cpu,
          ctx_.node.allocatable_memory};
}

void PodWorker::objectsChanged() {
  if (state_ != PodState::kSyncing || !objects()) {
    return;
  }
  if (!volumes_ready_) {
    if (waiting_for_objects_ || retry_timer_ != 0) {
      ctx_.timers->cancel(retry_timer_);
      retry_timer_ = 0;
      start();
    }
    return;
  }
  auto changed = ctx_.runtime->refreshVolumes(pod_, runtimeInfo(), objects());
  if (!changed) {
    log::error("Update volumes", {{"pod", who()}, {"err", changed.error().message()}});
  } else if (*changed) {
    log::v(3, "Updated volumes", {{"pod", who()}});
  }
  bool retry = false;
  for (auto& c : ctrs_) {
    if (c.state == CtrState::kBackOff && c.status.state.kind == Kind::kWaiting &&
        c.status.state.reason == "CreateContainerConfigError") {
      ctx_.timers->cancel(c.timer);
      c.timer = 0;
      transition(c, c.started_once ? CtrState::kExited : CtrState::kWaiting, "objects changed");
      retry = true;
    }
  }
  if (retry) {
    sync();
  }
}

// A pod-level step failed: its error is the pod's message, and start() runs
// again after a back-off of its own (at least a second).
void PodWorker::retryStart(const std::string& step, const std::string& what, const Error& e) {
  status_.message = e.message();
  // The kubelet's words: "Failed to create pod sandbox: <error>".
  emit(nullptr, "Warning", step == "sandbox" ? "FailedCreatePodSandBox" : "FailedMount",
       step == "sandbox" ? what + ": " + e.message() : e.message());
  log::error(what, {{"pod", who()}, {"err", status_.message}});
  auto delay = std::max(backoff(step, Clock::now()), std::chrono::seconds(1));
  retry_timer_ = after(static_cast<double>(delay.count()), [](PodWorker& w) {
    w.retry_timer_ = 0;
    w.start();
  });
  publish();
}

TimerQueue::Id PodWorker::after(double seconds, std::function<void(PodWorker&)> fn) {
  std::weak_ptr<PodWorker> self = weak_from_this();
  auto d = std::chrono::duration_cast<Clock::duration>(ctx_.second * seconds);
  return ctx_.timers->after(d, [self, fn = std::move(fn)] {
    if (auto w = self.lock()) {
      fn(*w);
    }
  });
}

std::chrono::seconds PodWorker::backoff(const std::string& key, Clock::time_point started) {
  // The back-off counts in the pod's seconds, so a run's length is measured in them too.
  auto now = Clock::now();
  double ran =
      std::chrono::duration<double>(now - started) / std::chrono::duration<double>(ctx_.second);
  auto virtual_start =
      now - std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(ran));
  return backoff_.next(key, virtual_start, now);
}

void PodWorker::emit(const Ctr* c, const std::string& type, const std::string& reason,
                     const std::string& message) {
  if (ctx_.event) {
    ctx_.event(pod_, c != nullptr ? c->spec->name : "", type, reason, message);
  }
}

void PodWorker::publishSoon() {
  if (publish_timer_ != 0) {
    return;
  }
  publish_timer_ = after(0, [](PodWorker& w) {
    w.publish_timer_ = 0;
    w.publish();
  });
}

void PodWorker::publish() {
  if (state_ == PodState::kRejected) {
    return;
  }
  PodStatus s;
  s.host_ip = ctx_.node_ip;
  s.pod_ip = status_.pod_ip;
  s.start_time = status_.start_time;
  s.message = status_.message;
  s.qos_class = qosName(qos_);
  for (const auto& c : ctrs_) {
    if (c.ephemeral) {
      // The kubelet's ephemeral statuses carry no `started`: no probe runs.
      s.ephemeral_container_statuses.push_back(c.status);
      s.ephemeral_container_statuses.back().started.reset();
      continue;
    }
    (c.init ? s.init_container_statuses : s.container_statuses).push_back(c.status);
  }
  capTerminationMessages(s, pod_.containers.size() + pod_.init_containers.size());
  computeConditions(pod_, s, sandbox_.has_value(), &status_, runtime::nowRfc3339());
  resizeStatus(s);
  if (state_ == PodState::kTerminated) {
    // A pod that was terminated ends in a terminal phase, as the kubelet
    // reports it before the final delete: Succeeded only if every container
    // exited 0.
    bool all_ok = true;
    for (const auto& c : s.container_statuses) {
      all_ok = all_ok && c.state.kind == Kind::kTerminated && c.state.exit_code == 0;
    }
    s.phase = all_ok ? "Succeeded" : "Failed";
  }
  if (deadline_exceeded_) {
    // Failed from the moment the deadline passed, while its containers stop.
    s.phase = "Failed";
    s.reason = "DeadlineExceeded";
    s.message = kDeadlineExceededMessage;
  }
  if (!start_counted_ && s.phase == "Running") {
    // kubelet_pod_start_duration_seconds: first seen -> first Running, image
    // pulls included, as the kubelet's SLI histogram.
    start_counted_ = true;
    stats::kubeletMetrics().pod_start_duration.observe(
        {}, std::chrono::duration<double>(std::chrono::steady_clock::now() - seen_).count());
  }
  if (podStatusJson(s) == podStatusJson(status_)) {
    return;
  }
  status_ = std::move(s);
  ctx_.status_changed(pod_.uid);
}

}  // namespace kernelet::agent
