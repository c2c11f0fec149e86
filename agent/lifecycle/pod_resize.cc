// In-place pod resize in the pod worker (KEP 1287, as the kubelet 1.35 does
// it): the API asks a running pod's containers for other cpu or memory
// (pods/resize); the worker admits that against the node (resize.h:
// Deferred, Infeasible), allocates it (pod_ takes it, checkpointed), then
// actuates it: a container whose resizePolicy says RestartContainer for a
// changed resource is restarted with it; the others' cgroups and the pod's
// take the new limits live. A memory limit below what the container uses is
// not applied and is reported. Status: allocatedResources and resources per
// container, and the PodResizePending and PodResizeInProgress conditions.

#include <algorithm>

#include "agent/lifecycle/allocation_checkpoint.h"
#include "agent/lifecycle/pod_worker.h"
#include "agent/lifecycle/resize.h"
#include "agent/log/log.h"
#include "agent/runtime/pod_sandbox.h"

namespace kernelet::agent {
namespace {

std::map<std::string, ContainerResources> resourcesOf(const Pod& pod) {
  std::map<std::string, ContainerResources> out;
  for (const auto* list : {&pod.init_containers, &pod.containers}) {
    for (const auto& c : *list) {
      out[c.name] = c.resources;
    }
  }
  return out;
}

// `r` with the memory limit of `other` (none if it has none).
ContainerResources withMemoryOf(const ContainerResources& r, const ContainerResources& other) {
  ContainerResources out = r;
  if (auto it = other.limits.find("memory"); it != other.limits.end()) {
    out.limits.insert_or_assign("memory", it->second);
  } else {
    out.limits.erase("memory");
  }
  return out;
}

}  // namespace

std::map<std::string, ContainerResources> PodWorker::allocatedResources() const {
  return resourcesOf(pod_);
}

void PodWorker::keepAllocated(const std::map<std::string, ContainerResources>& allocated) {
  for (auto* list : {&pod_.init_containers, &pod_.containers}) {
    for (auto& c : *list) {
      wanted_resources_[c.name] = c.resources;
      if (auto it = allocated.find(c.name); it != allocated.end()) {
        c.resources = withResizable(c.resources, it->second);
      }
    }
  }
}

bool PodWorker::resourcesChanged(const Pod& wanted) const {
  for (const auto* list : {&wanted.init_containers, &wanted.containers}) {
    for (const auto& c : *list) {
      auto it = wanted_resources_.find(c.name);
      if (it != wanted_resources_.end() && resourcesDiffer(it->second, c.resources)) {
        return true;
      }
    }
  }
  return false;
}

void PodWorker::retryResize() {
  if (resize_pending_ && resize_pending_->reason == kResizeDeferred) {
    resize();
    publish();
  }
}

void PodWorker::resize() {
  if (state_ != PodState::kSyncing) {
    return;  // a pod that stops is not resized
  }
  Pod candidate = pod_;
  bool differs = false;
  for (auto* list : {&candidate.init_containers, &candidate.containers}) {
    for (auto& c : *list) {
      auto it = wanted_resources_.find(c.name);
      if (it != wanted_resources_.end() && resourcesDiffer(c.resources, it->second)) {
        differs = true;
        c.resources = withResizable(c.resources, it->second);
      }
    }
  }
  if (!differs) {
    resize_pending_.reset();
  } else {
    std::vector<const Pod*> others;
    if (ctx_.admitted_pods) {
      others = ctx_.admitted_pods(pod_.uid);
    }
    ResizeAdmission verdict = admitResize(candidate, others, ctx_.node);
    if (verdict.verdict != ResizeAdmission::Verdict::kAccepted) {
      const char* reason = verdict.verdict == ResizeAdmission::Verdict::kDeferred
                               ? kResizeDeferred
                               : kResizeInfeasible;
      if (!resize_pending_ || resize_pending_->message != verdict.message) {
        log::info("Pod resize pending",
                  {{"pod", who()}, {"reason", reason}, {"message", verdict.message}});
      }
      resize_pending_ = PodCondition{.type = kPodResizePending,
                                     .status = "True",
                                     .reason = reason,
                                     .message = verdict.message};
    } else {
      resize_pending_.reset();
      // ctrs_ point into pod_'s lists: the resources change in place.
      for (auto [to, from] : {std::pair{&pod_.init_containers, &candidate.init_containers},
                              {&pod_.containers, &candidate.containers}}) {
        for (size_t i = 0; i < to->size(); i++) {
          (*to)[i].resources = (*from)[i].resources;
        }
      }
      resized_ = true;
      log::info("Pod resize allocated", {{"pod", who()}});
    }
  }
  actuateResize();
}

void PodWorker::actuateResize() {
  resize_error_.reset();
  auto fail = [this](const std::string& message) {
    resize_error_ = PodCondition{
        .type = kPodResizeInProgress, .status = "True", .reason = kResizeError, .message = message};
  };
  if (!sandbox_) {
    // No pod cgroup yet: it is made from what is allocated (pod_worker.cc).
    pod_cgroup_.reset();
    if (resized_) {
      saveAllocation();
    }
    return;
  }
  if (!pod_cgroup_) {
    pod_cgroup_ = resourcesOf(podAsApplied());  // adopted: what its containers have
  }
  // pod_ with each container's cpu and memory taken from `of` where it has them.
  auto podWith = [this](const std::map<std::string, ContainerResources>& of) {
    Pod p = pod_;
    for (auto* list : {&p.init_containers, &p.containers}) {
      for (auto& k : *list) {
        if (auto it = of.find(k.name); it != of.end()) {
          k.resources = withResizable(k.resources, it->second);
        }
      }
    }
    return p;
  };
  // Raise before, lower after, as the kubelet orders pod and container
  // cgroup updates: the pod cgroup first makes room for both the limits it
  // was set from and those allocated, so no container is held by its pod
  // below what it is given; it is lowered once the containers have theirs.
  Pod room = podWith(*pod_cgroup_);
  for (auto [to, from] : {std::pair{&room.init_containers, &pod_.init_containers},
                          {&room.containers, &pod_.containers}}) {
    for (size_t i = 0; i < to->size(); i++) {
      (*to)[i].resources = widest((*to)[i].resources, (*from)[i].resources);
    }
  }
  if (!applyPodCgroup(room)) {
    if (resized_) {
      saveAllocation();
    }
    return;
  }
  // The containers to give new limits live, and those to restart.
  for (auto& c : ctrs_) {
    if (c.ephemeral || c.state != CtrState::kRunning || !c.actual || c.replace ||
        !resourcesDiffer(*c.actual, c.spec->resources)) {
      continue;
    }
    if (resizeRestarts(*c.spec, *c.actual, c.spec->resources)) {
      log::info("Container resize requires a restart",
                {{"pod", who()}, {"container", c.spec->name}});
      stopContainer(c, "Container " + c.spec->name + " resize requires restart", true);
      continue;
    }
    ContainerResources target = c.spec->resources;
    // The kubelet does not lower a memory limit below what the container
    // uses: the rest of the resize is applied, the memory limit is not.
    std::optional<int64_t> old_limit = memoryLimit(*c.actual), new_limit = memoryLimit(target);
    if (new_limit && (!old_limit || *new_limit < *old_limit)) {
      auto stats = ctx_.runtime->stats(c.handle);
      uint64_t usage = stats ? stats->memory_current : 0;
      if (auto why =
              memoryLimitBelowUsage("container " + c.spec->name, old_limit, new_limit, usage)) {
        log::warning("Pod resize not applied", {{"pod", who()}, {"message", *why}});
        fail(*why);
        if (old_limit) {
          target.limits.insert_or_assign("memory", c.actual->limits.at("memory"));
        } else {
          target.limits.erase("memory");
        }
        if (!resourcesDiffer(*c.actual, target)) {
          continue;
        }
      }
    }
    if (auto r = ctx_.runtime->resizeContainer(c.handle, target); !r) {
      log::error("Resize container",
                 {{"pod", who()}, {"container", c.spec->name}, {"err", r.error().message()}});
      fail(r.error().message());
      continue;
    }
    c.actual = target;
  }
  // Then the pod cgroup is lowered to what its containers have now; a
  // container restarting for the resize keeps room for its old process until
  // it runs again, and the pod's memory limit, like a container's, is not
  // lowered below what the pod uses.
  Pod lowered = podAsApplied();
  pod_cgroup_pending_ = false;
  for (const auto& c : ctrs_) {
    pod_cgroup_pending_ = pod_cgroup_pending_ || (!c.ephemeral && c.replace);
  }
  std::optional<int64_t> old_limit = podCgroupLimits(room).memory_max,
                         new_limit = podCgroupLimits(lowered).memory_max;
  if (new_limit && (!old_limit || *new_limit < *old_limit)) {
    // Unreadable (no memory controller), it counts as nothing, as a
    // container's does.
    auto usage = ctx_.runtime->podMemoryUsage(pod_.uid);
    if (auto why =
            memoryLimitBelowUsage("pod " + pod_.name, old_limit, new_limit, usage ? *usage : 0)) {
      log::warning("Pod resize not applied", {{"pod", who()}, {"message", *why}});
      fail(*why);
      pod_cgroup_pending_ = true;  // tried again when a container (re)starts
      for (auto [to, from] : {std::pair{&lowered.init_containers, &room.init_containers},
                              {&lowered.containers, &room.containers}}) {
        for (size_t i = 0; i < to->size(); i++) {
          (*to)[i].resources = withMemoryOf((*to)[i].resources, (*from)[i].resources);
        }
      }
    }
  }
  applyPodCgroup(lowered);
  if (resized_) {
    saveAllocation();
  }
}

Pod PodWorker::podAsApplied() const {
  Pod p = pod_;
  for (auto* list : {&p.init_containers, &p.containers}) {
    for (auto& k : *list) {
      auto it = std::find_if(ctrs_.begin(), ctrs_.end(),
                             [&](const Ctr& c) { return !c.ephemeral && c.spec->name == k.name; });
      if (it == ctrs_.end() || !it->actual) {
        continue;  // not running: what it will start with, what is allocated
      }
      k.resources = it->replace ? widest(*it->actual, k.resources) : *it->actual;
    }
  }
  return p;
}

bool PodWorker::applyPodCgroup(const Pod& pod) {
  std::map<std::string, ContainerResources> from = resourcesOf(pod);
  bool same = pod_cgroup_ && pod_cgroup_->size() == from.size();
  for (auto k = from.begin(); same && k != from.end(); ++k) {
    auto it = pod_cgroup_->find(k->first);
    same = it != pod_cgroup_->end() && !resourcesDiffer(it->second, k->second);
  }
  if (same) {
    return true;
  }
  if (auto r = ctx_.runtime->resizePod(pod); !r) {
    log::error("Resize pod cgroup", {{"pod", who()}, {"err", r.error().message()}});
    resize_error_ = PodCondition{.type = kPodResizeInProgress,
                                 .status = "True",
                                 .reason = kResizeError,
                                 .message = r.error().message()};
    return false;
  }
  log::info("Pod resize applied", {{"pod", who()}});
  pod_cgroup_ = std::move(from);
  return true;
}

void PodWorker::saveAllocation() {
  PodAllocation a;
  for (const auto& c : ctrs_) {
    if (c.ephemeral) {
      continue;
    }
    a.containers[c.spec->name] = {.allocated = c.spec->resources, .actuated = c.actual};
  }
  if (auto r = writeAllocation(allocationPath(ctx_.config.root_dir, pod_.uid), a); !r) {
    log::error("Write allocation checkpoint", {{"pod", who()}, {"err", r.error().message()}});
  }
}

void PodWorker::loadAllocation() {
  if (pod_.uid.empty() || pod_.uid.find('/') != std::string::npos || pod_.uid.starts_with(".")) {
    return;  // admission rejects such a uid before any path is built from it
  }
  auto found = readAllocation(allocationPath(ctx_.config.root_dir, pod_.uid));
  if (!found) {
    log::error("Read allocation checkpoint", {{"pod", who()}, {"err", found.error().message()}});
    return;  // what the API wants is taken as allocated, as for a new pod
  }
  if (!*found) {
    return;
  }
  std::map<std::string, ContainerResources> allocated;
  for (const auto& [name, c] : (*found)->containers) {
    allocated[name] = c.allocated;
    if (c.actuated) {
      restored_actuated_[name] = *c.actuated;
    }
  }
  keepAllocated(allocated);
  resized_ = true;
}

void PodWorker::resizeStatus(PodStatus& s) const {
  auto fill = [this](std::vector<ContainerStatus>& list) {
    for (auto& st : list) {
      auto it = std::find_if(ctrs_.begin(), ctrs_.end(),
                             [&](const Ctr& c) { return !c.ephemeral && c.spec->name == st.name; });
      if (it == ctrs_.end()) {
        continue;
      }
      const ContainerResources& allocated = it->spec->resources;
      if (allocated.requests.empty() && allocated.limits.empty()) {
        continue;
      }
      // The kubelet reports the allocated requests, and the limits and
      // requests the runtime has (the allocated ones while not running).
      st.allocated_resources = allocated.requests;
      st.resources = it->actual && live(*it) ? *it->actual : allocated;
    }
  };
  fill(s.init_container_statuses);
  fill(s.container_statuses);
  auto condition = [&](PodCondition c) {
    // The transition time is kept while the condition says the same.
    for (const auto& old : status_.conditions) {
      if (old.type == c.type && old.status == c.status && old.reason == c.reason) {
        c.last_transition_time = old.last_transition_time;
      }
    }
    if (c.last_transition_time.empty()) {
      c.last_transition_time = runtime::nowRfc3339();
    }
    s.conditions.push_back(std::move(c));
  };
  if (resize_pending_) {
    condition(*resize_pending_);
  }
  bool in_progress = false;
  for (const auto& c : ctrs_) {
    in_progress = in_progress || (!c.ephemeral && c.state == CtrState::kRunning && c.actual &&
                                  resourcesDiffer(*c.actual, c.spec->resources));
    in_progress = in_progress || (!c.ephemeral && c.replace && resized_);
  }
  if (resize_error_) {
    condition(*resize_error_);
  } else if (in_progress) {
    condition(PodCondition{.type = kPodResizeInProgress, .status = "True"});
  }
}

}  // namespace kernelet::agent
