#include "images/rootfs.h"

#include <sys/mount.h>

#include <filesystem>

namespace kernelet::images {

namespace fs = std::filesystem;

Result<Rootfs> Rootfs::mount(const std::vector<std::string>& lower_dirs, const std::string& dir) {
  if (lower_dirs.empty()) {
    return makeError("mount rootfs", dir, "the image has no layers");
  }
  std::error_code ec;
  for (const char* sub : {"/rootfs", "/upper", "/work"}) {
    fs::create_directories(dir + sub, ec);
    if (ec) {
      return makeError("create", dir + sub, ec.message());
    }
  }
  std::string lower;
  for (const auto& l : lower_dirs) {
    lower += (lower.empty() ? "" : ":") + l;
  }
  std::string options =
      "lowerdir=" + lower + ",upperdir=" + dir + "/upper,workdir=" + dir + "/work";
  // One page is the limit for mount options: many layers need shorter paths.
  if (options.size() >= 4096) {
    fs::remove_all(dir, ec);
    return makeError("mount rootfs", dir, "overlay options exceed a page (too many layers)");
  }
  std::string target = dir + "/rootfs";
  if (::mount("overlay", target.c_str(), "overlay", 0, options.c_str()) != 0) {
    auto err = sysError("mount overlay", target);
    fs::remove_all(dir, ec);
    return err;
  }
  return Rootfs(dir);
}

Result<void> Rootfs::remove() {
  if (dir_.empty()) {
    return {};
  }
  std::string target = dir_ + "/rootfs";
  if (::umount2(target.c_str(), MNT_DETACH) != 0 && errno != EINVAL && errno != ENOENT) {
    return sysError("unmount", target);
  }
  std::error_code ec;
  fs::remove_all(dir_, ec);
  if (ec) {
    return makeError("remove", dir_, ec.message());
  }
  dir_.clear();
  return {};
}

}  // namespace kernelet::images
