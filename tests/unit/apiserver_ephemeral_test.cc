// The test API server's pods/NAME/ephemeralcontainers subresource, as the real
// one serves it: real `kubectl debug` adds a container through it (a strategic
// merge patch), the pod's watch sees the change, nothing but the ephemeral
// containers changes, existing ones may not be changed or removed, a new one
// is validated as the API validates ephemeral containers.

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "apiclient/api_client.h"
#include "apiclient/json_fields.h"
#include "support/api_server.h"

namespace kernelet::apiclient {
namespace {

namespace fs = std::filesystem;

const char* const kPods = "/api/v1/namespaces/default/pods";
const char* const kWeb = "/api/v1/namespaces/default/pods/web";
const char* const kSub = "/api/v1/namespaces/default/pods/web/ephemeralcontainers";

class EphemeralSubresource : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = "/tmp/kernelet-ephemeral-" + std::to_string(::getpid()) + "-" +
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
    auto pod = client_->create(
        kPods,
        R"({"apiVersion":"v1","kind":"Pod","metadata":{"name":"web","labels":{"app":"web"}},
            "spec":{"nodeName":"node1","automountServiceAccountToken":false,
              "containers":[{"name":"app","image":"busybox:1"}],
              "volumes":[{"name":"data","emptyDir":{}}]}})");
    ASSERT_TRUE(pod) << pod.error().str();
  }
  void TearDown() override {
    server_.reset();
    if (!dir_.empty()) {
      fs::remove_all(dir_);
    }
  }
  rapidjson::Document pod() {
    auto got = client_->get(kWeb);
    EXPECT_TRUE(got) << got.error().str();
    auto d = parseApiJson(got ? *got : "{}", "pod");
    EXPECT_TRUE(d);
    return std::move(*d);
  }
  ApiResult<std::string> add(const std::string& container) {
    return client_->patch(kSub, PatchType::kStrategicMerge,
                          R"({"spec":{"ephemeralContainers":[)" + container + "]}}");
  }
  std::string dir_;
  std::optional<testing::ApiServer> server_;
  std::unique_ptr<ApiClient> client_;
};

TEST_F(EphemeralSubresource, KubectlDebugAddsAContainerTheWatchSees) {
  if (::access("/usr/bin/kubectl", X_OK) != 0 && ::access("/usr/local/bin/kubectl", X_OK) != 0) {
    GTEST_SKIP() << "kubectl is not installed";
  }
  std::string rv = pod()["metadata"]["resourceVersion"].GetString();
  std::string out =
      server_->kubectl("debug web --image=busybox:1 -c dbg --target=app -- sh -c 'ps; echo done'");
  EXPECT_EQ(out.find("rror"), std::string::npos) << out;
  rapidjson::Document p = pod();
  ASSERT_TRUE(p["spec"].HasMember("ephemeralContainers")) << out;
  const auto& e = p["spec"]["ephemeralContainers"][0];
  EXPECT_STREQ(e["name"].GetString(), "dbg");
  EXPECT_STREQ(e["image"].GetString(), "busybox:1");
  EXPECT_STREQ(e["targetContainerName"].GetString(), "app");
  EXPECT_STREQ(e["command"][2].GetString(), "ps; echo done");
  EXPECT_STREQ(e["imagePullPolicy"].GetString(), "IfNotPresent");  // defaulted
  EXPECT_STREQ(p["spec"]["containers"][0]["image"].GetString(), "busybox:1");

  // A watch from before the change delivers it.
  std::string events;
  auto watched = client_->stream(
      std::string(kPods) + "?watch=true&timeoutSeconds=1&resourceVersion=" + rv,
      [&events](std::string_view piece) -> Result<void> {
        events.append(piece);
        return {};
      },
      nullptr, std::chrono::seconds(5));
  ASSERT_TRUE(watched) << watched.error().str();
  EXPECT_NE(events.find(R"("type": "MODIFIED")"), std::string::npos) << events;
  EXPECT_NE(events.find(R"("ephemeralContainers": [{"command")"), std::string::npos) << events;

  // kubectl reads it back through the subresource too.
  EXPECT_NE(
      server_->kubectl("get --raw " + std::string(kSub)).find(R"("targetContainerName": "app")"),
      std::string::npos);
}

