#include <gtest/gtest.h>

#include "cgroups/cgroups.h"

namespace kernelet::cgroups {
namespace {

TEST(Shares, FromMilliCpuAsTheKubeletComputesThem) {
  EXPECT_EQ(milliCpuToShares(0), 2u);  // no request: the minimum
  EXPECT_EQ(milliCpuToShares(1), 2u);
  EXPECT_EQ(milliCpuToShares(100), 102u);
  EXPECT_EQ(milliCpuToShares(250), 256u);
  EXPECT_EQ(milliCpuToShares(1000), 1024u);
  EXPECT_EQ(milliCpuToShares(1000000), 262144u);  // capped
}

TEST(Weight, DefaultsMapToDefaultsAndTheRangeIsKept) {
  EXPECT_EQ(sharesToWeight(2), 1u);
  EXPECT_EQ(sharesToWeight(1024), 100u);
  EXPECT_EQ(sharesToWeight(262144), 10000u);
  EXPECT_EQ(sharesToWeight(0), 1u);  // below range clamps
  EXPECT_EQ(sharesToWeight(1u << 30), 10000u);
  // Values the runtimes print for common requests (runc >= 1.3.2, crun >= 1.23).
  EXPECT_EQ(sharesToWeight(102), 17u);
  EXPECT_EQ(sharesToWeight(512), 59u);
  EXPECT_EQ(sharesToWeight(2048), 174u);
  // Monotonic over the whole range.
  uint64_t prev = 0;
  for (uint64_t s = 2; s <= 262144; s += 97) {
    uint64_t w = sharesToWeight(s);
    EXPECT_GE(w, prev) << s;
    prev = w;
  }
}

TEST(Quota, FromMilliCpuWithTheKubeletsFloor) {
  EXPECT_EQ(milliCpuToQuota(500), 50000);
  EXPECT_EQ(milliCpuToQuota(1500), 150000);
  EXPECT_EQ(milliCpuToQuota(1), 1000);  // at least 1 ms per period
  EXPECT_EQ(milliCpuToQuota(0), -1);    // no limit
  EXPECT_EQ(milliCpuToQuota(250, 50000), 12500);
  // milli_cpu * period past int64: no quota ("max"), not a wrapped one.
  EXPECT_EQ(milliCpuToQuota(INT64_MAX), -1);
  EXPECT_EQ(milliCpuToQuota(INT64_MAX / 100000 + 1), -1);
  EXPECT_EQ(milliCpuToQuota(INT64_MAX / 100000), INT64_MAX / 100000 * 100000 / 1000);
}

TEST(PodCgroup, LaidOutAsTheCgroupfsDriverDoes) {
  EXPECT_EQ(podCgroupPath("", QosClass::kGuaranteed, "u1"), "kubepods/podu1");
  EXPECT_EQ(podCgroupPath("/", QosClass::kBurstable, "u1"), "kubepods/burstable/podu1");
  EXPECT_EQ(podCgroupPath("/kernelet", QosClass::kBestEffort, "u1"),
            "kernelet/kubepods/besteffort/podu1");
}

TEST(Controllers, MissingOnesAreNamedWithTheFix) {
  Hierarchy h{.mount = "/sys/fs/cgroup/unified", .controllers = {"hugetlb"}};
  auto r = requireControllers(h);
  ASSERT_FALSE(r);
  std::string msg = r.error().message();
  EXPECT_NE(msg.find("missing cpu, memory, pids"), std::string::npos) << msg;
  EXPECT_NE(msg.find("offered: hugetlb"), std::string::npos) << msg;
  EXPECT_NE(msg.find("/sys/fs/cgroup/unified"), std::string::npos) << msg;
  EXPECT_NE(msg.find("cgroup v2 only"), std::string::npos) << msg;

  h.controllers = {"cpu", "memory", "pids", "io"};
  EXPECT_TRUE(requireControllers(h));
}

}  // namespace
}  // namespace kernelet::cgroups
