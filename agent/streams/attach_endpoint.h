#pragma once
// /attach/NS/POD/[UID/]CONTAINER: the kubelet's query (input, output, error,
// tty, and PodAttachOptions' stdin, stdout, stderr for clients that call the
// node directly; no command), its 400 and 404 answers before any upgrade,
// then the upgrade (SPDY or WebSocket) and the attach over it
// (remote_command.h: runRemoteAttach).

#include <chrono>
#include <expected>

#include "agent/server/handler.h"
#include "agent/streams/pod_access.h"
#include "agent/streams/remote_command.h"
#include "agent/streams/upgrade.h"

namespace kernelet::agent::streams {

// What attach speaks: the kubelet serves attach with the same protocols as
// exec (remotecommandconsts.SupportedStreamingProtocols), see execProtocols().
Protocols attachProtocols();

// The request's options, or the kubelet's answer: 400 "you must specify at
// least 1 of stdin, stdout, stderr", 400 for a bad value (naming the
// parameter). Pod and container come from the path; tty drops stderr; a
// command in the query is not looked at (the kubelet ignores it too).
std::expected<RemoteCommandOptions, UpgradeError> attachOptions(const server::Request& req);

// The handler for Endpoints::attach. `done` (tests, metrics) sees each attach's end.
UpgradeHandler attachHandler(
    PodExists pod_exists, ContainerRunning container_running, AttachStarter starter,
    std::chrono::milliseconds stream_creation_timeout = kStreamCreationTimeout,
    RemoteCommandDone done = {});

}  // namespace kernelet::agent::streams
