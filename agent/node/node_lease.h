#pragma once
// The node's Lease in kube-node-lease: the heartbeat the control plane reads
// every few seconds (nodeLease in the kubelet). Renewed by a PUT of the object
// the last write returned with a new renewTime; created when missing; read
// again after a conflict.

#include <string>

#include "apiclient/api_client.h"

namespace kernelet::agent {

class NodeLease {
 public:
  NodeLease(apiclient::ApiClient& client, std::string node_name)
      : client_(client), node_(std::move(node_name)) {}

  // One renewal (a few attempts on conflicts); failures are logged and the
  // next call starts over. `node_uid` makes the Node the new Lease's owner.
  // Not thread-safe: one heartbeat thread calls it.
  void renew(const std::string& node_uid);

 private:
  apiclient::ApiClient& client_;
  std::string node_;
  std::string last_;  // the Lease as the API last returned it; empty: read it first
};

}  // namespace kernelet::agent
