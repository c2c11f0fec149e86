// The agent's side of live restore (issue #16) that runs without a kernel:
// the previous agent's pod statuses read back, the --stop-pods-on-exit flag,
// and the back-off an adopted container resumes.
#include <gtest/gtest.h>

#include <filesystem>

#include "agent/app/cli.h"
#include "agent/app/last_status.h"
#include "agent/lifecycle/backoff.h"
#include "agent/model/pod.h"
#include "agent/status/pod_status.h"
#include "support/temp_dir.h"

namespace kernelet::agent {
namespace {

using kernelet::testing::TempDir;

std::string statusFile(const std::string& uid, bool ready) {
  auto pods = parseManifests(
      "apiVersion: v1\nkind: Pod\nmetadata: {name: web, namespace: default, uid: " + uid +
          "}\nspec:\n  containers: [{name: app, image: busybox}]\n",
      "web.yaml");
  EXPECT_TRUE(pods) << pods.error().message();
  Pod pod = (*pods)[0].pod;
  pod.uid = uid;
  PodStatus s;
  s.phase = "Running";
  s.start_time = "2026-01-02T03:04:05Z";
  s.container_statuses.push_back({.name = "app",
                                  .container_id = "kernelet://c0ffee",
                                  .state = {.kind = ContainerState::Kind::kRunning},
                                  .ready = ready,
                                  .restart_count = 2});
  return podJson(pod, s, "2026-01-02T03:04:00Z");
}

TEST(LastStatuses, ReadsWhatTheStatusFilesSaid) {
  TempDir dir;
  std::filesystem::create_directories(dir.path() + "/u1");
  std::filesystem::create_directories(dir.path() + "/u2");
  std::filesystem::create_directories(dir.path() + "/u3");  // no status.json: no error
  dir.write("u1/status.json", statusFile("u1", true));
  dir.write("u2/status.json", statusFile("u2", false));
  LastStatuses last = readLastStatuses(dir.path());
  EXPECT_TRUE(last.errors.empty()) << last.errors.at(0);
  ASSERT_EQ(last.by_uid.size(), 2u);
  const PodStatus& u1 = last.by_uid.at("u1");
  ASSERT_EQ(u1.container_statuses.size(), 1u);
  EXPECT_TRUE(u1.container_statuses[0].ready);
  EXPECT_EQ(u1.container_statuses[0].container_id, "kernelet://c0ffee");
  EXPECT_EQ(u1.container_statuses[0].state.kind, ContainerState::Kind::kRunning);
  EXPECT_EQ(u1.start_time, "2026-01-02T03:04:05Z");
  EXPECT_FALSE(last.by_uid.at("u2").container_statuses[0].ready);
}

TEST(LastStatuses, ACorruptOrForeignFileIsReportedWithItsPathAndSkipped) {
  TempDir dir;
  std::filesystem::create_directories(dir.path() + "/u1");
  std::filesystem::create_directories(dir.path() + "/u2");
  std::filesystem::create_directories(dir.path() + "/u3");
  dir.write("u1/status.json", "{\"metadata\": {\"uid\": ");       // torn
  dir.write("u2/status.json", statusFile("someone-else", true));  // not this pod's
  dir.write("u3/status.json", statusFile("u3", true));
  LastStatuses last = readLastStatuses(dir.path());
  EXPECT_EQ(last.by_uid.size(), 1u);
  EXPECT_TRUE(last.by_uid.contains("u3"));
  ASSERT_EQ(last.errors.size(), 2u);
  std::string all = last.errors[0] + "\n" + last.errors[1];
  EXPECT_NE(all.find(dir.path() + "/u1/status.json"), std::string::npos) << all;
  EXPECT_NE(all.find(dir.path() + "/u2/status.json"), std::string::npos) << all;
}

TEST(LastStatuses, NoDirectoryIsNothingLeft) {
  LastStatuses last = readLastStatuses("/nonexistent/kernelet/pods");
  EXPECT_TRUE(last.by_uid.empty());
  EXPECT_TRUE(last.errors.empty());
}

TEST(StopPodsOnExit, OffByDefaultAndSetByItsFlag) {
  auto plain = runConfig({"--pod-manifest-path", "/m"});
  ASSERT_TRUE(plain) << plain.error().message();
  EXPECT_FALSE(plain->stop_pods_on_exit) << "SIGTERM leaves the pods running";
  auto stop = runConfig({"--pod-manifest-path", "/m", "--stop-pods-on-exit"});
  ASSERT_TRUE(stop) << stop.error().message();
  EXPECT_TRUE(stop->stop_pods_on_exit);
}

TEST(BackoffResume, AnAdoptedContainerBacksOffWhereItWas) {
  using std::chrono::seconds;
  auto now = Backoff::Clock::now();
  Backoff fresh;
  EXPECT_EQ(fresh.next("app", now, now), seconds(0)) << "a first failure restarts at once";
  for (auto [restarts, wait] : {std::pair{1, 10}, {2, 20}, {3, 40}, {6, 300}, {40, 300}}) {
    Backoff b;
    b.resume("app", restarts);
    EXPECT_EQ(b.next("app", now, now), seconds(wait)) << restarts << " restarts";
  }
  Backoff none;
  none.resume("app", 0);
  EXPECT_EQ(none.next("app", now, now), seconds(0));
  Backoff long_run;
  long_run.resume("app", 5);
  EXPECT_EQ(long_run.next("app", now - std::chrono::minutes(11), now), seconds(0))
      << "a run of 10 minutes starts the back-off over";
}

}  // namespace
}  // namespace kernelet::agent
