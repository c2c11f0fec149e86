#pragma once
// One upgraded connection's streams, independent of the framing: SPDY/3.1
// (spdy_transport.h) or WebSocket channels (websocket_transport.h). This is
// all that exec (remote_command.h) and port-forward (port_forward.h) see of
// the connection.
//
// Threads: a transport lives on the node server's thread (executor()). Its
// events are called there, and write/consumed/finish/reset/close must be
// called there only (post to executor() from elsewhere).
//
// Flow control, both ways, so neither side can make the agent buffer without
// bound:
// - To the client: write() queues at most one chunk per stream; its `sent`
//   callback runs once the bytes went to the connection (for SPDY, within the
//   client's window). A producer (a process's stdout) reads more only then.
// - From the client: data() hands bytes over; the consumer calls consumed()
//   once it has passed them on (written to the process's stdin). The
//   transport lets at most a bounded number of unconsumed bytes in per
//   stream (SPDY: the window it grants; WebSocket: it stops reading the
//   socket), so a client writing faster than the process reads is slowed,
//   not buffered.

#include <boost/asio/any_io_executor.hpp>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "sys/result.h"

namespace kernelet::agent::streams {

using StreamId = uint32_t;

// What a stream is for: an SPDY stream's headers as the client sent them;
// for WebSocket, what the channel means in the negotiated protocol.
struct StreamHeaders {
  std::string type;        // "error", "stdin", "stdout", "stderr", "resize", "data"
  std::string port;        // port-forward: the pod's port, decimal as sent
  std::string request_id;  // port-forward: pairs one connection's data and error streams
};

struct TransportEvents {
  // The client opened a stream (SPDY SYN_STREAM, already answered), or, for
  // WebSocket, a channel of the plan exists (all of them, right after start).
  std::function<void(StreamId, const StreamHeaders&)> opened;
  // Bytes from the client on a stream; see consumed().
  std::function<void(StreamId, std::string_view)> data;
  // The client sends no more on this stream (SPDY FIN; WebSocket v5 CLOSE signal).
  std::function<void(StreamId)> half_closed;
  // The client reset the stream (SPDY RST_STREAM).
  std::function<void(StreamId)> reset;
  // The connection ended: the client went, a framing error (named in the
  // Error), or close(). No event follows this one.
  std::function<void(const Error&)> closed;
};

class Transport {
 public:
  virtual ~Transport() = default;
  virtual boost::asio::any_io_executor executor() = 0;
  // Starts reading; called once, right after the upgrade.
  virtual void start(TransportEvents events) = 0;
  // Bytes to the client on `id`. `sent(true)` runs on the executor once they
  // went to the connection; `sent(false)` if the stream or the connection
  // went first. One write per stream at a time: write again after `sent`.
  virtual void write(StreamId id, std::string data, std::function<void(bool ok)> sent) = 0;
  // `n` bytes that data() gave on `id` were passed on: the client may send more.
  virtual void consumed(StreamId id, size_t n) = 0;
  // We send no more on `id` (SPDY FIN; WebSocket: nothing, channels have no end).
  virtual void finish(StreamId id) = 0;
  // Drops the stream (SPDY RST_STREAM CANCEL).
  virtual void reset(StreamId id) = 0;
  // Ends the connection once what was written went out; closed() follows.
  virtual void close() = 0;
};

}  // namespace kernelet::agent::streams
