// What the test API server does with a node's kubelet, as the real one: real
// kubectl's `logs [-f] [--tail] [--timestamps] [-c] [-p]` and
// `get --raw /api/v1/nodes/N/proxy/...` go through it to a fake kubelet
// (tests/support/fake_kubelet.py) that sees the API server's kubelet client
// certificate; TokenReview and SubjectAccessReview answer by the token file
// and the policy the server was started with.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "apiclient/api_client.h"
#include "support/api_server.h"
#include "support/fake_kubelet.h"
#include "sys/fileio.h"

namespace kernelet::apiclient {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono;

bool haveKubectl() {
  return ::access("/usr/bin/kubectl", X_OK) == 0 || ::access("/usr/local/bin/kubectl", X_OK) == 0;
}

class NodeProxyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!haveKubectl()) {
      if (std::getenv("CI") != nullptr) {
        FAIL() << "kubectl is not installed: CI runs these tests with it";
      }
      GTEST_SKIP() << "kubectl is not installed";
    }
    dir_ = "/tmp/kernelet-nodeproxy-" + std::to_string(::getpid()) + "-" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    testing::ApiServer::Options options;
    options.validate_agent = "admin";  // the reviews admin sends are checked as the agent's
    options.users = {
        {.token = "proxy-token", .name = "proxy-user", .uid = "uid-7", .groups = {"ops"}},
        {.token = "nobody-token", .name = "nobody"}};
    options.policy = {
        {.user = "proxy-user", .verb = "get", .resource = "nodes", .subresource = "proxy"},
        {.group = "ops",
         .verb = "get",
         .resource = "nodes",
         .subresource = "stats",
         .name = "node1"}};
    auto s = testing::ApiServer::start(dir_, options);
    ASSERT_TRUE(s) << s.error().message();
    server_ = std::make_unique<testing::ApiServer>(std::move(*s));
    std::string error;
    int port = kubelet_.start(dir_, server_->caFile(), error);
    ASSERT_NE(port, 0) << error;
    client_ = clientWith("admin-token");
    auto node =
        client_->create("/api/v1/nodes",
                        R"({"apiVersion":"v1","kind":"Node","metadata":{"name":"node1"},"status":{
          "addresses":[{"type":"Hostname","address":"node1"},
                       {"type":"InternalIP","address":"127.0.0.1"}],
          "daemonEndpoints":{"kubeletEndpoint":{"Port":)" +
                            std::to_string(port) + "}}}}");
    ASSERT_TRUE(node) << node.error().str();
    createPod("web", "[{name: app, image: busybox}]", "node1");
    createPod("duo", "[{name: a, image: busybox}, {name: b, image: busybox}]", "node1",
              "  initContainers: [{name: init, image: busybox}]\n");
    createPod("pending", "[{name: app, image: busybox}]", "");
    writeLog("web_app.log", "one\ntwo\nthree\n");
    writeLog("web_app.previous.log", "before the restart\n");
    writeLog("duo_b.log", "from b\n");
  }
  void TearDown() override {
    server_.reset();
    if (!dir_.empty()) {
      fs::remove_all(dir_);
    }
  }

  std::unique_ptr<ApiClient> clientWith(const std::string& token) {
    ClusterAccess a;
    a.server = server_->url();
    a.ca_pem = readFile(server_->caFile()).value_or("");
    a.token = token;
    auto c = ApiClient::create(a);
    EXPECT_TRUE(c);
    return c ? std::move(*c) : nullptr;
  }
  void createPod(const std::string& name, const std::string& containers, const std::string& node,
                 const std::string& extra = "") {
    std::string file = dir_ + "/" + name + ".yaml";
    std::ofstream(file) << "apiVersion: v1\nkind: Pod\nmetadata: {name: " << name << "}\nspec:\n"
                        << (node.empty() ? "" : "  nodeName: " + node + "\n") << extra
                        << "  containers: " << containers << "\n";
    std::string out = kubectl("create --validate=false -f " + file);
    ASSERT_NE(out.find("created"), std::string::npos) << out;
  }
  void writeLog(const std::string& name, const std::string& text, bool append = false) {
    std::ofstream(testing::FakeKubelet::logs(dir_) + "/default_" + name,
                  append ? std::ios::app : std::ios::trunc)
        << text;
  }
  std::string kubectl(const std::string& args) { return server_->kubectl(args); }
  // What the fake kubelet was asked, one JSON line per request.
  std::string kubeletRequests() { return readFile(dir_ + "/kubelet-requests.jsonl").value_or(""); }

  std::string dir_;
  std::unique_ptr<testing::ApiServer> server_;
  testing::FakeKubelet kubelet_;
  std::unique_ptr<ApiClient> client_;
};

