// containerStatuses[].user.linux and .volumeMounts: the JSON the kubelet
// writes for them, read back as `kernelet pods` and the tests read it, and the
// process user kept in the run record for the next agent (adoption).
#include <gtest/gtest.h>

#include <string>

#include "agent/runtime/run_records.h"
#include "agent/status/pod_status.h"

namespace kernelet::agent {
namespace {

// The JSON without whitespace (none of the values here has any).
std::string compact(const std::string& json) {
  std::string out;
  for (char ch : json) {
    if (ch != ' ' && ch != '\n') {
      out += ch;
    }
  }
  return out;
}

PodStatus sample() {
  PodStatus s;
  ContainerStatus c{.name = "c"};
  c.user = LinuxContainerUser{.uid = 1000, .gid = 3000, .supplemental_groups = {3000, 4000}};
  c.volume_mounts = {
      {.name = "v", .mount_path = "/ro", .read_only = true, .recursive_read_only = "Enabled"},
      {.name = "v", .mount_path = "/rw"}};
  s.container_statuses.push_back(c);
  s.container_statuses.push_back({.name = "waiting"});
  return s;
}

TEST(StatusUserAndMounts, WrittenAsTheKubeletWritesThem) {
  // Pretty-printed: compared without its layout.
  std::string json = compact(podStatusJson(sample()));
  EXPECT_NE(json.find("\"user\":{\"linux\":{\"uid\":1000,\"gid\":3000,"
                      "\"supplementalGroups\":[3000,4000]}}"),
            std::string::npos)
      << json;
  EXPECT_NE(json.find("\"volumeMounts\":[{\"name\":\"v\",\"mountPath\":\"/ro\",\"readOnly\":true,"
                      "\"recursiveReadOnly\":\"Enabled\"},{\"name\":\"v\",\"mountPath\":\"/rw\"}]"),
            std::string::npos)
      << json;
  // A container never created has neither.
  size_t waiting = json.find("\"name\":\"waiting\"");
  ASSERT_NE(waiting, std::string::npos);
  EXPECT_EQ(json.find("\"user\"", waiting), std::string::npos) << json;
  EXPECT_EQ(json.find("\"volumeMounts\"", waiting), std::string::npos) << json;
}

TEST(StatusUserAndMounts, ReadBack) {
  Pod pod;
  pod.name = "p";
  pod.containers.push_back({.name = "c", .image = "i"});
  auto back = parsePodJson(podJson(pod, sample(), "2026-12-02T00:00:00Z"), "test");
  ASSERT_TRUE(back) << back.error().message();
  const ContainerStatus& c = back->status.container_statuses.at(0);
  ASSERT_TRUE(c.user);
  EXPECT_EQ(c.user->uid, 1000);
  EXPECT_EQ(c.user->gid, 3000);
  EXPECT_EQ(c.user->supplemental_groups, (std::vector<int64_t>{3000, 4000}));
  ASSERT_EQ(c.volume_mounts.size(), 2u);
  EXPECT_EQ(c.volume_mounts[0].recursive_read_only, "Enabled");
  EXPECT_TRUE(c.volume_mounts[0].read_only);
  EXPECT_FALSE(c.volume_mounts[1].read_only);
  EXPECT_FALSE(back->status.container_statuses.at(1).user);
}

runtime::PodRecord record(std::optional<runtime::ProcessUser> user) {
  runtime::PodRecord p;
  p.boot_id = "b";
  p.uid = "uid-1";
  p.name = "p";
  p.namespace_ = "default";
  p.cgroup = "/sys/fs/cgroup/x";
  p.run_dir = "/run/kernelet/pods/uid-1";
  runtime::RunRecord& r = p.containers["c"].latest.emplace();
  r.id = std::string(64, 'a');
  r.pid = 42;
  r.started_at = "2026-12-02T00:00:00Z";
  r.image_name = "i";
  r.log_path = "/var/log/pods/x/c/0.log";
  r.rootfs_dir = "/var/lib/kernelet/containers/" + r.id;
  r.cgroup = "/sys/fs/cgroup/x/" + r.id;
  r.user = std::move(user);
  return p;
}

TEST(RunRecordUser, KeptForTheNextAgent) {
  auto back = runtime::parsePodRecord(
      runtime::toJson(record(runtime::ProcessUser{.uid = 7, .gid = 8, .groups = {8, 9}})), "x");
  ASSERT_TRUE(back) << back.error().message();
  const auto& user = back->containers.at("c").latest->user;
  ASSERT_TRUE(user);
  EXPECT_EQ(user->uid, 7);
  EXPECT_EQ(user->gid, 8);
  EXPECT_EQ(user->groups, (std::vector<int64_t>{8, 9}));
  // An older agent's record has none, and reads as it did.
  auto old = runtime::parsePodRecord(runtime::toJson(record(std::nullopt)), "x");
  ASSERT_TRUE(old) << old.error().message();
  EXPECT_FALSE(old->containers.at("c").latest->user);
  // A uid that is no uid is the record's error, named.
  std::string bad = runtime::toJson(record(runtime::ProcessUser{.uid = 7, .gid = 8}));
  bad.replace(bad.find("\"uid\":7"), 7, "\"uid\":-1");
  auto refused = runtime::parsePodRecord(bad, "/r.json");
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().message().find("user.uid"), std::string::npos)
      << refused.error().message();
}

}  // namespace
}  // namespace kernelet::agent
