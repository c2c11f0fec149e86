#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include <functional>
#include <optional>
#include <thread>
#include <vector>

#include "netns/netlink.h"
#include "netns/netns.h"
#include "sys/unique_fd.h"

namespace kernelet::netns {

namespace {

// A netlink socket inside the namespace at `path`: opened by a thread that
// entered it; the socket stays bound to that namespace after the thread leaves.
Result<Netlink> openIn(const std::string& path) {
  UniqueFd ns(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!ns) {
    return sysError("open network namespace", path);
  }
  std::optional<Result<Netlink>> out;
  std::thread([&] {
    if (::setns(ns.get(), CLONE_NEWNET) != 0) {
      out = sysError("setns", path);
      return;
    }
    out = Netlink::open();
  }).join();
  return std::move(*out);
}

// Undo steps of a half-made pod network, run last first.
class Rollback {
 public:
  void add(std::function<Result<void>()> step) { steps_.push_back(std::move(step)); }
  void dismiss() { steps_.clear(); }
  Error run(Error e) {
    for (auto it = steps_.rbegin(); it != steps_.rend(); ++it) {
      if (auto r = (*it)(); !r) {
        e.cleanup.push_back(r.error().message());
      }
    }
    steps_.clear();
    return e;
  }

 private:
  std::vector<std::function<Result<void>()>> steps_;
};

}  // namespace

std::string Network::hostVethName(const std::string& pod_id) {
  uint64_t h = 1469598103934665603ull;  // FNV-1a
  for (unsigned char c : pod_id) {
    h = (h ^ c) * 1099511628211ull;
  }
  char buf[16];
  std::snprintf(buf, sizeof buf, "kv%012llx",
                static_cast<unsigned long long>(h & 0xffffffffffffull));
  return buf;
}

Result<Network> Network::open(const NetworkConfig& config) {
  TRY(Ipv4Cidr cidr, Ipv4Cidr::parse(config.pod_cidr));
  if (config.bridge.empty() || config.bridge.size() > 15) {
    return makeError("network config", config.bridge, "bridge name must have 1 to 15 characters");
  }
  TRY(Netlink nl, Netlink::open());
  TRY(bool exists, nl.exists(config.bridge));
  if (!exists) {
    TRY_VOID(nl.createBridge(config.bridge, config.mtu));
  } else {
    TRY(bool bridge, nl.isBridge(config.bridge));
    if (!bridge) {
      return makeError("network config", config.bridge, "exists and is not a bridge");
    }
  }
  TRY_VOID(
      nl.addAddress(config.bridge, ipToString(cidr.gateway()) + "/" + std::to_string(cidr.prefix)));
  TRY_VOID(nl.setUp(config.bridge));
  TRY(Ipam ipam, Ipam::open(config.state_dir + "/" + config.bridge, cidr));
  return Network(config, cidr, std::move(ipam));
}

Result<PodNetwork> Network::setUp(const std::string& pod_id) {
  if (pod_id.empty() || pod_id.find('/') != std::string::npos || pod_id[0] == '.') {
    return makeError("pod network", pod_id, "the pod id must be a plain name");
  }
  PodNetwork pod{.ns_path = nsPath(pod_id),
                 .prefix = cidr_.prefix,
                 .gateway = ipToString(cidr_.gateway()),
                 .host_veth = hostVethName(pod_id)};
  TRY(Netlink host, Netlink::open());
  // Already set up (an agent restart): hand the same network back.
  if (uint32_t held = ipam_.find(pod_id); held != 0 && ::access(pod.ns_path.c_str(), F_OK) == 0) {
    TRY(bool veth, host.exists(pod.host_veth));
    if (veth) {
      pod.ip = ipToString(held);
      return pod;
    }
  }

  Rollback undo;
  auto fail = [&](Error e) {
    return std::unexpected(withContext(undo.run(std::move(e)), "set up network of pod " + pod_id));
  };

  auto ip = ipam_.allocate(pod_id);
  if (!ip) {
    return fail(ip.error());
  }
  pod.ip = ipToString(*ip);
  undo.add([&] { return ipam_.release(pod_id); });

  if (auto r = createNamespace(pod.ns_path); !r) {
    return fail(r.error());
  }
  undo.add([&] { return removeNamespace(pod.ns_path); });

  UniqueFd ns(::open(pod.ns_path.c_str(), O_RDONLY | O_CLOEXEC));
  auto bridge = host.ifindex(config_.bridge);
  if (!ns || !bridge) {
    return fail(!ns ? sysError("open", pod.ns_path).error() : bridge.error());
  }
  if (auto r = host.createVethPair(pod.host_veth, "eth0", ns.get(), *bridge, config_.mtu); !r) {
    return fail(r.error());
  }
  undo.add([&] { return host.deleteLink(pod.host_veth); });

  auto inside = openIn(pod.ns_path);
  if (!inside) {
    return fail(inside.error());
  }
  auto configure = [&]() -> Result<void> {
    TRY_VOID(inside->addAddress("eth0", pod.ip + "/" + std::to_string(pod.prefix)));
    TRY_VOID(inside->setUp("eth0"));
    return inside->addDefaultRoute("eth0", pod.gateway);
  };
  if (auto r = configure(); !r) {
    return fail(r.error());
  }
  undo.dismiss();
  return pod;
}

Result<void> Network::tearDown(const std::string& pod_id) {
  // Every step runs even if one fails, so as much as possible is freed.
  std::optional<Error> first;
  auto keep = [&](Result<void> r) {
    if (!r) {
      if (!first) {
        first = r.error();
      } else {
        first->cleanup.push_back(r.error().message());
      }
    }
  };
  auto host = Netlink::open();
  // Deleting the host end takes eth0 with it, synchronously; the namespace
  // itself is freed by the kernel once unmounted.
  keep(host ? host->deleteLink(hostVethName(pod_id)) : Result<void>(std::unexpected(host.error())));
  keep(removeNamespace(nsPath(pod_id)));
  keep(ipam_.release(pod_id));
  if (first) {
    return std::unexpected(withContext(*first, "tear down network of pod " + pod_id));
  }
  return {};
}

}  // namespace kernelet::netns
