#include <linux/magic.h>
#include <sys/vfs.h>

#include <sstream>

#include "cgroups/cgroups.h"
#include "sys/fileio.h"

namespace kernelet::cgroups {

static bool isCgroup2(const std::string& path) {
  struct statfs fs {};
  return ::statfs(path.c_str(), &fs) == 0 && fs.f_type == CGROUP2_SUPER_MAGIC;
}

Result<Hierarchy> detect(const std::string& mount) {
  Hierarchy h;
  if (isCgroup2(mount)) {
    h.mount = mount;
  } else if (isCgroup2(mount + "/unified")) {
    h.mount = mount + "/unified";  // hybrid: v2 beside the v1 controllers
  } else {
    return makeError("find cgroup v2", mount, "no cgroup2 filesystem mounted there");
  }
  TRY(std::string list, readFile(h.mount + "/cgroup.controllers"));
  std::istringstream in(list);
  for (std::string c; in >> c;) {
    h.controllers.insert(c);
  }
  return h;
}

Result<void> requireControllers(const Hierarchy& h, const std::vector<std::string>& wanted) {
  std::string missing;
  for (const std::string& c : wanted) {
    if (!h.controllers.contains(c)) {
      missing += (missing.empty() ? "" : ", ") + c;
    }
  }
  if (missing.empty()) {
    return {};
  }
  std::string offered;
  for (const std::string& c : h.controllers) {
    offered += (offered.empty() ? "" : " ") + c;
  }
  return makeError(
      "check cgroup v2 controllers", h.mount,
      "missing " + missing + " (offered: " + (offered.empty() ? "none" : offered) +
          "); this host binds them to cgroup v1 (hybrid mode). Boot with cgroup v2 only "
          "(systemd.unified_cgroup_hierarchy=1 cgroup_no_v1=all) or run in the test VM "
          "(scripts/vm-run); --limits-unenforced runs without these limits");
}

}  // namespace kernelet::cgroups
