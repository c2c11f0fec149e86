#include "agent/streams/websocket_transport.h"

#include <algorithm>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <charconv>
#include <deque>
#include <map>

#include "agent/log/log.h"
#include "agent/streams/ws_channels.h"

namespace kernelet::agent::streams {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;

using WsStream = websocket::stream<beast::ssl_stream<beast::tcp_stream>&>;

constexpr std::chrono::seconds kCloseWait{30};

struct Channel {
  size_t unconsumed = 0;     // given by data(), not yet consumed()
  bool half_closed = false;  // v5 CLOSE signal seen
  bool reset = false;        // reset() by us: what the client sends is dropped
};

class WebSocketTransport : public Transport,
                           public std::enable_shared_from_this<WebSocketTransport> {
 public:
  WebSocketTransport(std::shared_ptr<UpgradedConnection> conn, ChannelProtocol protocol,
                     ChannelPlan plan)
      : conn_(std::move(conn)),
        ws_(conn_->stream),
        protocol_(protocol),
        plan_(std::move(plan)),
        close_timer_(conn_->stream.get_executor()),
        idle_timer_(conn_->stream.get_executor()) {
    // A channel is one byte on the wire, and 255 is v5's CLOSE signal.
    std::erase_if(plan_.channels, [](const auto& c) {
      if (c.first < kCloseChannel) {
        return false;
      }
      log::error("WebSocket channel plan with a channel past 254: left out",
                 {{"channel", std::to_string(c.first)}});
      return true;
    });
    for (const auto& [id, headers] : plan_.channels) {
      channels_[id];
    }
    // Beast's idle timeout stays off (a paused read must not count as idle):
    // the connection's own (armIdle) counts messages both ways. The
    // handshake and the close handshake get 30 s.
    websocket::stream_base::timeout t{};
    t.handshake_timeout = std::chrono::seconds(30);
    t.idle_timeout = websocket::stream_base::none();
    t.keep_alive_pings = false;
    ws_.set_option(t);
    ws_.read_message_max(kWebSocketMessageMax);
    ws_.auto_fragment(false);  // one frame per message: the client reassembles nothing
    ws_.binary(!protocol_.base64);
  }

  // The 101 (or Beast's error answer for a broken handshake).
  void accept(const std::string& chosen, AcceptDone done) {
    ws_.set_option(websocket::stream_base::decorator([chosen](websocket::response_type& res) {
      res.set(http::field::server, "kernelet");
      if (!chosen.empty()) {
        res.set(http::field::sec_websocket_protocol, chosen);
      }
    }));
    ws_.async_accept(conn_->request, [self = shared_from_this(), chosen,
                                      done = std::move(done)](beast::error_code ec) {
      if (ec) {
        int status = ec == websocket::error::bad_sec_version ? 426 : 400;
        log::warning(
            "WebSocket upgrade refused",
            {{"path", std::string(self->conn_->request.target())}, {"error", ec.message()}});
        self->closeSocket();
        return done(std::unexpected(UpgradeError{status, ec.message()}));
      }
      done(Negotiated{self, chosen});
    });
  }

  net::any_io_executor executor() override { return conn_->stream.get_executor(); }

  void start(TransportEvents events) override {
    events_ = std::move(events);
    touch();
    armIdle();
    if (plan_.port_prefix) {
      queuePortPrefixes();
    }
    for (const auto& [id, headers] : plan_.channels) {
      if (ended_) {
        return;
      }
      if (events_.opened) {
        events_.opened(id, headers);
      }
    }
    readMore();
  }

  void write(StreamId id, std::string data, std::function<void(bool)> sent) override {
    if (ended_ || closing_ || !channels_.contains(id)) {
      if (sent) {
        net::post(executor(), [sent = std::move(sent)] { sent(false); });
      }
      return;
    }
    queue_.push_back(
        {encodeChannelMessage(protocol_, static_cast<uint8_t>(id), data), std::move(sent)});
    pump();
  }

  void consumed(StreamId id, size_t n) override {
    auto it = channels_.find(id);
    if (it == channels_.end()) {
      return;
    }
    it->second.unconsumed -= std::min(n, it->second.unconsumed);
    readMore();
  }

  void finish(StreamId) override {}  // a channel has no end on the wire (header comment)

  void reset(StreamId id) override {
    auto it = channels_.find(id);
    if (it != channels_.end()) {
      it->second.reset = true;
      it->second.unconsumed = 0;  // nobody will consume what was given
      readMore();
    }
  }

  void close() override {
    if (ended_ || closing_) {
      return;
    }
    closing_ = true;
    // A client that reads nothing would hold the queued writes (and so the
    // close frame) forever: past kCloseWait the connection ends regardless.
    close_timer_.expires_after(kCloseWait);
    close_timer_.async_wait([self = shared_from_this()](beast::error_code ec) {
      if (!ec) {
        self->end(Error{.op = "websocket close", .detail = "the client did not read for 30s"});
      }
    });
    pump();
  }

 private:
  struct Pending {
    std::string bytes;
    std::function<void(bool)> sent;
  };

  void queuePortPrefixes() {
    for (const auto& [id, headers] : plan_.channels) {
      uint16_t port = 0;
      const std::string& s = headers.port;
      auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), port);
      if (ec != std::errc() || end != s.data() + s.size()) {
        log::error("WebSocket port-forward plan without a port",
                   {{"channel", std::to_string(id)}, {"port", s}});
        continue;
      }
      std::string le{static_cast<char>(port & 0xff), static_cast<char>(port >> 8)};
      queue_.push_back({encodeChannelMessage(protocol_, static_cast<uint8_t>(id), le), nullptr});
    }
    pump();
  }

  // Reads the next message unless a channel has kWebSocketUnconsumedMax
  // bytes its consumer has not taken yet: then the socket is left unread
  // until consumed() brings it under.
  void readMore() {
    if (ended_ || reading_ || close_sent_) {
      return;
    }
    for (const auto& [id, ch] : channels_) {
      if (ch.unconsumed >= kWebSocketUnconsumedMax) {
        return;
      }
    }
    reading_ = true;
    ws_.async_read(in_, [self = shared_from_this()](beast::error_code ec, size_t) {
      self->reading_ = false;
      if (ec) {
        return self->fail(ec, "read");
      }
      self->onMessage();
    });
  }

  void onMessage() {
    touch();
    auto data = in_.cdata();
    std::string_view raw(static_cast<const char*>(data.data()), data.size());
    auto m = decodeChannelMessage(protocol_, raw);
    in_.consume(in_.size());
    if (!m) {
      // Dropping the payload would corrupt the stream silently: end it.
      return protocolError(websocket::close_code::bad_payload, m.error().message());
    }
    auto it = channels_.find(m->channel);
    bool known = it != channels_.end() && !it->second.reset && !it->second.half_closed;
    if (m->kind == ChannelMessage::Kind::kClose) {
      if (known) {
        it->second.half_closed = true;
        if (events_.half_closed) {
          events_.half_closed(m->channel);
        }
      } else {
        log::v(4, "WebSocket CLOSE signal for a channel not open: ignored",
               {{"channel", std::to_string(m->channel)}});
      }
    } else if (m->kind == ChannelMessage::Kind::kData && !m->payload.empty()) {
      if (known) {
        it->second.unconsumed += m->payload.size();
        if (events_.data) {
          events_.data(m->channel, m->payload);
        }
      } else {
        log::v(
            4, "WebSocket message for a channel not open: dropped",
            {{"channel", std::to_string(m->channel)}, {"protocol", std::string(protocol_.name)}});
      }
    }
    readMore();
  }

  // One message on the wire at a time (Beast allows one write); each
  // channel has at most one queued (Transport::write's contract), so the
  // queue is bounded by the plan. Once it drains after close(), the close frame.
  void pump() {
    if (ended_ || writing_) {
      return;
    }
    if (queue_.empty()) {
      if (closing_ && !close_sent_) {
        sendClose();
      }
      return;
    }
    writing_ = true;
    ws_.async_write(net::buffer(queue_.front().bytes),
                    [self = shared_from_this()](beast::error_code ec, size_t) {
                      self->writing_ = false;
                      self->touch();
                      Pending done = std::move(self->queue_.front());
                      self->queue_.pop_front();
                      if (ec) {
                        if (done.sent) {
                          done.sent(false);
                        }
                        return self->fail(ec, "write");
                      }
                      if (done.sent) {
                        done.sent(true);
                      }
                      self->pump();
                    });
  }

  // streamingConnectionIdleTimeout: as the kubelet's wsstream, whose
  // deadline each message read or written pushes back.
  void touch() { last_activity_ = std::chrono::steady_clock::now(); }

  void armIdle() {
    if (conn_->idle_timeout.count() <= 0 || ended_) {
      return;
    }
    idle_timer_.expires_at(last_activity_ + conn_->idle_timeout);
    idle_timer_.async_wait([self = shared_from_this()](beast::error_code ec) {
      if (ec || self->ended_ || self->closing_) {
        return;
      }
      if (std::chrono::steady_clock::now() - self->last_activity_ < self->conn_->idle_timeout) {
        return self->armIdle();  // traffic since: wait from its time
      }
      auto seconds = std::chrono::duration_cast<std::chrono::seconds>(self->conn_->idle_timeout);
      log::v(2, "Stream connection idle: closed",
             {{"path", std::string(self->conn_->request.target())},
              {"idleTimeout", std::to_string(seconds.count()) + "s"}});
      self->close();
    });
  }

  void sendClose() {
    close_sent_ = true;
    ws_.async_close(websocket::close_code::normal, [self = shared_from_this()](beast::error_code) {
      self->end(Error{.op = "websocket", .detail = "closed by the server"});
    });
  }

  void protocolError(websocket::close_code code, const std::string& why) {
    log::warning("WebSocket stream closed on a protocol error",
                 {{"path", std::string(conn_->request.target())}, {"error", why}});
    if (writing_ || close_sent_) {
      // Beast allows no close frame beside a pending write: just end.
      return end(Error{.op = "websocket", .detail = why});
    }
    close_sent_ = true;
    websocket::close_reason reason(code, why.substr(0, 120));  // a control frame holds 125
    ws_.async_close(reason, [self = shared_from_this(), why](beast::error_code) {
      self->end(Error{.op = "websocket", .detail = why});
    });
  }

  void fail(beast::error_code ec, const char* what) {
    if (ended_) {
      return;
    }
    if (close_sent_ && (ec == websocket::error::closed || ec == net::error::operation_aborted)) {
      return end(Error{.op = "websocket", .detail = "closed by the server"});
    }
    if (ec == websocket::error::closed) {
      return end(Error{.op = "websocket", .detail = "closed by the client"});
    }
    if (ec == net::ssl::error::stream_truncated || ec == net::error::eof) {
      // The client went without a close frame or TLS close_notify (or, with
      // Beast 1.74, after a protocol error of its own: read.hpp reports the
      // teardown's error instead of the one that caused it).
      log::v(2, "WebSocket client left without closing",
             {{"path", std::string(conn_->request.target())}, {"op", what}});
    } else if (ec != net::error::operation_aborted) {
      // Beast has sent the matching close frame (1002 for a bad mask or
      // length, 1009 for a message too big) where it could.
      log::warning(
          "WebSocket stream failed",
          {{"path", std::string(conn_->request.target())}, {"op", what}, {"error", ec.message()}});
    }
    end(Error{.op = std::string("websocket ") + what, .detail = ec.message()});
  }

  // The connection is over: writes still queued fail, the socket goes,
  // closed() is the last event.
  void end(const Error& why) {
    if (ended_) {
      return;
    }
    ended_ = true;
    close_timer_.cancel();
    idle_timer_.cancel();
    closeSocket();
    // The write in flight stays queued: its completion (aborted now) pops it
    // and says sent(false).
    std::deque<Pending> dropped;
    dropped.swap(queue_);
    if (writing_) {
      queue_.push_back(std::move(dropped.front()));
      dropped.pop_front();
    }
    for (auto& p : dropped) {
      if (p.sent) {
        p.sent(false);
      }
    }
    if (events_.closed) {
      auto closed = std::move(events_.closed);
      events_ = {};
      closed(why);
    }
  }

  void closeSocket() {
    streams::closeSocket(conn_->stream);  // ends whatever is pending
  }

  std::shared_ptr<UpgradedConnection> conn_;
  WsStream ws_;
  ChannelProtocol protocol_;
  ChannelPlan plan_;
  std::map<StreamId, Channel> channels_;
  TransportEvents events_;
  net::steady_timer close_timer_;
  net::steady_timer idle_timer_;
  std::chrono::steady_clock::time_point last_activity_;
  beast::flat_buffer in_;
  std::deque<Pending> queue_;
  bool reading_ = false, writing_ = false, closing_ = false, close_sent_ = false, ended_ = false;
};

