// /pods from a snapshot: a v1 PodList whose items carry the metadata, the
// spec as the pod's source gave it (or what the snapshot knows), the status.
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include "agent/server/node_endpoints.h"

namespace kernelet::agent::server {
namespace {

TEST(ServerNodeEndpoints, PodListCarriesMetadataSpecAndStatus) {
  NodeSnapshot snap;
  auto a = std::make_shared<PodSnapshot>();
  a->uid = "uid-a";
  a->namespace_ = "default";
  a->name = "web";
  a->created = "2026-11-30T10:00:00Z";
  a->labels = {{"app", "web"}};
  a->containers = {"nginx"};
  a->status.phase = "Running";
  a->source_json = std::make_shared<const std::string>(
      R"({"metadata":{"name":"web"},"spec":{"nodeName":"n1","containers":[{"name":"nginx","image":"nginx:1.27"}]}})");
  auto b = std::make_shared<PodSnapshot>();
  b->uid = "uid-b";
  b->namespace_ = "kube-system";
  b->name = "static-n1";
  b->node_name = "n1";
  b->containers = {"c1", "c2"};
  b->status.phase = "Pending";
  snap.pods = {{a->uid, a}, {b->uid, b}};

  rapidjson::Document d;
  std::string text = podListJson(snap);
  ASSERT_FALSE(d.Parse(text.c_str()).HasParseError()) << text;
  EXPECT_STREQ(d["kind"].GetString(), "PodList");
  EXPECT_STREQ(d["apiVersion"].GetString(), "v1");
  ASSERT_EQ(d["items"].Size(), 2u);
  const auto& web = d["items"][0];
  EXPECT_STREQ(web["metadata"]["name"].GetString(), "web");
  EXPECT_STREQ(web["metadata"]["uid"].GetString(), "uid-a");
  EXPECT_STREQ(web["metadata"]["labels"]["app"].GetString(), "web");
  EXPECT_STREQ(web["spec"]["containers"][0]["image"].GetString(), "nginx:1.27");
  EXPECT_STREQ(web["status"]["phase"].GetString(), "Running");
  const auto& st = d["items"][1];
  EXPECT_STREQ(st["spec"]["nodeName"].GetString(), "n1");
  EXPECT_EQ(st["spec"]["containers"].Size(), 2u);
  EXPECT_STREQ(st["status"]["phase"].GetString(), "Pending");
  // An empty node: an empty list, not null.
  text = podListJson(NodeSnapshot{});
  ASSERT_FALSE(d.Parse(text.c_str()).HasParseError());
  EXPECT_TRUE(d["items"].IsArray());
  EXPECT_EQ(d["items"].Size(), 0u);
}

}  // namespace
}  // namespace kernelet::agent::server
