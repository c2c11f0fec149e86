#pragma once
// The binary a container's setup child runs from, out of the container's reach.
//
// A child cloned from this process enters a container before it execs; until
// then its /proc/PID/exe is our binary. If that were the host file, root in
// the container could open it for writing through that link and replace the
// node's kernelet (CVE-2019-5736). So the commands that start containers
// re-execute themselves from a sealed in-memory copy first (see main.cc).

#include "sys/result.h"

namespace kernelet::sys {

// True when /proc/self/exe is a memfd with the write, grow, shrink and seal
// seals: no one can change the bytes we run.
bool runningFromSealedCopy();

// Copies /proc/self/exe into a sealed memfd and executes that with the same
// argv and envp. Returns only on failure, with the error.
Error reexecFromSealedCopy(char** argv, char** envp);

}  // namespace kernelet::sys
