// SPDY/3.1 on an upgraded connection: the 101 (or the kubelet's error), then
// a spdy::Session fed from a ByteLink (the TLS stream, or a WebSocket tunnel:
// spdy_tunnel.cc), its output written back, and its events turned into the
// Transport's. Everything runs on the connection's executor (the node
// server's thread).
#include "agent/streams/spdy_transport.h"

#include <array>
#include <boost/asio/buffer.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/write.hpp>
#include <map>

#include "agent/log/log.h"

namespace kernelet::agent::streams {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

namespace {

// The SPDY upgrade's own link: the TLS stream, bytes as they come.
class TlsLink : public ByteLink {
 public:
  explicit TlsLink(std::shared_ptr<UpgradedConnection> conn) : conn_(std::move(conn)) {}

  std::string takeBuffered() override {
    std::string first(static_cast<const char*>(conn_->buffer.data().data()), conn_->buffer.size());
    conn_->buffer.consume(conn_->buffer.size());
    return first;
  }

  void readSome(net::mutable_buffer into, IoDone done) override {
    reading_ = true;
    conn_->stream.async_read_some(
        into, [this, done = std::move(done)](beast::error_code ec, size_t n) {
          reading_ = false;
          done(ec, n);  // holds the transport, and so this link, until it returns
          if (pending_shutdown_) {
            startShutdown(std::exchange(pending_shutdown_, nullptr));
          }
        });
  }

  void write(net::const_buffer bytes, IoDone done) override {
    net::async_write(conn_->stream, bytes, std::move(done));
  }

  // The TLS shutdown reads too: a pending read is ended first, and the
  // close_notify goes once its handler ran.
  void shutdown(std::function<void()> done) override {
    if (reading_) {
      pending_shutdown_ = std::move(done);
      beast::get_lowest_layer(conn_->stream).cancel();
      return;
    }
    startShutdown(std::move(done));
  }

  void close() override { closeSocket(conn_->stream); }

  std::string describe(beast::error_code ec) override {
    return ec == net::error::eof || ec == net::ssl::error::stream_truncated
               ? "the client closed the connection"
               : "read: " + ec.message();
  }

 private:
  void startShutdown(std::function<void()> done) {
    beast::get_lowest_layer(conn_->stream).expires_after(std::chrono::seconds(2));
    conn_->stream.async_shutdown([done = std::move(done)](beast::error_code) { done(); });
  }

  std::shared_ptr<UpgradedConnection> conn_;
  bool reading_ = false;
  std::function<void()> pending_shutdown_;
};

class SpdyTransport : public Transport, public std::enable_shared_from_this<SpdyTransport> {
 public:
  SpdyTransport(std::shared_ptr<UpgradedConnection> conn, std::unique_ptr<ByteLink> link,
                SpdyTransportOptions options)
      : conn_(std::move(conn)),
        link_(std::move(link)),
        options_(options),
        session_(options.session),
        timer_(conn_->stream.get_executor()),
        idle_timer_(conn_->stream.get_executor()) {}

  net::any_io_executor executor() override { return conn_->stream.get_executor(); }

  void start(TransportEvents events) override {
    events_ = std::move(events);
    timer_.expires_after(options_.stream_creation_timeout);
    timer_.async_wait([self = shared_from_this()](beast::error_code ec) {
      if (!ec && !self->any_stream_ && !self->closed_) {
        self->fail(Error{.op = "spdy connection",
                         .detail = "no stream opened within " +
                                   std::to_string(self->options_.stream_creation_timeout.count()) +
                                   " ms of the upgrade"});
      }
    });
    touch();
    armIdle();
    // What the server read past the request's headers is the first SPDY.
    std::string first = link_->takeBuffered();
    if (!first.empty()) {
      process(first);
    }
    read();
  }

  void write(StreamId id, std::string data, std::function<void(bool)> sent) override {
    if (closed_ || closing_ || !session_.canSend(id) || pending_.contains(id)) {
      post(std::move(sent), false);
      return;
    }
    pending_[id] = Pending{.data = std::move(data), .sent = std::move(sent)};
    pump();
  }

  void consumed(StreamId id, size_t n) override {
    if (closed_) {
      return;
    }
    session_.consumed(id, n);
    flush();
    read();
  }

  void finish(StreamId id) override {
    if (closed_) {
      return;
    }
    auto it = pending_.find(id);
    if (it != pending_.end()) {
      it->second.finish = true;  // after the bytes still waiting for a window
      return;
    }
    session_.finish(id);
    flush();
  }