std::string bracketed(const std::vector<std::string>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); i++) {
    s += (i > 0 ? " " : "") + v[i];
  }
  return s + "]";
}

// An HTTP answer instead of the upgrade; the connection closes after it.
void refuse(std::shared_ptr<UpgradedConnection> conn, UpgradeError err, AcceptDone done) {
  log::warning("WebSocket upgrade refused", {{"path", std::string(conn->request.target())},
                                             {"status", std::to_string(err.status)},
                                             {"error", err.message}});
  auto res = std::make_shared<http::response<http::string_body>>(
      static_cast<http::status>(err.status), 11);
  res->set(http::field::content_type, "text/plain; charset=utf-8");
  res->set(http::field::connection, "close");
  res->body() = err.message + "\n";
  res->prepare_payload();
  auto& stream = conn->stream;
  http::async_write(
      stream, *res,
      [conn = std::move(conn), res, err, done = std::move(done)](beast::error_code, size_t) {
        streams::closeSocket(conn->stream);  // done with it either way
        done(std::unexpected(err));
      });
}

}  // namespace

std::vector<std::string> webSocketOffers(const http::request<http::string_body>& req) {
  std::vector<std::string> out;
  for (auto it = req.find(http::field::sec_websocket_protocol);
       it != req.end() && it->name() == http::field::sec_websocket_protocol; ++it) {
    std::string_view v(it->value().data(), it->value().size());
    while (!v.empty()) {
      size_t comma = v.find(',');
      std::string_view item = v.substr(0, comma);
      while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) {
        item.remove_prefix(1);
      }
      while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) {
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

// NOLINTBEGIN(performance-unnecessary-value-param): the seam's signature (upgrade.h)
void acceptWebSocket(std::shared_ptr<UpgradedConnection> conn,
                     const std::vector<std::string>& supported, PlanFor plan, AcceptDone done) {
  // NOLINTEND(performance-unnecessary-value-param)
  std::vector<std::string> offered = webSocketOffers(conn->request);
  // No protocol offered: the kubelet maps it to channel.k8s.io's framing.
  std::optional<std::string> chosen;
  if (offered.empty()) {
    chosen = "";
  }
  for (const auto& s : supported) {
    if (!chosen && channelProtocol(s) && std::ranges::find(offered, s) != offered.end()) {
      chosen = s;
    }
  }
  std::optional<ChannelProtocol> framing = chosen ? channelProtocol(*chosen) : std::nullopt;
  if (!chosen || !framing) {
    return refuse(std::move(conn),
                  UpgradeError{403, "requested protocol(s) are not supported: " +
                                        bracketed(offered) + "; supports " + bracketed(supported)},
                  std::move(done));
  }
  // RFC 6455 4.1: a client sends no frame before our 101. Bytes past the
  // request would be frames Beast's accept(request) cannot be given (its
  // read buffer holds 1536 bytes, too few to re-parse the request with
  // them), so they are refused rather than lost.
  if (conn->buffer.size() > 0) {
    size_t n = conn->buffer.size();
    return refuse(std::move(conn),
                  UpgradeError{400, "websocket: the client sent " + std::to_string(n) +
                                        " bytes before the handshake's answer"},
                  std::move(done));
  }
  ChannelPlan p = plan ? plan(*chosen) : ChannelPlan{};
  auto t = std::make_shared<WebSocketTransport>(std::move(conn), *framing, std::move(p));
  t->accept(*chosen, std::move(done));
}

}  // namespace kernelet::agent::streams
