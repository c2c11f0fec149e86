#pragma once
// KernelRuntime's private part: the stdio a container run starts with beyond
// its log pipes - its spec's `stdin` (a pipe whose write end the agent holds)
// or `tty` (a terminal made in the container, whose master the agent holds and
// pumps to the log as stdout) - and the attach sessions joined to it. Not for
// other code: the seam is runtime.h (attach, detach).

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "agent/runtime/runtime.h"
#include "isolation/container_spec.h"
#include "isolation/cri_log.h"
#include "sys/result.h"
#include "sys/unique_fd.h"

namespace kernelet::agent::runtime {

struct ContainerStdio {
  bool stdin = false, stdin_once = false, tty = false;
  bool stdin_closed = false;  // stdinOnce closed it for good
  UniqueFd stdin_w;           // !tty: the stdin pipe's write end
  UniqueFd master;            // tty: the terminal's master (the log pumps its own copy)

  // The child's ends while a start is under way.
  struct Start {
    UniqueFd stdin_r;  // the stdin pipe's read end (the child's fd 0)
    UniqueFd console;  // tty: our end of the console socket the master comes over
    UniqueFd console_child;
  };
  // Sets up `spec`'s stdio for a container whose spec says stdin/tty:
  // `devnull` is fd 0 otherwise. With tty, `spec` gets no other stdio.
  Result<Start> prepare(const Container& c, isolation::ContainerSpec& spec, int devnull);
  // The child reported its start: takes the master it sent (tty) and returns
  // a copy for the log to pump.
  Result<UniqueFd> takeTerminal(Start& s);

  // The fds the keeper holds for the run beside its log pipes (`pumped`: the
  // pipes, or the master, the log reads): pumped..., then stdin's write end.
  std::vector<int> keptFds(std::vector<int> pumped) const;
  // An adopted run: takes what the keeper held beyond the log's fds, and
  // returns how many of `fds` the log pumps (1 for a terminal, else 2).
  // Nullopt: the kept fds do not fit the run's stdio.
  std::optional<size_t> adoptKept(std::vector<UniqueFd>& fds);

  // ---- attach sessions (all on the loop) ----
  Result<AttachedIo> attach(const std::string& name, const AttachIo& io,
                            std::function<void()> ended);
  // True: stdin was closed for good now (the record and the keeper must say so).
  bool detach(uint64_t session);
  // The session's client ended its stdin (its copy of stdin is closed).
  // containerd's rule: a stdinOnce container without a terminal has its stdin
  // closed for good, and the session keeps its output until the run ends;
  // any other session ends (its pipes close, its `ended` runs), as does one
  // that takes no output. True: stdin was closed for good now.
  bool stdinEnded(uint64_t session);
  // The log's tap: one chunk of the container's output to every session.
  void tap(isolation::Stream s, std::string_view data);
  // The run ended or is let go: every session's pipes close, then its `ended` runs.
  void endSessions();

 private:
  struct Session {
    UniqueFd out[2];     // stdout, stderr
    bool stdin = false;  // it got a copy of the container's stdin
    std::function<void()> ended;
  };
  std::map<uint64_t, Session> sessions_;
  uint64_t next_session_ = 1;
};

}  // namespace kernelet::agent::runtime
