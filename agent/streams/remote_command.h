#pragma once
// One exec or attach over an upgraded connection, whatever its framing (SPDY
// or WebSocket, transport.h): waits for the streams the options call for,
// then
// - exec: starts the command through the agent's ExecStarter (pod_access.h)
//   with pipes, or with a terminal whose master comes back over a console
//   socket; the session ends when the process exited and its output drained;
// - attach: joins the container's stdio through the agent's AttachStarter
//   with output pipes made here; the session ends when those pipes reach EOF
//   (the container's run ended) or the client goes, and calls the Attached's
//   `detach` once then;
// pumps stdin to the process or container and its output to the client,
// applies window sizes from the resize stream, and at the end writes the
// error stream the way the kubelet does (exec_status.h) and closes the
// connection. The shared part is remote_command_session.h.
//
// Memory stays bounded whatever the peers do: one chunk of output per stream
// is read only after the transport sent the previous one, and stdin bytes
// are reported consumed() only once written on, so the transport (which lets
// a bounded number of unconsumed bytes in) slows the client.
//
// Threads: everything runs on transport->executor() (the node server's
// thread); the starter's hooks may come from anywhere and are posted there.

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "agent/streams/exec_status.h"
#include "agent/streams/pod_access.h"
#include "agent/streams/transport.h"

namespace kernelet::agent::streams {

// The kubelet's streaming DefaultStreamCreationTimeout: how long a client
// (SPDY) has to open the streams it asked for.
inline constexpr std::chrono::milliseconds kStreamCreationTimeout = std::chrono::seconds(30);

struct RemoteCommandOptions {
  PodRef pod;
  std::string container;
  std::vector<std::string> command;
  // Which streams the client asked for. With tty, stderr is dropped (the
  // terminal merges it into stdout), as the kubelet does.
  bool use_stdin = false, use_stdout = false, use_stderr = false, tty = false;
  // The connection is WebSocket: the kubelet then tells the client it is
  // ready with an empty message on the lowest writable channel.
  bool websocket = false;
  std::chrono::milliseconds stream_creation_timeout = kStreamCreationTimeout;
};

// Runs once all is over: the connection closed and the process reaped (or
// never started; for an attach: the starter answered). `outcome` is what the error stream said (or
// would have).
using RemoteCommandDone = std::function<void(const ExecOutcome& outcome)>;

// Starts `transport` (not started yet) for the negotiated `protocol`
// ("v5.channel.k8s.io", "v4.channel.k8s.io", ..., "channel.k8s.io",
// "base64.channel.k8s.io"). The command keeps itself alive until done.
void runRemoteCommand(std::shared_ptr<Transport> transport, const std::string& protocol,
                      RemoteCommandOptions options, ExecStarter starter,
                      RemoteCommandDone done = {});

// The same for an attach (options.command is not used). The output pipes'
// write ends in the AttachRequest are non-blocking. Attached::stdin_fd is
// written with non-blocking I/O, which sets O_NONBLOCK on its open file
// description (shared with the dups it was made from). The outcome is
// Success (kExited, 0) when the attach ended cleanly, or a failure with the
// starter's message ("error attaching to container: WHY" in the status).
void runRemoteAttach(std::shared_ptr<Transport> transport, const std::string& protocol,
                     RemoteCommandOptions options, AttachStarter starter,
                     RemoteCommandDone done = {});

}  // namespace kernelet::agent::streams
