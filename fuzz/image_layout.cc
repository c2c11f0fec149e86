// An OCI image layout imported into the image store (images/image_store.h):
// index.json, the image index or manifest it names, the config and a layer.
// Input: index, manifest, config, layer, separated by "#--#" lines. A blob's
// name is its sha256, which a fuzzer cannot guess, so the placeholders
// @MANIFEST@, @CONFIG@ and @LAYER@ become the digests of those parts and
// @CONFIG_SIZE@ and @LAYER_SIZE@ their sizes. Everything is written in a
// scratch tmpfs (see confineToScratch).

#include <sys/stat.h>

#include <cstdint>
#include <string>

#include "fuzz/fuzz_support.h"
#include "images/digest.h"
#include "images/image_store.h"

namespace img = kernelet::images;

static std::string scratch;

static void replaceAll(std::string& s, const std::string& from, const std::string& to) {
  for (size_t at = 0; (at = s.find(from, at)) != std::string::npos; at += to.size()) {
    s.replace(at, from.size(), to);
  }
}

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  scratch = kernelet::fuzz::confineToScratch();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto parts = kernelet::fuzz::splitParts(data, size, 4);
  std::string &index = parts[0], &manifest = parts[1], &config = parts[2], &layer = parts[3];
  std::string layer_digest = img::sha256Of(layer);
  replaceAll(config, "@LAYER@", layer_digest);
  std::string config_digest = img::sha256Of(config);
  replaceAll(manifest, "@CONFIG@", config_digest);
  replaceAll(manifest, "@LAYER@", layer_digest);
  replaceAll(manifest, "@CONFIG_SIZE@", std::to_string(config.size()));
  replaceAll(manifest, "@LAYER_SIZE@", std::to_string(layer.size()));
  std::string manifest_digest = img::sha256Of(manifest);
  replaceAll(index, "@MANIFEST@", manifest_digest);
  replaceAll(index, "@MANIFEST_SIZE@", std::to_string(manifest.size()));

  std::string layout = scratch + "/layout";
  std::string blobs = layout + "/blobs/sha256/";
  ::mkdir(layout.c_str(), 0755);
  ::mkdir((layout + "/blobs").c_str(), 0755);
  ::mkdir(blobs.c_str(), 0755);
  kernelet::fuzz::writeFileOrDie(layout + "/oci-layout", R"({"imageLayoutVersion":"1.0.0"})");
  kernelet::fuzz::writeFileOrDie(layout + "/index.json", index);
  kernelet::fuzz::writeFileOrDie(blobs + img::digestHex(manifest_digest), manifest);
  kernelet::fuzz::writeFileOrDie(blobs + img::digestHex(config_digest), config);
  kernelet::fuzz::writeFileOrDie(blobs + img::digestHex(layer_digest), layer);
  if (auto store = img::ImageStore::open(scratch + "/store")) {
    (void)store->importLayout(layout);
  }
  kernelet::fuzz::emptyDir(scratch);
  return 0;
}
