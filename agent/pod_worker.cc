#include "agent/pod_worker.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/random.h>
#include <unistd.h>

#include <filesystem>

#include "agent/log/log.h"
#include "agent/runtime/container_builder.h"
#include "images/policy.h"
#include "isolation/oci_container.h"

namespace kernelet::agent {
namespace {

using Kind = ContainerState::Kind;

std::string nowRfc3339() {
  time_t t = ::time(nullptr);
  tm utc{};
  ::gmtime_r(&t, &utc);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &utc);
  return buf;
}

// 64 hex digits, like a containerd container id.
std::string newContainerId() {
  unsigned char bytes[32];
  size_t got = 0;
  while (got < sizeof bytes) {
    ssize_t n = ::getrandom(bytes + got, sizeof bytes - got, 0);
    if (n > 0) {
      got += static_cast<size_t>(n);
    }
  }
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned char b : bytes) {
    out += hex[b >> 4];
    out += hex[b & 15];
  }
  return out;
}

// docker.io/library/busybox:latest + sha256:... -> docker.io/library/busybox@sha256:...
std::string imageId(const images::ImageRecord& r) {
  std::string repo = r.name;
  size_t slash = repo.rfind('/');
  size_t colon = repo.rfind(':');
  if (colon != std::string::npos && (slash == std::string::npos || colon > slash)) {
    repo.resize(colon);
  }
  return repo + "@" + r.manifest_digest;
}

}  // namespace

// One run of a container: what must be taken down when it exits.
struct PodWorker::Instance {
  std::string id;
  images::Rootfs rootfs;
  cgroups::Cgroup cgroup;
  bool has_cgroup = false;
  isolation::Process proc;
  isolation::ContainerSpec spec;  // what it was started from: exec probes run the same way
  std::unique_ptr<isolation::CriLogWriter> log;
  std::chrono::steady_clock::time_point started;
  std::string started_at;

  // Everything but the process, which has been reaped (or never started).
  void release(EventLoop& loop, const std::string& what) {
    if (log) {
      log->finish(loop);
    }
    if (has_cgroup) {
      if (auto r = cgroup.remove(); !r) {
        log::error("Remove container cgroup", {{"container", what}, {"err", r.error().message()}});
      }
      has_cgroup = false;
    }
    if (auto r = rootfs.remove(); !r) {
      log::error("Remove container rootfs", {{"container", what}, {"err", r.error().message()}});
    }
  }
};

PodWorker::PodWorker(NodeContext& ctx, Pod pod, std::string hash)
    : ctx_(ctx), pod_(std::move(pod)), hash_(std::move(hash)), created_(nowRfc3339()) {
  std::vector<ContainerResources> resources;
  for (const auto* list : {&pod_.init_containers, &pod_.containers}) {
    for (const auto& c : *list) {
      resources.push_back(c.resources);
    }
  }
  qos_ = podQos(resources);
  for (const auto& c : pod_.init_containers) {
    Ctr k;
    k.spec = &c;
    k.init = true;
    k.sidecar = c.restart_policy == "Always";
    ctrs_.push_back(std::move(k));
  }
  for (const auto& c : pod_.containers) {
    Ctr k;
    k.spec = &c;
    ctrs_.push_back(std::move(k));
  }
  for (auto& c : ctrs_) {
    c.status.name = c.spec->name;
    c.status.image = c.spec->image;
    c.status.started = false;
    bool waits_for_init = c.init || !pod_.init_containers.empty();
    c.status.state = {.kind = Kind::kWaiting,
                      .reason = waits_for_init ? "PodInitializing" : "ContainerCreating"};
  }
}

PodWorker::~PodWorker() {
  // The agent terminates pods before dropping them; this is the last resort
  // that still leaves nothing behind.
  for (auto& c : ctrs_) {
    ctx_.timers->cancel(c.restart_timer);
    ctx_.timers->cancel(c.stop_timer);
    stopProbes(c);
    if (c.running) {
      ctx_.loop->remove(c.running->proc.pidfd());
      (void)c.running->cgroup.write("cgroup.kill", "1");
      (void)c.running->proc.wait();
      c.running->release(*ctx_.loop, c.spec->name);
    }
  }
  ctx_.timers->cancel(kill_timer_);
  ctx_.timers->cancel(retry_timer_);
  ctx_.timers->cancel(pace_timer_);
  ctx_.timers->cancel(publish_timer_);
  if (sandbox_) {
    (void)sandbox_->destroy();
  }
  if (volumes_) {
    (void)volumes_->tearDown();
  }
}

void PodWorker::reject(const std::string& reason, const std::string& message) {
  rejected_ = true;
  status_ = PodStatus{};
  status_.phase = "Failed";
  status_.reason = reason;
  status_.message = "Pod was rejected: " + message;
  status_.host_ip = ctx_.node_ip;
  status_.qos_class = qosName(qos_);
  log::warning(
      "Pod rejected",
      {{"pod", pod_.namespace_ + "/" + pod_.name}, {"reason", reason}, {"message", message}});
  ctx_.status_changed(pod_.uid);
}

