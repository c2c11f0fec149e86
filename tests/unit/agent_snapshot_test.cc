// Read-only snapshots of the pods (agent/status/snapshot): what a reader on
// another thread sees while the loop publishes.

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "agent/status/snapshot.h"

namespace kernelet::agent {
namespace {

PodSnapshot pod(const std::string& uid, int restarts, const std::string& phase = "Running") {
  PodSnapshot p;
  p.uid = uid;
  p.namespace_ = "default";
  p.name = "pod-" + uid;
  p.status.phase = phase;
  p.status.container_statuses.push_back({.name = "c", .restart_count = restarts});
  return p;
}

int restartsOf(const NodeSnapshot& s, const std::string& uid) {
  return s.pods.at(uid)->status.container_statuses.at(0).restart_count;
}

TEST(Snapshots, ATakenSnapshotStaysAsItWasAfterLaterPublishes) {
  SnapshotPublisher p;
  auto empty = p.current();
  ASSERT_NE(empty, nullptr);
  EXPECT_EQ(empty->version, 0u);
  EXPECT_TRUE(empty->pods.empty());

  p.update(pod("a", 1));
  p.update(pod("b", 0, "Pending"));
  p.publish();
  auto first = p.current();
  EXPECT_EQ(first->version, 1u);
  ASSERT_EQ(first->pods.size(), 2u);

  p.update(pod("a", 2, "Failed"));
  p.remove("b");
  p.publish();
  auto second = p.current();
  EXPECT_EQ(second->version, 2u);
  EXPECT_EQ(second->pods.size(), 1u);
  EXPECT_EQ(restartsOf(*second, "a"), 2);
  EXPECT_EQ(second->pods.at("a")->status.phase, "Failed");
  // The first one is untouched.
  EXPECT_EQ(first->version, 1u);
  ASSERT_EQ(first->pods.size(), 2u);
  EXPECT_EQ(restartsOf(*first, "a"), 1);
  EXPECT_EQ(first->pods.at("a")->status.phase, "Running");
  EXPECT_EQ(first->pods.at("b")->status.phase, "Pending");
  EXPECT_TRUE(empty->pods.empty());
}

TEST(Snapshots, ChangesOfOneTurnArePublishedOnce) {
  SnapshotPublisher p;
  for (int i = 0; i < 100; i++) {
    p.update(pod("a", i));
    p.update(pod("u" + std::to_string(i % 10), i));
  }
  p.publish();
  auto s = p.current();
  EXPECT_EQ(s->version, 1u);
  EXPECT_EQ(s->pods.size(), 11u);
  EXPECT_EQ(restartsOf(*s, "a"), 99);
  // Nothing changed since: no new snapshot, not even for a pod never seen.
  p.remove("never-seen");
  p.publish();
  EXPECT_EQ(p.current(), s);
  // A pod that did not change is shared between snapshots, not copied.
  p.update(pod("a", 100));
  p.publish();
  EXPECT_EQ(p.current()->version, 2u);
  EXPECT_EQ(p.current()->pods.at("u3"), s->pods.at("u3"));
  EXPECT_NE(p.current()->pods.at("a"), s->pods.at("a"));
}

TEST(Snapshots, PodSnapshotTakesWhatTheReadersNeed) {
  Pod pod;
  pod.uid = "u1";
  pod.namespace_ = "web";
  pod.name = "front";
  pod.node_name = "node1";
  pod.labels = {{"app", "front"}};
  pod.init_containers.resize(1);
  pod.init_containers[0].name = "setup";
  pod.containers.resize(2);
  pod.containers[0].name = "app";
  pod.containers[1].name = "log";
  PodStatus status;
  status.phase = "Running";
  status.pod_ip = "10.88.0.4";
  status.start_time = "2026-01-01T00:00:00Z";
  status.container_statuses.push_back({.name = "app", .ready = true, .restart_count = 3});
  auto s = podSnapshot(pod, status, "2025-12-31T23:59:59Z", "kubepods/burstable/podu1");
  EXPECT_EQ(s.uid, "u1");
  EXPECT_EQ(s.namespace_, "web");
  EXPECT_EQ(s.name, "front");
  EXPECT_EQ(s.node_name, "node1");
  EXPECT_EQ(s.created, "2025-12-31T23:59:59Z");
  EXPECT_EQ(s.labels.at("app"), "front");
  EXPECT_EQ(s.init_containers, std::vector<std::string>{"setup"});
  EXPECT_EQ(s.containers, (std::vector<std::string>{"app", "log"}));
  EXPECT_EQ(s.status.pod_ip, "10.88.0.4");
  EXPECT_EQ(s.status.container_statuses.at(0).restart_count, 3);
  EXPECT_EQ(s.cgroup_path, "kubepods/burstable/podu1");
}

// The loop publishes 3000 turns; in turn g every pod has restart count g and
// the pod count is 10 + g % 5. Readers on four threads take snapshots the
// whole time: versions never go back, and each snapshot is one whole turn
// (never some pods of one turn and some of another). Run under TSan too.
TEST(Snapshots, ReadersOnOtherThreadsSeeWholeTurnsInOrder) {
  constexpr int kTurns = 3000;
  SnapshotPublisher p;
  std::atomic<bool> done{false};
  std::atomic<int> bad{0};
  std::atomic<uint64_t> reads{0};
  auto reader = [&] {
    uint64_t last = 0;
    while (!done.load()) {
      auto s = p.current();
      if (s->version < last) {
        bad++;
      }
      last = s->version;
      if (s->version == 0) {
        continue;
      }
      auto g = static_cast<int>(s->version);
      if (s->pods.size() != static_cast<size_t>(10 + g % 5)) {
        bad++;
      }
      for (const auto& [uid, pod] : s->pods) {
        if (pod->status.container_statuses.at(0).restart_count != g) {
          bad++;
        }
      }
      reads++;
    }
  };
  std::vector<std::thread> readers;
  for (int i = 0; i < 4; i++) {
    readers.emplace_back(reader);
  }
  for (int g = 1; g <= kTurns; g++) {
    for (int i = 0; i < 10 + g % 5; i++) {
      p.update(pod("p" + std::to_string(i), g));
    }
    for (int i = 10 + g % 5; i < 15; i++) {
      p.remove("p" + std::to_string(i));
    }
    p.publish();
  }
  done = true;
  for (auto& t : readers) {
    t.join();
  }
  EXPECT_EQ(bad.load(), 0);
  EXPECT_GT(reads.load(), 0u);
  EXPECT_EQ(p.current()->version, static_cast<uint64_t>(kTurns));
}

}  // namespace
}  // namespace kernelet::agent
