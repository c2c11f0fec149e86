#pragma once
// The binary a container's setup child runs from, out of the container's reach.
//
// A child cloned from this process enters a container before it execs; until
// then its /proc/PID/exe is our binary. If that were the host file, root in
// the container could open it for writing through that link and replace the
// node's kernelet (CVE-2019-5736). So the commands that start containers
// re-execute themselves from a sealed in-memory copy first (see main.cc).

#include <string>
#include <vector>

#include "sys/result.h"
#include "sys/unique_fd.h"

namespace kernelet::sys {

struct CopyOptions {
  // A sealed memfd first. Where vm.memfd_noexec=2 forbids executable memfds
  // (memfd_create(MFD_EXEC) fails with EACCES), or with false here, the copy
  // is an unnamed O_TMPFILE file in the first of `tmpfile_dirs` that takes
  // one and may hold executables.
  bool memfd = true;
  std::vector<std::string> tmpfile_dirs = {"/run", "/tmp"};
};

// True when /proc/self/exe is such a copy: a memfd with the write, grow,
// shrink and seal seals, or an unnamed file (no link, never linkable) no one
// may write. No one can change the bytes we run.
bool runningFromSealedCopy();

// A read-only descriptor of a copy of /proc/self/exe as `options` say, ready
// for fexecve; never the host's file itself.
Result<UniqueFd> copyOfSelf(const CopyOptions& options = {});

// The path this binary was started from, to find the files installed beside
// it: /proc/self/exe names a sealed copy's memfd, so reexecFromSealedCopy
// records the path it left in the environment (kInstalledExeEnv) and a copy
// reads it back from there.
constexpr const char* kInstalledExeEnv = "KERNELET_INSTALLED_EXE";
std::string installedExe();

// Executes copyOfSelf() with the same argv and envp (plus kInstalledExeEnv). Returns only on
// failure, with the error.
Error reexecFromSealedCopy(char** argv, char** envp, const CopyOptions& options = {});

}  // namespace kernelet::sys
