#include "sys/syscalls.h"

#include <sys/syscall.h>
#include <unistd.h>

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

}  // namespace kernelet::sys
