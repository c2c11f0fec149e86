#pragma once
// What the containers of one pod share, made before the first container and
// taken down after the last (the kubelet's "sandbox", without a pause process):
// the pod cgroup under its QoS class, the network namespace with its address,
// IPC and UTS namespaces held by bind mounts with the pod's sysctls written
// into them, and the pod's /etc/hosts, /etc/resolv.conf and /etc/hostname files.

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "agent/config/config.h"
#include "agent/model/pod.h"
#include "agent/model/qos.h"
#include "cgroups/cgroups.h"
#include "netns/netns.h"
#include "sys/event_loop.h"
#include "sys/result.h"
#include "sys/timer_queue.h"

namespace kernelet::agent {

struct SandboxEnv {
  const AgentConfig* config = nullptr;
  std::string cgroup_mount;  // the cgroup v2 mount
  bool enforce_limits = true;
  netns::Network* network = nullptr;  // the node bridge; unused for hostNetwork pods
  std::string node_resolv_conf, node_hosts;
};

class SandboxTeardown;

class PodSandbox {
 public:
  // All or nothing: on failure everything made so far is removed again.
  static Result<PodSandbox> create(const Pod& pod, QosClass qos, const SandboxEnv& env);
  // Kills whatever is left in the pod cgroup, then removes the cgroup, the
  // namespaces, the address and the pod's run dir. Safe to call twice. Blocks
  // while the killed processes exit (up to 5 s): for recovery at start-up and
  // for a create() that failed; the pod loop uses destroyAsync().
  Result<void> destroy();
  // destroy() without blocking the loop: the pod cgroup is killed at once and
  // its emptying awaited on `loop` (cgroups::removeAsync, 5 s deadline); then
  // the network, the namespaces and the run dir go and `done` runs, once, from
  // the loop, with the first error (the others as its cleanup). What this
  // sandbox held moves into the returned handle, which must be kept until
  // `done` (which may destroy it); this sandbox is left empty. Destroying the
  // handle earlier removes everything but the killed cgroup at once, leaving
  // that to recovery, and `done` never runs.
  std::unique_ptr<SandboxTeardown> destroyAsync(EventLoop& loop, TimerQueue& timers,
                                                std::function<void(Result<void>)> done);

  // What create() made, as a previous agent recorded it (run_records.h):
  // the pod cgroup is opened, nothing is created again. Fails when the cgroup
  // or the network namespace is gone.
  struct Layout {
    std::string pod_id, run_dir, netns_path, ip, hostname, cgroup;  // cgroup: absolute
  };
  static Result<PodSandbox> adopt(const Layout& layout, const SandboxEnv& env);
  // Whatever of it is left, to destroy(): never fails.
  static PodSandbox remains(const Layout& layout, const SandboxEnv& env);
  Layout layout() const { return {pod_id_, run_dir_, netns_path_, ip_, hostname_, cgroup_.path()}; }

  cgroups::Cgroup& cgroup() { return cgroup_; }
  const std::string& ip() const { return ip_; }
  const std::string& netnsPath() const { return netns_path_; }  // empty: the host's
  std::string ipcPath() const { return run_dir_ + "/ipc"; }
  std::string utsPath() const { return run_dir_ + "/uts"; }
  const std::string& hostname() const { return hostname_; }
  std::string hostsFile() const { return run_dir_ + "/hosts"; }
  std::string resolvConf() const { return run_dir_ + "/resolv.conf"; }
  std::string hostnameFile() const { return run_dir_ + "/hostname"; }
  // What create() left out of the pod's resolv.conf to fit the resolver's
  // limits: the messages of the kubelet's DNSConfigForming events.
  const std::vector<std::string>& dnsWarnings() const { return dns_warnings_; }

 private:
  std::string pod_id_, run_dir_, netns_path_, ip_, hostname_;
  netns::Network* network_ = nullptr;
  cgroups::Cgroup cgroup_;
  bool has_cgroup_ = false, has_ns_ = false;
  std::vector<std::string> dns_warnings_;
};

// A sandbox being taken down on the loop: see PodSandbox::destroyAsync.
class SandboxTeardown {
 public:
  ~SandboxTeardown();
  SandboxTeardown(const SandboxTeardown&) = delete;
  SandboxTeardown& operator=(const SandboxTeardown&) = delete;

 private:
  friend class PodSandbox;
  explicit SandboxTeardown(PodSandbox rest, std::function<void(Result<void>)> done)
      : rest_(std::move(rest)), done_(std::move(done)) {}
  void cgroupRemoved(Result<void> r);

  PodSandbox rest_;  // the sandbox without its cgroup
  std::function<void(Result<void>)> done_;
  std::unique_ptr<cgroups::AsyncRemoval> removal_;
  bool finished_ = false;
};

// The pod-level cgroup limits the kubelet sets: cpu.weight from the sum of the
// requests, cpu.max and memory.max when every container sets that limit.
cgroups::Limits podCgroupLimits(const Pod& pod);
// A container's limits: cpu.weight, cpu.max, memory.max, memory.oom.group.
cgroups::Limits containerCgroupLimits(const ContainerResources& r);

}  // namespace kernelet::agent
