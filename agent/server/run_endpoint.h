#pragma once
// POST /run/NS/POD/[UID/]CONTAINER?cmd=...: a command in a running container,
// not streamed; its output (stdout and stderr) is the body, as the kubelet's
// /run answers. The command is the `cmd` parameter split at white space
// (Go's strings.Fields, as the kubelet splits it). The router has already
// authorized it as verb `create`.
//
// Running it is the agent's: the handler hands a RunRequest to `run`, which
// answers through the Responder from any thread (the agent's loop).

#include <functional>
#include <string>
#include <vector>

#include "agent/server/endpoints.h"

namespace kernelet::agent::server {

struct RunRequest {
  std::string namespace_, pod, uid, container;  // uid: empty unless the path gave one
  std::vector<std::string> argv;
};

using RunInContainer = std::function<void(RunRequest, Responder)>;

// strings.Fields: split at runs of ASCII white space, none empty.
std::vector<std::string> splitFields(const std::string& text);

// Fills endpoints.run.
void addRunEndpoint(Endpoints& endpoints, RunInContainer run);

}  // namespace kernelet::agent::server
