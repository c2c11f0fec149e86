// agent/events/field_path: the involvedObject.fieldPath of a container's
// Events, as the kubelet's GenerateContainerRef writes it.
#include <gtest/gtest.h>

#include "agent/events/field_path.h"

namespace kernelet::agent {
namespace {

Pod podWithEveryKind() {
  Pod pod;
  pod.name = "web";
  pod.containers.resize(2);
  pod.containers[0].name = "app";
  pod.containers[1].name = "worker";
  pod.init_containers.resize(2);
  pod.init_containers[0].name = "setup";
  pod.init_containers[1].name = "proxy";  // a sidecar is an init container too
  pod.ephemeral_containers.resize(1);
  pod.ephemeral_containers[0].name = "debugger";
  return pod;
}

TEST(EventFieldPath, EachContainerByTheListItIsIn) {
  Pod pod = podWithEveryKind();
  EXPECT_EQ(containerFieldPath(pod, "app"), "spec.containers{app}");
  EXPECT_EQ(containerFieldPath(pod, "worker"), "spec.containers{worker}");
  EXPECT_EQ(containerFieldPath(pod, "setup"), "spec.initContainers{setup}");
  EXPECT_EQ(containerFieldPath(pod, "proxy"), "spec.initContainers{proxy}");
  EXPECT_EQ(containerFieldPath(pod, "debugger"), "spec.ephemeralContainers{debugger}");
}

TEST(EventFieldPath, NoneForThePodItselfOrAnUnknownName) {
  Pod pod = podWithEveryKind();
  EXPECT_EQ(containerFieldPath(pod, ""), "");
  EXPECT_EQ(containerFieldPath(pod, "nope"), "");
  EXPECT_EQ(containerFieldPath(pod, "APP"), "");  // names are case-sensitive
}

}  // namespace
}  // namespace kernelet::agent
