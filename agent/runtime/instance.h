#pragma once
// KernelRuntime's private part shared by its files (kernel_runtime.cc starts
// runs, adopt.cc takes over a previous agent's, leftovers.cc stops those no
// one adopted): one run of a container and what must be taken down when it
// exits. Not for other code: the seam is runtime.h.

#include <sys/stat.h>
#include <unistd.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "agent/log/log.h"
#include "agent/runtime/container_stdio.h"
#include "agent/runtime/pod_sandbox.h"
#include "agent/runtime/run_keeper.h"
#include "agent/runtime/run_records.h"
#include "agent/runtime/runtime.h"
#include "agent/runtime/termination_message.h"
#include "cgroups/cgroups.h"
#include "images/rootfs.h"
#include "isolation/container_spec.h"
#include "isolation/cri_log.h"
#include "isolation/isolation.h"
#include "sys/event_loop.h"
#include "sys/timer_queue.h"
#include "sys/unique_fd.h"

namespace kernelet::agent::runtime {

// A log pipe the CriLogWriter pumps, remembered so that it can be taken off
// the loop without draining it when the agent leaves the run to the next one.
// The inode tells whether the fd number still names the same pipe (the writer
// closes a pipe at EOF, and the number may be reused).
struct PumpedPipe {
  int fd = -1;
  dev_t dev = 0;
  ino_t ino = 0;
  static PumpedPipe of(int fd);
  bool stillOpen() const;
};

struct Instance {
  std::string id, pod_uid, name;
  images::Rootfs rootfs;
  cgroups::Cgroup cgroup;
  bool has_cgroup = false;
  isolation::Process proc;
  isolation::ContainerSpec spec;  // what it was started from: an exec runs the same way
  // The detached mounts of the spec's subPath mounts, from create() until
  // the start has handed them to the child (spec.mounts[].source_fd).
  std::vector<UniqueFd> subpath_mounts;
  bool has_spec = true;  // false: adopted, built on the first exec from spec_source
  // An adopted run's exec spec is built on its first exec (most containers
  // are never exec'd into) from the pod's spec as it was adopted: building it
  // reads and parses the image config, which made adopting a pod slower.
  struct SpecSource {
    Pod pod;
    QosClass qos = QosClass::kBestEffort;
    PodRuntimeInfo info;
    PodObjects* objects = nullptr;
  };
  std::shared_ptr<const SpecSource> spec_source;
  std::unique_ptr<isolation::CriLogWriter> log;
  // The log's pipes, or (tty) pipes[0] the terminal's master and pipes[1] none.
  PumpedPipe pipes[2];
  ContainerStdio stdio;  // stdin, the terminal, attach sessions
  int stop_signal = 15;
  // The cpu and memory its cgroup was made with: the pod worker records
  // them as applied (a resize during the start is applied after it).
  ContainerResources resources;
  // Started by a previous agent: not our child, so its exit status may have
  // to come from the keeper.
  bool adopted = false;
  RunRecord run;  // what the pod record says of this run
  std::function<void(ContainerExit)> on_exit;

  // Everything but the process, which has been reaped (or never started).
  void release(EventLoop& loop) {
    if (log) {
      log->finish(loop);  // the sessions get the last of the output
    }
    stdio.endSessions();
    if (has_cgroup) {
      if (auto r = cgroup.remove(); !r) {
        log::error("Remove container cgroup", {{"container", name}, {"err", r.error().message()}});
      }
      has_cgroup = false;
    }
    if (auto r = rootfs.remove(); !r) {
      log::error("Remove container rootfs", {{"container", name}, {"err", r.error().message()}});
    }
  }
  // The agent goes and the run stays: the pipes come off the loop undrained
  // (the keeper holds them, and the next agent pumps on from there), every fd
  // of ours closes, the cgroup and rootfs stay.
  void leave(EventLoop& loop);
  // An adopted run's stdio as its record says, with what the keeper held:
  // the pumped pipes (or master) stay in `kept`, stdin is taken. Fds that do
  // not fit the record are dropped (the log then counts as lost).
  void adoptKept(const RunRecord& r, std::optional<KeptRun>& kept);
  // The log shows attach sessions what it reads. The instance must not move.
  void tapLog() {
    if (log) {
      log->setTap([this](isolation::Stream s, std::string_view d) { stdio.tap(s, d); });
    }
  }
  // What the keeper holds for the run: its pumped pipes (or master), stdin.
  // Empty when a pumped one closed (the run cannot be kept whole).
  std::vector<int> keptFds() const {
    std::vector<int> pumped;
    for (int i = 0; i < (stdio.tty ? 1 : 2); i++) {
      if (!pipes[i].stillOpen()) {
        return {};
      }
      pumped.push_back(pipes[i].fd);
    }
    return stdio.keptFds(std::move(pumped));
  }
};

// A leftover pod being stopped (leftovers.cc).
struct LeftoverStop {
  PodRecord record;
  std::function<void()> done;
  std::vector<std::unique_ptr<Instance>> runs;  // still running when the stop began
  size_t running = 0;
  TimerQueue::Id timer = 0;
};

// "Completed", "Error" or "OOMKilled" and the shell status, from a wait(2) status.
ContainerExit exitFromWaitStatus(int wait_status, bool oom_killed);
// An ended run's message with its termination message (or log tail) added,
// as the kubelet reads it once the container exited. Its log must be complete
// (the run released).
inline void addTerminationMessage(RunRecord& run) {
  run.message = terminationMessage({.message = run.message,
                                    .exit_code = run.exit_code,
                                    .reason = run.reason,
                                    .file = run.termination_file,
                                    .fallback_to_logs = run.fallback_to_logs,
                                    .log_path = run.log_path});
}
// Once its message is recorded (or the run never ran), a run's file goes:
// the next run has a fresh one, and a retried start does not pile them up.
inline void dropTerminationFile(const RunRecord& run) {
  if (!run.termination_file.empty()) {
    ::unlink(run.termination_file.c_str());  // gone already is fine
  }
}
// The host directory of a pod's containers' termination-message files.
inline std::string terminationDir(const std::string& root_dir, const std::string& pod_uid) {
  return root_dir + "/pods/" + pod_uid + "/containers";
}
// An existing cgroup by its absolute path.
Result<cgroups::Cgroup> openCgroup(const std::string& path);
PodSandbox::Layout sandboxLayout(const PodRecord& r);

}  // namespace kernelet::agent::runtime
