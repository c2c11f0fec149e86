#include "apiclient/async_call.h"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <limits>
#include <optional>

#include "apiclient/http_exchange.h"

namespace kernelet::apiclient {
namespace {

namespace net = boost::asio;
namespace ssl = net::ssl;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;

// Each step is a method whose completion handler holds the call alive and
// does nothing once it was cancelled or finished.
class Call : public AsyncCall, public std::enable_shared_from_this<Call> {
 public:
  Call(net::io_context& ioc, const AsyncTarget& target, AsyncRequest request)
      : target_(target),
        request_(std::move(request)),
        resolver_(ioc),
        delay_(ioc),
        chunk_(size_t{16} * 1024) {
    url_ = target_.url;
    url_.target = request_.request.url;
    if (target_.tls != nullptr) {
      tls_.emplace(ioc, *target_.tls);
    } else {
      plain_.emplace(ioc);
    }
  }

  void start() {
    if (!live()) {
      return;
    }
    if (request_.delay <= std::chrono::steady_clock::duration::zero()) {
      begin();
      return;
    }
    delay_.expires_after(request_.delay);
    delay_.async_wait([self = shared_from_this()](const beast::error_code& ec) {
      if (!ec && self->live()) {
        self->begin();
      }
    });
  }

  void cancel() override {
    cancelled_ = true;
    close();
  }

 private:
  bool live() const { return !cancelled_ && !finished_; }
  beast::tcp_stream& tcp() { return tls_ ? beast::get_lowest_layer(*tls_) : *plain_; }
  template <typename F>
  void withStream(F&& f) {
    if (tls_) {
      f(*tls_);
    } else {
      f(*plain_);
    }
  }
  void close() {
    beast::error_code ec;
    resolver_.cancel();
    delay_.cancel();
    tcp().socket().close(ec);  // pending operations end with operation_aborted
  }

  // The end: `done` once, unless cancelled.
  void finish(Result<HttpResponse> r) {
    if (!live()) {
      return;
    }
    finished_ = true;
    close();
    request_.done(std::move(r));
  }
  void fail(const std::string& op, const std::string& why) {
    finish(makeError(op, url_.str(), why));
  }

  void begin() {
    // An address needs no resolver (whose asynchronous form is a thread of
    // asio's own).
    beast::error_code ec;
    auto address = net::ip::make_address(url_.host, ec);
    if (!ec) {
      auto port = static_cast<unsigned short>(std::stoi(url_.port));
      connect(
          tcp::resolver::results_type::create(tcp::endpoint(address, port), url_.host, url_.port));
      return;
    }
    resolver_.async_resolve(
        url_.host, url_.port,
        [self = shared_from_this()](const beast::error_code& ec,
                                    const tcp::resolver::results_type& results) {
          if (!self->live()) {
            return;
          }
          if (ec) {
            self->finish(makeError("resolve", self->url_.host, ec.message()));
            return;
          }
          self->connect(results);
        });
  }

  void connect(const tcp::resolver::results_type& endpoints) {
    tcp().expires_after(target_.timeout);
    tcp().async_connect(
        endpoints, [self = shared_from_this()](const beast::error_code& ec, const tcp::endpoint&) {
          if (!self->live()) {
            return;
          }
          if (ec) {
            self->fail("connect", ec.message());
            return;
          }
          beast::error_code ignored;
          // As Go's net/http: no wait for a delayed ACK.
          self->tcp().socket().set_option(tcp::no_delay(true), ignored);
          if (self->tls_) {
            self->handshake();
          } else {
            self->write();
          }
        });
  }

