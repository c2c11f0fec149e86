// The pieces of exec that need no process: the /exec query and its 400s
// (agent/streams/exec_endpoint.h), the error stream's texts
// (exec_status.h) and the resize stream's decoder (terminal_size.h); and
// the handler's answers before an upgrade, on a loopback TLS connection.

#include "agent/streams/exec_endpoint.h"

#include <gtest/gtest.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <cstdlib>
#include <thread>

#include "agent/streams/exec_status.h"
#include "agent/streams/terminal_size.h"
#include "support/temp_dir.h"

namespace kernelet::agent::streams {
namespace {

server::Request execRequest(const std::string& query,
                            std::vector<std::string> params = {"ns", "web", "app"}) {
  auto q = server::Query::parse(query);
  EXPECT_TRUE(q) << query;
  return server::Request{.method = "POST",
                         .path = "/exec/ns/web/app",
                         .params = std::move(params),
                         .query = q ? *q : server::Query{}};
}

TEST(ExecOptions, TheApiServersQuery) {
  auto o =
      execOptions(execRequest("command=sh&command=-c&command=echo+hi&input=1&output=1&error=1"));
  ASSERT_TRUE(o) << o.error().message;
  EXPECT_EQ(o->command, (std::vector<std::string>{"sh", "-c", "echo hi"}));
  EXPECT_TRUE(o->use_stdin);
  EXPECT_TRUE(o->use_stdout);
  EXPECT_TRUE(o->use_stderr);
  EXPECT_FALSE(o->tty);
  EXPECT_EQ(o->pod.namespace_, "ns");
  EXPECT_EQ(o->pod.name, "web");
  EXPECT_EQ(o->pod.uid, "");
  EXPECT_EQ(o->container, "app");
}

TEST(ExecOptions, PodExecOptionsNamesAndTheUidForm) {
  auto o = execOptions(
      execRequest("command=ls&stdout=true&tty=true&stderr=true", {"ns", "web", "uid-1", "app"}));
  ASSERT_TRUE(o) << o.error().message;
  EXPECT_TRUE(o->use_stdout);
  EXPECT_TRUE(o->tty);
  EXPECT_FALSE(o->use_stderr) << "a terminal merges stderr, as the kubelet";
  EXPECT_EQ(o->pod.uid, "uid-1");
  EXPECT_EQ(o->container, "app");
}

TEST(ExecOptions, TheKubeletsBadRequests) {
  auto none = execOptions(execRequest("command=ls"));
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().status, 400);
  EXPECT_EQ(none.error().message, "you must specify at least 1 of stdin, stdout, stderr");

  auto only_stderr_with_tty = execOptions(execRequest("command=ls&error=1&tty=1"));
  ASSERT_FALSE(only_stderr_with_tty);
  EXPECT_EQ(only_stderr_with_tty.error().message,
            "you must specify at least 1 of stdin, stdout, stderr");

  auto no_command = execOptions(execRequest("output=1"));
  ASSERT_FALSE(no_command);
  EXPECT_EQ(no_command.error().status, 400);
  EXPECT_EQ(no_command.error().message, "you must specify at least one command for the container");

  auto bad = execOptions(execRequest("command=ls&output=maybe"));
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().status, 400);
  EXPECT_NE(bad.error().message.find("output"), std::string::npos) << bad.error().message;
}

TEST(ExecChannelPlan, TheKubeletsChannels) {
  RemoteCommandOptions o{.use_stdin = true, .use_stdout = true};
  auto plan = execChannelPlan(o);
  std::vector<std::pair<StreamId, std::string>> got;
  got.reserve(plan.channels.size());
  for (auto& [id, h] : plan.channels) {
    got.emplace_back(id, h.type);
  }
  EXPECT_EQ(got, (std::vector<std::pair<StreamId, std::string>>{
                     {0, "stdin"}, {1, "stdout"}, {3, "error"}, {4, "resize"}}));
  EXPECT_FALSE(plan.port_prefix);
}

