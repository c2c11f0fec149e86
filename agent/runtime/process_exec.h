#pragma once
// An ExecProcess over an isolation::Process already running: what host-only
// tests use to stand in for an exec (the real runtime's is PendingExec).

#include <memory>

#include "agent/runtime/runtime.h"
#include "isolation/isolation.h"

namespace kernelet::agent::runtime {

class ProcessExec : public ExecProcess {
 public:
  explicit ProcessExec(isolation::Process proc) : proc_(std::move(proc)) {}
  ~ProcessExec() override {
    if (!reaped_) {
      // A run given up (its probe timed out or was cancelled): nothing of it
      // may stay, and a failed kill means it is gone already.
      (void)proc_.signal(SIGKILL);
      (void)proc_.wait();
    }
  }
  int exitFd() const override { return proc_.pidfd(); }
  Result<int> reap() override {
    reaped_ = true;
    TRY(isolation::ExitStatus s, proc_.wait());
    return s.shellStatus();
  }

 private:
  isolation::Process proc_;
  bool reaped_ = false;
};

inline std::unique_ptr<ExecProcess> processExec(isolation::Process proc) {
  return std::make_unique<ProcessExec>(std::move(proc));
}

}  // namespace kernelet::agent::runtime
