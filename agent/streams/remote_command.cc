#include "agent/streams/remote_command.h"

#include <sys/ioctl.h>
#include <sys/socket.h>
#include <termios.h>
#include <unistd.h>

#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <deque>
#include <map>
#include <optional>
#include <set>

#include "agent/log/log.h"
#include "agent/streams/console_socket.h"
#include "agent/streams/terminal_size.h"

namespace kernelet::agent::streams {

namespace {

namespace asio = boost::asio;
using Descriptor = asio::posix::stream_descriptor;

// Closes where failing changes nothing: a descriptor we are done with.
template <typename Op>
void quietly(Op op) {
  boost::system::error_code ec;
  if (op(ec)) {
    return;  // closed either way
  }
}

// Output is read in chunks of this size, one per stream in flight: a pipe's
// capacity, so a full pipe is one message (one WebSocket frame, one SPDY DATA
// frame) and one turn of the loop, not two.
constexpr size_t kChunk = size_t{64} << 10;

// Process output on its way to one stream (stdout or stderr).
struct Output {
  std::optional<StreamId> id;  // none: the client did not ask; read and dropped
  Descriptor* fd = nullptr;    // the pipe's read end, or the terminal's master
  std::vector<char> buf;
  bool in_flight = false;  // a write to the transport waits for `sent`
  bool done = false;       // EOF (EIO for a terminal), or the client went
};

class RemoteCommand : public std::enable_shared_from_this<RemoteCommand> {
 public:
  RemoteCommand(std::shared_ptr<Transport> transport, const std::string& protocol,
                RemoteCommandOptions options, ExecStarter starter, RemoteCommandDone done)
      : transport_(std::move(transport)),
        version_(remoteCommandVersion(protocol)),
        protocol_(protocol),
        opts_(std::move(options)),
        starter_(std::move(starter)),
        done_(std::move(done)),
        timer_(transport_->executor()) {
    if (opts_.tty && opts_.use_stderr) {
      log::v(4, "Access to exec with tty and stderr is not supported, bypassing stderr",
             logFields());
      opts_.use_stderr = false;
    }
    outcome_.command = opts_.command;
  }

  void start() {
    self_ = shared_from_this();
    std::weak_ptr<RemoteCommand> weak = self_;
    TransportEvents ev;
    ev.opened = [weak](StreamId id, const StreamHeaders& h) {
      if (auto s = weak.lock()) {
        s->onOpened(id, h);
      }
    };
    ev.data = [weak](StreamId id, std::string_view bytes) {
      if (auto s = weak.lock()) {
        s->onData(id, bytes);
      }
    };
    ev.half_closed = [weak](StreamId id) {
      if (auto s = weak.lock()) {
        s->onInputEnd(id, false);
      }
    };
    ev.reset = [weak](StreamId id) {
      if (auto s = weak.lock()) {
        s->onReset(id);
      }
    };
    ev.closed = [weak](const Error& e) {
      if (auto s = weak.lock()) {
        s->onClosed(e);
      }
    };
    timer_.expires_after(opts_.stream_creation_timeout);
    timer_.async_wait([self = self_](boost::system::error_code ec) {
      if (!ec) {
        self->onStreamTimeout();
      }
    });
    log::v(4, "Exec request", logFields({{"command", joined()}, {"protocol", protocol_}}));
    transport_->start(std::move(ev));
  }

 private:
  enum class Phase : uint8_t { kWaiting, kRunning, kEnding, kDone };

  log::Fields logFields(log::Fields extra = {}) const {
    log::Fields f{{"pod", opts_.pod.namespace_ + "/" + opts_.pod.name},
                  {"container", opts_.container}};
    f.insert(f.end(), extra.begin(), extra.end());
    return f;
  }
  std::string joined() const {
    std::string s;
    for (const auto& a : opts_.command) {
      s += (s.empty() ? "" : " ") + a;
    }
    return s;
  }

  // The stream types this exec needs before it starts: the kubelet counts
  // error, each stdio asked for, and resize with a terminal (SPDY from v3 on;
  // WebSocket always has the channel).
  bool needed(const std::string& type) const {
    if (type == "error") {
      return true;
    }
    if (type == "stdin") {
      return opts_.use_stdin;
    }
    if (type == "stdout") {
      return opts_.use_stdout;
    }
    if (type == "stderr") {
      return opts_.use_stderr;
    }
    if (type == "resize") {
      return opts_.tty && (opts_.websocket || version_ >= 3);
    }
    return false;
  }
  bool allStreams() const {
    for (const char* t : {"error", "stdin", "stdout", "stderr", "resize"}) {
      if (needed(t) && !streams_.contains(t)) {
        return false;
      }
    }
    return true;
  }
  std::optional<StreamId> stream(const std::string& type) const {
    auto it = streams_.find(type);
    if (it == streams_.end()) {
      return std::nullopt;
    }
    return it->second;
  }

