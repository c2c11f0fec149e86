// The agent's ObjectCache and ServiceCache against the test API server: a hundred ConfigMaps
// and a hundred Secrets, each on a watch of its own, and service-account
// tokens, all served by one network thread (the process' thread count does
// not grow with them); destroying the cache with requests in flight returns
// at once and calls nothing afterwards.

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "agent/sources/object_cache.h"
#include "agent/sources/service_cache.h"
#include "apiclient/api_loop.h"
#include "apiclient/base64.h"
#include "apiclient/objects.h"
#include "support/api_server.h"
#include "sys/event_loop.h"

namespace kernelet::agent {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono;

size_t threads() {
  size_t n = 0;
  for (const auto& e : fs::directory_iterator("/proc/self/task")) {
    (void)e;
    n++;
  }
  return n;
}

ObjectRef configMap(int i) {
  return {.kind = ObjectRef::Kind::kConfigMap,
          .namespace_ = "default",
          .name = "cm-" + std::to_string(i)};
}
ObjectRef secret(int i) {
  return {
      .kind = ObjectRef::Kind::kSecret, .namespace_ = "default", .name = "s-" + std::to_string(i)};
}

class ObjectCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = "/tmp/kernelet-objcache-" + std::to_string(::getpid()) + "-" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    auto s = testing::ApiServer::start(dir_, {.bookmark_seconds = 1});
    ASSERT_TRUE(s) << s.error().message();
    server_.emplace(std::move(*s));
    apiclient::ClusterAccess a;
    a.server = server_->url();
    std::ifstream in(server_->caFile());
    std::stringstream ss;
    ss << in.rdbuf();
    a.ca_pem = ss.str();
    a.token = "admin-token";
    auto c = apiclient::ApiClient::create(a, {.qps = 0});
    ASSERT_TRUE(c) << c.error().message();
    client_ = std::move(*c);
    auto loop = EventLoop::create();
    ASSERT_TRUE(loop);
    loop_.emplace(std::move(*loop));
  }
  void TearDown() override {
    server_.reset();
    fs::remove_all(dir_);
  }
  void create(const std::string& plural, const std::string& json) {
    auto made = client_->create("/api/v1/namespaces/default/" + plural, json);
    ASSERT_TRUE(made) << made.error().str();
  }
  // A pod for a token to be bound to; returns its uid.
  std::string createPod(const std::string& name) {
    auto made = client_->create(
        "/api/v1/namespaces/default/pods",
        R"({"apiVersion":"v1","kind":"Pod","metadata":{"name":")" + name +
            R"("},"spec":{"nodeName":"n1","containers":[{"name":"c","image":"busybox"}]}})");
    EXPECT_TRUE(made) << made.error().str();
    auto meta = apiclient::decodeMeta(made ? *made : "{}", "pod");
    return meta ? meta->uid : "";
  }
  // Runs the agent's loop until `done` or the deadline.
  bool runUntil(const std::function<bool()>& done, seconds limit = seconds(60)) {
    auto deadline = steady_clock::now() + limit;
    while (!done() && steady_clock::now() < deadline) {
      auto r = loop_->runOnce(milliseconds(50));
      EXPECT_TRUE(r) << r.error().message();
    }
    return done();
  }

  std::string dir_;
  std::optional<testing::ApiServer> server_;
  std::unique_ptr<apiclient::ApiClient> client_;
  std::optional<EventLoop> loop_;
};

