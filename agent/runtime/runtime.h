#pragma once
// The runtime seam: everything the pod workers do to the kernel for a pod goes
// through PodRuntime - the sandbox (cgroup, network, IPC/UTS, volumes), images,
// container processes (start, signal, kill, exit, exec, stats) and adoption of
// what a previous agent left running. The types here know pods and containers
// by ids and handles, never by isolation::, cgroups::, netns:: or images::
// types: the real implementation (kernel_runtime.h) is the only code of the
// agent that includes those, and a fake one (tests/support/fake_runtime.h)
// lets unit tests drive a pod through every path without root.
//
// Every callback runs on the agent's loop thread, never from within the call
// that was given it unless that call says so, so a pod worker may destroy
// itself or start again from a callback.

#include <chrono>
#include <cstdint>
#include <ctime>
#include <expected>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "agent/model/field_refs.h"
#include "agent/model/pod.h"
#include "agent/model/qos.h"
#include "agent/runtime/process_user.h"
#include "agent/sources/pod_objects.h"
#include "images/registry.h"
#include "sys/result.h"
#include "sys/unique_fd.h"

namespace kernelet::agent::runtime {

// The time now as the API writes it: 2026-01-02T03:04:05Z.
inline std::string nowRfc3339() {
  time_t t = ::time(nullptr);
  tm utc{};
  ::gmtime_r(&t, &utc);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &utc);
  return buf;
}

// A container run the runtime knows; 0 is never a handle.
using ContainerHandle = uint64_t;

struct SandboxInfo {
  std::string ip;  // the pod's address (the node's for hostNetwork pods)
  // Its network namespace (a bind-mounted file, where port-forward dials);
  // empty for hostNetwork pods: the node's.
  std::string netns_path;
  // Made just now with a resolv.conf cut to the resolver's limits: the
  // kubelet's DNSConfigForming warnings, one event each.
  std::vector<std::string> dns_warnings;
};

// An image ready to run.
struct ImageInfo {
  std::string name;  // as stored, e.g. docker.io/library/busybox:latest
  std::string id;    // the kubelet's imageID: repo@sha256:...
};

struct ImageOutcome {
  bool ok = false;
  bool pulled = false;  // ok: it came from a registry now, not from the store
  ImageInfo image;
  int64_t size = 0;                      // pulled: the image's bytes (its layers, compressed)
  std::chrono::nanoseconds pull_time{};  // pulled: the pull's own time, its queueing not counted
  // Not ok: the kubelet's waiting reason (InvalidImageName, ErrImageNeverPull,
  // ErrImagePull) and the error.
  std::string reason, message;
};

// What a container start needs from the pod worker; the pointers must stay
// valid until the start's callback ran.
struct ContainerRequest {
  const Pod* pod = nullptr;
  const Container* container = nullptr;
  QosClass qos = QosClass::kBestEffort;
  PodRuntimeInfo info;
  PodObjects* objects = nullptr;  // null for static pods
  // The Services for the environment; null without an API server.
  const ServiceLister* services = nullptr;
  ImageInfo image;
  int restart_count = 0;  // names the log file: LOG_DIR/<restartCount>.log
  std::string log_dir;
  ContainerHandle share_pid_with = 0;  // shareProcessNamespace: a running container's pid ns
};

struct StartedContainer {
  ContainerHandle handle = 0;
  std::string id;          // 64 hex digits
  std::string started_at;  // RFC 3339
  int pid = 0;
  int stop_signal = 15;  // lifecycle.stopSignal, the image's StopSignal, or SIGTERM
  // What its cgroup was made with: the container's resources when the start
  // was asked for, which a resize may have changed since.
  ContainerResources resources;
  ProcessUser user;  // who its process started as
};

struct StartFailure {
  // CreateContainerConfigError (the spec) or CreateContainerError (the node):
  // nothing ran. StartError: the process was made and failed before its exec;
  // it counts as a run (with `id`).
  std::string reason, message, id;
};