void PodWorker::start() {
  status_.start_time = created_;
  std::string who = pod_.namespace_ + "/" + pod_.name;
  if (!sandbox_) {
    auto sb = PodSandbox::create(pod_, qos_, ctx_.sandbox);
    if (!sb) {
      // The kubelet's FailedCreatePodSandBox.
      return retryStart("sandbox", "Failed to create pod sandbox", sb.error());
    }
    sandbox_ = std::move(*sb);
    status_.pod_ip = sandbox_->ip();
  }
  if (!volumes_) {
    if (PodObjects* objects = this->objects()) {
      // Nothing is set up with half of what the pod refers to; the objects'
      // arrival calls objectsChanged(), which comes back here.
      auto pending = pendingRefs(pod_, *objects);
      waiting_for_objects_ = !pending.empty();
      if (waiting_for_objects_) {
        log::v(3, "Waiting for the pod's API objects", {{"pod", who}, {"first", pending[0]}});
        return;
      }
    }
    auto v = PodVolumes::setUp(pod_, ctx_.config.root_dir + "/pods/" + pod_.uid, runtimeInfo(),
                               objects());
    if (!v) {
      // FailedMount: the containers wait.
      return retryStart("volumes", "Unable to attach or mount volumes", v.error());
    }
    volumes_ = std::move(*v);
  }
  status_.message.clear();
  log::v(2, "Pod sandbox ready", {{"pod", who}, {"podIP", sandbox_->ip()}});
  sync();
}

void PodWorker::update(const Pod& pod) {
  std::map<std::string, std::string> old_images;
  for (const auto& c : ctrs_) {
    old_images[c.spec->name] = c.spec->image;
  }
  pod_ = pod;
  // ctrs_ point into pod_'s lists: point them at the new ones.
  size_t i = 0;
  for (const auto* list : {&pod_.init_containers, &pod_.containers}) {
    for (const auto& spec : *list) {
      ctrs_[i++].spec = &spec;
    }
  }
  std::string who = pod_.namespace_ + "/" + pod_.name;
  for (auto& c : ctrs_) {
    if (c.spec->image == old_images[c.spec->name]) {
      continue;
    }
    c.status.image = c.spec->image;
    c.image.reset();
    if (!c.running || c.replace || terminating_ || finished_) {
      continue;  // one not running takes the new image at its next start
    }
    log::info("Container definition changed, will be restarted",
              {{"pod", who}, {"container", c.spec->name}, {"image", c.spec->image}});
    stopContainer(c, "Container " + c.spec->name + " definition changed, will be restarted", true);
  }
  if (volumes_) {
    if (auto r = volumes_->refresh(pod_, runtimeInfo(), objects()); !r) {
      log::error("Update volumes", {{"pod", who}, {"err", r.error().message()}});
    }
  }
  publish();
}

void PodWorker::stopContainer(Ctr& c, const std::string& why, bool replace) {
  if (!c.running || c.stop_timer != 0) {
    return;  // gone, or already on its way out
  }
  emit(&c, "Normal", "Killing", why);
  c.replace = replace;
  (void)c.running->proc.signal(c.stop_signal);
  std::weak_ptr<PodWorker> self = weak_from_this();
  size_t index = static_cast<size_t>(&c - ctrs_.data());
  c.stop_timer = ctx_.timers->after(std::chrono::seconds(pod_.termination_grace_period_seconds),
                                    [self, index] {
                                      auto w = self.lock();
                                      if (!w) {
                                        return;
                                      }
                                      Ctr& k = w->ctrs_[index];
                                      k.stop_timer = 0;
                                      if (k.running) {
                                        (void)k.running->cgroup.write("cgroup.kill", "1");
                                      }
                                    });
}

void PodWorker::startProbes(Ctr& c) {
  using Type = Ctr::ProbeState::Type;
  stopProbes(c);
  const Container& spec = *c.spec;
  if (spec.startup_probe) {
    c.probes.push_back({Type::kStartup, *spec.startup_probe});
  }
  // Started once the startup probe passed (none: at once); ready once the
  // readiness probe passed (none: when started).
  c.status.started = !spec.startup_probe;
  c.status.ready = c.status.started && !spec.readiness_probe;
  if (c.status.started) {
    scheduleProbes(c);
  } else {
    scheduleProbe(c, 0,
                  std::max(std::chrono::seconds(spec.startup_probe->initial_delay_seconds) -
                               (std::chrono::steady_clock::now() - c.last_started),
                           std::chrono::steady_clock::duration::zero()));
  }
}

