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

// Whether container `name` of the pod runs now (on the server thread, as
// quick as PodExists). No: 500 `container not found ("NAME")` before any
// upgrade, as the kubelet's exec and attach (its findContainer looks among
// the runtime's running containers only: one not started yet, one that
// exited, and a name the pod does not have all answer so).
using ContainerRunning = std::function<bool(const PodRef&, const std::string& name)>;

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

// Attach (`kubectl attach`, `run -it`, `debug -it`) joins the stdio a
// container was started with: its spec's `stdin` (a pipe the agent holds the
// write end of) and `tty` (a terminal made in the container, whose master the
// agent holds; all its output is stdout), while its output goes on to the
// CRI log as before.
struct AttachRequest {
  PodRef pod;
  std::string container;
  bool stdin = false;  // the client sends stdin
  bool tty = false;    // the client asked for a terminal
  // Write ends of pipes the agent copies the container's output into from
  // now on (what it writes after the attach, as the kubelet: no replay);
  // empty when the client did not ask for that stream. The agent never
  // blocks on them: a reader that falls a pipe's worth behind is cut off
  // (its pipe closed), the container and its log are not slowed.
  UniqueFd stdout_fd, stderr_fd;
};

struct Attached {
  // With stdin: the container's stdin (a dup of its stdin pipe's write end,
  // or of its terminal's master). The endpoint closes it when the client's
  // stdin ends, then calls `stdin_ended`. Empty when stdinOnce closed the
  // container's stdin before: what the client sends is dropped.
  UniqueFd stdin_fd;
  // A container with a terminal: its master, for window size changes.
  UniqueFd terminal_fd;
  // Once, on any thread, when the session ends for any reason: the agent
  // stops copying output to the session's pipes (closing them) and, for a
  // `stdinOnce` container, closes the container's stdin for good.
  std::function<void()> detach;
  // Once, on any thread, when the client's stdin ended and stdin_fd was
  // closed: containerd's rule. A `stdinOnce` container without a terminal
  // has its stdin closed for good (it reads EOF, so `echo x | kubectl run -i
  // -- cat` ends) and the session keeps its output until the run ends; any
  // other session ends (its output pipes close, or `ended` runs).
  std::function<void()> stdin_ended;
};

struct AttachHooks {
  // Joined, or why not (no such container, not running, no stdin or no
  // terminal to join): the message is what the user sees.
  std::function<void(Result<Attached>)> started;
  // After started(ok): the container's run ended; the output pipes were
  // closed after the last of its output.
  std::function<void()> ended;
};

// Called on the server thread; the hooks run on any thread, each once, in
// order.
using AttachStarter = std::function<void(AttachRequest, AttachHooks)>;

// Connects to TCP `port` on localhost in the pod's network namespace.
// Called on the server thread; `done` runs on any thread with the connected
// socket, or an error whose message the error stream carries (the kubelet's
// "failed to connect to localhost:PORT inside namespace ...: connection refused").
using PortDialer =
    std::function<void(const PodRef&, uint16_t port, std::function<void(Result<UniqueFd>)> done)>;

}  // namespace kernelet::agent::streams
