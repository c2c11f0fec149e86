// The test API server's pods/NAME/resize subresource, as the real one (1.35)
// serves it: real `kubectl patch --subresource resize` changes a container's
// cpu and memory; nothing else changes through it; values the API refuses
// (negative, not a quantity, requests over limits, a removed limit, a QoS
// class change) are 422 Invalid in its words; the main pods update may no
// longer change resources.

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
const char* const kSub = "/api/v1/namespaces/default/pods/web/resize";

class ResizeSubresource : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = "/tmp/kernelet-resize-api-" + std::to_string(::getpid()) + "-" +
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
    auto pod = client_->create(kPods,
                               R"({"apiVersion":"v1","kind":"Pod","metadata":{"name":"web"},
            "spec":{"nodeName":"node1","automountServiceAccountToken":false,
              "containers":[{"name":"app","image":"busybox:1",
                "resizePolicy":[{"resourceName":"memory","restartPolicy":"RestartContainer"}],
                "resources":{"requests":{"cpu":"100m","memory":"32Mi"},
                             "limits":{"cpu":"200m","memory":"64Mi"}}}]}})");
    ASSERT_TRUE(pod) << pod.error().str();
  }
  void TearDown() override {
    server_.reset();
    if (!dir_.empty()) {
      fs::remove_all(dir_);
    }
  }
  std::string limits(const char* resource) {
    auto got = client_->get(kWeb);
    EXPECT_TRUE(got) << got.error().str();
    auto d = parseApiJson(got ? *got : "{}", "pod");
    const auto& l = (*d)["spec"]["containers"][0]["resources"]["limits"];
    return l.HasMember(resource) ? l[resource].GetString() : "";
  }
  // The message of a resize that must fail with 422.
  std::string refused(const std::string& resources) {
    auto r =
        client_->patch(kSub, PatchType::kStrategicMerge,
                       R"({"spec":{"containers":[{"name":"app","resources":)" + resources + "}]}}");
    EXPECT_FALSE(r) << resources;
    if (r) {
      return "(accepted)";
    }
    EXPECT_EQ(r.error().code, 422) << r.error().str();
    return r.error().message;
  }
  std::string dir_;
  std::optional<testing::ApiServer> server_;
  std::unique_ptr<ApiClient> client_;
};

TEST_F(ResizeSubresource, KubectlPatchResizesAContainer) {
  if (::access("/usr/bin/kubectl", X_OK) != 0 && ::access("/usr/local/bin/kubectl", X_OK) != 0) {
    GTEST_SKIP() << "kubectl is not installed";
  }
  std::string out = server_->kubectl(
      "patch pod web --subresource resize --patch "
      "'{\"spec\":{\"containers\":[{\"name\":\"app\",\"resources\":{\"limits\":{\"cpu\":"
      "\"500m\"}}}]}}'");
  EXPECT_NE(out.find("pod/web patched"), std::string::npos) << out;
  EXPECT_EQ(limits("cpu"), "500m");
  EXPECT_EQ(server_->kubectl("get pod web -o jsonpath={.metadata.generation}"), "2");
  out = server_->kubectl(
      "patch pod web --subresource resize --patch "
      "'{\"spec\":{\"containers\":[{\"name\":\"app\",\"resources\":{\"requests\":{\"cpu\":"
      "\"-1\"}}}]}}'");
  EXPECT_NE(out.find("The Pod \"web\" is invalid: spec.containers[0].resources.requests[cpu]: "
                     "Invalid value: \"-1\": must be greater than or equal to 0"),
            std::string::npos)
      << out;
  // The main update may not change resources any more.
  out = server_->kubectl(
      "patch pod web --patch "
      "'{\"spec\":{\"containers\":[{\"name\":\"app\",\"resources\":{\"limits\":{\"cpu\":"
      "\"1\"}}}]}}'");
  EXPECT_NE(out.find("spec: Forbidden: pod updates may not change fields other than"),
            std::string::npos)
      << out;
  EXPECT_EQ(limits("cpu"), "500m");
}

TEST_F(ResizeSubresource, OnlyCpuAndMemoryOfContainersChange) {
  EXPECT_EQ(refused(R"({"limits":{"cpu":"300m"}},"image":"busybox:2")"),
            "Pod \"web\" is invalid: spec: Forbidden: only cpu and memory resources are mutable");
  EXPECT_EQ(refused(R"({"limits":{"ephemeral-storage":"1Gi"}})"),
            "Pod \"web\" is invalid: spec: Forbidden: only cpu and memory resources are mutable");
  // Labels in the same patch are dropped, not applied.
  auto r = client_->patch(kSub, PatchType::kStrategicMerge,
                          R"({"metadata":{"labels":{"x":"y"}},
                              "spec":{"containers":[{"name":"app","resources":
                                {"limits":{"memory":"128Mi"}}}]}})");
  ASSERT_TRUE(r) << r.error().str();
  EXPECT_EQ(limits("memory"), "128Mi");
  EXPECT_EQ(client_->get(kWeb)->find("\"x\""), std::string::npos);
}

TEST_F(ResizeSubresource, BadValuesAreRefusedInTheApisWords) {
  EXPECT_EQ(refused(R"({"limits":{"memory":"-64Mi"}})"),
            "Pod \"web\" is invalid: spec.containers[0].resources.limits[memory]: Invalid value: "
            "\"-64Mi\": must be greater than or equal to 0");
  EXPECT_NE(refused(R"({"limits":{"memory":"lots"}})")
                .find("spec.containers[0].resources.limits[memory]: Invalid value: \"lots\": "
                      "quantities must match the regular expression"),
            std::string::npos);
  EXPECT_EQ(refused(R"({"requests":{"cpu":"1"}})"),
            "Pod \"web\" is invalid: spec.containers[0].resources.requests: Invalid value: "
            "\"1\": must be less than or equal to cpu limit of 200m");
  EXPECT_EQ(refused(R"({"limits":{"cpu":null}})"),
            "Pod \"web\" is invalid: spec.containers[0].resources.limits[cpu]: Forbidden: "
            "resource limit removal is not supported");
  EXPECT_EQ(refused(R"({"requests":{"cpu":"200m","memory":"64Mi"}})"),
            "Pod \"web\" is invalid: spec: Invalid value: \"Burstable\": Pod QOS Class may not "
            "change as a result of resizing");
  EXPECT_EQ(limits("cpu"), "200m");
}

}  // namespace
}  // namespace kernelet::apiclient