TEST_F(EphemeralSubresource, OnlyEphemeralContainersChange) {
  auto r = client_->patch(kSub, PatchType::kStrategicMerge,
                          R"({"metadata":{"labels":{"app":"changed"}},
          "spec":{"containers":[{"name":"app","image":"busybox:2"}],
                  "ephemeralContainers":[{"name":"dbg","image":"busybox:1"}]}})");
  ASSERT_TRUE(r) << r.error().str();
  rapidjson::Document p = pod();
  EXPECT_STREQ(p["metadata"]["labels"]["app"].GetString(), "web");
  EXPECT_STREQ(p["spec"]["containers"][0]["image"].GetString(), "busybox:1");
  EXPECT_STREQ(p["spec"]["ephemeralContainers"][0]["name"].GetString(), "dbg");

  // A second one is added beside the first; a PUT of what was read adds a third.
  ASSERT_TRUE(add(R"({"name":"two","image":"busybox:1"})"));
  auto body = client_->get(kSub);
  ASSERT_TRUE(body);
  auto d = parseApiJson(*body, "pod");
  ASSERT_TRUE(d);
  rapidjson::Value third(rapidjson::kObjectType);
  third.AddMember("name", "three", d->GetAllocator());
  third.AddMember("image", "busybox:1", d->GetAllocator());
  (*d)["spec"]["ephemeralContainers"].PushBack(third, d->GetAllocator());
  auto put = client_->update(kSub, serialize(*d));
  ASSERT_TRUE(put) << put.error().str();
  EXPECT_EQ(pod()["spec"]["ephemeralContainers"].Size(), 3u);
}

TEST_F(EphemeralSubresource, ExistingOnesMayNotBeChangedOrRemoved) {
  ASSERT_TRUE(add(R"({"name":"dbg","image":"busybox:1"})"));
  auto changed = add(R"({"name":"dbg","image":"busybox:2"})");
  ASSERT_FALSE(changed);
  EXPECT_EQ(changed.error().code, 422);
  EXPECT_NE(changed.error().message.find(
                R"(Forbidden: existing ephemeral containers "dbg" may not be changed)"),
            std::string::npos)
      << changed.error().message;

  auto removed = client_->patch(kSub, PatchType::kMerge, R"({"spec":{"ephemeralContainers":[]}})");
  ASSERT_FALSE(removed);
  EXPECT_NE(
      removed.error().message.find(
          R"(spec.ephemeralContainers: Forbidden: existing ephemeral containers "dbg" may not be removed)"),
      std::string::npos)
      << removed.error().message;
  EXPECT_STREQ(pod()["spec"]["ephemeralContainers"][0]["image"].GetString(), "busybox:1");
}

TEST_F(EphemeralSubresource, NewOnesAreValidatedAsTheApiValidatesThem) {
  struct Case {
    const char* container;
    const char* error;
  };
  for (const Case& c : {
           Case{R"({"name":"d","image":"i","ports":[{"containerPort":80}]})",
                "spec.ephemeralContainers[0].ports: Forbidden: cannot be set for an Ephemeral "
                "Container"},
           Case{R"({"name":"d","image":"i","resources":{"limits":{"cpu":"1"}}})",
                "spec.ephemeralContainers[0].resources: Forbidden: cannot be set for an "
                "Ephemeral Container"},
           Case{R"({"name":"d","image":"i","readinessProbe":{"exec":{"command":["x"]}}})",
                "spec.ephemeralContainers[0].readinessProbe: Forbidden"},
           Case{R"({"name":"d","image":"i","volumeMounts":[{"name":"data","mountPath":"/d",
                    "subPath":"x"}]})",
                "spec.ephemeralContainers[0].volumeMounts[0].subPath: Forbidden"},
           Case{R"({"name":"app","image":"i"})",
                R"(spec.ephemeralContainers[0].name: Duplicate value: "app")"},
           Case{R"({"name":"d","image":"i","targetContainerName":"nope"})",
                R"(spec.ephemeralContainers[0].targetContainerName: Not found: "nope")"},
           Case{R"({"name":"d"})", "spec.ephemeralContainers[0].image: Required value"},
       }) {
    auto r = add(c.container);
    ASSERT_FALSE(r) << c.container;
    EXPECT_EQ(r.error().code, 422);
    EXPECT_NE(r.error().message.find(std::string("Pod \"web\" is invalid: ") + c.error),
              std::string::npos)
        << r.error().message;
  }
  // `resources: {}` (what kubectl debug sends) is no resources.
  auto ok = add(R"({"name":"d","image":"i","resources":{}})");
  EXPECT_TRUE(ok) << ok.error().str();
  EXPECT_FALSE(pod()["spec"].HasMember("initContainers"));
}

TEST_F(EphemeralSubresource, APodIsNeverCreatedWithThem) {
  auto r = client_->create(kPods, R"({"apiVersion":"v1","kind":"Pod","metadata":{"name":"x"},
      "spec":{"containers":[{"name":"app","image":"i"}],
              "ephemeralContainers":[{"name":"d","image":"i"}]}})");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, 422);
  EXPECT_NE(
      r.error().message.find(
          R"(Pod "x" is invalid: spec.ephemeralContainers: Forbidden: cannot be set on create)"),
      std::string::npos)
      << r.error().message;
}

}  // namespace
}  // namespace kernelet::apiclient
