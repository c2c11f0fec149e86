#include "agent/lifecycle/resize.h"

#include <string_view>

#include "agent/model/saturating.h"

namespace kernelet::agent {
namespace {

const apiclient::Quantity* find(const ResourceList& list, const char* name) {
  auto it = list.find(name);
  return it == list.end() ? nullptr : &it->second;
}

bool sameEntry(const ResourceList& a, const ResourceList& b, const char* name) {
  const apiclient::Quantity *x = find(a, name), *y = find(b, name);
  return (x == nullptr && y == nullptr) || (x != nullptr && y != nullptr && *x == *y);
}

bool resourceDiffers(const ContainerResources& from, const ContainerResources& to,
                     const char* name) {
  return !sameEntry(from.requests, to.requests, name) || !sameEntry(from.limits, to.limits, name);
}

}  // namespace

ResizeAdmission admitResize(const Pod& wanted, const std::vector<const Pod*>& others,
                            const NodeResources& node) {
  int64_t cpu = podRequestMilliCpu(wanted), memory = podRequestMemory(wanted);
  if (memory > node.allocatable_memory) {
    return {ResizeAdmission::Verdict::kInfeasible,
            "Node didn't have enough capacity: memory, requested: " + std::to_string(memory) +
                ", capacity: " + std::to_string(node.allocatable_memory)};
  }
  if (cpu > node.allocatable_milli_cpu) {
    return {ResizeAdmission::Verdict::kInfeasible,
            "Node didn't have enough capacity: cpu, requested: " + std::to_string(cpu) +
                ", capacity: " + std::to_string(node.allocatable_milli_cpu)};
  }
  int64_t used_cpu = 0, used_memory = 0;
  for (const Pod* p : others) {
    used_cpu = saturatingAdd(used_cpu, podRequestMilliCpu(*p));
    used_memory = saturatingAdd(used_memory, podRequestMemory(*p));
  }
  auto deferred = [](const char* resource, int64_t requested, int64_t used, int64_t capacity) {
    return ResizeAdmission{ResizeAdmission::Verdict::kDeferred,
                           std::string("Node didn't have enough resource: ") + resource +
                               ", requested: " + std::to_string(requested) + ", used: " +
                               std::to_string(used) + ", capacity: " + std::to_string(capacity)};
  };
  // The scheduler's fit (the kubelet's canAdmitPod), cpu first as it checks.
  if (cpu > 0 && saturatingAdd(used_cpu, cpu) > node.allocatable_milli_cpu) {
    return deferred("cpu", cpu, used_cpu, node.allocatable_milli_cpu);
  }
  if (memory > 0 && saturatingAdd(used_memory, memory) > node.allocatable_memory) {
    return deferred("memory", memory, used_memory, node.allocatable_memory);
  }
  return {};
}

bool resourcesDiffer(const ContainerResources& from, const ContainerResources& to) {
  for (const char* name : kResizableResources) {
    if (resourceDiffers(from, to, name)) {
      return true;
    }
  }
  return false;
}

ContainerResources withResizable(const ContainerResources& from, const ContainerResources& to) {
  ContainerResources out = from;
  for (const char* name : kResizableResources) {
    for (auto [dst, src] : {std::pair{&out.requests, &to.requests}, {&out.limits, &to.limits}}) {
      if (const apiclient::Quantity* q = find(*src, name)) {
        dst->insert_or_assign(name, *q);
      } else {
        dst->erase(name);
      }
    }
  }
  return out;
}

bool resizeRestarts(const Container& spec, const ContainerResources& from,
                    const ContainerResources& to) {
  for (const char* name : kResizableResources) {
    auto policy = spec.resize_policy.find(name);
    if (policy != spec.resize_policy.end() && policy->second == "RestartContainer" &&
        resourceDiffers(from, to, name)) {
      return true;
    }
  }
  return false;
}

ContainerResources widest(const ContainerResources& a, const ContainerResources& b) {
  // cpu in millicores, memory in bytes (its millis would clamp past 8 PiB).
  auto less = [](const char* name, const apiclient::Quantity* x, const apiclient::Quantity* y) {
    return std::string_view(name) == "cpu" ? x->milliValue() < y->milliValue()
                                           : x->value() < y->value();
  };
  ContainerResources out = b;
  for (const char* name : kResizableResources) {
    const apiclient::Quantity *x = find(a.requests, name), *y = find(b.requests, name);
    if (x != nullptr && (y == nullptr || less(name, y, x))) {
      out.requests.insert_or_assign(name, *x);
    }
    x = find(a.limits, name);
    y = find(b.limits, name);
    if (x == nullptr || y == nullptr) {
      out.limits.erase(name);  // no limit on either side: none while both may run
    } else if (less(name, y, x)) {
      out.limits.insert_or_assign(name, *x);
    }
  }
  return out;
}

std::optional<int64_t> memoryLimit(const ContainerResources& r) {
  const apiclient::Quantity* q = find(r.limits, "memory");
  return q ? std::optional(q->value()) : std::nullopt;
}

std::optional<std::string> memoryLimitBelowUsage(const std::string& who,
                                                 std::optional<int64_t> old_limit,
                                                 std::optional<int64_t> new_limit, uint64_t usage) {
  // Only a limit that goes down is checked: raising one, or one that stays,
  // never makes the kernel reclaim.
  if (!new_limit || (old_limit && *new_limit >= *old_limit)) {
    return std::nullopt;
  }
  if (usage < static_cast<uint64_t>(*new_limit)) {
    return std::nullopt;
  }
  return "attempting to set " + who + " memory limit (" + std::to_string(*new_limit) +
         ") below current usage (" + std::to_string(usage) + ")";
}

}  // namespace kernelet::agent
