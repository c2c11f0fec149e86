// The runtime's pod records (agent/runtime/run_records.h): ROOT/pods/UID/runtime.json
// is read back by the next agent, which may be another build, after a crash
// that may have torn it. Whatever parses must write back to the same record.

#include <cstdint>
#include <string>
#include <string_view>

#include "agent/runtime/run_records.h"

namespace rt = kernelet::agent::runtime;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto record = rt::parsePodRecord(text, "runtime.json");
  if (!record) {
    return 0;
  }
  std::string json = rt::toJson(*record);
  auto again = rt::parsePodRecord(json, "runtime.json");
  if (!again || rt::toJson(*again) != json) {
    __builtin_trap();  // what one agent writes, the next must read the same
  }
  return 0;
}
