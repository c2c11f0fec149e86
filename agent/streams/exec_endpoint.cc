#include "agent/streams/exec_endpoint.h"

#include <boost/beast/core/string.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/beast/http/write.hpp>

#include "agent/log/log.h"
#include "agent/streams/websocket_transport.h"

namespace kernelet::agent::streams {

namespace http = boost::beast::http;

Protocols execProtocols() {
  return Protocols{
      .spdy = {"v4.channel.k8s.io", "v3.channel.k8s.io", "v2.channel.k8s.io", "channel.k8s.io"},
      .websocket = {"v5.channel.k8s.io", "v4.channel.k8s.io", "v4.base64.channel.k8s.io",
                    "v3.channel.k8s.io", "v2.channel.k8s.io", "channel.k8s.io",
                    "base64.channel.k8s.io"}};
}

ChannelPlan execChannelPlan(const RemoteCommandOptions& o) {
  ChannelPlan plan;
  if (o.use_stdin) {
    plan.channels.push_back({0, StreamHeaders{.type = "stdin"}});
  }
  if (o.use_stdout) {
    plan.channels.push_back({1, StreamHeaders{.type = "stdout"}});
  }
  if (o.use_stderr) {
    plan.channels.push_back({2, StreamHeaders{.type = "stderr"}});
  }
  plan.channels.push_back({3, StreamHeaders{.type = "error"}});
  plan.channels.push_back({4, StreamHeaders{.type = "resize"}});
  return plan;
}

namespace {

// `kubelet_name` as the API server sends it, or PodExecOptions' own name.
Result<bool> flag(const server::Query& q, const char* kubelet_name, const char* option_name) {
  TRY(bool a, q.boolean(kubelet_name));
  TRY(bool b, q.boolean(option_name));
  return a || b;
}

// An answer before the upgrade, in the kubelet's form (the message as text),
// then the connection closes.
void reject(const std::shared_ptr<UpgradedConnection>& conn, const UpgradeError& err) {
  auto res = std::make_shared<http::response<http::string_body>>(
      static_cast<http::status>(err.status), 11);
  res->set(http::field::content_type, "text/plain; charset=utf-8");
  res->set("X-Content-Type-Options", "nosniff");
  res->set(http::field::connection, "close");
  res->body() = err.message + "\n";
  res->prepare_payload();
  http::async_write(conn->stream, *res, [conn, res](boost::beast::error_code, size_t) {
    boost::beast::error_code ec;
    if (conn->stream.next_layer().socket().close(ec)) {
      return;  // closed either way
    }
  });
}

}  // namespace

std::expected<RemoteCommandOptions, UpgradeError> execOptions(const server::Request& req) {
  RemoteCommandOptions o;
  const auto& p = req.params;
  if (p.size() != 3 && p.size() != 4) {
    return std::unexpected(UpgradeError{400, "expected /exec/NAMESPACE/POD/[UID/]CONTAINER"});
  }
  o.pod = PodRef{.namespace_ = p[0], .name = p[1], .uid = p.size() == 4 ? p[2] : ""};
  o.container = p.back();
  auto bad = [](const Error& e) { return std::unexpected(UpgradeError{400, e.message()}); };
  auto in = flag(req.query, "input", "stdin");
  auto out = flag(req.query, "output", "stdout");
  auto err = flag(req.query, "error", "stderr");
  auto tty = req.query.boolean("tty");
  for (const auto* r : {&in, &out, &err, &tty}) {
    if (!*r) {
      return bad(r->error());
    }
  }
  o.use_stdin = *in;
  o.use_stdout = *out;
  o.use_stderr = *err && !*tty;  // the terminal merges stderr into stdout
  o.tty = *tty;
  if (!o.use_stdin && !o.use_stdout && !o.use_stderr) {
    return std::unexpected(
        UpgradeError{400, "you must specify at least 1 of stdin, stdout, stderr"});
  }
  o.command = req.query.all("command");
  if (o.command.empty()) {
    return std::unexpected(
        UpgradeError{400, "you must specify at least one command for the container"});
  }
  return o;
}

UpgradeHandler execHandler(PodExists pod_exists, ExecStarter starter,
                           std::chrono::milliseconds stream_creation_timeout,
                           RemoteCommandDone done) {
  return [pod_exists = std::move(pod_exists), starter = std::move(starter), stream_creation_timeout,
          done = std::move(done)](server::Request req, std::shared_ptr<UpgradedConnection> conn) {
    auto opts = execOptions(req);
    if (!opts) {
      log::v(4, "Bad exec request", {{"path", req.path}, {"err", opts.error().message}});
      return reject(conn, opts.error());
    }
    if (!pod_exists(opts->pod)) {
      return reject(conn, UpgradeError{404, "pod does not exist"});
    }
    opts->stream_creation_timeout = stream_creation_timeout;
    opts->websocket = boost::beast::iequals(conn->request[http::field::upgrade], "websocket");
    auto plan = [o = *opts](const std::string&) { return execChannelPlan(o); };
    log::v(4, "Exec upgrade",
           {{"pod", opts->pod.namespace_ + "/" + opts->pod.name},
            {"container", opts->container},
            {"user", req.user}});
    acceptUpgrade(std::move(conn), execProtocols(), plan,
                  [opts = std::move(*opts), starter, done](auto negotiated) mutable {
                    if (!negotiated) {
                      log::v(2, "Exec upgrade failed",
                             {{"pod", opts.pod.namespace_ + "/" + opts.pod.name},
                              {"container", opts.container},
                              {"err", negotiated.error().message}});
                      return;
                    }
                    runRemoteCommand(std::move(negotiated->transport), negotiated->protocol,
                                     std::move(opts), starter, done);
                  });
  };
}

}  // namespace kernelet::agent::streams
