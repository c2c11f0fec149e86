// agent/stats: the readers over a fake cgroup tree and procfs, the CPU rate,
// the disk-usage cache and the Summary API JSON (checked field by field as
// Go's encoding/json would write the v1alpha1 types).

#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <future>
#include <map>

#include "agent/stats/cgroup_stats.h"
#include "agent/stats/cpu_sampler.h"
#include "agent/stats/fs_usage.h"
#include "agent/stats/kernel_files.h"
#include "agent/stats/metrics_text.h"
#include "agent/stats/stats_endpoints.h"
#include "agent/stats/summary.h"
#include "stats_fixture.h"

namespace kernelet::agent::stats {
namespace {

using test::FakeNode;
using namespace std::chrono_literals;

TEST(StatsKernelFiles, ParsesTheKernelsFormatsAndSkipsJunk) {
  auto kv = parseKeyValues(
      "usage_usec 1234\nuser_usec x\n\nsystem_usec 99999999999999999999999\n"
      "nr_periods 7");
  EXPECT_EQ(kv.at("usage_usec"), 1234u);
  EXPECT_FALSE(kv.contains("user_usec"));    // not a number
  EXPECT_FALSE(kv.contains("system_usec"));  // too large
  EXPECT_EQ(kv.at("nr_periods"), 7u);        // no final newline

  auto mem = parseKeyValues("MemTotal:  16 kB\nHugePages_Total:  0\nbad 5 kB\n", true);
  EXPECT_EQ(mem.at("MemTotal"), 16u * 1024);
  EXPECT_EQ(mem.at("HugePages_Total"), 0u);
  EXPECT_FALSE(mem.contains("bad"));

  EXPECT_EQ(parseSingleValue("4096\n"), 4096u);
  EXPECT_EQ(parseSingleValue("max\n"), std::nullopt);
  EXPECT_EQ(parseSingleValue(""), std::nullopt);

  auto io = parseIoStat(
      "8:0 rbytes=100 wbytes=200 rios=1 wios=2 dbytes=0 dios=0\n"
      "8:16 rbytes=5 wbytes=x rios=1\njunk\n");
  EXPECT_EQ(io.rbytes, 105u);
  EXPECT_EQ(io.wbytes, 200u);
  EXPECT_EQ(io.rios, 2u);

  // user nice system [idle iowait] irq softirq steal
  EXPECT_EQ(parseProcStatBusyTicks("cpu  1 2 3 1000 1000 4 5 6 0 0\ncpu0 9 9 9 9 9 9 9 9\n"), 21u);
  EXPECT_EQ(parseProcStatBusyTicks("cpu 1 2\n"), std::nullopt);

  auto ifs = parseNetDev(FakeNode::netDev(1000, 3, 2000, 4) + "bad: 1 2\n");
  ASSERT_EQ(ifs.size(), 2u);
  EXPECT_EQ(ifs[1].name, "eth0");
  EXPECT_EQ(ifs[1].rx_bytes, 1000u);
  EXPECT_EQ(ifs[1].rx_errors, 3u);
  EXPECT_EQ(ifs[1].tx_bytes, 2000u);
  EXPECT_EQ(ifs[1].tx_errors, 4u);

  // A command name with spaces and parentheses: fields start after the last ')'.
  auto st = parseProcPidStat(
      "42 (a (b) c) S 1 42 42 0 -1 4194560 100 0 0 0 17 23 0 0 20 0 3 0 555 123456 78 1844 0");
  ASSERT_TRUE(st);
  EXPECT_EQ(st->utime_ticks, 17u);
  EXPECT_EQ(st->stime_ticks, 23u);
  EXPECT_EQ(st->start_ticks, 555u);
  EXPECT_EQ(st->vsize_bytes, 123456u);
  EXPECT_EQ(st->rss_pages, 78u);
  EXPECT_FALSE(parseProcPidStat("42 (x) S 1 2"));
}

TEST(StatsKernelFiles, PressureLinesAsTheKernelWritesThemJunkSkipped) {
  auto p = parsePressure(
      "some avg10=0.12 avg60=3.50 avg300=100.00 total=123456\n"
      "full avg10=0.00 avg60=0.01 avg300=0.00 total=42\n");
  ASSERT_TRUE(p);
  EXPECT_DOUBLE_EQ(p->some.avg10, 0.12);
  EXPECT_DOUBLE_EQ(p->some.avg60, 3.5);
  EXPECT_DOUBLE_EQ(p->some.avg300, 100.0);
  EXPECT_EQ(p->some.total, 123456u);
  EXPECT_DOUBLE_EQ(p->full.avg60, 0.01);
  EXPECT_EQ(p->full.total, 42u);

  // /proc/pressure/cpu before Linux 5.13: no full line, full stays zero.
  auto cpu = parsePressure("some avg10=1.00 avg60=0.00 avg300=0.00 total=7");
  ASSERT_TRUE(cpu);
  EXPECT_EQ(cpu->some.total, 7u);
  EXPECT_EQ(cpu->full.total, 0u);
  EXPECT_EQ(cpu->full.avg10, 0.0);

  // A line with a bad or missing field is skipped, the other kept.
  for (const char* bad :
       {"avg10=nan avg60=0.00 avg300=0.00 total=1", "avg10=inf avg60=0.00 avg300=0.00 total=1",
        "avg10=-1.00 avg60=0.00 avg300=0.00 total=1", "avg10=0.00 avg60=0.00 total=1",
        "avg10=0.00 avg60=0.00 avg300=0.00", "avg10=0.00 avg60=0.00 avg300=0.00 total=-1",
        "avg10=1e400 avg60=0.00 avg300=0.00 total=1", "avg10=0.00 avg60 avg300=0.00 total=1"}) {
    auto q = parsePressure(std::string("some ") + bad +
                           "\nfull avg10=2.00 avg60=0.00 avg300=0.00 total=9\n");
    ASSERT_TRUE(q) << bad;
    EXPECT_EQ(q->some.total, 0u) << bad;
    EXPECT_EQ(q->full.total, 9u) << bad;
    EXPECT_EQ(parsePressure(std::string("some ") + bad), std::nullopt) << bad;
  }
  EXPECT_EQ(parsePressure(""), std::nullopt);
  EXPECT_EQ(parsePressure("other avg10=0.00 avg60=0.00 avg300=0.00 total=1\n"), std::nullopt);
}

TEST(StatsCgroup, PressureAndSwapWhereTheKernelHasThemUnsetWhereNot) {
  FakeNode n;
  n.group("a", 1, 100, "");
  n.file("cgroup/a/cpu.pressure",
         "some avg10=1.50 avg60=0.00 avg300=0.00 total=10\n"
         "full avg10=0.50 avg60=0.00 avg300=0.00 total=5\n");
  n.file("cgroup/a/memory.pressure",
         "some avg10=0.00 avg60=0.00 avg300=0.00 total=20\n"
         "full avg10=0.00 avg60=0.00 avg300=0.00 total=15\n");
  n.file("cgroup/a/io.pressure",
         "some avg10=0.00 avg60=0.00 avg300=0.00 total=30\n"
         "full avg10=0.00 avg60=0.00 avg300=0.00 total=25\n");
  n.file("cgroup/a/memory.swap.current", "4096\n");
  n.file("cgroup/a/memory.swap.max", "65536\n");
  auto a = readCgroup(n.sources().cgroup_mount, "a", Clock::now());
  ASSERT_TRUE(a) << a.error().message();
  ASSERT_TRUE(a->cpu_pressure && a->memory_pressure && a->io_pressure);
  EXPECT_EQ(a->cpu_pressure->some.total, 10u);
  EXPECT_DOUBLE_EQ(a->cpu_pressure->full.avg10, 0.5);
  EXPECT_EQ(a->memory_pressure->full.total, 15u);
  EXPECT_EQ(a->io_pressure->some.total, 30u);
  EXPECT_EQ(a->swap_current, 4096u);
  EXPECT_EQ(a->swap_max, 65536u);

  n.group("b", 1, 100, "");
  auto b = readCgroup(n.sources().cgroup_mount, "b", Clock::now());
  ASSERT_TRUE(b);
  EXPECT_FALSE(b->cpu_pressure || b->memory_pressure || b->io_pressure);
  EXPECT_FALSE(b->swap_current || b->swap_max);

  n.file("proc/pressure/memory",
         "some avg10=0.00 avg60=0.00 avg300=0.00 total=77\n"
         "full avg10=0.00 avg60=0.00 avg300=0.00 total=66\n");
  auto node = readNode(n.sources().cgroup_mount, n.sources().proc, Clock::now());
  ASSERT_TRUE(node);
  EXPECT_FALSE(node->cpu_pressure);
  ASSERT_TRUE(node->memory_pressure);
  EXPECT_EQ(node->memory_pressure->some.total, 77u);
  EXPECT_FALSE(node->swap_total);  // the fake meminfo has no Swap lines
}

TEST(StatsCgroup, WorkingSetIsCurrentMinusInactiveFileNeverBelowZero) {
  FakeNode n;
  n.group("a", 2000000, 10000,
          "anon 6000\nfile 4000\ninactive_file 3000\npgfault 5\npgmajfault 1\n", "20000");
  n.file("cgroup/a/io.stat", "8:0 rbytes=10 wbytes=20 rios=1 wios=2\n");
  auto s = readCgroup(n.sources().cgroup_mount, "a", Clock::now(), /*with_io=*/true);
  ASSERT_TRUE(s) << s.error().message();
  EXPECT_EQ(s->working_set, 7000u);
  EXPECT_EQ(s->memory_current, 10000u);
  EXPECT_EQ(s->memory_max, 20000u);
  EXPECT_EQ(s->anon, 6000u);
  EXPECT_EQ(s->pgfault, 5u);
  EXPECT_EQ(s->cpu_usage_usec, 2000000u);
  EXPECT_EQ(s->cpu_user_usec, 1000000u);
  EXPECT_EQ(s->io.wbytes, 20u);
  EXPECT_EQ(s->pids_current, 3u);

  n.group("b", 1, 100, "inactive_file 500\n");
  auto b = readCgroup(n.sources().cgroup_mount, "b", Clock::now());
  ASSERT_TRUE(b);
  EXPECT_EQ(b->working_set, 0u);

  auto gone = readCgroup(n.sources().cgroup_mount, "nope", Clock::now());
  ASSERT_FALSE(gone);
  EXPECT_NE(gone.error().message().find("nope"), std::string::npos) << gone.error().message();
}

TEST(StatsCgroup, NodeMemoryFromMeminfoAndTheRootGroup) {
  FakeNode n;
  auto s = readNode(n.sources().cgroup_mount, n.sources().proc, Clock::now());
  ASSERT_TRUE(s) << s.error().message();
  EXPECT_EQ(s->memory_total, 8000000ull * 1024);
  EXPECT_EQ(s->memory_usage, 6000000ull * 1024);
  // inactive_file from the root group's memory.stat (1024000000), not meminfo.
  EXPECT_EQ(s->working_set, 6000000ull * 1024 - 1024000000u);
  EXPECT_EQ(s->available, 8000000ull * 1024 - s->working_set);
  EXPECT_EQ(s->cpu_usage_ns, 5000000ull * 1000);
  EXPECT_EQ(s->pid_max, 4194304u);
}

TEST(StatsCpuSampler, NanoCoresFromTwoSamplesOverAtLeastTheWindow) {
  CpuSampler sampler(1s, 5min);
  auto t0 = Clock::from_time_t(1700000000);
  EXPECT_EQ(sampler.observe("g", 0, t0), std::nullopt);  // one sample: no rate
  // 1 s of CPU in 2 s: half a core.
  EXPECT_EQ(sampler.observe("g", 1000000000, t0 + 2s), 500000000u);
  // 100 ms later: too close to the newest kept sample; the rate is taken
  // from the older one (t0) instead of over 100 ms.
  EXPECT_EQ(sampler.observe("g", 1100000000, t0 + 2100ms), 1100000000ull * 1000 / 2100);
  // A counter that went back is a new group: no rate, starts over.
  EXPECT_EQ(sampler.observe("g", 10, t0 + 4s), std::nullopt);
  EXPECT_EQ(sampler.observe("g", 2000000010, t0 + 6s), 1000000000u);
  sampler.prune(t0 + 6s + 5min + 1s);
  EXPECT_EQ(sampler.size(), 0u);
}

TEST(StatsDiskUsage, CountsBlocksOnceStaysOffSymlinksAndIsBounded) {
  kernelet::testing::TempDir d;
  std::filesystem::create_directories(d.path() + "/t/sub");
  std::string big(1 << 20, 'x');
  d.write("t/sub/big", big);
  d.write("outside", big + big);
  std::filesystem::create_hard_link(d.path() + "/t/sub/big", d.path() + "/t/link");
  std::filesystem::create_symlink(d.path() + "/outside", d.path() + "/t/sym");
  std::filesystem::create_directory_symlink(d.path(), d.path() + "/t/loop");
  auto u = measureDiskUsage(d.path() + "/t");
  ASSERT_TRUE(u) << u.error().message();
  // t, sub, big (its second name not again), the two symlinks themselves.
  EXPECT_EQ(u->inodes, 5u);
  EXPECT_GE(u->bytes, 1u << 20);
  EXPECT_LT(u->bytes, (2u << 20));  // neither the hard link twice nor `outside`
  EXPECT_FALSE(u->truncated);

  auto small = measureDiskUsage(d.path() + "/t", 2);
  ASSERT_TRUE(small);
  EXPECT_TRUE(small->truncated);
  EXPECT_EQ(small->inodes, 2u);

  auto missing = measureDiskUsage(d.path() + "/none");
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message().find("/none"), std::string::npos);
}

TEST(StatsDiskUsage, TheCacheMeasuresOnItsOwnThreadAndForgetsGoneTargets) {
  kernelet::testing::TempDir d;
  std::filesystem::create_directories(d.path() + "/a");
  d.write("a/f", std::string(100000, 'x'));
  std::vector<std::string> targets{d.path() + "/a", d.path() + "/missing"};
  std::mutex mu;
  FsUsageCache cache(
      [&] {
        std::lock_guard lock(mu);
        return targets;
      },
      1h);
  EXPECT_EQ(cache.get(d.path() + "/a"), std::nullopt);
  cache.start();
  ASSERT_TRUE(cache.refreshAndWait(10s));
  auto a = cache.get(d.path() + "/a");
  ASSERT_TRUE(a);
  EXPECT_GE(a->bytes, 100000u);
  EXPECT_FALSE(cache.get(d.path() + "/missing"));

  d.write("a/g", std::string(300000, 'y'));
  ASSERT_TRUE(cache.refreshAndWait(10s));
  EXPECT_GE(cache.get(d.path() + "/a")->bytes, 400000u);
  {
    std::lock_guard lock(mu);
    targets.clear();
  }
  ASSERT_TRUE(cache.refreshAndWait(10s));
  EXPECT_FALSE(cache.get(d.path() + "/a"));
}

// A node with one pod: two running containers (one without a group yet), one
// terminated, an emptyDir; and a pod without a cgroup.
struct SummaryFixture {
  FakeNode n;
  NodeSnapshot snap;
  std::string pod_cgroup = "kubepods/burstable/poduid-1";