  void reset(StreamId id) override {
    if (closed_) {
      return;
    }
    dropPending(id);
    session_.reset(id, spdy::RstStatus::kCancel);
    flush();
  }

  // Writes still waiting for the client's window go first; then GOAWAY.
  void close() override {
    if (closed_ || closing_) {
      return;
    }
    close_requested_ = true;
    pump();
  }

 private:
  struct Pending {
    std::string data;
    size_t offset = 0;
    std::function<void(bool)> sent;
    bool finish = false;
  };

  void post(std::function<void(bool)> cb, bool ok) {
    if (cb) {
      net::post(executor(), [cb = std::move(cb), ok] { cb(ok); });
    }
  }

  void read() {
    if (reading_ || closed_ || closing_ || session_.unconsumed() > options_.max_unconsumed ||
        session_.outputSize() + out_.size() > options_.max_output) {
      return;  // consumed() or a finished write calls again
    }
    reading_ = true;
    link_->readSome(
        net::buffer(rbuf_), [self = shared_from_this()](beast::error_code ec, size_t n) {
          self->reading_ = false;
          if (self->closed_ || self->closing_) {
            return;  // what came is dropped: we said GOAWAY, and the link shuts down
          }
          if (ec) {
            self->fail(Error{.op = "spdy connection", .detail = self->link_->describe(ec)});
            return;
          }
          self->touch();
          self->process(std::string_view(self->rbuf_.data(), n));
          self->read();
        });
  }

  void process(std::string_view bytes) {
    auto r = session_.receive(bytes);
    dispatch();
    if (!r && !closed_) {
      log::warning(
          "SPDY stream connection closed on a protocol error",
          {{"path", std::string(conn_->request.target())}, {"error", r.error().message()}});
      // The GOAWAY is in the output: send it, then end.
      closeAfterFlush(r.error());
      return;
    }
    pump();
  }

  void dispatch() {
    for (auto& ev : session_.takeEvents()) {
      if (closed_) {
        return;
      }
      using Kind = spdy::SessionEvent::Kind;
      switch (ev.kind) {
        case Kind::kOpened: {
          any_stream_ = true;
          StreamHeaders h{.type = std::string(spdy::headerValue(ev.headers, "streamtype")),
                          .port = std::string(spdy::headerValue(ev.headers, "port")),
                          .request_id = std::string(spdy::headerValue(ev.headers, "requestid"))};
          if (events_.opened) {
            events_.opened(ev.stream_id, h);
          }
          break;
        }
        case Kind::kData:
          if (session_.isOpen(ev.stream_id) && events_.data) {
            events_.data(ev.stream_id, ev.data);
          }
          break;
        case Kind::kHalfClosed:
          if (events_.half_closed) {
            events_.half_closed(ev.stream_id);
          }
          break;
        case Kind::kReset:
          dropPending(ev.stream_id);
          if (events_.reset) {
            events_.reset(ev.stream_id);
          }
          break;
        case Kind::kWritable:
        case Kind::kGoAway:
          break;  // pump() follows the batch
      }
    }
  }

  // Moves what the windows allow from the queued writes into the session.
  void pump() {
    if (closed_) {
      return;
    }
    for (auto it = pending_.begin(); it != pending_.end();) {
      Pending& p = it->second;
      size_t left = p.data.size() - p.offset;
      size_t n = std::min(left, session_.sendable(it->first));
      if (!session_.canSend(it->first)) {
        post(std::move(p.sent), false);
        it = pending_.erase(it);
        continue;
      }
      if (n > 0 || left == 0) {
        bool done = n == left;
        if (n > 0 || p.finish) {
          (void)session_.send(it->first, std::string_view(p.data).substr(p.offset, n),
                              done && p.finish);  // can send: checked above
        }
        p.offset += n;
        if (done) {
          // Its callback runs once these bytes went to the socket.
          after_flush_.push_back(std::move(p.sent));
          it = pending_.erase(it);
          continue;
        }
      }
      ++it;
    }
    if (close_requested_ && pending_.empty() && !closing_) {
      session_.goAway(spdy::GoAwayStatus::kOk);
      closeAfterFlush(Error{.op = "spdy connection", .detail = "closed by the server"});
      return;
    }
    flush();
  }

