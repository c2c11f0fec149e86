#include "sys/sealed_exe.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sys/unique_fd.h"

namespace kernelet::sys {

namespace {

constexpr int kSeals = F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE;

// MFD_EXEC (Linux 6.3) keeps the copy executable where vm.memfd_noexec would
// otherwise make memfds noexec; older kernels refuse the flag with EINVAL.
int createMemfd() {
#ifndef MFD_EXEC
  constexpr unsigned kMfdExec = 0x0010U;
#else
  constexpr unsigned kMfdExec = MFD_EXEC;
#endif
  int fd = ::memfd_create("kernelet", MFD_CLOEXEC | MFD_ALLOW_SEALING | kMfdExec);
  if (fd < 0 && errno == EINVAL) {
    fd = ::memfd_create("kernelet", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  }
  return fd;
}

}  // namespace

bool runningFromSealedCopy() {
  UniqueFd exe(::open("/proc/self/exe", O_RDONLY | O_CLOEXEC));
  if (!exe) {
    return false;
  }
  // A regular file answers EINVAL: only a memfd carries seals.
  int seals = ::fcntl(exe.get(), F_GET_SEALS);
  return seals >= 0 && (seals & kSeals) == kSeals;
}

// Why a sealed memfd and not runc's read-only bind mount of the binary: the
// agent is long-lived, so the copy is made once per agent start, not once per
// container; it needs no mount in the host's namespace; and a sealed memfd
// holds even against a write that pierces a read-only mount (page-cache bugs,
// runc issue 5272), since F_SEAL_WRITE is enforced on the memory itself.
Error reexecFromSealedCopy(char** argv, char** envp) {
  UniqueFd exe(::open("/proc/self/exe", O_RDONLY | O_CLOEXEC));
  if (!exe) {
    return sysError("open", "/proc/self/exe").error();
  }
  struct stat st {};
  if (::fstat(exe.get(), &st) != 0) {
    return sysError("stat", "/proc/self/exe").error();
  }
  UniqueFd copy(createMemfd());
  if (!copy) {
    return sysError("memfd_create", "kernelet").error();
  }
  off_t offset = 0;
  while (offset < st.st_size) {
    ssize_t n =
        ::sendfile(copy.get(), exe.get(), &offset, static_cast<size_t>(st.st_size - offset));
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      return n < 0 ? sysError("copy", "/proc/self/exe").error()
                   : makeError("copy", "/proc/self/exe", "the binary shrank while copied").error();
    }
  }
  if (::fcntl(copy.get(), F_ADD_SEALS, kSeals) != 0) {
    return sysError("seal", "memfd:kernelet").error();
  }
  ::fexecve(copy.get(), argv, envp);
  return sysError("fexecve", "memfd:kernelet").error();
}

}  // namespace kernelet::sys
