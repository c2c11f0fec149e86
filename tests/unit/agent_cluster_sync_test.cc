// The agent's side of a cluster (agent/cluster_sync and the parts it owns:
// node heartbeat and lease, the API pod source, the status writer, mirror
// pods, events) against the test API server on loopback, with no pods run:
// what a user sees in the API after each call from the loop.

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>

#include "agent/app/cluster_sync.h"
#include "apiclient/json_fields.h"
#include "apiclient/objects.h"
#include "support/api_server.h"

namespace kernelet::agent {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

// A string at a dotted path of an object ("metadata.annotations.x"), "" when absent.
std::string at(const std::string& json, const std::vector<std::string>& path) {
  auto d = apiclient::parseApiJson(json, "test");
  if (!d) {
    return "";
  }
  const rapidjson::Value* v = &*d;
  for (size_t i = 0; i + 1 < path.size(); i++) {
    if (!v->IsObject() || !v->HasMember(path[i].c_str())) {
      return "";
    }
    v = &(*v)[path[i].c_str()];
  }
  return apiclient::stringField(*v, path.back().c_str());
}

class ClusterSyncTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = "/tmp/kernelet-sync-" + std::to_string(::getpid()) + "-" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    auto s = testing::ApiServer::start(dir_ + "/api", {.bookmark_seconds = 1});
    ASSERT_TRUE(s) << s.error().message();
    server_.emplace(std::move(*s));
    std::ifstream in(server_->caFile());
    std::stringstream ca;
    ca << in.rdbuf();
    access_ = {.server = server_->url(), .ca_pem = ca.str(), .token = "admin-token"};
    auto c = apiclient::ApiClient::create(access_);
    ASSERT_TRUE(c) << c.error().message();
    client_ = std::move(*c);
    auto loop = EventLoop::create();
    ASSERT_TRUE(loop);
    loop_.emplace(std::move(*loop));
    config_.node_name = "node1";
    config_.root_dir = dir_;
    facts_ = {.name = "node1", .ip = "127.0.0.1", .hostname = "node1", .architecture = "amd64"};
  }
  void TearDown() override {
    sync_.reset();
    server_.reset();
    fs::remove_all(dir_);
  }
  void startSync() {
    net_.start();
    auto s = ClusterSync::start(
        config_, access_, *loop_, net_, facts_,
        [this](std::map<std::string, ApiPod> pods) {
          api_pods_ = std::move(pods);
          pod_calls_++;
        },
        [this] {
          if (!pods_when_synced_) {
            pods_when_synced_ = api_pods_.size();
          }
        });
    ASSERT_TRUE(s) << s.error().message();
    sync_ = std::move(*s);
  }
  // Runs the loop until `done` holds; false after 20 s.
  bool until(const std::function<bool()>& done) {
    auto deadline = std::chrono::steady_clock::now() + 20s;
    while (!done()) {
      if (std::chrono::steady_clock::now() > deadline) {
        return false;
      }
      (void)loop_->runOnce(50ms);  // a loop error shows as the condition never holding
    }
    return true;
  }
  // Runs the loop for `d`, whatever happens.
  void runFor(std::chrono::milliseconds d) {
    auto end = std::chrono::steady_clock::now() + d;
    while (std::chrono::steady_clock::now() < end) {
      (void)loop_->runOnce(50ms);  // only the time matters here
    }
  }
  std::string get(const std::string& path) {
    auto r = client_->get(path);
    return r ? *r : "";
  }

  std::string dir_;
  std::optional<testing::ApiServer> server_;
  apiclient::ClusterAccess access_;
  std::unique_ptr<apiclient::ApiClient> client_;
  std::optional<EventLoop> loop_;
  AgentConfig config_;
  NodeFacts facts_;
  apiclient::ApiLoop net_;  // the pod watch's network thread, outlives sync_
  std::unique_ptr<ClusterSync> sync_;
  std::map<std::string, ApiPod> api_pods_;
  int pod_calls_ = 0;
  // How many pods the loop had when it first heard the list was complete.
  std::optional<size_t> pods_when_synced_;
};

const std::string kPods = apiclient::resourcePath("v1", "pods", "default");

