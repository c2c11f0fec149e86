#include "agent/server/handler.h"

namespace kernelet::agent::server {

Response Response::text(int status, std::string body) {
  Response r;
  r.status = status;
  r.body = std::move(body);
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
