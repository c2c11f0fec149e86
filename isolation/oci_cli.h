#pragma once
// `kernelet oci ...`: the OCI runtime command line with runc's and crun's
// arguments, so the same bundle can be run by kernelet, crun and runc.

namespace kernelet::isolation {

// argv[0] is "oci". Returns the exit status: the container's for `run`, 0 or 1
// otherwise, 2 for a usage error.
int ociMain(int argc, char** argv);

// Whether this `oci` command line (argv[0] is "oci") starts a container:
// `run` and `create`, whose child waits unexec'd in the container (see
// sys/sealed_exe.h). The other commands only read state or send signals.
bool ociStartsContainer(int argc, char** argv);

}  // namespace kernelet::isolation