// Readiness and liveness, each after its initialDelaySeconds since the start.
void PodWorker::scheduleProbes(Ctr& c) {
  using Type = Ctr::ProbeState::Type;
  stopProbes(c);
  if (c.spec->readiness_probe) {
    c.probes.push_back({Type::kReadiness, *c.spec->readiness_probe});
  }
  if (c.spec->liveness_probe) {
    c.probes.push_back({Type::kLiveness, *c.spec->liveness_probe});
  }
  auto since_start = std::chrono::steady_clock::now() - c.last_started;
  for (size_t i = 0; i < c.probes.size(); i++) {
    auto delay = std::chrono::seconds(c.probes[i].spec.initial_delay_seconds) - since_start;
    scheduleProbe(c, i, std::max(delay, std::chrono::steady_clock::duration::zero()));
  }
}

void PodWorker::scheduleProbe(Ctr& c, size_t i, std::chrono::steady_clock::duration delay) {
  std::weak_ptr<PodWorker> self = weak_from_this();
  size_t index = static_cast<size_t>(&c - ctrs_.data());
  c.probes[i].timer = ctx_.timers->after(delay, [self, index, i] {
    if (auto w = self.lock()) {
      Ctr& k = w->ctrs_[index];
      if (i < k.probes.size()) {
        k.probes[i].timer = 0;
        w->runProbe(k, i);
      }
    }
  });
}

