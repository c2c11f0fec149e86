#include <fcntl.h>
#include <unistd.h>

#include <iostream>
#include <string_view>

#include "agent/app/build_tag.h"
#include "agent/app/cli.h"
#include "isolation/oci_cli.h"
#include "sys/sealed_exe.h"

#ifndef KERNELET_BUILD_TAG
#define KERNELET_BUILD_TAG ""
#endif

namespace {

// The commands whose children enter containers before they exec: the agent
// (exec probes, containers) and `oci run|create`. They run from a sealed copy
// of this binary so that no container can reach the host's file through its
// /proc/PID/exe (see sys/sealed_exe.h). pods, logs and images do not.
bool startsContainers(int argc, char** argv) {
  if (argc < 2) {
    return false;
  }
  std::string_view command = argv[1];
  if (command == "run") {
    return true;
  }
  return command == "oci" && kernelet::isolation::ociStartsContainer(argc - 1, argv + 1);
}

// Started with 0, 1 or 2 closed, the next files we open would take those
// numbers: output meant for stdout would land in them, and a container's log
// pipe could sit where its child dup2()s another stream (one clobbering the
// other). /dev/null holds each closed one, as daemons and runc do.
void pinStdio() {
  for (int fd = 0; fd < 3; fd++) {
    if (::fcntl(fd, F_GETFD) >= 0 || errno != EBADF) {
      continue;
    }
    // 0..fd-1 are open by now, so the lowest free number is `fd` itself.
    if (::open("/dev/null", O_RDWR) != fd) {
      ::_exit(1);  // with no stdio there is nowhere to say why
    }
  }
}

}  // namespace

int main(int argc, char** argv, char** envp) {
  pinStdio();  // first: before the sealed copy or anything else opens a file
  kernelet::agent::setBuildTag(KERNELET_BUILD_TAG);
  if (startsContainers(argc, argv) && !kernelet::sys::runningFromSealedCopy()) {
    // Fails loudly: running on without the copy would leave the host binary
    // reachable from every container this process starts.
    kernelet::Error e = kernelet::sys::reexecFromSealedCopy(argv, envp);
    std::cerr << "kernelet: cannot run from a sealed copy of the binary: " << e.message() << "\n";
    return 1;
  }
  return kernelet::agent::runCli(argc, argv);
}
