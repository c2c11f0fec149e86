#include "agent/runtime/holder_keeper.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "holder/protocol.h"
#include "sys/sealed_exe.h"

namespace kernelet::agent::runtime {

std::string defaultHolderPath() {
  std::string exe = sys::installedExe();
  if (exe.empty()) {
    return {};  // not "/kernelet-holder": connect() then says no holder can be started
  }
  return (std::filesystem::path(exe).parent_path() / "kernelet-holder").string();
}

struct HolderKeeper::Reply {
  kh_msg msg{};
  std::vector<UniqueFd> fds;
  std::vector<std::string> ids;  // a LIST reply's
};

namespace {

// Starts the holder on `socket` detached from us: a double fork with setsid
// puts it in its own session (a signal to our process group, a terminal's
// Ctrl-C, never reach it) and makes init (or the subreaper) its parent, so it
// outlives us and we never reap it. It says it serves by writing to fd 3.
Result<void> startHolder(const std::string& exe, const std::string& socket) {
  if (exe.empty()) {
    return makeError("start holder", socket, "no holder binary (the agent's own path is unknown)");
  }
  if (::access(exe.c_str(), X_OK) != 0) {
    return sysError("start holder", exe);
  }
  int ready[2];
  if (::pipe2(ready, O_CLOEXEC) != 0) {
    return sysError("pipe", exe);
  }
  UniqueFd ready_r(ready[0]), ready_w(ready[1]);
  // Everything the child needs, made before fork: after it only
  // async-signal-safe calls (the agent has threads).
  std::string fd_arg = "3";
  std::vector<char*> argv = {const_cast<char*>(exe.c_str()), const_cast<char*>("--ready-fd"),
                             fd_arg.data(), const_cast<char*>(socket.c_str()), nullptr};
  sigset_t none;
  sigemptyset(&none);
  pid_t child = ::fork();
  if (child < 0) {
    return sysError("fork", exe);
  }
  if (child == 0) {
    ::setsid();
    pid_t holder = ::fork();
    if (holder != 0) {
      ::_exit(holder < 0 ? 1 : 0);
    }
    // The agent blocks the signals its loop reads (signalfd); the holder
    // must not inherit that mask.
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    int null = ::open("/dev/null", O_RDWR);
    if (null < 0 || ::dup2(ready[1], 3) != 3 || ::dup2(null, 0) != 0 || ::dup2(null, 1) != 1) {
      ::_exit(126);
    }
    // stderr stays: the holder's few messages go where the agent's go.
    ::close_range(4, ~0U, 0);
    if (::chdir("/") != 0) {
      ::_exit(126);
    }
    ::execv(exe.c_str(), argv.data());
    ::_exit(127);
  }
  int status = 0;
  while (::waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  ready_w.reset();
  pollfd p{.fd = ready_r.get(), .events = POLLIN};
  int n = 0;
  while ((n = ::poll(&p, 1, HolderKeeper::kStartTimeoutMs)) < 0 && errno == EINTR) {
  }
  if (n == 0) {
    return makeError("start holder", exe, "not serving after 5 s");
  }
  char byte = 0;
  if (::read(ready_r.get(), &byte, 1) != 1) {
    // Exited before serving: another holder may own the lock (then it
    // serves and the caller connects to it), or it failed (its stderr says).
    return makeError("start holder", exe, "exited before serving on " + socket);
  }
  return {};
}

Result<UniqueFd> connectTo(const std::string& path) {
  sockaddr_un sa{.sun_family = AF_UNIX};
  if (path.size() >= sizeof sa.sun_path) {
    return makeError("connect holder", path, "socket path too long");
  }
  std::memcpy(sa.sun_path, path.c_str(), path.size() + 1);
  UniqueFd fd(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
  if (!fd) {
    return sysError("socket", path);
  }
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    return sysError("connect holder", path);
  }
  timeval tv{.tv_sec = HolderKeeper::kCallTimeoutMs / 1000,
             .tv_usec = static_cast<suseconds_t>(HolderKeeper::kCallTimeoutMs % 1000) * 1000};
  if (::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0 ||
      ::setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) != 0) {
    return sysError("set timeouts", path);
  }
  return fd;
}

// Field 22 of /proc/PID/stat (the start time), or 0 when unreadable. With the
// pid it names one process for the life of the boot: a holder restarted
// under the same pid has another.
uint64_t startTimeOf(int pid) {
  char path[64];
  (void)std::snprintf(path, sizeof path, "/proc/%d/stat", pid);  // fits
  UniqueFd fd(::open(path, O_RDONLY | O_CLOEXEC));
  char buf[1024];
  ssize_t n = fd ? ::read(fd.get(), buf, sizeof buf - 1) : -1;
  if (n <= 0) {
    return 0;
  }
  buf[n] = '\0';
  const char* p = std::strrchr(buf, ')');
  for (int field = 2; p != nullptr && field < 22; field++) {
    p = std::strchr(p + 1, ' ');
  }
  return p == nullptr ? 0 : std::strtoull(p + 1, nullptr, 10);
}

bool brokenConnection(int errnum) {
  return errnum == EPIPE || errnum == ECONNRESET || errnum == ENOTCONN || errnum == ECONNREFUSED;
}

kh_msg request(uint16_t type, const std::string& id = {}) {
  kh_msg m{};
  m.type = type;
  m.version = KH_VERSION;
  if (!id.empty() && id.size() <= KH_MAX_ID) {
    m.id_len = static_cast<uint16_t>(id.size());
    std::memcpy(m.id, id.data(), id.size());
  }
  return m;
}

}  // namespace

Result<std::unique_ptr<HolderKeeper>> HolderKeeper::connect(std::string socket_path,
                                                            std::string holder_exe) {
  std::unique_ptr<HolderKeeper> k(new HolderKeeper(std::move(socket_path), std::move(holder_exe)));
  TRY_VOID(k->ensureConnected());
  return k;
}

Result<void> HolderKeeper::ensureConnected() {
  if (sock_) {
    return {};
  }
  auto fd = connectTo(socket_path_);
  if (!fd && (fd.error().errnum == ENOENT || fd.error().errnum == ECONNREFUSED)) {
    auto started = startHolder(holder_exe_, socket_path_);
    fd = connectTo(socket_path_);
    if (!fd && !started) {
      return std::unexpected(withContext(started.error(), fd.error().message()));
    }
  }
  if (!fd) {
    return std::unexpected(fd.error());
  }
  sock_ = std::move(*fd);
  ucred cred{};
  socklen_t len = sizeof cred;
  if (::getsockopt(sock_.get(), SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
    sock_.reset();
    return sysError("holder's credentials", socket_path_);
  }
  // Only root (the agent's own user; root on a node) may hold our runs: a
  // socket some other user managed to bind would get every container's pipes.
  if (cred.uid != 0 && cred.uid != ::geteuid()) {
    sock_.reset();
    return makeError("connect holder", socket_path_,
                     "the socket's server runs as uid " + std::to_string(cred.uid) + ", not root");
  }
  if (auto said = hello(); !said) {
    sock_.reset();
    return said;
  }
  // Another process than the one before (pid and start time: a holder
  // restarted under the same pid is another): the runs kept there are gone.
  uint64_t started = startTimeOf(cred.pid);
  if (cred.pid != holder_pid_ || started != holder_start_time_) {
    generation_++;
    holder_pid_ = cred.pid;
    holder_start_time_ = started;
  }
  return {};
}

Result<void> HolderKeeper::hello() {
  kh_msg m = request(KH_HELLO);
  m.min_version = KH_VERSION;
  m.max_version = KH_VERSION;
  m.seq = ++seq_;
  TRY(Reply r, exchange(m, {}));
  if (r.msg.type == KH_ERROR) {
    return sysError(r.msg.errnum, "holder hello (protocol " + std::to_string(KH_VERSION) + ")",
                    socket_path_);
  }
  if (r.msg.version != KH_VERSION) {
    return makeError("holder hello", socket_path_,
                     "the holder picked protocol " + std::to_string(r.msg.version));
  }
  sees_exits_ = (r.msg.flags & KH_SEES_EXITS) != 0;
  return {};
}

Result<HolderKeeper::Reply> HolderKeeper::call(kh_msg& m, std::span<const int> fds) {
  for (int attempt = 0;; attempt++) {
    TRY_VOID(ensureConnected());
    m.seq = ++seq_;
    auto r = exchange(m, fds);
    if (r || attempt > 0 || !brokenConnection(r.error().errnum)) {
      if (!r) {
        sock_.reset();  // a timeout leaves a reply in flight: start afresh
      }
      return r;
    }
    sock_.reset();  // the holder died: the next attempt starts another
  }
}

// Sends `m` with `fds`, then reads replies until the one to `m` (a reply left
// over from a call that timed out is dropped, its fds closed).
Result<HolderKeeper::Reply> HolderKeeper::exchange(const kh_msg& m, std::span<const int> fds) {
  uint8_t buf[KH_MAX_MSG + 1];
  size_t len = kh_encode(&m, buf, KH_MAX_MSG);
  if (len == 0 || fds.size() > 1 + KH_MAX_RUN_FDS) {
    return makeError("holder request", socket_path_, "does not encode (id or fds)");
  }
  iovec iov{.iov_base = buf, .iov_len = len};
  alignas(cmsghdr) char cbuf[CMSG_SPACE(sizeof(int) * (1 + KH_MAX_RUN_FDS))] = {};
  msghdr mh{.msg_iov = &iov, .msg_iovlen = 1};
  if (!fds.empty()) {
    mh.msg_control = cbuf;
    mh.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
    cmsghdr* c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
  }
  if (::sendmsg(sock_.get(), &mh, MSG_NOSIGNAL) != static_cast<ssize_t>(len)) {
    return sysError("send to holder", socket_path_);
  }
  for (int stale = 0; stale < 16; stale++) {
    iov = {.iov_base = buf, .iov_len = sizeof buf};
    mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf};
    ssize_t n = ::recvmsg(sock_.get(), &mh, MSG_CMSG_CLOEXEC);
    if (n <= 0) {
      return n == 0
                 ? sysError(ECONNRESET, "read from holder", socket_path_)
                 : sysError(errno == EAGAIN ? ETIMEDOUT : errno, "read from holder", socket_path_);
    }
    Reply r;
    for (cmsghdr* c = CMSG_FIRSTHDR(&mh); c != nullptr; c = CMSG_NXTHDR(&mh, c)) {
      if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
        size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t k = 0; k < count; k++) {
          int fd = -1;
          std::memcpy(&fd, CMSG_DATA(c) + k * sizeof(int), sizeof fd);
          r.fds.emplace_back(fd);
        }
      }
    }
    if ((mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) != 0 ||
        kh_parse(buf, static_cast<size_t>(n), &r.msg) != 0) {
      return makeError("read from holder", socket_path_, "a malformed reply");
    }
    if (r.msg.seq != m.seq) {
      continue;  // an earlier call's
    }
    if (r.msg.type != KH_ERROR && r.msg.type != (m.type | KH_REPLY)) {
      return makeError("read from holder", socket_path_, "a reply of another type");
    }
    size_t at = 0;
    const char* id = nullptr;
    size_t id_len = 0;
    while (r.msg.type == (KH_LIST | KH_REPLY) && kh_list_next(&r.msg, &at, &id, &id_len) != 0) {
      r.ids.emplace_back(id, id_len);
    }
    r.msg.list = nullptr;  // it pointed into buf
    return r;
  }
  return makeError("read from holder", socket_path_, "no reply to this request");
}

