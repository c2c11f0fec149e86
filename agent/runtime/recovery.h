#pragma once
// What a previous agent that died (crash, SIGKILL, power cut of the process)
// left behind: containers are children of the agent, so they died with it or
// are orphans now. Before it runs anything, the agent kills those orphans and
// removes their cgroups, mounts, namespaces and addresses; the pods are then
// started afresh from their sources.

#include <string>

#include "netns/netns.h"
#include "sys/result.h"

namespace kernelet::agent {

struct LeftoverPaths {
  std::string cgroup_mount, cgroup_root;  // kubepods under cgroup_root
  std::string root_dir, run_dir;
};

// Counts what it removed, for the log. Errors are collected, not fatal.
struct Recovered {
  int cgroups = 0, mounts = 0, networks = 0;
  std::vector<std::string> errors;
};

Recovered cleanUpLeftovers(const LeftoverPaths& paths, netns::Network* network);

}  // namespace kernelet::agent
