#include "agent/server/session.h"

#include <unistd.h>

#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include "agent/log/log.h"
#include "agent/server/router.h"

namespace kernelet::agent::server {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

constexpr size_t kChunk = 64 << 10;  // a streamed body's chunks, at most

// One connection counted, from accept until its socket is gone.
struct Slot {
  explicit Slot(std::shared_ptr<ServerState> s) : state(std::move(s)) { state->connections++; }
  ~Slot() { state->connections--; }
  Slot(const Slot&) = delete;
  Slot& operator=(const Slot&) = delete;
  std::shared_ptr<ServerState> state;
};

}  // namespace

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(std::shared_ptr<ServerState> state, std::shared_ptr<Slot> slot,
          net::ip::tcp::socket socket)
      : state_(std::move(state)),
        slot_(std::move(slot)),
        stream_(std::move(socket), *state_->tls),
        wait_timer_(stream_.get_executor()),
        write_timer_(stream_.get_executor()) {}

  void start() {
    tcp().expires_after(state_->config.header_timeout);
    stream_.async_handshake(net::ssl::stream_base::server,
                            [self = shared_from_this()](beast::error_code ec) {
                              if (ec) {
                                return self->close();
                              }
                              self->creds_ = peerCredentials(self->stream_.native_handle());
                              beast::error_code peer_ec;
                              auto peer = self->tcp().socket().remote_endpoint(peer_ec);
                              if (!peer_ec) {
                                self->creds_.peer = clientKey(peer.address().to_string());
                              }
                              self->readRequest();
                            });
  }

  // At stop: ends whatever the session waits for.
  void close() {
    if (upgraded_) {
      return;  // the stream is the endpoint's now (moved out)
    }
    closed_ = true;
    self_.reset();  // nothing outside keeps it once it is closed
    source_.reset();
    wait_fd_.reset();
    wait_timer_.cancel();
    write_timer_.cancel();
    quietly([this](auto& ec) { return tcp().socket().close(ec); });
  }

  // A handler's answer, on the server thread.
  void respond(Response r) {
    if (closed_) {
      return;
    }
    self_.reset();
    if (r.stream) {
      return writeStream(std::move(r));
    }
    auto res = std::make_shared<http::response<http::string_body>>(
        static_cast<http::status>(r.status), 11);
    res->set(http::field::content_type, r.content_type);
    for (auto& [k, v] : r.headers) {
      res->set(k, v);
    }
    res->keep_alive(keep_alive_);
    if (head_) {
      res->content_length(r.body.size());  // what GET would send, without the body
    } else {
      res->body() = std::move(r.body);
      res->prepare_payload();
    }
    tcp().expires_after(state_->config.write_timeout);
    auto done = [self = shared_from_this(), res](beast::error_code ec, size_t) {
      if (!ec && self->drain_) {
        return self->drain(0);
      }
      if (ec || !self->keep_alive_) {
        return self->shutdown();
      }
      self->readRequest();
    };
    if (head_) {
      auto sr = std::make_shared<http::response_serializer<http::string_body>>(*res);
      http::async_write_header(stream_, *sr,
                               [sr, done](beast::error_code ec, size_t n) { done(ec, n); });
    } else {
      http::async_write(stream_, *res, done);
    }
  }

 private:
  beast::tcp_stream& tcp() { return beast::get_lowest_layer(stream_); }

  void shutdown() {
    if (closed_) {
      return;
    }
    tcp().expires_after(std::chrono::seconds(2));
    stream_.async_shutdown([self = shared_from_this()](beast::error_code) { self->close(); });
  }

  // After an answer to a request that was not read whole (431, 413, a bad
  // request): what the client still sends is read and dropped for a moment,
  // so closing does not reset the connection before the client read the
  // answer; bounded in time and bytes.
  void drain(size_t total) {
    if (total == 0) {
      tcp().expires_after(std::chrono::seconds(1));
    }
    if (total > (4u << 20)) {
      return close();
    }
    stream_.async_read_some(net::buffer(discard_),
                            [self = shared_from_this(), total](beast::error_code ec, size_t n) {
                              if (ec) {
                                return self->close();
                              }
                              self->drain(total + n);
                            });
  }

  // A keep-alive connection waits for its next request up to idle_timeout;
  // once a request starts, its headers have header_timeout.
  void readRequest() {
    if (buffer_.size() > 0 || first_) {
      first_ = false;
      return readHeaders();
    }
    tcp().expires_after(state_->config.idle_timeout);
    stream_.async_read_some(buffer_.prepare(4096),
                            [self = shared_from_this()](beast::error_code ec, size_t n) {
                              if (ec) {
                                return self->close();
                              }
                              self->buffer_.commit(n);
                              self->readHeaders();
                            });
  }

  void readHeaders() {
    parser_.emplace();
    parser_->header_limit(static_cast<uint32_t>(state_->config.header_limit));
    parser_->body_limit(state_->config.body_limit);
    tcp().expires_after(state_->config.header_timeout);
    http::async_read(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, size_t) { self->onRead(ec); });
  }

  void onRead(beast::error_code ec) {
    keep_alive_ = false;
    drain_ = ec == http::error::header_limit || ec == http::error::body_limit;
    if (ec == http::error::header_limit) {
      return respond(Response::error(431, "request header fields too large"));
    }
    if (ec == http::error::body_limit) {
      return respond(Response::error(413, "request body too large"));
    }
    if (ec == beast::error::timeout || ec == http::error::end_of_stream || ec == net::error::eof ||
        ec == net::ssl::error::stream_truncated || ec == net::error::connection_reset ||
        ec == net::error::operation_aborted) {
      return close();
    }
    if (ec) {
      drain_ = true;
      return respond(Response::error(400, "bad request: " + ec.message()));
    }
    const auto& req =
        parser_->get();  // NOLINT(bugprone-unchecked-optional-access): emplaced by readHeaders
    keep_alive_ = req.keep_alive();
    std::string method(req.method_string());
    head_ = method == "HEAD";
    std::string_view target(req.target().data(), req.target().size());
    // A request the router refuses (a bad path or query, a method no verb
    // names) is answered only once its client is known: as the kubelet's
    // authentication filter, which runs before routing, a client without
    // credentials learns nothing of what the server serves (401 for all).
    refused_.reset();
    std::expected<Route, RouteError> routed;
    if (target.find('\0') != std::string_view::npos || !isValidUtf8(target)) {
      keep_alive_ = false;
      routed = std::unexpected(RouteError{400, "invalid request target: NUL or invalid UTF-8"});
    } else {
      routed = route(method, target);
    }
    if (!routed) {
      refused_ = routed.error();
      routed = Route{.path = "(refused)"};
    }
    Credentials creds = creds_;
    if (auto auth = req.find(http::field::authorization); auth != req.end()) {
      std::string_view v(auth->value().data(), auth->value().size());
      if (v.size() > 7 && (v.substr(0, 7) == "Bearer " || v.substr(0, 7) == "bearer ")) {
        creds.bearer = std::string(v.substr(7));
      }
    }
    route_ = std::make_shared<Route>(std::move(*routed));
    route_method_ = method;
    // Kept alive while authn, authz or a handler have it; close() lets go.
    self_ = shared_from_this();
    std::weak_ptr<Session> weak = self_;
    state_->authn->authenticate(creds, [weak](AuthnResult a) {
      if (auto s = weak.lock()) {
        s->onAuthenticated(std::move(a));
      }
    });
  }

  void onAuthenticated(AuthnResult a) {
    if (closed_) {
      return;
    }
    if (!a.user && a.throttled) {
      log::v(2, "Request throttled", {{"path", route_->path}, {"reason", a.reason}});
      keep_alive_ = false;
      Response r = Response::error(429, "Too Many Requests");
      r.headers.emplace_back("Retry-After", "1");
      return respond(std::move(r));
    }
    if (!a.user) {
      log::v(2, "Unauthorized request", {{"path", route_->path}, {"reason", a.reason}});
      // Closed after the answer: a client without credentials must not hold
      // one of the connections the API server needs by keeping it alive.
      keep_alive_ = false;
      return respond(Response::error(401, "Unauthorized"));
    }
    user_ = std::move(*a.user);
    if (refused_) {
      return respond(Response::error(refused_->status, refused_->message));
    }
    std::weak_ptr<Session> weak = shared_from_this();
    state_->authz->authorize(user_, route_->access, [weak](AuthzResult r) {
      if (auto s = weak.lock()) {
        s->onAuthorized(std::move(r));
      }
    });
  }

  void onAuthorized(AuthzResult r) {
    if (closed_) {
      return;
    }
    if (!r.allowed) {
      if (r.status != 403) {
        log::error("Authorization failed", {{"path", route_->path}, {"err", r.message}});
        return respond(Response::error(r.status, "Internal Server Error"));
      }
      return respond(Response::error(403, r.message));
    }
    dispatch();
  }

  Handler* handlerFor(Endpoint e) {
    Endpoints& ep = state_->endpoints;
    switch (e) {
      case Endpoint::kPods:
        return &ep.pods;
      case Endpoint::kConfigz:
        return &ep.configz;
      case Endpoint::kRun:
        return &ep.run;
      case Endpoint::kContainerLogs:
        return &ep.container_logs;
      case Endpoint::kStatsSummary:
        return &ep.stats_summary;
      case Endpoint::kMetrics:
        return &ep.metrics;
      case Endpoint::kMetricsResource:
        return &ep.metrics_resource;
      case Endpoint::kMetricsCadvisor:
        return &ep.metrics_cadvisor;
      case Endpoint::kMetricsProbes:
        return &ep.metrics_probes;
      default:
        return nullptr;
    }
  }

  void dispatch() {
    Endpoint e = route_->endpoint;
    if (e == Endpoint::kHealthz) {
      return respond(Response::text(200, "ok"));
    }
    if (e == Endpoint::kExec || e == Endpoint::kAttach || e == Endpoint::kPortForward) {
      Endpoints& ep = state_->endpoints;
      streams::UpgradeHandler& h = e == Endpoint::kExec     ? ep.exec
                                   : e == Endpoint::kAttach ? ep.attach
                                                            : ep.port_forward;
      if (!h) {
        return respond(Response::error(501, "not implemented"));
      }
      return upgrade(h);
    }
    Handler* h = handlerFor(e);
    if (h == nullptr || !*h) {
      return respond(Response::error(404, "404 page not found"));
    }
    Request req{route_method_, route_->path, route_->params,
                route_->query, user_.name,   user_.groups};
    (*h)(std::move(req), makeResponder());
  }

  // Hands the connection to a stream endpoint: the session ends here and
  // nothing of it touches the stream again.
  void upgrade(streams::UpgradeHandler& h) {
    self_.reset();
    closed_ = upgraded_ = true;
    wait_timer_.cancel();
    write_timer_.cancel();
    tcp().expires_never();  // the framing sets its own deadlines
    auto conn = std::make_shared<streams::UpgradedConnection>(streams::UpgradedConnection{
        .ioc = state_->ioc.lock(),
        .stream = std::move(stream_),
        .buffer = std::move(buffer_),
        .request = parser_->release(),  // NOLINT(bugprone-unchecked-optional-access): read
        .slot = slot_,
        .idle_timeout = state_->config.stream_idle_timeout});
    state_->upgraded.remove_if([](const auto& w) { return w.expired(); });
    state_->upgraded.push_back(conn);
    Request req{route_method_, route_->path, route_->params,
                route_->query, user_.name,   user_.groups};
    h(std::move(req), std::move(conn));
  }

  // Callable once from any thread; its answer is posted here. A responder
  // dropped unanswered answers 500, so no connection waits forever on a
  // handler that lost it.
  Responder makeResponder() {
    struct Pending {
      std::weak_ptr<Session> session;
      std::weak_ptr<net::io_context> ioc;
      bool called = false;
      void deliver(Response r) {
        called = true;
        auto io = ioc.lock();
        if (!io) {
          return;  // the server stopped: nobody to answer
        }
        auto shared = std::make_shared<Response>(std::move(r));
        net::post(*io, [s = session, shared] {
          if (auto self = s.lock()) {
            self->respond(std::move(*shared));
          }
        });
      }
      ~Pending() {
        if (!called) {
          deliver(Response::error(500, "Internal Server Error: the handler gave no answer"));
        }
      }
    };
    auto p = std::make_shared<Pending>();
    p->session = weak_from_this();
    p->ioc = state_->ioc;
    return [p](Response r) {
      if (!p->called) {
        p->deliver(std::move(r));
      }
    };
  }

  // ---- a streamed body: chunked, pulled here until kEnd; the connection
  // closes after it (a followed log ends when its container does).
  void writeStream(Response r) {
    source_ = std::move(r.stream);
    pending_ = std::move(r.body);
    auto res =
        std::make_shared<http::response<http::empty_body>>(static_cast<http::status>(r.status), 11);
    res->set(http::field::content_type, r.content_type);
    for (auto& [k, v] : r.headers) {
      res->set(k, v);
    }
    res->chunked(true);
    res->keep_alive(false);
    auto sr = std::make_shared<http::response_serializer<http::empty_body>>(*res);
    tcp().expires_never();  // this response's writes have their own timer
    armWriteTimer();
    http::async_write_header(stream_, *sr,
                             [self = shared_from_this(), res, sr](beast::error_code ec, size_t) {
                               self->write_timer_.cancel();
                               if (ec || self->closed_) {
                                 return self->close();
                               }
                               if (self->head_) {
                                 return self->shutdown();
                               }
                               self->watchClient();
                               self->pump();
                             });
  }

  // A client that stops reading is closed after write_timeout.
  void armWriteTimer() {
    write_timer_.expires_after(state_->config.write_timeout);
    write_timer_.async_wait([weak = weak_from_this()](beast::error_code ec) {
      if (auto s = weak.lock(); s && !ec) {
        s->close();
      }
    });
  }

  // The client going away while the body waits for more: a read that ends.
  void watchClient() {
    stream_.async_read_some(net::buffer(discard_),
                            [self = shared_from_this()](beast::error_code ec, size_t) {
                              if (ec) {
                                return self->close();  // gone: the source goes with it
                              }
                              self->watchClient();  // a pipelined request: ignored
                            });
  }

  void pump() {
    if (closed_ || !source_) {
      return;
    }
    BodySource::State st = BodySource::State::kData;
    while (pending_.size() < kChunk && st == BodySource::State::kData) {
      auto r = source_->read(pending_, kChunk - pending_.size());
      if (!r) {
        log::v(2, "Streamed body ended by an error",
               {{"path", route_->path}, {"err", r.error().message()}});
        return close();  // the client sees the body cut short
      }
      st = *r;
    }
    if (!pending_.empty()) {
      chunk_ = std::move(pending_);
      pending_.clear();
      armWriteTimer();
      net::async_write(stream_, http::make_chunk(net::buffer(chunk_)),
                       [self = shared_from_this(), st](beast::error_code ec, size_t) {
                         self->write_timer_.cancel();
                         if (ec || self->closed_) {
                           return self->close();
                         }
                         self->afterChunk(st);
                       });
      return;
    }
    afterChunk(st);
  }

  void afterChunk(BodySource::State st) {
    if (st == BodySource::State::kData) {
      return pump();
    }
    if (st == BodySource::State::kEnd) {
      source_.reset();
      armWriteTimer();
      net::async_write(stream_, http::make_chunk_last(),
                       [self = shared_from_this()](beast::error_code ec, size_t) {
                         self->write_timer_.cancel();
                         if (ec) {
                           return self->close();
                         }
                         self->shutdown();
                       });
      return;
    }
    waitForMore();
  }

  // kWait: the source's fd readable or its poll interval, whichever first.
  void waitForMore() {
    waiting_ = true;
    int fd = source_->waitFd();
    if (fd >= 0 && !wait_fd_) {
      int dup = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
      if (dup >= 0) {
        wait_fd_.emplace(stream_.get_executor(), dup);
      }
    }
    auto wake = [weak = weak_from_this()](beast::error_code) {
      auto s = weak.lock();
      if (!s || !s->waiting_ || s->closed_) {
        return;
      }
      s->waiting_ = false;
      s->wait_timer_.cancel();
      if (s->wait_fd_) {
        quietly([&s](auto& ec) { return s->wait_fd_->cancel(ec); });
      }
      s->pump();
    };
    if (wait_fd_) {
      wait_fd_->async_wait(net::posix::stream_descriptor::wait_read, wake);
    }
    wait_timer_.expires_after(source_->pollAfter());
    wait_timer_.async_wait(wake);
  }

  std::shared_ptr<ServerState> state_;
  std::shared_ptr<Slot> slot_;
  beast::ssl_stream<beast::tcp_stream> stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  Credentials creds_;  // the connection's certificate
  bool first_ = true, keep_alive_ = false, head_ = false, closed_ = false, waiting_ = false;
  bool upgraded_ = false;  // the connection went to a stream endpoint
  bool drain_ = false;     // the request was not read whole: drain before closing
  std::shared_ptr<Route> route_;
  std::optional<RouteError> refused_;  // the router's answer, given once authenticated
  std::string route_method_;
  UserInfo user_;
  std::shared_ptr<Session> self_;
  std::unique_ptr<BodySource> source_;
  std::string pending_, chunk_;
  char discard_[512];
  std::optional<net::posix::stream_descriptor> wait_fd_;  // a dup of the source's fd
  net::steady_timer wait_timer_, write_timer_;
};

