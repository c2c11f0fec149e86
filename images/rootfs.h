#pragma once
// A container's root filesystem: an overlayfs of the image's unpacked layers
// (read-only lower dirs) with the container's own upper and work dirs.

#include <string>
#include <utility>
#include <vector>

#include "sys/result.h"

namespace kernelet::images {

class Rootfs {
 public:
  Rootfs() = default;
  Rootfs(Rootfs&& o) noexcept : dir_(std::exchange(o.dir_, {})) {}
  Rootfs& operator=(Rootfs&& o) noexcept {
    std::swap(dir_, o.dir_);
    return *this;
  }
  // Leaves the mount in place (the container may still run); call remove().
  ~Rootfs() = default;

  // Mounts DIR/rootfs over `lower_dirs` (highest first), with DIR/upper and
  // DIR/work. DIR must be on a filesystem that can hold an overlay upper dir
  // (not itself an overlay).
  static Result<Rootfs> mount(const std::vector<std::string>& lower_dirs, const std::string& dir);

  // A rootfs mounted earlier (by a previous agent) under `dir`: nothing is
  // mounted; remove() takes it down.
  static Rootfs adopt(std::string dir) { return Rootfs(std::move(dir)); }

  std::string path() const { return dir_ + "/rootfs"; }
  const std::string& dir() const { return dir_; }
  // Unmounts and deletes the container's dirs (its writes are gone).
  Result<void> remove();

 private:
  explicit Rootfs(std::string dir) : dir_(std::move(dir)) {}
  std::string dir_;
};

}  // namespace kernelet::images
