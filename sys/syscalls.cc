#include "sys/syscalls.h"

#include <sys/mount.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>

namespace kernelet::sys {

pid_t clone3(struct clone_args& args) {
  return static_cast<pid_t>(::syscall(SYS_clone3, &args, sizeof args));
}

int pidfdOpen(pid_t pid, unsigned flags) {
  return static_cast<int>(::syscall(SYS_pidfd_open, pid, flags));
}

int pidfdSendSignal(int pidfd, int sig, siginfo_t* info, unsigned flags) {
  return static_cast<int>(::syscall(SYS_pidfd_send_signal, pidfd, sig, info, flags));
}

int pivotRoot(const char* new_root, const char* put_old) {
  return static_cast<int>(::syscall(SYS_pivot_root, new_root, put_old));
}

int openTree(int dirfd, const char* path, unsigned flags) {
  return static_cast<int>(::syscall(SYS_open_tree, dirfd, path, flags));
}

int moveMount(int from_dirfd, const char* from_path, int to_dirfd, const char* to_path,
              unsigned flags) {
  return static_cast<int>(
      ::syscall(SYS_move_mount, from_dirfd, from_path, to_dirfd, to_path, flags));
}

int mountSetattr(int dirfd, const char* path, unsigned flags, ::mount_attr* attr) {
  return static_cast<int>(::syscall(SYS_mount_setattr, dirfd, path, flags, attr, sizeof *attr));
}

namespace {
// The kernel's sigset: one bit per signal 1.._NSIG-1 (64 on Linux), not
// glibc's 1024-bit sigset_t.
constexpr size_t kKernelSigsetSize = _NSIG / 8;
}  // namespace

int blockAllSignals(sigset_t* saved) {
  sigset_t all;
  std::memset(&all, 0xff, sizeof all);  // every bit, not sigfillset's "all but 32 and 33"
  return static_cast<int>(
      ::syscall(SYS_rt_sigprocmask, SIG_SETMASK, &all, saved, kKernelSigsetSize));
}

int restoreSignals(const sigset_t& saved) {
  return static_cast<int>(
      ::syscall(SYS_rt_sigprocmask, SIG_SETMASK, &saved, nullptr, kKernelSigsetSize));
}

}  // namespace kernelet::sys
