#include "agent/node/node_heartbeat.h"

#include <random>

#include "agent/log.h"
#include "apiclient/objects.h"

namespace kernelet::agent {
namespace {

using apiclient::resourcePath;

constexpr auto kNodeReport = std::chrono::minutes(5);  // nodeStatusReportFrequency

std::string nowTime() {
  timespec t{};
  ::clock_gettime(CLOCK_REALTIME, &t);
  return apiclient::formatTime(t);
}

std::string uidOf(const std::string& json) {
  auto m = apiclient::decodeMeta(json, "response");
  return m ? m->uid : "";
}

}  // namespace

NodeHeartbeat::NodeHeartbeat(apiclient::ApiClient& client, AgentConfig config, NodeFacts facts,
                             EventWriter& events, Beat beat)
    : client_(client),
      config_(std::move(config)),
      facts_(std::move(facts)),
      events_(events),
      beat_(std::move(beat)),
      lease_(client, facts_.name) {
  thread_.start([this] { run(); });
}

EventRecord NodeHeartbeat::nodeEvent(const std::string& reason, const std::string& message) const {
  return {.involved_kind = "Node",
          .involved_name = facts_.name,
          .involved_uid = facts_.name,
          .reason = reason,
          .message = message};
}

bool NodeHeartbeat::registerNode() {
  NodeSignals signals = readNodeSignals(config_);
  auto created = client_.create("/api/v1/nodes", nodeJson(facts_, signals, nowTime()));
  if (created) {
    node_uid_ = uidOf(*created);
    log::info("Successfully registered node", {{"node", facts_.name}});
    events_.record(nodeEvent("Starting", "Starting kubelet."));
    return true;
  }
  if (created.error().reason != "AlreadyExists") {
    log::error("Unable to register node with API server",
               {{"node", facts_.name}, {"err", created.error().str()}});
    return false;
  }
  // Known already (a restart): take its uid, reconcile the labels, send the status.
  auto existing = client_.get(resourcePath("v1", "nodes", "", facts_.name));
  if (!existing) {
    return false;
  }
  auto labels = client_.patch(
      resourcePath("v1", "nodes", "", facts_.name), apiclient::PatchType::kMerge,
      R"({"metadata":{"labels":{"kubernetes.io/hostname":")" + facts_.hostname +
          R"(","kubernetes.io/os":"linux","kubernetes.io/arch":")" + facts_.architecture + "\"}}}");
  if (!labels) {
    return false;
  }
  node_uid_ = uidOf(*existing);
  log::info("Node already registered, reconciled", {{"node", facts_.name}});
  events_.record(nodeEvent("Starting", "Starting kubelet."));
  return true;
}

void NodeHeartbeat::reportStatus(bool force) {
  NodeSignals signals = readNodeSignals(config_);
  std::string fingerprint = nodeStatusFingerprint(facts_, signals);
  auto now = std::chrono::steady_clock::now();
  if (!force && fingerprint == last_fingerprint_ && now - last_report_ < kNodeReport) {
    return;  // nothing changed and the last report is recent: the lease says we live
  }
  std::string t = nowTime();
  struct Condition {
    const char* type;
    bool status;
    const char* if_true;  // the kubelet's event reasons for the two states
    const char* if_false;
  };
  for (const Condition& c : {Condition{"MemoryPressure", signals.memory_pressure,
                                       "NodeHasInsufficientMemory", "NodeHasSufficientMemory"},
                             Condition{"DiskPressure", signals.disk_pressure, "NodeHasDiskPressure",
                                       "NodeHasNoDiskPressure"},
                             Condition{"PIDPressure", signals.pid_pressure,
                                       "NodeHasInsufficientPID", "NodeHasSufficientPID"},
                             Condition{"Ready", signals.ready, "NodeReady", "NodeNotReady"}}) {
    std::string key = std::string(c.type) + "=" + (c.status ? "True" : "False");
    std::string other = std::string(c.type) + "=" + (c.status ? "False" : "True");
    transitions_.erase(other);
    if (transitions_.emplace(key, t).second) {
      // A condition seen for the first time or changed: the kubelet's node event.
      std::string reason = c.status ? c.if_true : c.if_false;
      events_.record(nodeEvent(reason, "Node " + facts_.name + " status is now: " + reason));
    }
  }
  auto r = client_.patch(resourcePath("v1", "nodes", "", facts_.name, "status"),
                         apiclient::PatchType::kStrategicMerge,
                         nodeStatusJson(facts_, signals, t, transitions_));
  if (!r) {
    log::error("Error updating node status", {{"err", r.error().str()}});
    return;
  }
  last_fingerprint_ = fingerprint;
  last_report_ = now;
}

void NodeHeartbeat::run() {
  // Registration: back-off 100 ms doubling to 7 s, as the kubelet.
  auto backoff = std::chrono::milliseconds(100);
  while (!registerNode()) {
    if (!thread_.sleep(backoff)) {
      return;
    }
    backoff = std::min(backoff * 2, std::chrono::milliseconds(7000));
  }
  reportStatus(true);
  std::mt19937 rng(std::random_device{}());
  for (;;) {
    lease_.renew(node_uid_);
    reportStatus(false);
    beat_(node_uid_);
    // 10 s with the kubelet's 4% jitter.
    auto jitter = std::uniform_int_distribution<int>(0, 400)(rng);
    if (!thread_.sleep(std::chrono::milliseconds(10000 - 200 + jitter))) {
      return;
    }
  }
}

}  // namespace kernelet::agent
