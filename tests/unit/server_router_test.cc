// The node server's router: paths refused in every traversal form, the
// endpoint and parameters found, and the authorization attributes the
// kubelet's (and, for the stream paths, stricter ones).
#include <gtest/gtest.h>

#include "agent/server/router.h"

namespace kernelet::agent::server {
namespace {

int statusOf(std::string_view method, std::string_view target) {
  auto r = route(method, target);
  return r ? 200 : r.error().status;
}

TEST(ServerRouter, TraversalInEveryFormIsRefused) {
  for (const char* t :
       {"/containerLogs/ns/../etc/passwd", "/containerLogs/ns/pod/..", "/containerLogs/ns/./c",
        "/containerLogs/ns/%2e%2e/c", "/containerLogs/ns/%2E%2E/c", "/containerLogs/ns/.%2e/c",
        "/containerLogs/ns/pod%2Fx/c", "/containerLogs/ns/pod%2fx/c", "/containerLogs//pod/c",
        "/containerLogs/ns/pod/c/", "/stats/%00", "/pods%00", "/healthz/%2e", "/../healthz",
        "/exec/ns/pod/%2e%2e/c", "/run/ns/pod/uid/..", "/%zz", "/containerLogs/ns/p%ff/c",
        "relative/path"}) {
    EXPECT_EQ(statusOf("GET", t), 400) << t;
  }
  auto r = route("GET", "/containerLogs/ns/%2e%2e/c");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("\"..\""), std::string::npos) << r.error().message;
  r = route("GET", "/containerLogs/ns/a%2Fb/c");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("'/'"), std::string::npos) << r.error().message;
  r = route("GET", "/containerLogs/ns/a%C0%AF/c");  // an overlong '/'
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("UTF-8"), std::string::npos) << r.error().message;
}

TEST(ServerRouter, NamesAreCheckedAsTheApiServerChecksThem) {
  EXPECT_EQ(statusOf("GET", "/containerLogs/NS/pod/c"), 400);    // not a DNS label
  EXPECT_EQ(statusOf("GET", "/containerLogs/ns/Pod_1/c"), 400);  // not a subdomain
  EXPECT_EQ(statusOf("GET", "/containerLogs/ns/pod/C!"), 400);
  EXPECT_EQ(statusOf("POST", "/run/ns/pod/bad$uid/c"), 400);
  auto r = route("GET", "/containerLogs/kube-system/web.v1/nginx");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->endpoint, Endpoint::kContainerLogs);
  EXPECT_EQ(r->params, (std::vector<std::string>{"kube-system", "web.v1", "nginx"}));
  r = route("POST", "/run/ns/pod/0b1f-uid/c?cmd=ls");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->params, (std::vector<std::string>{"ns", "pod", "0b1f-uid", "c"}));
  EXPECT_EQ(*r->query.get("cmd"), "ls");
  // Too few or too many segments: no such path.
  EXPECT_EQ(statusOf("GET", "/containerLogs/ns/pod"), 404);
  EXPECT_EQ(statusOf("GET", "/containerLogs/ns/pod/uid/c"), 404);
}

