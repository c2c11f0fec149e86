// The agent's threads do not grow with its pods (run in the test VM): 100
// pods, each naming a ConfigMap and a Secret of its own (and a service-account
// token), mean 200 watches and 100 token renewals, all on the agent's one
// network thread. Prints the agent's thread count at 0, 10 and 100 pods.

#include <chrono>
#include <cstdio>
#include <fstream>
#include <memory>
#include <thread>

#include "apiclient/api_client.h"
#include "apiclient/base64.h"
#include "support/e2e_cluster.h"
#include "support/privileged.h"
#include "sys/fileio.h"

namespace kernelet {
namespace {

using namespace std::chrono;

const std::string kImage = testing::kFixtureImage;
const std::string kNs = "/api/v1/namespaces/default/";

// This build's kernelet, or $KERNELET_UNDER_TEST (to measure another build).
std::string kernelet() {
  const char* other = std::getenv("KERNELET_UNDER_TEST");
  return other != nullptr && *other != '\0' ? other : KERNELET_BINARY;
}

// "Threads:" of /proc/PID/status.
int threadsOf(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.starts_with("Threads:")) {
      return std::stoi(line.substr(8));
    }
  }
  return -1;
}

std::string podJson(int i) {
  std::string n = std::to_string(i);
  return R"({"apiVersion":"v1","kind":"Pod","metadata":{"name":"p-)" + n +
         R"("},"spec":{"nodeName":"node1","terminationGracePeriodSeconds":2,)"
         R"("containers":[{"name":"app","image":")" +
         kImage +
         R"(","imagePullPolicy":"Never","command":["kt-sleep","3600"],)"
         R"("volumeMounts":[{"name":"cm","mountPath":"/cm"},{"name":"s","mountPath":"/s"}]}],)"
         R"("volumes":[{"name":"cm","configMap":{"name":"cm-)" +
         n + R"("}},{"name":"s","secret":{"secretName":"s-)" + n + R"("}}]}})";
}

class ClusterThreads : public ::testing::Test {
 protected:
  void SetUp() override {
    KERNELET_REQUIRE_PRIVILEGED();
    auto c = testing::E2eCluster::start({.name = "threads", .binary = kernelet(), .verbosity = 1});
    ASSERT_TRUE(c) << c.error().message();
    cluster_ = std::move(*c);
    apiclient::ClusterAccess a;
    a.server = cluster_->server().url();
    a.ca_pem = readFile(cluster_->server().caFile()).value_or("");
    a.token = "admin-token";
    auto client = apiclient::ApiClient::create(a, {.qps = 0});
    ASSERT_TRUE(client) << client.error().message();
    client_ = std::move(*client);
  }

  // Pod i with its ConfigMap cm-i and Secret s-i.
  void createPod(int i) {
    std::string n = std::to_string(i);
    for (const auto& [plural, json] :
         {std::pair<std::string, std::string>{
              "configmaps", R"({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"cm-)" + n +
                                R"("},"data":{"k":"v"}})"},
          {"secrets", R"({"apiVersion":"v1","kind":"Secret","metadata":{"name":"s-)" + n +
                          R"("},"data":{"k":")" + apiclient::base64Encode("s") + R"("}})"},
          {"pods", podJson(i)}}) {
      auto made = client_->create(kNs + plural, json);
      ASSERT_TRUE(made) << made.error().str();
    }
  }

  size_t running() {
    auto l = client_->list(kNs + "pods", {.field_selector = "status.phase=Running"});
    return l ? l->items.size() : 0;
  }

  // Waits for `n` pods Running, then lets the agent settle.
  void waitRunning(size_t n, seconds limit) {
    auto deadline = steady_clock::now() + limit;
    while (running() < n && steady_clock::now() < deadline) {
      std::this_thread::sleep_for(seconds(1));
    }
    ASSERT_EQ(running(), n) << cluster_->agentLog();
    std::this_thread::sleep_for(seconds(3));
  }

  std::unique_ptr<testing::E2eCluster> cluster_;
  std::unique_ptr<apiclient::ApiClient> client_;
};

TEST_F(ClusterThreads, TheAgentsThreadsDoNotGrowWithItsPodsConfigMapsAndSecrets) {
  cluster_->startAgent();
  auto deadline = steady_clock::now() + seconds(60);
  while (!client_->get("/api/v1/nodes/node1") && steady_clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(300));
  }
  std::this_thread::sleep_for(seconds(3));
  int at0 = threadsOf(cluster_->agentPid());
  for (int i = 0; i < 10; i++) {
    createPod(i);
  }
  waitRunning(10, seconds(300));
  int at10 = threadsOf(cluster_->agentPid());
  for (int i = 10; i < 100; i++) {
    createPod(i);
  }
  waitRunning(100, seconds(1500));
  int at100 = threadsOf(cluster_->agentPid());
  std::printf(
      "agent threads: %d at 0 pods, %d at 10, %d at 100 (each pod: its own ConfigMap, "
      "Secret and token)\n",
      at0, at10, at100);
  std::fflush(stdout);
  EXPECT_GT(at0, 0);
  EXPECT_EQ(at100, at10) << "the threads grow with the pods";
}

}  // namespace
}  // namespace kernelet
