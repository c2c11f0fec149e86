#pragma once
// Small helpers the privileged tests share: argv for execv, draining a pipe,
// and the counts that leak checks compare before and after.

#include <string>
#include <vector>

namespace kernelet::testing {

// A nullptr-terminated argv pointing into `args` (which must outlive it).
std::vector<char*> argvOf(std::vector<std::string>& args);
// Starts `args` (args[0] an absolute path) as a child whose stdout and stderr
// are appended to `log`; returns its pid.
int spawnLogged(std::vector<std::string> args, const std::string& log);
// Reads `fd` to its end and closes it.
std::string readAll(int fd);
// Lines of a file (e.g. /proc/self/mountinfo), entries of a directory (e.g. /proc/self/fd).
int countLines(const std::string& path);
int countEntries(const std::string& dir);
// SIGKILLs every process whose command line holds both `name` and `arg`
// (e.g. the node's holder for one test's run dir); how many it found.
int killProcessesMatching(const std::string& name, const std::string& arg);

}  // namespace kernelet::testing
