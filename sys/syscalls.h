#pragma once
// Syscalls glibc 2.36 does not wrap (or wraps without the flags we need).

#include <linux/sched.h>
#include <sys/mount.h>  // struct mount_attr and the mount API flags
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

// The mount API (Linux 5.2, mount_setattr 5.12): a bind mount built detached
// and moved onto a directory held by fd, so no path is resolved twice.
int openTree(int dirfd, const char* path, unsigned flags);
int moveMount(int from_dirfd, const char* from_path, int to_dirfd, const char* to_path,
              unsigned flags);
int mountSetattr(int dirfd, const char* path, unsigned flags, ::mount_attr* attr);

// Blocks every signal of the calling thread, glibc's internal ones (32, 33)
// included, which sigfillset leaves out; `saved` gets the previous mask.
// Raw rt_sigprocmask: nothing allocated, usable around clone3.
int blockAllSignals(sigset_t* saved);
int restoreSignals(const sigset_t& saved);

}  // namespace kernelet::sys
