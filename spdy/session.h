#pragma once
// The server side of one SPDY/3.1 connection, sans IO: bytes from the peer go
// in (receive), events and bytes for the peer come out (takeEvents,
// takeOutput). No socket, no thread, no clock, so it can be fuzzed whole.
//
// What it does, after the draft and what Go's moby/spdystream (the framing
// of every API server and kubectl) sends and expects:
// - Streams are opened by the client only (odd ids, increasing). Each one is
//   answered at once with a SYN_REPLY without headers, as the kubelet does.
//   At most `max_streams` are open at a time; past that RST_STREAM
//   REFUSED_STREAM. A stream closes when both sides sent FIN, or on a reset.
// - PINGs from the client (odd ids) are echoed; a GOAWAY is noted.
// - Flow control (SPDY/3.1: per stream and, on stream 0, per session; 64 KiB
//   each at first): we grant the client windows and send WINDOW_UPDATE as
//   the consumer reports bytes consumed (consumed()), once half a window is
//   used. spdystream neither sends WINDOW_UPDATE nor honours ours, so the
//   client's windows bind us, and ours bind it, only once the peer has shown
//   that it does flow control (sent a WINDOW_UPDATE or an initial window in
//   SETTINGS); before that the bound is the socket itself (the transport
//   stops reading while `unconsumed()` is over a limit, and writes one chunk
//   per stream at a time). `peer_flow_control` forces either way.
// - Errors as the draft says: a broken frame, a header block that does not
//   inflate, a bad session window: GOAWAY PROTOCOL_ERROR and receive() fails;
//   a bad stream id, a malformed header block, data past a stream's end or
//   window: RST_STREAM for that stream only.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "spdy/frames.h"
#include "spdy/header_block.h"
#include "sys/result.h"

namespace kernelet::spdy {

enum class PeerFlowControl { kAuto, kOn, kOff };

struct SessionOptions {
  uint32_t initial_window = 64 << 10;  // what we grant per stream and per session
  size_t max_streams = 1000;           // open at once
  size_t max_header_bytes = 256 << 10;
  // What all of a connection's header blocks may inflate to: a base and a
  // little per stream the client opens. Deflate turns 72 KB on the wire into
  // 60 MB of headers, and the server has one thread: past the budget the
  // connection ends (kubectl's blocks are a few hundred bytes a stream).
  size_t header_budget_base = 512 << 10;
  size_t header_budget_per_stream = 4 << 10;
  size_t max_control_frame = 256 << 10;
  size_t max_data_frame = 64 << 10;  // we split what we send into DATA frames this long
  PeerFlowControl peer_flow_control = PeerFlowControl::kAuto;
};

struct SessionEvent {
  enum class Kind { kOpened, kData, kHalfClosed, kReset, kWritable, kGoAway };
  Kind kind;
  uint32_t stream_id = 0;
  HeaderList headers;  // kOpened
  std::string data;    // kData
};

class Session {
 public:
  explicit Session(SessionOptions options = {});

  // Bytes from the peer. An error is a connection error: the GOAWAY is in
  // the output already; send it and close. Later calls fail the same way.
  Result<void> receive(std::string_view bytes);
  // What happened since the last call, in order. kWritable: a window grew,
  // sendable() may be larger for some streams.
  std::vector<SessionEvent> takeEvents();
  bool hasOutput() const { return !output_.empty(); }
  size_t outputSize() const { return output_.size(); }
  std::string takeOutput();

  bool isOpen(uint32_t id) const { return streams_.contains(id); }
  // Open and not finished by us.
  bool canSend(uint32_t id) const {
    auto it = streams_.find(id);
    return it != streams_.end() && !it->second.local_closed;
  }
  // How many bytes we may send on `id` now (0: none, the stream is gone or
  // we finished it, or its window is spent).
  size_t sendable(uint32_t id) const;
  // Queues DATA frames for `data` (at most sendable(id) bytes), with FIN on
  // the last if `fin`. Returns false if the stream is not open for sending.
  bool send(uint32_t id, std::string_view data, bool fin = false);
  // We send no more on `id` (an empty DATA frame with FIN).
  void finish(uint32_t id) { (void)send(id, {}, true); }  // a gone stream needs no FIN
  // Drops the stream with RST_STREAM `status`.
  void reset(uint32_t id, RstStatus status = RstStatus::kCancel);
  // `n` bytes of `id` that a kData event gave were passed on.
  void consumed(uint32_t id, size_t n);
  // Ends the session: GOAWAY with the last stream we accepted; new streams
  // are refused from here on.
  void goAway(GoAwayStatus status = GoAwayStatus::kOk);

  size_t streamCount() const { return streams_.size(); }
  // Bytes handed out in kData events and not yet consumed, all streams.
  size_t unconsumed() const { return unconsumed_; }
  bool peerWentAway() const { return peer_went_away_; }
  bool flowControlled() const;

 private:
  struct Stream {
    bool remote_closed = false;  // the peer sent FIN
    bool local_closed = false;   // we sent FIN
    int64_t send_window = 0;
    int64_t recv_window = 0;
    size_t unconsumed = 0;
    size_t update_pending = 0;  // consumed, not yet announced in WINDOW_UPDATE
  };

  Result<void> handle(Frame frame);
  Result<void> onSynStream(const SynStream& f);
  Result<void> onData(const DataFrame& f);
  Result<void> onHeaders(const HeadersFrame& f);
  Result<void> onWindowUpdate(const WindowUpdate& f);
  Result<void> onSettings(const Settings& f);
  std::unexpected<Error> connectionError(std::string what);
  void emit(const Frame& f) { serialize(f, output_); }
  void event(SessionEvent::Kind kind, uint32_t id) {
    events_.push_back({.kind = kind, .stream_id = id});
  }
  void rst(uint32_t id, RstStatus status) {
    emit(RstStream{.stream_id = id, .status = static_cast<uint32_t>(status)});
  }
  void remove(uint32_t id);
  void maybeClose(uint32_t id);

  SessionOptions options_;
  FrameParser parser_;
  HeaderInflater inflater_;
  size_t inflated_ = 0;     // header bytes inflated on this connection
  size_t syn_streams_ = 0;  // SYN_STREAMs the client sent
  Result<std::string> inflateBlock(std::string_view block, const char* frame);
  HeaderDeflater deflater_;
  std::map<uint32_t, Stream> streams_;
  std::vector<SessionEvent> events_;
  std::string output_;
  std::optional<Error> failed_;
  uint32_t last_stream_id_ = 0;  // highest client stream id seen
  uint32_t last_good_ = 0;       // highest accepted (GOAWAY's last-good-stream-id)
  int64_t session_send_window_;
  int64_t session_recv_window_;
  int64_t peer_initial_window_;
  size_t session_update_pending_ = 0;
  size_t unconsumed_ = 0;
  bool peer_flow_control_seen_ = false;
  bool went_away_ = false;
  bool peer_went_away_ = false;
};

}  // namespace kernelet::spdy