  void flush() {
    if (writing_ || closed_) {
      return;
    }
    if (!session_.hasOutput()) {
      for (auto& cb : std::exchange(after_flush_, {})) {
        post(std::move(cb), true);
      }
      if (closing_) {
        shutdown();
      }
      return;
    }
    writing_ = true;
    out_ = session_.takeOutput();
    auto waiting = std::exchange(after_flush_, {});
    link_->write(net::buffer(out_), [self = shared_from_this(), waiting = std::move(waiting)](
                                        beast::error_code ec, size_t) mutable {
      self->writing_ = false;
      self->out_.clear();
      self->touch();
      for (auto& cb : waiting) {
        if (cb) {
          cb(!ec && !self->closed_);
        }
      }
      if (ec) {
        self->fail(Error{.op = "spdy connection", .detail = "write: " + ec.message()});
        return;
      }
      self->pump();
      self->read();
    });
  }

  // streamingConnectionIdleTimeout, as spdystream's idle-aware framer: every
  // frame read or written starts the wait again; when it runs out, a GOAWAY
  // and the end of the connection (2 s at most for them to go out).
  void touch() { last_activity_ = std::chrono::steady_clock::now(); }

  void armIdle() {
    if (conn_->idle_timeout.count() <= 0 || closed_) {
      return;
    }
    idle_timer_.expires_at(last_activity_ + conn_->idle_timeout);
    idle_timer_.async_wait([self = shared_from_this()](beast::error_code ec) {
      if (ec || self->closed_) {
        return;
      }
      if (std::chrono::steady_clock::now() - self->last_activity_ < self->conn_->idle_timeout) {
        return self->armIdle();  // traffic since: wait from its time
      }
      self->idle();
    });
  }

  void idle() {
    auto seconds = std::chrono::duration_cast<std::chrono::seconds>(conn_->idle_timeout);
    log::v(2, "Stream connection idle: closed",
           {{"path", std::string(conn_->request.target())},
            {"idleTimeout", std::to_string(seconds.count()) + "s"}});
    if (!closing_) {
      session_.goAway(spdy::GoAwayStatus::kOk);
      closeAfterFlush(Error{.op = "spdy connection",
                            .detail = "no traffic for the streaming connection idle timeout"});
    }
    // A client that reads nothing holds the GOAWAY: it ends regardless.
    idle_timer_.expires_after(std::chrono::seconds(2));
    idle_timer_.async_wait([self = shared_from_this()](beast::error_code ec) {
      if (!ec && !self->closed_) {
        self->fail(Error{.op = "spdy connection", .detail = "closing timed out"});
      }
    });
  }

  void dropPending(StreamId id) {
    auto it = pending_.find(id);
    if (it != pending_.end()) {
      post(std::move(it->second.sent), false);
      pending_.erase(it);
    }
  }

  void closeAfterFlush(Error why) {
    closing_ = true;
    closing_error_ = std::move(why);
    for (auto& [id, p] : std::exchange(pending_, {})) {
      post(std::move(p.sent), false);
    }
    flush();
  }

  // What was due went out: the link's polite end (a TLS close_notify or a
  // WebSocket close, bounded), then the socket goes.
  void shutdown() {
    if (shutting_down_) {
      return;
    }
    shutting_down_ = true;
    link_->shutdown([self = shared_from_this()] {
      self->fail(self->closing_error_.value_or(Error{.op = "spdy connection", .detail = "closed"}));
    });
  }

  // The end: no event after closed(), every queued write gets sent(false).
  void fail(const Error& why) {
    if (closed_) {
      return;
    }
    closed_ = true;
    timer_.cancel();
    idle_timer_.cancel();
    link_->close();
    for (auto& [id, p] : std::exchange(pending_, {})) {
      post(std::move(p.sent), false);
    }
    for (auto& cb : std::exchange(after_flush_, {})) {
      post(std::move(cb), false);
    }
    auto events = std::exchange(events_, {});  // lets go of what the user's callbacks hold
    if (events.closed) {
      events.closed(why);
    }
  }

