#pragma once
// /exec/NS/POD/[UID/]CONTAINER: the kubelet's query (command repeated;
// input, output, error, tty, and PodExecOptions' stdin, stdout, stderr for
// clients that call the node directly), its 400 and 404 answers before any
// upgrade, then the upgrade (SPDY or WebSocket) and the remote command over it.

#include <chrono>
#include <expected>

#include "agent/server/handler.h"
#include "agent/streams/pod_access.h"
#include "agent/streams/remote_command.h"
#include "agent/streams/upgrade.h"
#include "agent/streams/websocket_transport.h"  // ChannelPlan

namespace kernelet::agent::streams {

// What the exec endpoint speaks, best first: the kubelet's SPDY protocols
// (v4, v3, v2, channel.k8s.io) and its WebSocket ones (v5 with the CLOSE
// signal, v4 binary and base64, v3, v2 as client-go offers them, channel.k8s.io
// and base64.channel.k8s.io).
Protocols execProtocols();

// The WebSocket channels of an exec: stdin 0, stdout 1, stderr 2 as asked,
// error 3 always, resize 4 always (the kubelet opens it with or without tty).
ChannelPlan execChannelPlan(const RemoteCommandOptions& options);

// The request's options, or the kubelet's answer: 400 "you must specify at
// least 1 of stdin, stdout, stderr", 400 for no command or a bad value (naming
// the parameter). Pod and container come from the path; tty drops stderr.
std::expected<RemoteCommandOptions, UpgradeError> execOptions(const server::Request& req);

// The handler for Endpoints::exec. `done` (tests, metrics) sees each exec's end.
UpgradeHandler execHandler(
    PodExists pod_exists, ContainerRunning container_running, ExecStarter starter,
    std::chrono::milliseconds stream_creation_timeout = kStreamCreationTimeout,
    RemoteCommandDone done = {});

}  // namespace kernelet::agent::streams
