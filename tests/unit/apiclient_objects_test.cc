#include <gtest/gtest.h>

#include "apiclient/objects.h"
#include "sys/json.h"

namespace kernelet::apiclient {
namespace {

// The Lease fields the agent writes, read back.
struct LeaseSpec {
  std::string holder_identity, renew_time;
  int64_t lease_duration_seconds = 0;
};
LeaseSpec leaseSpec(const std::string& lease) {
  auto d = json::parse(lease, "decode", "lease");
  EXPECT_TRUE(d) << d.error().message();
  json::Cursor spec = *json::Cursor(*d, "decode", "lease").object("spec");
  return {*spec.optStr("holderIdentity"), *spec.optStr("renewTime"),
          spec.optInt64("leaseDurationSeconds")->value_or(0)};
}

TEST(ApiTimes, Rfc3339AndMicroTime) {
  timespec t{1767225600, 123456789};  // 2026-01-01T00:00:00.123456789Z
  EXPECT_EQ(formatTime(t), "2026-01-01T00:00:00Z");
  EXPECT_EQ(formatMicroTime(t), "2026-01-01T00:00:00.123456Z");
  EXPECT_EQ(formatMicroTime({1767225600, 0}), "2026-01-01T00:00:00.000000Z");  // six digits always
  struct Case {
    const char* text;
    time_t sec;
    long nsec;
  } ok[] = {{"2026-01-01T00:00:00Z", 1767225600, 0},
            {"2026-01-01T00:00:00.5Z", 1767225600, 500000000},
            {"2026-01-01T00:00:00.123456Z", 1767225600, 123456000},
            {"2026-01-01T00:00:00.123456789Z", 1767225600, 123456789},
            {"2026-01-01T02:00:00+02:00", 1767225600, 0},
            {"2025-12-31T23:30:00-00:30", 1767225600, 0}};
  for (const auto& c : ok) {
    auto r = parseTime(c.text);
    ASSERT_TRUE(r) << c.text;
    EXPECT_EQ(r->tv_sec, c.sec) << c.text;
    EXPECT_EQ(r->tv_nsec, c.nsec) << c.text;
  }
  for (const char* bad : {"", "2026-01-01", "2026-01-01T00:00:00", "2026-01-01 00:00:00Z",
                          "2026-01-01T00:00:00+0200", "2026-01-01T00:00:00Zjunk"}) {
    auto r = parseTime(bad);
    EXPECT_FALSE(r) << bad;
  }
  auto round = parseTime(formatMicroTime(t));
  ASSERT_TRUE(round);
  EXPECT_EQ(round->tv_nsec, 123456000);
}

TEST(ApiObjects, MetadataAndLease) {
  std::string lease = R"({"apiVersion":"coordination.k8s.io/v1","kind":"Lease",
    "metadata":{"name":"node1","namespace":"kube-node-lease","uid":"u","resourceVersion":"42",
      "ownerReferences":[{"apiVersion":"v1","kind":"Node","name":"node1","uid":"n1"}],
      "managedFields":[{"manager":"x"}]},
    "spec":{"holderIdentity":"node1","leaseDurationSeconds":40,
      "renewTime":"2026-01-01T00:00:00.000001Z","leaseTransitions":3}})";
  auto m = decodeMeta(lease, "lease node1");
  ASSERT_TRUE(m) << m.error().message();
  EXPECT_EQ(m->resource_version, "42");
  EXPECT_EQ(m->owner_references.at(0).kind, "Node");
  EXPECT_EQ(leaseSpec(lease).lease_duration_seconds, 40);
  // Renewing edits renewTime and keeps every field it does not know.
  auto renewed = withString(lease, {"spec", "renewTime"}, "2026-01-01T00:00:10.000000Z");
  ASSERT_TRUE(renewed);
  EXPECT_NE(renewed->find("\"leaseTransitions\":3"), std::string::npos);
  EXPECT_NE(renewed->find("\"managedFields\":[{\"manager\":\"x\"}]"), std::string::npos);
  EXPECT_NE(renewed->find("2026-01-01T00:00:10.000000Z"), std::string::npos);
  auto bumped = withInt(*renewed, {"spec", "leaseDurationSeconds"}, 30);
  ASSERT_TRUE(bumped);
  EXPECT_EQ(leaseSpec(*bumped).lease_duration_seconds, 30);
  auto added = withString("{}", {"metadata", "annotations", "a"}, "b");
  ASSERT_TRUE(added);
  EXPECT_EQ(*added, R"({"metadata":{"annotations":{"a":"b"}}})");

