#pragma once
// The RunKeeper of a real node: the node's one kernelet-holder process
// (holder/, README "Live restore"), reached over its unix socket. The holder
// outlives the agent; this class is the agent's end of the conversation.
//
// Calls are synchronous (the holder is local and answers at once) and bounded
// by kCallTimeout. If the holder died, the next call starts a new one; its
// runs are gone with it, so generation() goes up and the runtime keeps its
// runs again.

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "agent/runtime/run_keeper.h"
#include "sys/result.h"
#include "sys/unique_fd.h"

struct kh_msg;

namespace kernelet::agent::runtime {

// The kernelet-holder installed beside the kernelet binary that runs (the
// installed file, not the sealed copy the agent re-executes from); empty when
// that binary's path is unknown.
std::string defaultHolderPath();

class HolderKeeper : public RunKeeper {
 public:
  static constexpr int kCallTimeoutMs = 2000;
  static constexpr int kStartTimeoutMs = 5000;

  // Connects to the holder on `socket_path` (on a node RUN_DIR/holder/holder.sock:
  // the holder makes its directory 0700 and refuses one it does not own); if
  // none answers, starts `holder_exe` on it (detached: its own session, not
  // our child) and waits until it serves. The holder must run as root (or
  // as we do).
  static Result<std::unique_ptr<HolderKeeper>> connect(std::string socket_path,
                                                       std::string holder_exe);
  ~HolderKeeper() override = default;

  Result<void> keep(const std::string& id, int pid, uint64_t start_time, int pidfd,
                    std::span<const int> fds) override;
  Result<std::optional<KeptRun>> fetch(const std::string& id) override;
  void forget(const std::string& id) override;
  Result<std::vector<std::string>> list() override;

  // Which holder answers: 1 for the first, +1 each time a call found it gone
  // and another one took its place (with none of the runs kept before). The
  // runtime re-keeps its runs when this changed since it last kept them.
  uint64_t generation() const { return generation_; }
  // Whether the holder hears exits (the proc connector): when not, a run that
  // ends while no agent is its parent reads "exit lost".
  bool seesExits() const { return sees_exits_; }
  // The holder process answering now (for tests and logs).
  int holderPid() const { return holder_pid_; }

 private:
  struct Reply;

  HolderKeeper(std::string socket_path, std::string holder_exe)
      : socket_path_(std::move(socket_path)), holder_exe_(std::move(holder_exe)) {}
  Result<void> ensureConnected();
  Result<void> hello();
  // One request and its reply; reconnects (starting a holder) and retries
  // once when the connection is broken.
  Result<Reply> call(kh_msg& request, std::span<const int> fds);
  Result<Reply> exchange(const kh_msg& request, std::span<const int> fds);

  std::string socket_path_, holder_exe_;
  UniqueFd sock_;
  uint32_t seq_ = 0;
  uint64_t generation_ = 0;
  int holder_pid_ = 0;
  uint64_t holder_start_time_ = 0;
  bool sees_exits_ = false;
};

}  // namespace kernelet::agent::runtime
