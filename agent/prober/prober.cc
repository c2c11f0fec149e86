#include "agent/prober/prober.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "agent/prober/grpc_health.h"
#include "sys/unique_fd.h"

namespace kernelet::agent {
namespace {

// What the kubelet reads of an exec's output or an HTTP answer.
constexpr size_t kMaxRead = 10 * 1024;

// Go's error text: lower-case ("connection refused").
std::string goError(int err) {
  std::string s = std::strerror(err);
  if (!s.empty()) {
    s[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(s[0])));
  }
  return s;
}

// The common part: the timeout and a `done` called once, last.
class Run : public ProbeRun {
 public:
  Run(EventLoop& loop, TimerQueue& timers, std::function<void(ProbeOutcome)> done)
      : loop_(loop), timers_(timers), done_(std::move(done)) {}
  ~Run() override {
    timers_.cancel(timer_);
    timers_.cancel(soon_);
  }

 protected:
  void armTimeout(int seconds) {
    if (seconds <= 0) {
      return;  // no deadline of its own
    }
    timer_ = timers_.after(std::chrono::seconds(seconds), [this] {
      timer_ = 0;
      onTimeout();
    });
  }
  virtual void onTimeout() = 0;
  // A failure found while starting: reported from the loop, never before
  // startProbe() has returned the run.
  void finishSoon(bool success, std::string message) {
    soon_ = timers_.after(std::chrono::seconds(0), [this, success, message] {
      soon_ = 0;
      finish(success, message);
    });
  }
  // Releases what the run holds (fds off the loop, a process killed).
  virtual void stop() = 0;
  void finish(bool success, std::string message, int exit_code = -1) {
    if (finished_) {
      return;
    }
    finished_ = true;
    timers_.cancel(timer_);
    timer_ = 0;
    stop();
    auto done = std::move(done_);
    done({success, std::move(message), exit_code});  // last: it may destroy this run
  }

  EventLoop& loop_;
  TimerQueue& timers_;

 private:
  std::function<void(ProbeOutcome)> done_;
  TimerQueue::Id timer_ = 0, soon_ = 0;
  bool finished_ = false;
};

class ExecRun : public Run {
 public:
  using Run::Run;
  ~ExecRun() override { stop(); }

  void start(const Probe& probe, const ProbeTarget& target) {
    max_output_ = target.max_output;
    for (const auto& a : probe.command) {
      command_ += (command_.empty() ? "" : " ") + a;
    }
    int p[2];
    if (::pipe2(p, O_CLOEXEC | O_NONBLOCK) != 0) {
      return finishSoon(false, "pipe: " + goError(errno));
    }
    out_.reset(p[0]);
    UniqueFd w(p[1]);
    auto proc = target.exec(probe.command, w.get(),
                            std::chrono::seconds(std::max(probe.timeout_seconds, 1)));
    w.reset();
    if (!proc) {
      return finishSoon(false, proc.error().message());
    }
    proc_ = std::move(*proc);
    (void)loop_.add(out_.get(), EPOLLIN, [this](uint32_t) { drain(); });
    (void)loop_.add(proc_->exitFd(), EPOLLIN, [this](uint32_t) { exited(); });
    armTimeout(probe.timeout_seconds);
  }

 private:
  void drain() {
    char buf[4096];
    for (;;) {
      ssize_t n = ::read(out_.get(), buf, sizeof buf);
      if (n > 0) {
        output_.append(buf, std::min(static_cast<size_t>(n), max_output_ - output_.size()));
        continue;
      }
      if (n == 0) {
        loop_.remove(out_.get());
        out_.reset();
      }
      return;  // EAGAIN: more later
    }
  }
  void exited() {
    if (out_) {
      drain();  // what it wrote before it exited
    }
    loop_.remove(proc_->exitFd());
    auto status = proc_->reap();
    proc_.reset();
    if (!status) {
      // The command never ran (its setup failed or passed the deadline).
      return finish(false, status.error().message());
    }
    finish(*status == 0, output_, *status);
  }
  void onTimeout() override { finish(false, "command \"" + command_ + "\" timed out"); }
  void stop() override {
    if (out_) {
      loop_.remove(out_.get());
      out_.reset();
    }
    if (proc_) {
      loop_.remove(proc_->exitFd());
      proc_.reset();  // kills and reaps it
    }
  }

  std::unique_ptr<runtime::ExecProcess> proc_;
  UniqueFd out_;
  std::string output_, command_;
  size_t max_output_ = kMaxRead;
};

// tcpSocket, and httpGet on top of it.
class SocketRun : public Run {
 public:
  SocketRun(EventLoop& loop, TimerQueue& timers, std::function<void(ProbeOutcome)> done, bool http)
      : Run(loop, timers, std::move(done)), http_(http) {}
  ~SocketRun() override { stop(); }

