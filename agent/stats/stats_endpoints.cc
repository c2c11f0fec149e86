#include "agent/stats/stats_endpoints.h"

#include "agent/stats/prometheus.h"

namespace kernelet::agent::stats {

namespace {

using server::Request;
using server::Responder;
using server::Response;

// A page built on the stats thread; `build` returns the response.
server::Handler page(const std::shared_ptr<StatsService>& svc,
                     const std::function<Response(StatsService&, const Request&)>& build) {
  // The handler holds the service; a queued job holds only a plain pointer,
  // so the service is never destroyed on its own thread (it joins that
  // thread), and its destructor answers whatever is still queued.
  return [svc, build](Request req, Responder respond) {
    if (req.method != "GET" && req.method != "HEAD") {
      respond(Response::error(405, "method " + req.method + " not allowed"));
      return;
    }
    StatsService* s = svc.get();
    auto shared_respond = std::make_shared<Responder>(std::move(respond));
    auto shared_req = std::make_shared<Request>(std::move(req));
    bool taken = s->post([s, build, shared_respond, shared_req](bool cancelled) {
      if (cancelled) {
        (*shared_respond)(Response::error(503, "the stats service is shutting down"));
        return;
      }
      (*shared_respond)(build(*s, *shared_req));
    });
    if (!taken) {
      (*shared_respond)(Response::error(503, "too many stats requests waiting"));
    }
  };
}

Response prometheus(std::string body) {
  Response r = Response::text(200, std::move(body));
  r.content_type = std::string(kTextContentType);
  return r;
}

}  // namespace

std::shared_ptr<StatsService> addStatsEndpoints(server::Endpoints& endpoints,
                                                const StatsContext& ctx) {
  auto svc = std::make_shared<StatsService>(ctx);
  svc->start();
  endpoints.stats_summary = page(svc, [](StatsService& s, const Request& req) {
    auto only = req.query.boolean("only_cpu_and_memory", false);
    if (!only) {
      return Response::error(400, only.error().message());
    }
    return Response::json(200, s.summaryText(*only));
  });
  endpoints.metrics_resource =
      page(svc, [](StatsService& s, const Request&) { return prometheus(s.resourceText()); });
  endpoints.metrics_cadvisor =
      page(svc, [](StatsService& s, const Request&) { return prometheus(s.cadvisorText()); });
  endpoints.metrics_probes =
      page(svc, [](StatsService& s, const Request&) { return prometheus(s.probesText()); });
  endpoints.metrics =
      page(svc, [](StatsService& s, const Request&) { return prometheus(s.agentText()); });
  return svc;
}

}  // namespace kernelet::agent::stats
