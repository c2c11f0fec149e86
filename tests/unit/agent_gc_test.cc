// Container garbage collection (agent/gc/container_gc.h), the garbage
// collector's events (gc_manager.h) and the GC settings from the config file
// and the kubelet's flags (gc_settings.h, app/gc_flags.h).
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <utime.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "agent/app/cli.h"
#include "agent/config/config.h"
#include "agent/gc/container_gc.h"
#include "agent/gc/gc_manager.h"
#include "agent/server/node_endpoints.h"
#include "support/temp_dir.h"
#include "sys/event_loop.h"
#include "sys/timer_queue.h"

namespace kernelet::agent {
namespace {

namespace fs = std::filesystem;
using gc::DeadRun;
using testing::TempDir;

std::vector<std::string> removed(const std::vector<DeadRun>& runs) {
  std::vector<std::string> out;
  for (const auto& r : runs) {
    out.push_back(r.unit + "/" + std::to_string(r.run));
  }
  std::sort(out.begin(), out.end());
  return out;
}

TEST(ContainerGc, EachContainerKeepsItsNewestDeadRuns) {
  std::vector<DeadRun> dead = {{.unit = "p/a", .run = 0, .ended = 100},
                               {.unit = "p/a", .run = 1, .ended = 200},
                               {.unit = "p/a", .run = 2, .ended = 300},
                               {.unit = "p/b", .run = 0, .ended = 50}};
  // The default: one dead run per container, the newest.
  EXPECT_EQ(removed(gc::runsToRemove(dead, {}, 1000)),
            (std::vector<std::string>{"p/a/0", "p/a/1"}));
  EXPECT_TRUE(gc::runsToRemove(dead, {.max_per_pod_container = -1}, 1000).empty());
  EXPECT_EQ(removed(gc::runsToRemove(dead, {.max_per_pod_container = 0}, 1000)).size(), 4u);
  // Dead for less than the minimum age: kept whatever the limit.
  EXPECT_EQ(
      removed(gc::runsToRemove(dead, {.max_per_pod_container = 0, .min_age_seconds = 750}, 1000)),
      (std::vector<std::string>{"p/a/0", "p/a/1", "p/b/0"}));
}

TEST(ContainerGc, TheNodeLimitSharesThenTakesTheOldest) {
  std::vector<DeadRun> dead = {
      {.unit = "a", .run = 0, .ended = 10}, {.unit = "a", .run = 1, .ended = 20},
      {.unit = "a", .run = 2, .ended = 30}, {.unit = "b", .run = 0, .ended = 5},
      {.unit = "b", .run = 1, .ended = 40}, {.unit = "c", .run = 0, .ended = 35}};
  // 4 in all, 3 containers: 1 each (4/3), then 3 <= 4 is enough.
  EXPECT_EQ(
      removed(gc::runsToRemove(dead, {.max_per_pod_container = -1, .max_containers = 4}, 1000)),
      (std::vector<std::string>{"a/0", "a/1", "b/0"}));
  // 2 in all: 1 each, then the oldest of those (a/2 ended at 30).
  EXPECT_EQ(
      removed(gc::runsToRemove(dead, {.max_per_pod_container = -1, .max_containers = 2}, 1000)),
      (std::vector<std::string>{"a/0", "a/1", "a/2", "b/0"}));
  EXPECT_EQ(gc::runsToRemove(dead, {.max_per_pod_container = -1, .max_containers = 0}, 1000).size(),
            6u);
}

class ContainerLogDir : public ::testing::Test {
 protected:
  std::string file(const std::string& name, int64_t mtime = 1000) {
    std::string p = dir_ + "/" + name;
    std::ofstream(p) << "x";
    utimbuf t{.actime = mtime, .modtime = mtime};
    ::utime(p.c_str(), &t);
    return p;
  }
  std::vector<std::string> left() {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(dir_)) {
      out.push_back(e.path().filename());
    }
    std::sort(out.begin(), out.end());
    return out;
  }
  TempDir tmp_;
  std::string dir_ = tmp_.path() + "/ns_pod_uid/app";
  void SetUp() override { fs::create_directories(dir_); }
};

TEST_F(ContainerLogDir, DeadRunsGoWithTheirRotationsAndThePreviousRunStays) {
  file("0.log");
  file("1.log.20261202-100000");
  file("1.log.20261202-100000.1");
  file("1.log");
  file("2.log");
  file("3.log");
  file("notes.txt");  // not a run's: never touched
  auto runs = gc::runFiles(dir_);
  ASSERT_EQ(runs.size(), 4u);
  EXPECT_EQ(runs[1].size(), 3u);
  // Run 3 runs: 2 is what --previous reads.
  gc::Removed r =
      gc::collectContainers({{.dir = dir_, .latest = 3, .latest_ended = false}}, {}, 2000);
  EXPECT_TRUE(r.errors.empty());
  EXPECT_EQ(r.runs, 2);
  EXPECT_EQ(r.files, 4);
  EXPECT_EQ(left(), (std::vector<std::string>{"2.log", "3.log", "notes.txt"}));
}

TEST_F(ContainerLogDir, ARunBeingStartedIsNeverTouchedAndTheLastDeadOneStays) {
  file("0.log");
  file("1.log");
  file("2.log");  // opened for a start the status does not show yet
  // Backing off after run 1 ended: 1 is what --previous (and the log) read.
  gc::Removed r =
      gc::collectContainers({{.dir = dir_, .latest = 1, .latest_ended = true}}, {}, 2000);
  EXPECT_EQ(r.runs, 1);
  EXPECT_EQ(left(), (std::vector<std::string>{"1.log", "2.log"}));
  // Waiting for its first start: its run 0 has not ended.
  TempDir other;
  std::ofstream(other.path() + "/0.log") << "x";
  EXPECT_EQ(gc::collectContainers({{.dir = other.path(), .latest = 0}},
                                  {.max_per_pod_container = 0}, 2000)
                .runs,
            0);
}

TEST(GarbageCollectorEvents, FreeDiskSpaceFailedEachTimeImageGcFailedWhenRepeated) {
  TempDir d;
  auto store = images::ImageStore::open(d.path() + "/images");
  ASSERT_TRUE(store);
  auto loop = EventLoop::create();
  ASSERT_TRUE(loop);
  auto timers = TimerQueue::create(*loop);
  ASSERT_TRUE(timers);
  std::vector<std::string> events;
  gc::GarbageCollector::Hooks hooks;
  hooks.node_event = [&](const std::string& type, const std::string& reason,
                         const std::string& message) {
    events.push_back(type + " " + reason + ": " + message);
  };
  // A full filesystem and no image to delete.
  images::ImageGarbageCollector::Options options{.usage = []() -> Result<images::FsUsage> {
    return images::FsUsage{.capacity = 1000, .available = 50};
  }};
  gc::GarbageCollector collector(**timers, *store, options, {}, hooks);
  collector.imagePass();
  const std::string message =
      "Failed to garbage collect required amount of images. Attempted to free 150 bytes, but "
      "only found 0 bytes eligible to free.";
  EXPECT_EQ(events, std::vector<std::string>{"Warning FreeDiskSpaceFailed: " + message});
  collector.imagePass();
  EXPECT_EQ(events, (std::vector<std::string>{"Warning FreeDiskSpaceFailed: " + message,
                                              "Warning FreeDiskSpaceFailed: " + message,
                                              "Warning ImageGCFailed: " + message}));
  EXPECT_EQ(collector.freeImageSpace(100).value(), 0);
}

TEST(GcSettings, FromTheConfigFileWithTheKubeletsValidation) {
  TempDir d;
  const std::string head =
      "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n";
  AgentConfig c;
  auto ok = loadKubeletConfiguration(
      d.write("ok.yaml", head + "imageGCHighThresholdPercent: 90\nimageGCLowThresholdPercent: 70\n"
                                "imageMinimumGCAge: 5m\nimageMaximumGCAge: 24h\n"),
      c);
  ASSERT_TRUE(ok) << ok.error().message();
  EXPECT_EQ(c.image_gc.high_threshold_percent, 90);
  EXPECT_EQ(c.image_gc.low_threshold_percent, 70);
  EXPECT_EQ(c.image_gc.min_age_seconds, 300);
  EXPECT_EQ(c.image_gc.max_age_seconds, 86400);

  AgentConfig fresh;
  std::string bad = d.write("bad.yaml", head + "imageGCLowThresholdPercent: 90\n");
  auto low = loadKubeletConfiguration(bad, fresh);
  ASSERT_FALSE(low);
  EXPECT_EQ(low.error().message(),
            "load kubelet config `" + bad +
                "`: line 3: imageGCLowThresholdPercent (--image-gc-low-threshold): 90 must be "
                "less than imageGCHighThresholdPercent (--image-gc-high-threshold) 85");
  std::string word = d.write("word.yaml", head + "imageGCHighThresholdPercent: lots\n");
  auto type = loadKubeletConfiguration(word, fresh);
  ASSERT_FALSE(type);
  EXPECT_EQ(type.error().message(), "load kubelet config `" + word +
                                        "`: line 3: imageGCHighThresholdPercent: must be an "
                                        "integer percentage");
  std::string age = d.write("age.yaml", head + "imageMinimumGCAge: soon\n");
  auto dur = loadKubeletConfiguration(age, fresh);
  ASSERT_FALSE(dur);
  EXPECT_NE(dur.error().message().find("line 3: imageMinimumGCAge: \"soon\" is not a duration"),
            std::string::npos)
      << dur.error().message();
}

TEST(GcSettings, TheKubeletsFlagsWinOverTheFile) {
  auto defaults = runConfig({"--pod-manifest-path", "/m"});
  ASSERT_TRUE(defaults) << defaults.error().message();
  EXPECT_EQ(defaults->image_gc.high_threshold_percent, 85);
  EXPECT_EQ(defaults->image_gc.low_threshold_percent, 80);
  EXPECT_EQ(defaults->image_gc.min_age_seconds, 120);
  EXPECT_EQ(defaults->image_gc.max_age_seconds, 0);
  EXPECT_EQ(defaults->container_gc.max_per_pod_container, 1);
  EXPECT_EQ(defaults->container_gc.max_containers, -1);
  EXPECT_EQ(defaults->container_gc.min_age_seconds, 0);

  auto set = runConfig({"--pod-manifest-path", "/m", "--image-gc-high-threshold", "70",
                        "--image-gc-low-threshold", "50", "--minimum-image-ttl-duration", "1m",
                        "--maximum-dead-containers-per-container", "2", "--maximum-dead-containers",
                        "100", "--minimum-container-ttl-duration", "30s"});
  ASSERT_TRUE(set) << set.error().message();
  EXPECT_EQ(set->image_gc.high_threshold_percent, 70);
  EXPECT_EQ(set->image_gc.low_threshold_percent, 50);
  EXPECT_EQ(set->image_gc.min_age_seconds, 60);
  EXPECT_EQ(set->container_gc.max_per_pod_container, 2);
  EXPECT_EQ(set->container_gc.max_containers, 100);
  EXPECT_EQ(set->container_gc.min_age_seconds, 30);

  auto over = runConfig({"--pod-manifest-path", "/m", "--image-gc-high-threshold", "101"});
  ASSERT_FALSE(over);
  EXPECT_EQ(over.error().message(),
            "kernelet run: imageGCHighThresholdPercent (--image-gc-high-threshold): 101 must be "
            "between 0 and 100, inclusive");
  auto crossed = runConfig({"--pod-manifest-path", "/m", "--image-gc-low-threshold", "90"});
  ASSERT_FALSE(crossed);
  EXPECT_NE(crossed.error().message().find("must be less than imageGCHighThresholdPercent"),
            std::string::npos);
  auto ttl = runConfig({"--pod-manifest-path", "/m", "--minimum-image-ttl-duration=-1m"});
  ASSERT_FALSE(ttl);
  EXPECT_NE(ttl.error().message().find("--minimum-image-ttl-duration"), std::string::npos)
      << ttl.error().message();
}

TEST(GcSettings, ConfigzShowsTheImageGcFields) {
  AgentConfig c;
  c.image_gc.max_age_seconds = 7 * 24 * 3600;
  std::string z = server::configzJson(c);
  for (const char* field :
       {R"("imageGCHighThresholdPercent":85)", R"("imageGCLowThresholdPercent":80)",
        R"("imageMinimumGCAge":"2m0s")", R"("imageMaximumGCAge":"168h0m0s")"}) {
    EXPECT_NE(z.find(field), std::string::npos) << field << " in " << z;
  }
}

TEST(GarbageCollectorEvents, ImageRemovalWaitsWhileAPullIsInFlight) {
  TempDir d;
  auto store = images::ImageStore::open(d.path() + "/images");
  ASSERT_TRUE(store);
  auto loop = EventLoop::create();
  ASSERT_TRUE(loop);
  auto timers = TimerQueue::create(*loop);
  ASSERT_TRUE(timers);
  std::vector<std::string> events;
  bool pulling = true;
  gc::GarbageCollector::Hooks hooks;
  hooks.node_event = [&](const std::string& type, const std::string& reason, const std::string&) {
    events.push_back(type + " " + reason);
  };
  hooks.pull_in_flight = [&] { return pulling; };
  images::ImageGarbageCollector::Options options{.usage = []() -> Result<images::FsUsage> {
    return images::FsUsage{.capacity = 1000, .available = 50};
  }};
  gc::GarbageCollector collector(**timers, *store, options, {}, hooks);
  // A pull's layers are not recorded yet: nothing is looked at, not even the
  // usage, until it ends.
  collector.imagePass();
  EXPECT_TRUE(events.empty());
  EXPECT_EQ(collector.freeImageSpace(100).value(), 0);
  pulling = false;
  collector.imagePass();
  EXPECT_EQ(events, std::vector<std::string>{"Warning FreeDiskSpaceFailed"});
}

}  // namespace
}  // namespace kernelet::agent
