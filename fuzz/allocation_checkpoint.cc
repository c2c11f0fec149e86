// The allocation checkpoint of a resized pod (agent/lifecycle/allocation_checkpoint.h):
// ROOT/pods/UID/allocation.json is read back by the next agent, which may be
// another build, after a crash. Whatever parses must write back the same.

#include "agent/lifecycle/allocation_checkpoint.h"

#include <cstdint>
#include <string>
#include <string_view>

namespace agent = kernelet::agent;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto a = agent::parseAllocation(text, "allocation.json");
  if (!a) {
    return 0;
  }
  std::string json = agent::toJson(*a);
  auto again = agent::parseAllocation(json, "allocation.json");
  if (!again || agent::toJson(*again) != json) {
    __builtin_trap();  // what one agent writes, the next must read the same
  }
  return 0;
}