  // ---- the client's events ----

  void onOpened(StreamId id, const StreamHeaders& h) {
    static const std::set<std::string> kKnown{"error", "stdin", "stdout", "stderr", "resize"};
    if (!kKnown.contains(h.type) || streams_.contains(h.type) || phase_ != Phase::kWaiting) {
      // The kubelet logs "unexpected stream type" and ignores it; we also
      // drop it, so its data cannot pile up unconsumed.
      log::v(4, "Unexpected stream", logFields({{"streamType", h.type}}));
      transport_->reset(id);
      return;
    }
    streams_[h.type] = id;
    types_[id] = h.type;
    if (allStreams()) {
      onStreamsReady();
    }
  }

  void onData(StreamId id, std::string_view bytes) {
    auto it = types_.find(id);
    std::string type = it == types_.end() ? "" : it->second;
    if (type == "stdin" && !stdin_closed_ && opts_.use_stdin) {
      stdin_queue_.emplace_back(bytes);
      pumpStdin();
      return;
    }
    transport_->consumed(id, bytes.size());  // nowhere to go: dropped, not held
    if (type == "resize" && opts_.tty) {
      onResizeBytes(bytes);
    }
  }

  // stdin's end: the client's FIN (SPDY), v5's CLOSE signal (WebSocket), or a
  // reset (`drop`: what is queued is not delivered).
  void onInputEnd(StreamId id, bool drop) {
    if (stream("stdin") != id) {
      return;
    }
    stdin_eof_ = true;
    if (drop) {
      dropStdin();
    }
    pumpStdin();
  }

  void onReset(StreamId id) {
    auto type = types_.find(id);
    if (type == types_.end()) {
      return;
    }
    if (type->second == "stdin") {
      return onInputEnd(id, true);
    }
    if (type->second == "stdout" || type->second == "stderr") {
      // Nobody reads this output any more: the process sees EPIPE.
      Output& o = type->second == "stdout" ? out_ : err_;
      o.id.reset();
      stopOutput(o);
    }
  }

  void onClosed(const Error& e) {
    conn_closed_ = true;
    if (phase_ == Phase::kWaiting) {
      timer_.cancel();
      never_started_ = true;
      outcome_ = failure("the connection closed before the streams were created: " + e.message());
    } else if (phase_ == Phase::kRunning) {
      log::v(4, "Exec client went away", logFields({{"reason", e.message()}}));
    }
    if (phase_ == Phase::kWaiting) {
      phase_ = Phase::kDone;
    }
    // The process sees EOF on stdin, EPIPE on output, or SIGHUP from its
    // terminal; its exit is still awaited, so nothing is left behind.
    closeFds();
    maybeComplete();
  }

  void onStreamTimeout() {
    if (phase_ != Phase::kWaiting) {
      return;
    }
    // The kubelet logs this and drops the connection without starting anything.
    log::error("timed out waiting for client to create streams", logFields());
    never_started_ = true;
    outcome_ = failure("timed out waiting for client to create streams");
    phase_ = Phase::kDone;
    transport_->close();
  }

  // ---- starting ----

  void onStreamsReady() {
    timer_.cancel();
    phase_ = Phase::kRunning;
    auto request = makeRequest();
    if (!request) {
      log::error("Error executing command in container",
                 logFields({{"err", request.error().message()}}));
      never_started_ = true;
      outcome_ = failure(request.error().message());
      return endWithStatus();
    }
    if (auto in = stream("stdin"); in && version_ == 1 && !opts_.websocket) {
      transport_->finish(*in);  // the kubelet's v1 handler closes stdin's reply side
    }
    announceReady();
    auto self = shared_from_this();
    auto exec = transport_->executor();
    ExecHooks hooks{.started =
                        [self, exec](Result<void> r) {
                          asio::post(exec, [self, r = std::move(r)]() mutable {
                            self->onStarted(std::move(r));
                          });
                        },
                    .exited =
                        [self, exec](Result<int> r) {
                          asio::post(exec, [self, r = std::move(r)]() mutable {
                            self->onExited(std::move(r));
                          });
                        }};
    starter_(std::move(*request), std::move(hooks));
    readOutput(out_);
    readOutput(err_);
    pumpStdin();
  }

