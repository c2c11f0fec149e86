// An OCI bundle's config.json (isolation/oci_config.h), as `kernelet oci
// create` reads it from a bundle someone else wrote.

#include "isolation/oci_config.h"

#include <cstdint>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string json(reinterpret_cast<const char*>(data), size);
  auto bundle = kernelet::isolation::parseOciConfig(json, "/run/fuzz/bundle");
  (void)bundle;
  return 0;
}