  void start(const Probe& probe, const ProbeTarget& target) {
    any_status_ = target.any_status;
    std::string host = probe.host.empty() ? target.ip : probe.host;
    std::string hostport = host + ":" + std::to_string(probe.port);
    dial_ = "dial tcp " + hostport;
    tls_ = http_ && probe.scheme == "HTTPS";
    url_ = (tls_ ? "https://" : "http://") + hostport + probe.path;
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(probe.port));
    if (::inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1) {
      // The kubelet would resolve a name from the node; the probe's host is
      // almost always an IP (set a Host header to name a virtual host).
      return failSoon("dial tcp: lookup " + host + ": kernelet probes take an IP address as host");
    }
    if (http_) {
      request_ = "GET " + probe.path + " HTTP/1.1\r\n";
      bool has_host = false, has_agent = false, has_accept = false;
      for (const auto& [k, v] : probe.headers) {
        has_host = has_host || strcasecmp(k.c_str(), "Host") == 0;
        has_agent = has_agent || strcasecmp(k.c_str(), "User-Agent") == 0;
        has_accept = has_accept || strcasecmp(k.c_str(), "Accept") == 0;
        request_ += k + ": " + v + "\r\n";
      }
      request_ += has_host ? "" : "Host: " + hostport + "\r\n";
      request_ += has_agent ? "" : "User-Agent: " + target.user_agent + "\r\n";
      request_ += has_accept ? "" : "Accept: */*\r\n";
      request_ += "Connection: close\r\n\r\n";
    }
    fd_.reset(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd_) {
      return failSoon("socket: " + goError(errno));
    }
    armTimeout(probe.timeout_seconds);
    if (::connect(fd_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 &&
        errno != EINPROGRESS) {
      return failSoon(dial_ + ": connect: " + goError(errno));
    }
    watch(EPOLLOUT, [this] { connected(); });
  }

