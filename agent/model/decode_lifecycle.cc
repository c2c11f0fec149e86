// Decoding a container's lifecycle (postStart, preStop, stopSignal) with the
// API server's validation: exactly one action per hook, exec with a command,
// httpGet with a port, sleep within the pod's grace period, a stop signal
// the pod's os has.

#include <yaml-cpp/yaml.h>

#include <optional>
#include <string>
#include <vector>

#include "agent/model/decode.h"
#include "agent/model/pod.h"
#include "agent/model/stop_signal.h"

namespace kernelet::agent::decode {

namespace {

bool isSet(const YAML::Node& n) { return n && !n.IsNull(); }

Result<std::optional<LifecycleHandler>> handler(const Ctx& c, const YAML::Node& n,
                                                const std::string& field,
                                                const std::vector<ContainerPort>& ports) {
  if (!isSet(n)) {
    return std::optional<LifecycleHandler>();
  }
  if (!n.IsMap()) {
    return c.error(n, field, "must be a map");
  }
  LifecycleHandler h;
  h.action.timeout_seconds = 0;  // a hook has no timeout of its own (preStop: the grace period)
  int kinds = 0;
  // In the API's order, so the second one is the one named, as the API names it.
  for (const char* key : {"exec", "httpGet", "tcpSocket", "sleep"}) {
    const YAML::Node a = n[key];
    if (!isSet(a)) {
      continue;
    }
    std::string f = field + "." + key;
    if (kinds++ > 0) {
      return c.error(a, f, "may not specify more than 1 handler type");
    }
    if (!a.IsMap()) {
      return c.error(a, f, "must be a map");
    }
    const std::string k = key;
    if (k == "exec") {
      h.kind = LifecycleHandler::Kind::kExec;
      h.action.kind = Probe::Kind::kExec;
      TRY(h.action.command, strings(c, a, "command", f));
      if (h.action.command.empty()) {
        return c.error(a, f + ".command", "required");
      }
    } else if (k == "httpGet") {
      h.kind = LifecycleHandler::Kind::kHttpGet;
      h.action.kind = Probe::Kind::kHttpGet;
      TRY_VOID(httpGet(c, a, f, ports, h.action));
    } else if (k == "tcpSocket") {
      // Deprecated and never run by the kubelet: accepted as the API accepts
      // it, and failing when the hook runs (hooks.cc), as the kubelet's does.
      h.kind = LifecycleHandler::Kind::kTcpSocket;
      h.action.kind = Probe::Kind::kTcpSocket;
      TRY(h.action.port, port(c, a, f, ports));
    } else {
      h.kind = LifecycleHandler::Kind::kSleep;
      TRY(auto seconds, opt<int64_t>(c, a, "seconds", f));
      if (!seconds) {
        return c.error(a, f + ".seconds", "required");
      }
      h.sleep_seconds = *seconds;  // checked against the grace period by checkSleepHooks
    }
  }
  if (kinds == 0) {
    return c.error(n, field, "must specify a handler type");
  }
  return std::optional<LifecycleHandler>(std::move(h));
}

}  // namespace

Result<ContainerLifecycle> lifecycle(const Ctx& c, const YAML::Node& n, const std::string& field,
                                     const std::vector<ContainerPort>& ports) {
  ContainerLifecycle l;
  if (!isSet(n)) {
    return l;
  }
  if (!n.IsMap()) {
    return c.error(n, field, "must be a map");
  }
  TRY(l.post_start, handler(c, n["postStart"], field + ".postStart", ports));
  TRY(l.pre_stop, handler(c, n["preStop"], field + ".preStop", ports));
  // Checked against the pod's os by checkStopSignals; an init container's is
  // refused by the field table (pod_fields.cc).
  TRY(l.stop_signal, str(c, n, "stopSignal", field));
  return l;
}

Result<void> checkStopSignals(const Ctx& c, const YAML::Node& spec, const Pod& pod,
                              const std::string& os) {
  const YAML::Node nodes = spec["containers"];
  for (size_t i = 0; i < pod.containers.size() && nodes && i < nodes.size(); i++) {
    const std::string& signal = pod.containers[i].lifecycle.stop_signal;
    if (signal.empty()) {
      continue;
    }
    const YAML::Node at = nodes[i]["lifecycle"]["stopSignal"];
    const std::string f = "spec.containers[" + std::to_string(i) + "].lifecycle.stopSignal";
    // The API's validateStopSignal, in its words.
    if (os.empty()) {
      return c.error(at, f, "Forbidden: may not be set for containers with empty `spec.os.name`");
    }
    if (os == "windows" && signal != "SIGKILL" && signal != "SIGTERM") {
      return c.error(
          at, f,
          "Unsupported value: \"" + signal + "\": supported values: \"SIGKILL\", \"SIGTERM\"");
    }
    if (os == "linux" && !linuxStopSignal(signal)) {
      return c.error(
          at, f,
          "Unsupported value: \"" + signal + "\": supported values: " + linuxStopSignalList());
    }
  }
  return {};
}

Result<void> checkSleepHooks(const Ctx& c, const YAML::Node& spec, const Pod& pod) {
  const int64_t grace = pod.termination_grace_period_seconds;
  for (const char* list : {"initContainers", "containers"}) {
    const auto& decoded = std::string(list) == "containers" ? pod.containers : pod.init_containers;
    const YAML::Node nodes = spec[list];
    for (size_t i = 0; i < decoded.size() && nodes && i < nodes.size(); i++) {
      const ContainerLifecycle& l = decoded[i].lifecycle;
      for (const auto& [hook, h] :
           {std::pair{"postStart", &l.post_start}, std::pair{"preStop", &l.pre_stop}}) {
        if (!*h || (*h)->kind != LifecycleHandler::Kind::kSleep) {
          continue;
        }
        int64_t seconds = (*h)->sleep_seconds;
        if (seconds < 0 || seconds > grace) {
          const YAML::Node at = nodes[i]["lifecycle"][hook]["sleep"]["seconds"];
          return c.error(
              at,
              "spec." + std::string(list) + "[" + std::to_string(i) + "].lifecycle." + hook +
                  ".sleep.seconds",
              "Invalid value: " + std::to_string(seconds) +
                  ": must be non-negative and less than terminationGracePeriodSeconds (" +
                  std::to_string(grace) + ")");
        }
      }
    }
  }
  return {};
}

}  // namespace kernelet::agent::decode
