#include "agent/streams/exec_endpoint.h"

#include "agent/streams/remote_command_endpoint.h"

namespace kernelet::agent::streams {

Protocols execProtocols() {
  return Protocols{
      .spdy = {"v4.channel.k8s.io", "v3.channel.k8s.io", "v2.channel.k8s.io", "channel.k8s.io"},
      .websocket = {"v5.channel.k8s.io", "v4.channel.k8s.io", "v4.base64.channel.k8s.io",
                    "v3.channel.k8s.io", "v2.channel.k8s.io", "channel.k8s.io",
                    "base64.channel.k8s.io"}};
}

ChannelPlan execChannelPlan(const RemoteCommandOptions& o) {
  ChannelPlan plan;
  if (o.use_stdin) {
    plan.channels.push_back({0, StreamHeaders{.type = "stdin"}});
  }
  if (o.use_stdout) {
    plan.channels.push_back({1, StreamHeaders{.type = "stdout"}});
  }
  if (o.use_stderr) {
    plan.channels.push_back({2, StreamHeaders{.type = "stderr"}});
  }
  plan.channels.push_back({3, StreamHeaders{.type = "error"}});
  plan.channels.push_back({4, StreamHeaders{.type = "resize"}});
  return plan;
}

std::expected<RemoteCommandOptions, UpgradeError> execOptions(const server::Request& req) {
  auto o = remoteCommandStreams(req, "exec");
  if (!o) {
    return o;
  }
  o->command = req.query.all("command");
  if (o->command.empty()) {
    return std::unexpected(
        UpgradeError{400, "you must specify at least one command for the container"});
  }
  return o;
}

UpgradeHandler execHandler(PodExists pod_exists, ContainerRunning container_running,
                           ExecStarter starter, std::chrono::milliseconds stream_creation_timeout,
                           RemoteCommandDone done) {
  return remoteCommandHandler("exec", execOptions, std::move(pod_exists),
                              std::move(container_running), execProtocols(),
                              stream_creation_timeout,
                              sessionRunner(runRemoteCommand, std::move(starter), std::move(done)));
}

}  // namespace kernelet::agent::streams
