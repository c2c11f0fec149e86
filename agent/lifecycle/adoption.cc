// The pod worker taking over a pod that a previous agent left (issue #16): the
// sandbox and volumes as they are, each container's latest run as it is
// (running: watched and probed from now on; ended while no agent watched it:
// handled as an exit that just happened), a termination resumed where it was.
// Nothing that still runs is started again, and the first status published
// shows the adopted containers as they are: no write says that a running
// container is not running.
#include <time.h>

#include <algorithm>

#include "agent/lifecycle/pod_worker.h"
#include "agent/log/log.h"

namespace kernelet::agent {

using Kind = ContainerState::Kind;

namespace {

using SysClock = std::chrono::system_clock;
using Steady = std::chrono::steady_clock;

// RFC 3339 as the runtime writes it (2026-01-02T03:04:05Z); nullopt if not.
std::optional<SysClock::time_point> parseTime(const std::string& rfc3339) {
  tm t{};
  if (::strptime(rfc3339.c_str(), "%Y-%m-%dT%H:%M:%S", &t) == nullptr) {
    return std::nullopt;
  }
  return SysClock::from_time_t(::timegm(&t));
}

// The steady-clock time of a past wall-clock time (now if unknown): back-offs
// and probe delays count on the steady clock.
Steady::time_point steadyAt(const std::string& rfc3339) {
  Steady::time_point now = Steady::now();
  auto t = parseTime(rfc3339);
  if (!t) {
    return now;
  }
  auto ago = std::max(SysClock::now() - *t, SysClock::duration::zero());
  return now - std::chrono::duration_cast<Steady::duration>(ago);
}

ContainerState terminatedState(const runtime::RunEnd& end) {
  return {.kind = Kind::kTerminated,
          .reason = end.exit.reason,
          .message = end.exit.message,
          .exit_code = end.exit.exit_code,
          .started_at = end.started_at,
          .finished_at = end.finished_at,
          .container_id = "kernelet://" + end.id};
}

// The container's status in the previous agent's last written pod status.
const ContainerStatus* lastStatusOf(const std::optional<PodStatus>& last, const std::string& name,
                                    bool init, bool ephemeral) {
  if (!last) {
    return nullptr;
  }
  const auto& list = ephemeral ? last->ephemeral_container_statuses
                     : init    ? last->init_container_statuses
                               : last->container_statuses;
  auto it = std::find_if(list.begin(), list.end(),
                         [&](const ContainerStatus& s) { return s.name == name; });
  return it == list.end() ? nullptr : &*it;
}

}  // namespace

void PodWorker::adopt(const runtime::AdoptedPod& a) {
  start_counted_ = true;  // it started under a previous agent: not this one's start
  sandbox_ = a.sandbox;
  volumes_ready_ = true;
  status_.pod_ip = a.sandbox.ip;
  std::optional<PodStatus> last;
  if (ctx_.last_status) {
    last = ctx_.last_status(pod_.uid);
  }
  if (last && !last->start_time.empty()) {
    status_.start_time = last->start_time;  // the pod started then, not now
    active_since_ = steadyAt(last->start_time);
    armDeadline();  // activeDeadlineSeconds counts from then too
  }
  int running = 0;
  for (const auto& ac : a.containers) {
    auto it = std::find_if(ctrs_.begin(), ctrs_.end(),
                           [&](const Ctr& c) { return c.spec->name == ac.name; });
    if (it == ctrs_.end()) {
      // The pod no longer has it (its spec changed while no agent ran) and
      // nothing would watch it: it goes now.
      log::info("Removing an adopted container the pod no longer has",
                {{"pod", who()}, {"container", ac.name}});
      if (ac.handle != 0) {
        ctx_.runtime->remove(ac.handle);
      }
      continue;
    }
    adoptContainer(*it, ac, lastStatusOf(last, ac.name, it->init, it->ephemeral));
    running += ac.handle != 0 ? 1 : 0;
  }
  log::info("Adopted pod", {{"pod", who()},
                            {"containers", std::to_string(a.containers.size())},
                            {"running", std::to_string(running)}});
  if (a.kill_at) {
    // The previous agent was terminating it: that goes on, and SIGKILL comes
    // when it would have come.
    kill_at_ = a.kill_at;
    log::info("Resuming the pod's termination", {{"pod", who()}});
    terminate({});
    publish();
    return;
  }
  if (a.pod_hash != hash_) {
    // Made from another spec than the one wanted now: replaced, as a
    // container whose image changed is.
    for (auto& c : ctrs_) {
      if (live(c) && c.ephemeral) {
        // Never started twice: it goes, as the kubelet's pod restart ends it.
        stopContainer(c, "Stopping container " + c.spec->name, false);
      } else if (live(c)) {
        log::info("Container definition changed, will be restarted",
                  {{"pod", who()}, {"container", c.spec->name}});
        stopContainer(c, "Container " + c.spec->name + " definition changed, will be restarted",
                      true);
      }
    }
    // The runtime keeps the spec it now runs, or the next agent would replace
    // the containers again.
    if (auto r = ctx_.runtime->createSandbox(pod_, qos_, hash_); !r) {
      log::error("Record the pod's new spec", {{"pod", who()}, {"err", r.error().message()}});
    }
  }
  // A resize the previous agent had allocated, or the API asked for while
  // no agent ran, is admitted and applied now, once.
  resize();
  sync();
}

void PodWorker::adoptContainer(Ctr& c, const runtime::AdoptedContainer& a,
                               const ContainerStatus* last) {
  c.started_once = true;
  c.image = a.image;
  c.stop_signal = a.stop_signal;
  c.status.stop_signal = effectiveStopSignal(c);
  c.status.volume_mounts = volumeMountStatuses(*c.spec);
  if (a.user) {
    c.status.user = LinuxContainerUser{
        .uid = a.user->uid, .gid = a.user->gid, .supplemental_groups = a.user->groups};
  }
  c.status.image = a.image.name;
  c.status.image_id = a.image.id;
  c.status.restart_count = a.restart_count;
  c.status.container_id = "kernelet://" + a.id;
  if (a.previous) {
    c.status.last_state = terminatedState(*a.previous);
  }
  // A container that was crash-looping goes on backing off where it was.
  backoff_.resume(c.spec->name, a.restart_count);
  if (a.handle != 0) {
    c.handle = a.handle;
    // A previous agent that resized it checkpointed what its cgroup has;
    // else it has what is allocated (pod_resize.cc).
    auto actuated = restored_actuated_.find(c.spec->name);
    c.actual = actuated != restored_actuated_.end() ? actuated->second : c.spec->resources;
    c.last_started = steadyAt(a.started_at);
    c.status.state = {.kind = Kind::kRunning, .started_at = a.started_at};
    transition(c, CtrState::kRunning, "adopted");
    watchRun(c);
    bool was_ready = last != nullptr && last->container_id == c.status.container_id &&
                     last->state.kind == Kind::kRunning && last->ready;
    if (was_ready) {
      // Ready before the agent went (so started): it stays ready until its
      // readiness probe fails failureThreshold times, as the kubelet keeps a
      // restarted kubelet's pods ready.
      c.status.started = true;
      c.status.ready = true;
      scheduleProbes(c);
    } else {
      startProbes(c);
    }
    return;
  }
  runtime::RunEnd end;
  if (a.ended) {
    end = *a.ended;
  } else {
    // The runtime must say how a run it does not hold ended; if it did not,
    // the run is reported as the kubelet reports a container it lost.
    end = {.id = a.id,
           .exit = {.exit_code = 137, .reason = "ContainerStatusUnknown"},
           .started_at = a.started_at,
           .finished_at = runtime::nowRfc3339()};
  }
  c.status.state = terminatedState(end);
  c.status.ready = false;
  c.status.started = false;
  c.last_started = steadyAt(end.started_at);
  c.exited_at = steadyAt(end.finished_at);
  transition(c, CtrState::kExited,
             "exited while no agent watched it: exit code " + std::to_string(end.exit.exit_code));
  log::v(2, "Adopted container had exited",
         {{"pod", who()},
          {"container", c.spec->name},
          {"exitCode", std::to_string(end.exit.exit_code)},
          {"finishedAt", end.finished_at}});
}

void PodWorker::watchRun(Ctr& c) {
  size_t index = static_cast<size_t>(&c - ctrs_.data());
  std::weak_ptr<PodWorker> self = weak_from_this();
  auto watched = ctx_.runtime->watchExit(c.handle, [self, index](const runtime::ContainerExit& e) {
    if (auto w = self.lock()) {
      w->onExit(index, e);
    }
  });
  if (!watched) {
    log::error("Watch container exit",
               {{"pod", who()}, {"container", c.spec->name}, {"err", watched.error().message()}});
  }
}

int64_t PodWorker::cappedGrace(int64_t grace) const {
  if (!kill_at_) {
    return grace;
  }
  // What is left until kill_at_, rounded up to whole seconds.
  auto left = *kill_at_ - SysClock::now();
  int64_t left_seconds = left <= SysClock::duration::zero()
                             ? 0
                             : std::chrono::ceil<std::chrono::seconds>(left).count();
  return std::min(grace, left_seconds);
}

}  // namespace kernelet::agent
