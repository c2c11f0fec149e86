#pragma once
// The /etc/hosts and /etc/resolv.conf a pod's containers see, computed as the
// kubelet computes them and written as files for the containers to bind-mount.

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "sys/result.h"

namespace kernelet::netns {

struct HostAlias {
  std::string ip;
  std::vector<std::string> hostnames;
};

struct HostsInput {
  bool host_network = false;
  std::string node_hosts;  // the node's /etc/hosts, for hostNetwork pods
  std::string pod_ip;
  std::string hostname;
  std::string subdomain;  // with it: <hostname>.<subdomain>.<namespace>.svc.<cluster domain>
  std::string pod_namespace;
  std::string cluster_domain = "cluster.local";
  std::vector<HostAlias> host_aliases;
};

std::string hostsFile(const HostsInput& in);

struct DnsOption {
  std::string name;
  std::optional<std::string> value;
};

struct DnsInput {
  std::string policy = "ClusterFirst";  // ClusterFirst, ClusterFirstWithHostNet, Default, None
  bool host_network = false;
  std::string node_resolv_conf;          // text of the node's resolv.conf (--resolv-conf)
  std::vector<std::string> cluster_dns;  // --cluster-dns
  std::string cluster_domain = "cluster.local";
  std::string pod_namespace = "default";
  // pod.spec.dnsConfig
  std::vector<std::string> nameservers;
  std::vector<std::string> searches;
  std::vector<DnsOption> options;
};

// Errors name the field: an unknown policy, None without nameservers. What
// the merge gives beyond the resolver's limits (3 nameservers; 32 search
// domains, none over 253 characters, 2048 characters in all) is left out as
// the kubelet leaves it out, each time with a line in `warnings` (the text of
// its DNSConfigForming event).
Result<std::string> resolvConf(const DnsInput& in, std::vector<std::string>* warnings = nullptr);

// Writes `content` to DIR/NAME atomically (mode 0644) and returns the path.
Result<std::string> writePodFile(const std::string& dir, const std::string& name,
                                 const std::string& content);

}  // namespace kernelet::netns