TEST(ExecStatus, ProtocolVersions) {
  EXPECT_EQ(remoteCommandVersion("v5.channel.k8s.io"), 5);
  EXPECT_EQ(remoteCommandVersion("v4.channel.k8s.io"), 4);
  EXPECT_EQ(remoteCommandVersion("v4.base64.channel.k8s.io"), 4);
  EXPECT_EQ(remoteCommandVersion("v3.channel.k8s.io"), 3);
  EXPECT_EQ(remoteCommandVersion("v2.channel.k8s.io"), 2);
  EXPECT_EQ(remoteCommandVersion("channel.k8s.io"), 1);
  EXPECT_EQ(remoteCommandVersion("base64.channel.k8s.io"), 1);
  EXPECT_EQ(remoteCommandVersion(""), 1);
}

TEST(ExecStatus, GoJsonStrings) {
  EXPECT_EQ(goJsonString("a<b>&\"\\\n\t\x01"), R"("a\u003cb\u003e\u0026\"\\\n\t\u0001")");
  EXPECT_EQ(goJsonString("caf\xc3\xa9 \xff"), "\"caf\xc3\xa9 \\ufffd\"");
  EXPECT_EQ(goJsonString("\xe2\x80\xa8"), R"("\u2028")");
}

TEST(ExecStatus, ExitCodesBySignalAndTheirStatus) {
  ExecOutcome o{.exit_code = 137, .command = {"sleep", "1"}};
  EXPECT_EQ(errorStreamBytes(4, o),
            R"({"metadata":{},"status":"Failure","message":"command terminated with non-zero )"
            R"(exit code: error executing command [sleep 1], exit code 137","reason":)"
            R"("NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"137"}]}})");
  EXPECT_EQ(errorStreamBytes(2, ExecOutcome{}), "");
}

TEST(ResizeDecoder, MessagesWholeSplitAndMany) {
  ResizeDecoder d;
  auto a = d.feed(R"({"Width":80,"Height":24})"
                  "\n"
                  R"({"Width":1)");
  ASSERT_TRUE(a);
  EXPECT_EQ(*a, (std::vector<TerminalSize>{{80, 24}}));
  auto b = d.feed(R"(20,"Height":40,"Other":{"x":"}"}} {"HEIGHT":5})");
  ASSERT_TRUE(b);
  EXPECT_EQ(*b, (std::vector<TerminalSize>{{120, 40}, {0, 5}}));
}

TEST(ResizeDecoder, BadInputStopsResizing) {
  for (const char* bad :
       {R"({"Width":-1})", R"({"Width":70000})", R"({"Width":"80"})", "[1]", "x"}) {
    ResizeDecoder d;
    EXPECT_FALSE(d.feed(bad)) << bad;
    EXPECT_TRUE(d.failed());
    EXPECT_FALSE(d.feed(R"({"Width":80,"Height":24})")) << "stays failed";
  }
  ResizeDecoder d;
  EXPECT_FALSE(d.feed("{\"Width\":\"" + std::string(5000, 'a')));
}

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

struct Answer {
  int status = 0;
  std::string body;
};

// How the test's request asks for an upgrade.
enum class Ask : uint8_t { kNone, kSpdy, kWebSocket };

// One request through execHandler on a loopback TLS connection, as the node
// server hands it over after routing (`req` is what the router made of it).
Answer handOver(const UpgradeHandler& handler, const server::Request& req,
                const std::string& target, const std::string& cert_dir, Ask ask = Ask::kNone) {
  auto ioc = std::make_shared<net::io_context>();
  net::ssl::context server_tls(net::ssl::context::tls_server);
  server_tls.use_certificate_chain_file(cert_dir + "/c.pem");
  server_tls.use_private_key_file(cert_dir + "/k.pem", net::ssl::context::pem);
  net::ip::tcp::acceptor acceptor(*ioc, {net::ip::make_address("127.0.0.1"), 0});
  Answer answer;
  std::thread client([&, port = acceptor.local_endpoint().port()] {
    net::io_context cio;
    net::ssl::context tls(net::ssl::context::tls_client);
    beast::ssl_stream<beast::tcp_stream> s(cio, tls);
    beast::get_lowest_layer(s).connect({net::ip::make_address("127.0.0.1"), port});
    s.handshake(net::ssl::stream_base::client);
    // As the API server asks: SPDY's upgrade is a POST, WebSocket's a GET.
    http::request<http::string_body> r(ask == Ask::kWebSocket ? http::verb::get : http::verb::post,
                                       target, 11);
    r.set(http::field::host, "node");
    if (ask == Ask::kSpdy) {
      r.set(http::field::connection, "Upgrade");
      r.set(http::field::upgrade, "SPDY/3.1");
      r.set("X-Stream-Protocol-Version", "v4.channel.k8s.io");
    } else if (ask == Ask::kWebSocket) {
      r.set(http::field::connection, "Upgrade");
      r.set(http::field::upgrade, "websocket");
      r.set(http::field::sec_websocket_version, "13");
      r.set(http::field::sec_websocket_key, "dGhlIHNhbXBsZSBub25jZQ==");
      r.set(http::field::sec_websocket_protocol, "v5.channel.k8s.io");
    }
    http::write(s, r);
    beast::flat_buffer b;
    http::response<http::string_body> res;
    beast::error_code ec;
    http::read(s, b, res, ec);
    answer = {static_cast<int>(res.result_int()), res.body()};
  });
  auto conn = std::make_shared<UpgradedConnection>(UpgradedConnection{
      .ioc = ioc, .stream = {acceptor.accept(), server_tls}, .buffer = {}, .request = {}});
  conn->stream.handshake(net::ssl::stream_base::server);
  http::read(conn->stream, conn->buffer, conn->request);
  handler(req, conn);
  conn.reset();
  ioc->run();
  client.join();
  return answer;
}

