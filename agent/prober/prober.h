#pragma once
// One run of a container probe, on the agent's loop and bounded by the
// probe's timeout, as the kubelet's prober runs them:
//   exec      the command in the container (its namespaces, cgroup, user,
//             capabilities, seccomp), success on exit code 0;
//   httpGet   GET from the node to the pod's IP, success on 200-399 (HTTPS:
//             the pod's certificate is not verified, as with the kubelet);
//   tcpSocket a TCP connect to the pod's IP, success when it is accepted;
//   grpc      grpc.health.v1.Health/Check over HTTP/2 to the pod's IP,
//             success when it answers SERVING (grpc_health.h).
// The failure messages are the kubelet's ("HTTP probe failed with statuscode:
// 500", "dial tcp 10.88.0.5:8080: connect: connection refused").

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "agent/model/pod.h"
#include "agent/runtime/runtime.h"
#include "sys/event_loop.h"
#include "sys/timer_queue.h"

namespace kernelet::agent {

struct ProbeOutcome {
  bool success = false;
  std::string message;  // why it failed (or what an exec printed)
  int exit_code = -1;   // exec: what the command exited with; -1 when it never ran to its end
};

struct ProbeTarget {
  std::string ip;  // where httpGet and tcpSocket go (the pod's, or the node's)
  // exec: starts `argv` in the container with its output to `out_fd`. The
  // start runs on the agent's loop thread, so its setup (until execve) is
  // bounded by `setup_timeout`, the probe's own timeoutSeconds: a container
  // that starves its exec child of CPU stalls the node for no longer than that.
  std::function<Result<std::unique_ptr<runtime::ExecProcess>>(
      const std::vector<std::string>& argv, int out_fd, std::chrono::milliseconds setup_timeout)>
      exec;
  // What an exec keeps of the command's output: a probe's 10 KiB as the
  // kubelet's, more for the node server's /run.
  size_t max_output = 10 * 1024;
  // httpGet: the User-Agent unless a header sets one (lifecycle hooks send
  // kube-lifecycle/, as the kubelet's), and whether any HTTP answer is a
  // success: the kubelet's hook runner looks at no status code.
  std::string user_agent = "kube-probe/1.35";
  bool any_status = false;
};

class ProbeRun {
 public:
  virtual ~ProbeRun() = default;  // cancels a run still going (an exec is killed)
};

// `done` runs once, on the loop, unless the run is destroyed first; the run
// may be destroyed from within `done`. A probe.timeout_seconds of 0 sets no
// deadline (lifecycle hooks: the caller bounds them).
std::unique_ptr<ProbeRun> startProbe(EventLoop& loop, TimerQueue& timers, const Probe& probe,
                                     const ProbeTarget& target,
                                     std::function<void(ProbeOutcome)> done);

}  // namespace kernelet::agent
