#include "agent/runtime/recovery.h"

#include <sys/mount.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "agent/runtime/run_records.h"
#include "cgroups/cgroups.h"
#include "isolation/oci_state.h"

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

// What the kept pods hold: pod uids, container ids, pod cgroup names.
struct Kept {
  std::set<std::string> uids, ids, cgroups;
  bool holds(const std::string& dir, const std::string& path) const {
    for (const auto* names : {&uids, &ids}) {
      for (const auto& n : *names) {
        std::string held = dir;
        held.append("/").append(n);
        if (path == held || path.starts_with(held + "/")) {
          return true;
        }
      }
    }
    return false;
  }
};

// Something of the pod is there to adopt: a run still going (the same
// process: its start time matches), or its sandbox.
bool adoptable(const runtime::PodRecord& rec) {
  for (const auto& [name, c] : rec.containers) {
    if (c.latest && !c.latest->ended && c.latest->start_time != 0 &&
        isolation::processStartTime(c.latest->pid) == c.latest->start_time) {
      return true;
    }
  }
  return ::access(rec.cgroup.c_str(), F_OK) == 0;
}

Kept findAdoptable(const LeftoverPaths& paths, Recovered& r) {
  Kept kept;
  if (!paths.keep_adoptable) {
    return kept;
  }
  std::string boot = paths.boot_id.empty() ? runtime::currentBootId() : paths.boot_id;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(paths.root_dir + "/pods", ec)) {
    std::string uid = e.path().filename().string();
    std::string path = runtime::recordPath(paths.root_dir, uid);
    if (::access(path.c_str(), F_OK) != 0) {
      continue;  // no record: garbage
    }
    auto rec = runtime::readPodRecord(path);
    if (!rec) {
      r.errors.push_back(rec.error().message() + " (the pod is removed)");
      continue;
    }
    if (rec->uid != uid) {
      r.errors.push_back("pod record `" + path + "`: names pod " + rec->uid + " (removed)");
      continue;
    }
    if (boot.empty() || rec->boot_id != boot || !adoptable(*rec)) {
      continue;  // another boot, or nothing left: removed as before live restore
    }
    kept.uids.insert(uid);
    kept.cgroups.insert(fs::path(rec->cgroup).filename().string());
    for (const auto& [name, c] : rec->containers) {
      for (const auto* run : {&c.latest, &c.previous}) {
        if (*run) {
          kept.ids.insert((*run)->id);
        }
      }
    }
  }
  r.kept = kept.uids;
  return kept;
}

}  // namespace

Recovered cleanUpLeftovers(const LeftoverPaths& paths, netns::Network* network) {
  Recovered r;
  Kept kept = findAdoptable(paths, r);
  // Pod cgroups first: cgroup.kill ends every orphaned container process.
  cgroups::QosClass classes[] = {cgroups::QosClass::kGuaranteed, cgroups::QosClass::kBurstable,
                                 cgroups::QosClass::kBestEffort};
  for (auto q : classes) {
    std::string parent = cgroups::podCgroupPath(paths.cgroup_root, q, "");
    parent.resize(parent.size() - 3);  // drop the "pod" prefix of the uid's dir
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(paths.cgroup_mount + "/" + parent, ec)) {
      std::string name = e.path().filename().string();
      if (!e.is_directory() || !name.starts_with("pod") || kept.cgroups.contains(name)) {
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
      if (kept.holds(dir, m)) {
        continue;
      }
      if (::umount2(m.c_str(), MNT_DETACH) == 0) {
        r.mounts++;
      } else {
        r.errors.push_back("umount `" + m + "`: " + std::strerror(errno));
      }
    }
    std::error_code ec;
    if (kept.uids.empty()) {
      fs::remove_all(dir, ec);
      continue;
    }
    for (const auto& e : fs::directory_iterator(dir, ec)) {
      if (!kept.holds(dir, e.path().string())) {
        fs::remove_all(e.path(), ec);
      }
    }
  }
  // Pod networks: each namespace file names a pod that had an address and a veth.
  if (network != nullptr) {
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(network->config().run_dir, ec)) {
      if (kept.uids.contains(e.path().filename().string())) {
        continue;
      }
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
