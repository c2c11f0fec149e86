#include "spdy/session.h"

#include <algorithm>
#include <limits>

namespace kernelet::spdy {

Session::Session(SessionOptions options)
    : options_(options),
      parser_(options.max_control_frame),
      inflater_(options.max_header_bytes),
      session_send_window_(64 << 10),  // the draft's initial windows for what we send
      session_recv_window_(options.initial_window),
      peer_initial_window_(64 << 10) {}

std::vector<SessionEvent> Session::takeEvents() {
  std::vector<SessionEvent> out;
  out.swap(events_);
  return out;
}

std::string Session::takeOutput() {
  std::string out;
  out.swap(output_);
  return out;
}

bool Session::flowControlled() const {
  switch (options_.peer_flow_control) {
    case PeerFlowControl::kOn:
      return true;
    case PeerFlowControl::kOff:
      return false;
    case PeerFlowControl::kAuto:
      break;
  }
  return peer_flow_control_seen_;
}

std::unexpected<Error> Session::connectionError(std::string what) {
  goAway(GoAwayStatus::kProtocolError);
  failed_ = Error{.op = "spdy session", .detail = std::move(what)};
  return std::unexpected(*failed_);
}

Result<std::string> Session::inflateBlock(std::string_view block, const char* frame) {
  auto out = inflater_.inflate(block);
  if (!out) {
    return connectionError(std::string(frame) + ": " + out.error().detail);
  }
  inflated_ += out->size();
  size_t budget = options_.header_budget_base + syn_streams_ * options_.header_budget_per_stream;
  if (inflated_ > budget) {
    return connectionError(std::string(frame) + ": header blocks inflated to " +
                           std::to_string(inflated_) + " bytes, over the connection's budget of " +
                           std::to_string(budget));
  }
  return out;
}

Result<void> Session::receive(std::string_view bytes) {
  if (failed_) {
    return std::unexpected(*failed_);
  }
  parser_.feed(bytes);
  for (;;) {
    auto frame = parser_.next();
    if (!frame) {
      return connectionError(frame.error().detail);
    }
    std::optional<Frame>& next = *frame;
    if (!next.has_value()) {
      return {};
    }
    TRY_VOID(handle(std::move(next.value())));
  }
}

Result<void> Session::handle(Frame frame) {
  if (auto* f = std::get_if<DataFrame>(&frame)) {
    return onData(*f);
  }
  if (auto* f = std::get_if<SynStream>(&frame)) {
    return onSynStream(*f);
  }
  if (auto* f = std::get_if<HeadersFrame>(&frame)) {
    return onHeaders(*f);
  }
  if (auto* f = std::get_if<SynReply>(&frame)) {
    // We open no streams, so no reply is due to us; its block still keeps
    // the zlib context in step.
    auto block = inflateBlock(f->header_block, "SYN_REPLY");
    if (!block) {
      return std::unexpected(block.error());
    }
    if (isOpen(f->stream_id)) {
      rst(f->stream_id, RstStatus::kProtocolError);
      remove(f->stream_id);
      event(SessionEvent::Kind::kReset, f->stream_id);
    } else if (f->stream_id != 0) {
      rst(f->stream_id, RstStatus::kInvalidStream);
    }
    return {};
  }
  if (auto* f = std::get_if<RstStream>(&frame)) {
    if (isOpen(f->stream_id)) {
      remove(f->stream_id);
      event(SessionEvent::Kind::kReset, f->stream_id);
    }
    return {};
  }
  if (auto* f = std::get_if<Settings>(&frame)) {
    return onSettings(*f);
  }
  if (auto* f = std::get_if<Ping>(&frame)) {
    // Odd ids are the client's: echo. Even ones would answer ours (we send none).
    if ((f->id & 1) == 1) {
      emit(*f);
    }
    return {};
  }
  if (std::holds_alternative<GoAway>(frame)) {
    peer_went_away_ = true;
    event(SessionEvent::Kind::kGoAway, 0);
    return {};
  }
  if (auto* f = std::get_if<WindowUpdate>(&frame)) {
    return onWindowUpdate(*f);
  }
  return {};  // an unknown control frame: ignored, as the draft says
}

Result<void> Session::onSynStream(const SynStream& f) {
  syn_streams_++;
  auto block = inflateBlock(f.header_block, "SYN_STREAM");
  if (!block) {
    return std::unexpected(block.error());
  }
  uint32_t id = f.stream_id;
  if (id == 0) {
    return connectionError("SYN_STREAM for stream 0");
  }
  if (id % 2 == 0) {
    rst(id, RstStatus::kProtocolError);  // even ids are for streams the server opens
    return {};
  }
  if (id <= last_stream_id_) {
    return connectionError("SYN_STREAM for stream " + std::to_string(id) +
                           ", not above the last one (" + std::to_string(last_stream_id_) + ")");
  }
  last_stream_id_ = id;
  if (went_away_ || streams_.size() >= options_.max_streams) {
    rst(id, RstStatus::kRefusedStream);
    return {};
  }
  auto headers = decodeHeaderBlock(*block);
  if (!headers) {
    rst(id, RstStatus::kProtocolError);
    return {};
  }
  Stream s{.remote_closed = (f.flags & kFlagFin) != 0,
           .local_closed = (f.flags & kFlagUnidirectional) != 0,
           .send_window = peer_initial_window_,
           .recv_window = options_.initial_window};
  streams_.emplace(id, s);
  last_good_ = id;
  if (!s.local_closed) {
    auto reply = deflater_.compress({});
    if (!reply) {
      return connectionError("SYN_REPLY: " + reply.error().detail);
    }
    emit(SynReply{.stream_id = id, .header_block = std::move(*reply)});
  }
  events_.push_back(
      {.kind = SessionEvent::Kind::kOpened, .stream_id = id, .headers = std::move(*headers)});
  if (s.remote_closed) {
    event(SessionEvent::Kind::kHalfClosed, id);
  }
  maybeClose(id);
  return {};
}

Result<void> Session::onData(const DataFrame& f) {
  const uint32_t id = f.stream_id;
  const size_t n = f.data.size();
  auto it = streams_.find(id);
  // A stream's own window is checked first: its overrun resets that stream
  // alone, and its bytes never count against the session.
  if (it != streams_.end() && !it->second.remote_closed) {
    it->second.recv_window -= static_cast<int64_t>(n);
    if (it->second.recv_window < 0 && flowControlled()) {
      rst(id, RstStatus::kFlowControlError);
      remove(id);
      event(SessionEvent::Kind::kReset, id);
      return {};
    }
  }
  session_recv_window_ -= static_cast<int64_t>(n);
  if (session_recv_window_ < 0 && flowControlled()) {
    return connectionError("DATA past the session's window");
  }
  if (it == streams_.end()) {
    // Bytes for a stream that ended (ours in flight) count no longer.
    consumed(0, n);
    if (id % 2 == 0 || id > last_stream_id_) {
      rst(id, RstStatus::kInvalidStream);
    }
    return {};
  }
  Stream& s = it->second;
  if (s.remote_closed) {
    consumed(0, n);
    rst(id, RstStatus::kStreamAlreadyClosed);
    remove(id);
    event(SessionEvent::Kind::kReset, id);
    return {};
  }
  if (n > 0) {
    s.unconsumed += n;
    unconsumed_ += n;
    events_.push_back({.kind = SessionEvent::Kind::kData, .stream_id = id, .data = f.data});
  }
  if ((f.flags & kFlagFin) != 0) {
    s.remote_closed = true;
    event(SessionEvent::Kind::kHalfClosed, id);
    maybeClose(id);
  }
  return {};
}

Result<void> Session::onHeaders(const HeadersFrame& f) {
  auto block = inflateBlock(f.header_block, "HEADERS");
  if (!block) {
    return std::unexpected(block.error());
  }
  const uint32_t id = f.stream_id;
  if (id == 0) {
    return connectionError("HEADERS for stream 0");
  }
  auto it = streams_.find(id);
  if (it == streams_.end()) {
    if (id % 2 == 0 || id > last_stream_id_) {
      rst(id, RstStatus::kInvalidStream);
    }
    return {};
  }
  RstStatus why = RstStatus::kProtocolError;
  bool bad = !decodeHeaderBlock(*block).has_value();
  if (it->second.remote_closed) {
    bad = true;
    why = RstStatus::kStreamAlreadyClosed;
  }
  if (bad) {
    rst(id, why);
    remove(id);
    event(SessionEvent::Kind::kReset, id);
    return {};
  }
  // More headers for an open stream mean nothing to exec or port-forward.
  if ((f.flags & kFlagFin) != 0) {
    it->second.remote_closed = true;
    event(SessionEvent::Kind::kHalfClosed, id);
    maybeClose(id);
  }
  return {};
}

Result<void> Session::onWindowUpdate(const WindowUpdate& f) {
  peer_flow_control_seen_ = true;
  if (f.stream_id == 0) {
    if (f.delta == 0) {
      return connectionError("WINDOW_UPDATE of 0 for the session");
    }
    session_send_window_ += f.delta;
    if (session_send_window_ > kMaxWindow) {
      return connectionError("WINDOW_UPDATE grows the session's window past 2^31-1");
    }
  } else {
    auto it = streams_.find(f.stream_id);
    if (it == streams_.end()) {
      return {};  // for a stream that ended: nothing to grow
    }
    it->second.send_window += f.delta;
    if (f.delta == 0 || it->second.send_window > kMaxWindow) {
      rst(f.stream_id, f.delta == 0 ? RstStatus::kProtocolError : RstStatus::kFlowControlError);
      remove(f.stream_id);
      event(SessionEvent::Kind::kReset, f.stream_id);
      return {};
    }
  }
  event(SessionEvent::Kind::kWritable, f.stream_id);
  return {};
}

Result<void> Session::onSettings(const Settings& f) {
  for (const auto& e : f.entries) {
    if (e.id != kSettingsInitialWindowSize) {
      continue;  // the others bound what we would open or are advisory
    }
    if (e.value > kMaxWindow) {
      return connectionError("SETTINGS initial window " + std::to_string(e.value) + " past 2^31-1");
    }
    // SPDY/3.1: the new initial window applies to the open streams' windows too.
    int64_t delta = int64_t{e.value} - peer_initial_window_;
    for (auto& [id, s] : streams_) {
      s.send_window += delta;
    }
    peer_initial_window_ = e.value;
    peer_flow_control_seen_ = true;
    event(SessionEvent::Kind::kWritable, 0);
  }
  return {};
}

size_t Session::sendable(uint32_t id) const {
  auto it = streams_.find(id);
  if (it == streams_.end() || it->second.local_closed) {
    return 0;
  }
  if (!flowControlled()) {
    return std::numeric_limits<size_t>::max();
  }
  int64_t w = std::min(it->second.send_window, session_send_window_);
  return w > 0 ? static_cast<size_t>(w) : 0;
}

bool Session::send(uint32_t id, std::string_view data, bool fin) {
  auto it = streams_.find(id);
  if (it == streams_.end() || it->second.local_closed) {
    return false;
  }
  Stream& s = it->second;
  s.send_window -= static_cast<int64_t>(data.size());
  session_send_window_ -= static_cast<int64_t>(data.size());
  const size_t chunk = std::max<size_t>(1, std::min<size_t>(options_.max_data_frame, kMaxLength));
  do {
    std::string_view piece = data.substr(0, chunk);
    data.remove_prefix(piece.size());
    bool last = data.empty();
    emit(DataFrame{.stream_id = id,
                   .flags = static_cast<uint8_t>(last && fin ? kFlagFin : 0),
                   .data = std::string(piece)});
  } while (!data.empty());
  if (fin) {
    s.local_closed = true;
    maybeClose(id);
  }
  return true;
}

void Session::reset(uint32_t id, RstStatus status) {
  if (isOpen(id)) {
    rst(id, status);
    remove(id);
  }
}

void Session::consumed(uint32_t id, size_t n) {
  // id 0: bytes that count against the session's window only.
  if (id != 0) {
    auto it = streams_.find(id);
    if (it == streams_.end()) {
      return;  // its bytes were released when it went
    }
    Stream& s = it->second;
    n = std::min(n, s.unconsumed);
    s.unconsumed -= n;
    unconsumed_ -= n;
    s.update_pending += n;
    if (!s.remote_closed && s.update_pending >= options_.initial_window / 2) {
      emit(WindowUpdate{.stream_id = id, .delta = static_cast<uint32_t>(s.update_pending)});
      s.recv_window += static_cast<int64_t>(s.update_pending);
      s.update_pending = 0;
    }
  }
  session_update_pending_ += n;
  if (session_update_pending_ >= options_.initial_window / 2 && !went_away_) {
    emit(WindowUpdate{.stream_id = 0, .delta = static_cast<uint32_t>(session_update_pending_)});
    session_recv_window_ += static_cast<int64_t>(session_update_pending_);
    session_update_pending_ = 0;
  }
}

void Session::goAway(GoAwayStatus status) {
  if (went_away_) {
    return;
  }
  went_away_ = true;
  emit(GoAway{.last_good_stream_id = last_good_, .status = static_cast<uint32_t>(status)});
}

void Session::remove(uint32_t id) {
  auto it = streams_.find(id);
  if (it == streams_.end()) {
    return;
  }
  size_t left = it->second.unconsumed;
  streams_.erase(it);
  unconsumed_ -= left;
  consumed(0, left);  // what the consumer will never take is the session's again
}

void Session::maybeClose(uint32_t id) {
  auto it = streams_.find(id);
  if (it != streams_.end() && it->second.remote_closed && it->second.local_closed) {
    remove(id);
  }
}

}  // namespace kernelet::spdy
