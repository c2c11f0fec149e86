#include "support/privileged.h"

#include <linux/magic.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>

namespace kernelet::testing {

bool inTestVm() {
  const char* v = std::getenv("KERNELET_TEST_VM");
  return v != nullptr && std::string(v) == "1";
}

std::string privilegedUnavailableReason() {
  if (::geteuid() != 0) {
    return "needs root";
  }
  struct statfs fs {};
  if (::statfs("/sys/fs/cgroup", &fs) != 0 || fs.f_type != CGROUP2_SUPER_MAGIC) {
    return "needs cgroup v2 mounted alone at /sys/fs/cgroup (this host has hybrid cgroups)";
  }
  std::ifstream in("/sys/fs/cgroup/cgroup.controllers");
  std::set<std::string> have;
  for (std::string c; in >> c;) {
    have.insert(c);
  }
  std::string missing;
  for (const char* want : {"cpu", "memory", "pids"}) {
    if (!have.contains(want)) {
      missing += missing.empty() ? want : std::string(" ") + want;
    }
  }
  if (!missing.empty()) {
    return "the cgroup v2 hierarchy lacks the controllers: " + missing;
  }
  return {};
}

}  // namespace kernelet::testing
