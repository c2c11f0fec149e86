// dist/systemd/kernelet.service as systemd reads it: `systemd-analyze verify`
// accepts every line (it exits 0 even on a bad value, so its warnings count as
// failures here), and the keys that keep the pods alive across the agent's
// restarts say what the README promises.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

#include "agent/config/config.h"
#include "agent/lifecycle/admission.h"
#include "support/temp_dir.h"

namespace kernelet::agent {
namespace {

std::string readAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// The [Service] section's keys (the last value wins, as in systemd).
std::map<std::string, std::string> serviceKeys(const std::string& unit) {
  std::map<std::string, std::string> keys;
  std::istringstream in(unit);
  bool service = false;
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == '#') {
      continue;
    }
    if (line[0] == '[') {
      service = line == "[Service]";
      continue;
    }
    size_t eq = line.find('=');
    if (service && eq != std::string::npos) {
      keys[line.substr(0, eq)] = line.substr(eq + 1);
    }
  }
  return keys;
}

// stdout and stderr of a shell command, and its exit status.
std::pair<int, std::string> shell(const std::string& command) {
  std::string out;
  FILE* p = ::popen((command + " 2>&1").c_str(), "r");
  if (p == nullptr) {
    return {-1, "popen failed"};
  }
  char buf[4096];
  while (size_t n = std::fread(buf, 1, sizeof buf, p)) {
    out.append(buf, n);
  }
  int status = ::pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

const std::string kUnit = std::string(KERNELET_SOURCE_DIR) + "/dist/systemd/kernelet.service";

TEST(SystemdUnit, KeysKeepThePodsAndTheHolderAcrossRestarts) {
  auto keys = serviceKeys(readAll(kUnit));
  EXPECT_EQ(keys["Type"], "notify");
  EXPECT_EQ(keys["NotifyAccess"], "main");
  EXPECT_EQ(keys["KillMode"], "process");
  EXPECT_EQ(keys["Restart"], "always");
  EXPECT_EQ(keys["Delegate"], "yes");
  EXPECT_EQ(keys["OOMScoreAdjust"], "-999");
  EXPECT_EQ(keys["WatchdogSec"], "60s");
  EXPECT_EQ(keys["ExecStart"].rfind("/usr/local/bin/kernelet run ", 0), 0u) << keys["ExecStart"];
}

// The hard limit holds a full node at the most containers a pod may have, as
// the unit's comment computes from the agent's own figures.
TEST(SystemdUnit, TheOpenFileLimitFitsAFullNode) {
  std::string limit = serviceKeys(readAll(kUnit))["LimitNOFILE"];
  size_t colon = limit.find(':');
  ASSERT_NE(colon, std::string::npos) << "soft:hard expected, got " << limit;
  EXPECT_EQ(limit.substr(0, colon), "1024") << "containers inherit the soft limit";
  int64_t hard = std::stoll(limit.substr(colon + 1));
  int64_t containers = static_cast<int64_t>(AgentConfig{}.max_pods) * kMaxContainersPerPod;
  EXPECT_GE(hard, kAgentDescriptors + kDescriptorsPerContainer * containers);
}

TEST(SystemdUnit, SystemdAnalyzeVerifiesIt) {
  auto [found, where] = shell("command -v systemd-analyze");
  ASSERT_EQ(found, 0) << "systemd-analyze is missing: scripts/install-deps installs systemd";
  // verify wants ExecStart's binary to exist: the same unit with a binary that does.
  testing::TempDir dir;
  std::string unit = readAll(kUnit);
  const std::string bin = "/usr/local/bin/kernelet";
  unit.replace(unit.find(bin), bin.size(), "/bin/true");
  std::string path = dir.write("kernelet.service", unit);
  auto [status, out] = shell("systemd-analyze verify --man=no " + path);
  EXPECT_EQ(status, 0) << out;
  EXPECT_EQ(out, "") << "systemd ignores what it warns about";
}

TEST(SystemdUnit, AMistypedValueFailsVerification) {
  // The check above can fail: systemd warns about a value it cannot parse.
  testing::TempDir dir;
  std::string unit = readAll(kUnit);
  unit.replace(unit.find("KillMode=process"), 16, "KillMode=proces");
  unit.replace(unit.find("/usr/local/bin/kernelet"), 23, "/bin/true");
  auto [status, out] = shell("systemd-analyze verify --man=no " + dir.write("k.service", unit));
  EXPECT_NE(out.find("kill mode"), std::string::npos) << out;
}

}  // namespace
}  // namespace kernelet::agent
