#include "netns/dial.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <system_error>
#include <utility>

namespace kernelet::netns {
namespace {

using Clock = std::chrono::steady_clock;

// Go's wording of an errno ("connection refused"), which is strerror's with
// a lower-case first letter, so our messages read as containerd's.
std::string goErrno(int err) {
  std::string s = std::strerror(err);
  if (!s.empty()) {
    s[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(s[0])));
  }
  return s;
}

struct Family {
  int domain;
  const char* network;  // Go's name: "tcp4", "tcp6"
  const char* host;     // as Go prints the address
};
constexpr Family kV4{AF_INET, "tcp4", "127.0.0.1"};
constexpr Family kV6{AF_INET6, "tcp6", "[::1]"};

// A socket of each family, or the errno that refused it.
struct Sockets {
  UniqueFd v4, v6;
  int v4_err = 0, v6_err = 0;
};

Sockets makeSockets() {
  Sockets s;
  s.v4.reset(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  s.v4_err = s.v4 ? 0 : errno;
  s.v6.reset(::socket(AF_INET6, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  s.v6_err = s.v6 ? 0 : errno;
  return s;
}

// Makes the sockets inside the namespace: a thread of our own joins it and
// ends there, so no other thread's namespace changes, even for a moment.
Result<Sockets> makeSocketsIn(const std::string& ns_path) {
  if (ns_path.empty()) {
    return makeSockets();
  }
  UniqueFd ns(::open(ns_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!ns) {
    return sysError("open", ns_path);
  }
  Sockets s;
  int setns_err = 0;
  try {
    std::thread t([&] {
      if (::setns(ns.get(), CLONE_NEWNET) != 0) {
        setns_err = errno;
        return;
      }
      s = makeSockets();
    });
    t.join();
  } catch (const std::system_error& e) {
    return sysError(e.code().value(), "create dial thread", ns_path);
  }
  if (setns_err != 0) {
    return sysError(setns_err, "setns", ns_path);
  }
  return s;
}

// Connects `fd` to the family's loopback address; empty on success, else
// what failed in Go's words ("connect: connection refused").
std::string connectLoopback(int fd, const Family& f, uint16_t port,
                            std::chrono::milliseconds timeout) {
  sockaddr_storage ss{};
  socklen_t len = 0;
  if (f.domain == AF_INET) {
    auto* sin = reinterpret_cast<sockaddr_in*>(&ss);
    sin->sin_family = AF_INET;
    sin->sin_port = htons(port);
    sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    len = sizeof(sockaddr_in);
  } else {
    auto* sin6 = reinterpret_cast<sockaddr_in6*>(&ss);
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons(port);
    sin6->sin6_addr = in6addr_loopback;
    len = sizeof(sockaddr_in6);
  }
  if (::connect(fd, reinterpret_cast<sockaddr*>(&ss), len) == 0) {
    return {};
  }
  if (errno != EINPROGRESS) {
    return "connect: " + goErrno(errno);
  }
  // A full backlog: wait for the answer, no longer than the timeout.
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) {
      return "connect: " + goErrno(ETIMEDOUT);
    }
    pollfd p{.fd = fd, .events = POLLOUT, .revents = 0};
    int n = ::poll(&p, 1, static_cast<int>(left.count()));
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0) {
      return "poll: " + goErrno(errno);
    }
    if (n == 0) {
      continue;  // the deadline check above answers
    }
    int err = 0;
    socklen_t err_len = sizeof(err);
    if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &err_len) != 0) {
      return "getsockopt: " + goErrno(errno);
    }
    return err == 0 ? std::string() : "connect: " + goErrno(err);
  }
}

// One family's attempt: the connected socket, or Go's "dial tcp4 ADDR: ...".
Result<UniqueFd> dialFamily(UniqueFd fd, int socket_err, const Family& f, uint16_t port,
                            std::chrono::milliseconds timeout) {
  std::string what;
  if (!fd) {
    what = "socket: " + goErrno(socket_err);
  } else {
    what = connectLoopback(fd.get(), f, port, timeout);
  }
  if (what.empty()) {
    return fd;
  }
  return makeError(
      "dial", "",
      std::string("dial ") + f.network + " " + f.host + ":" + std::to_string(port) + ": " + what);
}

}  // namespace

Result<UniqueFd> dialLocalhost(const DialTarget& target, uint16_t port,
                               std::chrono::milliseconds timeout) {
  TRY(Sockets s, makeSocketsIn(target.ns_path));
  auto v4 = dialFamily(std::move(s.v4), s.v4_err, kV4, port, timeout);
  if (v4) {
    return v4;
  }
  auto v6 = dialFamily(std::move(s.v6), s.v6_err, kV6, port, timeout);
  if (v6) {
    return v6;
  }
  // containerd's words, its trailing space included, as kubectl shows them.
  Error e{.op = "failed to connect to localhost:" + std::to_string(port) + " inside namespace \"" +
                target.ns_id + "\", IPv4: " + v4.error().detail + " IPv6 " + v6.error().detail +
                " "};
  return std::unexpected(withContext(
      std::move(e), "failed to execute portforward in network namespace \"" +
                        (target.ns_path.empty() ? std::string("host") : target.ns_path) + "\""));
}

Dialer::Dialer(std::chrono::milliseconds timeout, size_t max_in_flight)
    : timeout_(timeout), max_in_flight_(max_in_flight) {}

Dialer::~Dialer() {
  std::vector<std::thread> done;
  {
    std::unique_lock lock(mu_);
    idle_.wait(lock, [this] { return running_.size() == finished_.size(); });
    joinFinishedLocked(done);
  }
  for (auto& t : done) {
    t.join();
  }
}

// Takes the threads that ended out of running_, for joining outside the lock.
void Dialer::joinFinishedLocked(std::vector<std::thread>& out) {
  for (uint64_t id : finished_) {
    auto it = running_.find(id);
    out.push_back(std::move(it->second));
    running_.erase(it);
  }
  finished_.clear();
}

void Dialer::dial(DialTarget target, uint16_t port, Done done) {
  // Shared, so a thread that cannot be made leaves the request to refuse.
  struct Job {
    DialTarget target;
    uint16_t port;
    Done done;
  };
  auto job = std::make_shared<Job>(Job{std::move(target), port, std::move(done)});
  std::vector<std::thread> ended;
  bool refused = false;
  {
    std::lock_guard lock(mu_);
    joinFinishedLocked(ended);
    if (running_.size() >= max_in_flight_) {
      refused = true;
    } else {
      uint64_t id = next_id_++;
      try {
        running_[id] = std::thread([this, id, job] {
          job->done(dialLocalhost(job->target, job->port, timeout_));
          job->done = nullptr;  // what it holds goes before the destructor may return
          std::lock_guard lock(mu_);
          finished_.push_back(id);
          idle_.notify_all();
        });
      } catch (const std::system_error&) {
        running_.erase(id);
        refused = true;
      }
    }
  }
  for (auto& t : ended) {
    t.join();
  }
  if (refused) {
    job->done(makeError("dial", job->target.ns_path,
                        "too many connections being dialed at once (at most " +
                            std::to_string(max_in_flight_) + ")"));
  }
}

}  // namespace kernelet::netns
