// Image references from manifests and the command line (images/reference.h),
// and the pull policy that depends on them (images/policy.h). A reference
// parsed and printed must parse back to itself.

#include <cstdint>
#include <string>

#include "images/policy.h"
#include "images/reference.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  (void)kernelet::images::pullPolicy("", text);
  auto ref = kernelet::images::parseReference(text);
  if (!ref) {
    return 0;
  }
  auto again = kernelet::images::parseReference(ref->str());
  if (!again || again->str() != ref->str()) {
    __builtin_trap();  // the normalized form is not a fixed point
  }
  return 0;
}
