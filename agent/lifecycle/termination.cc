// The pod worker's way out: a pod that completed, a container stopped for a
// probe or a new image, and graceful termination (preStop hooks, the stop
// signal, the grace period, SIGKILL, sidecars last, then the sandbox).
#include <signal.h>

#include <algorithm>
#include <cmath>

#include "agent/lifecycle/pod_worker.h"
#include "agent/log/log.h"

namespace kernelet::agent {

void PodWorker::stopContainer(Ctr& c, const std::string& why, bool replace) {
  if (!live(c) || c.stop_timer != 0) {
    return;  // gone, or already on its way out
  }
  emit(&c, "Normal", "Killing", why);
  c.replace = replace;
  transition(c, CtrState::kStopping, why);
  stopGracefully(c, pod_.termination_grace_period_seconds, true);
}

void PodWorker::stopContainers(bool sidecars) {
  for (auto it = ctrs_.rbegin(); it != ctrs_.rend(); ++it) {
    Ctr& c = *it;
    if (live(c) && c.sidecar == sidecars) {
      if (c.state == CtrState::kStopping && (c.stop_timer != 0 || c.pre_stop_grace > 0)) {
        continue;  // on its way out already, on a clock of its own
      }
      log::v(2, "Killing container with a grace period",
             {{"pod", who()}, {"container", c.spec->name}});
      transition(c, CtrState::kStopping, "pod stopping");
      emit(&c, "Normal", "Killing", "Stopping container " + c.spec->name);
      stopGracefully(c, graceLeft(), false);
    }
  }
}

int64_t PodWorker::graceLeft() const {
  if (!kill_due_) {
    return 0;
  }
  double left = std::chrono::duration<double>(*kill_due_ - Clock::now()) /
                std::chrono::duration<double>(ctx_.second);
  return std::max<int64_t>(static_cast<int64_t>(std::ceil(left)), 0);
}

void PodWorker::killOverdue() {
  for (auto& c : ctrs_) {
    if (live(c) && !c.pre_stop_since) {
      transition(c, CtrState::kStopping, "SIGKILL");
      // Failing, it is gone already and its exit is on its way.
      (void)ctx_.runtime->kill(c.handle);
    }
  }
}

void PodWorker::armDeadline() {
  ctx_.timers->cancel(deadline_timer_);
  deadline_timer_ = 0;
  if (!pod_.active_deadline_seconds || !active_since_ || state_ != PodState::kSyncing) {
    return;
  }
  // What is left of it, in the pod's seconds; passed already: now.
  double ran = std::chrono::duration<double>(Clock::now() - *active_since_) /
               std::chrono::duration<double>(ctx_.second);
  double left = std::max(static_cast<double>(*pod_.active_deadline_seconds) - ran, 0.0);
  deadline_timer_ = after(left, [](PodWorker& w) {
    w.deadline_timer_ = 0;
    w.onDeadline();
  });
}

void PodWorker::onDeadline() {
  if (state_ != PodState::kSyncing || deadline_exceeded_) {
    return;  // done already, or on its way out for another reason
  }
  deadline_exceeded_ = true;
  log::info("Pod exceeded its active deadline",
            {{"pod", who()},
             {"activeDeadlineSeconds", std::to_string(pod_.active_deadline_seconds.value_or(0))}});
  // The kubelet's activeDeadlineHandler records a Normal event.
  emit(nullptr, "Normal", "DeadlineExceeded", kDeadlineExceededMessage);
  // No container runs again, nor does a sandbox retry; the running ones stop
  // within the grace period.
  ctx_.timers->cancel(retry_timer_);
  retry_timer_ = 0;
  for (auto& c : ctrs_) {
    if (c.state == CtrState::kBackOff) {
      ctx_.timers->cancel(c.timer);
      c.timer = 0;
      transition(c, c.started_once ? CtrState::kExited : CtrState::kWaiting, "deadline exceeded");
    }
    stopProbes(c);
  }
  finishPod();
  publish();
}

void PodWorker::finishPod() {
  if (state_ != PodState::kSyncing) {
    return;
  }
  transition(PodState::kCompleted, "no container will run again");
  log::v(2, "Pod finished", {{"pod", who()}});
  // Sidecars and init containers still running go now, with the pod's grace.
  kill_due_ = Clock::now() + ctx_.second * pod_.termination_grace_period_seconds;
  stopContainers(false);
  stopContainers(true);
  kill_timer_ = after(static_cast<double>(pod_.termination_grace_period_seconds), [](PodWorker& w) {
    w.kill_timer_ = 0;
    w.killOverdue();
  });
  maybeCleanUp();
}

void PodWorker::killAll() {
  for (auto& c : ctrs_) {
    if (live(c)) {
      // A hook still running goes with it; its preStop's clock stops.
      cancelHook(c);
      c.pre_stop_grace = 0;
      transition(c, CtrState::kStopping, "SIGKILL");
      // Failing, it is gone already and its exit is on its way.
      (void)ctx_.runtime->kill(c.handle);
    }
  }
}

void PodWorker::terminate(std::function<void()> done, std::optional<int64_t> grace_seconds) {
  if (state_ == PodState::kTerminated || state_ == PodState::kRejected) {
    if (done) {
      done();  // nothing of it is left already
    }
    return;
  }
  if (done) {
    on_done_.push_back(std::move(done));
  }
  if (state_ == PodState::kTerminating) {
    if (grace_seconds && *grace_seconds <= 0) {
      killAll();  // a shorter grace than the one running, as a second delete asks
    }
    maybeCleanUp();
    return;
  }
  transition(PodState::kTerminating, "terminate");
  ctx_.timers->cancel(retry_timer_);
  retry_timer_ = 0;
  ctx_.timers->cancel(pace_timer_);
  pace_timer_ = 0;
  for (auto& c : ctrs_) {
    if (c.state == CtrState::kBackOff) {
      ctx_.timers->cancel(c.timer);
      c.timer = 0;
      transition(c, c.started_once ? CtrState::kExited : CtrState::kWaiting, "pod terminating");
    }
    stopProbes(c);
  }
  int64_t grace = cappedGrace(grace_seconds.value_or(pod_.termination_grace_period_seconds));
  log::info("Killing pod", {{"pod", who()}, {"gracePeriod", std::to_string(grace)}});
  // An agent that adopts the pod before the grace period ran out goes on from
  // here (PodWorker::adopt), with what is left of it.
  ctx_.runtime->noteTerminating(pod_.uid,
                                std::chrono::system_clock::now() +
                                    std::chrono::duration_cast<std::chrono::system_clock::duration>(
                                        ctx_.second * std::max<int64_t>(grace, 0)));
  if (grace <= 0) {
    killAll();
  } else {
    bool regular = false;
    for (const auto& c : ctrs_) {
      regular = regular || (live(c) && !c.sidecar);
    }
    kill_due_ = Clock::now() + ctx_.second * grace;
    stopContainers(!regular);
    ctx_.timers->cancel(kill_timer_);
    kill_timer_ = after(static_cast<double>(grace), [](PodWorker& w) {
      w.kill_timer_ = 0;
      w.killOverdue();
    });
  }
  maybeCleanUp();
}

void PodWorker::maybeCleanUp() {
  if (state_ == PodState::kTerminated || destroying_) {
    return;
  }
  for (const auto& c : ctrs_) {
    if (live(c) || c.state == CtrState::kCreating) {
      return;
    }
  }
  ctx_.timers->cancel(kill_timer_);
  kill_timer_ = 0;
  if (!sandbox_ && !volumes_ready_) {
    return onSandboxDestroyed();
  }
  destroying_ = true;
  std::weak_ptr<PodWorker> self = weak_from_this();
  ctx_.runtime->destroySandbox(pod_.uid, [self] {
    if (auto w = self.lock()) {
      w->destroying_ = false;
      w->sandbox_.reset();
      w->volumes_ready_ = false;
      w->onSandboxDestroyed();
    }
  });
}

void PodWorker::onSandboxDestroyed() {
  if (state_ != PodState::kTerminating) {
    publish();  // a completed pod without its sandbox
    return;
  }
  transition(PodState::kTerminated, "nothing of the pod is left");
  publish();  // the final status, terminal phase included
  log::v(2, "Pod terminated", {{"pod", who()}});
  auto callbacks = std::move(on_done_);
  for (auto& cb : callbacks) {
    cb();
  }
}

}  // namespace kernelet::agent
