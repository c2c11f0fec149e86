#include "agent/streams/remote_command_endpoint.h"

#include <boost/beast/core/string.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/beast/http/write.hpp>
#include <cctype>

#include "agent/log/log.h"
#include "agent/streams/exec_endpoint.h"  // execChannelPlan: attach's channels are exec's
#include "agent/streams/websocket_transport.h"

namespace kernelet::agent::streams {

namespace http = boost::beast::http;

namespace {

// `kubelet_name` as the API server sends it, or the options' own name.
Result<bool> flag(const server::Query& q, const char* kubelet_name, const char* option_name) {
  TRY(bool a, q.boolean(kubelet_name));
  TRY(bool b, q.boolean(option_name));
  return a || b;
}

// An answer before the upgrade, in the kubelet's form (the message as text,
// ended by a newline where the kubelet's http.Error adds one), then the
// connection closes.
void reject(const std::shared_ptr<UpgradedConnection>& conn, const UpgradeError& err,
            bool newline = true) {
  auto res = std::make_shared<http::response<http::string_body>>(
      static_cast<http::status>(err.status), 11);
  res->set(http::field::content_type, "text/plain; charset=utf-8");
  res->set("X-Content-Type-Options", "nosniff");
  res->set(http::field::connection, "close");
  res->body() = err.message + (newline ? "\n" : "");
  res->prepare_payload();
  http::async_write(conn->stream, *res, [conn, res](boost::beast::error_code, size_t) {
    boost::beast::error_code ec;
    if (conn->stream.next_layer().socket().close(ec)) {
      return;  // closed either way
    }
  });
}

}  // namespace

std::expected<RemoteCommandOptions, UpgradeError> remoteCommandStreams(
    const server::Request& req, const std::string& endpoint) {
  RemoteCommandOptions o;
  const auto& p = req.params;
  if (p.size() != 3 && p.size() != 4) {
    return std::unexpected(
        UpgradeError{400, "expected /" + endpoint + "/NAMESPACE/POD/[UID/]CONTAINER"});
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
  return o;
}

UpgradeHandler remoteCommandHandler(std::string what, ParseOptions parse, PodExists pod_exists,
                                    ContainerRunning container_running, Protocols protocols,
                                    std::chrono::milliseconds stream_creation_timeout,
                                    RunSession run) {
  std::string title = what;  // "exec" -> "Exec", for the start of a log line
  title[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(title[0])));
  return [what = std::move(what), title = std::move(title), parse = std::move(parse),
          pod_exists = std::move(pod_exists), container_running = std::move(container_running),
          protocols = std::move(protocols), stream_creation_timeout,
          run = std::move(run)](server::Request req, std::shared_ptr<UpgradedConnection> conn) {
    auto opts = parse(req);
    if (!opts) {
      log::v(4, "Bad " + what + " request", {{"path", req.path}, {"err", opts.error().message}});
      return reject(conn, opts.error());
    }
    if (!pod_exists(opts->pod)) {
      return reject(conn, UpgradeError{404, "pod does not exist"});
    }
    if (!container_running(opts->pod, opts->container)) {
      // The kubelet's GetExec/GetAttach error through the streaming
      // server's WriteError: 500 and the message as it is, no newline.
      return reject(conn, UpgradeError{500, "container not found (\"" + opts->container + "\")"},
                    /*newline=*/false);
    }
    opts->stream_creation_timeout = stream_creation_timeout;
    opts->websocket = boost::beast::iequals(conn->request[http::field::upgrade], "websocket");
    auto plan = [o = *opts](const std::string&) { return execChannelPlan(o); };
    log::Fields fields{{"pod", opts->pod.namespace_ + "/" + opts->pod.name},
                       {"container", opts->container}};
    log::v(4, title + " upgrade", [&] {
      auto f = fields;
      f.emplace_back("user", req.user);
      return f;
    }());
    acceptUpgrade(std::move(conn), protocols, plan,
                  [title, fields, opts = std::move(*opts), run](auto negotiated) mutable {
                    if (!negotiated) {
                      fields.emplace_back("err", negotiated.error().message);
                      log::v(2, title + " upgrade failed", fields);
                      return;
                    }
                    run(std::move(negotiated->transport), negotiated->protocol, std::move(opts));
                  });
  };
}

}  // namespace kernelet::agent::streams
