#include "sys/sealed_exe.h"

#include <elf.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

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

// How much of the binary the kernel needs to run it: up to the end of the last
// segment in its program headers. What follows (debug info, symbol and section
// tables: 85 of the 94 MB of an -O2 -g build) is never mapped, and copying it
// cost 2 s per `kernelet oci run` in the emulated test VM. A debugger attached
// to the copy finds no symbols then: point it at the installed file. Anything
// but a well-formed ELF64 file is copied whole.
off_t executablePrefix(int fd, off_t size) {
  Elf64_Ehdr eh{};
  if (::pread(fd, &eh, sizeof eh, 0) != static_cast<ssize_t>(sizeof eh) ||
      std::memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 || eh.e_ident[EI_CLASS] != ELFCLASS64 ||
      eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phnum == 0 || eh.e_phnum > 256) {
    return size;
  }
  uint64_t end = eh.e_phoff + uint64_t{eh.e_phnum} * sizeof(Elf64_Phdr);
  for (int i = 0; i < eh.e_phnum; i++) {
    Elf64_Phdr ph{};
    off_t at = static_cast<off_t>(eh.e_phoff + i * sizeof ph);
    if (::pread(fd, &ph, sizeof ph, at) != static_cast<ssize_t>(sizeof ph)) {
      return size;
    }
    end = std::max(end, ph.p_offset + ph.p_filesz);
  }
  return end < static_cast<uint64_t>(size) ? static_cast<off_t>(end) : size;
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
  off_t size = executablePrefix(exe.get(), st.st_size);
  off_t offset = 0;
  while (offset < size) {
    ssize_t n = ::sendfile(copy.get(), exe.get(), &offset, static_cast<size_t>(size - offset));
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