TEST(ExecHandler, AnswersBeforeAnyUpgradeAsTheKubelet) {
  kernelet::testing::TempDir dir;
  ASSERT_EQ(std::system(("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 "
                         "-nodes -days 1 -subj /CN=node -keyout " +
                         dir.path() + "/k.pem -out " + dir.path() + "/c.pem >/dev/null 2>&1")
                            .c_str()),
            0);
  int starts = 0;
  std::vector<PodRef> asked;
  std::vector<std::string> containers;
  auto handler = execHandler(
      [&](const PodRef& p) {
        asked.push_back(p);
        return p.name == "web";
      },
      [&](const PodRef& p, const std::string& name) {
        EXPECT_EQ(p.name, "web") << "asked only once the pod is known";
        containers.push_back(name);
        return name == "app";
      },
      [&](const ExecRequest&, const ExecHooks&) { starts++; });

  auto no_command =
      handOver(handler, execRequest("output=1"), "/exec/ns/web/app?output=1", dir.path());
  EXPECT_EQ(no_command.status, 400);
  EXPECT_EQ(no_command.body, "you must specify at least one command for the container\n");
  EXPECT_TRUE(asked.empty()) << "the options are checked first, as the kubelet";

  auto no_pod = handOver(handler, execRequest("command=ls&output=1", {"ns", "gone", "app"}),
                         "/exec/ns/gone/app?command=ls&output=1", dir.path());
  EXPECT_EQ(no_pod.status, 404);
  EXPECT_EQ(no_pod.body, "pod does not exist\n");

  // A plain POST where an upgrade belongs: the framing's answer.
  auto plain = handOver(handler, execRequest("command=ls&output=1"),
                        "/exec/ns/web/app?command=ls&output=1", dir.path());
  EXPECT_EQ(plain.status, 400);
  EXPECT_EQ(plain.body, "unable to upgrade: missing upgrade headers in request\n");
  ASSERT_EQ(asked.size(), 2u);
  EXPECT_EQ(asked[1].namespace_, "ns");
  EXPECT_EQ(asked[1].name, "web");
  EXPECT_EQ(containers, std::vector<std::string>{"app"});
  EXPECT_EQ(starts, 0);

  // A container that does not run (not started, exited, or not in the pod):
  // the kubelet's 500 before the upgrade, whichever framing was asked for,
  // its message as kubectl prints it ("unable to upgrade connection: ...").
  for (Ask ask : {Ask::kNone, Ask::kSpdy, Ask::kWebSocket}) {
    SCOPED_TRACE(static_cast<int>(ask));
    auto stopped = handOver(handler, execRequest("command=ls&output=1", {"ns", "web", "done"}),
                            "/exec/ns/web/done?command=ls&output=1", dir.path(), ask);
    EXPECT_EQ(stopped.status, 500);
    EXPECT_EQ(stopped.body, "container not found (\"done\")");
  }
  EXPECT_EQ(containers.back(), "done");
  EXPECT_EQ(starts, 0);
}

}  // namespace
}  // namespace kernelet::agent::streams
