#pragma once
// What must outlive the agent for each container run, so that the agent can
// die (SIGKILL, OOM kill, upgrade) without its containers noticing:
//   - the read ends of the run's log pipes: while someone holds them, what the
//     container writes waits in the pipe (sized by F_SETPIPE_SZ) instead of
//     failing with EPIPE, and the next agent pumps it on into the log;
//   - the run's pidfd, which names the process without a pid-reuse race;
//   - the run's exit status and time, if it exits while no agent is its parent
//     (a container's parent is the agent that started it; once that agent is
//     gone, no one else can wait for it).
// The real keeper is the node's one holder process (holder/, holder_keeper.h);
// tests that restart a runtime within one process keep the runs in memory.

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "sys/result.h"
#include "sys/unique_fd.h"

namespace kernelet::agent::runtime {

struct KeptExit {
  int wait_status = 0;           // as waitpid(2) reports it
  int64_t finished_unix_ns = 0;  // CLOCK_REALTIME when the keeper saw it exit
};

// A run as the keeper has it; the fds are the caller's own copies.
struct KeptRun {
  UniqueFd pidfd;
  std::vector<UniqueFd> fds;  // in the order keep() was given them
  std::optional<KeptExit> exit;
  // The process is gone and the keeper did not see its exit status (it was
  // not listening, or lost the event): report it as unknown.
  bool exit_lost = false;
};

class RunKeeper {
 public:
  virtual ~RunKeeper() = default;
  // From now on the run `id` (a container id) is kept: `pid` with its start
  // time (field 22 of /proc/PID/stat, the pid-reuse guard), its pidfd and
  // `fds` (the read ends of its stdout and stderr pipes). The caller keeps its
  // own fds.
  virtual Result<void> keep(const std::string& id, int pid, uint64_t start_time, int pidfd,
                            std::span<const int> fds) = 0;
  // What is kept for `id`; nullopt when nothing is.
  virtual Result<std::optional<KeptRun>> fetch(const std::string& id) = 0;
  // The agent saw the run end and drained its pipes: forget it. Best effort:
  // a run not forgotten is dropped once its process is gone and no one fetched
  // it for a while (see the keeper's own rules).
  virtual void forget(const std::string& id) = 0;
  // Every id kept.
  virtual Result<std::vector<std::string>> list() = 0;
};

}  // namespace kernelet::agent::runtime