 private:
  void watch(uint32_t events, std::function<void()> then) {
    if (watching_) {
      loop_.remove(fd_.get());
    }
    watching_ = loop_.add(fd_.get(), events, [then](uint32_t) { then(); }).has_value();
  }
  std::string failure(const std::string& why) const {
    return http_ ? "Get \"" + url_ + "\": " + why : why;
  }
  void fail(const std::string& why) { finish(false, failure(why)); }
  void failSoon(const std::string& why) { finishSoon(false, failure(why)); }
  void connected() {
    int err = 0;
    socklen_t len = sizeof err;
    ::getsockopt(fd_.get(), SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) {
      return fail(dial_ + ": connect: " + goError(err));
    }
    if (!http_) {
      return finish(true, "");
    }
    if (tls_) {
      ssl_ = SSL_new(tlsContext());
      if (ssl_ == nullptr || SSL_set_fd(ssl_, fd_.get()) != 1) {
        return fail("tls: cannot set up a session");
      }
      return handshake();
    }
    // A short request on a fresh connection: one send takes it.
    if (::send(fd_.get(), request_.data(), request_.size(), MSG_NOSIGNAL) !=
        static_cast<ssize_t>(request_.size())) {
      return fail("write: " + goError(errno));
    }
    watch(EPOLLIN, [this] { readable(); });
  }
  // HTTPS: the kubelet does not verify a pod's certificate, neither do we.
  static SSL_CTX* tlsContext() {
    static SSL_CTX* ctx = [] {
      SSL_CTX* c = SSL_CTX_new(TLS_client_method());
      if (c != nullptr) {
        SSL_CTX_set_verify(c, SSL_VERIFY_NONE, nullptr);
      }
      return c;
    }();
    return ctx;
  }
  // Runs `step` again when the TLS session wants the socket readable or
  // writable; false when `r` was a real failure.
  bool tlsAgain(int r, void (SocketRun::*step)()) {
    int err = SSL_get_error(ssl_, r);
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
      watch(err == SSL_ERROR_WANT_READ ? EPOLLIN : EPOLLOUT, [this, step] { (this->*step)(); });
      return true;
    }
    return false;
  }
  void handshake() {
    int r = SSL_connect(ssl_);
    if (r == 1) {
      return sendTls();
    }
    if (!tlsAgain(r, &SocketRun::handshake)) {
      fail("tls: handshake failure");
    }
  }
  void sendTls() {
    int r = SSL_write(ssl_, request_.data(), static_cast<int>(request_.size()));
    if (r > 0) {
      return watch(EPOLLIN, [this] { readable(); });
    }
    if (!tlsAgain(r, &SocketRun::sendTls)) {
      fail("write: tls failure");
    }
  }
  // One read: bytes, 0 at the end, -1 with errno EAGAIN for "later", else -1.
  ssize_t readSome(char* buf, size_t size) {
    if (!tls_) {
      return ::recv(fd_.get(), buf, size, 0);
    }
    int r = SSL_read(ssl_, buf, static_cast<int>(size));
    if (r > 0) {
      return r;
    }
    int err = SSL_get_error(ssl_, r);
    if (err == SSL_ERROR_ZERO_RETURN || (err == SSL_ERROR_SYSCALL && errno == 0)) {
      return 0;
    }
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
      if (err == SSL_ERROR_WANT_WRITE) {
        watch(EPOLLOUT, [this] { readable(); });
      }
      errno = EAGAIN;
      return -1;
    }
    errno = EPROTO;
    return -1;
  }
  void readable() {
    char buf[4096];
    for (;;) {
      ssize_t n = readSome(buf, sizeof buf);
      if (n > 0) {
        answer_.append(buf, std::min(static_cast<size_t>(n), kMaxRead - answer_.size()));
        if (answer_.find("\r\n") != std::string::npos || answer_.size() >= kMaxRead) {
          return answered();
        }
        continue;
      }
      if (n == 0) {
        return answered();
      }
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        return;
      }
      return fail("read: " + goError(errno));
    }
  }
  void answered() {
    // "HTTP/1.1 200 OK": 200-399 is success (the kubelet's rule).
    int code = 0;
    if (answer_.starts_with("HTTP/1.") && answer_.size() >= 12) {
      code = std::atoi(answer_.c_str() + 9);
    }
    if (code == 0) {
      return fail("malformed HTTP response");
    }
    if ((code >= 200 && code < 400) || any_status_) {
      return finish(true, "");
    }
    finish(false, "HTTP probe failed with statuscode: " + std::to_string(code));
  }
  void onTimeout() override {
    fail(http_ ? "context deadline exceeded (Client.Timeout exceeded while awaiting headers)"
               : dial_ + ": i/o timeout");
  }
  void stop() override {
    if (watching_) {
      loop_.remove(fd_.get());
      watching_ = false;
    }
    if (ssl_ != nullptr) {
      SSL_free(ssl_);
      ssl_ = nullptr;
    }
    fd_.reset();
  }

  bool http_, tls_ = false, any_status_ = false;
  SSL* ssl_ = nullptr;
  UniqueFd fd_;
  bool watching_ = false;
  std::string dial_, url_, request_, answer_;
};

// grpc: one call of grpc.health.v1.Health/Check over HTTP/2 to the pod's IP
// (grpc_health.h). As grpc-go dialing with WithBlock, as the kubelet does, a
// refused or broken connection is dialed again (after grpc-go's first
// back-off, 1 s) until the probe's deadline, whose message then names it.
class GrpcRun : public Run {
 public:
  using Run::Run;
  ~GrpcRun() override { stop(); }

  void start(const Probe& probe, const ProbeTarget& target) {
    authority_ = target.ip + ":" + std::to_string(probe.port);
    service_ = probe.grpc_service;
    timeout_seconds_ = probe.timeout_seconds;
    addr_.sin_family = AF_INET;
    addr_.sin_port = htons(static_cast<uint16_t>(probe.port));
    if (::inet_pton(AF_INET, target.ip.c_str(), &addr_.sin_addr) != 1) {
      return finishSoon(false, "error: failed to connect service at \"" + authority_ +
                                   "\": kernelet probes take an IP address as host");
    }
    armTimeout(probe.timeout_seconds);
    dial();
  }