using StartResult = std::expected<StartedContainer, StartFailure>;

struct ContainerExit {
  int exit_code = 0;   // 128+N for signal N
  std::string reason;  // Completed, Error, OOMKilled
  std::string message;
  bool oom_killed = false;
};

struct ContainerStats {
  uint64_t cpu_usage_usec = 0;
  uint64_t memory_working_set = 0;
  uint64_t memory_current = 0;
};

// How a run ended, as the runtime recorded it (it saw the exit, or the
// holder did while no agent was there: see run_keeper.h).
struct RunEnd {
  std::string id;  // the run's container id
  ContainerExit exit;
  std::string started_at, finished_at;  // RFC 3339
};

// A container of a pod that a previous agent left, found again by adopt().
struct AdoptedContainer {
  std::string name;  // the container's name in the pod
  std::string id;    // its latest run
  int restart_count = 0;
  std::string started_at;  // RFC 3339
  ImageInfo image;
  int stop_signal = 15;
  std::optional<ProcessUser> user;  // as recorded; none from an older agent
  // Non-zero: the run is still going and is this runtime's now, as if
  // startContainer had answered it (watchExit, signal, kill, exec work on it).
  ContainerHandle handle = 0;
  // handle 0: how the run ended (while no agent watched it, or before the
  // previous agent went). A code that could not be learnt reads exit code 137,
  // reason ContainerStatusUnknown, as the kubelet reports a container it lost.
  std::optional<RunEnd> ended;
  std::optional<RunEnd> previous;  // the run before, for lastState
};

struct AdoptedPod {
  std::string pod_hash;  // what createSandbox was given
  SandboxInfo sandbox;
  std::vector<AdoptedContainer> containers;
  // The previous agent was terminating the pod (noteTerminating): SIGKILL of
  // what still runs is due at this time.
  std::optional<std::chrono::system_clock::time_point> kill_at;
};

// A pod a previous agent left that no adopt() has taken.
struct LeftoverPod {
  std::string uid, namespace_, name;
};

// The stdio of an exec (PodRuntime::exec). The descriptors are the caller's:
// the runtime dups them into the process and never closes them, so the
// caller closes its copies once exec() returned.
struct ExecIo {
  // The process's 0, 1 and 2; -1 is /dev/null. Must stay -1 with tty.
  int stdin_fd = -1;
  int stdout_fd = -1;
  int stderr_fd = -1;
  // A pseudo-terminal made in the container (its devpts: `tty` prints
  // /dev/pts/N), the process's 0, 1, 2 and controlling terminal; the process
  // is its session's leader. Its master is sent over `console_socket` (one
  // end of a socketpair(AF_UNIX, SOCK_STREAM); the other end receives it with
  // isolation::receiveTerminal: SCM_RIGHTS, the data the terminal's name), as
  // OCI's --console-socket. The master is sent before the command is
  // exec'ed, so it is there by started(ok); a child that fails before it
  // closes its end without one (receiveTerminal then reports end of file,
  // once the caller closed its copy of that end too).
  bool tty = false;
  int console_socket = -1;
  // With tty: the window before exec when both are non-zero; later ones go
  // to the master (isolation::setWindowSize).
  uint16_t rows = 0, cols = 0;
  // Optional, on the loop, once: the command was exec'ed (ok) or its setup
  // failed (the error, e.g. exec `nope`: No such file or directory). Not
  // called when exec() itself fails, nor once the ExecProcess is destroyed.
  std::function<void(Result<void>)> started;

  // What an exec probe gets: stdout and stderr to `out_fd`, stdin /dev/null.
  static ExecIo output(int out_fd) {
    ExecIo io;
    io.stdout_fd = io.stderr_fd = out_fd;
    return io;
  }
};