TEST_F(ClusterSyncTest, RegistersTheNodeWithItsLeaseAndStartingEvent) {
  startSync();
  std::string node_path = apiclient::resourcePath("v1", "nodes", "", "node1");
  std::string lease_path =
      apiclient::resourcePath("coordination.k8s.io/v1", "leases", "kube-node-lease", "node1");
  ASSERT_TRUE(until([&] { return !get(lease_path).empty(); }));
  std::string node = get(node_path);
  std::string node_uid = at(node, {"metadata", "uid"});
  EXPECT_FALSE(node_uid.empty());
  EXPECT_EQ(at(node, {"metadata", "labels", "kubernetes.io/hostname"}), "node1");
  std::string lease = get(lease_path);
  EXPECT_EQ(at(lease, {"spec", "holderIdentity"}), "node1");
  EXPECT_FALSE(at(lease, {"spec", "renewTime"}).empty());
  ASSERT_TRUE(until([&] {
    auto events = client_->list(apiclient::resourcePath("v1", "events", "default"));
    for (const auto& e : events ? events->items : std::vector<std::string>{}) {
      if (at(e, {"reason"}) == "Starting" && at(e, {"involvedObject", "kind"}) == "Node") {
        return true;
      }
    }
    return false;
  }));
}

TEST_F(ClusterSyncTest, PodsBoundToTheNodeReachTheLoopAndTheirStatusGoesBack) {
  auto other = client_->create(kPods,
                               R"({"apiVersion":"v1","kind":"Pod","metadata":{"name":"elsewhere"},
          "spec":{"nodeName":"node2","containers":[{"name":"c","image":"busybox"}]}})");
  ASSERT_TRUE(other) << other.error().str();
  auto created = client_->create(kPods,
                                 R"({"apiVersion":"v1","kind":"Pod","metadata":{"name":"web"},
          "spec":{"nodeName":"node1","containers":[{"name":"c","image":"busybox"}]}})");
  ASSERT_TRUE(created) << created.error().str();
  std::string uid = at(*created, {"metadata", "uid"});
  startSync();
  ASSERT_TRUE(until([&] { return api_pods_.contains(uid); }));
  EXPECT_EQ(api_pods_.size(), 1u);  // not the pod bound to node2
  EXPECT_EQ(api_pods_[uid].pod.name, "web");
  EXPECT_FALSE(api_pods_[uid].hash.empty());

  sync_->podStatus(uid, "default", "web", R"({"phase":"Running","podIP":"10.88.0.7"})", false);
  std::string pod_path = kPods + "/web";
  ASSERT_TRUE(until([&] { return at(get(pod_path), {"status", "phase"}) == "Running"; }));
  EXPECT_EQ(at(get(pod_path), {"status", "podIP"}), "10.88.0.7");
  // Our own patch comes back as a watch event with only the status changed:
  // the loop does not hear of it again.
  int calls = pod_calls_;
  runFor(1s);
  EXPECT_EQ(pod_calls_, calls);

  bool done = false;
  sync_->finalDelete(uid, "default", "web", [&] { done = true; });
  ASSERT_TRUE(until([&] { return done; }));
  EXPECT_FALSE(client_->get(pod_path));
  ASSERT_TRUE(until([&] { return !api_pods_.contains(uid); }));
}

