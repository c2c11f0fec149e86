#include "agent/status/snapshot.h"

#include <utility>

namespace kernelet::agent {

PodSnapshot podSnapshot(const Pod& pod, const PodStatus& status, const std::string& created,
                        std::string cgroup_path) {
  PodSnapshot s{.uid = pod.uid,
                .namespace_ = pod.namespace_,
                .name = pod.name,
                .node_name = pod.node_name,
                .created = created,
                .labels = pod.labels,
                .annotations = pod.annotations,
                .status = status,
                .cgroup_path = std::move(cgroup_path)};
  for (const auto& c : pod.init_containers) {
    s.init_containers.push_back(c.name);
  }
  for (const auto& c : pod.containers) {
    s.containers.push_back(c.name);
  }
  for (const auto& c : pod.ephemeral_containers) {
    s.ephemeral_containers.push_back(c.name);
  }
  return s;
}

SnapshotPublisher::SnapshotPublisher() : current_(std::make_shared<const NodeSnapshot>()) {}

void SnapshotPublisher::update(PodSnapshot pod) {
  std::string uid = pod.uid;
  staged_.insert_or_assign(std::move(uid), std::make_shared<const PodSnapshot>(std::move(pod)));
  dirty_ = true;
}

void SnapshotPublisher::remove(const std::string& uid) {
  dirty_ = staged_.erase(uid) > 0 || dirty_;
}

void SnapshotPublisher::publish() {
  if (!dirty_) {
    return;
  }
  dirty_ = false;
  // Built outside the lock: readers wait at most for a pointer swap.
  auto next = std::make_shared<NodeSnapshot>();
  next->version = ++version_;
  next->published = std::chrono::system_clock::now();
  next->pods = staged_;
  std::shared_ptr<const NodeSnapshot> old;
  {
    std::lock_guard lock(mu_);
    old = std::exchange(current_, std::move(next));
  }
  // `old` is released here, outside the lock: when this was its last
  // reference, freeing a large snapshot holds up no reader.
}

std::shared_ptr<const NodeSnapshot> SnapshotPublisher::current() const {
  std::lock_guard lock(mu_);
  return current_;
}

}  // namespace kernelet::agent
