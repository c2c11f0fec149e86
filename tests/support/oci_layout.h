#pragma once
// Writes small OCI image layouts for image store tests: each image is one
// config and uncompressed tar layers built with layer_builder.h, named by the
// org.opencontainers.image.ref.name annotation. Layers given the same entries
// are the same blob, so images can share layers as real ones do.

#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "images/digest.h"
#include "support/layer_builder.h"

namespace kernelet::testing {

// Writes the layout of one image named `ref` into `dir` (created); returns
// `dir`. Each layer is a tar of its entries.
inline std::string writeOciLayout(const std::string& dir, const std::string& ref,
                                  const std::vector<std::vector<TarEntry>>& layers) {
  namespace fs = std::filesystem;
  fs::create_directories(dir + "/blobs/sha256");
  auto read = [](const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  };
  auto put = [&](const std::string& body) {
    std::string digest = images::sha256Of(body);
    std::ofstream(dir + "/blobs/sha256/" + images::digestHex(digest), std::ios::binary) << body;
    return digest;
  };
  std::string layer_descs, diff_ids;
  for (size_t i = 0; i < layers.size(); i++) {
    std::string tar = dir + "/layer.tar";
    writeLayer(tar, layers[i], Compression::kNone);
    std::string body = read(tar);
    fs::remove(tar);
    std::string digest = put(body);
    layer_descs += std::string(i ? "," : "") +
                   R"({"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":")" + digest +
                   R"(","size":)" + std::to_string(body.size()) + "}";
    diff_ids += std::string(i ? "," : "") + "\"" + digest + "\"";
  }
  std::string config =
      R"({"architecture":"amd64","os":"linux","config":{"Cmd":["sh"]},"rootfs":{"type":"layers","diff_ids":[)" +
      diff_ids + "]}}";
  std::string config_digest = put(config);
  std::string manifest =
      R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":")" +
      config_digest + R"(","size":)" + std::to_string(config.size()) + R"(},"layers":[)" +
      layer_descs + "]}";
  std::string manifest_digest = put(manifest);
  std::ofstream(dir + "/index.json")
      << R"({"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":")"
      << manifest_digest << R"(","size":)" << manifest.size()
      << R"(,"annotations":{"org.opencontainers.image.ref.name":")" << ref << R"("}}]})";
  std::ofstream(dir + "/oci-layout") << R"({"imageLayoutVersion":"1.0.0"})";
  return dir;
}

// A file of `size` bytes that does not compress and differs by `seed`.
inline std::string noise(size_t size, uint32_t seed) {
  std::string out(size, '\0');
  uint32_t x = seed * 2654435761u + 1;
  for (auto& c : out) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    c = static_cast<char>(x);
  }
  return out;
}

}  // namespace kernelet::testing
