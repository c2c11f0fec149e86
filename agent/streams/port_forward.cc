#include "agent/streams/port_forward.h"

#include <sys/socket.h>

#include <boost/asio/buffer.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <charconv>
#include <cstdio>
#include <map>
#include <mutex>
#include <optional>
#include <utility>

#include "agent/log/log.h"

namespace kernelet::agent::streams {
namespace {

namespace asio = boost::asio;
using boost::system::error_code;

// The kubelet's check of a port header: decimal, 1..65535.
std::optional<uint16_t> parsePort(const std::string& s) {
  unsigned v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size() || s.empty() || v < 1 || v > 65535) {
    return std::nullopt;
  }
  return static_cast<uint16_t>(v);
}

constexpr StreamId kNone = UINT32_MAX;
constexpr size_t kMaxRequestId = 128;

// One forwarded connection: its two streams, then its socket in the pod.
struct Pair {
  enum class State : uint8_t { kPairing, kDialing, kForwarding, kEnded };
  State state = State::kPairing;
  std::string request_id;
  uint16_t port = 0;
  // The streams, kNone until opened (SPDY ids are 31 bits, channels 8).
  StreamId data = kNone, error = kNone;
  std::unique_ptr<asio::steady_timer> timer;  // stream creation timeout, then linger
  std::unique_ptr<asio::ip::tcp::socket> socket;
  std::vector<char> buf;     // one chunk read from the socket
  std::string to_socket;     // from the client, not yet written to the socket
  bool writing = false;      // a write to the socket is in flight
  bool client_fin = false;   // the client half-closed the data stream
  bool socket_shut = false;  // so we shut the socket's sending side
  bool socket_eof = false;   // the pod's side ended: we finished the data stream
  // The error stream: messages queue while one write is in flight; it is
  // finished once they went out.
  std::string error_queue;
  bool error_writing = false, error_finish = false, error_done = false;
};
using PairPtr = std::shared_ptr<Pair>;

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(std::shared_ptr<Transport> t, PortForwardOptions o, PortDialer d)
      : transport_(std::move(t)), options_(std::move(o)), dialer_(std::move(d)) {}
  // A dial may end on its thread after the connection and the server's
  // io_context are gone (the agent stops its server before its Dialer):
  // its callback posts only while this session, and so the io_context its
  // transport holds, still lives.
  ~Session() {
    std::lock_guard lock(gate_->mu);
    gate_->open = false;
  }

  void start() {
    self_ = shared_from_this();  // until the connection ends
    std::weak_ptr<Session> weak = self_;
    TransportEvents ev;
    ev.opened = [weak](StreamId id, const StreamHeaders& h) {
      if (auto s = weak.lock()) {
        s->opened(id, h);
      }
    };
    ev.data = [weak](StreamId id, std::string_view bytes) {
      if (auto s = weak.lock()) {
        s->data(id, bytes);
      }
    };
    ev.half_closed = [weak](StreamId id) {
      if (auto s = weak.lock()) {
        s->halfClosed(id);
      }
    };
    ev.reset = [weak](StreamId id) {
      if (auto s = weak.lock()) {
        s->clientReset(id);
      }
    };
    ev.closed = [weak](const Error& e) {
      if (auto s = weak.lock()) {
        s->closed(e);
      }
    };
    transport_->start(std::move(ev));
  }

 private:
  enum class End : uint8_t { kClean, kReset };

