// The pod worker's container part: what to start next, images, starts,
// exits, restarts and their back-off.
#include <algorithm>

#include "agent/lifecycle/pod_worker.h"
#include "agent/lifecycle/resize.h"
#include "agent/log/log.h"
#include "agent/model/stop_signal.h"
#include "agent/stats/metrics.h"

namespace kernelet::agent {

using Kind = ContainerState::Kind;

namespace {

// A container's postStart holds the pod's next starts (Ctr::post_start).
template <typename Ctrs>
bool holding(const Ctrs& ctrs) {
  return std::any_of(ctrs.begin(), ctrs.end(), [](const auto& c) { return c.post_start; });
}

// Where a container goes when nothing of it runs or is due.
CtrState idle(bool started_once) { return started_once ? CtrState::kExited : CtrState::kWaiting; }

}  // namespace

bool PodWorker::shouldRestart(const Ctr& c) const {
  // Waiting after a run: a restart was decided and its creation is being retried.
  if (c.sidecar || c.status.state.kind == Kind::kWaiting) {
    return true;
  }
  bool failed = c.status.state.exit_code != 0;
  if (c.init) {
    return failed && pod_.restart_policy != "Never";
  }
  return pod_.restart_policy == "Always" || (pod_.restart_policy == "OnFailure" && failed);
}

void PodWorker::sync() {
  if (syncing_) {
    resync_ = true;
    return;
  }
  syncing_ = true;
  starts_this_turn_ = 0;
  auto begun = std::chrono::steady_clock::now();
  do {
    resync_ = false;
    syncOnce();
  } while (resync_);
  syncing_ = false;
  stats::kubeletMetrics().pod_worker_duration.observe(
      {sync_kind_},
      std::chrono::duration<double>(std::chrono::steady_clock::now() - begun).count());
  sync_kind_ = "sync";
  publish();
}

void PodWorker::paceStarts() {
  if (pace_timer_ != 0) {
    return;
  }
  pace_timer_ = after(0, [](PodWorker& w) {
    w.pace_timer_ = 0;
    w.sync();
  });
}

// Init containers in order; a sidecar is started and left running. False
// when the regular containers must wait.
bool PodWorker::syncInit() {
  auto busy = [this](const Ctr& c) {
    return live(c) || c.state == CtrState::kCreating || c.state == CtrState::kBackOff;
  };
  for (auto& c : ctrs_) {
    if (!c.init) {
      break;
    }
    if (c.sidecar) {
      if (busy(c)) {
        if (c.state == CtrState::kCreating) {
          return false;  // the next init container waits until the sidecar has started
        }
        continue;
      }
      if (!c.started_once) {
        if (starts_this_turn_ >= kStartsPerTurn) {
          paceStarts();
          return false;
        }
        starts_this_turn_++;
        startContainer(c);
        if (c.state == CtrState::kCreating || c.post_start) {
          return false;
        }
        continue;
      }
      scheduleRestart(c);
      continue;
    }
    if (busy(c)) {
      return false;
    }
    if (!c.started_once) {
      startContainer(c);
      return false;
    }
    if (c.status.state.kind == Kind::kTerminated && c.status.state.exit_code == 0) {
      continue;
    }
    if (!shouldRestart(c)) {
      finishPod();  // a failed init container and restartPolicy Never: the pod failed
      return false;
    }
    scheduleRestart(c);
    return false;
  }
  return true;
}

void PodWorker::syncEphemeral() {
  for (auto& c : ctrs_) {
    if (!c.ephemeral || c.started_once || c.state != CtrState::kWaiting) {
      continue;  // running, being created, backing off a failed creation, or done for good
    }
    if (holding(ctrs_)) {
      return;
    }
    if (starts_this_turn_ >= kStartsPerTurn) {
      paceStarts();
      return;
    }
    starts_this_turn_++;
    if (c.status.state.kind == Kind::kWaiting && c.status.state.reason == "PodInitializing") {
      c.status.state.reason = "ContainerCreating";
    }
    startContainer(c);
  }
}

const PodWorker::Ctr* PodWorker::targetOf(const Ctr& c) const {
  for (const auto& k : ctrs_) {
    if (!k.ephemeral && k.spec->name == c.target && k.state == CtrState::kRunning) {
      return &k;
    }
  }
  return nullptr;
}

void PodWorker::syncOnce() {
  if (state_ != PodState::kSyncing || !sandbox_ || !volumes_ready_) {
    return;
  }
  if (holding(ctrs_)) {
    return;  // the kubelet's SyncPod waits in a postStart: onPostStart or onExit syncs again
  }
  syncEphemeral();
  if (!syncInit()) {
    return;
  }
  bool alive = false;
  for (auto& c : ctrs_) {
    if (c.init || c.ephemeral) {
      continue;  // ephemeral containers keep no pod alive: they go when it completes
    }
    if (holding(ctrs_)) {
      return;  // a start of this round runs its postStart: the next ones wait for it
    }
    if (live(c) || c.state == CtrState::kCreating || c.state == CtrState::kBackOff) {
      alive = true;
      continue;
    }
    if (c.status.state.kind == Kind::kWaiting && c.status.state.reason == "PodInitializing") {
      c.status.state.reason = "ContainerCreating";
    }
    if (!c.started_once) {
      if (starts_this_turn_ >= kStartsPerTurn) {
        // Enough for one turn of the loop: the rest start on the next turns,
        // after the signals, exits and other pods that waited meanwhile.
        alive = true;
        paceStarts();
        continue;
      }
      starts_this_turn_++;
      startContainer(c);
      alive = true;
    } else if (shouldRestart(c)) {
      scheduleRestart(c);
      alive = true;
    }
  }
  if (!alive) {
    finishPod();
  }
}

void PodWorker::setWaiting(Ctr& c, const std::string& reason, const std::string& message) {
  if (c.status.state.kind == Kind::kTerminated) {
    c.status.last_state = c.status.state;
  }
  c.status.state = {.kind = Kind::kWaiting, .reason = reason, .message = message};
  c.status.ready = false;
}

void PodWorker::restartNow(Ctr& c) {
  c.timer = 0;
  c.restarting = c.started_once;
  startContainer(c);
}

void PodWorker::scheduleRestart(Ctr& c) {
  auto delay = backoff(c.spec->name, c.last_started);
  auto wait = delay;
  if (c.exited_at) {
    // It exited while no agent watched it: the back-off has run since then.
    double served = std::chrono::duration<double>(Clock::now() - *c.exited_at) /
                    std::chrono::duration<double>(ctx_.second);
    wait = std::max(delay - std::chrono::seconds(static_cast<int64_t>(served)),
                    std::chrono::seconds(0));
    c.exited_at.reset();
  }
  if (c.status.state.kind == Kind::kTerminated) {
    c.status.last_state = c.status.state;
  }
  if (wait.count() == 0) {
    restartNow(c);
    return;
  }
  setWaiting(c, "CrashLoopBackOff",
             "back-off " + std::to_string(delay.count()) + "s restarting failed container=" +
                 c.spec->name + " pod=" + pod_.name + "_" + pod_.namespace_ + "(" + pod_.uid + ")");
  emit(&c, "Warning", "BackOff",
       "Back-off restarting failed container " + c.spec->name + " in pod " + pod_.name + "_" +
           pod_.namespace_ + "(" + pod_.uid + ")");
  log::v(2, "Back-off restarting failed container",
         {{"pod", who()},
          {"container", c.spec->name},
          {"delay", std::to_string(delay.count()) + "s"}});
  armRetry(c, wait, true);
}

void PodWorker::retryLater(Ctr& c) {
  auto delay = std::max(backoff("create/" + c.spec->name, Clock::now()), std::chrono::seconds(1));
  armRetry(c, delay, false);
}

void PodWorker::armRetry(Ctr& c, std::chrono::seconds delay, bool restart) {
  transition(c, CtrState::kBackOff, restart ? "restart back-off" : "creation failed");
  size_t index = static_cast<size_t>(&c - ctrs_.data());
  auto due = [index, restart](PodWorker& w) {
    Ctr& k = w.ctrs_[index];
    k.timer = 0;
    w.transition(k, idle(k.started_once), "back-off over");
    if (w.stopping()) {
      return;
    }
    if (restart) {
      w.restartNow(k);
    }
    // A retried creation is started by sync, in init order.
    w.sync();
  };
  if (!restart && c.status.state.reason == "ErrImagePull" && delay > std::chrono::seconds(1)) {
    // The kubelet shows the failed pull as ErrImagePull, and from its next
    // sync of the pod (a second later) ImagePullBackOff until the retry.
    c.timer = after(1, [index, delay, due](PodWorker& w) {
      Ctr& k = w.ctrs_[index];
      // As the kubelet from 1.30: the waiting message keeps the failed pull's error.
      w.setWaiting(k, "ImagePullBackOff",
                   "Back-off pulling image \"" + k.spec->image +
                       "\": ErrImagePull: " + k.status.state.message);
      w.emit(&k, "Normal", "BackOff", "Back-off pulling image \"" + k.spec->image + "\"");
      w.emit(&k, "Warning", "Failed", "Error: ImagePullBackOff");
      k.timer = w.after(static_cast<double>(delay.count() - 1), due);
      w.publish();
    });
    return;
  }
  c.timer = after(static_cast<double>(delay.count()), due);
}

void PodWorker::startContainer(Ctr& c) {
  transition(c, CtrState::kCreating, "start");
  size_t index = static_cast<size_t>(&c - ctrs_.data());
  std::weak_ptr<PodWorker> self = weak_from_this();
  const std::string& ref = c.spec->image;
  bool outer = in_image_call_;
  in_image_call_ = true;
  ctx_.runtime->ensureImage(
      ref, c.spec->image_pull_policy, pullCredentials(ref),
      [this, &ref, &c] {
        log::info("Pulling image", {{"pod", who()}, {"image", ref}});
        emit(&c, "Normal", "Pulling", "Pulling image \"" + ref + "\"");
        c.pull_started = Clock::now();
      },
      [self, index](const runtime::ImageOutcome& o) {
        if (auto w = self.lock()) {
          w->onImage(index, o, !w->in_image_call_);
        }
      });
  in_image_call_ = outer;
}

std::string PodWorker::logDir(const Ctr& c) const {
  return ctx_.config.pod_log_dir + "/" + pod_.namespace_ + "_" + pod_.name + "_" + pod_.uid + "/" +
         c.spec->name;
}

std::vector<VolumeMountStatus> PodWorker::volumeMountStatuses(const Container& spec) {
  std::vector<VolumeMountStatus> out;
  for (const VolumeMount& m : spec.volume_mounts) {
    VolumeMountStatus s{.name = m.name, .mount_path = m.mount_path, .read_only = m.read_only};
    if (m.read_only) {
      // The kubelet's resolveRecursiveReadOnly: IfPossible is Enabled on a
      // runtime that can (mount_setattr, which kernelet needs anyway).
      s.recursive_read_only = m.recursiveReadOnly() ? "Enabled" : "Disabled";
    }
    out.push_back(std::move(s));
  }
  return out;
}

std::string PodWorker::effectiveStopSignal(const Ctr& c) {
  const std::string& spec = c.spec->lifecycle.stop_signal;
  return spec.empty() ? stopSignalName(c.stop_signal) : spec;
}

void PodWorker::runContainer(Ctr& c) {
  runtime::ContainerRequest r{.pod = &pod_,
                              .container = c.spec,
                              .qos = qos_,
                              .info = runtimeInfo(),
                              .objects = objects(),
                              .services = ctx_.services,
                              .image = *c.image,
                              .restart_count = c.status.restart_count + (c.restarting ? 1 : 0),
                              .log_dir = logDir(c)};
  if (pod_.share_process_namespace) {
    for (const auto& k : ctrs_) {
      if (live(k)) {
        r.share_pid_with = k.handle;
        break;
      }
    }
  }
  size_t index = static_cast<size_t>(&c - ctrs_.data());
  if (c.ephemeral && !c.target.empty()) {
    const Ctr* target = targetOf(c);
    if (target == nullptr) {
      // The kubelet's getTargetID: a config error, tried again after a back-off.
      onStarted(index,
                std::unexpected(runtime::StartFailure{
                    .reason = "CreateContainerConfigError",
                    .message = "unable to find target container " + c.target}),
                false);
      return;
    }
    r.share_pid_with = target->handle;  // its PID namespace, as CRI's NamespaceMode TARGET
  }
  std::weak_ptr<PodWorker> self = weak_from_this();
  bool outer = in_start_call_;
  in_start_call_ = true;
  ctx_.runtime->startContainer(r, [self, index](runtime::StartResult res) {
    if (auto w = self.lock()) {
      w->onStarted(index, std::move(res), !w->in_start_call_);
    }
  });
  in_start_call_ = outer;
}

void PodWorker::onStarted(size_t index, runtime::StartResult res, bool async) {
  Ctr& c = ctrs_[index];
  if (!res && res.error().reason != "StartError") {
    // Nothing ran: CreateContainerConfigError (the spec) or
    // CreateContainerError (the node); both wait and are retried.
    const runtime::StartFailure& f = res.error();
    setWaiting(c, f.reason, f.message);
    log::error("Failed to create container",
               {{"pod", who()}, {"container", c.spec->name}, {"err", f.message}});
    emit(&c, "Warning", "Failed", "Error: " + f.message);
    if (async && stopping()) {
      transition(c, idle(c.started_once), "pod stopping");
      maybeCleanUp();
      return;
    }
    retryLater(c);
    return resyncAfter(async);
  }
  c.last_started = Clock::now();
  c.started_once = true;
  if (c.restarting) {
    c.status.restart_count++;
    c.restarting = false;
  }
  if (c.status.state.kind == Kind::kTerminated) {
    c.status.last_state = c.status.state;
  }
  if (!res) {
    // The runtime's StartError: a run that failed, counted and backed off like a crash.
    const runtime::StartFailure& f = res.error();
    std::string now = runtime::nowRfc3339();
    c.status.state = {.kind = Kind::kTerminated,
                      .reason = "StartError",
                      .message = f.message,
                      .exit_code = 128,
                      .started_at = now,
                      .finished_at = now,
                      .container_id = "kernelet://" + f.id};
    c.status.container_id = "kernelet://" + f.id;
    transition(c, CtrState::kExited, "StartError");
    log::error("Failed to start container",
               {{"pod", who()}, {"container", c.spec->name}, {"err", f.message}});
    emit(&c, "Warning", "Failed", "Error: " + f.message);
    if (async && stopping()) {
      maybeCleanUp();
      return;
    }
    return resyncAfter(async);
  }
  onRunning(c, *res);
  resyncAfter(async);
}

void PodWorker::resyncAfter(bool async) {
  if (async) {
    sync();  // an answer that came later: nothing is syncing now
  } else {
    resync_ = true;  // within the sync that asked: it goes round once more
  }
}

void PodWorker::onRunning(Ctr& c, const runtime::StartedContainer& run) {
  c.handle = run.handle;
  c.stop_signal = run.stop_signal;
  // Its cgroup was made from what was allocated when the start was asked
  // for; a resize allocated since then is applied below, not assumed.
  c.actual = run.resources;
  watchRun(c);
  // With a postStart hook it is not Running until the hook returned (hooks.cc).
  bool post_start = c.spec->lifecycle.post_start && !c.ephemeral && !stopping();
  c.started_at = run.started_at;
  c.status.state = post_start
                       ? ContainerState{.kind = Kind::kWaiting, .reason = "ContainerCreating"}
                       : ContainerState{.kind = Kind::kRunning, .started_at = run.started_at};
  c.status.container_id = "kernelet://" + run.id;
  c.status.image = c.image->name;
  c.status.image_id = c.image->id;
  c.status.stop_signal = effectiveStopSignal(c);
  c.status.volume_mounts = volumeMountStatuses(*c.spec);
  c.status.user = LinuxContainerUser{
      .uid = run.user.uid, .gid = run.user.gid, .supplemental_groups = run.user.groups};
  transition(c, CtrState::kRunning, "started");
  emit(&c, "Normal", "Created", "Created container: " + c.spec->name);
  emit(&c, "Normal", "Started", "Started container " + c.spec->name);
  log::v(2, "Container started",
         {{"pod", who()},
          {"container", c.spec->name},
          {"containerID", run.id},
          {"pid", std::to_string(run.pid)}});
  if (stopping()) {
    // The pod was told to stop while this start was on its way: it stops
    // now, within what is left of the pod's grace period.
    transition(c, CtrState::kStopping, "pod stopping");
    stopGracefully(c, graceLeft(), false);
    return;
  }
  if (resourcesDiffer(*c.actual, c.spec->resources) || pod_cgroup_pending_) {
    // actuateResize skipped it while it started: its limits are set now, or
    // (a resizePolicy of RestartContainer) it is restarted with them; and a
    // pod cgroup that kept room for its old process is lowered.
    actuateResize();
    if (c.state != CtrState::kRunning || c.replace) {
      return;
    }
  }
  if (post_start) {
    c.status.started = false;
    c.status.ready = false;
    startPostStart(c);
    return;
  }
  startProbes(c);
}

void PodWorker::onExit(size_t index, const runtime::ContainerExit& exit) {
  Ctr& c = ctrs_[index];
  if (c.handle == 0) {
    return;
  }
  c.handle = 0;
  c.actual.reset();
  // Its hooks end with it (the kubelet aborts a handler whose container exited).
  cancelHook(c);
  c.post_start = false;
  c.pre_stop_since.reset();
  c.pre_stop_grace = 0;
  std::string post_start_error = std::move(c.post_start_error);
  c.post_start_error.clear();
  ContainerState t{.kind = Kind::kTerminated,
                   .reason = exit.reason,
                   .message = exit.message,
                   .exit_code = exit.exit_code,
                   .started_at = c.status.state.started_at,
                   .finished_at = runtime::nowRfc3339(),
                   .container_id = c.status.container_id};
  if (exit.oom_killed && ctx_.node_event) {
    // The kubelet's OOM watcher reports the kernel's kill on the node.
    ctx_.node_event("Warning", "OOMKilling",
                    "Memory cgroup out of memory: killed a process of container " + c.spec->name +
                        " in pod " + who());
  }
  c.status.state = t;
  c.status.ready = false;
  c.status.started = false;
  transition(c, CtrState::kExited, "exit code " + std::to_string(t.exit_code));
  log::v(2, "Container exited",
         {{"pod", who()},
          {"container", c.spec->name},
          {"exitCode", std::to_string(t.exit_code)},
          {"reason", t.reason}});
  ctx_.timers->cancel(c.stop_timer);
  c.stop_timer = 0;
  stopProbes(c);
  bool replace = c.replace;
  c.replace = false;
  if (replace && !stopping()) {
    // Stopped for its new image: started again at once, whatever the restart policy.
    c.status.last_state = c.status.state;
    restartNow(c);
    sync();
    return;
  }
  if (stopping()) {
    bool regular_left = false;
    for (const auto& k : ctrs_) {
      regular_left = regular_left || (live(k) && !k.sidecar);
    }
    if (!regular_left) {
      stopContainers(true);  // sidecars go after the regular containers
    }
    maybeCleanUp();
    // Hundreds of containers killed together exit in a burst: their statuses
    // are written once for the burst, not once per exit.
    publishSoon();
    return;
  }
  if (!post_start_error.empty() && shouldRestart(c)) {
    // The kubelet's reason cache: until it runs again, the failed start shows.
    setWaiting(c, "PostStartHookError", post_start_error);
    publish();
  }
  sync();
}

}  // namespace kernelet::agent
