#include "agent/server/handler.h"

namespace kernelet::agent::server {

Response Response::text(int status, std::string body) {
  Response r;
  r.status = status;
  r.body = std::move(body);
  // Log content is the pod's: a browser must not sniff it into HTML (Go's
  // http.Error sets the same).
  r.headers.emplace_back("X-Content-Type-Options", "nosniff");
  return r;
}

Response Response::json(int status, std::string body) {
  Response r;
  r.status = status;
  r.content_type = "application/json";
  r.body = std::move(body);
  return r;
}

Response Response::error(int status, std::string message) {
  if (message.empty() || message.back() != '\n') {
    message += '\n';
  }
  return text(status, std::move(message));
}

}  // namespace kernelet::agent::server