  void opened(StreamId id, const StreamHeaders& h) {
    if (closed_) {
      return;
    }
    // Streams the kubelet rejects: reset, the others go on.
    auto port = parsePort(h.port);
    // A request id is client-go's counter: one of SPDY's 256 KiB header
    // blocks kept per unpaired stream would hold ~500 MiB per connection.
    if ((h.type != "error" && h.type != "data") || !port || h.request_id.size() > kMaxRequestId) {
      log::v(2, "Port-forward stream rejected",
             {{"stream", std::to_string(id)},
              {"streamType", h.type.substr(0, 64)},
              {"port", h.port.substr(0, 64)}});
      transport_->reset(id);
      return;
    }
    bool is_error = h.type == "error";
    std::string rid = h.request_id;
    if (rid.empty()) {
      // An old client without requestID: the kubelet's guess from the
      // stream ids (error N, data N+2).
      rid = std::to_string(is_error ? id : id - 2);
    }
    auto [it, created] = pairing_.try_emplace(rid);
    if (created) {
      it->second = std::make_shared<Pair>();
    }
    PairPtr p = it->second;  // a copy: the map's entry goes once paired
    if (created) {
      p->request_id = rid;
      startTimer(p, options_.stream_creation_timeout, [this, p] { creationTimedOut(p); });
      if (options_.channels) {
        channel_pairs_++;
      }
    }
    StreamId& slot = is_error ? p->error : p->data;
    if (slot != kNone) {
      writeError(p, "error processing stream for request " + rid + ": " + h.type +
                        " stream already assigned");
      transport_->reset(id);
      return;
    }
    slot = id;
    streams_[id] = p;
    if (!is_error) {
      p->port = *port;  // the kubelet dials the data stream's port
    }
    if (p->data != kNone && p->error != kNone) {
      pairing_.erase(rid);
      dial(p);
    }
  }

  void data(StreamId id, std::string_view bytes) {
    auto it = streams_.find(id);
    if (it == streams_.end() || closed_) {
      return;
    }
    PairPtr p = it->second;
    if (id != p->data || p->client_fin) {
      transport_->consumed(id, bytes.size());  // nobody reads the error stream
      return;
    }
    p->to_socket.append(bytes);  // bounded by what the transport lets in
    pumpToSocket(p);
  }

  void halfClosed(StreamId id) {
    auto it = streams_.find(id);
    if (it == streams_.end() || closed_) {
      return;
    }
    PairPtr p = it->second;
    if (id == p->data) {
      p->client_fin = true;
      pumpToSocket(p);
    }
    // The error stream: clients close their side at once (they never write).
  }

  void clientReset(StreamId id) {
    auto it = streams_.find(id);
    if (it == streams_.end() || closed_) {
      return;
    }
    PairPtr p = it->second;
    if (p->state == Pair::State::kPairing) {
      pairing_.erase(p->request_id);
    }
    endPair(p, End::kReset, id);
  }

  void closed(const Error& e) {
    log::v(4, "Port-forward connection ended", {{"pod", podName()}, {"reason", e.message()}});
    closed_ = true;
    auto streams = std::move(streams_);
    auto pairing = std::move(pairing_);
    for (auto& [rid, p] : pairing) {
      stopPair(*p);
    }
    for (auto& [id, p] : streams) {
      stopPair(*p);
    }
    self_.reset();  // last: `this` may go with it
  }

  // ---- one pair ----

  void creationTimedOut(const PairPtr& p) {
    if (p->state != Pair::State::kPairing) {
      return;
    }
    char conn[32];
    (void)std::snprintf(conn, sizeof(conn), "%p", static_cast<void*>(this));
    pairing_.erase(p->request_id);
    if (p->data != kNone) {
      // A data stream alone: nothing to say it on, so it is reset (the
      // kubelet forgets it; the client's stream would wait for ever).
      endPair(p, End::kReset);
      return;
    }
    writeError(p, std::string("(conn=") + conn + ", request=" + p->request_id +
                      ") timed out waiting for streams");
    endPair(p, End::kClean);
  }

  void dial(const PairPtr& p) {
    p->state = Pair::State::kDialing;
    if (p->timer) {
      p->timer->cancel();
    }
    std::weak_ptr<Session> weak = weak_from_this();
    asio::any_io_executor ex = transport_->executor();
    // `done` may run on any thread, even before dialer_ returns.
    // Weak: the callback must not own the pair's timer and socket, which
    // belong to the io_context and may not outlive it.
    std::weak_ptr<Pair> pair = p;
    dialer_(options_.pod, p->port, [weak, pair, ex, gate = gate_](Result<UniqueFd> r) {
      std::lock_guard lock(gate->mu);
      if (!gate->open) {
        return;  // the session went: the socket closes here
      }
      asio::post(ex, [weak, pair, r = std::move(r)]() mutable {
        auto s = weak.lock();
        auto p = pair.lock();
        if (s && p) {
          s->dialed(p, std::move(r));
        }
      });
    });
  }

