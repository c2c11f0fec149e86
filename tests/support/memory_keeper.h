#pragma once
// A RunKeeper in memory, for tests that restart a KernelRuntime within one
// process: it holds copies of each run's pidfd and pipe read ends, as the
// node's holder does across agents. The test process stays the parent of
// every container, so the keeper learns an exit as the holder would (the run
// ended while no runtime watched it) by reaping the process through its
// pidfd when a runtime fetches the run.

#include <map>
#include <string>
#include <vector>

#include "agent/runtime/run_keeper.h"

namespace kernelet::testing {

class MemoryKeeper : public agent::runtime::RunKeeper {
 public:
  Result<void> keep(const std::string& id, int pid, uint64_t start_time, int pidfd,
                    std::span<const int> fds) override;
  Result<std::optional<agent::runtime::KeptRun>> fetch(const std::string& id) override;
  void forget(const std::string& id) override;
  Result<std::vector<std::string>> list() override;

  // The keeper loses a run's pipes (as a holder that died would): the next
  // fetch has the pidfd but no fds.
  void dropFds(const std::string& id);
  size_t size() const { return runs_.size(); }

 private:
  struct Run {
    int pid = 0;
    uint64_t start_time = 0;
    UniqueFd pidfd;
    std::vector<UniqueFd> fds;
    std::optional<agent::runtime::KeptExit> exit;
    bool exit_lost = false;
  };
  std::map<std::string, Run> runs_;
};

}  // namespace kernelet::testing
