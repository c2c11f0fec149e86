#include "sys/sealed_exe.h"

#include <elf.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>  // the ST_* flags statfs also reports
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "sys/unique_fd.h"

namespace kernelet::sys {

namespace {

constexpr int kSeals = F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE;
// F_SEAL_EXEC (Linux 6.3): nor can the mode bits change. Older kernels refuse
// the unknown seal with EINVAL; the four above are what must hold.
#ifndef F_SEAL_EXEC
constexpr int kSealExec = 0x0020;
#else
constexpr int kSealExec = F_SEAL_EXEC;
#endif

// MFD_EXEC (Linux 6.3) keeps the copy executable where vm.memfd_noexec=1
// would otherwise make memfds noexec; older kernels refuse the flag with
// EINVAL. vm.memfd_noexec=2 refuses it with EACCES: copyOfSelf falls back.
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
  if (seals >= 0) {
    return (seals & kSeals) == kSeals;
  }
  // The O_TMPFILE fallback: never linked anywhere, and no write bit.
  struct stat st {};
  return ::fstat(exe.get(), &st) == 0 && S_ISREG(st.st_mode) && st.st_nlink == 0 &&
         (st.st_mode & 0222) == 0;
}

namespace {

// Copies the executable part of `exe` into `copy`.
Result<void> copyInto(int exe, int copy) {
  struct stat st {};
  if (::fstat(exe, &st) != 0) {
    return sysError("stat", "/proc/self/exe");
  }
  off_t size = executablePrefix(exe, st.st_size);
  off_t offset = 0;
  while (offset < size) {
    ssize_t n = ::sendfile(copy, exe, &offset, static_cast<size_t>(size - offset));
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      return n < 0 ? sysError("copy", "/proc/self/exe")
                   : makeError("copy", "/proc/self/exe", "the binary shrank while copied");
    }
  }
  return {};
}

Result<UniqueFd> sealedMemfd(int exe, UniqueFd copy) {
  TRY_VOID(copyInto(exe, copy.get()));
  if (::fcntl(copy.get(), F_ADD_SEALS, kSeals | kSealExec) != 0 &&
      (errno != EINVAL || ::fcntl(copy.get(), F_ADD_SEALS, kSeals) != 0)) {
    return sysError("seal", "memfd:kernelet");
  }
  return copy;
}

// An unnamed file in `dir`: O_EXCL, so not even linkat through /proc can ever
// give it a name; mode 0500 once written; handed back as a read-only
// descriptor, the writable one closed (execve refuses a file open for
// writing). A directory mounted noexec could not run it: skipped.
Result<UniqueFd> unnamedCopy(int exe, const std::string& dir) {
  struct statfs fs {};
  if (::statfs(dir.c_str(), &fs) != 0) {
    return sysError("statfs", dir);
  }
  if ((fs.f_flags & ST_NOEXEC) != 0) {
    return makeError("copy into", dir, "mounted noexec");
  }
  UniqueFd rw(::open(dir.c_str(), O_TMPFILE | O_EXCL | O_RDWR | O_CLOEXEC, 0700));
  if (!rw) {
    return sysError("open O_TMPFILE", dir);
  }
  TRY_VOID(copyInto(exe, rw.get()));
  if (::fchmod(rw.get(), 0500) != 0) {
    return sysError("chmod", dir + " (unnamed copy)");
  }
  std::string self = "/proc/self/fd/" + std::to_string(rw.get());
  UniqueFd ro(::open(self.c_str(), O_RDONLY | O_CLOEXEC));
  if (!ro) {
    return sysError("reopen read-only", dir + " (unnamed copy)");
  }
  return ro;
}

}  // namespace

std::string installedExe() {
  if (runningFromSealedCopy()) {
    const char* recorded = ::getenv(kInstalledExeEnv);
    return recorded != nullptr ? recorded : "";
  }
  std::error_code ec;
  return std::filesystem::read_symlink("/proc/self/exe", ec).string();
}

Result<UniqueFd> copyOfSelf(const CopyOptions& options) {
  UniqueFd exe(::open("/proc/self/exe", O_RDONLY | O_CLOEXEC));
  if (!exe) {
    return sysError("open", "/proc/self/exe");
  }
  Error why{.op = "copy", .path = "/proc/self/exe"};
  if (options.memfd) {
    UniqueFd memfd(createMemfd());
    if (memfd) {
      return sealedMemfd(exe.get(), std::move(memfd));
    }
    if (errno != EACCES) {
      return sysError("memfd_create", "kernelet");
    }
    why = Error{.errnum = EACCES, .op = "memfd_create", .path = "kernelet"};
  }
  std::string tried;
  for (const std::string& dir : options.tmpfile_dirs) {
    auto copy = unnamedCopy(exe.get(), dir);
    if (copy) {
      return copy;
    }
    tried += (tried.empty() ? "" : "; ") + copy.error().message();
  }
  why.detail = "no unnamed copy either: " + (tried.empty() ? "no directory to try" : tried);
  return std::unexpected(std::move(why));
}

// Why a sealed memfd and not runc's read-only bind mount of the binary: the
// agent is long-lived, so the copy is made once per agent start, not once per
// container; it needs no mount in the host's namespace; and a sealed memfd
// holds even against a write that pierces a read-only mount (page-cache bugs,
// runc issue 5272), since F_SEAL_WRITE is enforced on the memory itself.
Error reexecFromSealedCopy(char** argv, char** envp, const CopyOptions& options) {
  auto copy = copyOfSelf(options);
  if (!copy) {
    return copy.error();
  }
  std::string prefix = std::string(kInstalledExeEnv) + "=";
  std::string installed = prefix + installedExe();
  std::vector<char*> env;
  for (char** e = envp; *e != nullptr; e++) {
    if (!std::string_view(*e).starts_with(prefix)) {
      env.push_back(*e);
    }
  }
  env.push_back(installed.data());
  env.push_back(nullptr);
  ::fexecve(copy->get(), argv, env.data());
  return sysError("fexecve", "copy of /proc/self/exe").error();
}

}  // namespace kernelet::sys
