#pragma once
// The receiving end of an OCI console socket (runc's and crun's
// --console-socket): the runtime sends the terminal's master over an AF_UNIX
// socket with SCM_RIGHTS (the message's bytes, the terminal's name, are not
// needed).

#include <optional>

#include "sys/result.h"
#include "sys/unique_fd.h"

namespace kernelet::agent::streams {

// The master from `sock` (non-blocking read, O_CLOEXEC): nullopt when nothing
// has come yet; an error when the peer closed without sending one, or sent
// something without a descriptor. Extra descriptors are closed.
Result<std::optional<UniqueFd>> receiveTerminal(int sock);

}  // namespace kernelet::agent::streams
