// PLACEHOLDER while the framing is written on its own branch (issue #18):
// answers 501 so the endpoints above it link and refuse cleanly.
#include "agent/streams/spdy_transport.h"

#include <boost/beast/http/write.hpp>

namespace kernelet::agent::streams {

namespace http = boost::beast::http;

void acceptSpdy(std::shared_ptr<UpgradedConnection> conn, const std::vector<std::string>&,
                AcceptDone done) {
  UpgradeError err{501, "not implemented"};
  auto res = std::make_shared<http::response<http::string_body>>(http::status::not_implemented, 11);
  res->set(http::field::connection, "close");
  res->body() = err.message;
  res->prepare_payload();
  http::async_write(conn->stream, *res,
                    [conn, res, err, done = std::move(done)](boost::beast::error_code, size_t) {
                      boost::beast::error_code ec;
                      conn->stream.next_layer().socket().close(ec);  // done with it either way
                      done(std::unexpected(err));
                    });
}

}  // namespace kernelet::agent::streams
