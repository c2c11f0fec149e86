// Registry credentials in Docker's config.json (images/registry.h).

#include <cstdint>
#include <string>

#include "fuzz/fuzz_support.h"
#include "images/registry.h"

static std::string scratch;

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  scratch = kernelet::fuzz::confineToScratch();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  kernelet::fuzz::writeFileOrDie(scratch + "/config.json",
                                 {reinterpret_cast<const char*>(data), size});
  (void)kernelet::images::loadDockerConfig(scratch + "/config.json");
  return 0;
}
