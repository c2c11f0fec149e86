// `kernelet oci`'s state files (isolation/oci_state.h): ROOT/ID/state.json is
// read back by state, kill and delete, whoever wrote it last. The parser only
// takes a directory, so the input is written to a scratch one.

#include "isolation/oci_state.h"

#include <cstdint>
#include <string>

#include "fuzz/fuzz_support.h"

static std::string scratch;

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  scratch = kernelet::fuzz::confineToScratch();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  kernelet::fuzz::writeFileOrDie(scratch + "/state.json",
                                 {reinterpret_cast<const char*>(data), size});
  auto state = kernelet::isolation::loadState(scratch);
  if (state) {
    (void)state->toJson(scratch);
  }
  return 0;
}
