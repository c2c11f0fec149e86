// The pod worker's lifecycle hooks, as the kubelet's handler runner
// (pkg/kubelet/lifecycle) and kuberuntime run them:
//   postStart  right after the container started. Until it returns the
//              container is not Running (nor Ready) and the pod's next starts
//              wait. A failure: Warning FailedPostStartHook, the container is
//              killed ("FailedPostStartHook") and its restart policy decides;
//              until the restart its status waits with PostStartHookError.
//   preStop    before the stop signal, within the grace period, which it
//              uses up: the signal follows with what is left of it (at least
//              2 s). A failure: Warning FailedPreStopHook, and the stop goes on.
// The actions: exec runs in the container as an exec probe does, httpGet
// goes out with the prober's client (any HTTP answer is a success, the
// kubelet reads no status code), sleep is a timer in the pod's seconds, and
// tcpSocket fails, as the kubelet never runs it. The events carry no output
// (a hook's output may hold secrets: the kubelet keeps it out of them too);
// the output goes to the log and, for postStart, the waiting message.
#include <cmath>
#include <cstdio>

#include "agent/lifecycle/pod_worker.h"
#include "agent/log/log.h"

namespace kernelet::agent {

namespace {

// The kubelet's minimumGracePeriodInSeconds: what a container is given
// after a preStop that took all of its grace period.
constexpr int64_t kMinimumGraceSeconds = 2;

// Go's %q of a string: the form the kubelet's messages quote output in.
std::string goQuote(const std::string& s) {
  std::string out = "\"";
  for (unsigned char ch : s) {
    switch (ch) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        if (ch < 0x20 || ch == 0x7f) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\x%02x", ch);
          out += buf;
        } else {
          out += static_cast<char>(ch);
        }
    }
  }
  return out + "\"";
}

std::string joined(const std::vector<std::string>& v, const std::string& sep) {
  std::string out;
  for (const auto& a : v) {
    out += (out.empty() ? "" : sep) + a;
  }
  return out;
}

}  // namespace

void PodWorker::cancelHook(Ctr& c) {
  ctx_.timers->cancel(c.hook_timer);
  c.hook_timer = 0;
  auto run = std::move(c.hook);  // destroyed here: an exec still running is killed
}

void PodWorker::runHook(Ctr& c, const LifecycleHandler& h, HookDone done) {
  cancelHook(c);
  size_t index = static_cast<size_t>(&c - ctrs_.data());
  if (h.kind == LifecycleHandler::Kind::kSleep) {
    c.hook_timer = after(static_cast<double>(h.sleep_seconds), [index, done](PodWorker& w) {
      Ctr& k = w.ctrs_[index];
      k.hook_timer = 0;
      done(w, k, true, "");
    });
    return;
  }
  if (h.kind == LifecycleHandler::Kind::kTcpSocket) {
    // Answered from the loop, never within the call that started it.
    c.hook_timer = after(0, [index, done](PodWorker& w) {
      Ctr& k = w.ctrs_[index];
      k.hook_timer = 0;
      done(w, k, false,
           "Cannot run handler: invalid handler: tcpSocket is not supported as a lifecycle "
           "handler");
    });
    return;
  }
  // The kubelet's messages name the container and the pod as format.Pod does.
  std::string where = "for Container \"" + c.spec->name + "\" in Pod \"" + pod_.name + "_" +
                      pod_.namespace_ + "(" + pod_.uid + ")\"";
  std::string what;
  ProbeTarget target = execTarget(c, "exec lifecycle hook");
  if (h.kind == LifecycleHandler::Kind::kExec) {
    what = "Exec lifecycle hook ([" + joined(h.action.command, " ") + "]) " + where;
  } else {
    what = "HTTP lifecycle hook (" + h.action.path + ") " + where;
    target.user_agent = "kube-lifecycle/1.35";
    target.any_status = true;
  }
  bool exec = h.kind == LifecycleHandler::Kind::kExec;
  std::string command = joined(h.action.command, " ");
  std::weak_ptr<PodWorker> self = weak_from_this();
  c.hook = startProbe(*ctx_.loop, *ctx_.timers, h.action, target,
                      [self, index, done, what, exec, command](ProbeOutcome o) {
                        auto w = self.lock();
                        if (!w) {
                          return;
                        }
                        Ctr& k = w->ctrs_[index];
                        auto run = std::move(k.hook);  // finished: it goes when this call returns
                        std::string message;
                        if (!o.success && exec) {
                          // The CRI's ExecSync error, then the command's output.
                          std::string error = o.exit_code >= 0
                                                  ? "command '" + command + "' exited with " +
                                                        std::to_string(o.exit_code) + ": "
                                                  : o.message;
                          message = what + " failed - error: " + error +
                                    ", message: " + goQuote(o.exit_code >= 0 ? o.message : "");
                        } else if (!o.success) {
                          message = what + " failed - error: " + o.message;
                        }
                        done(*w, k, o.success, message);
                      });
}