Result<void> HolderKeeper::keep(const std::string& id, int pid, uint64_t start_time, int pidfd,
                                std::span<const int> fds) {
  if (!kh_valid_id(id.data(), id.size()) || fds.size() > KH_MAX_RUN_FDS) {
    return makeError("keep run", id, "not a valid run id, or too many fds");
  }
  kh_msg m = request(KH_KEEP, id);
  m.pid = pid;
  m.start_time = start_time;
  std::vector<int> all = {pidfd};
  all.insert(all.end(), fds.begin(), fds.end());
  TRY(Reply r, call(m, all));
  if (r.msg.type == KH_ERROR) {
    return sysError(r.msg.errnum, "keep run " + id + " (pid " + std::to_string(pid) + ")",
                    socket_path_);
  }
  return {};
}

Result<std::optional<KeptRun>> HolderKeeper::fetch(const std::string& id) {
  if (!kh_valid_id(id.data(), id.size())) {
    return std::optional<KeptRun>();
  }
  kh_msg m = request(KH_FETCH, id);
  TRY(Reply r, call(m, {}));
  if (r.msg.type == KH_ERROR) {
    if (r.msg.errnum == ENOENT) {
      return std::optional<KeptRun>();
    }
    return sysError(r.msg.errnum, "fetch run " + id, socket_path_);
  }
  if (r.fds.empty() || r.fds.size() != r.msg.nfds) {
    return makeError("fetch run " + id, socket_path_, "the reply lacks the run's fds");
  }
  KeptRun run;
  run.pidfd = std::move(r.fds[0]);
  for (size_t i = 1; i < r.fds.size(); i++) {
    run.fds.push_back(std::move(r.fds[i]));
  }
  if (r.msg.state == KH_EXITED) {
    run.exit = KeptExit{.wait_status = r.msg.wait_status, .finished_unix_ns = r.msg.finished_ns};
  }
  run.exit_lost = r.msg.state == KH_EXIT_LOST;
  return std::optional<KeptRun>(std::move(run));
}

void HolderKeeper::forget(const std::string& id) {
  if (!kh_valid_id(id.data(), id.size())) {
    return;
  }
  kh_msg m = request(KH_FORGET, id);
  // Best effort, as RunKeeper says: a run not forgotten is dropped by the
  // holder a day after it ended.
  (void)call(m, {});
}

Result<std::vector<std::string>> HolderKeeper::list() {
  std::vector<std::string> ids;
  uint32_t from = 0;
  // Pages of what fits one datagram; bounded by the holder's maximum.
  for (int page = 0; page <= KH_MAX_RUNS; page++) {
    kh_msg m = request(KH_LIST);
    m.from = from;
    TRY(Reply r, call(m, {}));
    if (r.msg.type == KH_ERROR) {
      return sysError(r.msg.errnum, "list runs", socket_path_);
    }
    ids.insert(ids.end(), r.ids.begin(), r.ids.end());
    if (r.msg.next >= r.msg.total || r.msg.next <= from) {
      return ids;
    }
    from = r.msg.next;
  }
  return ids;
}

}  // namespace kernelet::agent::runtime
