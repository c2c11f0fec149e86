#include "agent/streams/attach_endpoint.h"

#include "agent/streams/exec_endpoint.h"
#include "agent/streams/remote_command_endpoint.h"

namespace kernelet::agent::streams {

Protocols attachProtocols() { return execProtocols(); }

std::expected<RemoteCommandOptions, UpgradeError> attachOptions(const server::Request& req) {
  return remoteCommandStreams(req, "attach");
}

UpgradeHandler attachHandler(PodExists pod_exists, ContainerRunning container_running,
                             AttachStarter starter,
                             std::chrono::milliseconds stream_creation_timeout,
                             RemoteCommandDone done) {
  return remoteCommandHandler("attach", attachOptions, std::move(pod_exists),
                              std::move(container_running), attachProtocols(),
                              stream_creation_timeout,
                              sessionRunner(runRemoteAttach, std::move(starter), std::move(done)));
}

}  // namespace kernelet::agent::streams