void PodWorker::startPostStart(Ctr& c) {
  c.post_start = true;
  c.post_start_error.clear();
  log::v(3, "Running postStart hook", {{"pod", who()}, {"container", c.spec->name}});
  runHook(c, *c.spec->lifecycle.post_start,
          [](PodWorker& w, Ctr& k, bool ok, const std::string& message) {
            w.onPostStart(k, ok, message);
          });
}

void PodWorker::onPostStart(Ctr& c, bool ok, const std::string& message) {
  if (!live(c) || !c.post_start || c.state != CtrState::kRunning) {
    return;  // it exited, or is being stopped, meanwhile
  }
  if (ok) {
    c.post_start = false;
    c.status.state = {.kind = ContainerState::Kind::kRunning, .started_at = c.started_at};
    log::v(3, "PostStart hook completed", {{"pod", who()}, {"container", c.spec->name}});
    startProbes(c);
    sync();  // the pod's next starts waited for this one
    return;
  }
  log::error("Failed to execute PostStartHook",
             {{"pod", who()}, {"container", c.spec->name}, {"err", message}});
  emit(&c, "Warning", "FailedPostStartHook", "PostStartHook failed");
  // `post_start` holds until it exited: the kubelet kills it within the start,
  // so the pod's next starts wait for that too.
  c.post_start_error = message;
  stopContainer(c, "FailedPostStartHook", false);
  publish();
}

void PodWorker::signalStop(Ctr& c) {
  if (auto r = ctx_.runtime->signal(c.handle, c.stop_signal); !r) {
    // It exited meanwhile: its exit is on its way to onExit.
    log::v(2, "Stop container", {{"container", c.spec->name}, {"err", r.error().message()}});
  }
}

void PodWorker::stopGracefully(Ctr& c, int64_t grace, bool own_kill) {
  if (c.post_start) {
    cancelHook(c);  // a postStart still running is given up: the container goes
  }
  size_t index = static_cast<size_t>(&c - ctrs_.data());
  auto kill = [index](PodWorker& w) {
    Ctr& k = w.ctrs_[index];
    k.stop_timer = 0;
    if (w.live(k)) {
      (void)w.ctx_.runtime->kill(k.handle);  // failing, it is gone already
    }
  };
  const auto& pre_stop = c.spec->lifecycle.pre_stop;
  if (!pre_stop || grace <= 0 || c.pre_stop_since) {
    signalStop(c);
    if (own_kill) {
      c.stop_timer = after(static_cast<double>(grace), kill);
    }
    return;
  }
  log::v(3, "Running preStop hook", {{"pod", who()}, {"container", c.spec->name}});
  c.pre_stop_since = Clock::now();
  c.pre_stop_grace = grace;
  // The hook has the grace period and no more: then the signal goes, and the
  // hook is given up (an exec still running in the container is killed).
  ctx_.timers->cancel(c.stop_timer);
  c.stop_timer = after(static_cast<double>(grace), [index](PodWorker& w) {
    Ctr& k = w.ctrs_[index];
    k.stop_timer = 0;
    log::v(2, "PreStop hook not completed in grace period",
           {{"pod", w.who()},
            {"container", k.spec->name},
            {"gracePeriod", std::to_string(k.pre_stop_grace)}});
    w.cancelHook(k);
    w.afterPreStop(k);
  });
  runHook(c, *pre_stop, [](PodWorker& w, Ctr& k, bool ok, const std::string& message) {
    if (!ok) {
      log::error("PreStop hook failed",
                 {{"pod", w.who()}, {"container", k.spec->name}, {"err", message}});
      w.emit(&k, "Warning", "FailedPreStopHook", "PreStopHook failed");
    }
    w.afterPreStop(k);
  });
}

void PodWorker::afterPreStop(Ctr& c) {
  if (c.pre_stop_grace <= 0) {
    return;  // over already (its deadline and its answer both come here)
  }
  ctx_.timers->cancel(c.stop_timer);
  c.stop_timer = 0;
  cancelHook(c);
  // The kubelet counts the hook's whole seconds against the grace period and
  // always leaves the container kMinimumGraceSeconds after it.
  double took = std::chrono::duration<double>(Clock::now() - *c.pre_stop_since) /
                std::chrono::duration<double>(ctx_.second);
  int64_t left =
      std::max(c.pre_stop_grace - static_cast<int64_t>(std::floor(took)), kMinimumGraceSeconds);
  c.pre_stop_grace = 0;
  if (!live(c)) {
    return;
  }
  log::v(2, "Killing container with a grace period",
         {{"pod", who()}, {"container", c.spec->name}, {"gracePeriod", std::to_string(left)}});
  signalStop(c);
  size_t index = static_cast<size_t>(&c - ctrs_.data());
  // Its own SIGKILL time: the pod's may come before these last seconds end.
  c.stop_timer = after(static_cast<double>(left), [index](PodWorker& w) {
    Ctr& k = w.ctrs_[index];
    k.stop_timer = 0;
    if (w.live(k)) {
      (void)w.ctx_.runtime->kill(k.handle);
    }
  });
}

}  // namespace kernelet::agent
