// The runtime's pod records (agent/runtime/run_records.h): what one agent
// writes the next reads back whole, and a record of another version, another
// boot or a broken one is refused with its path - never half-read.
#include <gtest/gtest.h>

#include <string>

#include "agent/runtime/run_records.h"
#include "support/temp_dir.h"

namespace kernelet::agent::runtime {
namespace {

RunRecord run(char digit, int restart) {
  RunRecord r;
  r.id = std::string(64, digit);
  r.pid = 4242;
  r.start_time = 123456789012ULL;
  r.started_at = "2026-11-30T20:00:00Z";
  r.restart_count = restart;
  r.image_name = "docker.io/library/busybox:latest";
  r.image_id = "docker.io/library/busybox@sha256:" + std::string(64, 'e');
  r.stop_signal = 3;
  r.log_path = "/var/log/pods/ns_p_uid/app/" + std::to_string(restart) + ".log";
  r.rootfs_dir = "/var/lib/kernelet/containers/" + r.id;
  r.cgroup = "/sys/fs/cgroup/kubepods/besteffort/poduid-1/" + r.id;
  return r;
}

PodRecord sample() {
  PodRecord p;
  p.boot_id = "0f2b5c1e-1111-2222-3333-444455556666";
  p.uid = "uid-1";
  p.namespace_ = "default";
  p.name = "printer";
  p.pod_hash = "abc123";
  p.qos = QosClass::kBurstable;
  p.grace_seconds = 7;
  p.kill_at_unix_ms = 1790000000123;
  p.cgroup = "/sys/fs/cgroup/kubepods/burstable/poduid-1";
  p.netns_path = "/run/kernelet/netns/uid-1";
  p.ip = "10.88.0.5";
  p.run_dir = "/run/kernelet/pods/uid-1";
  p.hostname = "printer";
  p.volumes_dir = "/var/lib/kernelet/pods/uid-1/volumes";
  p.volume_paths = {{"data", "/var/lib/kernelet/pods/uid-1/volumes/kubernetes.io~empty-dir/data"}};
  p.tmpfs = {"/var/lib/kernelet/pods/uid-1/volumes/kubernetes.io~secret/s"};
  p.projected = {"s"};
  ContainerRecord& app = p.containers["app"];
  app.latest = run('a', 2);
  app.previous = run('b', 1);
  app.previous->ended = true;
  app.previous->exit_code = 137;
  app.previous->reason = "OOMKilled";
  app.previous->message = "out of \"memory\"\n";
  app.previous->finished_at = "2026-11-30T19:59:00Z";
  app.previous->oom_killed = true;
  p.containers["sidecar"].latest = run('c', 0);
  return p;
}

void expectSame(const RunRecord& a, const RunRecord& b) {
  EXPECT_EQ(a.id, b.id);
  EXPECT_EQ(a.pid, b.pid);
  EXPECT_EQ(a.start_time, b.start_time);
  EXPECT_EQ(a.started_at, b.started_at);
  EXPECT_EQ(a.restart_count, b.restart_count);
  EXPECT_EQ(a.image_name, b.image_name);
  EXPECT_EQ(a.image_id, b.image_id);
  EXPECT_EQ(a.stop_signal, b.stop_signal);
  EXPECT_EQ(a.log_path, b.log_path);
  EXPECT_EQ(a.rootfs_dir, b.rootfs_dir);
  EXPECT_EQ(a.cgroup, b.cgroup);
  EXPECT_EQ(a.ended, b.ended);
  EXPECT_EQ(a.exit_code, b.exit_code);
  EXPECT_EQ(a.reason, b.reason);
  EXPECT_EQ(a.message, b.message);
  EXPECT_EQ(a.finished_at, b.finished_at);
  EXPECT_EQ(a.oom_killed, b.oom_killed);
}

TEST(RunRecordsTest, RoundTripThroughTheFile) {
  testing::TempDir dir;
  PodRecord p = sample();
  std::string path = dir.path() + "/runtime.json";
  ASSERT_TRUE(writePodRecord(path, p));
  auto back = readPodRecord(path);
  ASSERT_TRUE(back) << back.error().message();
  EXPECT_EQ(back->version, PodRecord::kVersion);
  EXPECT_EQ(back->boot_id, p.boot_id);
  EXPECT_EQ(back->uid, p.uid);
  EXPECT_EQ(back->namespace_, p.namespace_);
  EXPECT_EQ(back->name, p.name);
  EXPECT_EQ(back->pod_hash, p.pod_hash);
  EXPECT_EQ(back->qos, QosClass::kBurstable);
  EXPECT_EQ(back->grace_seconds, 7);
  EXPECT_EQ(back->kill_at_unix_ms, p.kill_at_unix_ms);
  EXPECT_EQ(back->cgroup, p.cgroup);
  EXPECT_EQ(back->netns_path, p.netns_path);
  EXPECT_EQ(back->ip, p.ip);
  EXPECT_EQ(back->run_dir, p.run_dir);
  EXPECT_EQ(back->hostname, p.hostname);
  EXPECT_EQ(back->volumes_dir, p.volumes_dir);
  EXPECT_EQ(back->volume_paths, p.volume_paths);
  EXPECT_EQ(back->tmpfs, p.tmpfs);
  EXPECT_EQ(back->projected, p.projected);
  ASSERT_EQ(back->containers.size(), 2u);
  const ContainerRecord& app = back->containers.at("app");
  ASSERT_TRUE(app.latest && app.previous);
  expectSame(*app.latest, *p.containers["app"].latest);
  expectSame(*app.previous, *p.containers["app"].previous);
  EXPECT_FALSE(back->containers.at("sidecar").previous);
  // No kill_at, no end: absent, not zero.
  p.kill_at_unix_ms.reset();
  auto again = parsePodRecord(toJson(p), "x");
  ASSERT_TRUE(again) << again.error().message();
  EXPECT_FALSE(again->kill_at_unix_ms);
}

TEST(RunRecordsTest, CurrentBootOnly) {
  testing::TempDir dir;
  PodRecord p = sample();
  std::string path = dir.path() + "/runtime.json";
  ASSERT_TRUE(writePodRecord(path, p));
  EXPECT_TRUE(readCurrentRecord(path, p.boot_id));
  auto other = readCurrentRecord(path, "another-boot");
  ASSERT_FALSE(other);
  EXPECT_NE(other.error().message().find(path), std::string::npos) << other.error().message();
  EXPECT_FALSE(readCurrentRecord(path, ""));  // unknown boot: nothing can be trusted alive
  EXPECT_FALSE(currentBootId().empty());
}

// Each bad record is refused, and the error names the file and what is wrong.
TEST(RunRecordsTest, RefusesBadRecords) {
  std::string good = toJson(sample());
  auto replaced = [&](const std::string& from, const std::string& to) {
    std::string s = good;
    size_t at = s.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    return s.replace(at, from.size(), to);
  };
  struct Case {
    std::string text, want;
  };
  std::vector<Case> cases = {
      {"", "runtime.json"},
      {good.substr(0, good.size() / 2), "runtime.json"},
      {"[]", "object"},
      {replaced("\"version\":1", "\"version\":2"), "version 2 is not this build's"},
      {replaced("\"version\":1", "\"version\":\"1\""), "version"},
      {replaced("\"uid\":\"uid-1\"", "\"uid\":\"../etc\""), "uid"},
      {replaced("\"uid\":\"uid-1\"", "\"uid\":\"a/b\""), "uid"},
      {replaced("\"qos\":\"Burstable\"", "\"qos\":\"Gold\""), "Gold"},
      {replaced("\"graceSeconds\":7", "\"graceSeconds\":-1"), "graceSeconds"},
      {replaced("\"pid\":4242", "\"pid\":0"), "pid"},
      {replaced("\"pid\":4242", "\"pid\":1e3"), "pid"},
      {replaced("\"stopSignal\":3", "\"stopSignal\":99"), "stopSignal"},
      {replaced("\"id\":\"aaaa", "\"id\":\"AAAA"), "id"},
      {replaced("\"cgroup\":\"/sys/fs/cgroup/kubepods/burstable/poduid-1\"",
                "\"cgroup\":\"sys/fs/cgroup\""),
       "cgroup"},
      {replaced("\"runDir\":\"/run/kernelet/pods/uid-1\"", "\"runDir\":\"/run/../etc\""), "runDir"},
      {replaced("\"version\":1", "\"version\":1,\"newField\":true"), "newField"},
      {replaced("\"exitCode\":137", "\"exitCode\":true"), "exitCode"},
      {std::string(20, '[') + std::string(20, ']'), "runtime.json"},  // too deep
  };
  for (const auto& c : cases) {
    auto r = parsePodRecord(c.text, "/root/pods/uid-1/runtime.json");
    ASSERT_FALSE(r) << c.text;
    EXPECT_NE(r.error().message().find("/root/pods/uid-1/runtime.json"), std::string::npos)
        << r.error().message();
    EXPECT_NE(r.error().message().find(c.want), std::string::npos)
        << "want " << c.want << " in " << r.error().message();
  }
}

}  // namespace
}  // namespace kernelet::agent::runtime
