#pragma once
// The parent/child handshake of one container start: the child writes named,
// fixed-size messages on a CLOEXEC pipe. The pipe closes both when the child
// execs and when it dies, so end of file alone says nothing: it is a
// successful exec only after kExecing (and no kFailed), else a death in setup.

#include <cstdint>
#include <cstring>

namespace kernelet::isolation {

enum class ChildMessage : uint32_t {
  kFailed = 1,   // setup or exec failed: errnum, op, path say what
  kReady = 2,    // setup done, waiting on the start FIFO (OCI create)
  kExecing = 3,  // setup done, about to execve: a kFailed may still follow
};

struct ChildReport {
  ChildMessage kind;
  int32_t errnum;
  char op[64];
  char path[448];
};

// Child side: async-signal-safe, no allocation.
inline void sendReport(int fd, ChildMessage kind, int errnum = 0, const char* op = "",
                       const char* path = "") {
  ChildReport r{};
  r.kind = kind;
  r.errnum = errnum;
  std::strncpy(r.op, op, sizeof r.op - 1);
  std::strncpy(r.path, path == nullptr ? "" : path, sizeof r.path - 1);
  // A pipe write of this size is atomic; nothing useful can be done on failure.
  [[maybe_unused]] auto n = ::write(fd, &r, sizeof r);
}

}  // namespace kernelet::isolation
