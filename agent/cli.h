#pragma once
// The `kernelet` command line: parses argv, dispatches to the subcommands.

namespace kernelet::agent {

// Runs the command line; returns the process exit status. Usage errors (an
// unknown flag, a missing argument) print a message and return 2, like the kubelet.
int runCli(int argc, char** argv);

}  // namespace kernelet::agent