TEST_F(NodeProxyTest, KubectlLogsReachesTheKubeletWithTheApiServersClientCertificate) {
  EXPECT_EQ(kubectl("logs web"), "one\ntwo\nthree\n");
  EXPECT_EQ(kubectl("logs web --tail=1"), "three\n");
  EXPECT_EQ(kubectl("logs web --tail=2 --timestamps"),
            "2026-01-02T03:04:05.000000006Z two\n2026-01-02T03:04:05.000000006Z three\n");
  EXPECT_EQ(kubectl("logs web --previous"), "before the restart\n");
  EXPECT_EQ(kubectl("logs duo -c b"), "from b\n");
  EXPECT_EQ(kubectl("logs web --limit-bytes=5"), "one\nt");
  // Not scheduled: an empty log, as the real API server answers.
  EXPECT_EQ(kubectl("logs pending"), "");
  std::string seen = kubeletRequests();
  EXPECT_NE(seen.find(R"("path": "/containerLogs/default/web/app", "query": "tailLines=1")"),
            std::string::npos)
      << seen;
  EXPECT_NE(seen.find(R"("query": "timestamps=true&tailLines=2")"), std::string::npos) << seen;
  EXPECT_NE(seen.find(R"("query": "previous=true")"), std::string::npos) << seen;
  EXPECT_NE(seen.find(R"("path": "/containerLogs/default/duo/b")"), std::string::npos) << seen;
  EXPECT_NE(seen.find(R"("query": "limitBytes=5")"), std::string::npos) << seen;
  EXPECT_NE(seen.find(R"("user": "kube-apiserver-kubelet-client", "groups": ["system:masters"])"),
            std::string::npos)
      << seen;
  EXPECT_EQ(seen.find(R"("user": "")"), std::string::npos) << seen;
}

TEST_F(NodeProxyTest, FollowDeliversLinesAsTheyComeAndEndsWithTheKubelet) {
  std::string cmd = "KUBECONFIG=" + server_->kubeconfig() + " timeout 30 kubectl logs -f web 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  auto line = [&] {
    char buf[256] = {};
    return std::fgets(buf, sizeof buf, p) != nullptr ? std::string(buf) : std::string("<EOF>");
  };
  EXPECT_EQ(line(), "one\n");
  EXPECT_EQ(line(), "two\n");
  EXPECT_EQ(line(), "three\n");
  // Only written now: a proxy that buffered until the end would not pass it on
  // before the kubelet ends the stream (and `timeout` would end kubectl: 124).
  writeLog("web_app.log", "four\n", true);
  EXPECT_EQ(line(), "four\n");
  writeLog("web_app.end", "");
  EXPECT_EQ(line(), "<EOF>");
  int status = ::pclose(p);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "kubectl logs -f: " << status;
}

