// The test API server is good enough when kubectl works against it unchanged;
// and in test mode it refuses what the official schema refuses.

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "apiclient/api_client.h"
#include "apiclient/objects.h"
#include "support/api_server.h"

namespace kernelet::apiclient {
namespace {

namespace fs = std::filesystem;

class KubectlTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::access("/usr/bin/kubectl", X_OK) != 0 && ::access("/usr/local/bin/kubectl", X_OK) != 0) {
      GTEST_SKIP() << "kubectl is not installed";
    }
    dir_ = "/tmp/kernelet-kubectl-" + std::to_string(::getpid()) + "-" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    auto s = testing::ApiServer::start(dir_, {.validate_agent = "admin"});
    ASSERT_TRUE(s) << s.error().message();
    server_.emplace(std::move(*s));
    ClusterAccess a;
    a.server = server_->url();
    std::ifstream ca(server_->caFile());
    std::stringstream ss;
    ss << ca.rdbuf();
    a.ca_pem = ss.str();
    a.token = "admin-token";
    client_ = std::move(*ApiClient::create(a));
  }
  void TearDown() override {
    server_.reset();
    if (!dir_.empty()) {
      fs::remove_all(dir_);
    }
  }
  // kubectl ARGS with the server's kubeconfig; stdout and stderr together.
  std::string kubectl(const std::string& args) { return server_->kubectl(args); }
  std::string dir_;
  std::optional<testing::ApiServer> server_;
  std::unique_ptr<ApiClient> client_;
};

const char* kNode = R"json({"apiVersion":"v1","kind":"Node","metadata":{"name":"node1",
  "labels":{"kubernetes.io/hostname":"node1"}},"status":{
  "conditions":[{"type":"Ready","status":"True","reason":"KubeletReady",
    "message":"kubelet is posting ready status","lastHeartbeatTime":"2026-01-01T00:00:00Z",
    "lastTransitionTime":"2026-01-01T00:00:00Z"}],
  "addresses":[{"type":"InternalIP","address":"10.0.0.5"},{"type":"Hostname","address":"node1"}],
  "nodeInfo":{"machineID":"m","systemUUID":"s","bootID":"b","kernelVersion":"6.1.0",
    "osImage":"Debian GNU/Linux 12 (bookworm)","containerRuntimeVersion":"kernelet://0.1.0",
    "kubeletVersion":"v1.35.0","kubeProxyVersion":"","operatingSystem":"linux",
    "architecture":"amd64"}}})json";

TEST_F(KubectlTest, GetApplyWatchAndDeleteWorkUnchanged) {
  EXPECT_NE(kubectl("get nodes").find("No resources found"), std::string::npos);
  auto node = client_->create("/api/v1/nodes", kNode);
  ASSERT_TRUE(node) << node.error().str();
  std::string nodes = kubectl("get nodes -o wide");
  EXPECT_NE(nodes.find("NAME    STATUS   ROLES    AGE"), std::string::npos) << nodes;
  EXPECT_NE(nodes.find("node1   Ready    <none>"), std::string::npos) << nodes;
  EXPECT_NE(nodes.find("10.0.0.5"), std::string::npos) << nodes;
  EXPECT_NE(nodes.find("kernelet://0.1.0"), std::string::npos) << nodes;

  std::string manifest = dir_ + "/pod.yaml";
  std::ofstream(manifest) << "apiVersion: v1\nkind: Pod\nmetadata: {name: web, labels: {app: "
                             "web}}\nspec:\n  nodeName: node1\n  containers: [{name: app, image: "
                             "busybox}]\n";
  EXPECT_EQ(kubectl("apply -f " + manifest), "pod/web created\n");
  EXPECT_EQ(kubectl("apply -f " + manifest), "pod/web unchanged\n");
  std::ofstream(manifest) << "apiVersion: v1\nkind: Pod\nmetadata: {name: web, labels: {app: "
                             "v2}}\nspec:\n  nodeName: node1\n  containers: [{name: app, image: "
                             "busybox}]\n";
  EXPECT_EQ(kubectl("apply -f " + manifest), "pod/web configured\n");
  EXPECT_EQ(kubectl("get pod web -o jsonpath={.metadata.labels.app}"), "v2");
  std::string wide = kubectl("get pods -A -o wide");
  EXPECT_NE(wide.find("NAMESPACE   NAME   READY   STATUS    RESTARTS   AGE   IP       NODE"),
            std::string::npos)
      << wide;
  EXPECT_NE(wide.find("default     web    0/1     Pending   0"), std::string::npos) << wide;

  // kubectl get pods -w sees the status change.
  std::string watch_out = dir_ + "/watch.out";
  std::thread watcher([&] {
    std::string cmd = "KUBECONFIG=" + server_->kubeconfig() + " timeout 5 kubectl get pods -w > " +
                      watch_out + " 2>&1";
    (void)std::system(cmd.c_str());
  });
  std::this_thread::sleep_for(std::chrono::seconds(2));
  auto running = client_->patch(
      "/api/v1/namespaces/default/pods/web/status", PatchType::kStrategicMerge,
      R"({"status":{"phase":"Running","podIP":"10.88.0.7","containerStatuses":[{"name":"app",
        "ready":true,"restartCount":0,"image":"busybox","imageID":"",
        "state":{"running":{"startedAt":"2026-01-01T00:00:00Z"}}}]}})");
  ASSERT_TRUE(running) << running.error().str();
  watcher.join();
  std::ifstream w(watch_out);
  std::stringstream ws;
  ws << w.rdbuf();
  EXPECT_NE(ws.str().find("web    0/1     Pending"), std::string::npos) << ws.str();
  EXPECT_NE(ws.str().find("web    1/1     Running"), std::string::npos) << ws.str();

  // Graceful deletion: Terminating until the kubelet's final DELETE.
  EXPECT_EQ(kubectl("delete pod web --wait=false"), "pod \"web\" deleted\n");
  EXPECT_NE(kubectl("get pods").find("Terminating"), std::string::npos);
  std::string uid = kubectl("get pod web -o jsonpath={.metadata.uid}");
  ASSERT_TRUE(client_->remove("/api/v1/namespaces/default/pods/web",
                              {.grace_period_seconds = 0, .precondition_uid = uid}));
  EXPECT_NE(kubectl("get pods").find("No resources found"), std::string::npos);
  EXPECT_EQ(server_->control("violations", "", false).value_or(""), "[]");
}

