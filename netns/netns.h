#pragma once
// netns: pod network namespaces on a node bridge, without CNI binaries.
// Each pod gets a network namespace held by a bind mount (no process needed),
// a veth pair (host end on the bridge, `eth0` inside), an address from the pod
// CIDR with a default route via the bridge, and loopback up.

#include <string>
#include <vector>

#include "netns/ipam.h"
#include "sys/result.h"

namespace kernelet::netns {

struct NetworkConfig {
  std::string bridge = "kernelet0";
  std::string pod_cidr = "10.88.0.0/16";  // the bridge takes the first address
  int mtu = 1500;
  std::string run_dir = "/run/kernelet/netns";       // the namespace files
  std::string state_dir = "/var/lib/kernelet/ipam";  // IPAM, survives restarts
};

struct PodNetwork {
  std::string ns_path;  // join with setns, e.g. as an isolation NamespaceRef
  std::string ip;       // the pod's address
  int prefix = 0;
  std::string gateway;    // the bridge's address
  std::string host_veth;  // the host end, on the bridge
};

class Network {
 public:
  // Creates the bridge (up, with the gateway address) if it is not there yet.
  static Result<Network> open(const NetworkConfig& config);

  // All or nothing: on failure no namespace, veth or address is left behind
  // (cleanup failures are reported beside the error). Setting up a pod that
  // already has its network returns that network again.
  Result<PodNetwork> setUp(const std::string& pod_id);
  // Removes the pod's veth, namespace and address; what is already gone is fine.
  Result<void> tearDown(const std::string& pod_id);

  const NetworkConfig& config() const { return config_; }
  const Ipv4Cidr& cidr() const { return cidr_; }
  // The host veth's name for a pod: short and stable (IFNAMSIZ is 16).
  static std::string hostVethName(const std::string& pod_id);
  std::string nsPath(const std::string& pod_id) const { return config_.run_dir + "/" + pod_id; }

 private:
  Network(NetworkConfig config, Ipv4Cidr cidr, Ipam ipam)
      : config_(std::move(config)), cidr_(cidr), ipam_(std::move(ipam)) {}
  NetworkConfig config_;
  Ipv4Cidr cidr_;
  Ipam ipam_;
};

// A network namespace bound to `path` with loopback up. It lives until
// removeNamespace() unmounts it (and no process is left in it).
Result<void> createNamespace(const std::string& path);
Result<void> removeNamespace(const std::string& path);

}  // namespace kernelet::netns
