#include "agent/node/dbus_connection.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstddef>
#include <cstdlib>
#include <cstring>

namespace kernelet::agent::dbus {
namespace {

using Clock = std::chrono::steady_clock;

constexpr size_t kMaxFdsPerRead = 16;
constexpr size_t kMaxLine = 512;  // an authentication reply is "OK <32 hex digits>"

int msLeft(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return static_cast<int>(std::max<int64_t>(0, left.count()));
}

std::string hex(const std::string& s) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) {
    out += kDigits[c >> 4];
    out += kDigits[c & 0xf];
  }
  return out;
}

}  // namespace

std::string systemBusAddress() {
  const char* env = ::getenv("DBUS_SYSTEM_BUS_ADDRESS");
  return env != nullptr && *env != '\0' ? env : "unix:path=/run/dbus/system_bus_socket";
}

Result<std::string> unixSocketOf(const std::string& address) {
  size_t at = 0;
  while (at <= address.size()) {
    size_t end = address.find(';', at);
    std::string entry = address.substr(at, end == std::string::npos ? end : end - at);
    if (entry.rfind("unix:", 0) == 0) {
      // Keys are comma-separated; values are not escaped in the addresses
      // dbus-daemon and systemd hand out for these.
      size_t k = 5;
      while (k < entry.size()) {
        size_t comma = entry.find(',', k);
        std::string kv = entry.substr(k, comma == std::string::npos ? comma : comma - k);
        if (kv.rfind("path=", 0) == 0 && kv.size() > 5) {
          return kv.substr(5);
        }
        if (kv.rfind("abstract=", 0) == 0 && kv.size() > 9) {
          return "@" + kv.substr(9);
        }
        if (comma == std::string::npos) {
          break;
        }
        k = comma + 1;
      }
    }
    if (end == std::string::npos) {
      break;
    }
    at = end + 1;
  }
  return makeError("D-Bus address", address, "no unix:path= or unix:abstract= entry");
}

Result<std::unique_ptr<Connection>> Connection::open(const std::string& address,
                                                     std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  TRY(std::string socket, unixSocketOf(address));
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  if (socket.size() >= sizeof a.sun_path) {
    return makeError("connect to D-Bus", socket, "socket path too long");
  }
  std::memcpy(a.sun_path, socket.data(), socket.size());
  auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + socket.size() + 1);
  if (socket[0] == '@') {
    a.sun_path[0] = '\0';
    len--;
  }
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) {
    return sysError("socket", socket);
  }
  std::unique_ptr<Connection> c(new Connection(UniqueFd(fd), socket));
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), len) != 0) {
    return sysError("connect to D-Bus", socket);
  }
  TRY_VOID(c->authenticate(deadline));
  TRY(Received hello,
      c->call({.destination = "org.freedesktop.DBus",
               .path = "/org/freedesktop/DBus",
               .interface = "org.freedesktop.DBus",
               .member = "Hello"},
              std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now())));
  Reader r(hello.message.body, hello.message.signature, hello.message.big_endian);
  TRY(c->unique_name_, r.readString());
  return c;
}

// SASL as the specification's "Authentication Protocol": a NUL byte, AUTH
// EXTERNAL with our uid in hex, then unix-fd passing, which logind's
// Inhibit() needs to hand us the lock.
Result<void> Connection::authenticate(Clock::time_point deadline) {
  std::string auth("\0AUTH EXTERNAL ", 15);
  auth += hex(std::to_string(::geteuid())) + "\r\n";
  TRY_VOID(writeAll(auth, deadline));
  TRY(std::string ok, readLine(deadline));
  if (ok.rfind("OK ", 0) != 0) {
    return makeError("authenticate to D-Bus", shown_, "the bus answered \"" + ok + "\"");
  }
  TRY_VOID(writeAll("NEGOTIATE_UNIX_FD\r\n", deadline));
  TRY(std::string agree, readLine(deadline));
  if (agree != "AGREE_UNIX_FD") {
    return makeError("authenticate to D-Bus", shown_,
                     "the bus does not pass file descriptors: \"" + agree + "\"");
  }
  return writeAll("BEGIN\r\n", deadline);
}

