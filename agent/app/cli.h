#pragma once
// The `kernelet` command line: parses argv, dispatches to the subcommands.

#include <string>
#include <vector>

#include "agent/config/config.h"
#include "sys/result.h"

namespace kernelet::agent {

// `kernelet run`'s settings from its arguments (those after "run"): the
// --config file first, then the flags given on the command line.
Result<AgentConfig> runConfig(const std::vector<std::string>& args);

// Runs the command line; returns the process exit status. Usage errors (an
// unknown flag, a missing argument) print a message and return 2, like the kubelet.
int runCli(int argc, char** argv);

}  // namespace kernelet::agent
