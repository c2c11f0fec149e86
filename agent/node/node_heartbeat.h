#pragma once
// The Node in the API, kept by one thread: it registers the Node (or, when it
// exists already, takes its uid and reconciles its labels), then every 10 s
// renews the Lease and patches the node status when it changed or every 5
// minutes (the kubelet's nodeStatusReportFrequency), recording the kubelet's
// node events (Starting, NodeReady, NodeHasSufficientMemory, ...).

#include <chrono>
#include <functional>
#include <map>
#include <string>

#include "agent/config.h"
#include "agent/events/event_writer.h"
#include "agent/node/node_lease.h"
#include "agent/node_status.h"
#include "apiclient/api_client.h"
#include "sys/stoppable_thread.h"

namespace kernelet::agent {

class NodeHeartbeat {
 public:
  // Starts the thread. `beat` runs on it after each lease renewal, with the
  // Node's uid (the owner of what the node makes in the API).
  using Beat = std::function<void(const std::string& node_uid)>;
  NodeHeartbeat(apiclient::ApiClient& client, AgentConfig config, NodeFacts facts,
                EventWriter& events, Beat beat);
  ~NodeHeartbeat() = default;
  NodeHeartbeat(const NodeHeartbeat&) = delete;
  NodeHeartbeat& operator=(const NodeHeartbeat&) = delete;

  // Lets the thread go soon; the destructor waits for it.
  void stop() { thread_.stop(); }

 private:
  void run();
  bool registerNode();
  void reportStatus(bool force);
  EventRecord nodeEvent(const std::string& reason, const std::string& message) const;

  apiclient::ApiClient& client_;
  AgentConfig config_;
  NodeFacts facts_;
  EventWriter& events_;
  Beat beat_;
  NodeLease lease_;
  // The thread's own: the Node's uid, what was last reported, and when each
  // condition last changed ("Ready=True" -> time).
  std::string node_uid_;
  std::string last_fingerprint_;
  std::chrono::steady_clock::time_point last_report_;
  std::map<std::string, std::string> transitions_;
  StoppableThread thread_;  // last: stopped and joined first
};

}  // namespace kernelet::agent