  SummaryFixture() {
    n.group("kubepods", 0, 0, "");
    n.group(pod_cgroup, 3000000, 50000000, "anon 20000000\ninactive_file 10000000\n", "100000000");
    n.group(pod_cgroup + "/c1", 2000000, 30000000, "anon 15000000\ninactive_file 4000000\n");
    n.file("cgroup/" + pod_cgroup + "/c1/cgroup.procs", "4242\n");
    n.file("proc/4242/net/dev", FakeNode::netDev(5000, 1, 6000, 2));
    PodSnapshot p = test::pod("uid-1", "web", pod_cgroup);
    p.status.container_statuses.push_back(test::running("app", "c1"));
    p.status.container_statuses.push_back(test::running("nogroup", "c9"));
    auto done = test::running("done", "c2");
    done.state.kind = ContainerState::Kind::kTerminated;
    p.status.container_statuses.push_back(done);
    snap.pods["uid-1"] = std::make_shared<PodSnapshot>(p);
    snap.pods["uid-2"] = std::make_shared<PodSnapshot>(test::pod("uid-2", "pending", ""));
    n.file("root/containers/c1/upper/etc/written", std::string(50000, 'w'));
    n.file("logs/default_web_uid-1/app/0.log", std::string(20000, 'l'));
    n.file("root/pods/uid-1/volumes/kubernetes.io~empty-dir/cache/data", std::string(70000, 'd'));
  }
};

rapidjson::Document parse(const std::string& json) {
  rapidjson::Document d;
  d.Parse(json.c_str());
  EXPECT_FALSE(d.HasParseError()) << json;
  return d;
}

TEST(StatsSummary, JsonHasTheV1alpha1FieldsAndValues) {
  SummaryFixture f;
  CpuSampler sampler;
  auto src = f.n.sources();
  src.pods_cgroup = "kubepods";
  f.n.group("kubepods", 7000000, 1, "");
  f.n.group("system.slice/kernelet.service", 1, 3000, "inactive_file 2000\n");
  f.n.file("proc/self/cgroup", "0::/system.slice/kernelet.service\n");
  FsUsageCache disk(
      [&] {
        auto t = podDiskTargets(src, *f.snap.pods.at("uid-1"));
        return t;
      },
      1h);
  disk.start();
  ASSERT_TRUE(disk.refreshAndWait(10s));
  auto t0 = Clock::from_time_t(1800000000);
  Summary first = buildSummary(src, f.snap, sampler, &disk, t0);
  // A second read 2 s later after the container used 1 more CPU second.
  f.n.group(f.pod_cgroup + "/c1", 3000000, 30000000, "anon 15000000\ninactive_file 4000000\n");
  auto doc = parse(summaryJson(buildSummary(src, f.snap, sampler, &disk, t0 + 2s)));
  ASSERT_TRUE(first.pods.at(0).containers.at(0).cpu);
  EXPECT_FALSE(first.pods[0].containers[0].cpu->usage_nano_cores);  // one sample only

  const auto& node = doc["node"];
  EXPECT_STREQ(node["nodeName"].GetString(), "node-a");
  EXPECT_STREQ(node["startTime"].GetString(), "2023-11-14T22:13:20Z");
  EXPECT_EQ(node["cpu"]["usageCoreNanoSeconds"].GetUint64(), 5000000000u);
  EXPECT_EQ(node["memory"]["workingSetBytes"].GetUint64(), 6000000ull * 1024 - 1024000000u);
  EXPECT_EQ(node["rlimit"]["maxpid"].GetInt64(), 4194304);
  EXPECT_STREQ(node["network"]["name"].GetString(), "eth0");  // inline InterfaceStats
  EXPECT_EQ(node["network"]["rxBytes"].GetUint64(), 111u);
  EXPECT_EQ(node["network"]["interfaces"].Size(), 1u);  // lo left out
  EXPECT_TRUE(node["fs"]["capacityBytes"].IsUint64());
  EXPECT_TRUE(node["runtime"]["imageFs"]["availableBytes"].IsUint64());
  ASSERT_EQ(node["systemContainers"].Size(), 2u);
  EXPECT_STREQ(node["systemContainers"][0]["name"].GetString(), "pods");
  EXPECT_EQ(node["systemContainers"][0]["cpu"]["usageCoreNanoSeconds"].GetUint64(), 7000000000u);
  EXPECT_STREQ(node["systemContainers"][1]["name"].GetString(), "kubelet");
  EXPECT_EQ(node["systemContainers"][1]["memory"]["workingSetBytes"].GetUint64(), 1000u);

  ASSERT_EQ(doc["pods"].Size(), 1u);  // the pod without a cgroup is not there
  const auto& pod = doc["pods"][0];
  EXPECT_STREQ(pod["podRef"]["name"].GetString(), "web");
  EXPECT_STREQ(pod["podRef"]["namespace"].GetString(), "default");
  EXPECT_STREQ(pod["podRef"]["uid"].GetString(), "uid-1");
  EXPECT_STREQ(pod["startTime"].GetString(), "2026-11-30T09:59:30Z");
  EXPECT_EQ(pod["memory"]["workingSetBytes"].GetUint64(), 40000000u);
  EXPECT_EQ(pod["memory"]["availableBytes"].GetUint64(), 60000000u);  // limit - working set
  EXPECT_EQ(pod["memory"]["rssBytes"].GetUint64(), 20000000u);
  EXPECT_EQ(pod["cpu"]["usageCoreNanoSeconds"].GetUint64(), 3000000000u);
  EXPECT_EQ(pod["network"]["rxBytes"].GetUint64(), 5000u);
  EXPECT_EQ(pod["network"]["txErrors"].GetUint64(), 2u);
  EXPECT_EQ(pod["process_stats"]["process_count"].GetUint64(), 3u);

  // Only the running container whose group exists.
  ASSERT_EQ(pod["containers"].Size(), 1u);
  const auto& c = pod["containers"][0];
  EXPECT_STREQ(c["name"].GetString(), "app");
  EXPECT_STREQ(c["startTime"].GetString(), "2026-11-30T10:00:00Z");
  EXPECT_EQ(c["memory"]["workingSetBytes"].GetUint64(), 26000000u);
  EXPECT_FALSE(c["memory"].HasMember("availableBytes"));  // no limit: omitted
  EXPECT_EQ(c["cpu"]["usageCoreNanoSeconds"].GetUint64(), 3000000000u);
  EXPECT_EQ(c["cpu"]["usageNanoCores"].GetUint64(), 500000000u);  // 1 s over 2 s
  EXPECT_GE(c["rootfs"]["usedBytes"].GetUint64(), 50000u);
  EXPECT_GE(c["logs"]["usedBytes"].GetUint64(), 20000u);
  EXPECT_TRUE(c["logs"]["capacityBytes"].IsUint64());

  ASSERT_EQ(pod["volume"].Size(), 1u);
  EXPECT_STREQ(pod["volume"][0]["name"].GetString(), "cache");
  uint64_t vol = pod["volume"][0]["usedBytes"].GetUint64();
  EXPECT_GE(vol, 70000u);
  EXPECT_EQ(pod["ephemeral-storage"]["usedBytes"].GetUint64(),
            c["rootfs"]["usedBytes"].GetUint64() + c["logs"]["usedBytes"].GetUint64() + vol);
}

// The raw JSON text of `key`'s value inside `json` (first match), to check
// how a number is written, not only what it reads as.
std::string rawAfter(const std::string& json, const std::string& key) {
  size_t at = json.find("\"" + key + "\":");
  if (at == std::string::npos) {
    return {};
  }
  at += key.size() + 3;
  return json.substr(at, json.find_first_of(",}", at) - at);
}

TEST(StatsSummary, PsiAndSwapInGoShapeWhereTheKernelHasThemOmittedWhereNot) {
  SummaryFixture f;
  CpuSampler sampler;
  auto src = f.n.sources();
  std::string c1 = "cgroup/" + f.pod_cgroup + "/c1";
  f.n.file(c1 + "/cpu.pressure",
           "some avg10=0.12 avg60=3.50 avg300=0.00 total=1234\n"
           "full avg10=0.00 avg60=0.00 avg300=0.00 total=56\n");
  f.n.file(c1 + "/memory.pressure",
           "some avg10=0.00 avg60=0.00 avg300=0.00 total=7\n"
           "full avg10=0.00 avg60=0.00 avg300=0.00 total=6\n");
  f.n.file(c1 + "/io.pressure",
           "some avg10=0.00 avg60=0.00 avg300=0.00 total=9\n"
           "full avg10=0.00 avg60=0.00 avg300=0.00 total=8\n");
  f.n.file(c1 + "/memory.swap.current", "1000\n");
  f.n.file(c1 + "/memory.swap.max", "5000\n");
  std::string pod = "cgroup/" + f.pod_cgroup;
  f.n.file(pod + "/memory.swap.current", "3000\n");
  f.n.file(pod + "/memory.swap.max", "max\n");
  f.n.file("proc/pressure/cpu", "some avg10=12.00 avg60=0.00 avg300=0.00 total=111\n");
  f.n.file("proc/pressure/io",
           "some avg10=0.00 avg60=0.00 avg300=0.00 total=222\n"
           "full avg10=0.00 avg60=0.00 avg300=0.00 total=200\n");
  f.n.file("proc/meminfo",
           "MemTotal:        8000000 kB\nMemFree:         2000000 kB\n"
           "SwapTotal:       1000 kB\nSwapFree:        600 kB\n");
  std::string json = summaryJson(buildSummary(src, f.snap, sampler, nullptr, Clock::now()));
  auto doc = parse(json);

  const auto& c = doc["pods"][0]["containers"][0];
  ASSERT_TRUE(c["cpu"].HasMember("psi")) << json;
  EXPECT_EQ(c["cpu"]["psi"]["some"]["total"].GetUint64(), 1234u);
  EXPECT_DOUBLE_EQ(c["cpu"]["psi"]["some"]["avg10"].GetDouble(), 0.12);
  EXPECT_DOUBLE_EQ(c["cpu"]["psi"]["some"]["avg60"].GetDouble(), 3.5);
  EXPECT_EQ(c["cpu"]["psi"]["full"]["total"].GetUint64(), 56u);
  EXPECT_EQ(c["memory"]["psi"]["full"]["total"].GetUint64(), 6u);
  EXPECT_TRUE(c["io"]["time"].IsString());
  EXPECT_EQ(c["io"]["psi"]["some"]["total"].GetUint64(), 9u);
  EXPECT_EQ(c["swap"]["swapUsageBytes"].GetUint64(), 1000u);
  EXPECT_EQ(c["swap"]["swapAvailableBytes"].GetUint64(), 4000u);  // limit - usage
  EXPECT_TRUE(c["swap"]["time"].IsString());
  // Go's order (Full, then Some; total before the averages) and its floats:
  // 0 is "0", not "0.0".
  std::string cpu_json = json.substr(json.find("\"psi\":{\"full\":{\"total\":56,"));
  EXPECT_EQ(cpu_json.rfind("\"psi\":{\"full\":{\"total\":56,\"avg10\":0,\"avg60\":0,"
                           "\"avg300\":0},\"some\":{\"total\":1234,\"avg10\":0.12,"
                           "\"avg60\":3.5,\"avg300\":0}}",
                           0),
            0u)
      << json;

  // The pod: swap without a limit has no available bytes; no pressure files.
  const auto& p = doc["pods"][0];
  EXPECT_EQ(p["swap"]["swapUsageBytes"].GetUint64(), 3000u);
  EXPECT_FALSE(p["swap"].HasMember("swapAvailableBytes"));
  EXPECT_FALSE(p["cpu"].HasMember("psi"));
  EXPECT_FALSE(p["memory"].HasMember("psi"));
  EXPECT_FALSE(p.HasMember("io"));

  // The node: /proc/pressure (no memory file here) and meminfo's swap.
  const auto& node = doc["node"];
  EXPECT_EQ(node["cpu"]["psi"]["some"]["total"].GetUint64(), 111u);
  EXPECT_EQ(rawAfter(json.substr(json.find("\"total\":111")), "avg10"), "12");
  EXPECT_EQ(node["cpu"]["psi"]["full"]["total"].GetUint64(), 0u);  // no full line
  EXPECT_FALSE(node["memory"].HasMember("psi"));
  EXPECT_EQ(node["io"]["psi"]["full"]["total"].GetUint64(), 200u);
  EXPECT_EQ(node["swap"]["swapUsageBytes"].GetUint64(), 400u * 1024);
  EXPECT_EQ(node["swap"]["swapAvailableBytes"].GetUint64(), 600u * 1024);

  // A kernel without PSI or swap accounting: none of it, not zeros.
  SummaryFixture bare;
  auto none =
      parse(summaryJson(buildSummary(bare.n.sources(), bare.snap, sampler, nullptr, Clock::now())));
  const auto& bc = none["pods"][0]["containers"][0];
  EXPECT_FALSE(bc["cpu"].HasMember("psi"));
  EXPECT_FALSE(bc["memory"].HasMember("psi"));
  EXPECT_FALSE(bc.HasMember("io"));
  EXPECT_FALSE(bc.HasMember("swap"));
  EXPECT_FALSE(none["pods"][0].HasMember("swap"));
  EXPECT_FALSE(none["node"].HasMember("io"));
  EXPECT_FALSE(none["node"].HasMember("swap"));
  EXPECT_FALSE(none["node"]["cpu"].HasMember("psi"));
}

// A running sidecar (an init container with restartPolicy Always), an init
// container still at work and a `kubectl debug` ephemeral container are the
// pod's containers in the stats as much as a regular one: each is read from
// its own group, and is in /metrics/resource and /metrics/cadvisor too. A
// terminated init container is not.
TEST(StatsSummary, RunningInitSidecarAndEphemeralContainersAreThePodsToo) {
  SummaryFixture f;
  f.n.group(f.pod_cgroup + "/c5", 1000000, 5000000, "anon 1000000\n");
  f.n.group(f.pod_cgroup + "/c6", 1000000, 6000000, "anon 1000000\n");
  f.n.group(f.pod_cgroup + "/c8", 1000000, 8000000, "anon 1000000\n");
  PodSnapshot p = *f.snap.pods.at("uid-1");
  auto done = test::running("setup", "c8");
  done.state.kind = ContainerState::Kind::kTerminated;
  p.status.init_container_statuses = {done, test::running("proxy", "c5")};
  p.status.ephemeral_container_statuses = {test::running("debugger", "c6")};
  f.snap.pods["uid-1"] = std::make_shared<PodSnapshot>(p);
  PodSnapshot q = test::pod("uid-3", "initing", "kubepods/besteffort/poduid-3");
  f.n.group(q.cgroup_path, 1, 1, "");
  f.n.group(q.cgroup_path + "/c7", 1000000, 7000000, "");
  q.status.init_container_statuses = {test::running("migrate", "c7")};
  f.snap.pods["uid-3"] = std::make_shared<PodSnapshot>(q);

  CpuSampler sampler;
  auto src = f.n.sources();
  Summary s = buildSummary(src, f.snap, sampler, nullptr, Clock::now());
  auto doc = parse(summaryJson(s));
  std::map<std::string, uint64_t> working_set;  // pod/container -> bytes
  for (const auto& pod : doc["pods"].GetArray()) {
    for (const auto& c : pod["containers"].GetArray()) {
      working_set[std::string(pod["podRef"]["name"].GetString()) + "/" + c["name"].GetString()] =
          c["memory"]["workingSetBytes"].GetUint64();
    }
  }
  EXPECT_EQ(working_set, (std::map<std::string, uint64_t>{{"initing/migrate", 7000000},
                                                          {"web/app", 30000000 - 4000000},
                                                          {"web/debugger", 6000000},
                                                          {"web/proxy", 5000000}}));
  // Their upper and log dirs are measured as a regular container's.
  auto targets = podDiskTargets(src, p);
  for (const char* id : {"c5", "c6"}) {
    std::string upper = src.root_dir + "/containers/" + id + "/upper";
    EXPECT_NE(std::find(targets.begin(), targets.end(), upper), targets.end()) << upper;
  }
  EXPECT_NE(
      std::find(targets.begin(), targets.end(), src.pod_log_dir + "/default_web_uid-1/debugger"),
      targets.end());
  EXPECT_EQ(std::find(targets.begin(), targets.end(), src.root_dir + "/containers/c8/upper"),
            targets.end());

  std::string resource = resourceMetricsText(s, false);
  EXPECT_NE(resource.find("container_memory_working_set_bytes{container=\"debugger\","
                          "namespace=\"default\",pod=\"web\"} 6e+06 "),
            std::string::npos)
      << resource;
  EXPECT_NE(resource.find("container_memory_working_set_bytes{container=\"proxy\","
                          "namespace=\"default\",pod=\"web\"} 5e+06 "),
            std::string::npos)
      << resource;
  std::string cadvisor = cadvisorMetricsText(s, f.snap);
  EXPECT_NE(cadvisor.find("container_memory_working_set_bytes{container=\"debugger\",id=\"/" +
                          f.pod_cgroup + "/c6\""),
            std::string::npos)
      << cadvisor;
}

TEST(StatsSummary, Rfc3339BothWays) {
  EXPECT_EQ(rfc3339(Clock::from_time_t(0)), "1970-01-01T00:00:00Z");
  EXPECT_EQ(parseRfc3339("2026-11-30T10:00:00Z"), parseRfc3339("2026-11-30T12:00:00.123+02:00"));
  EXPECT_EQ(rfc3339(*parseRfc3339("2026-11-30T10:00:00.999999Z")), "2026-11-30T10:00:00Z");
  EXPECT_FALSE(parseRfc3339("2026-11-30"));
  EXPECT_FALSE(parseRfc3339("2026-11-30T10:00:00Zjunk"));
}

// The handlers answer from the stats thread through the Responder.
server::Response call(const server::Handler& h, const std::string& method, const std::string& q) {
  std::promise<server::Response> p;
  auto fut = p.get_future();
  server::Request req;
  req.method = method;
  auto query = server::Query::parse(q);
  EXPECT_TRUE(query);
  req.query = *query;
  h(std::move(req), [&p](server::Response r) { p.set_value(std::move(r)); });
  EXPECT_EQ(fut.wait_for(10s), std::future_status::ready);
  return fut.get();
}

TEST(StatsEndpoints, SummaryAndMetricsAnswerFromTheStatsThread) {
  SummaryFixture f;
  for (const char* file : {"cpu.pressure", "io.pressure"}) {
    f.n.file("cgroup/" + f.pod_cgroup + "/c1/" + file,
             "some avg10=0.00 avg60=0.00 avg300=0.00 total=1\n");
  }
  f.n.file("cgroup/" + f.pod_cgroup + "/c1/memory.swap.current", "0\n");
  SnapshotPublisher pub;
  for (const auto& [uid, p] : f.snap.pods) {
    pub.update(*p);
  }
  pub.publish();
  StatsContext ctx;
  ctx.snapshots = &pub;
  ctx.sources = f.n.sources();
  ctx.max_age = 0ms;  // every request reads anew: the disk cache is filled below
  server::Endpoints e;
  auto svc = addStatsEndpoints(e, ctx);
  ASSERT_TRUE(svc->disk().refreshAndWait(10s));

  auto summary = call(e.stats_summary, "GET", "");
  EXPECT_EQ(summary.status, 200);
  EXPECT_EQ(summary.content_type.rfind("application/json", 0), 0u) << summary.content_type;
  auto doc = parse(summary.body);
  EXPECT_TRUE(doc["pods"][0]["containers"][0].HasMember("rootfs"));
  EXPECT_FALSE(doc["node"].HasMember("systemContainers"));  // none known: omitempty

  auto only = parse(call(e.stats_summary, "GET", "only_cpu_and_memory=true").body);
  EXPECT_FALSE(only["pods"][0]["containers"][0].HasMember("rootfs"));
  EXPECT_FALSE(only["node"].HasMember("fs"));
  EXPECT_TRUE(only["pods"][0]["memory"].HasMember("workingSetBytes"));
  // As the kubelet's cpu-and-memory stats: the pressure inside cpu and
  // memory and the swap stay, io goes.
  EXPECT_TRUE(doc["pods"][0]["containers"][0].HasMember("io"));
  EXPECT_FALSE(only["pods"][0]["containers"][0].HasMember("io"));
  EXPECT_TRUE(only["pods"][0]["containers"][0]["cpu"].HasMember("psi"));
  EXPECT_TRUE(only["pods"][0]["containers"][0].HasMember("swap"));

  auto bad = call(e.stats_summary, "GET", "only_cpu_and_memory=maybe");
  EXPECT_EQ(bad.status, 400);
  EXPECT_NE(bad.body.find("only_cpu_and_memory"), std::string::npos) << bad.body;
  EXPECT_EQ(call(e.metrics_resource, "POST", "").status, 405);

  for (const auto* h : {&e.metrics, &e.metrics_resource, &e.metrics_cadvisor, &e.metrics_probes}) {
    auto r = call(*h, "GET", "");
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.content_type, "text/plain; version=0.0.4; charset=utf-8");
  }
  EXPECT_NE(
      call(e.metrics_resource, "GET", "")
          .body.find("container_memory_working_set_bytes{container=\"app\",namespace=\"default\","
                     "pod=\"web\"} 2.6e+07 "),
      std::string::npos);
}

