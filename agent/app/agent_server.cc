// The agent's node server (:10250): what it listens on, who it trusts, and
// the endpoints each module fills. Part of Agent (agent.h), apart so agent.cc
// stays the sync loop.
#include <algorithm>

#include "agent/app/agent.h"
#include "agent/log/log.h"
#include "agent/logs/logs_endpoint.h"
#include "agent/server/api_reviewers.h"
#include "agent/server/node_endpoints.h"
#include "agent/server/run_endpoint.h"
#include "agent/stats/stats_endpoints.h"
#include "cgroups/cgroups.h"

namespace kernelet::agent {

Result<void> Agent::startServer(const apiclient::ClusterAccess* access) {
  const AgentConfig& config = ctx_.config;
  const ServerSettings& s = config.server;
  if (access == nullptr && s.client_ca_file.empty()) {
    // No API server to ask who may do what: the server runs for the holders
    // of client certificates only, or not at all, never open.
    log::info("The node server is off: standalone without --client-ca-file (it never runs open)");
    return {};
  }
  server::ServerConfig sc;
  sc.address = s.address;
  sc.port = s.port;
  sc.stream_idle_timeout = std::chrono::seconds(s.streaming_idle_timeout);
  sc.tls = {.cert_file = s.tls_cert_file,
            .key_file = s.tls_private_key_file,
            .cert_dir = s.cert_dir.empty() ? config.root_dir + "/pki" : s.cert_dir,
            .node_name = config.node_name,
            .ips = {ctx_.node_ip},
            .min_version = s.tls_min_version,
            .cipher_suites = s.tls_cipher_suites,
            .client_ca_file = s.client_ca_file};
  server::Security sec;
  sec.authn.x509 = !s.client_ca_file.empty();
  if (access != nullptr) {
    // Its own client (same credentials, same network thread): reviews are
    // not queued behind the pods' watches and status patches.
    TRY(review_client_, apiclient::ApiClient::create(*access));
    if (s.webhook_authn) {
      token_reviewer_ = std::make_unique<server::ApiTokenReviewer>(*review_client_, *net_);
      sec.authn.tokens = token_reviewer_.get();
      sec.authn.cache_ttl = std::chrono::seconds(s.webhook_cache_ttl);
      sec.authn.failure_ttl = std::min(sec.authn.cache_ttl, std::chrono::seconds(10));
    }
    sec.authn.anonymous = s.anonymous;
    if (s.authorization_mode == "Webhook") {
      access_reviewer_ =
          std::make_unique<server::ApiAccessReviewer>(*review_client_, *net_, config.node_name);
      sec.authz.reviewer = access_reviewer_.get();
      sec.authz.allowed_ttl = std::chrono::seconds(s.authz_cache_authorized_ttl);
      sec.authz.denied_ttl = std::chrono::seconds(s.authz_cache_unauthorized_ttl);
    }
  }
  server::Endpoints endpoints;
  server::addNodeEndpoints(endpoints, snapshots_, config);
  TRY(server_queue_, LoopQueue::create(*loop_));
  server::addRunEndpoint(endpoints, [this](server::RunRequest r, server::Responder respond) {
    server_queue_->post(
        [this, r = std::move(r), respond = std::move(respond)] { runInPod(r, respond); });
  });
  addStreamEndpoints(endpoints);
  logs::addLogEndpoints(endpoints, snapshots_, config.pod_log_dir);
  stats::StatsContext stats{.snapshots = &snapshots_};
  stats.sources.node_name = config.node_name;
  stats.sources.root_dir = config.root_dir;
  stats.sources.pod_log_dir = config.pod_log_dir;
  stats.sources.image_dir = config.root_dir + "/images";
  stats.sources.pods_cgroup = cgroups::kubepodsPath(config.cgroup_root);
  // The handlers keep the service (and its two threads) until the server goes.
  stats::addStatsEndpoints(endpoints, stats);
  TRY(server_, server::NodeServer::start(std::move(sc), std::move(endpoints), sec));
  server_port_ = server_->port();
  return {};
}

void Agent::runInPod(const server::RunRequest& r, const server::Responder& respond) {
  // What the kubelet's /run allows a command: a minute, and here at most
  // 4 MiB of output kept (the rest is dropped, not buffered).
  constexpr std::chrono::seconds kTimeout{60};
  constexpr size_t kMaxOutput = 4 << 20;
  for (auto& [uid, w] : workers_) {
    const Pod& pod = w->pod();
    if (pod.namespace_ != r.namespace_ || pod.name != r.pod || (!r.uid.empty() && uid != r.uid) ||
        terminating_.contains(uid)) {
      continue;
    }
    w->runCommand(r.container, r.argv, kTimeout, kMaxOutput, [respond](Result<ProbeOutcome> o) {
      if (!o) {
        return respond(server::Response::error(404, o.error().detail));
      }
      // A command that ran and failed: its output and why, as
      // the kubelet answers an error of RunInContainer.
      respond(server::Response::text(o->success ? 200 : 500, o->message));
    });
    return;
  }
  respond(server::Response::error(404, "pod does not exist"));
}

}  // namespace kernelet::agent
