#pragma once
// Which pod goes first, and what it is told: the kubelet's rankMemoryPressure,
// rankDiskPressureFunc and rankPIDPressure, its evictionMessage, and its local
// storage checks (emptyDir sizeLimit, pod and container ephemeral-storage
// limits), all over measured usage (PodUsage) so they are tested without a node.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace kernelet::agent::eviction {

struct ContainerUsage {
  std::string name;
  // Measured: memory working set; rootfs (its upper dir) plus its logs.
  std::optional<int64_t> memory, disk;
  // From the spec: requests (0 when unset) and the ephemeral-storage limit.
  int64_t memory_request = 0, disk_request = 0;
  std::optional<int64_t> disk_limit;
  // The requests as written ("64Mi"; "0" when unset), for messages.
  std::string memory_request_text = "0", disk_request_text = "0";
  std::string disk_limit_text;
};

struct VolumeUsage {
  std::string name;
  int64_t used = 0;
  bool local_ephemeral = true;  // counts in the pod's ephemeral storage (not a Memory emptyDir)
  std::optional<int64_t> size_limit;  // emptyDir sizeLimit
  std::string size_limit_text;
};

struct PodUsage {
  std::string uid, namespace_, name;
  int32_t priority = 0;
  bool critical = false;  // never evicted (isCriticalPod)
  std::vector<ContainerUsage> containers;
  std::vector<VolumeUsage> volumes;
  int64_t memory = 0;              // working set of the pod's group
  int64_t inodes = 0;              // inodes its containers and volumes use
  int64_t processes = 0;           // pids.current of the pod's group
  bool has_stats = false;          // its group was read (a pod without stats ranks last)
  int64_t termination_grace = 30;  // terminationGracePeriodSeconds

  int64_t memoryRequest() const;
  int64_t diskRequest() const;
  // rootfs + logs of every container + local ephemeral volumes.
  int64_t diskUsage() const;
};

// The order in which pods are evicted for `resource` (memory,
// ephemeral-storage, inodes, pids): indices into `pods`, first to go first.
std::vector<size_t> rank(const std::string& resource, const std::vector<PodUsage>& pods);

// The kubelet's message for a pod evicted for `resource`: "The node was low
// on resource: memory. Threshold quantity: 100Mi, available: 88Mi. Container
// app was using 300Mi, request is 64Mi, has larger consumption of memory. "
std::string evictionMessage(const std::string& resource, const PodUsage& pod, int64_t threshold,
                            int64_t available);

// Quantities as the kubelet prints them: memory and storage in binary SI
// (100Mi, 88316Ki), counts in decimal.
std::string quantityText(const std::string& resource, int64_t value);

// The local storage check (the kubelet's localStorageEviction, before any
// threshold): an emptyDir over its sizeLimit, the pod over the sum of its
// containers' ephemeral-storage limits, a container's rootfs and logs over
// its limit. The message, or nullopt when the pod is within them.
std::optional<std::string> localStorageViolation(const PodUsage& pod);

}  // namespace kernelet::agent::eviction
