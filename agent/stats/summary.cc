#include "agent/stats/summary.h"

#include <dirent.h>

#include <algorithm>
#include <memory>

#include "agent/stats/network_stats.h"
#include "sys/fileio.h"

namespace kernelet::agent::stats {

namespace {

// A name used as one path component: no separator, not . or ..
bool safeComponent(const std::string& s) {
  return !s.empty() && s != "." && s != ".." && s.find('/') == std::string::npos &&
         s.find('\0') == std::string::npos;
}

std::string logDir(const SummarySources& src, const PodSnapshot& pod, const std::string& name) {
  return src.pod_log_dir + "/" + pod.namespace_ + "_" + pod.name + "_" + pod.uid + "/" + name;
}

std::string emptyDirRoot(const SummarySources& src, const std::string& uid) {
  return src.root_dir + "/pods/" + uid + "/volumes/kubernetes.io~empty-dir";
}

std::vector<std::string> listDirs(const std::string& dir) {
  std::vector<std::string> out;
  std::unique_ptr<DIR, int (*)(DIR*)> d(opendir(dir.c_str()), closedir);
  if (!d) {
    return out;  // no emptyDir in this pod
  }
  while (dirent* e = readdir(d.get())) {
    std::string name = e->d_name;
    if (name != "." && name != ".." && e->d_type == DT_DIR) {
      out.push_back(name);
    }
  }
  return out;
}

// The containers a pod's stats list, as the kubelet's (which reads every
// container group of the pod): each running one, whether init (a sidecar, or
// an init container still at work), regular or ephemeral. Each has its own
// group, <pod group>/<ID>, whichever list it is in.
std::vector<const ContainerStatus*> runningContainers(const PodSnapshot& pod) {
  std::vector<const ContainerStatus*> out;
  for (const auto* list : {&pod.status.init_container_statuses, &pod.status.container_statuses,
                           &pod.status.ephemeral_container_statuses}) {
    for (const auto& cs : *list) {
      if (cs.state.kind == ContainerState::Kind::kRunning) {
        out.push_back(&cs);
      }
    }
  }
  return out;
}

CpuStats cpuOf(const std::string& key, const CgroupSample& s, CpuSampler& sampler) {
  CpuStats c;
  c.time = s.time;
  uint64_t ns = s.cpu_usage_usec * 1000;
  c.usage_core_nano_seconds = ns;
  c.usage_nano_cores = sampler.observe(key, ns, s.time);
  c.psi = s.cpu_pressure;
  return c;
}

MemoryStats memoryOf(const CgroupSample& s) {
  MemoryStats m;
  m.time = s.time;
  m.usage_bytes = s.memory_current;
  m.working_set_bytes = s.working_set;
  m.rss_bytes = s.anon;
  m.page_faults = s.pgfault;
  m.major_page_faults = s.pgmajfault;
  // As the kubelet: available only under a limit, limit - working set.
  if (s.memory_max) {
    m.available_bytes = *s.memory_max > s.working_set ? *s.memory_max - s.working_set : 0;
  }
  m.psi = s.memory_pressure;
  return m;
}

// IOStats holds nothing but the pressure: without it, no io object at all.
std::optional<IoStats> ioOf(Clock::time_point time, const std::optional<Pressure>& pressure) {
  if (!pressure) {
    return std::nullopt;
  }
  return IoStats{time, pressure};
}

// As the kubelet (cadvisor's memory.swap.current and the limit): usage
// always, available only under a limit; no swap accounting, no swap object.
std::optional<SwapStats> swapOf(const CgroupSample& s) {
  if (!s.swap_current) {
    return std::nullopt;
  }
  SwapStats w;
  w.time = s.time;
  w.swap_usage_bytes = s.swap_current;
  // cadvisor's "unlimited": above 2^62 (the kernel rounds "max" pages).
  if (s.swap_max && *s.swap_max <= (uint64_t{1} << 62)) {
    w.swap_available_bytes = *s.swap_max > *s.swap_current ? *s.swap_max - *s.swap_current : 0;
  }
  return w;
}

// A directory's usage from the cache, on the capacity of its filesystem.
std::optional<FsStats> diskOf(const FsUsageCache* disk, const std::string& path,
                              const std::optional<FsCapacity>& cap) {
  if (!disk) {
    return std::nullopt;
  }
  auto u = disk->get(path);
  if (!u) {
    return std::nullopt;  // not measured yet
  }
  FsStats f;
  f.time = u->time;
  f.used_bytes = u->bytes;
  f.inodes_used = u->inodes;
  if (cap) {
    f.capacity_bytes = cap->capacity;
    f.available_bytes = cap->available;
    f.inodes = cap->inodes;
    f.inodes_free = cap->inodes_free;
  }
  return f;
}

FsStats fsOf(const FsCapacity& c) {
  return {c.time, c.available, c.capacity, c.used, c.inodes_free, c.inodes, c.inodes_used};
}

std::optional<NetworkStats> networkOf(const std::vector<InterfaceCounters>& ifs,
                                      Clock::time_point now) {
  if (ifs.empty()) {
    return std::nullopt;
  }
  NetworkStats n;
  n.time = now;
  for (const auto& i : ifs) {
    InterfaceStats s{i.name, i.rx_bytes, i.rx_errors, i.tx_bytes, i.tx_errors};
    if (i.name == "eth0") {
      n.primary = s;
    }
    n.interfaces.push_back(std::move(s));
  }
  if (n.primary.name.empty()) {
    n.primary = n.interfaces.front();  // no eth0: the first, as the kubelet's fallback
  }
  return n;
}

std::optional<NetworkStats> networkFrom(const Result<std::string>& net_dev, Clock::time_point now) {
  if (!net_dev) {
    return std::nullopt;
  }
  std::vector<InterfaceCounters> ifs;
  for (auto& i : parseNetDev(*net_dev)) {
    if (i.name != "lo") {
      ifs.push_back(std::move(i));
    }
  }
  return networkOf(ifs, now);
}

void addUsed(std::optional<FsStats>& total, const std::optional<FsStats>& part) {
  if (!part || !part->used_bytes) {
    return;
  }
  if (!total) {
    total = *part;
    return;
  }
  total->used_bytes = total->used_bytes.value_or(0) + part->used_bytes.value_or(0);
  if (total->inodes_used && part->inodes_used) {
    total->inodes_used = total->inodes_used.value_or(0) + part->inodes_used.value_or(0);
  }
  total->time = std::max(total->time, part->time);
}

struct Capacities {
  std::optional<FsCapacity> root, logs;
};

std::optional<PodStats> podStats(const SummarySources& src, const PodSnapshot& pod,
                                 CpuSampler& sampler, const FsUsageCache* disk,
                                 const Capacities& caps, Clock::time_point now) {
  if (pod.cgroup_path.empty()) {
    return std::nullopt;
  }
  auto group = readCgroup(src.cgroup_mount, pod.cgroup_path, now);
  if (!group) {
    return std::nullopt;  // the pod's group is not (or no longer) there
  }
  PodStats p;
  p.name = pod.name;
  p.namespace_ = pod.namespace_;
  p.uid = pod.uid;
  p.start_time = parseRfc3339(pod.status.start_time)
                     .value_or(parseRfc3339(pod.created).value_or(Clock::time_point{}));
  p.cpu = cpuOf(pod.cgroup_path, *group, sampler);
  p.memory = memoryOf(*group);
  p.io = ioOf(group->time, group->io_pressure);
  p.swap = swapOf(*group);
  p.network = networkOf(podInterfaces(src.cgroup_mount, pod.cgroup_path, src.proc), now);
  p.process_count = group->pids_current;
  for (const ContainerStatus* status : runningContainers(pod)) {
    const ContainerStatus& cs = *status;
    std::string id = containerIdOf(cs.container_id);
    if (!safeComponent(id)) {
      continue;
    }
    std::string cgroup = pod.cgroup_path + "/" + id;
    auto s = readCgroup(src.cgroup_mount, cgroup, now);
    if (!s) {
      continue;  // ended since the snapshot
    }
    ContainerStats c;
    c.name = cs.name;
    c.id = id;
    c.image = cs.image;
    c.start_time = parseRfc3339(cs.state.started_at).value_or(Clock::time_point{});
    c.cpu = cpuOf(cgroup, *s, sampler);
    c.memory = memoryOf(*s);
    c.io = ioOf(s->time, s->io_pressure);
    c.swap = swapOf(*s);
    c.rootfs = diskOf(disk, src.root_dir + "/containers/" + id + "/upper", caps.root);
    c.logs = diskOf(disk, logDir(src, pod, cs.name), caps.logs);
    addUsed(p.ephemeral_storage, c.rootfs);
    addUsed(p.ephemeral_storage, c.logs);
    p.containers.push_back(std::move(c));
  }
  for (const auto& name : listDirs(emptyDirRoot(src, pod.uid))) {
    if (auto f = diskOf(disk, emptyDirRoot(src, pod.uid) + "/" + name, caps.root)) {
      addUsed(p.ephemeral_storage, f);
      p.volume.push_back({*f, name});
    }
  }
  return p;
}

// A system container (the kubelet's "pods", "kubelet"): cpu and memory of a group.
std::optional<ContainerStats> systemContainer(const SummarySources& src, const std::string& name,
                                              const std::string& cgroup, CpuSampler& sampler,
                                              Clock::time_point now) {
  auto s = readCgroup(src.cgroup_mount, cgroup, now);
  if (!s) {
    return std::nullopt;
  }
  ContainerStats c;
  c.name = name;
  c.start_time = src.node_start;
  c.cpu = cpuOf(cgroup, *s, sampler);
  c.memory = memoryOf(*s);
  c.io = ioOf(s->time, s->io_pressure);
  c.swap = swapOf(*s);
  return c;
}

// The agent's own group: "0::/PATH" in PROC/self/cgroup (cgroup v2's line).
std::optional<std::string> ownCgroup(const std::string& proc) {
  auto text = readFile(proc + "/self/cgroup");
  if (!text) {
    return std::nullopt;
  }
  size_t at = text->find("0::/");
  if (at == std::string::npos || (at != 0 && (*text)[at - 1] != '\n')) {
    return std::nullopt;
  }
  std::string path = text->substr(at + 4);
  path = path.substr(0, path.find('\n'));
  if (path.find("..") != std::string::npos) {
    return std::nullopt;
  }
  return path;
}

NodeStats nodeStats(const SummarySources& src, CpuSampler& sampler, const Capacities& caps,
                    Clock::time_point now) {
  NodeStats n;
  n.node_name = src.node_name;
  n.start_time = src.node_start;
  if (!src.pods_cgroup.empty()) {
    if (auto c = systemContainer(src, "pods", src.pods_cgroup, sampler, now)) {
      n.system_containers.push_back(std::move(*c));
    }
  }
  // The root group itself is the node, not the kubelet's container.
  if (auto own = ownCgroup(src.proc); own && !own->empty()) {
    if (auto c = systemContainer(src, "kubelet", *own, sampler, now)) {
      n.system_containers.push_back(std::move(*c));
    }
  }
  if (auto s = readNode(src.cgroup_mount, src.proc, now)) {
    if (std::optional<uint64_t> ns = s->cpu_usage_ns) {
      CpuStats c;
      c.time = now;
      c.usage_core_nano_seconds = ns;
      c.usage_nano_cores = sampler.observe("/", ns.value_or(0), now);
      c.psi = s->cpu_pressure;
      n.cpu = c;
    }
    MemoryStats m;
    m.time = now;
    m.available_bytes = s->available;
    m.usage_bytes = s->memory_usage;
    m.working_set_bytes = s->working_set;
    m.rss_bytes = s->rss;
    m.page_faults = s->pgfault;
    m.major_page_faults = s->pgmajfault;
    m.psi = s->memory_pressure;
    n.memory = m;
    n.io = ioOf(now, s->io_pressure);
    // The node's swap is the machine's: the limit is all swap there is.
    if (s->swap_total && s->swap_free) {
      uint64_t total = *s->swap_total, unused = std::min(*s->swap_free, total);
      n.swap = SwapStats{now, unused, total - unused};
    }
    RlimitStats r;
    r.time = now;
    if (std::optional<uint64_t> max = s->pid_max) {
      r.max_pid = static_cast<int64_t>(max.value_or(0));
    }
    if (std::optional<uint64_t> procs = s->processes) {
      r.num_of_running_processes = static_cast<int64_t>(procs.value_or(0));
    }
    n.rlimit = r;
  }
  // The node's own network: the host namespace's, as PID 1 sees it.
  n.network = networkFrom(readFile(src.proc + "/1/net/dev"), now);
  if (caps.root) {
    n.fs = fsOf(*caps.root);
    n.container_fs = n.fs;
  }
  std::string image_dir = src.image_dir.empty() ? src.root_dir : src.image_dir;
  if (auto c = fsCapacity(image_dir)) {
    n.image_fs = fsOf(*c);
  }
  return n;
}

}  // namespace

std::string containerIdOf(const std::string& container_id) {
  constexpr std::string_view kPrefix = "kernelet://";
  if (container_id.rfind(kPrefix, 0) != 0) {
    return {};
  }
  return container_id.substr(kPrefix.size());
}

std::vector<std::string> podDiskTargets(const SummarySources& src, const PodSnapshot& pod) {
  std::vector<std::string> out;
  if (!safeComponent(pod.uid) || !safeComponent(pod.namespace_) || !safeComponent(pod.name)) {
    return out;
  }
  for (const ContainerStatus* cs : runningContainers(pod)) {
    std::string id = containerIdOf(cs->container_id);
    if (!safeComponent(id) || !safeComponent(cs->name)) {
      continue;
    }
    out.push_back(src.root_dir + "/containers/" + id + "/upper");
    out.push_back(logDir(src, pod, cs->name));
  }
  for (const auto& name : listDirs(emptyDirRoot(src, pod.uid))) {
    out.push_back(emptyDirRoot(src, pod.uid) + "/" + name);
  }
  return out;
}

Summary buildSummary(const SummarySources& src, const NodeSnapshot& snapshot, CpuSampler& sampler,
                     const FsUsageCache* disk, Clock::time_point now) {
  Capacities caps;
  if (auto c = fsCapacity(src.root_dir)) {
    caps.root = *c;
  }
  if (auto c = fsCapacity(src.pod_log_dir)) {
    caps.logs = *c;
  }
  Summary s;
  s.node = nodeStats(src, sampler, caps, now);
  for (const auto& [uid, pod] : snapshot.pods) {
    if (auto p = podStats(src, *pod, sampler, disk, caps, now)) {
      s.pods.push_back(std::move(*p));
    }
  }
  sampler.prune(now);
  return s;
}

}  // namespace kernelet::agent::stats
