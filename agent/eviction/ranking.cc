#include "agent/eviction/ranking.h"

#include <algorithm>
#include <numeric>

#include "apiclient/quantity.h"

namespace kernelet::agent::eviction {
namespace {

// Usage and request of `pod` for the resource ranked on.
struct Measure {
  int64_t usage = 0, request = 0;
};

Measure measureOf(const std::string& resource, const PodUsage& p) {
  if (resource == "memory") {
    return {p.memory, p.memoryRequest()};
  }
  if (resource == "ephemeral-storage") {
    return {p.diskUsage(), p.diskRequest()};
  }
  if (resource == "inodes") {
    return {p.inodes, 0};
  }
  return {p.processes, 0};
}

}  // namespace

int64_t PodUsage::memoryRequest() const {
  return std::accumulate(containers.begin(), containers.end(), int64_t{0},
                         [](int64_t s, const ContainerUsage& c) { return s + c.memory_request; });
}

int64_t PodUsage::diskRequest() const {
  return std::accumulate(containers.begin(), containers.end(), int64_t{0},
                         [](int64_t s, const ContainerUsage& c) { return s + c.disk_request; });
}

int64_t PodUsage::diskUsage() const {
  int64_t total = 0;
  for (const auto& c : containers) {
    total += c.disk.value_or(0);
  }
  for (const auto& v : volumes) {
    if (v.local_ephemeral) {
      total += v.used;
    }
  }
  return total;
}

std::vector<size_t> rank(const std::string& resource, const std::vector<PodUsage>& pods) {
  std::vector<size_t> order(pods.size());
  std::iota(order.begin(), order.end(), 0);
  // pids: priority, then the most processes (rankPIDPressure). The others:
  // usage over request first, then priority, then usage - request, largest
  // first (rankMemoryPressure, rankDiskPressureFunc). A pod without stats
  // sorts after those with, as the kubelet's comparators put it.
  bool by_request = resource != "pids";
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    const PodUsage& p1 = pods[a];
    const PodUsage& p2 = pods[b];
    if (p1.has_stats != p2.has_stats) {
      return p1.has_stats;
    }
    Measure m1 = measureOf(resource, p1), m2 = measureOf(resource, p2);
    if (by_request) {
      bool over1 = m1.usage > m1.request, over2 = m2.usage > m2.request;
      if (over1 != over2) {
        return over1;
      }
    }
    if (p1.priority != p2.priority) {
      return p1.priority < p2.priority;
    }
    return m1.usage - m1.request > m2.usage - m2.request;
  });
  return order;
}

std::string quantityText(const std::string& resource, int64_t value) {
  using F = apiclient::Quantity::Format;
  bool bytes = resource == "memory" || resource == "ephemeral-storage";
  return apiclient::Quantity::fromInt(value, bytes ? F::kBinarySI : F::kDecimalSI).str();
}

std::string evictionMessage(const std::string& resource, const PodUsage& pod, int64_t threshold,
                            int64_t available) {
  std::string m = "The node was low on resource: " + resource + ". ";
  m += "Threshold quantity: " + quantityText(resource, threshold) +
       ", available: " + quantityText(resource, available) + ". ";
  // Only memory and ephemeral-storage name the containers over their request.
  for (const auto& c : pod.containers) {
    std::optional<int64_t> usage;
    int64_t request = 0;
    std::string request_text;
    if (resource == "memory") {
      usage = c.memory;
      request = c.memory_request;
      request_text = c.memory_request_text;
    } else if (resource == "ephemeral-storage") {
      usage = c.disk;
      request = c.disk_request;
      request_text = c.disk_request_text;
    }
    if (usage && *usage > request) {
      m += "Container " + c.name + " was using " + quantityText("memory", *usage) +
           ", request is " + request_text + ", has larger consumption of " + resource + ". ";
    }
  }
  return m;
}

std::optional<std::string> localStorageViolation(const PodUsage& pod) {
  for (const auto& v : pod.volumes) {
    if (v.size_limit && *v.size_limit > 0 && v.used > *v.size_limit) {
      return "Usage of EmptyDir volume \"" + v.name + "\" exceeds the limit \"" +
             v.size_limit_text + "\". ";
    }
  }
  // The pod's limit is the sum of its containers' (none set: no limit).
  int64_t limit = 0;
  for (const auto& c : pod.containers) {
    limit += c.disk_limit.value_or(0);
  }
  if (limit > 0 && pod.diskUsage() > limit) {
    return "Pod ephemeral local storage usage exceeds the total limit of containers " +
           quantityText("ephemeral-storage", limit) + ". ";
  }
  for (const auto& c : pod.containers) {
    if (c.disk_limit && c.disk && *c.disk > *c.disk_limit) {
      return "Container " + c.name + " exceeded its local ephemeral storage limit \"" +
             c.disk_limit_text + "\". ";
    }
  }
  return std::nullopt;
}

}  // namespace kernelet::agent::eviction