void PodWorker::runProbe(Ctr& c, size_t i) {
  if (!c.running) {
    return;
  }
  std::weak_ptr<PodWorker> self = weak_from_this();
  size_t index = static_cast<size_t>(&c - ctrs_.data());
  ProbeTarget target;
  // httpGet and tcpSocket go to the pod's IP (the node's for host-network pods).
  target.ip = pod_.host_network || !sandbox_ ? ctx_.node_ip : sandbox_->ip();
  target.exec = [self, index](
                    const std::vector<std::string>& argv, int out_fd,
                    std::chrono::milliseconds setup_timeout) -> Result<isolation::Process> {
    auto w = self.lock();
    if (!w || !w->ctrs_[index].running) {
      return makeError("exec probe", "", "the container is not running");
    }
    const Instance& inst = *w->ctrs_[index].running;
    isolation::ContainerSpec e = isolation::execSpec(inst.spec, inst.proc.pid(), argv);
    UniqueFd devnull(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    e.stdin_fd = devnull.get();
    e.stdout_fd = e.stderr_fd = out_fd;
    e.cgroup_fd = inst.cgroup.fd();
    e.setup_timeout = setup_timeout;
    return isolation::start(e);
  };
  c.probes[i].run = startProbe(*ctx_.loop, *ctx_.timers, c.probes[i].spec, target,
                               [self, index, i](ProbeOutcome o) {
                                 if (auto w = self.lock()) {
                                   Ctr& k = w->ctrs_[index];
                                   if (i < k.probes.size()) {
                                     w->onProbe(k, i, o);
                                   }
                                 }
                               });
}

void PodWorker::onProbe(Ctr& c, size_t i, const ProbeOutcome& o) {
  using Type = Ctr::ProbeState::Type;
  auto& p = c.probes[i];
  static const char* names[] = {"Startup", "Readiness", "Liveness"};
  const char* name = names[static_cast<int>(p.type)];
  std::string who = pod_.namespace_ + "/" + pod_.name;
  bool changed = false;
  if (o.success) {
    p.failures = 0;
    p.successes++;
    if (p.type == Type::kStartup) {
      // Started: readiness and liveness take over (this replaces the run
      // reporting now; nothing of it is used after).
      c.status.started = true;
      c.status.ready = !c.spec->readiness_probe;
      scheduleProbes(c);
      publish();
      sync();  // a started sidecar lets the next init container go
      return;
    }
    if (p.type == Type::kReadiness && !c.status.ready && p.successes >= p.spec.success_threshold) {
      c.status.ready = true;
      changed = true;
    }
  } else {
    p.successes = 0;
    p.failures++;
    emit(&c, "Warning", "Unhealthy", std::string(name) + " probe failed: " + o.message);
    log::v(2, "Probe failed",
           {{"probeType", name}, {"pod", who}, {"container", c.spec->name}, {"output", o.message}});
    if (p.failures >= p.spec.failure_threshold) {
      if (p.type == Type::kReadiness) {
        changed = c.status.ready;
        c.status.ready = false;
      } else {
        // Liveness or startup: the container goes and its restart policy decides.
        log::info("Container failed probe, will be restarted",
                  {{"pod", who}, {"container", c.spec->name}, {"probeType", name}});
        std::string why = "Container " + c.spec->name + " failed " +
                          (p.type == Type::kLiveness ? "liveness" : "startup") +
                          " probe, will be restarted";
        stopProbes(c);  // replaces the reporting run; nothing of it is used after
        stopContainer(c, why, false);
        return;
      }
    }
  }
  scheduleProbe(c, i, std::chrono::seconds(p.spec.period_seconds));
  if (changed) {
    publish();
  }
}

void PodWorker::stopProbes(Ctr& c) {
  for (auto& p : c.probes) {
    ctx_.timers->cancel(p.timer);
  }
  // Moved out, then dropped: a run destroyed here may be the one reporting now.
  auto old = std::move(c.probes);
  c.probes.clear();
}

PodObjects* PodWorker::objects() const {
  auto source = pod_.annotations.find("kubernetes.io/config.source");
  bool is_static = source != pod_.annotations.end() && source->second == "file";
  return is_static ? nullptr : ctx_.objects;
}

PodRuntimeInfo PodWorker::runtimeInfo() const {
  return {sandbox_ ? sandbox_->ip() : "", ctx_.node_ip, ctx_.node.allocatable_milli_cpu,
          ctx_.node.allocatable_memory};
}

void PodWorker::objectsChanged() {
  if (rejected_ || terminating_ || finished_ || !objects()) {
    return;
  }
  if (!volumes_) {
    if (waiting_for_objects_ || retry_timer_ != 0) {
      ctx_.timers->cancel(retry_timer_);
      retry_timer_ = 0;
      start();
    }
    return;
  }
  auto changed = volumes_->refresh(pod_, runtimeInfo(), objects());
  if (!changed) {
    log::error("Update volumes",
               {{"pod", pod_.namespace_ + "/" + pod_.name}, {"err", changed.error().message()}});
  } else if (*changed) {
    log::v(3, "Updated volumes", {{"pod", pod_.namespace_ + "/" + pod_.name}});
  }
  bool retry = false;
  for (auto& c : ctrs_) {
    if (c.restart_timer != 0 && c.status.state.kind == Kind::kWaiting &&
        c.status.state.reason == "CreateContainerConfigError") {
      ctx_.timers->cancel(c.restart_timer);
      c.restart_timer = 0;
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
  emit(nullptr, "Warning", step == "sandbox" ? "FailedCreatePodSandBox" : "FailedMount",
       e.message());
  log::error(what, {{"pod", pod_.namespace_ + "/" + pod_.name}, {"err", status_.message}});
  auto now = Backoff::Clock::now();
  auto delay = std::max(backoff_.next(step, now, now), std::chrono::seconds(1));
  std::weak_ptr<PodWorker> self = weak_from_this();
  retry_timer_ = ctx_.timers->after(delay, [self] {
    if (auto w = self.lock()) {
      w->retry_timer_ = 0;
      w->start();
    }
  });
  publish();
}

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
  do {
    resync_ = false;
    syncOnce();
  } while (resync_);
  syncing_ = false;
  publish();
}

void PodWorker::paceStarts() {
  if (pace_timer_ != 0) {
    return;
  }
  std::weak_ptr<PodWorker> self = weak_from_this();
  pace_timer_ = ctx_.timers->after(std::chrono::seconds(0), [self] {
    if (auto w = self.lock()) {
      w->pace_timer_ = 0;
      w->sync();
    }
  });
}

void PodWorker::syncOnce() {
  if (rejected_ || finished_ || terminating_ || !sandbox_ || !volumes_) {
    return;
  }
  auto busy = [](const Ctr& c) { return c.running || c.creating || c.restart_timer != 0; };
  // Init containers in order; a sidecar is started and left running.
  for (auto& c : ctrs_) {
    if (!c.init) {
      break;
    }
    if (c.sidecar) {
      if (busy(c)) {
        if (c.creating) {
          return;  // the next init container waits until the sidecar has started
        }
        continue;
      }
      if (!c.ever_started) {
        if (starts_this_turn_ >= kStartsPerTurn) {
          paceStarts();
          return;
        }
        starts_this_turn_++;
        startContainer(c);
        if (c.creating) {
          return;
        }
        continue;
      }
      scheduleRestart(c);
      continue;
    }
    if (busy(c)) {
      return;
    }
    if (!c.ever_started) {
      startContainer(c);
      return;
    }
    if (c.status.state.kind == Kind::kTerminated && c.status.state.exit_code == 0) {
      continue;
    }
    if (!shouldRestart(c)) {
      finishPod();  // a failed init container and restartPolicy Never: the pod failed
      return;
    }
    scheduleRestart(c);
    return;
  }
  bool alive = false;
  for (auto& c : ctrs_) {
    if (c.init) {
      continue;
    }
    if (busy(c)) {
      alive = true;
      continue;
    }
    if (c.status.state.kind == Kind::kWaiting && c.status.state.reason == "PodInitializing") {
      c.status.state.reason = "ContainerCreating";
    }
    if (!c.ever_started) {
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
  c.restart_timer = 0;
  if (c.ever_started) {
    c.status.restart_count++;
  }
  startContainer(c);
}

void PodWorker::scheduleRestart(Ctr& c) {
  auto delay = backoff_.next(c.spec->name, c.last_started, Backoff::Clock::now());
  if (c.status.state.kind == Kind::kTerminated) {
    c.status.last_state = c.status.state;
  }
  if (delay.count() == 0) {
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
         {{"pod", pod_.namespace_ + "/" + pod_.name},
          {"container", c.spec->name},
          {"delay", std::to_string(delay.count()) + "s"}});
  armRetry(c, delay, true);
}

void PodWorker::retryLater(Ctr& c) {
  auto now = Backoff::Clock::now();
  auto delay = std::max(backoff_.next("create/" + c.spec->name, now, now), std::chrono::seconds(1));
  armRetry(c, delay, false);
}

void PodWorker::armRetry(Ctr& c, std::chrono::seconds delay, bool restart) {
  std::weak_ptr<PodWorker> self = weak_from_this();
  size_t index = static_cast<size_t>(&c - ctrs_.data());
  c.restart_timer = ctx_.timers->after(delay, [self, index, restart] {
    auto w = self.lock();
    if (!w) {
      return;
    }
    Ctr& k = w->ctrs_[index];
    k.restart_timer = 0;
    if (w->terminating_ || w->finished_) {
      return;
    }
    if (restart) {
      w->restartNow(k);
    }
    // A retried creation is started by sync, in init order.
    w->sync();
  });
}

void PodWorker::startContainer(Ctr& c) {
  c.creating = true;
  ensureImage(c);
}

void PodWorker::ensureImage(Ctr& c) {
  const std::string& ref = c.spec->image;
  auto fail = [&](const std::string& reason, const std::string& message) {
    c.creating = false;
    setWaiting(c, reason, message);
    log::error("Failed to get image", {{"pod", pod_.namespace_ + "/" + pod_.name},
                                       {"container", c.spec->name},
                                       {"reason", reason},
                                       {"message", message}});
    retryLater(c);
    resync_ = true;
  };
  auto policy = images::pullPolicy(c.spec->image_pull_policy, ref);
  if (!policy) {
    return fail("InvalidImageName", policy.error().message());
  }
  auto present = ctx_.images->find(ref);
  switch (images::decidePull(*policy, present.has_value())) {
    case images::PullDecision::kUsePresent:
      c.image = *present;
      emit(&c, "Normal", "Pulled", "Container image \"" + ref + "\" already present on machine");
      runContainer(c);
      return;
    case images::PullDecision::kNeverPullAbsent:
      return fail("ErrImageNeverPull",
                  "Container image \"" + ref + "\" is not present with pull policy of Never");
    case images::PullDecision::kPull:
      break;
  }
  log::info("Pulling image", {{"pod", pod_.namespace_ + "/" + pod_.name}, {"image", ref}});
  emit(&c, "Normal", "Pulling", "Pulling image \"" + ref + "\"");
  std::weak_ptr<PodWorker> self = weak_from_this();
  size_t index = static_cast<size_t>(&c - ctrs_.data());
  ctx_.puller->pull(ref, [self, index](Result<images::ImageRecord> r) {
    auto w = self.lock();
    if (!w) {
      return;
    }
    Ctr& k = w->ctrs_[index];
    if (w->terminating_ || w->finished_) {
      k.creating = false;
      w->maybeCleanUp();
      return;
    }
    if (!r) {
      k.creating = false;
      // ErrImagePull now, ImagePullBackOff while the retry waits (shown the same way here).
      w->setWaiting(k, "ErrImagePull", r.error().message());
      w->emit(&k, "Warning", "Failed",
              "Failed to pull image \"" + k.spec->image + "\": " + r.error().message());
      log::error("Failed to pull image", {{"image", k.spec->image}, {"err", r.error().message()}});
      w->retryLater(k);
      w->publish();
      return;
    }
    log::info("Successfully pulled image", {{"image", k.spec->image}});
    w->emit(&k, "Normal", "Pulled", "Successfully pulled image \"" + k.spec->image + "\"");
    k.image = *r;
    w->runContainer(k);
    w->sync();
  });
}

std::string PodWorker::logDir(const Ctr& c) const {
  return ctx_.config.pod_log_dir + "/" + pod_.namespace_ + "_" + pod_.name + "_" + pod_.uid + "/" +
         c.spec->name;
}

void PodWorker::runContainer(Ctr& c) {
  std::string who = pod_.namespace_ + "/" + pod_.name;
  auto inst = std::make_unique<Instance>();
  inst->id = newContainerId();
  // Errors before the process exists: CreateContainerConfigError (the spec) or
  // CreateContainerError (the node); both wait and are retried.
  auto create_error = [&](const std::string& reason, const Error& e) {
    inst->release(*ctx_.loop, c.spec->name);
    c.creating = false;
    setWaiting(c, reason, e.message());
    log::error("Failed to create container",
               {{"pod", who}, {"container", c.spec->name}, {"err", e.message()}});
    emit(&c, "Warning", "Failed", "Error: " + e.message());
    retryLater(c);
    resync_ = true;
  };
  auto config = ctx_.images->configJson(*c.image);
  auto image_config =
      config ? images::parseImageConfig(*config, c.image->name) : std::unexpected(config.error());
  if (!image_config) {
    return create_error("CreateContainerError", image_config.error());
  }
  c.image_config = *image_config;
  if (!c.image_config.stop_signal.empty()) {
    if (auto sig = isolation::oci::parseSignal(c.image_config.stop_signal)) {
      c.stop_signal = *sig;
    }
  }
  auto rootfs = images::Rootfs::mount(ctx_.images->lowerDirs(*c.image),
                                      ctx_.config.root_dir + "/containers/" + inst->id);
  if (!rootfs) {
    return create_error("CreateContainerError", rootfs.error());
  }
  inst->rootfs = std::move(*rootfs);
  auto group = cgroups::Cgroup::create(sandbox_->cgroup().path(), inst->id);
  if (!group) {
    return create_error("CreateContainerError", group.error());
  }
  inst->cgroup = std::move(*group);
  inst->has_cgroup = true;
  // The device filter goes on before the process is cloned into the group, so
  // nothing runs there unfiltered; privileged containers get every device, as
  // with containerd. It needs no controller, so --limits-unenforced keeps it, and
  // a filter that fails to load or attach fails the start.
  bool privileged = c.spec->security_context.privileged.value_or(false);
  if (auto r = inst->cgroup.applyDeviceRules(privileged ? cgroups::allDevices()
                                                        : cgroups::defaultAllowedDevices());
      !r) {
    return create_error("CreateContainerError", r.error());
  }
  if (ctx_.sandbox.enforce_limits) {
    if (auto r = inst->cgroup.apply(containerCgroupLimits(c.spec->resources)); !r) {
      return create_error("CreateContainerError", r.error());
    }
  }

  ContainerInput in;
  in.pod = &pod_;
  in.container = c.spec;
  in.sandbox = &*sandbox_;
  in.volumes = &*volumes_;
  in.image = c.image_config;
  in.rootfs = inst->rootfs.path();
  in.qos = qos_;
  in.node_memory = ctx_.node.capacity_memory;
  in.info = runtimeInfo();
  in.objects = objects();
  in.seccomp_dir = ctx_.config.root_dir + "/seccomp";
  in.seccomp_default = ctx_.config.seccomp_default;
  if (pod_.share_process_namespace) {
    for (const auto& k : ctrs_) {
      if (k.running) {
        in.pid_ns = "/proc/" + std::to_string(k.running->proc.pid()) + "/ns/pid";
        break;
      }
    }
  }
  auto spec = buildContainerSpec(in);
  if (!spec) {
    return create_error("CreateContainerConfigError", spec.error());
  }

  // The log: DIR/<restartCount>.log; the previous run's stays for --previous.
  std::string dir = logDir(c);
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  for (int old = c.status.restart_count - 2; old >= 0; old--) {
    std::string stale = dir + "/" + std::to_string(old) + ".log";
    if (::unlink(stale.c_str()) != 0) {
      break;
    }
  }
  auto writer =
      isolation::CriLogWriter::open(dir + "/" + std::to_string(c.status.restart_count) + ".log");
  if (!writer) {
    return create_error("CreateContainerError", writer.error());
  }
  inst->log = std::make_unique<isolation::CriLogWriter>(std::move(*writer));
  inst->log->rotateAt(ctx_.config.container_log_max_size, ctx_.config.container_log_max_files);
  int out[2], err[2];
  if (::pipe2(out, O_CLOEXEC) != 0) {
    return create_error("CreateContainerError", sysError("pipe", dir).error());
  }
  if (::pipe2(err, O_CLOEXEC) != 0) {
    ::close(out[0]);
    ::close(out[1]);
    return create_error("CreateContainerError", sysError("pipe", dir).error());
  }
  UniqueFd out_r(out[0]), out_w(out[1]), err_r(err[0]), err_w(err[1]);
  UniqueFd devnull(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  spec->stdin_fd = devnull.get();
  spec->stdout_fd = out_w.get();
  spec->stderr_fd = err_w.get();
  spec->cgroup_fd = inst->cgroup.fd();

  c.last_started = std::chrono::steady_clock::now();
  c.ever_started = true;
  c.creating = false;
  if (c.status.state.kind == Kind::kTerminated) {
    c.status.last_state = c.status.state;
  }
  inst->spec = *spec;
  auto proc = isolation::start(*spec);
  out_w.reset();
  err_w.reset();
  if (!proc) {
    // The runtime's StartError: a run that failed, counted and backed off like a crash.
    inst->release(*ctx_.loop, c.spec->name);
    std::string now = nowRfc3339();
    c.status.state = {.kind = Kind::kTerminated,
                      .reason = "StartError",
                      .message = proc.error().message(),
                      .exit_code = 128,
                      .started_at = now,
                      .finished_at = now,
                      .container_id = "kernelet://" + inst->id};
    c.status.container_id = "kernelet://" + inst->id;
    log::error("Failed to start container",
               {{"pod", who}, {"container", c.spec->name}, {"err", proc.error().message()}});
    emit(&c, "Warning", "Failed", "Error: " + proc.error().message());
    resync_ = true;
    return;
  }
  inst->proc = std::move(*proc);
  inst->started = c.last_started;
  inst->started_at = nowRfc3339();
  (void)inst->log->pump(*ctx_.loop, std::move(out_r), std::move(err_r));
  std::weak_ptr<PodWorker> self = weak_from_this();
  size_t index = static_cast<size_t>(&c - ctrs_.data());
  Instance* raw = inst.get();
  auto watched = isolation::watchExit(*ctx_.loop, raw->proc, &raw->cgroup,
                                      [self, index](Result<isolation::ContainerExit> e) {
                                        if (auto w = self.lock()) {
                                          w->onExit(w->ctrs_[index], std::move(e));
                                        }
                                      });
  c.status.state = {.kind = Kind::kRunning, .started_at = inst->started_at};
  c.status.container_id = "kernelet://" + inst->id;
  c.status.image = c.image->name;
  c.status.image_id = imageId(*c.image);
  c.running = std::move(inst);
  startProbes(c);
  emit(&c, "Normal", "Created", "Created container: " + c.spec->name);
  emit(&c, "Normal", "Started", "Started container " + c.spec->name);
  log::v(2, "Container started",
         {{"pod", who},
          {"container", c.spec->name},
          {"containerID", c.running->id},
          {"pid", std::to_string(c.running->proc.pid())}});
  if (!watched) {
    log::error("Watch container exit", {{"err", watched.error().message()}});
  }
  resync_ = true;
}

void PodWorker::onExit(Ctr& c, Result<isolation::ContainerExit> exit) {
  std::unique_ptr<Instance> inst = std::move(c.running);
  if (!inst) {
    return;
  }
  inst->log->finish(*ctx_.loop);
  ContainerState t{.kind = Kind::kTerminated,
                   .started_at = inst->started_at,
                   .finished_at = nowRfc3339(),
                   .container_id = "kernelet://" + inst->id};
  if (exit) {
    t.exit_code = exit->status.shellStatus();
    t.reason = exit->reason();
    if (exit->oom_killed && ctx_.node_event) {
      // The kubelet's OOM watcher reports the kernel's kill on the node.
      ctx_.node_event("Warning", "OOMKilling",
                      "Memory cgroup out of memory: killed a process of container " + c.spec->name +
                          " in pod " + pod_.namespace_ + "/" + pod_.name);
    }
  } else {
    t.exit_code = 128;
    t.reason = "Error";
    t.message = exit.error().message();
  }
  inst->release(*ctx_.loop, c.spec->name);
  c.status.state = t;
  c.status.ready = false;
  c.status.started = false;
  log::v(2, "Container exited",
         {{"pod", pod_.namespace_ + "/" + pod_.name},
          {"container", c.spec->name},
          {"exitCode", std::to_string(t.exit_code)},
          {"reason", t.reason}});
  ctx_.timers->cancel(c.stop_timer);
  c.stop_timer = 0;
  stopProbes(c);
  if (c.replace && !terminating_ && !finished_) {
    // Stopped for its new image: started again at once, whatever the restart policy.
    c.replace = false;
    c.status.last_state = c.status.state;
    restartNow(c);
    sync();
    return;
  }
  c.replace = false;
  if (terminating_ || finished_) {
    bool regular_left = false;
    for (const auto& k : ctrs_) {
      regular_left = regular_left || (k.running && !k.sidecar);
    }
    if (!regular_left) {
      stopContainers(true);  // sidecars go after the regular containers
    }
    maybeCleanUp();
    // Hundreds of containers killed together exit in a burst: their statuses
    // are written once for the burst, not once per exit (each write of the
    // whole pod's status is fsync'd), so the pod ends with its grace period.
    publishSoon();
    return;
  }
  sync();
}

void PodWorker::stopContainers(bool sidecars) {
  for (auto it = ctrs_.rbegin(); it != ctrs_.rend(); ++it) {
    Ctr& c = *it;
    if (c.running && c.sidecar == sidecars && !c.running->id.empty()) {
      log::v(2, "Killing container with a grace period",
             {{"pod", pod_.namespace_ + "/" + pod_.name}, {"container", c.spec->name}});
      (void)c.running->proc.signal(c.stop_signal);
      emit(&c, "Normal", "Killing", "Stopping container " + c.spec->name);
    }
  }
}

void PodWorker::finishPod() {
  if (finished_) {
    return;
  }
  finished_ = true;
  log::v(2, "Pod finished", {{"pod", pod_.namespace_ + "/" + pod_.name}});
  // Sidecars and init containers still running go now, with the pod's grace.
  stopContainers(false);
  stopContainers(true);
  std::weak_ptr<PodWorker> self = weak_from_this();
  kill_timer_ =
      ctx_.timers->after(std::chrono::seconds(pod_.termination_grace_period_seconds), [self] {
        if (auto w = self.lock()) {
          w->kill_timer_ = 0;
          w->killAll();
        }
      });
  maybeCleanUp();
}

void PodWorker::killAll() {
  for (auto& c : ctrs_) {
    if (c.running) {
      (void)c.running->cgroup.write("cgroup.kill", "1");
      (void)c.running->proc.signal(SIGKILL);
    }
  }
}

void PodWorker::terminate(std::function<void()> done, std::optional<int64_t> grace_seconds) {
  if (done_) {
    if (done) {
      done();  // nothing of it is left already
    }
    return;
  }
  if (done) {
    on_done_.push_back(std::move(done));
  }
  if (terminating_) {
    if (grace_seconds && *grace_seconds <= 0) {
      killAll();  // a shorter grace than the one running, as a second delete asks
    }
    maybeCleanUp();
    return;
  }
  terminating_ = true;
  ctx_.timers->cancel(retry_timer_);
  retry_timer_ = 0;
  ctx_.timers->cancel(pace_timer_);
  pace_timer_ = 0;
  for (auto& c : ctrs_) {
    ctx_.timers->cancel(c.restart_timer);
    c.restart_timer = 0;
    stopProbes(c);
  }
  int64_t grace = grace_seconds.value_or(pod_.termination_grace_period_seconds);
  log::info("Killing pod",
            {{"pod", pod_.namespace_ + "/" + pod_.name}, {"gracePeriod", std::to_string(grace)}});
  if (grace <= 0) {
    killAll();
  } else {
    bool regular = false;
    for (const auto& c : ctrs_) {
      regular = regular || (c.running && !c.sidecar);
    }
    stopContainers(!regular);
    ctx_.timers->cancel(kill_timer_);
    std::weak_ptr<PodWorker> self = weak_from_this();
    kill_timer_ = ctx_.timers->after(std::chrono::seconds(grace), [self] {
      if (auto w = self.lock()) {
        w->kill_timer_ = 0;
        w->killAll();
      }
    });
  }
  maybeCleanUp();
}

void PodWorker::maybeCleanUp() {
  if (done_) {
    return;
  }
  for (const auto& c : ctrs_) {
    if (c.running || c.creating) {
      return;
    }
  }
  ctx_.timers->cancel(kill_timer_);
  kill_timer_ = 0;
  if (sandbox_) {
    if (auto r = sandbox_->destroy(); !r) {
      log::error("Remove pod sandbox",
                 {{"pod", pod_.namespace_ + "/" + pod_.name}, {"err", r.error().message()}});
    }
    sandbox_.reset();
  }
  if (volumes_) {
    if (auto r = volumes_->tearDown(); !r) {
      log::error("Remove pod volumes",
                 {{"pod", pod_.namespace_ + "/" + pod_.name}, {"err", r.error().message()}});
    }
    volumes_.reset();
  }
  if (terminating_ && !done_) {
    done_ = true;
    publish();  // the final status, terminal phase included
    log::v(2, "Pod terminated", {{"pod", pod_.namespace_ + "/" + pod_.name}});
    auto callbacks = std::move(on_done_);
    for (auto& cb : callbacks) {
      cb();
    }
  } else {
    publish();  // a finished pod without its sandbox
  }
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
  std::weak_ptr<PodWorker> self = weak_from_this();
  publish_timer_ = ctx_.timers->after(std::chrono::seconds(0), [self] {
    if (auto w = self.lock()) {
      w->publish_timer_ = 0;
      w->publish();
    }
  });
}

void PodWorker::publish() {
  if (rejected_) {
    return;
  }
  PodStatus s;
  s.host_ip = ctx_.node_ip;
  s.pod_ip = status_.pod_ip;
  s.start_time = status_.start_time;
  s.message = status_.message;
  s.qos_class = qosName(qos_);
  for (const auto& c : ctrs_) {
    (c.init ? s.init_container_statuses : s.container_statuses).push_back(c.status);
  }
  computeConditions(pod_, s, sandbox_.has_value(), &status_, nowRfc3339());
  if (done_) {
    // A pod that was terminated ends in a terminal phase, as the kubelet
    // reports it before the final delete: Succeeded only if every container
    // exited 0.
    bool all_ok = true;
    for (const auto& c : s.container_statuses) {
      all_ok =
          all_ok && c.state.kind == ContainerState::Kind::kTerminated && c.state.exit_code == 0;
    }
    s.phase = all_ok ? "Succeeded" : "Failed";
  }
  if (podStatusJson(s) == podStatusJson(status_)) {
    return;
  }
  status_ = std::move(s);
  ctx_.status_changed(pod_.uid);
}

}  // namespace kernelet::agent
