#include "apiclient/connection_pool.h"

#include <poll.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/ssl.hpp>
#include <cstring>

#include "apiclient/http_exchange.h"

namespace kernelet::apiclient {

namespace net = boost::asio;
namespace ssl = net::ssl;
namespace beast = boost::beast;
using tcp = net::ip::tcp;

struct ConnectionPool::Impl {
  net::io_context ioc;
  ssl::context ctx{ssl::context::tls_client};
};

struct ConnectionPool::Conn {
  explicit Conn(net::io_context& ioc, ssl::context& ctx) : tls(ioc, ctx), plain(ioc) {}
  beast::ssl_stream<beast::tcp_stream> tls;
  beast::tcp_stream plain;
  bool is_tls = true;
  int fd() {
    return is_tls ? beast::get_lowest_layer(tls).socket().native_handle()
                  : plain.socket().native_handle();
  }
};

ConnectionPool::ConnectionPool(PoolOptions o) : options_(std::move(o)), impl_(new Impl) {}
ConnectionPool::~ConnectionPool() = default;

Result<std::unique_ptr<ConnectionPool>> ConnectionPool::create(const PoolOptions& options) {
  std::unique_ptr<ConnectionPool> p(new ConnectionPool(options));
  TRY(p->url_, parseUrl(options.server));
  ssl::context& ctx = p->impl_->ctx;
  ctx.set_options(ssl::context::no_sslv2 | ssl::context::no_sslv3 | ssl::context::no_tlsv1 |
                  ssl::context::no_tlsv1_1);  // TLS 1.2 and newer
  beast::error_code ec;
  if (options.insecure_skip_verify) {
    ctx.set_verify_mode(ssl::verify_none);
  } else {
    ctx.set_verify_mode(ssl::verify_peer);
    if (!options.ca_pem.empty()) {
      ctx.add_certificate_authority(net::buffer(options.ca_pem), ec);
      if (ec) {
        return makeError("load certificate-authority", options.server,
                         "not a PEM certificate: " + ec.message());
      }
    } else {
      ctx.set_default_verify_paths();
    }
  }
  if (!options.client_cert_pem.empty()) {
    ctx.use_certificate_chain(net::buffer(options.client_cert_pem), ec);
    if (ec) {
      return makeError("load client-certificate", options.server, ec.message());
    }
    ctx.use_private_key(net::buffer(options.client_key_pem), ssl::context::pem, ec);
    if (ec) {
      return makeError("load client-key", options.server, ec.message());
    }
  }
  return p;
}

Result<std::unique_ptr<ConnectionPool::Conn>> ConnectionPool::dial() {
  auto c = std::make_unique<Conn>(impl_->ioc, impl_->ctx);
  c->is_tls = url_.scheme == "https";
  beast::error_code ec;
  tcp::resolver resolver(impl_->ioc);
  auto endpoints = resolver.resolve(url_.host, url_.port, ec);
  if (ec) {
    return makeError("resolve", url_.host, ec.message());
  }
  // A bounded connect: non-blocking connect, then wait for writability.
  tcp::socket& sock = c->is_tls ? beast::get_lowest_layer(c->tls).socket() : c->plain.socket();
  std::string last = "no address";
  bool connected = false;
  for (const auto& ep : endpoints) {
    sock.close(ec);
    sock.open(ep.endpoint().protocol(), ec);
    if (ec) {
      last = ec.message();
      continue;
    }
    sock.non_blocking(true, ec);
    sock.connect(ep.endpoint(), ec);
    if (ec == net::error::would_block || ec == net::error::in_progress) {
      ec = {};
      pollfd pfd{.fd = sock.native_handle(), .events = POLLOUT, .revents = 0};
      int ms = static_cast<int>(options_.timeout.count() * 1000);
      if (::poll(&pfd, 1, ms) == 0) {
        last = "timed out after " + std::to_string(options_.timeout.count()) + " s";
        continue;
      }
    }
    if (!ec) {
      int err = 0;
      socklen_t len = sizeof err;
      ::getsockopt(sock.native_handle(), SOL_SOCKET, SO_ERROR, &err, &len);
      if (err == 0) {
        connected = true;
        break;
      }
      last = std::strerror(err);
    } else {
      last = ec.message();
    }
  }
  if (!connected) {
    return makeError("connect", url_.str(), last);
  }
  sock.non_blocking(false, ec);
  sock.set_option(tcp::no_delay(true), ec);  // as Go's net/http: no wait for a delayed ACK
  detail::setSocketTimeouts(sock.native_handle(), options_.timeout);
  if (c->is_tls) {
    std::string name = options_.server_name.empty() ? url_.host : options_.server_name;
    if (!SSL_set_tlsext_host_name(c->tls.native_handle(), name.c_str())) {
      return makeError("set TLS server name", name, "rejected by OpenSSL");
    }
    if (!options_.insecure_skip_verify) {
      c->tls.set_verify_callback(ssl::host_name_verification(name));
    }
    c->tls.handshake(ssl::stream_base::client, ec);
    if (ec) {
      std::string why = ec.message();
      long verify = SSL_get_verify_result(c->tls.native_handle());
      if (verify != X509_V_OK) {
        why += ": " + std::string(X509_verify_cert_error_string(verify));
      }
      return makeError("TLS handshake with", url_.str(), why);
    }
  }
  dials_++;
  return c;
}

AsyncTarget ConnectionPool::asyncTarget() {
  return {.url = url_,
          .tls = url_.scheme == "https" ? &impl_->ctx : nullptr,
          .server_name = options_.server_name,
          .verify = !options_.insecure_skip_verify,
          .timeout = options_.timeout};
}

std::unique_ptr<ConnectionPool::Conn> ConnectionPool::takeIdle() {
  std::lock_guard lock(mu_);
  if (idle_.empty()) {
    return nullptr;
  }
  auto c = std::move(idle_.back());
  idle_.pop_back();
  return c;
}

void ConnectionPool::putIdle(std::unique_ptr<Conn> c) {
  std::lock_guard lock(mu_);
  if (idle_.size() < options_.max_idle) {
    idle_.push_back(std::move(c));
  }
}

Result<HttpResponse> ConnectionPool::roundTrip(const HttpRequest& req, const BodySink& sink,
                                               std::atomic<int>* stream_fd,
                                               std::chrono::seconds read_timeout) {
  Url url = url_;
  url.target = req.url;
  for (int attempt = 0;; attempt++) {
    std::unique_ptr<Conn> c = attempt == 0 ? takeIdle() : nullptr;
    bool reused = c != nullptr;
    if (!c) {
      TRY(c, dial());
    }
    if (read_timeout.count() > 0) {
      detail::setSocketTimeouts(c->fd(), read_timeout);
    }
    if (stream_fd != nullptr) {
      stream_fd->store(c->fd());
    }
    bool answered = false;
    BodySink counting = sink ? BodySink([&](std::string_view piece) {
      answered = true;
      return sink(piece);
    })
                             : BodySink();
    auto r = c->is_tls ? detail::exchange(c->tls, url, req, counting)
                       : detail::exchange(c->plain, url, req, counting);
    if (stream_fd != nullptr) {
      stream_fd->store(-1);
    }
    if (!r) {
      if (reused && !answered && attempt == 0) {
        continue;  // the idle connection had been closed by the server
      }
      return r;
    }
    if (read_timeout.count() > 0) {
      detail::setSocketTimeouts(c->fd(), options_.timeout);
    }
    if (r->keep_alive) {
      putIdle(std::move(c));
    }
    return r;
  }
}

}  // namespace kernelet::apiclient
