// The agent's side of kubectl exec, attach and port-forward (agent/streams): the
// endpoints run on the server's thread and reach the pods through the loop
// (server_queue_), as /run does.
#include <atomic>
#include <memory>

#include "agent/app/agent.h"
#include "agent/log/log.h"
#include "agent/streams/attach_endpoint.h"
#include "agent/streams/exec_endpoint.h"
#include "agent/streams/port_forward_endpoint.h"

namespace kernelet::agent {

void Agent::addStreamEndpoints(server::Endpoints& endpoints) {
  // On the server thread: the read-only snapshot, never the workers.
  streams::PodExists exists = [this](const streams::PodRef& ref) {
    auto snap = snapshots_.current();
    for (const auto& [uid, pod] : snap->pods) {
      if (pod->namespace_ == ref.namespace_ && pod->name == ref.name &&
          (ref.uid.empty() || uid == ref.uid)) {
        return true;
      }
    }
    return false;
  };
  // Also the snapshot's: the runtime's state as the loop last published it
  // (the kubelet asks its runtime cache likewise). A run that ends after
  // this answer gets the start's error on the error stream instead.
  streams::ContainerRunning running = [this](const streams::PodRef& ref, const std::string& name) {
    auto snap = snapshots_.current();
    for (const auto& [uid, pod] : snap->pods) {
      if (pod->namespace_ != ref.namespace_ || pod->name != ref.name ||
          (!ref.uid.empty() && uid != ref.uid)) {
        continue;
      }
      const PodStatus& s = pod->status;
      for (const auto* list :
           {&s.init_container_statuses, &s.container_statuses, &s.ephemeral_container_statuses}) {
        for (const ContainerStatus& c : *list) {
          if (c.name == name && c.state.kind == ContainerState::Kind::kRunning) {
            return true;
          }
        }
      }
    }
    return false;
  };
  endpoints.exec = streams::execHandler(
      exists, running, [this](streams::ExecRequest r, streams::ExecHooks hooks) {
        auto shared = std::make_shared<streams::ExecRequest>(std::move(r));
        server_queue_->post([this, shared, hooks = std::move(hooks)]() mutable {
          execInPod(*shared, std::move(hooks));
        });
      });
  endpoints.attach = streams::attachHandler(
      exists, running, [this](streams::AttachRequest r, streams::AttachHooks hooks) {
        auto shared = std::make_shared<streams::AttachRequest>(std::move(r));
        server_queue_->post([this, shared, hooks = std::move(hooks)]() mutable {
          attachInPod(*shared, std::move(hooks));
        });
      });
  dialer_ = std::make_unique<netns::Dialer>();
  endpoints.port_forward =
      streams::portForwardHandler(exists, [this](const streams::PodRef& ref, uint16_t port,
                                                 std::function<void(Result<UniqueFd>)> done) {
        server_queue_->post([this, ref, port, done = std::move(done)]() mutable {
          dialInPod(ref, port, std::move(done));
        });
      });
}

PodWorker* Agent::findWorker(const streams::PodRef& ref) {
  for (auto& [uid, w] : workers_) {
    const Pod& pod = w->pod();
    if (pod.namespace_ == ref.namespace_ && pod.name == ref.name &&
        (ref.uid.empty() || uid == ref.uid) && !terminating_.contains(uid)) {
      return w.get();
    }
  }
  return nullptr;
}

void Agent::execInPod(streams::ExecRequest& r, streams::ExecHooks hooks) {
  PodWorker* w = findWorker(r.pod);
  if (w == nullptr) {
    return hooks.started(makeError("exec", "", "pod does not exist"));
  }
  // The hooks' order holds whatever happens: started once, then exited only
  // after a started(ok). A setup that fails is started's error; a worker
  // that goes before the setup reported is too.
  struct Order {
    streams::ExecHooks hooks;
    bool started = false, failed = false;
  };
  auto order = std::make_shared<Order>(Order{.hooks = std::move(hooks)});
  runtime::ExecIo io;
  io.stdin_fd = r.stdin_fd.get();
  io.stdout_fd = r.stdout_fd.get();
  io.stderr_fd = r.stderr_fd.get();
  io.tty = r.tty;
  io.console_socket = r.console_socket.get();
  io.started = [order](Result<void> s) {
    order->started = true;
    order->failed = !s;
    order->hooks.started(std::move(s));
  };
  log::v(2, "Exec in container",
         {{"pod", r.pod.namespace_ + "/" + r.pod.name}, {"container", r.container}});
  auto res = w->exec(r.container, r.command, io, [order](Result<int> status) {
    if (!order->started) {
      order->started = order->failed = true;
      if (status) {
        order->hooks.started(makeError("exec", "", "the process ended before it started"));
      } else {
        order->hooks.started(std::unexpected(status.error()));
      }
      return;
    }
    if (!order->failed) {
      order->hooks.exited(std::move(status));
    }
  });
  // The runtime gave the child its own copies: ours close with `r`.
  if (!res) {
    order->started = true;
    order->hooks.started(std::unexpected(res.error()));
  }
}

void Agent::attachInPod(streams::AttachRequest& r, streams::AttachHooks hooks) {
  PodWorker* w = findWorker(r.pod);
  if (w == nullptr) {
    return hooks.started(makeError("attach", "", "pod does not exist"));
  }
  // started runs below, before the runtime can end the run (its `ended`
  // never runs within attach()): the hooks' order holds.
  auto shared = std::make_shared<streams::AttachHooks>(std::move(hooks));
  runtime::AttachIo io{
      .stdout_fd = r.stdout_fd.get(), .stderr_fd = r.stderr_fd.get(), .stdin = r.stdin};
  log::v(2, "Attach to container",
         {{"pod", r.pod.namespace_ + "/" + r.pod.name}, {"container", r.container}});
  auto a = w->attach(r.container, io, r.tty, [shared] { shared->ended(); });
  // The runtime has its own copies of the output pipes: ours close with `r`.
  if (!a) {
    return shared->started(std::unexpected(a.error()));
  }
  streams::Attached out;
  out.stdin_fd = std::move(a->io.stdin_fd);
  out.terminal_fd = std::move(a->io.terminal_fd);
  auto once = std::make_shared<std::atomic<bool>>(false);
  out.detach = [this, once, h = a->handle, session = a->io.session] {
    if (once->exchange(true)) {
      return;
    }
    // Any thread: the runtime is the loop's. A run that ended meanwhile has
    // no session left to detach, which the runtime allows.
    server_queue_->post([this, h, session] { runtime_->detach(h, session); });
  };
  // Posted as detach is, so the two keep their order on the loop.
  out.stdin_ended = [this, h = a->handle, session = a->io.session] {
    server_queue_->post([this, h, session] { runtime_->attachStdinEnded(h, session); });
  };
  shared->started(std::move(out));
}

void Agent::dialInPod(const streams::PodRef& ref, uint16_t port,
                      std::function<void(Result<UniqueFd>)> done) {
  PodWorker* w = findWorker(ref);
  if (w == nullptr) {
    return done(makeError("port-forward", "", "pod does not exist"));
  }
  std::optional<std::string> ns = w->netnsPath();
  if (!ns) {
    return done(makeError("port-forward", "", "the pod has no network yet"));
  }
  // Off the loop: a connect into the pod's namespace may take its timeout.
  dialer_->dial({.ns_path = *ns, .ns_id = w->pod().uid}, port, std::move(done));
}

}  // namespace kernelet::agent