  void dialed(const PairPtr& p, Result<UniqueFd> r) {
    if (p->state != Pair::State::kDialing || closed_) {
      return;  // reset meanwhile: the socket closes here
    }
    if (!r) {
      forwardError(p, r.error().message());
      return;
    }
    error_code ec;
    p->socket = std::make_unique<asio::ip::tcp::socket>(transport_->executor());
    sockaddr_storage ss{};
    socklen_t len = sizeof(ss);
    int fd = r->get();
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) {
      ec.assign(errno, boost::system::system_category());
    } else {
      auto proto = ss.ss_family == AF_INET6 ? asio::ip::tcp::v6() : asio::ip::tcp::v4();
      // A tcp socket, not a plain descriptor: it sends with MSG_NOSIGNAL, so
      // a pod that went cannot SIGPIPE the agent.
      ec = p->socket->assign(proto, fd, ec);
    }
    if (ec) {
      forwardError(p, "socket: " + ec.message());
      return;
    }
    (void)r->release();  // the socket owns it now
    p->state = Pair::State::kForwarding;
    p->buf.resize(options_.read_chunk);
    readSocket(p);
    pumpToSocket(p);
  }

  // Pod -> client: one chunk at a time, the next read after it was sent.
  void readSocket(const PairPtr& p) {
    std::weak_ptr<Session> weak = weak_from_this();
    p->socket->async_read_some(asio::buffer(p->buf), [weak, p](error_code ec, size_t n) {
      auto s = weak.lock();
      if (!s || p->state != Pair::State::kForwarding) {
        return;
      }
      if (ec == asio::error::eof) {
        p->socket_eof = true;
        s->transport_->finish(p->data);
        s->directionEnded(p);
        return;
      }
      if (ec) {
        s->forwardError(p, "read: " + ec.message());
        return;
      }
      s->transport_->write(p->data, std::string(p->buf.data(), n), [weak, p](bool ok) {
        auto s = weak.lock();
        if (!s || p->state != Pair::State::kForwarding) {
          return;
        }
        if (!ok) {
          s->endPair(p, End::kReset);
          return;
        }
        s->readSocket(p);
      });
    });
  }

  // Client -> pod: what arrived, then the FIN once all of it was written.
  void pumpToSocket(const PairPtr& p) {
    if (p->state != Pair::State::kForwarding || p->writing) {
      return;
    }
    if (p->to_socket.empty()) {
      if (p->client_fin && !p->socket_shut) {
        p->socket_shut = true;
        error_code ec;
        if (p->socket->shutdown(asio::ip::tcp::socket::shutdown_send, ec)) {
          log::v(4, "Port-forward shutdown failed", {{"err", ec.message()}});  // the pod went
        }
        directionEnded(p);
      }
      return;
    }
    p->writing = true;
    std::weak_ptr<Session> weak = weak_from_this();
    p->socket->async_write_some(asio::buffer(p->to_socket), [weak, p](error_code ec, size_t n) {
      auto s = weak.lock();
      if (!s || p->state != Pair::State::kForwarding) {
        return;
      }
      p->writing = false;
      if (ec) {
        if (p->socket_eof) {
          s->endPair(p, End::kClean);  // the pod closed its end: done
        } else {
          s->forwardError(p, "write: " + ec.message());
        }
        return;
      }
      p->to_socket.erase(0, n);
      s->transport_->consumed(p->data, n);
      s->pumpToSocket(p);
    });
  }

  // One direction is over: the pair ends with the other, or `linger` later.
  void directionEnded(const PairPtr& p) {
    if (p->socket_eof && p->socket_shut) {
      endPair(p, End::kClean);
      return;
    }
    startTimer(p, options_.linger, [this, p] { endPair(p, End::kClean); });
  }

  // The kubelet's message on the error stream, then the pair ends.
  void forwardError(const PairPtr& p, const std::string& why) {
    std::string msg = "error forwarding port " + std::to_string(p->port) + " to pod " + podName() +
                      ", uid " + options_.pod.uid + ": " + why;
    log::v(2, "Port-forward failed", {{"pod", podName()}, {"err", msg}});
    writeError(p, msg);
    endPair(p, End::kClean);
  }

  void writeError(const PairPtr& p, const std::string& msg) {
    if (p->error == kNone || p->error_done) {
      log::v(2, "Port-forward error without an error stream",
             {{"request", p->request_id}, {"err", msg}});
      return;
    }
    p->error_queue += msg;
    flushError(p);
  }

  void flushError(const PairPtr& p) {
    if (p->error_writing || p->error_done || closed_) {
      return;
    }
    if (!p->error_queue.empty()) {
      p->error_writing = true;
      std::weak_ptr<Session> weak = weak_from_this();
      transport_->write(p->error, std::exchange(p->error_queue, {}), [weak, p](bool ok) {
        p->error_writing = false;
        if (!ok) {
          p->error_done = true;
          return;
        }
        if (auto s = weak.lock()) {
          s->flushError(p);
        }
      });
      return;
    }
    if (p->error_finish) {
      p->error_done = true;
      transport_->finish(p->error);
    }
  }

  // Ends the pair: its socket closes; its streams are finished (after what
  // the error stream still has to say) or reset, all but `client_reset`.
  void endPair(const PairPtr& p, End how, StreamId client_reset = kNone) {
    if (p->state == Pair::State::kEnded) {
      return;
    }
    stopPair(*p);
    for (StreamId id : {p->data, p->error}) {
      streams_.erase(id);
    }
    if (closed_) {
      return;
    }
    if (how == End::kReset) {
      p->error_done = true;
      for (StreamId id : {p->data, p->error}) {
        if (id != kNone && id != client_reset) {
          transport_->reset(id);
        }
      }
    } else {
      if (p->data != kNone && !p->socket_eof) {
        transport_->finish(p->data);
      }
      p->error_finish = true;
      if (p->error != kNone) {
        flushError(p);
      }
    }
    // WebSocket: the kubelet ends the connection once every port is done.
    if (options_.channels && --channel_pairs_ == 0) {
      transport_->close();
    }
  }

  static void stopPair(Pair& p) {
    p.state = Pair::State::kEnded;
    if (p.timer) {
      p.timer->cancel();
    }
    if (p.socket) {
      error_code ec;
      if (p.socket->close(ec)) {
        log::v(4, "Port-forward close failed", {{"err", ec.message()}});  // nothing else to do
      }
    }
  }

  template <typename F>
  void startTimer(const PairPtr& p, std::chrono::milliseconds after, F fire) {
    if (!p->timer) {
      p->timer = std::make_unique<asio::steady_timer>(transport_->executor());
    }
    p->timer->expires_after(after);
    std::weak_ptr<Session> weak = weak_from_this();
    p->timer->async_wait([weak, fire = std::move(fire)](error_code ec) {
      auto s = weak.lock();
      if (!ec && s && !s->closed_) {
        fire();
      }
    });
  }

  std::string podName() const { return options_.pod.namespace_ + "/" + options_.pod.name; }

  struct Gate {
    std::mutex mu;
    bool open = true;
  };
  std::shared_ptr<Gate> gate_ = std::make_shared<Gate>();
  std::shared_ptr<Transport> transport_;
  PortForwardOptions options_;
  PortDialer dialer_;
  std::shared_ptr<Session> self_;
  std::map<std::string, PairPtr> pairing_;  // by requestID, until both streams are there
  std::map<StreamId, PairPtr> streams_;     // every live pair's streams
  size_t channel_pairs_ = 0;                // WebSocket: pairs not yet ended
  bool closed_ = false;
};

}  // namespace

void servePortForward(std::shared_ptr<Transport> transport, PortForwardOptions options,
                      PortDialer dialer) {
  std::make_shared<Session>(std::move(transport), std::move(options), std::move(dialer))->start();
}

ChannelPlan portForwardChannels(const std::vector<uint16_t>& ports) {
  ChannelPlan plan;
  plan.port_prefix = true;
  for (size_t i = 0; i < ports.size(); i++) {
    std::string port = std::to_string(ports[i]);
    std::string rid = std::to_string(i);
    plan.channels.push_back({static_cast<StreamId>(2 * i), {"data", port, rid}});
    plan.channels.push_back({static_cast<StreamId>(2 * i + 1), {"error", port, rid}});
  }
  return plan;
}

}  // namespace kernelet::agent::streams
