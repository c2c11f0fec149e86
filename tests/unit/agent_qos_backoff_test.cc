#include <gtest/gtest.h>

#include "agent/lifecycle/backoff.h"
#include "agent/model/qos.h"

namespace kernelet::agent {
namespace {

apiclient::Quantity q(const char* s) { return *apiclient::Quantity::parse(s); }

TEST(Qos, ClassesAsTheKubeletComputesThem) {
  EXPECT_EQ(podQos({{}, {}}), QosClass::kBestEffort);
  // Limits only: requests default to them.
  EXPECT_EQ(podQos({{{}, {{"cpu", q("500m")}, {"memory", q("64Mi")}}}}), QosClass::kGuaranteed);
  EXPECT_EQ(podQos({{{{"cpu", q("0.5")}, {"memory", q("64Mi")}},
                     {{"cpu", q("500m")}, {"memory", q("67108864")}}}}),
            QosClass::kGuaranteed);  // equal values written differently
  EXPECT_EQ(podQos({{{{"cpu", q("250m")}}, {{"cpu", q("500m")}, {"memory", q("64Mi")}}}}),
            QosClass::kBurstable);  // request below the limit
  EXPECT_EQ(podQos({{{{"memory", q("64Mi")}}, {}}}), QosClass::kBurstable);
  // One best-effort container next to a guaranteed one makes the pod burstable.
  EXPECT_EQ(podQos({{{}, {{"cpu", q("1")}, {"memory", q("1Gi")}}}, {}}), QosClass::kBurstable);
  EXPECT_STREQ(qosName(QosClass::kBurstable), "Burstable");
}

TEST(Qos, OomScoreAdjPerClass) {
  const int64_t node = 16LL << 30;
  EXPECT_EQ(oomScoreAdj(QosClass::kGuaranteed, {}, node), -997);
  EXPECT_EQ(oomScoreAdj(QosClass::kBestEffort, {}, node), 1000);
  EXPECT_EQ(oomScoreAdj(QosClass::kBurstable, {{{"memory", q("4Gi")}}, {}}, node), 750);
  EXPECT_EQ(oomScoreAdj(QosClass::kBurstable, {{{"memory", q("16Gi")}}, {}}, node), 3);
  EXPECT_EQ(oomScoreAdj(QosClass::kBurstable, {{{"cpu", q("1")}}, {}}, node), 999);
}

TEST(Backoff, FirstRestartAtOnceThenTenSecondsDoublingToFiveMinutesResetAfterTenMinutes) {
  using namespace std::chrono;
  Backoff b;
  auto t = Backoff::Clock::now();
  std::vector<int> delays;
  for (int i = 0; i < 8; i++) {
    delays.push_back(static_cast<int>(b.next("pod/app", t, t + seconds(1)).count()));
  }
  EXPECT_EQ(delays, (std::vector<int>{0, 10, 20, 40, 80, 160, 300, 300}));
  // After ten minutes of running: at once again, then 10 s.
  EXPECT_EQ(b.next("pod/app", t, t + minutes(10)).count(), 0);
  EXPECT_EQ(b.next("pod/app", t, t + seconds(1)).count(), 10);
  EXPECT_EQ(b.next("pod/other", t, t + seconds(1)).count(), 0);  // per container
}

}  // namespace
}  // namespace kernelet::agent
