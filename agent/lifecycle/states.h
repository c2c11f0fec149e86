#pragma once
// The states of a pod worker and of each of its containers, modelled on the
// kubelet's pod workers (SyncPod -> TerminatingPod -> TerminatedPod). A worker
// changes them only through PodWorker::transition(), which records the reason
// and logs it at -v=4.

namespace kernelet::agent {

enum class PodState {
  kSyncing,      // admitted: the sandbox, volumes and containers are brought up and kept
  kCompleted,    // every container is done for good (restartPolicy): what is left stops,
                 // the sandbox goes, the pod waits for its deletion
  kTerminating,  // asked to stop: containers within the grace period, then the sandbox
  kTerminated,   // nothing of the pod is left on the node
  kRejected,     // failed admission: nothing ever ran
};

enum class CtrState {
  kWaiting,   // never started
  kCreating,  // image pull or start in progress
  kRunning,
  kStopping,  // signalled; SIGKILL once its grace period ran out
  kExited,    // terminated, and no restart is due
  kBackOff,   // a restart, or a creation that failed, is due on a timer
};

inline const char* stateName(PodState s) {
  switch (s) {
    case PodState::kSyncing:
      return "Syncing";
    case PodState::kCompleted:
      return "Completed";
    case PodState::kTerminating:
      return "Terminating";
    case PodState::kTerminated:
      return "Terminated";
    case PodState::kRejected:
      return "Rejected";
  }
  return "?";
}

inline const char* stateName(CtrState s) {
  switch (s) {
    case CtrState::kWaiting:
      return "Waiting";
    case CtrState::kCreating:
      return "Creating";
    case CtrState::kRunning:
      return "Running";
    case CtrState::kStopping:
      return "Stopping";
    case CtrState::kExited:
      return "Exited";
    case CtrState::kBackOff:
      return "BackOff";
  }
  return "?";
}

}  // namespace kernelet::agent
