#include "agent/runtime/recovery.h"

#include <sys/mount.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "cgroups/cgroups.h"

namespace kernelet::agent {
namespace {

namespace fs = std::filesystem;

// Mount points under `prefix`, deepest first, from /proc/self/mountinfo.
std::vector<std::string> mountsUnder(const std::string& prefix) {
  std::vector<std::string> out;
  std::ifstream in("/proc/self/mountinfo");
  for (std::string line; std::getline(in, line);) {
    std::istringstream fields(line);
    std::string id, parent, dev, root, point;
    fields >> id >> parent >> dev >> root >> point;
    if (point.starts_with(prefix + "/")) {
      out.push_back(point);
    }
  }
  std::sort(out.begin(), out.end(),
            [](const auto& a, const auto& b) { return a.size() > b.size(); });
  return out;
}

}  // namespace

Recovered cleanUpLeftovers(const LeftoverPaths& paths, netns::Network* network) {
  Recovered r;
  // Pod cgroups first: cgroup.kill ends every orphaned container process.
  cgroups::QosClass classes[] = {cgroups::QosClass::kGuaranteed, cgroups::QosClass::kBurstable,
                                 cgroups::QosClass::kBestEffort};
  for (auto q : classes) {
    std::string parent = cgroups::podCgroupPath(paths.cgroup_root, q, "");
    parent.resize(parent.size() - 3);  // drop the "pod" prefix of the uid's dir
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(paths.cgroup_mount + "/" + parent, ec)) {
      std::string name = e.path().filename().string();
      if (!e.is_directory() || !name.starts_with("pod")) {
        continue;
      }
      auto g = cgroups::Cgroup::open(paths.cgroup_mount, parent + name);
      auto removed = g ? g->remove() : Result<void>(std::unexpected(g.error()));
      if (removed) {
        r.cgroups++;
      } else {
        r.errors.push_back(removed.error().message());
      }
    }
  }
  // Container rootfs overlays, tmpfs volumes, the pods' ipc/uts namespace files.
  for (const std::string& dir :
       {paths.root_dir + "/containers", paths.root_dir + "/pods", paths.run_dir + "/pods"}) {
    for (const auto& m : mountsUnder(dir)) {
      if (::umount2(m.c_str(), MNT_DETACH) == 0) {
        r.mounts++;
      } else {
        r.errors.push_back("umount `" + m + "`: " + std::strerror(errno));
      }
    }
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
  // Pod networks: each namespace file names a pod that had an address and a veth.
  if (network != nullptr) {
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(network->config().run_dir, ec)) {
      if (auto t = network->tearDown(e.path().filename().string()); t) {
        r.networks++;
      } else {
        r.errors.push_back(t.error().message());
      }
    }
  }
  return r;
}

}  // namespace kernelet::agent
