// The pod worker's probes of a running container: startup first, then
// readiness and liveness, as the kubelet's prober manager runs them.
#include <algorithm>

#include "agent/lifecycle/pod_worker.h"
#include "agent/log/log.h"
#include "agent/stats/metrics.h"

namespace kernelet::agent {

namespace {

// How many of the pod's seconds are left of `delay` since `since`.
double secondsLeft(int64_t delay, std::chrono::steady_clock::time_point since,
                   std::chrono::steady_clock::duration second) {
  double gone = std::chrono::duration<double>(std::chrono::steady_clock::now() - since) /
                std::chrono::duration<double>(second);
  return std::max(static_cast<double>(delay) - gone, 0.0);
}

}  // namespace

void PodWorker::startProbes(Ctr& c) {
  stopProbes(c);
  if (c.ephemeral) {
    return;  // no probes, and never ready: the kubelet's ephemeral statuses
  }
  const Container& spec = *c.spec;
  if (spec.startup_probe) {
    c.probes.push_back({ProbeState::Type::kStartup, *spec.startup_probe});
  }
  // Started once the startup probe passed (none: at once); ready once the
  // readiness probe passed (none: when started).
  // (status.started is an optional<bool>: tested as one it is always set.)
  bool started = !spec.startup_probe;
  c.status.started = started;
  c.status.ready = started && !spec.readiness_probe;
  if (started) {
    scheduleProbes(c);
  } else {
    scheduleProbe(
        c, 0, secondsLeft(spec.startup_probe->initial_delay_seconds, c.last_started, ctx_.second));
  }
}

// Readiness and liveness, each after its initialDelaySeconds since the start.
void PodWorker::scheduleProbes(Ctr& c) {
  stopProbes(c);
  if (c.spec->readiness_probe) {
    c.probes.push_back({ProbeState::Type::kReadiness, *c.spec->readiness_probe});
  }
  if (c.spec->liveness_probe) {
    c.probes.push_back({ProbeState::Type::kLiveness, *c.spec->liveness_probe});
  }
  for (size_t i = 0; i < c.probes.size(); i++) {
    scheduleProbe(c, i,
                  secondsLeft(c.probes[i].spec.initial_delay_seconds, c.last_started, ctx_.second));
  }
}

void PodWorker::scheduleProbe(Ctr& c, size_t i, double seconds) {
  size_t index = static_cast<size_t>(&c - ctrs_.data());
  c.probes[i].timer = after(seconds, [index, i](PodWorker& w) {
    Ctr& k = w.ctrs_[index];
    if (i < k.probes.size()) {
      k.probes[i].timer = 0;
      w.runProbe(k, i);
    }
  });
}

void PodWorker::runProbe(Ctr& c, size_t i) {
  if (!live(c)) {
    return;
  }
  std::weak_ptr<PodWorker> self = weak_from_this();
  size_t index = static_cast<size_t>(&c - ctrs_.data());
  ProbeTarget target = execTarget(c, "exec probe");
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

ProbeTarget PodWorker::execTarget(const Ctr& c, const char* op) {
  std::weak_ptr<PodWorker> self = weak_from_this();
  size_t index = static_cast<size_t>(&c - ctrs_.data());
  ProbeTarget target;
  // httpGet and tcpSocket go to the pod's IP (the node's for host-network pods).
  target.ip = pod_.host_network || !sandbox_ ? ctx_.node_ip : sandbox_->ip;
  // Looked up at the call: the run it reaches is the container's live one.
  target.exec = [self, index, op](const std::vector<std::string>& argv, int out_fd,
                                  std::chrono::milliseconds setup_timeout)
      -> Result<std::unique_ptr<runtime::ExecProcess>> {
    auto w = self.lock();
    if (!w || !w->live(w->ctrs_[index])) {
      return makeError(op, "", "the container is not running");
    }
    return w->ctx_.runtime->exec(w->ctrs_[index].handle, argv, runtime::ExecIo::output(out_fd),
                                 setup_timeout);
  };
  return target;
}

void PodWorker::runCommand(const std::string& name, const std::vector<std::string>& argv,
                           std::chrono::seconds timeout, size_t max_output,
                           std::function<void(Result<ProbeOutcome>)> done) {
  auto c =
      std::find_if(ctrs_.begin(), ctrs_.end(), [&](const Ctr& k) { return k.spec->name == name; });
  if (c == ctrs_.end()) {
    return done(makeError("run in container", name,
                          "container \"" + name + "\" not found in pod \"" + pod_.name + "\""));
  }
  if (!live(*c)) {
    return done(
        makeError("run in container", name,
                  "container \"" + name + "\" in pod \"" + pod_.name + "\" is not running"));
  }
  // An exec probe's run, with the command's own bounds: the same setup in the
  // container, the same deadline, the same reaping when it is given up.
  Probe command;
  command.kind = Probe::Kind::kExec;
  command.command = argv;
  command.timeout_seconds = static_cast<int>(timeout.count());
  std::weak_ptr<PodWorker> self = weak_from_this();
  ProbeTarget target = execTarget(*c, "run in container");
  target.max_output = max_output;
  uint64_t id = next_command_++;
  commands_[id] =
      startProbe(*ctx_.loop, *ctx_.timers, command, target,
                 [self, id, done = std::move(done)](ProbeOutcome o) {
                   auto w = self.lock();
                   // Taken out first: destroying the run ends it.
                   auto run = w ? w->commands_.extract(id) : decltype(w->commands_)::node_type();
                   done(std::move(o));
                 });
}

void PodWorker::onProbe(Ctr& c, size_t i, const ProbeOutcome& o) {
  using Type = ProbeState::Type;
  auto& p = c.probes[i];
  static const char* names[] = {"Startup", "Readiness", "Liveness"};
  const char* name = names[static_cast<int>(p.type)];
  stats::kubeletMetrics().probe_total.add({name, o.success ? "successful" : "failed", c.spec->name,
                                           pod_.name, pod_.namespace_, pod_.uid});
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
    log::v(
        2, "Probe failed",
        {{"probeType", name}, {"pod", who()}, {"container", c.spec->name}, {"output", o.message}});
    if (p.failures >= p.spec.failure_threshold) {
      if (p.type == Type::kReadiness) {
        changed = c.status.ready;
        c.status.ready = false;
      } else {
        // Liveness or startup: the container goes and its restart policy decides.
        log::info("Container failed probe, will be restarted",
                  {{"pod", who()}, {"container", c.spec->name}, {"probeType", name}});
        std::string why = "Container " + c.spec->name + " failed " +
                          (p.type == Type::kLiveness ? "liveness" : "startup") +
                          " probe, will be restarted";
        stopProbes(c);  // replaces the reporting run; nothing of it is used after
        stopContainer(c, why, false);
        return;
      }
    }
  }
  scheduleProbe(c, i, static_cast<double>(p.spec.period_seconds));
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

}  // namespace kernelet::agent