TEST_F(ObjectCacheTest, AHundredConfigMapsSecretsAndTokensOnOneNetworkThread) {
  constexpr int kObjects = 100, kTokens = 10;
  for (int i = 0; i < kObjects; i++) {
    std::string n = std::to_string(i);
    create("configmaps", R"({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"cm-)" + n +
                             R"("},"data":{"k":"v-)" + n + R"("}})");
    create("secrets", R"({"apiVersion":"v1","kind":"Secret","metadata":{"name":"s-)" + n +
                          R"("},"data":{"k":")" + apiclient::base64Encode("secret-" + n) +
                          R"("}})");
  }
  std::vector<TokenRef> tokens;
  for (int i = 0; i < kTokens; i++) {
    std::string name = "p-" + std::to_string(i);
    tokens.push_back({.namespace_ = "default",
                      .service_account = "default",
                      .pod_name = name,
                      .pod_uid = createPod(name)});
  }
  apiclient::ApiLoop net;
  net.start();
  size_t before = threads();
  std::set<ObjectRef> changed_objects;
  std::set<TokenRef> changed_tokens;
  auto cache = ObjectCache::create(*client_, net, *loop_, [&](const PodRefs& changed) {
    changed_objects.insert(changed.objects.begin(), changed.objects.end());
    changed_tokens.insert(changed.tokens.begin(), changed.tokens.end());
  });
  ASSERT_TRUE(cache) << cache.error().message();
  ObjectRef missing{.namespace_ = "default", .name = "not-there"};
  for (int i = 0; i < kObjects; i++) {
    EXPECT_FALSE((*cache)->object(configMap(i)));  // not yet: a watch starts
    EXPECT_FALSE((*cache)->object(secret(i)));
  }
  EXPECT_FALSE((*cache)->object(missing));
  for (const auto& t : tokens) {
    EXPECT_FALSE((*cache)->token(t));
  }
  EXPECT_EQ((*cache)->watches(), static_cast<size_t>(2 * kObjects + 1));
  ASSERT_TRUE(runUntil([&] {
    return changed_objects.size() == 2 * kObjects + 1 && changed_tokens.size() == kTokens;
  })) << changed_objects.size()
      << " objects, " << changed_tokens.size() << " tokens";
  EXPECT_EQ(threads(), before) << "a thread per watch or token?";

  for (int i = 0; i < kObjects; i++) {
    auto cm = (*cache)->object(configMap(i));
    ASSERT_TRUE(cm && cm->found) << i;
    EXPECT_EQ(cm->data["k"], "v-" + std::to_string(i));
    auto s = (*cache)->object(secret(i));
    ASSERT_TRUE(s && s->found) << i;
    EXPECT_EQ(s->data["k"], "secret-" + std::to_string(i));
  }
  auto none = (*cache)->object(missing);
  ASSERT_TRUE(none);
  EXPECT_FALSE(none->found);
  for (const auto& t : tokens) {
    auto got = (*cache)->token(t);
    ASSERT_TRUE(got && *got) << (got ? got->error().message() : "no answer");
    EXPECT_NE(**got, "");
  }

  // A change reaches the loop through the same watch.
  changed_objects.clear();
  ASSERT_TRUE(client_->patch("/api/v1/namespaces/default/configmaps/cm-7",
                             apiclient::PatchType::kMerge, R"({"data":{"k":"new"}})"));
  ASSERT_TRUE(runUntil([&] { return changed_objects.contains(configMap(7)); }));
  EXPECT_EQ((*cache)->object(configMap(7))->data["k"], "new");

  (*cache)->retain({});
  EXPECT_EQ((*cache)->watches(), 0U);
  cache->reset();
  EXPECT_EQ(threads(), before);
}

TEST_F(ObjectCacheTest, DestroyedWithRequestsInFlightItReturnsAtOnceAndCallsNothing) {
  std::string uid = createPod("p");
  apiclient::ApiLoop net;
  net.start();
  std::atomic<int> calls = 0;
  ASSERT_TRUE(server_->control("stall", "seconds=3"));
  {
    auto cache = ObjectCache::create(*client_, net, *loop_, [&](const PodRefs&) { calls++; });
    ASSERT_TRUE(cache);
    for (int i = 0; i < 20; i++) {
      EXPECT_FALSE((*cache)->object(configMap(i)));
    }
    EXPECT_FALSE((*cache)->token(
        {.namespace_ = "default", .service_account = "default", .pod_name = "p", .pod_uid = uid}));
    runUntil([] { return false; }, seconds(1));
    auto t0 = steady_clock::now();
    cache->reset();
    EXPECT_LT(steady_clock::now() - t0, milliseconds(500));
  }
  ASSERT_TRUE(server_->control("stall", "seconds=0"));
  runUntil([] { return false; }, seconds(3));  // past the stalled answers
  EXPECT_EQ(calls, 0);
}