TEST(StatsEndpoints, PagesComeFromTheLastHousekeepingUntilThePodsChange) {
  SummaryFixture f;
  SnapshotPublisher pub;
  pub.update(*f.snap.pods.at("uid-1"));
  pub.publish();
  StatsContext ctx;
  ctx.snapshots = &pub;
  ctx.sources = f.n.sources();
  ctx.min_age = 0ms;
  server::Endpoints e;
  auto svc = addStatsEndpoints(e, ctx);
  auto first = parse(call(e.stats_summary, "GET", "").body);
  // The group's figures change; within max_age the same Summary answers.
  f.n.group(f.pod_cgroup, 9000000, 50000000, "inactive_file 0\n");
  auto again = parse(call(e.stats_summary, "GET", "").body);
  EXPECT_EQ(again["pods"][0]["cpu"]["usageCoreNanoSeconds"].GetUint64(), 3000000000u);
  EXPECT_EQ(again["pods"].Size(), first["pods"].Size());
  // A new pod (a new snapshot) makes the next request read anew.
  pub.update(test::pod("uid-3", "other", f.pod_cgroup + "/c1"));
  pub.publish();
  auto changed = parse(call(e.stats_summary, "GET", "").body);
  EXPECT_EQ(changed["pods"].Size(), 2u);
  EXPECT_EQ(changed["pods"][0]["cpu"]["usageCoreNanoSeconds"].GetUint64(), 9000000000u);
}

}  // namespace
}  // namespace kernelet::agent::stats