TEST_F(NodeProxyTest, LogOptionsAreValidatedAndKubeletErrorsPassThroughAsTheRealServerWords) {
  auto raw = [&](const std::string& path) {
    return kubectl("get --raw '/api/v1/namespaces/default/pods/" + path + "'");
  };
  EXPECT_NE(raw("duo/log").find(
                "a container name must be specified for pod duo, choose one of: [a b] or one of "
                "the init containers: [init]"),
            std::string::npos)
      << raw("duo/log");
  EXPECT_NE(raw("web/log?container=nope").find("container nope is not valid for pod web"),
            std::string::npos);
  std::string tail = raw("web/log?tailLines=-1");
  EXPECT_NE(tail.find("PodLogOptions \"web\" is invalid: tailLines: Invalid value: -1: must be "
                      "greater than or equal to 0"),
            std::string::npos)
      << tail;
  std::string limit = raw("web/log?limitBytes=0");
  EXPECT_NE(limit.find("limitBytes: Invalid value: 0: must be greater than 0"), std::string::npos)
      << limit;
  std::string both = raw("web/log?sinceSeconds=5&sinceTime=2026-01-01T00:00:00Z");
  EXPECT_NE(both.find("at most one of `sinceTime` or `sinceSeconds` may be specified"),
            std::string::npos)
      << both;
  std::string since = raw("web/log?sinceSeconds=0");
  EXPECT_NE(since.find("sinceSeconds: Invalid value: 0: must be greater than 0"), std::string::npos)
      << since;
  auto bad_bool = client_->get("/api/v1/namespaces/default/pods/web/log?follow=maybe");
  ASSERT_FALSE(bad_bool);
  EXPECT_EQ(bad_bool.error().code, 400);
  // The kubelet's own answers: a 400 keeps its text, a 404 becomes the real
  // API server's NotFound for pods/log.
  EXPECT_NE(kubectl("logs duo -c a --previous")
                .find("Error from server (BadRequest): previous terminated container \"a\" in "
                      "pod \"duo\" not found"),
            std::string::npos);
  std::string missing = kubectl("logs duo -c a");
  EXPECT_NE(missing.find("Error from server (NotFound): the server could not find the requested "
                         "resource ( pods/log duo)"),
            std::string::npos)
      << missing;
  EXPECT_NE(kubectl("logs ghost").find("pods \"ghost\" not found"), std::string::npos);
}

TEST_F(NodeProxyTest, NodeProxyPassesPathQueryMethodAndBodyAndIsAuthorized) {
  EXPECT_EQ(kubectl("get --raw /api/v1/nodes/node1/proxy/healthz"), "ok");
  std::string echo =
      kubectl("get --raw '/api/v1/nodes/node1/proxy/stats/summary?only_cpu_and_memory=true&x=1'");
  EXPECT_EQ(
      echo,
      R"({"method": "GET", "path": "/stats/summary", "query": "only_cpu_and_memory=true&x=1", "body": ""})");
  auto posted =
      client_->create("/api/v1/nodes/node1/proxy/run/default/web/app?cmd=ls", R"({"some":"body"})");
  ASSERT_TRUE(posted) << posted.error().str();
  EXPECT_EQ(
      *posted,
      R"({"method": "POST", "path": "/run/default/web/app", "query": "cmd=ls", "body": "{\"some\":\"body\"}"})");
  // kubectl sends a chunked body.
  std::ofstream(dir_ + "/body.json") << R"({"from":"kubectl"})";
  EXPECT_EQ(
      kubectl("create --raw /api/v1/nodes/node1/proxy/run/x -f " + dir_ + "/body.json"),
      R"({"method": "POST", "path": "/run/x", "query": "", "body": "{\"from\":\"kubectl\"}"})");
  // By the policy: proxy-user may get nodes/proxy, not create; nobody nothing.
  EXPECT_EQ(kubectl("--token proxy-token get --raw /api/v1/nodes/node1/proxy/healthz"), "ok");
  auto proxy_user = clientWith("proxy-token");
  auto denied = proxy_user->create("/api/v1/nodes/node1/proxy/run/default/web/app", "{}");
  ASSERT_FALSE(denied);
  EXPECT_EQ(denied.error().code, 403);
  EXPECT_NE(
      denied.error().message.find(
          R"(nodes "node1" is forbidden: User "proxy-user" cannot create resource "nodes/proxy" in API group "" at the cluster scope)"),
      std::string::npos)
      << denied.error().message;
  EXPECT_NE(kubectl("--token nobody-token get --raw /api/v1/nodes/node1/proxy/healthz")
                .find("Error from server (Forbidden)"),
            std::string::npos);
  EXPECT_NE(kubectl("--token nobody-token get --raw /api/v1/namespaces/default/pods/web/log")
                .find("cannot get resource \"pods/log\""),
            std::string::npos);
  // The existing read-only user reads logs.
  EXPECT_EQ(kubectl("--token reader-token logs web --tail=1"), "three\n");
  EXPECT_NE(
      kubectl("get --raw /api/v1/nodes/node2/proxy/healthz").find("nodes \"node2\" not found"),
      std::string::npos);
}

