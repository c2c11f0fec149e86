// kubeconfig files (apiclient/kubeconfig.h), as `kernelet run --kubeconfig`
// reads them. Input: the kubeconfig, then (after a "#--#" line) the content of
// the file "data" beside it, which its certificate/key/token fields may name.

#include "apiclient/kubeconfig.h"

#include <cstdint>
#include <string>

#include "fuzz/fuzz_support.h"

static std::string scratch;

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  scratch = kernelet::fuzz::confineToScratch();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto parts = kernelet::fuzz::splitParts(data, size, 2);
  kernelet::fuzz::writeFileOrDie(scratch + "/kubeconfig", parts[0]);
  kernelet::fuzz::writeFileOrDie(scratch + "/data", parts[1]);
  (void)kernelet::apiclient::loadKubeconfig(scratch + "/kubeconfig");
  (void)kernelet::apiclient::loadKubeconfig(scratch + "/kubeconfig", "other");
  return 0;
}