TEST_F(KubectlTest, TheSchemaCheckRefusesWhatTheApiServerWould) {
  // renewTime is a MicroTime string, leaseDurationSeconds an integer.
  auto bad = client_->create(
      "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases",
      R"({"apiVersion":"coordination.k8s.io/v1","kind":"Lease","metadata":{"name":"node1"},
          "spec":{"holderIdentity":"node1","leaseDurationSeconds":"40","renewTime":12,"extra":1}})");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, 422);
  EXPECT_NE(bad.error().message.find("Lease.spec.leaseDurationSeconds: must be an integer"),
            std::string::npos)
      << bad.error().message;
  EXPECT_NE(bad.error().message.find("Lease.spec.renewTime: must be a string"), std::string::npos);
  EXPECT_NE(bad.error().message.find("Lease.spec.extra: unknown field"), std::string::npos);
  auto missing = client_->create(
      "/api/v1/namespaces/default/events",
      R"({"apiVersion":"v1","kind":"Event","metadata":{"name":"e1"},"reason":"Started"})");
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message.find("Event.involvedObject: required"), std::string::npos)
      << missing.error().message;
  EXPECT_NE(server_->control("violations", "", false).value_or("[]"), "[]");
  // What kernelet writes passes.
  timespec now{1767225600, 5000};
  auto lease = client_->create("/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases",
                               encodeNodeLease("node2", "uid-2", 40, formatMicroTime(now)));
  EXPECT_TRUE(lease) << lease.error().str();
  EventSpec ev{.namespace_ = "default",
               .name = "web.1",
               .involved_kind = "Pod",
               .involved_name = "web",
               .involved_namespace = "default",
               .involved_uid = "u",
               .involved_api_version = "v1",
               .reason = "Started",
               .message = "Started container app",
               .host = "node1",
               .first_timestamp = formatTime(now),
               .last_timestamp = formatTime(now)};
  auto event = client_->create("/api/v1/namespaces/default/events", encodeEvent(ev));
  EXPECT_TRUE(event) << event.error().str();
  auto good = client_->create(
      "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases",
      R"({"apiVersion":"coordination.k8s.io/v1","kind":"Lease","metadata":{"name":"node1"},
          "spec":{"holderIdentity":"node1","leaseDurationSeconds":40,
                  "renewTime":"2026-01-01T00:00:00.123456Z"}})");
  EXPECT_TRUE(good) << good.error().str();
}

}  // namespace
}  // namespace kernelet::apiclient