// The Services as the agent's ServiceCache has them from the test API server:
// nothing until the first list, then the "kubernetes" Service a cluster
// starts with, and each Service created (its cluster IP allocated, protocol
// defaulted) or deleted, through the watch.
TEST_F(ObjectCacheTest, ServicesAreListedOnceThenWatched) {
  apiclient::ApiLoop net;
  net.start();
  bool synced = false;
  auto cache = ServiceCache::create(*client_, net, *loop_, [&] { synced = true; });
  ASSERT_TRUE(cache) << cache.error().message();
  ASSERT_TRUE(runUntil([&] { return synced; }));
  auto find = [&](const std::string& ns, const std::string& name) {
    std::optional<apiclient::Service> out;
    for (const auto& s : (*cache)->services().value_or(std::vector<apiclient::Service>{})) {
      if (s.namespace_ == ns && s.name == name) {
        out = s;
      }
    }
    return out;
  };
  auto master = find("default", "kubernetes");
  ASSERT_TRUE(master);
  EXPECT_EQ(master->cluster_ip, "10.96.0.1");
  ASSERT_EQ(master->ports.size(), 1u);
  EXPECT_EQ(master->ports[0].name, "https");
  EXPECT_EQ(master->ports[0].port, 443);
  EXPECT_EQ(master->ports[0].protocol, "TCP");

  auto made = client_->create("/api/v1/namespaces/default/services",
                              R"({"metadata":{"name":"my-svc"},"spec":{"ports":[{"port":8080}]}})");
  ASSERT_TRUE(made) << made.error().str();
  EXPECT_NE(made->find(R"("clusterIP": "10.96.0.2")"), std::string::npos) << *made;
  EXPECT_NE(made->find(R"("protocol": "TCP")"), std::string::npos) << *made;
  ASSERT_TRUE(runUntil([&] { return find("default", "my-svc").has_value(); }));
  EXPECT_EQ(find("default", "my-svc")->cluster_ip, "10.96.0.2");
  create("services", R"({"metadata":{"name":"headless"},"spec":{"clusterIP":"None",
      "ports":[{"port":80}]}})");
  ASSERT_TRUE(runUntil([&] { return find("default", "headless").has_value(); }));
  EXPECT_EQ(find("default", "headless")->cluster_ip, "None");

  // The API server's validation: an address taken, ports missing or unnamed.
  auto taken = client_->create("/api/v1/namespaces/default/services",
                               R"({"metadata":{"name":"dup"},"spec":{"clusterIP":"10.96.0.2",
                                   "ports":[{"port":80}]}})");
  ASSERT_FALSE(taken);
  EXPECT_EQ(taken.error().code, 422);
  EXPECT_NE(taken.error().message.find("provided IP is already allocated"), std::string::npos)
      << taken.error().message;
  auto portless = client_->create("/api/v1/namespaces/default/services",
                                  R"({"metadata":{"name":"np"},"spec":{}})");
  ASSERT_FALSE(portless);
  EXPECT_NE(portless.error().message.find("spec.ports: Required value"), std::string::npos);
  auto unnamed =
      client_->create("/api/v1/namespaces/default/services",
                      R"({"metadata":{"name":"un"},"spec":{"ports":[{"port":80},{"port":81}]}})");
  ASSERT_FALSE(unnamed);
  EXPECT_NE(unnamed.error().message.find("spec.ports[0].name: Required value"), std::string::npos)
      << unnamed.error().message;

  ASSERT_TRUE(client_->remove("/api/v1/namespaces/default/services/my-svc"));
  ASSERT_TRUE(runUntil([&] { return !find("default", "my-svc").has_value(); }));
  cache->reset();
}

}  // namespace
}  // namespace kernelet::agent
