#include "agent/server/run_endpoint.h"

#include <utility>

namespace kernelet::agent::server {

std::vector<std::string> splitFields(const std::string& text) {
  std::vector<std::string> out;
  std::string field;
  for (char c : text) {
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f') {
      if (!field.empty()) {
        out.push_back(std::move(field));
        field.clear();
      }
    } else {
      field += c;
    }
  }
  if (!field.empty()) {
    out.push_back(std::move(field));
  }
  return out;
}

void addRunEndpoint(Endpoints& endpoints, RunInContainer run) {
  endpoints.run = [run = std::move(run)](const Request& req, const Responder& respond) {
    RunRequest r;
    if (req.params.size() == 3) {
      r = {.namespace_ = req.params[0], .pod = req.params[1], .container = req.params[2]};
    } else if (req.params.size() == 4) {
      r = {.namespace_ = req.params[0],
           .pod = req.params[1],
           .uid = req.params[2],
           .container = req.params[3]};
    } else {
      return respond(Response::error(400, "expected /run/NAMESPACE/POD/[UID/]CONTAINER"));
    }
    r.argv = splitFields(req.query.get("cmd").value_or(""));
    if (r.argv.empty()) {
      return respond(Response::error(400, "missing cmd: the command to run"));
    }
    run(std::move(r), respond);
  };
}

}  // namespace kernelet::agent::server