TEST_F(NodeProxyTest, TokenReviewsAndSubjectAccessReviewsAnswerByTokensAndPolicy) {
  auto review = [&](const std::string& token) {
    auto r = client_->create("/apis/authentication.k8s.io/v1/tokenreviews",
                             R"({"apiVersion":"authentication.k8s.io/v1","kind":"TokenReview",
                                 "spec":{"token":")" +
                                 token + R"("}})");
    EXPECT_TRUE(r) << r.error().str();
    return r.value_or("");
  };
  EXPECT_NE(review("proxy-token")
                .find(R"("status": {"authenticated": true, "user": {"username": "proxy-user", )"
                      R"("groups": ["ops", "system:authenticated"], "uid": "uid-7"}})"),
            std::string::npos)
      << review("proxy-token");
  EXPECT_NE(review("reader-token").find(R"("username": "reader")"), std::string::npos);
  EXPECT_NE(review("admin-token").find(R"("username": "admin")"), std::string::npos);
  EXPECT_NE(review("made-up").find(R"("authenticated": false)"), std::string::npos);

  auto sar = [&](const std::string& user, const std::string& groups, const std::string& verb,
                 const std::string& sub) {
    auto r = client_->create(
        "/apis/authorization.k8s.io/v1/subjectaccessreviews",
        R"({"apiVersion":"authorization.k8s.io/v1","kind":"SubjectAccessReview","spec":{"user":")" +
            user + R"(","groups":)" + groups + R"(,"resourceAttributes":{"verb":")" + verb +
            R"(","resource":"nodes","subresource":")" + sub + R"(","name":"node1"}}})");
    EXPECT_TRUE(r) << r.error().str();
    return r.value_or("").find(R"("allowed": true)") != std::string::npos;
  };
  EXPECT_TRUE(sar("proxy-user", "[]", "get", "proxy"));
  EXPECT_FALSE(sar("proxy-user", "[]", "create", "proxy"));
  EXPECT_FALSE(sar("nobody", "[]", "get", "proxy"));
  EXPECT_TRUE(sar("someone", R"(["ops"])", "get", "stats"));
  EXPECT_FALSE(sar("someone", R"(["ops"])", "get", "metrics"));
  EXPECT_TRUE(sar("kube-apiserver-kubelet-client", R"(["system:masters"])", "create", "proxy"));
  // What the real API server would refuse, from the agent's user: a 422 and a violation.
  auto misspelt = client_->create(
      "/apis/authorization.k8s.io/v1/subjectaccessreviews",
      R"({"apiVersion":"authorization.k8s.io/v1","kind":"SubjectAccessReview","spec":{
          "user":"u","resourceAttributes":{"verb":"get","resource":"nodes","subResource":"x"}}})");
  ASSERT_FALSE(misspelt);
  EXPECT_EQ(misspelt.error().code, 422);
  EXPECT_NE(misspelt.error().message.find(
                "SubjectAccessReview.spec.resourceAttributes.subResource: unknown field"),
            std::string::npos)
      << misspelt.error().message;
  EXPECT_NE(server_->control("violations", "", false).value_or("").find("subResource"),
            std::string::npos);
  // Every answer is on record for tests that check what a kubelet asked.
  auto reviews = server_->control("reviews", "", false);
  ASSERT_TRUE(reviews);
  EXPECT_NE(reviews->find("SubjectAccessReview"), std::string::npos);
  // Who may ask: the read-only user may not create reviews.
  auto reader = clientWith("reader-token");
  auto refused = reader->create("/apis/authentication.k8s.io/v1/tokenreviews",
                                R"({"kind":"TokenReview","spec":{"token":"admin-token"}})");
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, 403);
}

}  // namespace
}  // namespace kernelet::apiclient