  // The child's ends go to the request; ours become descriptors on the executor.
  Result<ExecRequest> makeRequest() {
    ExecRequest r{
        .pod = opts_.pod, .container = opts_.container, .command = opts_.command, .tty = opts_.tty};
    auto exec = transport_->executor();
    auto own = [&](UniqueFd fd) { return std::make_unique<Descriptor>(exec, fd.release()); };
    if (opts_.tty) {
      int sv[2];
      if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
        return sysError("socketpair", "console socket");
      }
      console_ = own(UniqueFd(sv[0]));
      r.console_socket = UniqueFd(sv[1]);
      out_.id = stream("stdout");
      waitTerminal();
      return r;
    }
    auto pipe = [](UniqueFd& read, UniqueFd& write) -> Result<void> {
      int p[2];
      if (::pipe2(p, O_CLOEXEC) != 0) {
        return sysError("pipe2", "exec stdio");
      }
      read.reset(p[0]);
      write.reset(p[1]);
      return {};
    };
    UniqueFd ours;
    if (opts_.use_stdin) {
      TRY_VOID(pipe(r.stdin_fd, ours));
      stdin_w_ = own(std::move(ours));
    }
    if (opts_.use_stdout) {
      TRY_VOID(pipe(ours, r.stdout_fd));
      stdout_r_ = own(std::move(ours));
      out_ = Output{.id = stream("stdout"), .fd = stdout_r_.get()};
    }
    if (opts_.use_stderr) {
      TRY_VOID(pipe(ours, r.stderr_fd));
      stderr_r_ = own(std::move(ours));
      err_ = Output{.id = stream("stderr"), .fd = stderr_r_.get()};
    }
    return r;
  }

  // WebSocket clients wait for a first message before they send: the kubelet
  // writes an empty one to the lowest writable channel.
  void announceReady() {
    if (!opts_.websocket) {
      return;
    }
    Output* o = out_.id ? &out_ : err_.id ? &err_ : nullptr;
    std::optional<StreamId> id = o != nullptr ? o->id : stream("error");
    if (!id) {
      return;  // cannot be: the error stream is always there once ready
    }
    if (o != nullptr) {
      o->in_flight = true;
    } else {
      error_busy_ = true;
    }
    transport_->write(*id, "", [self = shared_from_this(), o](bool ok) {
      if (o == nullptr) {
        self->error_busy_ = false;
        if (self->status_waits_) {
          self->endWithStatus();
        }
        return;
      }
      o->in_flight = false;
      if (!ok) {
        o->id.reset();
      }
      self->readOutput(*o);
    });
  }

  void onStarted(Result<void> r) {
    if (r) {
      log::v(2, "Exec started", logFields({{"command", joined()}}));
      return;
    }
    log::error("Error executing command in container", logFields({{"err", r.error().message()}}));
    never_started_ = true;
    outcome_ = failure(r.error().message());
    closeTerminalSocket();
    maybeEnd();
  }

  void onExited(Result<int> r) {
    exited_ = true;
    if (r) {
      outcome_.kind = ExecOutcome::Kind::kExited;
      outcome_.exit_code = *r;
      log::v(2, "Exec finished", logFields({{"exitCode", std::to_string(*r)}}));
    } else {
      outcome_ = failure(r.error().message());
      log::error("Error executing command in container", logFields({{"err", r.error().message()}}));
    }
    if (opts_.tty && !master_) {
      tryTerminal();  // it may sit in the socket still
    }
    closeTerminalSocket();
    maybeEnd();
  }

  ExecOutcome failure(std::string why) const {
    return ExecOutcome{
        .kind = ExecOutcome::Kind::kFailed, .error = std::move(why), .command = opts_.command};
  }

  // ---- the terminal ----

  void waitTerminal() {
    console_->async_wait(Descriptor::wait_read,
                         [self = shared_from_this()](boost::system::error_code ec) {
                           if (ec || !self->console_) {
                             return;
                           }
                           if (!self->tryTerminal() && self->console_) {
                             self->waitTerminal();
                           }
                         });
  }

  // Takes the master if it came; true when the socket is done with.
  bool tryTerminal() {
    if (!console_) {
      return true;
    }
    auto got = receiveTerminal(console_->native_handle());
    if (!got) {
      log::error("Error receiving the exec's terminal",
                 logFields({{"err", got.error().message()}}));
      closeTerminalSocket();
      return true;
    }
    std::optional<UniqueFd>& master = *got;
    if (!master) {
      return false;
    }
    master_ = std::make_unique<Descriptor>(transport_->executor(), master->release());
    closeTerminalSocket();
    out_.fd = master_.get();
    if (pending_size_) {
      applySize(*pending_size_);
    }
    readOutput(out_);
    pumpStdin();
    return true;
  }

