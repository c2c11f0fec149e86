// The KubeletConfiguration file (agent/config/config.h) and the flag values
// --kube-reserved/--system-reserved, --eviction-hard (and --eviction-soft),
// --eviction-soft-grace-period and --eviction-minimum-reclaim, and the file's
// allowedUnsafeSysctls as the agent checks them (the sysctl allowlist). Input:
// the file, then (after a "#--#" line) a flag value.

#include <cstdint>
#include <string>

#include "agent/config/config.h"
#include "agent/lifecycle/sysctl_allowlist.h"
#include "fuzz/fuzz_support.h"

static std::string scratch;

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  scratch = kernelet::fuzz::confineToScratch();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto parts = kernelet::fuzz::splitParts(data, size, 2);
  kernelet::fuzz::writeFileOrDie(scratch + "/config.yaml", parts[0]);
  kernelet::agent::AgentConfig config;
  if (kernelet::agent::loadKubeletConfiguration(scratch + "/config.yaml", config)) {
    if (auto w = kernelet::agent::SysctlAllowlist::create(config.allowed_unsafe_sysctls)) {
      for (const auto& name : config.allowed_unsafe_sysctls) {
        (void)w->check(name, true, false);
      }
    }
  }
  (void)kernelet::agent::parseReserved(parts[1], "--kube-reserved");
  (void)kernelet::agent::parseEvictionHard(parts[1], "--eviction-hard");
  (void)kernelet::agent::parseEvictionGracePeriods(parts[1], "--eviction-soft-grace-period");
  (void)kernelet::agent::parseEvictionMinimumReclaim(parts[1], "--eviction-minimum-reclaim");
  return 0;
}
