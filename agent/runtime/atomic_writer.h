#pragma once
// The kubelet's AtomicWriter: a volume's files live in DIR/..<timestamp>/,
// DIR/..data points at the current one, and each top-level name is a symlink
// through ..data. An update writes a new timestamped dir and swaps ..data
// with one rename, so a reader sees the old files or the new ones, never a mix.

#include <sys/types.h>

#include <map>
#include <optional>
#include <string>

#include "sys/result.h"

namespace kernelet::agent {

struct VolumeFile {
  std::string content;
  int mode = 0644;
  auto operator<=>(const VolumeFile&) const = default;
};

// `files`: relative path -> file. Returns false when DIR already holds exactly
// these files (nothing written). `group`: fsGroup, owner group of every file.
// A path that is absolute, has a ".." element or starts with ".." is refused
// (the kubelet's validatePath). Whatever links were planted in DIR, nothing
// outside it is read, written or removed; planted names are replaced.
Result<bool> writeAtomically(const std::string& dir, const std::map<std::string, VolumeFile>& files,
                             std::optional<gid_t> group = {});

}  // namespace kernelet::agent
