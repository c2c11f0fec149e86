#pragma once
// One image layer (a tar, gzip- or zstd-compressed or not) unpacked into its own
// directory, ready to be an overlayfs lower dir: OCI whiteouts become overlay
// whiteouts, owners, modes, xattrs, hard links and device nodes are kept, and
// entries that would land outside the directory are refused.

#include <string>

#include "sys/result.h"

namespace kernelet::images {

struct UnpackedLayer {
  std::string diff_id;  // sha256 of the uncompressed tar, to check against the image config
  uint64_t entries = 0;
};

// Unpacks `blob` into `dest` (which must exist and be empty). `layer` names the
// layer in errors. On error `dest` may hold part of the layer: the caller
// removes it (see unpackLayerAtomically).
Result<UnpackedLayer> unpackLayer(const std::string& blob, const std::string& dest,
                                  const std::string& layer);

// Unpacks into DEST.tmp and renames it to DEST only when the whole layer is in
// and its diff_id is `expected_diff_id` (if not empty); nothing is left on failure.
Result<UnpackedLayer> unpackLayerAtomically(const std::string& blob, const std::string& dest,
                                            const std::string& layer,
                                            const std::string& expected_diff_id);

}  // namespace kernelet::images
