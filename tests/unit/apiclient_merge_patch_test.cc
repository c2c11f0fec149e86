#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include "apiclient/merge_patch.h"

namespace kernelet::apiclient {
namespace {

// Compares JSON by value: member order does not matter, list order does.
void expectJson(const std::string& got, const std::string& want) {
  rapidjson::Document g, w;
  g.Parse(got.c_str());
  w.Parse(want.c_str());
  ASSERT_FALSE(w.HasParseError()) << "bad expectation: " << want;
  EXPECT_TRUE(g == w) << "got:  " << got << "\nwant: " << want;
}

const char* kOld = R"({
  "phase": "Pending",
  "conditions": [
    {"type": "PodReadyToStartContainers", "status": "True", "lastProbeTime": null, "lastTransitionTime": "2025-05-01T10:00:00Z"},
    {"type": "Initialized", "status": "True", "lastProbeTime": null, "lastTransitionTime": "2025-05-01T10:00:00Z"},
    {"type": "Ready", "status": "False", "lastProbeTime": null, "lastTransitionTime": "2025-05-01T10:00:00Z", "reason": "ContainersNotReady"},
    {"type": "ContainersReady", "status": "False", "lastProbeTime": null, "lastTransitionTime": "2025-05-01T10:00:00Z", "reason": "ContainersNotReady"},
    {"type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": "2025-05-01T10:00:00Z"}
  ],
  "podIPs": [{"ip": "10.88.0.5"}],
  "containerStatuses": [{"name": "app", "ready": false, "restartCount": 0, "state": {"waiting": {"reason": "ContainerCreating"}}}]
})";

TEST(MergePatch, OnlyTheChangedConditionWithTheListOrder) {
  std::string now = kOld;
  // Ready becomes True (reason gone), the rest stays.
  std::string ready_old =
      R"({"type": "Ready", "status": "False", "lastProbeTime": null, "lastTransitionTime": "2025-05-01T10:00:00Z", "reason": "ContainersNotReady"})";
  std::string ready_new =
      R"({"type": "Ready", "status": "True", "lastProbeTime": null, "lastTransitionTime": "2025-05-01T10:00:07Z"})";
  now.replace(now.find(ready_old), ready_old.size(), ready_new);
  auto p = twoWayMergePatch(kOld, now, podStatusMergeKeys());
  ASSERT_TRUE(p) << p.error().message();
  expectJson(*p, R"({
    "$setElementOrder/conditions": [{"type": "PodReadyToStartContainers"}, {"type": "Initialized"},
                                    {"type": "Ready"}, {"type": "ContainersReady"}, {"type": "PodScheduled"}],
    "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "2025-05-01T10:00:07Z", "reason": null}]
  })");
}

TEST(MergePatch, ContainerStatusesAreReplacedWhole) {
  std::string now = kOld;
  std::string waiting = R"("state": {"waiting": {"reason": "ContainerCreating"}})";
  now.replace(now.find(waiting), waiting.size(),
              R"("state": {"running": {"startedAt": "2025-05-01T10:00:05Z"}})");
  auto p = twoWayMergePatch(kOld, now, podStatusMergeKeys());
  ASSERT_TRUE(p);
  expectJson(*p, R"({"containerStatuses": [{"name": "app", "ready": false, "restartCount": 0,
                     "state": {"running": {"startedAt": "2025-05-01T10:00:05Z"}}}]})");
}

TEST(MergePatch, NothingChangedIsAnEmptyPatch) {
  auto p = twoWayMergePatch(kOld, kOld, podStatusMergeKeys());
  ASSERT_TRUE(p);
  EXPECT_EQ(*p, "{}");
}

TEST(MergePatch, KeyedListsAddDeleteAndRemovedFieldsBecomeNull) {
  auto p = twoWayMergePatch(
      R"({"phase":"Running","message":"x","podIPs":[{"ip":"10.0.0.1"},{"ip":"fd00::1"}],
          "conditions":[{"type":"A","status":"True"},{"type":"B","status":"True"}]})",
      R"({"phase":"Running","podIPs":[{"ip":"10.0.0.1"},{"ip":"10.0.0.2"}],
          "conditions":[{"type":"A","status":"True"},{"type":"B","status":"True"}]})",
      podStatusMergeKeys());
  ASSERT_TRUE(p);
  expectJson(*p, R"({"message": null,
    "$setElementOrder/podIPs": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}],
    "podIPs": [{"ip": "10.0.0.2"}, {"$patch": "delete", "ip": "fd00::1"}]})");
}

TEST(MergePatch, NodeAddressesGoWholeWithTheReplaceDirective) {
  auto p = twoWayMergePatch(
      R"({"addresses":[{"type":"InternalIP","address":"10.0.0.1"},{"type":"Hostname","address":"n1"}]})",
      R"({"addresses":[{"type":"InternalIP","address":"10.0.0.9"},{"type":"Hostname","address":"n1"}]})",
      MergeKeys{{"conditions", "type"}, {"addresses", kReplaceList}});
  ASSERT_TRUE(p);
  expectJson(*p, R"({"addresses": [{"type":"InternalIP","address":"10.0.0.9"},
                                   {"type":"Hostname","address":"n1"}, {"$patch":"replace"}]})");
  EXPECT_EQ(twoWayMergePatch("[", "{}", {}).error().message(),
            "merge patch `old object`: not a JSON object");
}

// A condition another controller set in the API (a readiness gate's) stays
// as the API has it: kept first, in the API's order, so that the status
// patch neither deletes nor reverts it; a shared one both have is ours.
TEST(KeepForeignConditions, TheApisOwnStayAndThePatchLeavesThemAlone) {
  const std::set<std::string> owned = {"PodScheduled", "Ready", "Initialized", "ContainersReady",
                                       "PodReadyToStartContainers"};
  std::string api = R"({"status": {"conditions": [
    {"type": "example.com/gate", "status": "True"},
    {"type": "Ready", "status": "False"},
    {"type": "DisruptionTarget", "status": "False", "reason": "Theirs"}]}})";
  std::string ours = R"({"phase": "Running", "conditions": [
    {"type": "Ready", "status": "True"},
    {"type": "DisruptionTarget", "status": "True", "reason": "TerminationByKubelet"}]})";
  auto got = keepForeignConditions(api, ours, owned);
  ASSERT_TRUE(got) << got.error().message();
  expectJson(*got, R"({"phase": "Running", "conditions": [
    {"type": "example.com/gate", "status": "True"},
    {"type": "DisruptionTarget", "status": "True", "reason": "TerminationByKubelet"},
    {"type": "Ready", "status": "True"}]})");
  // The patch from the API's status to that one does not touch the gate.
  auto p = twoWayMergePatch(api, "{\"status\":" + *got + "}", podStatusMergeKeys());
  ASSERT_TRUE(p) << p.error().message();
  EXPECT_EQ(p->find("\"$patch\""), std::string::npos) << *p;
  EXPECT_EQ(p->find("\"status\":\"True\",\"type\":\"example.com/gate\""), std::string::npos) << *p;

  // Nothing in the API yet: ours as they are.
  got = keepForeignConditions("{}", ours, owned);
  ASSERT_TRUE(got);
  expectJson(*got, ours);
  // Broken input is an error, not a crash.
  EXPECT_FALSE(keepForeignConditions("{", ours, owned));
  EXPECT_FALSE(keepForeignConditions("{}", "[]", owned));
}

}  // namespace
}  // namespace kernelet::apiclient
