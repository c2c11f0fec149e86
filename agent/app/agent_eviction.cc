// The agent's side of the eviction manager (agent/eviction): what it measures
// the pods with, how a pod is evicted, and what an evicted pod's status says.
#include <algorithm>
#include <tuple>

#include "agent/app/agent.h"
#include "agent/log/log.h"
#include "agent/model/qos.h"
#include "agent/node/node_status.h"
#include "agent/node/shutdown_manager.h"
#include "agent/stats/summary.h"
#include "apiclient/quantity.h"
#include "cgroups/cgroups.h"

namespace kernelet::agent {
namespace {

constexpr const char* kEvictedReason = "Evicted";

// A resource of a container's spec: its bytes and how it was written.
std::pair<int64_t, std::string> quantityOf(const ResourceList& list, const char* name) {
  auto it = list.find(name);
  if (it == list.end()) {
    return {0, "0"};
  }
  return {it->second.value(), it->second.str()};
}

// The spec's part of a pod's usage: requests, limits, emptyDir size limits.
eviction::PodUsage specUsage(const Pod& pod) {
  eviction::PodUsage u;
  u.uid = pod.uid;
  u.namespace_ = pod.namespace_;
  u.name = pod.name;
  u.priority = pod.priority.value_or(0);
  u.critical = isCriticalPod(pod);
  u.termination_grace = pod.termination_grace_period_seconds;
  // The containers that run beside each other: the regular ones and the
  // sidecars (an init container that ran to its end uses nothing now).
  for (const auto* list : {&pod.init_containers, &pod.containers}) {
    for (const Container& c : *list) {
      if (list == &pod.init_containers && c.restart_policy != "Always") {
        continue;
      }
      eviction::ContainerUsage cu;
      cu.name = c.name;
      std::tie(cu.memory_request, cu.memory_request_text) =
          quantityOf(c.resources.requests, "memory");
      std::tie(cu.disk_request, cu.disk_request_text) =
          quantityOf(c.resources.requests, "ephemeral-storage");
      if (auto it = c.resources.limits.find("ephemeral-storage"); it != c.resources.limits.end()) {
        cu.disk_limit = it->second.value();
        cu.disk_limit_text = it->second.str();
      }
      u.containers.push_back(std::move(cu));
    }
  }
  for (const Volume& v : pod.volumes) {
    if (v.kind != Volume::Kind::kEmptyDir) {
      continue;
    }
    eviction::VolumeUsage vu;
    vu.name = v.name;
    vu.local_ephemeral = v.medium != "Memory";
    if (auto q = apiclient::Quantity::parse(v.size_limit); !v.size_limit.empty() && q) {
      vu.size_limit = q->value();
      vu.size_limit_text = q->str();
    }
    u.volumes.push_back(std::move(vu));
  }
  return u;
}

// The measured part, from the pod's Summary stats.
void addStats(eviction::PodUsage& u, const stats::PodStats& s) {
  u.has_stats = true;
  if (s.memory && s.memory->working_set_bytes) {
    u.memory = static_cast<int64_t>(*s.memory->working_set_bytes);
  }
  u.processes = static_cast<int64_t>(s.process_count.value_or(0));
  auto used = [](const std::optional<stats::FsStats>& f) -> std::optional<int64_t> {
    if (!f || !f->used_bytes) {
      return std::nullopt;
    }
    return static_cast<int64_t>(*f->used_bytes);
  };
  auto inodes = [](const std::optional<stats::FsStats>& f) {
    return f && f->inodes_used ? static_cast<int64_t>(*f->inodes_used) : 0;
  };
  for (const stats::ContainerStats& cs : s.containers) {
    auto c = std::find_if(u.containers.begin(), u.containers.end(),
                          [&](const eviction::ContainerUsage& c) { return c.name == cs.name; });
    if (c == u.containers.end()) {
      continue;  // an ephemeral container: no requests, counted with the pod
    }
    if (cs.memory && cs.memory->working_set_bytes) {
      c->memory = static_cast<int64_t>(*cs.memory->working_set_bytes);
    }
    auto rootfs = used(cs.rootfs), logs = used(cs.logs);
    if (rootfs || logs) {
      c->disk = rootfs.value_or(0) + logs.value_or(0);
    }
    u.inodes += inodes(cs.rootfs) + inodes(cs.logs);
  }
  for (const stats::VolumeStats& vs : s.volume) {
    auto v = std::find_if(u.volumes.begin(), u.volumes.end(),
                          [&](const eviction::VolumeUsage& v) { return v.name == vs.name; });
    if (v != u.volumes.end() && vs.fs.used_bytes) {
      v->used = static_cast<int64_t>(*vs.fs.used_bytes);
      u.inodes += static_cast<int64_t>(vs.fs.inodes_used.value_or(0));
    }
  }
}

}  // namespace

void Agent::startEviction(const std::string& cgroup_mount) {
  const AgentConfig& config = ctx_.config;
  eviction_sources_ = std::make_unique<stats::SummarySources>();
  eviction_sources_->node_name = config.node_name;
  eviction_sources_->cgroup_mount = cgroup_mount;
  eviction_sources_->root_dir = config.root_dir;
  eviction_sources_->pod_log_dir = config.pod_log_dir;
  eviction_sources_->image_dir = config.root_dir + "/images";
  eviction_cpu_ = std::make_unique<stats::CpuSampler>();
  // Disk usage is walked on the cache's own thread, never on the loop; the
  // eviction cycle reads the last figures.
  eviction_disk_ = std::make_unique<stats::FsUsageCache>(
      [this] {
        std::vector<std::string> out;
        auto snap = snapshots_.current();
        for (const auto& [uid, pod] : snap->pods) {
          auto t = stats::podDiskTargets(*eviction_sources_, *pod);
          out.insert(out.end(), t.begin(), t.end());
        }
        return out;
      },
      std::chrono::seconds(10));
  eviction_disk_->start();
  eviction::Hooks hooks;
  hooks.pods = [this] { return podUsages(); };
  hooks.evict = [this](const eviction::PodUsage& p, int64_t grace, const std::string& message) {
    return evictPod(p.uid, grace, message);
  };
  hooks.terminated = [this](const std::string& uid) {
    auto it = workers_.find(uid);
    return it == workers_.end() || it->second->state() == PodState::kTerminated;
  };
  hooks.reclaim = [this](const std::string& signal) {
    if (node_reclaim_) {
      node_reclaim_(signal);
    }
  };
  hooks.refresh_disk = [this] {
    // Blocks the loop for at most a second, only when a disk threshold is
    // met and pods are about to be ranked on their usage.
    if (!eviction_disk_->refreshAndWait(std::chrono::seconds(1))) {
      log::v(2, "Eviction manager: disk usage not measured anew within 1 s");
    }
  };
  hooks.pressure = [](const eviction::Pressure& p) { publishPressure(p.memory, p.disk, p.pid); };
  eviction::Settings settings;
  settings.cgroup_mount = cgroup_mount;
  settings.nodefs_dir = config.root_dir;
  settings.imagefs_dir = config.root_dir + "/images";
  settings.kubepods = cgroups::kubepodsPath(config.cgroup_root);
  eviction_ = eviction::EvictionManager::start(*loop_, *timers_, config, std::move(settings),
                                               std::move(hooks));
}

std::vector<eviction::PodUsage> Agent::podUsages() {
  std::vector<eviction::PodUsage> out;
  std::map<std::string, size_t> by_uid;
  for (const auto& [uid, w] : workers_) {
    if (!w->active() || terminating_.contains(uid) || evicted_.contains(uid)) {
      continue;
    }
    by_uid[uid] = out.size();
    out.push_back(specUsage(w->pod()));
  }
  auto snap = snapshots_.current();
  stats::Summary summary = stats::buildSummary(*eviction_sources_, *snap, *eviction_cpu_,
                                               eviction_disk_.get(), stats::Clock::now());
  for (const stats::PodStats& s : summary.pods) {
    if (auto it = by_uid.find(s.uid); it != by_uid.end()) {
      addStats(out[it->second], s);
    }
  }
  return out;
}

bool Agent::evictPod(const std::string& uid, int64_t grace, const std::string& message) {
  auto it = workers_.find(uid);
  if (it == workers_.end() || !it->second->active() || terminating_.contains(uid)) {
    return false;
  }
  std::shared_ptr<PodWorker> w = it->second;
  const Pod& pod = w->pod();
  if (isCriticalPod(pod)) {
    log::error("Eviction manager: cannot evict a critical pod",
               {{"pod", pod.namespace_ + "/" + pod.name}});
    return false;
  }
  log::info("Evicting pod", {{"pod", pod.namespace_ + "/" + pod.name},
                             {"podUID", uid},
                             {"gracePeriod", std::to_string(grace)},
                             {"message", message}});
  if (ctx_.event) {
    ctx_.event(pod, "", "Warning", kEvictedReason, message);
  }
  evicted_[uid] = {message, runtime::nowRfc3339()};
  terminating_.insert(uid);
  writeStatus(uid);
  // It stays, terminated and Failed, as the kubelet leaves an evicted pod: a
  // static pod starts again only with a changed manifest, an API pod goes
  // when the API deletes it.
  w->terminate([this, uid] { terminating_.erase(uid); }, grace);
  return true;
}

std::optional<std::string> Agent::pressureRejection(const Pod& pod) const {
  if (!eviction_) {
    return std::nullopt;
  }
  std::vector<ContainerResources> resources;
  for (const auto* list : {&pod.init_containers, &pod.containers}) {
    for (const auto& c : *list) {
      resources.push_back(c.resources);
    }
  }
  bool is_static = isStaticPod(pod);
  return eviction::admissionRejection(eviction_->pressure(),
                                      podQos(resources) == QosClass::kBestEffort,
                                      is_static || isCriticalPod(pod));
}

void Agent::markNodeDecisions(const std::string& uid, PodStatus& status) const {
  if (auto down = shut_down_.find(uid); down != shut_down_.end()) {
    markShutDown(status, down->second);
  }
  auto ev = evicted_.find(uid);
  if (ev == evicted_.end()) {
    return;
  }
  if (status.phase != "Succeeded") {
    status.phase = "Failed";
  }
  status.reason = kEvictedReason;
  status.message = ev->second.message;
  PodCondition target{.type = "DisruptionTarget",
                      .status = "True",
                      .reason = "TerminationByKubelet",
                      .message = ev->second.message,
                      .last_transition_time = ev->second.time};
  auto c = std::find_if(status.conditions.begin(), status.conditions.end(),
                        [](const PodCondition& c) { return c.type == "DisruptionTarget"; });
  if (c == status.conditions.end()) {
    status.conditions.push_back(target);
  } else if (c->status != "True") {
    *c = target;
  }
}

}  // namespace kernelet::agent
