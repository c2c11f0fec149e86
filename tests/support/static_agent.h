#pragma once
// A standalone `kernelet run --pod-manifest-path` for privileged tests that
// share one agent between many cases: its own dirs under /tmp and /run, a
// cgroup root of its own, fixture images imported, pods watched through the
// status files the agent writes and read through `kernelet logs`, as a user
// would.

#include <signal.h>
#include <sys/types.h>

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "agent/status/pod_status.h"

namespace kernelet::testing {

struct CommandResult {
  int status = -1;
  std::string out, err;
};

// Runs args (args[0] an absolute path) to its end, capturing stdout and stderr.
CommandResult runCommand(std::vector<std::string> args);

// How `StaticAgent::stopWithin` ended.
struct StopResult {
  int status = -1;  // the waitpid status; -1 if the agent was not running
  std::chrono::steady_clock::duration took{};
  bool killed = false;  // it outlived the limit and got SIGKILL
};

class StaticAgent {
 public:
  // `name` makes the dirs and the cgroup root unique (with this process's pid).
  StaticAgent(const std::string& binary, const std::string& name);
  ~StaticAgent();
  StaticAgent(const StaticAgent&) = delete;
  StaticAgent& operator=(const StaticAgent&) = delete;

  // `kernelet images import` of an OCI layout directory; the error output if it fails.
  std::optional<std::string> importImage(const std::string& layout);
  void writeManifest(const std::string& file, const std::string& yaml);
  // `verbosity` is the agent's -v: what its log (and so a test) sees. The
  // agent runs with --stop-pods-on-exit, so that stop() leaves nothing behind.
  void start(std::vector<std::string> extra = {}, int verbosity = 3);
  // start() as under a service manager: a stop signal leaves the pods running
  // for the next agent. `binary` (empty: the one given) may be another build.
  void startLeavingPods(std::vector<std::string> extra = {}, int verbosity = 3,
                        const std::string& binary = "");
  // Sends `sig` and waits (up to `limit`, then SIGKILL) for the agent's exit
  // status; -1 if not running.
  int signal(int sig, std::chrono::seconds limit = std::chrono::seconds(120));
  // SIGTERM (every pod terminates first), then the exit status; -1 if not running.
  int stop();
  // stop() that waits `limit` before SIGKILL and says how long it took.
  StopResult stopWithin(std::chrono::seconds limit, int sig = SIGTERM);

  std::optional<agent::PodSummary> pod(const std::string& name) const;
  // Waits until `ok` holds for the pod; nullopt (after `timeout`) if it never did.
  std::optional<agent::PodSummary> waitFor(const std::string& name,
                                           const std::function<bool(const agent::PodSummary&)>& ok,
                                           std::chrono::seconds timeout) const;
  static const agent::ContainerStatus* statusOf(const agent::PodSummary& p,
                                                const std::string& container);
  // `kernelet logs` of a container as it is now.
  CommandResult logs(const std::string& pod, const std::string& container) const;
  // `kernelet logs` of a container once it holds `needle`, or as it is after `timeout`.
  CommandResult logsWith(const std::string& pod, const std::string& container,
                         const std::string& needle, std::chrono::seconds timeout) const;
  // The host pid of a running container, from the agent's "Container started" line.
  std::optional<pid_t> containerPid(const std::string& pod, const std::string& container) const;
  std::string log() const;

  const std::string& base() const { return base_; }
  const std::string& root() const { return root_; }
  // The --run-dir (tmpfs state: namespaces, the holder's socket).
  const std::string& runDir() const { return run_; }
  // The --pod-log-dir: the containers' CRI log files.
  const std::string& logDir() const { return logs_; }
  // The agent's pid while it runs, else -1.
  pid_t pid() const { return pid_; }
  // The agent's top cgroup, e.g. /sys/fs/cgroup/kernelet-escape-123.
  std::string cgroupTop() const { return "/sys/fs/cgroup" + cgroup_root_; }

 private:
  std::string binary_, base_, root_, manifests_, logs_, run_, cgroup_root_;
  pid_t pid_ = -1;
};

}  // namespace kernelet::testing
