#pragma once
// Container garbage collection as the kubelet's (pkg/kubelet/container/
// container_gc.go, kuberuntime_gc.go evictContainers), over what kernelet
// keeps of a dead container run: its log files (N.log and its rotations
// N.log.<stamp>[.i] in the container's log dir). A run's rootfs, cgroup and
// termination-message file go when it exits, and the pod's record holds only
// its latest and previous runs, so the logs are what piles up; the whole
// pod log dir and ROOT/pods/<uid> go with the pod (Agent::removePod).
//
// The rules, with ContainerGcPolicy: a run dead for less than the minimum
// age stays; each container keeps its newest max_per_pod_container dead runs
// (1 by default: the run `kubectl logs --previous` reads survives); beyond
// max_containers dead runs on the node, each container keeps
// max(max_containers / containers, 1), then the oldest go. A run newer than
// the one the status shows (being started) is never touched.

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "agent/config/gc_settings.h"

namespace kernelet::agent::gc {

// One dead run of one container.
struct DeadRun {
  std::string unit;   // whose: the container's log dir
  int run = 0;        // N of N.log: the restart count it started with
  int64_t ended = 0;  // unix seconds: the newest mtime of its files
  std::vector<std::string> files;
};

// The kubelet's choice of what goes, oldest first within each step.
std::vector<DeadRun> runsToRemove(std::vector<DeadRun> dead, const ContainerGcPolicy& p,
                                  int64_t now);

// A container's log dir by run: N -> its files (N.log and rotations), paths.
std::map<int, std::vector<std::string>> runFiles(const std::string& dir);

// What the agent knows of a container: the newest run started (its status'
// restartCount), and whether that run has ended (a run being started, whose
// log is open already, has not).
struct ContainerRuns {
  std::string dir;  // POD_LOG_DIR/<ns>_<name>_<uid>/<container>
  int latest = 0;
  bool latest_ended = false;
};

// The dead runs in the dirs: every run before `latest`, and `latest` itself
// once it has ended.
std::vector<DeadRun> deadRuns(const std::vector<ContainerRuns>& containers);

struct Removed {
  int runs = 0, files = 0;
  std::vector<std::string> errors;
};
Removed removeRuns(const std::vector<DeadRun>& runs);

// One pass over the node's containers.
Removed collectContainers(const std::vector<ContainerRuns>& containers, const ContainerGcPolicy& p,
                          int64_t now);

}  // namespace kernelet::agent::gc