Result<void> Connection::writeAll(const std::string& bytes, Clock::time_point deadline) {
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::send(fd_.get(), bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
    if (n > 0) {
      done += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno != EAGAIN && errno != EINTR) {
      return sysError("write to D-Bus", shown_);
    }
    pollfd p{fd_.get(), POLLOUT, 0};
    if (::poll(&p, 1, msLeft(deadline)) == 0) {
      return makeError("write to D-Bus", shown_, "timed out");
    }
  }
  return {};
}

Result<void> Connection::fill(std::optional<Clock::time_point> deadline) {
  if (deadline) {
    pollfd p{fd_.get(), POLLIN, 0};
    int ready = ::poll(&p, 1, msLeft(*deadline));
    if (ready == 0) {
      return makeError("read from D-Bus", shown_, "timed out");
    }
  }
  char buf[16384];
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxFdsPerRead)];
  iovec iov{buf, sizeof buf};
  msghdr m{};
  m.msg_iov = &iov;
  m.msg_iovlen = 1;
  m.msg_control = control;
  m.msg_controllen = sizeof control;
  ssize_t n = ::recvmsg(fd_.get(), &m, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
  // The fds first: they are ours to close whatever else went wrong.
  for (cmsghdr* c = CMSG_FIRSTHDR(&m); c != nullptr; c = CMSG_NXTHDR(&m, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
      size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (size_t i = 0; i < count; i++) {
        int fd = -1;
        std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
        in_fds_.emplace_back(fd);
      }
    }
  }
  if (n < 0) {
    if (errno == EAGAIN || errno == EINTR) {
      return {};
    }
    return sysError("read from D-Bus", shown_);
  }
  if (n == 0) {
    return makeError("read from D-Bus", shown_, "the bus closed the connection");
  }
  if ((m.msg_flags & MSG_CTRUNC) != 0) {
    return makeError("read from D-Bus", shown_, "too many file descriptors in one message");
  }
  in_.append(buf, static_cast<size_t>(n));
  return {};
}

Result<std::string> Connection::readLine(Clock::time_point deadline) {
  while (true) {
    size_t end = in_.find("\r\n");
    if (end != std::string::npos) {
      std::string line = in_.substr(0, end);
      in_.erase(0, end + 2);
      return line;
    }
    if (in_.size() > kMaxLine) {
      return makeError("authenticate to D-Bus", shown_, "reply line too long");
    }
    TRY_VOID(fill(deadline));
  }
}

Result<std::optional<Received>> Connection::next() {
  TRY(std::optional<size_t> len, messageLength(in_));
  if (!len || in_.size() < *len) {
    return std::optional<Received>();
  }
  Received r;
  TRY(r.message, decode(std::string_view(in_).substr(0, *len)));
  in_.erase(0, *len);
  if (r.message.unix_fds > in_fds_.size()) {
    return makeError("read from D-Bus", shown_, "a message's file descriptors are missing");
  }
  for (uint32_t i = 0; i < r.message.unix_fds; i++) {
    r.fds.push_back(std::move(in_fds_.front()));
    in_fds_.pop_front();
  }
  return std::optional<Received>(std::move(r));
}

Result<Received> Connection::call(const Call& call, std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  uint32_t serial = ++serial_;
  TRY_VOID(writeAll(encode(call, serial), deadline));
  while (true) {
    TRY(std::optional<Received> r, next());
    if (!r) {
      TRY_VOID(fill(deadline));
      continue;
    }
    const Message& m = r->message;
    if (m.type == Type::kSignal) {
      signals_.push_back(std::move(*r));
      continue;
    }
    if (m.reply_serial != serial) {
      continue;  // a reply to a call we no longer wait for, or a call to us
    }
    if (m.type == Type::kError) {
      std::string text;
      Reader reader(m.body, m.signature, m.big_endian);
      if (!reader.atEnd()) {
        auto s = reader.readString();
        text = s ? *s : "";
      }
      return makeError(call.interface + "." + call.member, call.destination,
                       m.error_name + (text.empty() ? "" : ": " + text));
    }
    return std::move(*r);
  }
}

Result<std::vector<Received>> Connection::readSignals() {
  TRY_VOID(fill(std::nullopt));
  std::vector<Received> out(std::make_move_iterator(signals_.begin()),
                            std::make_move_iterator(signals_.end()));
  signals_.clear();
  while (true) {
    TRY(std::optional<Received> r, next());
    if (!r) {
      return out;
    }
    if (r->message.type == Type::kSignal) {
      out.push_back(std::move(*r));
    }
  }
}

}  // namespace kernelet::agent::dbus