// A process started in a running container (an exec probe, kubectl exec). Destroying it kills and
// reaps it if it has not been reaped.
class ExecProcess {
 public:
  virtual ~ExecProcess() = default;
  // Readable (EPOLLIN) once the process has exited: put it on the EventLoop.
  virtual int exitFd() const = 0;
  // Once exitFd() is readable: its shell status (128+N for signal N).
  virtual Result<int> reap() = 0;
};

// An attach session's side of a container's stdio (PodRuntime::attach).
struct AttachIo {
  // Write ends of the session's pipes for the container's stdout and stderr
  // (-1: not wanted). The runtime dups them; from now on each chunk of output
  // it reads from the container for its log is also written to them, without
  // blocking: a pipe that cannot take a whole chunk is closed (the session is
  // cut off from that stream), the container and its log go on.
  int stdout_fd = -1, stderr_fd = -1;
  bool stdin = false;  // the session sends stdin: it gets the container's
};

struct AttachedIo {
  uint64_t session = 0;  // for detach()
  // With AttachIo::stdin: a dup of the container's stdin pipe's write end,
  // or of its terminal's master.
  UniqueFd stdin_fd;
  UniqueFd terminal_fd;  // a container with a terminal: a dup of its master
};

class PodRuntime {
 public:
  virtual ~PodRuntime() = default;

  // ---- the pod's sandbox, keyed by pod uid --------------------------------
  // All or nothing; calling it again after a success is a no-op returning the same.
  // `pod_hash` (the agent's hash of the pod's spec) is kept for adopt(); a
  // call for a sandbox that exists (an adopted pod replaced from a new spec)
  // records the new one.
  virtual Result<SandboxInfo> createSandbox(const Pod& pod, QosClass qos,
                                            const std::string& pod_hash) = 0;
  virtual Result<void> setUpVolumes(const Pod& pod, const PodRuntimeInfo& info,
                                    PodObjects* objects) = 0;
  // Rewrites projected volumes whose sources changed: true when a file changed.
  virtual Result<bool> refreshVolumes(const Pod& pod, const PodRuntimeInfo& info,
                                      PodObjects* objects) = 0;
  // Removes the sandbox and the volumes (whatever of them exists); errors are
  // logged. `done` (may be empty) runs once nothing of them is left; it may
  // run before destroySandbox returns.
  virtual void destroySandbox(const std::string& pod_uid, std::function<void()> done) = 0;

  // ---- images -------------------------------------------------------------
  // Finds `ref` or pulls it, as `pull_policy` (Always, IfNotPresent, Never or
  // empty for the default) says, with `creds` (the pod's pull secrets'
  // matches, tried in order before the node's; an error, such as a malformed
  // secret, fails a pull when one is needed, with that message). `pulling` runs
  // (synchronously) when a pull starts; `done` runs once, synchronously when
  // no pull was needed.
  virtual void ensureImage(const std::string& ref, const std::string& pull_policy,
                           const Result<std::vector<images::RegistryCredentials>>& creds,
                           std::function<void()> pulling,
                           std::function<void(ImageOutcome)> done) = 0;

