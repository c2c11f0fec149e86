#include "agent/runtime/container_stdio.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "agent/log/log.h"
#include "isolation/terminal.h"

namespace kernelet::agent::runtime {
namespace {

// A session's pipe holds this much before it counts as fallen behind: one
// look of the log pump (256 KiB) must fit, or a fast container would cut
// off a reader that keeps up; two fit, so a reader a look behind is not cut
// off either. Smaller where pipe-max-size forbids.
constexpr int kSessionPipeSize = 512 << 10;
// Sessions one container may have at once. A session whose client never
// reads keeps its pipes full (kernel memory charged to the agent) for as
// long as its connection lives: without a cap, 1,024 such connections
// would pin 1 GiB. 16 sessions of two streams pin at most 16 MiB.
constexpr size_t kMaxSessions = 16;

Result<UniqueFd> dupFd(int fd, const std::string& what) {
  int d = ::fcntl(fd, F_DUPFD_CLOEXEC, 3);
  if (d < 0) {
    return sysError("dup", what);
  }
  return UniqueFd(d);
}

}  // namespace

Result<ContainerStdio::Start> ContainerStdio::prepare(const Container& c,
                                                      isolation::ContainerSpec& spec, int devnull) {
  stdin = c.stdin;
  stdin_once = c.stdin_once;
  tty = c.tty;
  Start s;
  if (tty) {
    // The terminal is made by the child in the container's devpts and is its
    // 0, 1 and 2 (isolation/terminal.h); its master comes back over this socket.
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
      return sysError("socketpair", "console socket of " + c.name);
    }
    s.console.reset(sv[0]);
    s.console_child.reset(sv[1]);
    spec.terminal = true;
    spec.console_socket_fd = sv[1];
    spec.stdin_fd = spec.stdout_fd = spec.stderr_fd = -1;
    return s;
  }
  spec.stdin_fd = devnull;
  if (stdin) {
    int p[2];
    if (::pipe2(p, O_CLOEXEC) != 0) {
      return sysError("pipe", "stdin of " + c.name);
    }
    s.stdin_r.reset(p[0]);
    stdin_w.reset(p[1]);
    spec.stdin_fd = p[0];
  }
  return s;
}

Result<UniqueFd> ContainerStdio::takeTerminal(Start& s) {
  if (!tty) {
    return UniqueFd();
  }
  s.console_child.reset();
  // Sent before the command's exec, so it is there once the start reported:
  // never wait for it on the loop.
  if (::fcntl(s.console.get(), F_SETFL, O_NONBLOCK) != 0) {
    return sysError("fcntl", "console socket");
  }
  TRY(isolation::ReceivedTerminal t, isolation::receiveTerminal(s.console.get()));
  s.console.reset();
  TRY(master, dupFd(t.master.get(), "terminal master " + t.name));
  return std::move(t.master);
}

std::vector<int> ContainerStdio::keptFds(std::vector<int> pumped) const {
  if (stdin_w) {
    pumped.push_back(stdin_w.get());
  }
  return pumped;
}

std::optional<size_t> ContainerStdio::adoptKept(std::vector<UniqueFd>& fds) {
  size_t pumped = tty ? 1 : 2;
  bool has_stdin = !tty && stdin && !stdin_closed;
  if (fds.size() != pumped + (has_stdin ? 1 : 0)) {
    return std::nullopt;
  }
  if (has_stdin) {
    stdin_w = std::move(fds.back());
    fds.pop_back();
  }
  if (tty) {
    auto m = dupFd(fds[0].get(), "terminal master");
    if (!m) {
      return std::nullopt;
    }
    master = std::move(*m);
  }
  return pumped;
}