  auto bad = decodeMeta(R"({"metadata":{"labels":{"a":1}}})", "pod default/x");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message().find("pod default/x"), std::string::npos);
  EXPECT_NE(bad.error().message().find("labels.a: must be a string"), std::string::npos);
  EXPECT_FALSE(decodeMeta("[1]", "x"));
  EXPECT_FALSE(decodeMeta("{}", "x"));

  std::string fresh = encodeNodeLease("node1", "n1", 40, "2026-01-01T00:00:00.000000Z");
  auto back = decodeMeta(fresh, "new");
  ASSERT_TRUE(back);
  EXPECT_EQ(back->namespace_, "kube-node-lease");
  EXPECT_EQ(back->owner_references.at(0).uid, "n1");
  EXPECT_EQ(leaseSpec(fresh).holder_identity, "node1");
  EXPECT_EQ(leaseSpec(fresh).renew_time, "2026-01-01T00:00:00.000000Z");
  EXPECT_EQ(leaseSpec(fresh).lease_duration_seconds, 40);
}

// An API object nested 100k deep is an error naming it, not a stack overflow.
TEST(ApiObjects, ADeeplyNestedObjectIsAnErrorNotACrash) {
  constexpr size_t kDepth = 100000;
  std::string deep = R"({"metadata":{"name":"x"},"data":)" + std::string(kDepth, '[') +
                     std::string(kDepth, ']') + "}";
  auto meta = decodeMeta(deep, "configmap default/x");
  ASSERT_FALSE(meta);
  EXPECT_EQ(meta.error().message(),
            "decode `configmap default/x`: offset 543: nested deeper than 512 levels");
  EXPECT_FALSE(decodeConfigMapData(deep, "configmap default/x"));
  EXPECT_FALSE(withString(deep, {"metadata", "name"}, "y"));
}

TEST(ApiObjects, ConfigMapAndSecretData) {
  auto cm = decodeConfigMapData(R"({"data":{"a.conf":"x=1"},"binaryData":{"blob":"AAEC"}})",
                                "configmap default/c");
  ASSERT_TRUE(cm);
  EXPECT_EQ(cm->at("a.conf"), "x=1");
  EXPECT_EQ(cm->at("blob"), std::string("\0\1\2", 3));
  auto secret =
      decodeSecretData(R"({"data":{"user":"YWRtaW4=","pw":"cw=="},"stringData":{"pw":"plain"}})",
                       "secret default/s");
  ASSERT_TRUE(secret);
  EXPECT_EQ(secret->at("user"), "admin");
  EXPECT_EQ(secret->at("pw"), "plain");
  auto broken = decodeSecretData(R"({"data":{"user":"%%%"}})", "secret default/s");
  ASSERT_FALSE(broken);
  EXPECT_NE(broken.error().message().find("secret default/s"), std::string::npos);
  EXPECT_NE(broken.error().message().find("data.user: not base64"), std::string::npos);
}

TEST(ApiObjects, ServiceClusterIpAndPorts) {
  auto s = decodeService(R"({"metadata":{"name":"my-svc","namespace":"web"},"spec":{
      "clusterIP":"10.96.0.20","ports":[{"name":"http","port":8080,"targetPort":80},
      {"name":"dns","port":53,"protocol":"UDP"}]}})",
                         "service web/my-svc");
  ASSERT_TRUE(s) << s.error().message();
  EXPECT_EQ(s->namespace_, "web");
  EXPECT_EQ(s->name, "my-svc");
  EXPECT_EQ(s->cluster_ip, "10.96.0.20");
  ASSERT_EQ(s->ports.size(), 2u);
  EXPECT_EQ(s->ports[0].name, "http");
  EXPECT_EQ(s->ports[0].port, 8080);
  EXPECT_EQ(s->ports[0].protocol, "TCP");  // the API's default
  EXPECT_EQ(s->ports[1].protocol, "UDP");
  // Headless, no ports: decoded, and left out later (agent/model/service_env).
  auto headless = decodeService(R"({"metadata":{"name":"h","namespace":"web"},
      "spec":{"clusterIP":"None"}})",
                                "service web/h");
  ASSERT_TRUE(headless);
  EXPECT_EQ(headless->cluster_ip, "None");
  EXPECT_TRUE(headless->ports.empty());
  auto bad = decodeService(R"({"metadata":{"name":"b"},"spec":{"ports":[{"port":"x"}]}})",
                           "service web/b");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message().find("spec.ports[0].port"), std::string::npos)
      << bad.error().message();
  EXPECT_FALSE(decodeService(R"({"metadata":{"name":"b"},"spec":{"ports":{}}})", "s"));
  EXPECT_FALSE(decodeService("[]", "s"));
}

}  // namespace
}  // namespace kernelet::apiclient
