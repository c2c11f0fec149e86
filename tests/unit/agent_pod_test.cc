#include <gtest/gtest.h>

#include "agent/pod.h"

namespace kernelet::agent {
namespace {

const char* kTwoPods = R"(apiVersion: v1
kind: Pod
metadata:
  name: web
  labels: {app: web}
spec:
  restartPolicy: OnFailure
  terminationGracePeriodSeconds: 5
  initContainers:
  - name: setup
    image: fixtures.kernelet.test/busybox:latest
    command: [sh, -c, "echo ready > /work/flag"]
    volumeMounts: [{name: work, mountPath: /work}]
  containers:
  - name: app
    image: fixtures.kernelet.test/busybox:latest
    args: [kt-http, "8080"]
    env:
    - {name: GREETING, value: hi}
    - name: POD_NAME
      valueFrom: {fieldRef: {fieldPath: metadata.name}}
    resources:
      requests: {cpu: 250m, memory: 64Mi}
      limits: {cpu: "1", memory: 128Mi}
    securityContext:
      runAsUser: 1000
      readOnlyRootFilesystem: true
      capabilities: {drop: [ALL]}
      seccompProfile: {type: RuntimeDefault}
    volumeMounts: [{name: work, mountPath: /work, readOnly: true}]
  volumes:
  - {name: work, emptyDir: {medium: Memory, sizeLimit: 16Mi}}
---
{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "json-pod", "namespace": "tools"},
 "spec": {"hostNetwork": true, "containers": [{"name": "c", "image": "busybox"}]}}
)";

TEST(Manifest, YamlAndJsonDocumentsOfOneFile) {
  auto pods = parseManifests(kTwoPods, "/etc/kernelet/manifests/web.yaml");
  ASSERT_TRUE(pods) << pods.error().message();
  ASSERT_EQ(pods->size(), 2u);
  const Pod& web = (*pods)[0].pod;
  EXPECT_EQ(web.name, "web");
  EXPECT_EQ(web.namespace_, "default");
  EXPECT_EQ(web.restart_policy, "OnFailure");
  EXPECT_EQ(web.termination_grace_period_seconds, 5);
  ASSERT_EQ(web.init_containers.size(), 1u);
  const Container& app = web.containers[0];
  EXPECT_EQ(app.args, (std::vector<std::string>{"kt-http", "8080"}));
  EXPECT_EQ(app.env[1].field_path, "metadata.name");
  EXPECT_EQ(app.resources.requests.at("cpu").milliValue(), 250);
  EXPECT_EQ(app.resources.limits.at("memory").value(), 128 << 20);
  EXPECT_EQ(app.security_context.run_as_user, 1000);
  EXPECT_EQ(app.security_context.capabilities_drop, std::vector<std::string>{"ALL"});
  EXPECT_EQ(web.volumes[0].kind, Volume::Kind::kEmptyDir);
  EXPECT_EQ(web.volumes[0].medium, "Memory");
  EXPECT_EQ(podQos({web.init_containers[0].resources, app.resources}), QosClass::kBurstable);
  const Pod& json = (*pods)[1].pod;
  EXPECT_EQ(json.namespace_, "tools");
  EXPECT_TRUE(json.host_network);
  EXPECT_EQ((*pods)[1].line, 34);  // where its document starts
}

void expectError(const std::string& yaml, const std::string& error) {
  auto pods = parseManifests(yaml, "/m/p.yaml");
  ASSERT_FALSE(pods) << yaml;
  EXPECT_EQ(pods.error().message(), "parse manifest `/m/p.yaml`: " + error);
}

TEST(Manifest, ErrorsNameFileLineAndField) {
  expectError("apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec:\n  containers:\n  - name: c\n",
              "line 6: spec.containers[0].image: required");
  expectError("apiVersion: v1\nkind: Pod\nmetadata: {name: Bad_Name}\nspec: {containers: []}\n",
              "line 3: metadata.name: \"Bad_Name\" is not a DNS subdomain");
  expectError("apiVersion: v1\nkind: Deployment\nmetadata: {name: a}\n",
              "line 1: kind: expected apiVersion v1, kind Pod; got v1, Deployment");
  expectError("apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec:\n  containers: []\n",
              "line 5: spec.containers: at least one container is required");
  expectError(
      "apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec:\n  containers:\n"
      "  - {name: c, image: i, resources: {limits: {memory: 1Gx}}}\n",
      "line 6: spec.containers[0].resources.limits.memory: unknown suffix \"Gx\"");
  expectError(
      "apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec:\n  restartPolicy: Sometimes\n"
      "  containers: [{name: c, image: i}]\n",
      "line 5: spec.restartPolicy: must be Always, OnFailure or Never");
  expectError(
      "apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec:\n  containers:\n"
      "  - {name: c, image: i}\n  - {name: c, image: j}\n",
      "line 7: spec.containers[1].name: duplicate container name \"c\"");
  expectError(
      "apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec:\n"
      "  terminationGracePeriodSeconds: soon\n  containers: [{name: c, image: i}]\n",
      "line 5: spec.terminationGracePeriodSeconds: wrong type");
  expectError("apiVersion: v1\nkind: Pod\nmetadata: {name: a\n",
              "line 4: end of map flow not found");
  expectError(
      "apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec:\n  containers:\n"
      "  - {name: c, image: i, resources: {requests: {cpu: 2}, limits: {cpu: 1}}}\n",
      "line 6: spec.containers[0].resources.requests.cpu: must be less than or equal to the cpu "
      "limit");
}

}  // namespace
}  // namespace kernelet::agent