// A pod that sets a field kernelet refuses still reaches the loop, decoded,
// with the field named for admission to reject it (status and event: the
// lifecycle tests); the pod beside it comes as usual.
TEST_F(ClusterSyncTest, APodWithARefusedFieldReachesTheLoopWithTheFieldNamed) {
  auto refused = client_->create(kPods,
                                 R"({"apiVersion":"v1","kind":"Pod","metadata":{"name":"hooks"},
          "spec":{"nodeName":"node1","containers":[{"name":"c","image":"busybox"},
            {"name":"d","image":"busybox",
             "volumeDevices":[{"name":"disk","devicePath":"/dev/xvda"}]}]}})");
  ASSERT_TRUE(refused) << refused.error().str();
  auto plain = client_->create(kPods,
                               R"({"apiVersion":"v1","kind":"Pod","metadata":{"name":"web",
            "annotations":{"kubernetes.io/config.source":"file"}},
          "spec":{"nodeName":"node1","containers":[{"name":"c","image":"busybox"}]}})");
  ASSERT_TRUE(plain) << plain.error().str();
  std::string refused_uid = at(*refused, {"metadata", "uid"});
  std::string plain_uid = at(*plain, {"metadata", "uid"});
  startSync();
  ASSERT_TRUE(
      until([&] { return api_pods_.contains(refused_uid) && api_pods_.contains(plain_uid); }));
  EXPECT_EQ(api_pods_[refused_uid].pod.refused,
            "spec.containers[1].volumeDevices: not supported by kernelet");
  EXPECT_EQ(api_pods_[plain_uid].pod.refused, "");
  // An API pod that says it came from a manifest is still an API pod.
  EXPECT_EQ(api_pods_[plain_uid].pod.annotations["kubernetes.io/config.source"], "api");
  EXPECT_FALSE(isStaticPod(api_pods_[plain_uid].pod));
}

// The agent stops a previous agent's pods that no source wants only once the
// API's first list is in: the signal comes after that list's pods, and comes
// also when the node has none.
TEST_F(ClusterSyncTest, TheFirstCompleteListIsSignalledAfterItsPods) {
  auto created = client_->create(kPods,
                                 R"({"apiVersion":"v1","kind":"Pod","metadata":{"name":"web"},
          "spec":{"nodeName":"node1","containers":[{"name":"c","image":"busybox"}]}})");
  ASSERT_TRUE(created) << created.error().str();
  startSync();
  ASSERT_TRUE(until([&] { return pods_when_synced_.has_value(); }));
  EXPECT_EQ(pods_when_synced_.value(), 1u);
}

TEST_F(ClusterSyncTest, AnEmptyFirstListIsSignalledToo) {
  startSync();
  ASSERT_TRUE(until([&] { return pods_when_synced_.has_value(); }));
  EXPECT_EQ(pods_when_synced_.value(), 0u);
  EXPECT_EQ(pod_calls_, 0);
}

TEST_F(ClusterSyncTest, StaticPodsGetMirrorPodsOwnedByTheNodeWithTheirStatus) {
  startSync();
  std::string object =
      R"({"apiVersion":"v1","kind":"Pod","metadata":{"name":"static-node1","namespace":"default",
          "uid":"file-uid","annotations":{"kubernetes.io/config.source":"file"}},
          "spec":{"nodeName":"node1","containers":[{"name":"c","image":"busybox"}]}})";
  sync_->setStaticPods(
      {{.namespace_ = "default", .name = "static-node1", .hash = "h1", .object = object}});
  sync_->podStatus("file-uid", "default", "static-node1", R"({"phase":"Running"})", true);
  std::string path = kPods + "/static-node1";
  ASSERT_TRUE(until([&] { return at(get(path), {"status", "phase"}) == "Running"; }));
  std::string mirror = get(path);
  EXPECT_EQ(at(mirror, {"metadata", "annotations", "kubernetes.io/config.mirror"}), "h1");
  EXPECT_NE(at(mirror, {"metadata", "uid"}), "file-uid");
  auto meta = apiclient::decodeMeta(mirror, "mirror");
  ASSERT_TRUE(meta);
  ASSERT_EQ(meta->owner_references.size(), 1u);
  EXPECT_EQ(meta->owner_references[0].kind, "Node");
  EXPECT_EQ(meta->owner_references[0].name, "node1");
  // Mirror pods are not the loop's to run.
  EXPECT_TRUE(api_pods_.empty());

  // Someone deletes the mirror: it comes back, with the status.
  std::string first_uid = meta->uid;
  ASSERT_TRUE(client_->remove(path));
  ASSERT_TRUE(until([&] {
    std::string m = get(path);
    return !m.empty() && at(m, {"metadata", "uid"}) != first_uid &&
           at(m, {"status", "phase"}) == "Running";
  }));
  // The static pod goes: so does its mirror.
  sync_->setStaticPods({});
  ASSERT_TRUE(until([&] { return get(path).empty(); }));
}

}  // namespace
}  // namespace kernelet::agent
