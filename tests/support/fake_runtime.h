#pragma once
// An in-memory PodRuntime for unit tests: no root, no kernel. Image pulls,
// sandbox creation and container starts succeed or fail as the test scripts
// them; a container runs until the test makes it exit, or until it is
// signalled (SIGTERM exits it with 143 unless told to ignore it) or killed
// (137). Every call is recorded in order ("pull busybox", "start app",
// "signal app 15", "kill app", "destroySandbox", "adopt UID", "noteTerminating
// UID", "release app" for a remove() after leaveRunning()), and every
// asynchronous answer arrives on the loop, through the TimerQueue, as a real
// runtime's would. A previous agent's pods are scripted with leave().

#include <chrono>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "agent/runtime/runtime.h"
#include "sys/timer_queue.h"
#include "sys/unique_fd.h"

namespace kernelet::testing {

namespace rt = agent::runtime;

class FakeRuntime : public rt::PodRuntime {
 public:
  explicit FakeRuntime(TimerQueue& timers) : timers_(timers) {}
  ~FakeRuntime() override;

  // ---- scripting ----
  // The next `times` pulls of `ref` fail with `message`.
  void failPulls(const std::string& ref, int times, const std::string& message = "not found");
  // Images already in the store (used without a pull unless the policy is Always).
  void addImage(const std::string& ref) { present_.insert(ref); }
  // The next `times` starts of container `name` fail with `reason`
  // (CreateContainerError, CreateContainerConfigError or StartError).
  void failStarts(const std::string& name, int times, const std::string& reason = "StartError",
                  const std::string& message = "exec: no such file");
  void failSandbox(int times, const std::string& message = "netlink: busy");
  // Container `name` ignores its stop signal: only SIGKILL ends it.
  void ignoreStopSignal(const std::string& name) { stubborn_.insert(name); }
  // Container starts answer asynchronously (on the next loop turn), as a
  // real asynchronous start does; by default they answer within the call.
  void setAsyncStarts(bool async) { async_starts_ = async; }
  // Termination messages as the real runtime makes them: each start of a
  // container with a terminationMessagePath gets a fresh empty file under
  // `dir`/<pod uid>/<name>/, and its exit's message is read from it (and
  // from the run's log, LOG_DIR/<restartCount>.log, which the test writes)
  // with runtime::terminationMessage. Unset: no files, no messages.
  void setTerminationDir(const std::string& dir) { termination_dir_ = dir; }
  // The file of the latest start of `name` ("" if none).
  std::string terminationFile(const std::string& name) const {
    auto it = termination_files_.find(name);
    return it == termination_files_.end() ? "" : it->second;
  }
  // memory.current of container `name`'s cgroup and of every pod's (8192 and
  // 0 unless set): what a resize that lowers a memory limit is checked against.
  void setMemoryUsage(const std::string& name, uint64_t bytes) { memory_[name] = bytes; }
  void setPodMemoryUsage(uint64_t bytes) { pod_memory_ = bytes; }
  // The cpu and memory limits each container was last resized to
  // ("cpu=500m memory=128Mi"), by name; resizes are also calls ("resize app",
  // "resizePod").
  std::string resized(const std::string& name) const {
    auto it = resized_.find(name);
    return it == resized_.end() ? "" : it->second;
  }
  // The cpu and memory limits container `name`'s cgroup has now, in the same
  // form: those it was started with, or resized to since.
  std::string cgroupLimits(const std::string& name) const {
    auto it = cgroup_.find(name);
    return it == cgroup_.end() ? "" : it->second;
  }
  // The pod cgroup's cpu.max quota and memory.max as the last resizePod set
  // them ("cpu=70000 memory=268435456", "max" for none); "" before any.
  const std::string& podLimits() const { return pod_limits_; }
  // What an exec in container `name` exits with and prints.
  void setExec(const std::string& name, int exit_code, const std::string& output = "");

  // ---- attach sessions ----
  // The running container `name` writes `data` to its stdout (stream 0) or
  // stderr (1): every attached session's pipe for it gets it (a full one is
  // cut off, as the real runtime does). False when no such container runs.
  bool output(const std::string& name, int stream, const std::string& data);
  // What sessions wrote to the container's stdin so far (non-blocking);
  // `eof` (may be null) says whether its stdin is closed for good and drained.
  std::string readStdin(const std::string& name, bool* eof = nullptr);
  // Attach sessions of the running container `name` now.
  size_t sessions(const std::string& name) const;

  // ---- driving ----
  // The running container `name` exits with `code` (on the next loop turn).
  // False when no such container runs.
  bool exit(const std::string& name, int code, const std::string& reason = "");
  bool running(const std::string& name) const;
  // How many times a container of that name was started.
  int starts(const std::string& name) const;
  // The container whose PID namespace the last start of `name` was asked to
  // join (ContainerRequest::share_pid_with), "" for none.
  std::string sharedPidWith(const std::string& name) const {
    auto it = shared_pid_.find(name);
    return it == shared_pid_.end() ? "" : it->second;
  }
  // Every call so far, in order.
  const std::vector<std::string>& calls() const { return calls_; }
  // The calls that start with `prefix` ("start ", "signal "...), in order.
  std::vector<std::string> calls(const std::string& prefix) const;
  bool hasSandbox(const std::string& uid) const { return sandboxes_.contains(uid); }
  // The pod hash the last createSandbox of `uid` was given ("" if none).
  std::string sandboxHash(const std::string& uid) const {
    auto it = hashes_.find(uid);
    return it == hashes_.end() ? "" : it->second;
  }