 private:
  void dial() {
    redial_ = 0;
    check_ = std::make_unique<GrpcHealthCheck>(authority_, service_, timeout_seconds_);
    out_ = check_->takeOutput();
    fd_.reset(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd_) {
      return dialLater();
    }
    if (::connect(fd_.get(), reinterpret_cast<sockaddr*>(&addr_), sizeof addr_) != 0 &&
        errno != EINPROGRESS) {
      return dialLater();
    }
    watch(EPOLLOUT);
  }
  void dialLater() {
    unwatch();
    fd_.reset();
    redial_ = timers_.after(std::chrono::seconds(1), [this] { dial(); });
  }
  void unwatch() {
    if (watching_) {
      loop_.remove(fd_.get());
      watching_ = false;
    }
  }
  void watch(uint32_t events) {
    unwatch();
    watching_ = loop_.add(fd_.get(), events, [this](uint32_t ev) { ready(ev); }).has_value();
  }
  void ready(uint32_t events) {
    if (!tcp_up_) {
      int err = 0;
      socklen_t len = sizeof err;
      ::getsockopt(fd_.get(), SOL_SOCKET, SO_ERROR, &err, &len);
      if (err != 0) {
        return dialLater();
      }
      tcp_up_ = true;
    }
    if ((events & (EPOLLIN | EPOLLHUP | EPOLLERR)) != 0 && !readAll()) {
      return;
    }
    if (check_->outcome()) {
      const auto& o = *check_->outcome();
      return finish(o.success, o.message);
    }
    out_ += check_->takeOutput();
    if (out_.size() > kMaxGrpcPending) {
      // A server that sends (PINGs, SETTINGS) and never reads what it is
      // answered: the answers pile up here, not in nghttp2, so bound them.
      return finish(false,
                    "error: health rpc probe failed: rpc error: code = Unavailable desc = the "
                    "server does not read what the probe sends");
    }
    if (!out_.empty()) {
      ssize_t n = ::send(fd_.get(), out_.data(), out_.size(), MSG_NOSIGNAL);
      if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
        return lost();
      }
      out_.erase(0, n > 0 ? static_cast<size_t>(n) : 0);
    }
    watch(out_.empty() ? EPOLLIN : EPOLLIN | EPOLLOUT);
  }
  // Feeds what can be read to the session; false when the connection is
  // gone or broken (handled).
  bool readAll() {
    char buf[4096];
    // At most kMaxGrpcRead a round: the loop is level-triggered, so the rest
    // comes next round, after the probe's timer has had its chance. A
    // server that keeps sending what nghttp2 takes without an answer
    // (unknown frame types) would otherwise hold the loop here.
    for (size_t round = 0; round < kMaxGrpcRead; round += sizeof buf) {
      ssize_t n = ::recv(fd_.get(), buf, sizeof buf, 0);
      if (n > 0) {
        received_ += static_cast<size_t>(n);
        if (received_ > kMaxGrpcReceived) {
          // A health answer is a few hundred bytes.
          finish(false,
                 "error: health rpc probe failed: rpc error: code = ResourceExhausted desc = the "
                 "server sent more than " +
                     std::to_string(kMaxGrpcReceived) + " bytes");
          return false;
        }
        if (!check_->receive(std::string_view(buf, static_cast<size_t>(n)))) {
          lost();
          return false;
        }
        if (check_->outcome()) {
          return true;
        }
        continue;
      }
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        return true;
      }
      lost();  // EOF or a reset
      return false;
    }
    return true;
  }
  // The connection ended before the call did: its outcome once READY, else
  // a new dial (grpc-go's WithBlock).
  void lost() {
    check_->closed();
    if (check_->outcome()) {
      const auto& o = *check_->outcome();
      return finish(o.success, o.message);
    }
    tcp_up_ = false;
    dialLater();
  }
  void onTimeout() override { finish(false, check_->timeoutMessage()); }
  void stop() override {
    timers_.cancel(redial_);
    redial_ = 0;
    unwatch();
    fd_.reset();
  }

  static constexpr size_t kMaxGrpcRead = 64 * 1024, kMaxGrpcReceived = 1024 * 1024,
                          kMaxGrpcPending = 64 * 1024;
  std::string authority_, service_, out_;
  size_t received_ = 0;  // over every connection of this run
  int timeout_seconds_ = 1;
  sockaddr_in addr_{};
  std::unique_ptr<GrpcHealthCheck> check_;
  UniqueFd fd_;
  bool watching_ = false, tcp_up_ = false;
  TimerQueue::Id redial_ = 0;
};

}  // namespace

std::unique_ptr<ProbeRun> startProbe(EventLoop& loop, TimerQueue& timers, const Probe& probe,
                                     const ProbeTarget& target,
                                     std::function<void(ProbeOutcome)> done) {
  if (probe.kind == Probe::Kind::kExec) {
    auto run = std::make_unique<ExecRun>(loop, timers, std::move(done));
    run->start(probe, target);
    return run;
  }
  if (probe.kind == Probe::Kind::kGrpc) {
    auto run = std::make_unique<GrpcRun>(loop, timers, std::move(done));
    run->start(probe, target);
    return run;
  }
  auto run = std::make_unique<SocketRun>(loop, timers, std::move(done),
                                         probe.kind == Probe::Kind::kHttpGet);
  run->start(probe, target);
  return run;
}

}  // namespace kernelet::agent