  void closeTerminalSocket() {
    if (console_) {
      quietly([&](auto& ec) { return console_->close(ec); });  // we are done with it
      console_.reset();
    }
  }

  void onResizeBytes(std::string_view bytes) {
    if (resize_.failed()) {
      return;
    }
    auto sizes = resize_.feed(bytes);
    if (!sizes) {
      // As the kubelet: a message that does not decode ends resizing, not the exec.
      log::v(2, "Stopped reading terminal sizes", logFields({{"err", sizes.error().message()}}));
      return;
    }
    for (const TerminalSize& s : *sizes) {
      if (master_) {
        applySize(s);
      } else {
        pending_size_ = s;
      }
    }
  }

  void applySize(TerminalSize s) {
    winsize ws{.ws_row = s.height, .ws_col = s.width, .ws_xpixel = 0, .ws_ypixel = 0};
    if (::ioctl(master_->native_handle(), TIOCSWINSZ, &ws) != 0) {
      log::v(2, "Failed to resize the exec's terminal",
             logFields({{"err", sysError("ioctl TIOCSWINSZ").error().message()}}));
    }
  }

  // ---- stdin ----

  Descriptor* input() const { return opts_.tty ? master_.get() : stdin_w_.get(); }

  void pumpStdin() {
    if (stdin_writing_ || phase_ == Phase::kWaiting) {
      return;
    }
    Descriptor* to = input();
    if (stdin_closed_ || (to == nullptr && (!opts_.tty || never_started_ || exited_))) {
      dropStdin();
      return;
    }
    if (to == nullptr) {
      return;  // the terminal has not come yet
    }
    if (stdin_queue_.empty()) {
      if (stdin_eof_ && !opts_.tty) {
        // The process reads EOF. (A terminal stays open: its EOF is the
        // user's ^D, which arrives as data.)
        closeStdin();
      }
      return;
    }
    stdin_writing_ = true;
    asio::async_write(*to, asio::buffer(stdin_queue_.front()),
                      [self = shared_from_this()](boost::system::error_code ec, size_t) {
                        // The chunk stays queued while written (its bytes are
                        // the write's buffer); now it is consumed, written or not.
                        self->stdin_writing_ = false;
                        size_t len = 0;
                        if (!self->stdin_queue_.empty()) {  // always: dropStdin() keeps it
                          len = self->stdin_queue_.front().size();
                          self->stdin_queue_.pop_front();
                        }
                        if (auto id = self->stream("stdin"); id && !self->conn_closed_) {
                          self->transport_->consumed(*id, len);
                        }
                        if (ec) {
                          // The process closed its stdin or exited: the rest is dropped.
                          self->closeStdin();
                        }
                        self->pumpStdin();
                      });
  }

  // Bytes that cannot reach the process are consumed at once, so the client
  // is never stalled by a stdin nobody reads.
  // A chunk being written stays until its write's handler (which consumes it).
  void dropStdin() {
    auto id = stream("stdin");
    size_t keep = stdin_writing_ ? 1 : 0;
    while (stdin_queue_.size() > keep) {
      if (id && !conn_closed_) {
        transport_->consumed(*id, stdin_queue_.back().size());
      }
      stdin_queue_.pop_back();
    }
  }

  void closeStdin() {
    stdin_closed_ = true;
    if (stdin_w_) {
      quietly([&](auto& ec) { return stdin_w_->close(ec); });  // the process reads EOF
      stdin_w_.reset();
    }
    dropStdin();
  }

  // ---- output ----

  void readOutput(Output& o) {
    if (o.fd == nullptr || o.done || o.in_flight || phase_ == Phase::kDone) {
      return;
    }
    if (o.buf.empty()) {
      o.buf.resize(kChunk);
    }
    o.fd->async_read_some(asio::buffer(o.buf),
                          [self = shared_from_this(), &o](boost::system::error_code ec, size_t n) {
                            self->onOutput(o, ec, n);
                          });
  }

  void onOutput(Output& o, boost::system::error_code ec, size_t n) {
    if (ec) {
      // EOF; EIO once a terminal's last slave closed; aborted by closeFds().
      o.done = true;
      if (o.id && !conn_closed_) {
        transport_->finish(*o.id);
      }
      return maybeEnd();
    }
    if (!o.id || conn_closed_) {
      return readOutput(o);  // asked for by nobody: drained so the process never blocks
    }
    o.in_flight = true;
    transport_->write(*o.id, std::string(o.buf.data(), n),
                      [self = shared_from_this(), &o](bool ok) {
                        o.in_flight = false;
                        if (!ok) {
                          o.id.reset();
                          return self->stopOutput(o);
                        }
                        self->readOutput(o);
                      });
  }

