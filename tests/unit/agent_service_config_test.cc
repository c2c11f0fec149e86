// The settings of the agent under a service manager: oomScoreAdj and graceful
// node shutdown, from a KubeletConfiguration file and from the flags.
#include <gtest/gtest.h>

#include <string>

#include "agent/app/cli.h"
#include "agent/config/config.h"
#include "support/temp_dir.h"

namespace kernelet::agent {
namespace {

using testing::TempDir;

TEST(ServiceConfig, DefaultsAreTheKubelets) {
  AgentConfig c;
  EXPECT_EQ(c.oom_score_adj, -999);
  EXPECT_EQ(c.shutdown_grace_seconds, 0) << "graceful node shutdown is off by default";
  EXPECT_EQ(c.shutdown_grace_critical_seconds, 0);
}

TEST(ServiceConfig, GoDurations) {
  EXPECT_EQ(parseDurationSeconds("30s", "f"), 30);
  EXPECT_EQ(parseDurationSeconds("1m30s", "f"), 90);
  EXPECT_EQ(parseDurationSeconds("2h", "f"), 7200);
  EXPECT_EQ(parseDurationSeconds("1.5m", "f"), 90);
  EXPECT_EQ(parseDurationSeconds("1500ms", "f"), 1) << "whole seconds, truncated";
  EXPECT_EQ(parseDurationSeconds("0", "f"), 0);
  for (const char* bad : {"", "30", "-5s", "5x", "s", "1m30", "1e400h"}) {
    auto r = parseDurationSeconds(bad, "--shutdown-grace-period");
    EXPECT_FALSE(r) << bad;
    if (!r) {
      EXPECT_NE(r.error().message().find("--shutdown-grace-period"), std::string::npos);
    }
  }
}

TEST(ServiceConfig, TheFileSetsThem) {
  TempDir d;
  std::string f = d.write("config.yaml", R"(apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
oomScoreAdj: -900
shutdownGracePeriod: 1m
shutdownGracePeriodCriticalPods: 20s
)");
  AgentConfig c;
  ASSERT_TRUE(loadKubeletConfiguration(f, c));
  EXPECT_EQ(c.oom_score_adj, -900);
  EXPECT_EQ(c.shutdown_grace_seconds, 60);
  EXPECT_EQ(c.shutdown_grace_critical_seconds, 20);
}

TEST(ServiceConfig, TheFileIsCheckedAsTheKubeletChecksIt) {
  TempDir d;
  auto load = [&](const std::string& body) {
    AgentConfig c;
    return loadKubeletConfiguration(
        d.write("c.yaml",
                "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n" + body),
        c);
  };
  auto critical = load("shutdownGracePeriod: 10s\nshutdownGracePeriodCriticalPods: 20s\n");
  ASSERT_FALSE(critical);
  EXPECT_NE(critical.error().message().find("shutdownGracePeriodCriticalPods"), std::string::npos)
      << critical.error().message();
  auto oom = load("oomScoreAdj: -1001\n");
  ASSERT_FALSE(oom);
  EXPECT_NE(oom.error().message().find("oomScoreAdj"), std::string::npos);
  auto duration = load("shutdownGracePeriod: soon\n");
  ASSERT_FALSE(duration);
  EXPECT_NE(duration.error().message().find("line 3"), std::string::npos)
      << duration.error().message();
}

TEST(ServiceConfig, FlagsWinOverTheFile) {
  TempDir d;
  std::string f = d.write("config.yaml", R"(apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
shutdownGracePeriod: 1m
shutdownGracePeriodCriticalPods: 20s
)");
  auto c = runConfig({"--config", f, "--pod-manifest-path", d.path(), "--shutdown-grace-period",
                      "2m", "--oom-score-adj", "-500"});
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(c->shutdown_grace_seconds, 120);
  EXPECT_EQ(c->shutdown_grace_critical_seconds, 20);
  EXPECT_EQ(c->oom_score_adj, -500);
  auto bad = runConfig({"--pod-manifest-path", d.path(), "--shutdown-grace-period", "30s",
                        "--shutdown-grace-period-critical-pods", "40s"});
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message().find("--shutdown-grace-period-critical-pods"), std::string::npos)
      << bad.error().message();
  EXPECT_FALSE(runConfig({"--pod-manifest-path", d.path(), "--oom-score-adj", "2000"}));
}

}  // namespace
}  // namespace kernelet::agent
