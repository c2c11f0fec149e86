// lifecycle.stopSignal (KEP-4960): decoded and validated as the API does
// (spec.os.name must be set; the os's signals only), the numbers the runtime
// sends, and containerStatuses[].stopSignal in the status JSON. That the
// process gets it is agent_runtime_fields_test in the VM.
#include <gtest/gtest.h>

#include <string>

#include "agent/model/pod.h"
#include "agent/model/stop_signal.h"
#include "agent/status/pod_status.h"

namespace kernelet::agent {
namespace {

// The JSON without whitespace (none of the values here has any).
std::string compact(const std::string& json) {
  std::string out;
  for (char ch : json) {
    if (ch != ' ' && ch != '\n') {
      out += ch;
    }
  }
  return out;
}

Result<std::vector<ManifestPod>> parse(const std::string& os, const std::string& signal,
                                       const std::string& list = "containers") {
  std::string ctr = "[{name: c, image: i, lifecycle: {stopSignal: " + signal + "}}]";
  return parseManifests("apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec:\n" + os +
                            (list == "containers" ? "  containers: " + ctr + "\n"
                                                  : "  initContainers: " + ctr +
                                                        "\n  containers: [{name: d, image: i}]\n"),
                        "/m/p.yaml");
}

TEST(StopSignalDecode, ALinuxPodsContainerKeepsItsSignal) {
  auto pods = parse("  os: {name: linux}\n", "SIGUSR1");
  ASSERT_TRUE(pods) << pods.error().message();
  EXPECT_EQ((*pods)[0].pod.containers[0].lifecycle.stop_signal, "SIGUSR1");
  EXPECT_EQ((*pods)[0].pod.refused, "");
  auto unset = parseManifests(
      "apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec:\n"
      "  containers: [{name: c, image: i, lifecycle: {}}]\n",
      "/m/p.yaml");
  ASSERT_TRUE(unset) << unset.error().message();
  EXPECT_EQ((*unset)[0].pod.containers[0].lifecycle.stop_signal, "");
}

// The API's validateStopSignal, its words, the field's line.
TEST(StopSignalDecode, ErrorsNameTheField) {
  auto no_os = parse("", "SIGUSR1");
  ASSERT_FALSE(no_os);
  EXPECT_EQ(no_os.error().message(),
            "parse manifest `/m/p.yaml`: line 5: spec.containers[0].lifecycle.stopSignal: "
            "Forbidden: may not be set for containers with empty `spec.os.name`");
  auto unknown = parse("  os: {name: linux}\n", "SIGFOO");
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().message().find(
                "parse manifest `/m/p.yaml`: line 6: spec.containers[0].lifecycle.stopSignal: "
                "Unsupported value: \"SIGFOO\": supported values: \"SIGABRT\", \"SIGALRM\", "),
            0u)
      << unknown.error().message();
  EXPECT_TRUE(unknown.error().message().ends_with("\"SIGRTMAX-1\", \"SIGRTMAX\""));
  auto windows = parse("  os: {name: windows}\n", "SIGUSR1");
  ASSERT_FALSE(windows);
  EXPECT_EQ(windows.error().message(),
            "parse manifest `/m/p.yaml`: line 6: spec.containers[0].lifecycle.stopSignal: "
            "Unsupported value: \"SIGUSR1\": supported values: \"SIGKILL\", \"SIGTERM\"");
  auto wrong = parse("  os: {name: linux}\n", "[SIGTERM]");
  ASSERT_FALSE(wrong);
  EXPECT_EQ(wrong.error().message(),
            "parse manifest `/m/p.yaml`: line 6: spec.containers[0].lifecycle.stopSignal: "
            "wrong type");
}

// Only regular containers have it here: an init container's stays refused.
TEST(StopSignalDecode, AnInitContainersIsRefused) {
  auto init = parse("  os: {name: linux}\n", "SIGUSR1", "initContainers");
  ASSERT_FALSE(init);
  EXPECT_NE(init.error().message().find(
                "spec.initContainers[0].lifecycle.stopSignal: not supported by kernelet"),
            std::string::npos)
      << init.error().message();
}

// Real-time signals as moby's table numbers them (SIGRTMIN 34), whatever
// the C library's SIGRTMIN is.
TEST(StopSignalNumbers, NamesAndNumbers) {
  EXPECT_EQ(linuxStopSignal("SIGTERM"), 15);
  EXPECT_EQ(linuxStopSignal("SIGUSR1"), 10);
  EXPECT_EQ(linuxStopSignal("SIGIOT"), 6);
  EXPECT_EQ(linuxStopSignal("SIGRTMIN"), 34);
  EXPECT_EQ(linuxStopSignal("SIGRTMIN+15"), 49);
  EXPECT_EQ(linuxStopSignal("SIGRTMAX-14"), 50);
  EXPECT_EQ(linuxStopSignal("SIGRTMAX"), 64);
  EXPECT_EQ(linuxStopSignal("SIGRTMIN+16"), std::nullopt);
  EXPECT_EQ(linuxStopSignal("TERM"), std::nullopt);
  EXPECT_EQ(linuxStopSignal("15"), std::nullopt);
  EXPECT_EQ(linuxStopSignal(""), std::nullopt);
  EXPECT_EQ(stopSignalName(15), "SIGTERM");
  EXPECT_EQ(stopSignalName(6), "SIGABRT");
  EXPECT_EQ(stopSignalName(17), "SIGCHLD");
  EXPECT_EQ(stopSignalName(37), "SIGRTMIN+3");
  EXPECT_EQ(stopSignalName(63), "SIGRTMAX-1");
}

TEST(StopSignalStatus, TheEffectiveSignalIsInTheContainersStatus) {
  PodStatus s;
  s.container_statuses.push_back({.name = "c", .stop_signal = "SIGUSR1"});
  s.container_statuses.push_back({.name = "d"});
  // Pretty-printed: compared without its layout.
  std::string json = compact(podStatusJson(s));
  EXPECT_NE(json.find("\"stopSignal\":\"SIGUSR1\""), std::string::npos) << json;
  EXPECT_EQ(json.find("\"stopSignal\":\"\""), std::string::npos) << json;
}

}  // namespace
}  // namespace kernelet::agent
