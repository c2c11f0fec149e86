#include "agent/runtime/pod_sandbox.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <filesystem>
#include <thread>

#include "agent/model/pod_names.h"
#include "agent/model/saturating.h"
#include "agent/runtime/pod_sysctls.h"
#include "netns/dns_files.h"
#include "sys/fileio.h"

namespace kernelet::agent {
namespace {

cgroups::QosClass cgroupQos(QosClass q) {
  switch (q) {
    case QosClass::kGuaranteed:
      return cgroups::QosClass::kGuaranteed;
    case QosClass::kBurstable:
      return cgroups::QosClass::kBurstable;
    case QosClass::kBestEffort:
      return cgroups::QosClass::kBestEffort;
  }
  return cgroups::QosClass::kBestEffort;
}

// New IPC and UTS namespaces held by bind mounts on DIR/ipc and DIR/uts. A
// thread of ours unshares them (unshare affects only the calling thread for
// these two), names the UTS one and binds both; the mounts keep them alive.
Result<void> holdIpcUts(const std::string& dir, const std::string& hostname) {
  Result<void> result;
  std::thread t([&] {
    result = [&]() -> Result<void> {
      if (::unshare(CLONE_NEWIPC | CLONE_NEWUTS) != 0) {
        return sysError("unshare ipc+uts", dir);
      }
      if (::sethostname(hostname.data(), hostname.size()) != 0) {
        return sysError("sethostname", hostname);
      }
      for (const char* ns : {"ipc", "uts"}) {
        std::string target = dir + "/" + ns;
        int fd = ::open(target.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0444);
        if (fd < 0) {
          return sysError("create", target);
        }
        ::close(fd);
        std::string source = std::string("/proc/thread-self/ns/") + ns;
        if (::mount(source.c_str(), target.c_str(), nullptr, MS_BIND, nullptr) != 0) {
          return sysError("bind namespace", target);
        }
      }
      return {};
    }();
  });
  t.join();
  return result;
}

void releaseIpcUts(const std::string& dir) {
  for (const char* ns : {"ipc", "uts"}) {
    std::string target = dir + "/" + ns;
    ::umount2(target.c_str(), MNT_DETACH);
    ::unlink(target.c_str());
  }
}

int64_t sumOrMissing(const Pod& pod, const char* resource, bool limits, bool milli, bool& all) {
  int64_t sum = 0;
  all = true;
  for (const auto& c : pod.containers) {
    const ResourceList& list = limits ? c.resources.limits : c.resources.requests;
    auto it = list.find(resource);
    if (it == list.end() && !limits) {
      it = c.resources.limits.find(resource);  // the request defaults to the limit
      if (it == c.resources.limits.end()) {
        continue;
      }
    } else if (it == list.end()) {
      all = false;
      continue;
    }
    sum = saturatingAdd(sum, milli ? it->second.milliValue() : it->second.value());
  }
  return sum;
}

}  // namespace

cgroups::Limits podCgroupLimits(const Pod& pod) {
  cgroups::Limits l;
  bool all = false;
  int64_t cpu_request = sumOrMissing(pod, "cpu", false, true, all);
  l.cpu_weight = cgroups::sharesToWeight(cgroups::milliCpuToShares(cpu_request));
  int64_t cpu_limit = sumOrMissing(pod, "cpu", true, true, all);
  if (all && cpu_limit > 0) {
    l.cpu_max = cgroups::CpuMax{cgroups::milliCpuToQuota(cpu_limit), 100000};
  }
  int64_t memory_limit = sumOrMissing(pod, "memory", true, false, all);
  if (all && memory_limit > 0) {
    l.memory_max = memory_limit;
  }
  return l;
}

cgroups::Limits containerCgroupLimits(const ContainerResources& r) {
  cgroups::Limits l;
  auto get = [](const ResourceList& list, const char* name) -> const apiclient::Quantity* {
    auto it = list.find(name);
    return it != list.end() ? &it->second : nullptr;
  };
  const apiclient::Quantity* cpu_request = get(r.requests, "cpu");
  const apiclient::Quantity* cpu_limit = get(r.limits, "cpu");
  const apiclient::Quantity* memory_limit = get(r.limits, "memory");
  int64_t request = cpu_request ? cpu_request->milliValue()
                    : cpu_limit ? cpu_limit->milliValue()
                                : 0;
  l.cpu_weight = cgroups::sharesToWeight(cgroups::milliCpuToShares(request));
  if (cpu_limit != nullptr) {
    l.cpu_max = cgroups::CpuMax{cgroups::milliCpuToQuota(cpu_limit->milliValue()), 100000};
  }
  if (memory_limit != nullptr) {
    l.memory_max = memory_limit->value();
  }
  // The whole container goes when the kernel OOM-kills in it (the kubelet's
  // default since singleProcessOOMKill became configurable).
  l.memory_oom_group = true;
  return l;
}

Result<PodSandbox> PodSandbox::create(const Pod& pod, QosClass qos, const SandboxEnv& env) {
  PodSandbox sb;
  sb.pod_id_ = pod.uid;
  sb.run_dir_ = env.config->run_dir + "/pods/" + pod.uid;
  PodHostName names = podHostName(pod, env.config->cluster_domain);
  auto fail = [&sb](Error e) -> Result<PodSandbox> {
    if (auto c = sb.destroy(); !c) {
      e.cleanup.push_back(c.error().message());
    }
    return std::unexpected(std::move(e));
  };
  auto step = [&](Result<void> r, const char* what) -> std::optional<Error> {
    if (!r) {
      return withContext(r.error(), what);
    }
    return std::nullopt;
  };
  // Before anything is made: a pod whose FQDN does not fit the kernel's
  // hostname fails here, as the kubelet fails to generate its sandbox config.
  TRY(sb.hostname_, podKernelHostname(pod, env.config->cluster_domain));
  std::error_code ec;
  std::filesystem::create_directories(sb.run_dir_, ec);
  if (ec) {
    return makeError("mkdir", sb.run_dir_, ec.message());
  }

  auto group = cgroups::Cgroup::create(
      env.cgroup_mount, cgroups::podCgroupPath(env.config->cgroup_root, cgroupQos(qos), pod.uid));
  if (!group) {
    return fail(withContext(group.error(), "create pod cgroup"));
  }
  sb.cgroup_ = std::move(*group);
  sb.has_cgroup_ = true;
  if (env.enforce_limits) {
    if (auto e = step(sb.cgroup_.enableControllers(cgroups::kRequiredControllers), "pod cgroup")) {
      return fail(*e);
    }
    if (auto e = step(sb.cgroup_.apply(podCgroupLimits(pod)), "pod cgroup limits")) {
      return fail(*e);
    }
  }

  if (auto e = step(holdIpcUts(sb.run_dir_, sb.hostname_), "pod namespaces")) {
    return fail(*e);
  }
  sb.has_ns_ = true;
  if (!pod.host_network) {
    if (env.network == nullptr) {
      return fail(makeError("set up pod network", pod.uid, "no pod network on this node").error());
    }
    sb.network_ = env.network;
    auto net = env.network->setUp(pod.uid);
    if (!net) {
      return fail(withContext(net.error(), "pod network"));
    }
    sb.netns_path_ = net->ns_path;
    sb.ip_ = net->ip;
  }
  if (auto e = step(writePodSysctls(pod.sysctls, sb.ipcPath(), sb.netns_path_), "pod sysctls")) {
    return fail(*e);
  }

  netns::HostsInput hosts{.host_network = pod.host_network,
                          .node_hosts = env.node_hosts,
                          .pod_ip = sb.ip_,
                          .hostname = names.hostname,
                          .subdomain = pod.subdomain,
                          .pod_namespace = pod.namespace_,
                          .cluster_domain = env.config->cluster_domain};
  for (const HostAlias& a : pod.host_aliases) {
    hosts.host_aliases.push_back({a.ip, a.hostnames});
  }
  netns::DnsInput dns{.policy = pod.dns_policy,
                      .host_network = pod.host_network,
                      .node_resolv_conf = env.node_resolv_conf,
                      .cluster_dns = env.config->cluster_dns,
                      .cluster_domain = env.config->cluster_domain,
                      .pod_namespace = pod.namespace_};
  if (pod.dns_config) {
    dns.nameservers = pod.dns_config->nameservers;
    dns.searches = pod.dns_config->searches;
    for (const PodDnsOption& o : pod.dns_config->options) {
      dns.options.push_back({o.name, o.value});
    }
  }
  auto resolv = netns::resolvConf(dns, &sb.dns_warnings_);
  if (!resolv) {
    return fail(withContext(resolv.error(), "pod dns"));
  }
  for (auto [name, content] : {std::pair{"hosts", netns::hostsFile(hosts)},
                               {"resolv.conf", *resolv},
                               {"hostname", sb.hostname_ + "\n"}}) {
    if (auto w = netns::writePodFile(sb.run_dir_, name, content); !w) {
      return fail(w.error());
    }
  }
  return sb;
}

PodSandbox PodSandbox::remains(const Layout& layout, const SandboxEnv& env) {
  PodSandbox sb;
  sb.pod_id_ = layout.pod_id;
  sb.run_dir_ = layout.run_dir;
  sb.netns_path_ = layout.netns_path;
  sb.ip_ = layout.ip;
  sb.hostname_ = layout.hostname;
  size_t slash = layout.cgroup.rfind('/');
  if (slash != std::string::npos && slash > 0) {
    if (auto g = cgroups::Cgroup::open(layout.cgroup.substr(0, slash),
                                       layout.cgroup.substr(slash + 1))) {
      sb.cgroup_ = std::move(*g);
      sb.has_cgroup_ = true;
    }
  }
  sb.has_ns_ = true;  // releaseIpcUts tolerates what is gone
  if (!layout.netns_path.empty()) {
    sb.network_ = env.network;
  }
  return sb;
}

Result<PodSandbox> PodSandbox::adopt(const Layout& layout, const SandboxEnv& env) {
  PodSandbox sb = remains(layout, env);
  if (!sb.has_cgroup_) {
    return makeError("adopt pod sandbox", layout.cgroup, "the pod cgroup is gone");
  }
  // The namespace files are bind mounts of nsfs: a file that is not (the
  // mount is gone, and with it the namespace) would make every container
  // that joins it fail.
  for (const std::string& ns : {sb.ipcPath(), sb.utsPath(), layout.netns_path}) {
    struct statfs st {};
    if (ns.empty()) {
      continue;
    }
    if (::statfs(ns.c_str(), &st) != 0) {
      return sysError("adopt pod sandbox", ns);
    }
    if (st.f_type != NSFS_MAGIC) {
      return makeError("adopt pod sandbox", ns, "not a namespace (its bind mount is gone)");
    }
  }
  return sb;
}

Result<void> PodSandbox::destroy() {
  std::optional<Error> first;
  auto keep = [&first](Result<void> r) {
    if (!r && !first) {
      first = r.error();
    }
  };
  if (has_cgroup_) {
    // remove() kills what is left (cgroup.kill) and waits for the group to empty.
    keep(cgroup_.remove());
    has_cgroup_ = false;
  }
  if (network_ != nullptr) {
    keep(network_->tearDown(pod_id_));
    network_ = nullptr;
  }
  if (has_ns_) {
    releaseIpcUts(run_dir_);
    has_ns_ = false;
  }
  if (!run_dir_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(run_dir_, ec);
  }
  if (first) {
    return std::unexpected(*first);
  }
  return {};
}

std::unique_ptr<SandboxTeardown> PodSandbox::destroyAsync(EventLoop& loop, TimerQueue& timers,
                                                          std::function<void(Result<void>)> done) {
  cgroups::Cgroup group;
  if (has_cgroup_) {
    group = std::move(cgroup_);
    has_cgroup_ = false;
  }
  std::unique_ptr<SandboxTeardown> t(new SandboxTeardown(std::move(*this), std::move(done)));
  *this = PodSandbox();
  SandboxTeardown* self = t.get();
  // A sandbox without a cgroup still calls back from the loop: removeAsync of
  // an empty handle completes on the next turn.
  t->removal_ = cgroups::removeAsync(loop, timers, std::move(group), std::chrono::seconds(5),
                                     [self](Result<void> r) { self->cgroupRemoved(std::move(r)); });
  return t;
}

SandboxTeardown::~SandboxTeardown() {
  if (!finished_) {
    removal_.reset();  // stops waiting; the killed group is left to recovery
    // Nobody to report to: the caller gave up on this teardown.
    (void)rest_.destroy();
  }
}

void SandboxTeardown::cgroupRemoved(Result<void> r) {
  finished_ = true;
  // The processes are gone (or the deadline passed): the rest needs no wait.
  Result<void> rest = rest_.destroy();
  if (!r && !rest) {
    r.error().cleanup.push_back(rest.error().message());
  } else if (!rest) {
    r = std::move(rest);
  }
  // Last: `done` may destroy this object.
  auto done = std::move(done_);
  done(std::move(r));
}

}  // namespace kernelet::agent
