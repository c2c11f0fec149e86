#pragma once
// Read-only snapshots of the pods the agent runs, for readers on other
// threads: the :10250 server (/pods, /stats), metrics, `kernelet pods`. The
// loop stages each pod's state as its status changes and publishes once per
// loop turn, however many pods changed in it; a publish builds a new immutable
// NodeSnapshot and swaps it in. A reader takes the current one (a shared_ptr
// copy) and keeps it as long as it likes: later publishes never change it,
// and no reader ever touches the loop's own data.
//
// The swap is a shared_ptr guarded by a mutex, not std::atomic<shared_ptr>:
// libstdc++'s atomic<shared_ptr> is not lock-free either (it spins on a lock
// bit), the mutex is held only for a pointer copy (never while a snapshot is
// built or read), and ThreadSanitizer understands a mutex exactly, so the
// test that hammers it under TSan checks the real thing.

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "agent/model/pod.h"
#include "agent/status/pod_status.h"

namespace kernelet::agent {

// One pod as it was at a publish.
struct PodSnapshot {
  std::string uid, namespace_, name, node_name;
  std::string created;  // creationTimestamp, RFC 3339
  std::map<std::string, std::string> labels, annotations;
  std::vector<std::string> init_containers, containers;  // names, in spec order
  std::vector<std::string> ephemeral_containers;         // names, as added
  // Phase, conditions, container statuses and their restart counts, pod IP,
  // start times, QoS class.
  PodStatus status;
  // The pod's cgroup relative to the cgroup v2 mount (where its stats are).
  std::string cgroup_path;
  // The pod's document as its source gave it (JSON), when the agent has it:
  // /pods shows its spec. Shared, never copied per publish.
  std::shared_ptr<const std::string> source_json;
};

PodSnapshot podSnapshot(const Pod& pod, const PodStatus& status, const std::string& created,
                        std::string cgroup_path);

// Every pod at one publish, by uid. A pod that did not change between two
// publishes is the same PodSnapshot in both: a publish copies pointers, not pods.
struct NodeSnapshot {
  uint64_t version = 0;  // 1 for the first publish, +1 for each
  std::chrono::system_clock::time_point published;
  std::map<std::string, std::shared_ptr<const PodSnapshot>> pods;
};

class SnapshotPublisher {
 public:
  SnapshotPublisher();

  // From the loop: a pod's state changed, or the pod is gone. Staged until
  // the next publish().
  void update(PodSnapshot pod);
  void remove(const std::string& uid);
  // From the loop, once per turn: makes what was staged visible. Nothing
  // staged, nothing published (the version stays).
  void publish();

  // From any thread: the snapshot last published (version 0 and no pods
  // before the first publish). Never null.
  std::shared_ptr<const NodeSnapshot> current() const;

 private:
  // The loop's: the pods as staged, and whether they differ from current().
  std::map<std::string, std::shared_ptr<const PodSnapshot>> staged_;
  bool dirty_ = false;
  uint64_t version_ = 0;

  mutable std::mutex mu_;
  std::shared_ptr<const NodeSnapshot> current_;  // guarded by mu_
};

}  // namespace kernelet::agent
