#pragma once
// images: the agent's image store under ROOT (default /var/lib/kernelet/images):
//   ROOT/content/blobs/sha256/<hex>   verified blobs
//   ROOT/layers/<diff_id hex>/        each layer unpacked once, an overlay lower dir
//   ROOT/images.json                  name -> manifest, config, layers, last use
// Import (and later pull) verifies every blob and unpacks every layer before it
// succeeds, so a bad image fails there, not at first use.

#include <cstdint>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include "images/content_store.h"
#include "images/registry.h"
#include "sys/result.h"

namespace kernelet::images {

struct LayerRecord {
  std::string digest;   // the compressed blob
  std::string diff_id;  // the uncompressed tar, the unpacked dir's name
  int64_t size = 0;
  std::string media_type;
};

struct ImageRecord {
  std::string name;                 // normalized reference: docker.io/library/busybox:latest
  std::string manifest_digest;      // the image's digest (RepoDigest)
  std::string config_digest;        // the image id
  std::vector<LayerRecord> layers;  // lowest first
  int64_t size = 0;                 // compressed bytes of all layers
  // Unix seconds, kept in images.json so that a restarted agent does not take
  // every image for a young one (image_gc.h): when the store first had this
  // image (the kubelet's firstDetected, for imageMinimumGCAge) and when a
  // container last used it (lastUsed, for the LRU order and imageMaximumGCAge).
  int64_t first_detected = 0;
  int64_t last_used = 0;
};

class ImageStore {
 public:
  static Result<ImageStore> open(const std::string& root);

  // Imports an OCI image layout (a directory, or a tar of one). Each manifest
  // of index.json is named by its org.opencontainers.image.ref.name annotation,
  // or by `name` when given (then the layout must hold exactly one image). An
  // index of several platforms yields its linux/amd64 image.
  Result<std::vector<ImageRecord>> importLayout(const std::string& path,
                                                const std::string& name = {});

  // Pulls from the image's registry: the manifest (by tag or digest; an index
  // yields its linux/amd64 image), then the config and the layers not already
  // stored, several at a time, each verified, then unpacked. Pulls of one
  // reference at the same time in this process share one download.
  using Progress = std::function<void(const std::string& what)>;
  Result<ImageRecord> pull(const std::string& ref, const RegistryOptions& options,
                           const Progress& progress = {});

  Result<std::vector<ImageRecord>> list() const;
  // By name (normalized: "busybox" finds docker.io/library/busybox:latest), or
  // by config or manifest digest.
  Result<ImageRecord> find(const std::string& ref) const;
  // `kernelet images rm`: removeImage, then collectGarbage.
  Result<void> remove(const std::string& ref);
  Result<void> touch(const std::string& ref, int64_t now);
  // lastUsed = now for each image named (by its normalized name), in one write.
  Result<void> touchAll(const std::vector<std::string>& names, int64_t now);

  // ---- removal (image_remove.cc) ------------------------------------------
  // Deletes the image named `name` (its normalized name) and what only it
  // used: its manifest, config and layer blobs and its unpacked layers that no
  // other image refers to and no overlay mounts now (a container whose image
  // was re-tagged away still runs on them). Returns the bytes that freed (the
  // blocks of the files removed). Touches nothing else, so a pull writing its
  // blobs meanwhile loses none.
  Result<int64_t> removeImage(const std::string& name);
  // Removes blobs and layer dirs no image refers to, but layers mounted now
  // and unpacks in progress (`*.tmp`): `kernelet images rm`, never the agent,
  // whose pulls may have stored blobs not recorded yet.
  Result<void> collectGarbage();
  // The layer dirs (diff_id hex) some overlay in this mount namespace has as
  // a lower dir, from /proc/self/mountinfo.
  std::set<std::string> mountedLayers() const;

  // The unpacked layer dirs of an image, highest first: overlayfs lowerdir order.
  std::vector<std::string> lowerDirs(const ImageRecord& image) const;
  Result<std::string> configJson(const ImageRecord& image) const;
  // The record and the image's config, pretty-printed (`kernelet images inspect`).
  Result<std::string> inspectJson(const ImageRecord& image) const;
  const std::string& root() const { return root_; }
  ContentStore& content() { return content_; }

 private:
  ImageStore(std::string root, ContentStore content)
      : root_(std::move(root)), content_(std::move(content)) {}
  // Where an image's blobs come from while it is recorded: each call puts a
  // verified blob into the content store.
  struct BlobSource {
    std::function<Result<void>(const std::string& digest, int64_t size)> fetch;
    // Several at once (a registry fetches them in parallel); default: one by one.
    std::function<Result<void>(const std::vector<std::pair<std::string, int64_t>>&)> fetchAll;
  };
  Result<ImageRecord> recordManifest(const std::string& digest, const std::string& name,
                                     BlobSource& source);
  Result<ImageRecord> pullWithEachCredential(const Reference& ref, const RegistryOptions& options,
                                             const Progress& progress);
  Result<ImageRecord> pullOnce(const std::string& ref, const RegistryOptions& options,
                               const Progress& progress);
  // Read-modify-write of images.json under a lock (threads and processes).
  Result<void> update(const std::function<void(std::vector<ImageRecord>&)>& change);
  Result<void> save(const std::vector<ImageRecord>& images) const;
  std::string root_;
  ContentStore content_;
};

}  // namespace kernelet::images
