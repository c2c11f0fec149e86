#pragma once
// Which run of a container a log request reads, from the container's status,
// as the kubelet's validateContainerLogStatus decides it (and with its error
// texts), and where that run's log files are.
//
// Run N of a container logs to N.log, N being its restartCount then. The
// restart count goes up when the next run starts, so a container backing off
// (waiting, CrashLoopBackOff) has restartCount = the run that just died, which
// is also its lastState; a running or terminated one has restartCount = its
// current run, and its lastState is the run before.

#include <string>

#include "agent/status/pod_status.h"
#include "sys/result.h"

namespace kernelet::agent::logs {

// The run to read, or the kubelet's error ("previous terminated container
// \"c\" in pod \"p\" not found", "container \"c\" in pod \"p\" is waiting to
// start: ContainerCreating", ...); `status` null: "... is not available".
Result<int> logRun(const ContainerStatus* status, const std::string& pod,
                   const std::string& container, bool previous);

// Run `run` of this container is still running (a followed log goes on).
bool runIsRunning(const ContainerStatus& status, int run);

// The status of container `name` (init containers included), or null.
const ContainerStatus* findContainerStatus(const PodStatus& status, const std::string& name);

// POD_LOG_DIR/NS_NAME_UID/CONTAINER, as the kubelet lays out /var/log/pods.
std::string containerLogDir(const std::string& pod_log_dir, const std::string& namespace_,
                            const std::string& pod, const std::string& uid,
                            const std::string& container);

}  // namespace kernelet::agent::logs
