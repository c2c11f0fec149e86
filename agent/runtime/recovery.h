#pragma once
// What a previous agent left behind. Containers outlive the agent that started
// them (issue #16): a pod whose record (run_records.h) is of this boot and
// still has something running is kept for the new agent to adopt
// (KernelRuntime::adopt) or stop (stopLeftover). Everything else - pods of
// another boot, broken or future records, what no record names - is removed
// before the agent runs anything: orphaned processes killed, their cgroups,
// mounts, namespaces and addresses removed; those pods start afresh.

#include <set>
#include <string>
#include <vector>

#include "netns/netns.h"
#include "sys/result.h"

namespace kernelet::agent {

struct LeftoverPaths {
  std::string cgroup_mount, cgroup_root;  // kubepods under cgroup_root
  std::string root_dir, run_dir;
  // Keep the adoptable pods (live restore). Off, every pod is removed, as
  // before live restore (an agent without a keeper cannot adopt a run: its
  // log pipes died with the previous agent).
  bool keep_adoptable = false;
  std::string boot_id;  // empty: this boot's (/proc/sys/kernel/random/boot_id)
};

// Counts what it removed, for the log. Errors are collected, not fatal; a
// record that could not be used is one, naming its path.
struct Recovered {
  int cgroups = 0, mounts = 0, networks = 0;
  std::vector<std::string> errors;
  std::set<std::string> kept;  // uids of the pods left for adoption
};

Recovered cleanUpLeftovers(const LeftoverPaths& paths, netns::Network* network);

}  // namespace kernelet::agent
