#include "agent/stats/network_stats.h"

#include <dirent.h>

#include <memory>

#include "sys/fileio.h"

namespace kernelet::agent::stats {

namespace {

std::optional<int> firstPid(const std::string& dir) {
  auto text = readFile(dir + "/cgroup.procs");
  if (!text) {
    return std::nullopt;  // the group went meanwhile
  }
  auto pid = parseSingleValue(*text);
  if (!pid || *pid == 0 || *pid > 0x7fffffff) {
    return std::nullopt;
  }
  return static_cast<int>(*pid);
}

}  // namespace

std::optional<int> findProcessIn(const std::string& mount, const std::string& relative) {
  std::string dir = mount + "/" + relative;
  if (auto pid = firstPid(dir)) {
    return pid;
  }
  std::unique_ptr<DIR, int (*)(DIR*)> d(opendir(dir.c_str()), closedir);
  if (!d) {
    return std::nullopt;
  }
  while (dirent* e = readdir(d.get())) {
    if (e->d_type != DT_DIR || e->d_name[0] == '.') {
      continue;
    }
    if (auto pid = firstPid(dir + "/" + e->d_name)) {
      return pid;
    }
  }
  return std::nullopt;
}

std::vector<InterfaceCounters> podInterfaces(const std::string& cgroup_mount,
                                             const std::string& pod_cgroup,
                                             const std::string& proc) {
  auto pid = findProcessIn(cgroup_mount, pod_cgroup);
  if (!pid) {
    return {};
  }
  auto text = readFile(proc + "/" + std::to_string(*pid) + "/net/dev");
  if (!text) {
    return {};  // the process ended between the two reads
  }
  std::vector<InterfaceCounters> out;
  for (auto& i : parseNetDev(*text)) {
    if (i.name != "lo") {
      out.push_back(std::move(i));
    }
  }
  return out;
}

}  // namespace kernelet::agent::stats
