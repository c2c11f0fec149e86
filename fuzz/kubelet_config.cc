// The KubeletConfiguration file (agent/config/config.h) and the flag values
// --kube-reserved/--system-reserved and --eviction-hard. Input: the file, then
// (after a "#--#" line) a flag value.

#include <cstdint>
#include <string>

#include "agent/config/config.h"
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
  (void)kernelet::agent::loadKubeletConfiguration(scratch + "/config.yaml", config);
  (void)kernelet::agent::parseReserved(parts[1], "--kube-reserved");
  (void)kernelet::agent::parseEvictionHard(parts[1], "--eviction-hard");
  return 0;
}