void startSession(const std::shared_ptr<ServerState>& state, net::ip::tcp::socket socket) {
  if (state->connections >= state->config.max_connections) {
    quietly([&socket](auto& ec) { return socket.close(ec); });  // refused: the cap bounds memory
    return;
  }
  // TLS state (OpenSSL's and asio's buffers, tens of KiB) is made only once
  // the client sends something: a connection that stays silent costs a
  // socket and a timer, and is closed after header_timeout.
  auto slot = std::make_shared<Slot>(state);
  auto sock = std::make_shared<net::ip::tcp::socket>(std::move(socket));
  auto timer = std::make_shared<net::steady_timer>(sock->get_executor());
  timer->expires_after(state->config.header_timeout);
  timer->async_wait([sock](beast::error_code ec) {
    if (!ec) {
      quietly([&sock](auto& ec) { return sock->close(ec); });  // ends the wait below
    }
  });
  sock->async_wait(net::socket_base::wait_read, [state, slot, sock, timer](beast::error_code ec) {
    timer->cancel();
    if (ec || !sock->is_open()) {
      return;  // timed out or stopped: the socket closes with the last reference
    }
    auto s = std::make_shared<Session>(state, slot, std::move(*sock));
    // Forget closed sessions now and then: the list stays as long as the live ones.
    if (state->sessions.size() > 2 * state->connections + 16) {
      state->sessions.remove_if([](const auto& w) { return w.expired(); });
    }
    state->sessions.push_back(s);
    s->start();
  });
}

void closeSessions(ServerState& state) {
  for (auto& w : state.sessions) {
    if (auto s = w.lock()) {
      s->close();
    }
  }
  state.sessions.clear();
  for (auto& w : state.upgraded) {
    if (auto c = w.lock()) {
      // Its framing sees the error and lets go of it.
      quietly([&c](auto& ec) { return c->stream.next_layer().socket().close(ec); });
    }
  }
  state.upgraded.clear();
}

}  // namespace kernelet::agent::server