  // ---- a previous agent's pods (live restore) ----
  // A previous agent left pod `uid` as `pod` says: adopt() of that uid hands
  // it over once. A container with a non-zero handle is left running (the fake
  // gives it a handle of its own, and exit() ends it like any other run); one
  // with handle 0 must say how it `ended`. Until adopted or stopped, the pod is
  // one of leftovers(), named `namespace_`/`name`.
  void leave(const std::string& uid, rt::AdoptedPod pod, const std::string& namespace_ = "default",
             const std::string& name = "web");
  // When the last noteTerminating() of `uid` said its SIGKILL is due.
  std::optional<std::chrono::system_clock::time_point> killAt(const std::string& uid) const;
  // leaveRunning() was called: remove() releases, it does not kill.
  bool leftRunning() const { return leaving_; }

  // ---- PodRuntime ----
  Result<rt::SandboxInfo> createSandbox(const agent::Pod& pod, agent::QosClass qos,
                                        const std::string& pod_hash) override;
  Result<void> setUpVolumes(const agent::Pod& pod, const agent::PodRuntimeInfo& info,
                            agent::PodObjects* objects) override;
  Result<bool> refreshVolumes(const agent::Pod& pod, const agent::PodRuntimeInfo& info,
                              agent::PodObjects* objects) override;
  void destroySandbox(const std::string& pod_uid, std::function<void()> done) override;
  void ensureImage(const std::string& ref, const std::string& pull_policy,
                   const Result<std::vector<images::RegistryCredentials>>& creds,
                   std::function<void()> pulling,
                   std::function<void(rt::ImageOutcome)> done) override;
  void startContainer(const rt::ContainerRequest& request,
                      std::function<void(rt::StartResult)> done) override;
  Result<void> watchExit(rt::ContainerHandle h,
                         std::function<void(rt::ContainerExit)> done) override;
  Result<void> signal(rt::ContainerHandle h, int sig) override;
  Result<void> kill(rt::ContainerHandle h) override;
  void remove(rt::ContainerHandle h) override;
  Result<std::unique_ptr<rt::ExecProcess>> exec(rt::ContainerHandle h,
                                                const std::vector<std::string>& argv,
                                                const rt::ExecIo& io,
                                                std::chrono::milliseconds setup_timeout) override;
  Result<rt::ContainerStats> stats(rt::ContainerHandle h) override;
  Result<void> resizeContainer(rt::ContainerHandle h,
                               const agent::ContainerResources& resources) override;
  Result<void> resizePod(const agent::Pod& pod) override;
  Result<uint64_t> podMemoryUsage(const std::string& pod_uid) override;
  Result<rt::AttachedIo> attach(rt::ContainerHandle h, const rt::AttachIo& io,
                                std::function<void()> ended) override;
  void detach(rt::ContainerHandle h, uint64_t session) override;
  void attachStdinEnded(rt::ContainerHandle h, uint64_t session) override;
  std::optional<rt::AdoptedPod> adopt(const agent::Pod& pod, agent::QosClass qos,
                                      const agent::PodRuntimeInfo& info,
                                      agent::PodObjects* objects) override;
  void noteTerminating(const std::string& pod_uid,
                       std::chrono::system_clock::time_point kill_at) override;
  std::vector<rt::LeftoverPod> leftovers() const override;
  void stopLeftover(const std::string& pod_uid, std::function<void()> done) override;
  void leaveRunning() override;

 private:
  struct Session {
    UniqueFd out[2];
    bool stdin = false;
    std::function<void()> ended;
  };
  struct Run {
    std::string name, pod_uid, id;
    std::function<void(rt::ContainerExit)> on_exit;
    bool exiting = false;
    bool stdin = false, stdin_once = false, tty = false;
    std::string termination_file, log_path;
    bool fallback_to_logs = false;
    UniqueFd stdin_r, stdin_w;  // its stdin, a pipe the sessions write to
    std::map<uint64_t, Session> sessions;
  };
  // The run ended or was let go: its sessions' pipes close, their `ended` runs.
  static void endSessions(Run& run);
  static std::string limitsText(const agent::ContainerResources& resources);
  struct ExecResult {
    int code = 0;
    std::string output;
  };
  void exitLater(rt::ContainerHandle h, int code, const std::string& reason);
  rt::ContainerHandle find(const std::string& name) const;

  TimerQueue& timers_;
  std::vector<std::string> calls_;
  std::set<std::string> present_, stubborn_, sandboxes_;
  std::map<std::string, std::string> hashes_;  // uid -> pod hash, from createSandbox
  std::map<std::string, std::pair<int, std::string>> pull_failures_;
  std::map<std::string, std::vector<std::pair<std::string, std::string>>> start_failures_;
  int sandbox_failures_ = 0;
  std::string sandbox_error_;
  std::map<std::string, ExecResult> execs_;
  std::map<std::string, int> starts_;
  std::map<std::string, uint64_t> memory_;
  std::map<std::string, std::string> resized_, cgroup_;
  std::string pod_limits_;
  uint64_t pod_memory_ = 0;
  std::map<std::string, std::string> shared_pid_;
  std::string termination_dir_;
  std::map<std::string, std::string> termination_files_;
  std::map<rt::ContainerHandle, Run> runs_;
  std::vector<TimerQueue::Id> pending_;  // answers not yet given: cancelled on destruction
  struct Left {
    rt::AdoptedPod pod;
    std::string namespace_, name;
  };
  std::map<std::string, Left> left_;  // by pod uid: not adopted yet
  std::map<std::string, std::chrono::system_clock::time_point> kill_at_;
  bool leaving_ = false;
  bool async_starts_ = false;
  rt::ContainerHandle next_ = 1;
  uint64_t next_session_ = 1;
};

}  // namespace kernelet::testing
