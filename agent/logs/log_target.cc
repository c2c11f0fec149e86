#include "agent/logs/log_target.h"

namespace kernelet::agent::logs {
namespace {

using Kind = ContainerState::Kind;

// The message is the whole error, as the kubelet's fmt.Errorf is.
std::unexpected<Error> refuse(std::string message) { return makeError(std::move(message), "", ""); }

std::string quoted(const std::string& s) { return "\"" + s + "\""; }

}  // namespace

Result<int> logRun(const ContainerStatus* s, const std::string& pod, const std::string& container,
                   bool previous) {
  std::string who = "container " + quoted(container) + " in pod " + quoted(pod);
  if (s == nullptr) {
    return refuse(who + " is not available");
  }
  if (previous) {
    if (s->last_state.kind != Kind::kTerminated) {
      return refuse("previous terminated container " + quoted(container) + " in pod " +
                    quoted(pod) + " not found");
    }
    // lastState is the run before the current one, or, backing off, the one that just died.
    return s->state.kind == Kind::kWaiting ? s->restart_count : s->restart_count - 1;
  }
  switch (s->state.kind) {
    case Kind::kRunning:
    case Kind::kTerminated:
      return s->restart_count;
    case Kind::kWaiting:
      if (s->last_state.kind == Kind::kTerminated) {
        return s->restart_count;  // backing off: the run that died
      }
      if (s->state.reason == "ErrImagePull") {
        return refuse(who + " is waiting to start: image can't be pulled");
      }
      if (s->state.reason == "ImagePullBackOff") {
        return refuse(who + " is waiting to start: trying and failing to pull image");
      }
      return refuse(who + " is waiting to start: " + s->state.reason);
    case Kind::kNone:
      break;
  }
  if (s->last_state.kind == Kind::kTerminated) {
    return s->restart_count;
  }
  return refuse(who + " is waiting to start - no logs yet");
}

bool runIsRunning(const ContainerStatus& s, int run) {
  return s.state.kind == Kind::kRunning && s.restart_count == run;
}

const ContainerStatus* findContainerStatus(const PodStatus& status, const std::string& name) {
  for (const auto* list : {&status.container_statuses, &status.init_container_statuses,
                           &status.ephemeral_container_statuses}) {
    for (const ContainerStatus& c : *list) {
      if (c.name == name) {
        return &c;
      }
    }
  }
  return nullptr;
}

std::string containerLogDir(const std::string& pod_log_dir, const std::string& namespace_,
                            const std::string& pod, const std::string& uid,
                            const std::string& container) {
  return pod_log_dir + "/" + namespace_ + "_" + pod + "_" + uid + "/" + container;
}

}  // namespace kernelet::agent::logs
