#pragma once
// The byte pipe under the SPDY framing (spdy_transport.h): the upgraded TLS
// stream itself, or the binary messages of a WebSocket that tunnels SPDY
// (spdy_tunnel.h, kubectl's port-forward since 1.30). SPDY sees one ordered
// byte stream either way; the link says what its end and its errors mean.
//
// Calls come from the connection's executor only. At most one readSome and
// one write are pending at a time (the SPDY transport keeps to that).

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/system/error_code.hpp>
#include <functional>
#include <string>

namespace kernelet::agent::streams {

class ByteLink {
 public:
  using IoDone = std::function<void(boost::system::error_code, size_t)>;

  virtual ~ByteLink() = default;
  // Bytes the link already holds (what the server read past the request's
  // headers), to be handed to the framing before the first readSome.
  virtual std::string takeBuffered() = 0;
  // Some bytes from the client; an error ends the link (describe() says why).
  virtual void readSome(boost::asio::mutable_buffer into, IoDone done) = 0;
  // All of `bytes` to the client.
  virtual void write(boost::asio::const_buffer bytes, IoDone done) = 0;
  // Ends the connection politely (TLS close_notify, or a WebSocket close
  // frame), bounded in time; a pending read is ended first where the
  // framing needs it. `done` runs once, after which only close() is left.
  virtual void shutdown(std::function<void()> done) = 0;
  // The socket goes now: whatever is pending ends with an error.
  virtual void close() = 0;
  // What a read's error means, for the transport's closed() and its log:
  // "the client closed the connection", or the link's own failure.
  virtual std::string describe(boost::system::error_code ec) = 0;
};

}  // namespace kernelet::agent::streams
