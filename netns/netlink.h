#pragma once
// A thin, owning layer over libnl-route for the few operations pod networking
// needs. A Netlink is bound to the network namespace it was opened in: open one
// inside a pod's namespace to configure the pod's side.

#include <memory>
#include <string>

#include "sys/result.h"

struct nl_sock;

namespace kernelet::netns {

class Netlink {
 public:
  // A NETLINK_ROUTE socket in the calling thread's network namespace.
  static Result<Netlink> open();

  Result<int> ifindex(const std::string& name);
  Result<bool> exists(const std::string& name);
  Result<void> createBridge(const std::string& name, int mtu);
  Result<bool> isBridge(const std::string& name);
  // A veth pair: `host` here, attached to `bridge` and up; `peer` created
  // directly in the namespace `peer_ns_fd`.
  Result<void> createVethPair(const std::string& host, const std::string& peer, int peer_ns_fd,
                              int bridge_ifindex, int mtu);
  Result<void> setUp(const std::string& name);
  // "10.88.0.1/16" on the link; an address already there is fine.
  Result<void> addAddress(const std::string& name, const std::string& cidr);
  Result<void> addDefaultRoute(const std::string& name, const std::string& gateway);
  // Deleting a veth end deletes its peer too. A missing link is not an error.
  Result<void> deleteLink(const std::string& name);

 private:
  explicit Netlink(nl_sock* sock);
  std::unique_ptr<nl_sock, void (*)(nl_sock*)> sock_;
};

}  // namespace kernelet::netns