Result<AttachedIo> ContainerStdio::attach(const std::string& name, const AttachIo& io,
                                          std::function<void()> ended) {
  AttachedIo out;
  if (sessions_.size() >= kMaxSessions) {
    return makeError(
        "attach", name,
        "container " + name + " has " + std::to_string(kMaxSessions) + " attach sessions already");
  }
  if (io.stdin) {
    if (!stdin) {
      return makeError("attach", name, "container " + name + " did not start with stdin");
    }
  }
  // After stdinOnce closed it, a session that asks for stdin joins without
  // it (containerd's copy into the closed pipe ends at once): what its client
  // sends is dropped, the output still comes.
  bool gets_stdin = io.stdin && !stdin_closed;
  if (gets_stdin) {
    TRY(out.stdin_fd, dupFd(tty ? master.get() : stdin_w.get(), "stdin of " + name));
  }
  if (tty) {
    TRY(out.terminal_fd, dupFd(master.get(), "terminal of " + name));
  }
  Session s{.stdin = gets_stdin, .ended = std::move(ended)};
  int given[2] = {io.stdout_fd, io.stderr_fd};
  for (int i = 0; i < 2; i++) {
    if (given[i] < 0) {
      continue;
    }
    TRY(s.out[i], dupFd(given[i], i == 0 ? "attach stdout" : "attach stderr"));
    // The tap never waits on a session: a write that does not fit cuts it off.
    int fl = ::fcntl(s.out[i].get(), F_GETFL);
    if (fl < 0 || ::fcntl(s.out[i].get(), F_SETFL, fl | O_NONBLOCK) != 0) {
      return sysError("fcntl", "attach pipe of " + name);
    }
    (void)::fcntl(s.out[i].get(), F_SETPIPE_SZ, kSessionPipeSize);  // not a pipe, or capped: as is
  }
  out.session = next_session_++;
  sessions_.emplace(out.session, std::move(s));
  return out;
}

bool ContainerStdio::detach(uint64_t session) {
  auto it = sessions_.find(session);
  if (it == sessions_.end()) {
    return false;
  }
  bool sent_stdin = it->second.stdin;
  sessions_.erase(it);  // its pipes close: the client sees the end of output
  // containerd (internal/cri/io): with stdinOnce and no terminal, the end of
  // an attach that sent stdin closes the container's stdin; with a terminal
  // it stays open (kubectl's and docker's behaviour) until the container ends.
  if (sent_stdin && stdin_once && !tty && !stdin_closed) {
    stdin_w.reset();
    stdin_closed = true;
    return true;
  }
  return false;
}

bool ContainerStdio::stdinEnded(uint64_t session) {
  auto it = sessions_.find(session);
  if (it == sessions_.end() || !it->second.stdin) {
    return false;
  }
  bool closed = false;
  bool once = stdin_once && !tty;
  if (once && !stdin_closed) {
    stdin_w.reset();  // the endpoint closed its copy: the container reads EOF
    stdin_closed = true;
    closed = true;
  }
  Session& s = it->second;
  if (!once || (!s.out[0] && !s.out[1])) {
    // containerd stops copying output to the session: its client sees the
    // end, and the session ends with success.
    std::function<void()> ended = std::move(s.ended);
    sessions_.erase(it);
    if (ended) {
      ended();
    }
  }
  return closed;
}

void ContainerStdio::tap(isolation::Stream s, std::string_view data) {
  int i = s == isolation::Stream::kStdout ? 0 : 1;
  for (auto& [id, session] : sessions_) {
    UniqueFd& fd = session.out[i];
    if (!fd) {
      continue;
    }
    ssize_t n = ::write(fd.get(), data.data(), data.size());
    if (n != static_cast<ssize_t>(data.size())) {
      // Full (the reader fell a pipe behind) or gone (EPIPE): cut off, so that
      // neither the container nor its log wait on it.
      log::v(2, "Attach session cut off",
             {{"session", std::to_string(id)},
              {"err", std::string(n < 0 ? std::strerror(errno) : "pipe full")}});
      fd.reset();
    }
  }
}

void ContainerStdio::endSessions() {
  std::map<uint64_t, Session> ending = std::move(sessions_);
  sessions_.clear();
  for (auto& [id, s] : ending) {
    s.out[0].reset();
    s.out[1].reset();
    if (s.ended) {
      s.ended();
    }
  }
}

}  // namespace kernelet::agent::runtime