  // Nobody takes this output any more: its pipe closes (the writer gets
  // EPIPE); a terminal stays, as stdin may still use it, and is drained.
  void stopOutput(Output& o) {
    if (o.fd != nullptr && o.fd == stdout_r_.get()) {
      closeDescriptor(stdout_r_);
      o.fd = nullptr;
      o.done = true;
    } else if (o.fd != nullptr && o.fd == stderr_r_.get()) {
      closeDescriptor(stderr_r_);
      o.fd = nullptr;
      o.done = true;
    } else {
      readOutput(o);
    }
    maybeEnd();
  }

  static void closeDescriptor(std::unique_ptr<Descriptor>& d) {
    if (d) {
      quietly([&](auto& ec) { return d->close(ec); });  // cancels its operations
      d.reset();
    }
  }

  bool outputDone(const Output& o) const {
    if (opts_.tty && &o == &out_ && !master_) {
      return exited_ || never_started_;  // no terminal came, none will
    }
    return o.fd == nullptr || o.done;
  }

  // ---- the end ----

  void maybeEnd() {
    if (phase_ != Phase::kRunning || !(exited_ || never_started_)) {
      return;
    }
    if (!outputDone(out_) || !outputDone(err_)) {
      return;  // drain what the process wrote before it exited
    }
    endWithStatus();
  }

  // The error stream gets the outcome, then the connection closes.
  void endWithStatus() {
    phase_ = Phase::kEnding;
    if (error_busy_) {
      status_waits_ = true;  // one write per stream: after the announcement
      return;
    }
    closeStdin();
    closeTerminalSocket();
    auto err = stream("error");
    std::string bytes = errorStreamBytes(version_, outcome_);
    if (conn_closed_ || !err || bytes.empty()) {
      return finishAndClose();
    }
    transport_->write(*err, std::move(bytes),
                      [self = shared_from_this()](bool) { self->finishAndClose(); });
  }

  void finishAndClose() {
    phase_ = Phase::kDone;
    if (!conn_closed_) {
      if (auto err = stream("error")) {
        transport_->finish(*err);
      }
      transport_->close();
    }
    maybeComplete();
  }

  void closeFds() {
    closeDescriptor(stdin_w_);
    closeDescriptor(stdout_r_);
    closeDescriptor(stderr_r_);
    closeDescriptor(master_);
    closeTerminalSocket();
    out_.fd = err_.fd = nullptr;
    stdin_closed_ = true;
    dropStdin();
  }

  void maybeComplete() {
    if (completed_ || !conn_closed_ || !(exited_ || never_started_)) {
      return;
    }
    completed_ = true;
    timer_.cancel();
    closeFds();
    if (done_) {
      done_(outcome_);
    }
    auto keep = std::move(self_);  // the last of us may go with this frame
  }

  std::shared_ptr<Transport> transport_;
  int version_;
  std::string protocol_;
  RemoteCommandOptions opts_;
  ExecStarter starter_;
  RemoteCommandDone done_;
  asio::steady_timer timer_;
  std::shared_ptr<RemoteCommand> self_;  // alive until the connection and the process are over

  Phase phase_ = Phase::kWaiting;
  std::map<std::string, StreamId> streams_;  // by type
  std::map<StreamId, std::string> types_;
  std::unique_ptr<Descriptor> stdin_w_, stdout_r_, stderr_r_, master_, console_;
  Output out_, err_;
  std::deque<std::string> stdin_queue_;
  bool stdin_writing_ = false, stdin_eof_ = false, stdin_closed_ = false;
  ResizeDecoder resize_;
  std::optional<TerminalSize> pending_size_;
  bool conn_closed_ = false, exited_ = false, never_started_ = false, completed_ = false;
  bool error_busy_ = false, status_waits_ = false;
  ExecOutcome outcome_;
};

}  // namespace

void runRemoteCommand(std::shared_ptr<Transport> transport, const std::string& protocol,
                      RemoteCommandOptions options, ExecStarter starter, RemoteCommandDone done) {
  auto rc = std::make_shared<RemoteCommand>(std::move(transport), protocol, std::move(options),
                                            std::move(starter), std::move(done));
  rc->start();
}

}  // namespace kernelet::agent::streams
