// Image layers (images/unpack.h): a tar, gzip- or zstd-compressed or not,
// unpacked as a pull does it. Besides not crashing: nothing may be created
// outside the layer's directory. Confined to a scratch tmpfs, so an escape
// cannot touch the host (see confineToScratch).

#include "images/unpack.h"

#include <sys/stat.h>

#include <cstdint>
#include <filesystem>
#include <string>

#include "fuzz/fuzz_support.h"

static std::string scratch;

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  scratch = kernelet::fuzz::confineToScratch();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // scratch/in/blob and scratch/in/layer/: an entry that escapes the layer
  // would most likely land in in/ or scratch/.
  std::string in = scratch + "/in";
  std::string layer = in + "/layer";
  ::mkdir(in.c_str(), 0755);
  ::mkdir(layer.c_str(), 0755);
  kernelet::fuzz::writeFileOrDie(in + "/blob", {reinterpret_cast<const char*>(data), size});
  (void)kernelet::images::unpackLayer(in + "/blob", layer, "sha256:fuzz");
  size_t outside = 0;
  std::error_code ec;
  for (std::filesystem::recursive_directory_iterator it(scratch, ec), end; !ec && it != end;
       it.increment(ec)) {
    std::string p = it->path().string();
    outside += p != in && p != in + "/blob" && p != layer && !p.starts_with(layer + "/") ? 1 : 0;
  }
  if (outside != 0) {
    __builtin_trap();  // an entry landed outside the layer's directory
  }
  kernelet::fuzz::emptyDir(scratch);
  return 0;
}