  void handshake() {
    std::string name = target_.server_name.empty() ? url_.host : target_.server_name;
    if (!SSL_set_tlsext_host_name(tls_->native_handle(), name.c_str())) {
      fail("set TLS server name", "rejected by OpenSSL");
      return;
    }
    if (target_.verify) {
      tls_->set_verify_callback(ssl::host_name_verification(name));
    }
    tcp().expires_after(target_.timeout);
    tls_->async_handshake(ssl::stream_base::client,
                          [self = shared_from_this()](const beast::error_code& ec) {
                            if (!self->live()) {
                              return;
                            }
                            if (ec) {
                              std::string why = ec.message();
                              long verify = SSL_get_verify_result(self->tls_->native_handle());
                              if (verify != X509_V_OK) {
                                why += ": " + std::string(X509_verify_cert_error_string(verify));
                              }
                              self->finish(makeError("TLS handshake with", self->url_.str(), why));
                              return;
                            }
                            self->write();
                          });
  }

  void write() {
    message_ = detail::buildRequest(url_, request_.request);
    tcp().expires_after(target_.timeout);
    withStream([this](auto& s) {
      http::async_write(s, message_,
                        [self = shared_from_this()](const beast::error_code& ec, size_t) {
                          if (!self->live()) {
                            return;
                          }
                          if (ec) {
                            self->fail("send " + self->request_.request.method, ec.message());
                            return;
                          }
                          self->readHeader();
                        });
    });
  }

  void readHeader() {
    parser_.body_limit(std::numeric_limits<std::uint64_t>::max());
    tcp().expires_after(target_.timeout);
    withStream([this](auto& s) {
      http::async_read_header(
          s, buffer_, parser_, [self = shared_from_this()](const beast::error_code& ec, size_t) {
            if (!self->live()) {
              return;
            }
            if (ec) {
              self->fail("read response to " + self->request_.request.method, ec.message());
              return;
            }
            self->response_ = detail::responseHead(self->parser_);
            self->stream_body_ = self->request_.sink && self->response_.status >= 200 &&
                                 self->response_.status < 300;
            self->readBody();
          });
    });
  }

  // read_some: a watch must see each event as it comes.
  void readBody() {
    if (parser_.is_done()) {
      finish(std::move(response_));
      return;
    }
    parser_.get().body().data = chunk_.data();
    parser_.get().body().size = chunk_.size();
    tcp().expires_after(request_.idle.count() > 0 ? request_.idle : target_.timeout);
    withStream([this](auto& s) {
      http::async_read_some(s, buffer_, parser_,
                            [self = shared_from_this()](beast::error_code ec, size_t) {
                              if (!self->live()) {
                                return;
                              }
                              if (ec == http::error::need_buffer) {
                                ec = {};
                              }
                              if (ec) {
                                self->fail("read body from", ec.message());
                                return;
                              }
                              self->onPiece();
                            });
    });
  }

  void onPiece() {
    size_t got = chunk_.size() - parser_.get().body().size;
    if (got > 0) {
      std::string_view piece(chunk_.data(), got);
      if (!stream_body_) {
        response_.body.append(piece);
      } else if (auto r = request_.sink(piece); !r) {
        finish(std::unexpected(r.error()));
        return;
      }
    }
    if (live()) {  // the sink may have cancelled the call
      readBody();
    }
  }

  AsyncTarget target_;
  AsyncRequest request_;
  Url url_;
  tcp::resolver resolver_;
  net::steady_timer delay_;
  std::optional<beast::ssl_stream<beast::tcp_stream>> tls_;
  std::optional<beast::tcp_stream> plain_;
  http::request<http::string_body> message_;
  beast::flat_buffer buffer_;
  http::response_parser<http::buffer_body> parser_;
  HttpResponse response_;
  std::vector<char> chunk_;
  bool stream_body_ = false, cancelled_ = false, finished_ = false;
};

}  // namespace

std::shared_ptr<AsyncCall> startAsyncCall(net::io_context& ioc, const AsyncTarget& target,
                                          AsyncRequest request) {
  auto call = std::make_shared<Call>(ioc, target, std::move(request));
  // Started from the loop's queue: `done` never runs before this returns.
  net::post(ioc, [call] { call->start(); });
  return call;
}

}  // namespace kernelet::apiclient