  std::shared_ptr<UpgradedConnection> conn_;
  std::unique_ptr<ByteLink> link_;
  SpdyTransportOptions options_;
  spdy::Session session_;
  net::steady_timer timer_;
  net::steady_timer idle_timer_;
  std::chrono::steady_clock::time_point last_activity_;
  TransportEvents events_;
  std::array<char, 16 << 10> rbuf_{};
  std::string out_;  // being written
  std::map<StreamId, Pending> pending_;
  std::vector<std::function<void(bool)>> after_flush_;
  std::optional<Error> closing_error_;
  bool reading_ = false, writing_ = false, closing_ = false, shutting_down_ = false;
  bool close_requested_ = false;
  bool closed_ = false, any_stream_ = false;
};

// The client's X-Stream-Protocol-Version values: repeated headers and
// comma-separated lists both count, as httpstream reads them.
std::vector<std::string> offeredProtocols(const http::request<http::string_body>& req) {
  std::vector<std::string> out;
  auto [from, to] = req.equal_range("X-Stream-Protocol-Version");
  for (auto it = from; it != to; ++it) {
    std::string_view v(it->value().data(), it->value().size());
    while (!v.empty()) {
      size_t comma = v.find(',');
      std::string_view item = v.substr(0, comma);
      while (!item.empty() && item.front() == ' ') {
        item.remove_prefix(1);
      }
      while (!item.empty() && item.back() == ' ') {
        item.remove_suffix(1);
      }
      if (!item.empty()) {
        out.emplace_back(item);
      }
      v = comma == std::string_view::npos ? std::string_view{} : v.substr(comma + 1);
    }
  }
  return out;
}

std::string goList(const std::vector<std::string>& v) {
  std::string out = "[";
  for (size_t i = 0; i < v.size(); i++) {
    out += (i > 0 ? " " : "") + v[i];
  }
  return out + "]";
}

}  // namespace

std::shared_ptr<Transport> makeSpdyTransport(std::shared_ptr<UpgradedConnection> conn,
                                             std::unique_ptr<ByteLink> link,
                                             SpdyTransportOptions options) {
  return std::make_shared<SpdyTransport>(std::move(conn), std::move(link), options);
}

// The error as Go's http.Error writes it, then the connection closes.
void refuseSpdyUpgrade(const std::shared_ptr<UpgradedConnection>& conn, const UpgradeError& err,
                       const std::vector<std::string>& accepted, AcceptDone done) {
  auto res = std::make_shared<http::response<http::string_body>>(
      static_cast<http::status>(err.status), 11);
  res->set(http::field::content_type, "text/plain; charset=utf-8");
  res->set("X-Content-Type-Options", "nosniff");
  for (const auto& p : accepted) {
    res->insert("X-Accepted-Stream-Protocol-Versions", p);
  }
  res->set(http::field::connection, "close");
  res->body() = err.message + "\n";
  res->prepare_payload();
  http::async_write(conn->stream, *res,
                    [conn, res, err, done = std::move(done)](beast::error_code, size_t) {
                      closeSocket(conn->stream);
                      done(std::unexpected(err));
                    });
}

std::expected<std::string, UpgradeError> negotiateSpdy(const std::vector<std::string>& offered,
                                                       const std::vector<std::string>& supported) {
  if (offered.empty()) {
    return std::unexpected(
        UpgradeError{400, "unable to upgrade: X-Stream-Protocol-Version is required"});
  }
  for (const auto& o : offered) {
    if (std::find(supported.begin(), supported.end(), o) != supported.end()) {
      return o;
    }
  }
  return std::unexpected(
      UpgradeError{403, "unable to upgrade: unable to negotiate protocol: client supports " +
                            goList(offered) + ", server accepts " + goList(supported)});
}

void acceptSpdy(const std::shared_ptr<UpgradedConnection>& conn,
                const std::vector<std::string>& supported, AcceptDone done,
                SpdyTransportOptions options) {
  std::string connection(conn->request[http::field::connection]);
  std::string lowered;
  for (char c : connection) {
    lowered.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  }
  if (lowered.find("upgrade") == std::string::npos) {
    return refuseSpdyUpgrade(
        conn,
        {400, "unable to upgrade: missing upgrade headers in request: Connection: " + connection},
        {}, std::move(done));
  }
  auto chosen = negotiateSpdy(offeredProtocols(conn->request), supported);
  if (!chosen) {
    // The 403 names what we accept in headers too, as httpstream.Handshake.
    return refuseSpdyUpgrade(conn, chosen.error(),
                             chosen.error().status == 403 ? supported : std::vector<std::string>{},
                             std::move(done));
  }
  auto res =
      std::make_shared<http::response<http::empty_body>>(http::status::switching_protocols, 11);
  res->set(http::field::connection, "Upgrade");
  res->set(http::field::upgrade, "SPDY/3.1");
  res->set("X-Stream-Protocol-Version", *chosen);
  http::async_write(
      conn->stream, *res,
      [conn, res, chosen = *chosen, options, done = std::move(done)](beast::error_code ec, size_t) {
        if (ec) {
          closeSocket(conn->stream);
          done(std::unexpected(UpgradeError{0, "writing the 101: " + ec.message()}));
          return;
        }
        done(Negotiated{
            .transport = makeSpdyTransport(conn, std::make_unique<TlsLink>(conn), options),
            .protocol = chosen});
      });
}

}  // namespace kernelet::agent::streams
