#pragma once
// What /exec and /attach share before their sessions (remote_command.h): the
// kubelet's query for the streams (remotecommand.NewOptions), the answers it
// gives before any upgrade (400 for a bad query, 404 for a pod that is not
// here, 500 for a container that does not run), and the upgrade itself.

#include <chrono>
#include <expected>
#include <functional>
#include <memory>
#include <string>

#include "agent/server/handler.h"
#include "agent/streams/pod_access.h"
#include "agent/streams/remote_command.h"
#include "agent/streams/upgrade.h"

namespace kernelet::agent::streams {

// Pod and container from the path /ENDPOINT/NS/POD/[UID/]CONTAINER, and the
// streams: input, output, error, tty as the API server sends them, or
// PodExecOptions' / PodAttachOptions' stdin, stdout, stderr for clients that
// call the node directly. 400 "you must specify at least 1 of stdin, stdout,
// stderr", or naming the parameter with a bad value. tty drops stderr.
std::expected<RemoteCommandOptions, UpgradeError> remoteCommandStreams(const server::Request& req,
                                                                       const std::string& endpoint);

using ParseOptions =
    std::function<std::expected<RemoteCommandOptions, UpgradeError>(const server::Request&)>;
// Runs the session on the negotiated transport (runRemoteCommand, runRemoteAttach).
using RunSession = std::function<void(std::shared_ptr<Transport>, const std::string& protocol,
                                      RemoteCommandOptions)>;

// Binds a session's runner (runRemoteCommand, runRemoteAttach) to its
// starter and `done`.
template <typename Starter>
RunSession sessionRunner(void (*run)(std::shared_ptr<Transport>, const std::string&,
                                     RemoteCommandOptions, Starter, RemoteCommandDone),
                         Starter starter, RemoteCommandDone done) {
  return [run, starter = std::move(starter), done = std::move(done)](
             std::shared_ptr<Transport> transport, const std::string& protocol,
             RemoteCommandOptions options) {
    run(std::move(transport), protocol, std::move(options), starter, done);
  };
}

// A handler: the options (or their 400), 404 "pod does not exist", 500
// `container not found ("NAME")`, then the upgrade with `protocols` and the
// session. `what` names it in the logs.
UpgradeHandler remoteCommandHandler(std::string what, ParseOptions parse, PodExists pod_exists,
                                    ContainerRunning container_running, Protocols protocols,
                                    std::chrono::milliseconds stream_creation_timeout,
                                    RunSession run);

}  // namespace kernelet::agent::streams
