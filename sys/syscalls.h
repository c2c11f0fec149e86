#pragma once
// Syscalls glibc 2.36 does not wrap (or wraps without the flags we need).

#include <linux/sched.h>
#include <sys/types.h>

#include <csignal>
#include <cstdint>

namespace kernelet::sys {

// clone3(2). Returns the child's pid in the parent, 0 in the child, -1 with errno.
// The child runs on a copy of the parent's stack, like fork(); only
// async-signal-safe work may happen there until exec.
pid_t clone3(struct clone_args& args);

int pidfdOpen(pid_t pid, unsigned flags = 0);
int pidfdSendSignal(int pidfd, int sig, siginfo_t* info = nullptr, unsigned flags = 0);
int pivotRoot(const char* new_root, const char* put_old);

}  // namespace kernelet::sys
