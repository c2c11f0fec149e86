#pragma once
// One HTTP/1.1 request on the network thread (ApiLoop), without blocking it:
// resolve, connect, TLS handshake, write, then the response read piece by
// piece as it arrives, each step bounded by a timer. A streamed body (a
// watch) goes to a sink; the end, or the first error, goes to `done`, which
// runs on the loop thread and never after cancel().
// Internal to apiclient: the API client and the reflector build on it.

#include <chrono>
#include <functional>
#include <memory>

#include "apiclient/http_client.h"
#include "sys/result.h"

namespace boost::asio {
class io_context;
namespace ssl {
class context;
}
}  // namespace boost::asio

namespace kernelet::apiclient {

// Where calls go and how: what the connection pool was set up with.
struct AsyncTarget {
  Url url;                                   // the server; its target is ignored
  boost::asio::ssl::context* tls = nullptr;  // for https (verification set up)
  std::string server_name;                   // SNI and the verified name
  bool verify = true;                        // check the host name
  std::chrono::seconds timeout{30};          // connect, handshake, write, headers
};

class AsyncCall {
 public:
  virtual ~AsyncCall() = default;
  // From the loop thread: ends the call; `done` will not run.
  virtual void cancel() = 0;
};

struct AsyncRequest {
  HttpRequest request;  // url: the path and query
  BodySink sink;        // for a 2xx body, streamed; else the body is read whole
  // Bounds the silence between pieces of the body (0: the target's timeout).
  std::chrono::seconds idle{0};
  // Waited before the call starts (the client's rate limit).
  std::chrono::steady_clock::duration delay{0};
  std::function<void(Result<HttpResponse>)> done;
};

// Starts the call on `ioc` (from any thread: it begins from the loop's
// queue, so `done` never runs inside this). The call keeps itself alive until
// it ends or is cancelled; the handle is only needed to cancel it.
std::shared_ptr<AsyncCall> startAsyncCall(boost::asio::io_context& ioc, const AsyncTarget& target,
                                          AsyncRequest request);

}  // namespace kernelet::apiclient
