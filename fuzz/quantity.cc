// Kubernetes quantities ("100m", "1.5Gi", "1e3") from manifests and API objects
// (apiclient/quantity.h). Besides not crashing: what is printed parses back to
// the same quantity, as apimachinery's canonical form does.

#include "apiclient/quantity.h"

#include <cstdint>
#include <string>

using kernelet::apiclient::Quantity;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  auto q = Quantity::parse(text);
  if (!q) {
    return 0;
  }
  std::string printed = q->str();
  (void)q->milliValue();
  (void)q->value();
  auto again = Quantity::parse(printed);
  if (!again || !(*again == *q)) {
    __builtin_trap();  // the canonical form did not round-trip
  }
  return 0;
}
