// /pods from a snapshot: a v1 PodList whose items carry the metadata, the
// spec as the pod's source gave it (or what the snapshot knows), the status.
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include "agent/server/node_endpoints.h"
#include "agent/server/run_endpoint.h"

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

// /run: the command is `cmd` split as Go's strings.Fields, the path's
// parameters name the container; a missing command is refused before the
// agent is asked.
TEST(RunEndpoint, SplitsTheCommandAndPassesTheContainer) {
  using kernelet::agent::server::addRunEndpoint;
  using kernelet::agent::server::Endpoints;
  using kernelet::agent::server::Query;
  using kernelet::agent::server::Request;
  using kernelet::agent::server::Response;
  using kernelet::agent::server::RunRequest;
  using kernelet::agent::server::splitFields;
  EXPECT_EQ(splitFields("  echo \t a  b\n"), (std::vector<std::string>{"echo", "a", "b"}));
  EXPECT_TRUE(splitFields(" \t ").empty());

  std::vector<RunRequest> asked;
  Endpoints endpoints;
  addRunEndpoint(endpoints, [&](RunRequest r, const kernelet::agent::server::Responder& respond) {
    asked.push_back(r);
    respond(Response::text(200, "out"));
  });
  std::vector<Response> answers;
  auto respond = [&](Response r) { answers.push_back(std::move(r)); };
  Request req;
  req.method = "POST";
  req.params = {"ns", "pod", "uid-1", "ctr"};
  req.query = *Query::parse("cmd=ls+-l%20/tmp");
  endpoints.run(req, respond);
  ASSERT_EQ(asked.size(), 1u);
  EXPECT_EQ(asked[0].namespace_, "ns");
  EXPECT_EQ(asked[0].pod, "pod");
  EXPECT_EQ(asked[0].uid, "uid-1");
  EXPECT_EQ(asked[0].container, "ctr");
  EXPECT_EQ(asked[0].argv, (std::vector<std::string>{"ls", "-l", "/tmp"}));
  ASSERT_EQ(answers.size(), 1u);
  EXPECT_EQ(answers[0].status, 200);

  req.params = {"ns", "pod", "ctr"};
  req.query = *Query::parse("cmd=+");
  endpoints.run(req, respond);
  ASSERT_EQ(answers.size(), 2u);
  EXPECT_EQ(answers[1].status, 400);
  EXPECT_EQ(asked.size(), 1u);
}
