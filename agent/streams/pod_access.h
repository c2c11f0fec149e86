#pragma once
// What the stream endpoints need of the agent, as functions the agent
// (agent/app/agent_server.cc) fills in, so agent/streams knows nothing of
// pod workers or the runtime and its tests use fakes (a fork/exec on the
// host, a loopback listener).

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "sys/result.h"
#include "sys/unique_fd.h"

namespace kernelet::agent::streams {

struct PodRef {
  std::string namespace_, name;
  std::string uid;  // empty: any (the path had no UID)
};

// Whether the pod exists on this node now (called on the server thread, must
// be quick: the agent answers from its read-only snapshot). No: 404 "pod does
// not exist" before any upgrade, as the kubelet.
using PodExists = std::function<bool(const PodRef&)>;

struct ExecRequest {
  PodRef pod;
  std::string container;
  std::vector<std::string> command;
  bool tty = false;
  // The child's descriptors 0, 1, 2; an empty one is /dev/null. With tty they
  // are empty: the child gets a terminal made in the container (its devpts),
  // with the terminal as controlling tty and as 0, 1 and 2.
  UniqueFd stdin_fd, stdout_fd, stderr_fd;
  // With tty: the child's end of a socketpair(AF_UNIX, SOCK_STREAM); the
  // terminal's master comes back over the other end (SCM_RIGHTS), as with
  // OCI's --console-socket.
  UniqueFd console_socket;
};

struct ExecHooks {
  // The command was exec'ed in the container, or why not (no such container,
  // not running, no such file): the message is what the user sees.
  std::function<void(Result<void>)> started;
  // After started(ok): its exit status, 128+N for a signal N.
  std::function<void(Result<int>)> exited;
};

// Starts an exec as a probe's runs: the container's namespaces, cgroup, user,
// capabilities, no_new_privs, seccomp; not dumpable until its execve. Called
// on the server thread; the hooks run on any thread, each once, in order.
using ExecStarter = std::function<void(ExecRequest, ExecHooks)>;

// Connects to TCP `port` on localhost in the pod's network namespace.
// Called on the server thread; `done` runs on any thread with the connected
// socket, or an error whose message the error stream carries (the kubelet's
// "failed to connect to localhost:PORT inside namespace ...: connection refused").
using PortDialer =
    std::function<void(const PodRef&, uint16_t port, std::function<void(Result<UniqueFd>)> done)>;

}  // namespace kernelet::agent::streams