TEST(ServerRouter, SubresourcesAndVerbsAreTheKubelets) {
  struct Case {
    const char *method, *target, *verb;
    std::vector<std::string> subresources;
    Endpoint endpoint;
  };
  std::vector<Case> cases = {
      {"GET", "/healthz", "get", {"healthz", "proxy"}, Endpoint::kHealthz},
      {"HEAD", "/healthz", "get", {"healthz", "proxy"}, Endpoint::kHealthz},
      {"GET", "/pods", "get", {"pods", "proxy"}, Endpoint::kPods},
      {"GET", "/configz", "get", {"configz", "proxy"}, Endpoint::kConfigz},
      {"GET", "/stats/summary", "get", {"stats"}, Endpoint::kStatsSummary},
      {"GET", "/stats/other", "get", {"stats"}, Endpoint::kNotFound},
      {"GET", "/metrics", "get", {"metrics"}, Endpoint::kMetrics},
      {"GET", "/metrics/resource", "get", {"metrics"}, Endpoint::kMetricsResource},
      {"GET", "/metrics/cadvisor", "get", {"metrics"}, Endpoint::kMetricsCadvisor},
      {"GET", "/metrics/probes", "get", {"metrics"}, Endpoint::kMetricsProbes},
      {"GET", "/logs/syslog", "get", {"log"}, Endpoint::kNotFound},
      {"GET", "/spec/", "get", {"proxy"}, Endpoint::kNotFound},  // empty segment: see below
      {"GET", "/containerLogs/ns/p/c", "get", {"proxy"}, Endpoint::kContainerLogs},
      {"GET", "/nothing/here", "get", {"proxy"}, Endpoint::kNotFound},
      {"DELETE", "/nothing", "delete", {"proxy"}, Endpoint::kNotFound},
      {"PUT", "/nothing", "update", {"proxy"}, Endpoint::kNotFound},
      {"PATCH", "/nothing", "patch", {"proxy"}, Endpoint::kNotFound},
      // Running something is "create" whatever the method: a WebSocket
      // upgrade is a GET.
      {"GET", "/exec/ns/p/c?command=sh", "create", {"proxy"}, Endpoint::kExec},
      {"POST", "/exec/ns/p/c?command=sh", "create", {"proxy"}, Endpoint::kExec},
      {"GET", "/exec/ns/p/uid-1/c", "create", {"proxy"}, Endpoint::kExec},
      {"GET", "/attach/ns/p/c", "create", {"proxy"}, Endpoint::kAttach},
      {"GET", "/portForward/ns/p?port=80", "create", {"proxy"}, Endpoint::kPortForward},
      {"POST", "/run/ns/p/c?cmd=id", "create", {"proxy"}, Endpoint::kRun},
  };
  for (const auto& c : cases) {
    if (std::string(c.target) == "/spec/") {
      EXPECT_EQ(statusOf(c.method, c.target), 400);
      continue;
    }
    auto r = route(c.method, c.target);
    ASSERT_TRUE(r) << c.method << " " << c.target << ": " << r.error().message;
    EXPECT_EQ(r->access.verb, c.verb) << c.target;
    EXPECT_EQ(r->access.subresources, c.subresources) << c.target;
    EXPECT_EQ(r->endpoint, c.endpoint) << c.target;
  }
  auto spec = route("GET", "/spec/machine");
  ASSERT_TRUE(spec);
  EXPECT_EQ(spec->access.subresources, std::vector<std::string>{"spec"});
}

TEST(ServerRouter, MethodsEachPathTakes) {
  EXPECT_EQ(statusOf("POST", "/healthz"), 405);
  EXPECT_EQ(statusOf("DELETE", "/pods"), 405);
  EXPECT_EQ(statusOf("GET", "/run/ns/p/c"), 405);
  EXPECT_EQ(statusOf("PUT", "/exec/ns/p/c"), 405);
  EXPECT_EQ(statusOf("BREW", "/healthz"), 405);
  EXPECT_EQ(statusOf("OPTIONS", "/healthz"), 405);
}

TEST(ServerRouter, QueriesAreParsedAndBounded) {
  auto r = route("GET", "/containerLogs/ns/p/c?tailLines=-5&limitBytes=99999999999999999999999");
  ASSERT_TRUE(r);
  // The values are the endpoint's to judge; the typed accessor names them.
  auto tail = r->query.integer("tailLines", 0, INT64_MAX);
  ASSERT_FALSE(tail);
  EXPECT_NE(tail.error().message().find("tailLines"), std::string::npos);
  auto limit = r->query.integer("limitBytes", 1, INT64_MAX);
  ASSERT_FALSE(limit);
  EXPECT_NE(limit.error().message().find("limitBytes"), std::string::npos);
  EXPECT_EQ(statusOf("GET", "/healthz?x=%zz"), 400);
  std::string many = "/healthz?";
  for (int i = 0; i < 300; i++) {
    many += "a=1&";
  }
  EXPECT_EQ(statusOf("GET", many), 400);
  r = route("GET", "/healthz?a=1#frag");
  ASSERT_TRUE(r);
  EXPECT_EQ(*r->query.get("a"), "1");
}

TEST(ServerRouter, Utf8Validation) {
  EXPECT_TRUE(isValidUtf8("plain"));
  EXPECT_TRUE(isValidUtf8("h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80"));
  EXPECT_FALSE(isValidUtf8("\xff"));
  EXPECT_FALSE(isValidUtf8("\xc3"));              // cut short
  EXPECT_FALSE(isValidUtf8("\xc0\xaf"));          // overlong
  EXPECT_FALSE(isValidUtf8("\xed\xa0\x80"));      // a surrogate
  EXPECT_FALSE(isValidUtf8("\xf4\x90\x80\x80"));  // past U+10FFFF
}

}  // namespace
}  // namespace kernelet::agent::server
