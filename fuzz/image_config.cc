// An image's config JSON (images/image_config.h), the argv Kubernetes' rules
// make of it, and its User resolved through the image's /etc/passwd and
// /etc/group. Input: config JSON, passwd, group, separated by "#--#" lines.

#include "images/image_config.h"

#include <sys/stat.h>

#include <cstdint>
#include <string>

#include "fuzz/fuzz_support.h"

static std::string scratch;

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  scratch = kernelet::fuzz::confineToScratch();
  ::mkdir((scratch + "/etc").c_str(), 0755);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace img = kernelet::images;
  auto parts = kernelet::fuzz::splitParts(data, size, 3);
  auto config = img::parseImageConfig(parts[0], "fuzz config");
  if (!config) {
    return 0;
  }
  (void)img::containerArgv(*config, {}, {}, "c");
  (void)img::containerArgv(*config, {}, {"arg"}, "c");
  kernelet::fuzz::writeFileOrDie(scratch + "/etc/passwd", parts[1]);
  kernelet::fuzz::writeFileOrDie(scratch + "/etc/group", parts[2]);
  (void)img::resolveUser(scratch, config->user);
  return 0;
}
