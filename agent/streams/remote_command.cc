#include <fcntl.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <set>

#include "agent/streams/remote_command_session.h"

namespace kernelet::agent::streams {

namespace asio = boost::asio;

namespace {

// Output is read in chunks of this size, one per stream in flight: a pipe's
// capacity, so a full pipe is one message (one WebSocket frame, one SPDY DATA
// frame) and one turn of the loop, not two.
constexpr size_t kChunk = size_t{64} << 10;

}  // namespace

RemoteCommandSession::RemoteCommandSession(std::shared_ptr<Transport> transport,
                                           const std::string& protocol,
                                           RemoteCommandOptions options, bool attach,
                                           RemoteCommandDone done)
    : transport_(std::move(transport)),
      version_(remoteCommandVersion(protocol)),
      opts_(std::move(options)),
      outcome_{.command = opts_.command, .attach = attach},
      protocol_(protocol),
      initial_(outcome_),
      done_(std::move(done)),
      timer_(transport_->executor()) {
  if (opts_.tty && opts_.use_stderr) {
    log::v(4, "Access to exec with tty and stderr is not supported, bypassing stderr", logFields());
    opts_.use_stderr = false;
  }
}

void RemoteCommandSession::start() {
  self_ = shared_from_this();
  std::weak_ptr<RemoteCommandSession> weak = self_;
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
  std::string command;
  for (const auto& a : opts_.command) {
    command += (command.empty() ? "" : " ") + a;
  }
  log::v(4, std::string(kind()) + " request",
         logFields({{"command", command}, {"protocol", protocol_}}));
  transport_->start(std::move(ev));
}

log::Fields RemoteCommandSession::logFields(log::Fields extra) const {
  log::Fields f{{"pod", opts_.pod.namespace_ + "/" + opts_.pod.name},
                {"container", opts_.container}};
  f.insert(f.end(), extra.begin(), extra.end());
  return f;
}

// The stream types a session needs before it starts: the kubelet counts
// error, each stdio asked for, and resize with a terminal (SPDY from v3 on;
// WebSocket always has the channel).
bool RemoteCommandSession::needed(const std::string& type) const {
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

bool RemoteCommandSession::allStreams() const {
  for (const char* t : {"error", "stdin", "stdout", "stderr", "resize"}) {
    if (needed(t) && !streams_.contains(t)) {
      return false;
    }
  }
  return true;
}

std::optional<StreamId> RemoteCommandSession::stream(const std::string& type) const {
  auto it = streams_.find(type);
  if (it == streams_.end()) {
    return std::nullopt;
  }
  return it->second;
}

auto RemoteCommandSession::own(UniqueFd fd) -> std::unique_ptr<Descriptor> {
  return std::make_unique<Descriptor>(transport_->executor(), fd.release());
}

ExecOutcome RemoteCommandSession::failure(std::string why) const {
  ExecOutcome o = initial_;
  o.kind = ExecOutcome::Kind::kFailed;
  o.error = std::move(why);
  return o;
}

// ---- the client's events ----

void RemoteCommandSession::onOpened(StreamId id, const StreamHeaders& h) {
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

void RemoteCommandSession::onData(StreamId id, std::string_view bytes) {
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
void RemoteCommandSession::onInputEnd(StreamId id, bool drop) {
  if (stream("stdin") != id) {
    return;
  }
  stdin_eof_ = true;
  if (drop) {
    dropStdin();
  }
  pumpStdin();
}

void RemoteCommandSession::onReset(StreamId id) {
  auto type = types_.find(id);
  if (type == types_.end()) {
    return;
  }
  if (type->second == "stdin") {
    return onInputEnd(id, true);
  }
  if (type->second == "stdout" || type->second == "stderr") {
    // Nobody reads this output any more: the writer sees EPIPE.
    Output& o = type->second == "stdout" ? out_ : err_;
    o.id.reset();
    stopOutput(o);
  }
}

void RemoteCommandSession::onClosed(const Error& e) {
  conn_closed_ = true;
  if (phase_ == Phase::kWaiting) {
    timer_.cancel();
    never_started_ = true;
    outcome_ = failure("the connection closed before the streams were created: " + e.message());
    phase_ = Phase::kDone;
  } else if (phase_ == Phase::kRunning) {
    log::v(4, std::string(kind()) + " client went away", logFields({{"reason", e.message()}}));
  }
  // What runs sees EOF on stdin, EPIPE on output, or SIGHUP from its
  // terminal; its end is still awaited, so nothing is left behind.
  closeFds();
  maybeComplete();
}

void RemoteCommandSession::onStreamTimeout() {
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

void RemoteCommandSession::onStreamsReady() {
  timer_.cancel();
  phase_ = Phase::kRunning;
  if (auto prepared = prepare(); !prepared) {
    log::error(std::string(kind()) + " failed", logFields({{"err", prepared.error().message()}}));
    never_started_ = true;
    outcome_ = failure(prepared.error().message());
    return endWithStatus();
  }
  if (auto in = stream("stdin"); in && version_ == 1 && !opts_.websocket) {
    transport_->finish(*in);  // the kubelet's v1 handler closes stdin's reply side
  }
  announceReady();
  launch();
  readOutput(out_);
  readOutput(err_);
  pumpStdin();
}

void RemoteCommandSession::startFailed(const std::string& why) {
  never_started_ = true;
  outcome_ = failure(why);
  maybeEnd();
  maybeComplete();
}

// WebSocket clients wait for a first message before they send: the kubelet
// writes an empty one to the lowest writable channel.
void RemoteCommandSession::announceReady() {
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

// ---- the terminal ----

void RemoteCommandSession::onResizeBytes(std::string_view bytes) {
  if (resize_.failed()) {
    return;
  }
  auto sizes = resize_.feed(bytes);
  if (!sizes) {
    // As the kubelet: a message that does not decode ends resizing, not the session.
    log::v(2, "Stopped reading terminal sizes", logFields({{"err", sizes.error().message()}}));
    return;
  }
  for (const TerminalSize& s : *sizes) {
    if (terminalFd() >= 0) {
      applySize(s);
    } else {
      pending_size_ = s;
    }
  }
}

void RemoteCommandSession::applyPendingSize() {
  if (pending_size_ && terminalFd() >= 0) {
    applySize(*pending_size_);
  }
}

void RemoteCommandSession::applySize(TerminalSize s) {
  winsize ws{.ws_row = s.height, .ws_col = s.width, .ws_xpixel = 0, .ws_ypixel = 0};
  if (::ioctl(terminalFd(), TIOCSWINSZ, &ws) != 0) {
    log::v(2, "Failed to resize the terminal",
           logFields({{"err", sysError("ioctl TIOCSWINSZ").error().message()}}));
  }
}

// ---- stdin ----

void RemoteCommandSession::pumpStdin() {
  if (stdin_writing_ || phase_ == Phase::kWaiting) {
    return;
  }
  Descriptor* to = input();
  if (stdin_closed_ || (to == nullptr && !inputMayCome())) {
    dropStdin();
    return;
  }
  if (to == nullptr) {
    return;  // held until it comes
  }
  if (stdin_queue_.empty()) {
    if (stdin_eof_ && eofClosesInput()) {
      endInput();  // what reads it sees EOF
    }
    return;
  }
  stdin_writing_ = true;
  asio::async_write(*to, asio::buffer(stdin_queue_.front()),
                    [self = shared_from_this()](boost::system::error_code ec, size_t) {
                      self->onStdinWritten(ec);
                    });
}

// The chunk stays queued while written (its bytes are the write's buffer);
// now it is consumed, written or not.
void RemoteCommandSession::onStdinWritten(boost::system::error_code ec) {
  stdin_writing_ = false;
  size_t len = 0;
  if (!stdin_queue_.empty()) {  // always: dropStdin() keeps it
    len = stdin_queue_.front().size();
    stdin_queue_.pop_front();
  }
  if (auto id = stream("stdin"); id && !conn_closed_) {
    transport_->consumed(*id, len);
  }
  if (ec) {
    // The reader closed its stdin or is gone: the rest is dropped.
    endInput();
  }
  pumpStdin();
}

// Bytes that cannot reach the process are consumed at once, so the client
// is never stalled by a stdin nobody reads.
// A chunk being written stays until its write's handler (which consumes it).
void RemoteCommandSession::dropStdin() {
  auto id = stream("stdin");
  size_t keep = stdin_writing_ ? 1 : 0;
  while (stdin_queue_.size() > keep) {
    if (id && !conn_closed_) {
      transport_->consumed(*id, stdin_queue_.back().size());
    }
    stdin_queue_.pop_back();
  }
}

void RemoteCommandSession::closeStdin() {
  stdin_closed_ = true;
  closeDescriptor(stdin_w_);  // the reader sees EOF (if it was the last writer)
  dropStdin();
}

void RemoteCommandSession::endInput() {
  if (stdin_closed_) {
    return;  // closed by the session's end or the client's going, not here
  }
  closeStdin();
  inputEnded();
}

// ---- output ----

void RemoteCommandSession::readOutput(Output& o) {
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

void RemoteCommandSession::onOutput(Output& o, boost::system::error_code ec, size_t n) {
  if (ec) {
    // EOF; EIO once a terminal's last slave closed; aborted by closeFds().
    o.done = true;
    if (o.id && !conn_closed_) {
      transport_->finish(*o.id);
    }
    return maybeEnd();
  }
  if (!o.id || conn_closed_) {
    return readOutput(o);  // asked for by nobody: drained so the writer never blocks
  }
  o.in_flight = true;
  transport_->write(*o.id, std::string(o.buf.data(), n), [self = shared_from_this(), &o](bool ok) {
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
void RemoteCommandSession::stopOutput(Output& o) {
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

void RemoteCommandSession::closeDescriptor(std::unique_ptr<Descriptor>& d) {
  if (d) {
    boost::system::error_code ec;
    if (d->close(ec)) {
      // Closed either way (cancelling its operations); nothing to undo.
    }
    d.reset();
  }
}

Result<void> RemoteCommandSession::makePipe(UniqueFd& read, UniqueFd& write, int flags,
                                            const char* what) {
  int p[2];
  if (::pipe2(p, O_CLOEXEC | flags) != 0) {
    return sysError("pipe2", what);
  }
  read.reset(p[0]);
  write.reset(p[1]);
  return {};
}

// ---- the end ----

void RemoteCommandSession::maybeEnd() {
  if (phase_ != Phase::kRunning || !over()) {
    return;
  }
  if (!outputDone(out_) || !outputDone(err_)) {
    return;  // drain what was written before the end
  }
  endWithStatus();
}

// The error stream gets the outcome, then the connection closes.
void RemoteCommandSession::endWithStatus() {
  phase_ = Phase::kEnding;
  if (error_busy_) {
    status_waits_ = true;  // one write per stream: after the announcement
    return;
  }
  closeStdin();
  ending();
  auto err = stream("error");
  std::string bytes = errorStreamBytes(version_, outcome_);
  if (conn_closed_ || !err || bytes.empty()) {
    return finishAndClose();
  }
  transport_->write(*err, std::move(bytes),
                    [self = shared_from_this()](bool) { self->finishAndClose(); });
}

void RemoteCommandSession::finishAndClose() {
  phase_ = Phase::kDone;
  if (!conn_closed_) {
    if (auto err = stream("error")) {
      transport_->finish(*err);
    }
    transport_->close();
  }
  maybeComplete();
}

void RemoteCommandSession::closeFds() {
  closeDescriptor(stdin_w_);
  closeDescriptor(stdout_r_);
  closeDescriptor(stderr_r_);
  closeTargetFds();
  out_.fd = err_.fd = nullptr;
  stdin_closed_ = true;
  dropStdin();
}

void RemoteCommandSession::maybeComplete() {
  if (completed_ || !conn_closed_ || !settled()) {
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

}  // namespace kernelet::agent::streams