  // ---- containers ---------------------------------------------------------
  // Creates and starts one container of a pod whose sandbox and volumes are
  // set up. `done` runs once with the handle or the failure; it may run before
  // startContainer returns (the start is synchronous in the real runtime today).
  virtual void startContainer(const ContainerRequest& request,
                              std::function<void(StartResult)> done) = 0;
  // `done` runs once when the container exited, after the runtime released
  // what it held for it; the handle is invalid from then on.
  virtual Result<void> watchExit(ContainerHandle h, std::function<void(ContainerExit)> done) = 0;
  virtual Result<void> signal(ContainerHandle h, int sig) = 0;
  // SIGKILL to every process of the container (its cgroup), now.
  virtual Result<void> kill(ContainerHandle h) = 0;
  // Last resort (the worker is going away): kills the container, reaps it and
  // releases it without calling its exit callback.
  virtual void remove(ContainerHandle h) = 0;
  // `argv` in the container (its namespaces, cgroup, user, capabilities,
  // seccomp; not dumpable until execve), its stdio as `io` says; the setup
  // until execve is bounded by `setup_timeout`.
  virtual Result<std::unique_ptr<ExecProcess>> exec(ContainerHandle h,
                                                    const std::vector<std::string>& argv,
                                                    const ExecIo& io,
                                                    std::chrono::milliseconds setup_timeout) = 0;
  virtual Result<ContainerStats> stats(ContainerHandle h) = 0;
  // In-place resize (agent/lifecycle/pod_resize.cc): the running container's
  // cgroup takes the cpu.weight, cpu.max and memory.max of `resources`, with
  // no restart. Limits the node does not enforce (--limits-unenforced) are
  // not written, as at a start.
  virtual Result<void> resizeContainer(ContainerHandle h, const ContainerResources& resources) = 0;
  // The pod cgroup takes the limits of `pod`'s containers as allocated now.
  virtual Result<void> resizePod(const Pod& pod) = 0;
  // memory.current of the pod cgroup: the kubelet does not lower the pod's
  // memory limit below it.
  virtual Result<uint64_t> podMemoryUsage(const std::string& pod_uid) = 0;
  // Joins the stdio container `h` was started with (its spec's stdin and
  // tty). `ended` runs once, on the loop, when the run ended (after its last
  // output went to the session's pipes, which are closed then) or the runtime
  // let it go (remove, leaveRunning), or attachStdinEnded() ended the
  // session; never after detach(), never within attach(). An error: the run
  // has no stdin, or `h` is not running. After stdinOnce closed its stdin, a
  // session asking for stdin joins without it (no stdin_fd), as containerd's.
  virtual Result<AttachedIo> attach(ContainerHandle h, const AttachIo& io,
                                    std::function<void()> ended) = 0;
  // The session ends: its pipes close, and if it sent stdin to a container
  // with stdinOnce and no terminal, the container's stdin is closed for good
  // (containerd's rule). A session or run that already ended: nothing.
  virtual void detach(ContainerHandle h, uint64_t session) = 0;
  // The session's client ended its stdin, and the session closed its
  // stdin_fd. As containerd's attach: a container with stdinOnce and no
  // terminal has its stdin closed for good (it reads EOF; the session keeps
  // its output until the run ends); any other session ends now (its pipes
  // close and its `ended` runs), as does one without output. A session that
  // got no stdin, or one that ended: nothing.
  virtual void attachStdinEnded(ContainerHandle h, uint64_t session) = 0;

  // ---- a previous agent's pods (live restore) -----------------------------
  // Takes over what a previous agent left of the pod, if anything: the sandbox
  // and volumes become this runtime's, as createSandbox and setUpVolumes would
  // have made them, and each container's latest run (and the one before) is
  // reported. Empty: nothing was left, or it could not be taken over (it is
  // removed then, and the pod starts anew).
  virtual std::optional<AdoptedPod> adopt(const Pod& pod, QosClass qos, const PodRuntimeInfo& info,
                                          PodObjects* objects) = 0;
  // The pod is being terminated: SIGKILL of what remains is due at `kill_at`,
  // for an agent that adopts the pod before then.
  virtual void noteTerminating(const std::string& pod_uid,
                               std::chrono::system_clock::time_point kill_at) = 0;
  // Pods a previous agent left that adopt() has not taken.
  virtual std::vector<LeftoverPod> leftovers() const = 0;
  // Stops a leftover pod (its containers' stop signals, what remains of its
  // grace period, SIGKILL) and removes it; `done` runs once nothing is left.
  virtual void stopLeftover(const std::string& pod_uid, std::function<void()> done) = 0;
  // The agent is exiting and leaving its pods running for the next one: from
  // now on remove() and the destructor release a container without killing
  // it, and destroySandbox is not called.
  virtual void leaveRunning() = 0;
};

}  // namespace kernelet::agent::runtime
