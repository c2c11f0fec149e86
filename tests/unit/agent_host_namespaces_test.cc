// spec.hostPID and spec.hostIPC: decoded and validated as the API does, and
// the container spec they give (the node's PID / IPC namespace is the agent's,
// so the container keeps it instead of joining or making one). The kernel's
// side (a hostPID container sees the node's processes, a hostIPC one its SysV
// segments) is agent_runtime_fields_test in the VM.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <string>

#include "agent/lifecycle/sysctl_allowlist.h"
#include "agent/model/pod.h"
#include "agent/runtime/container_builder.h"

namespace kernelet::agent {
namespace {

namespace fs = std::filesystem;
using isolation::Namespace;

Result<std::vector<ManifestPod>> parse(const std::string& spec) {
  return parseManifests("apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec:\n" + spec +
                            "  containers: [{name: c, image: i, command: [sh]}]\n",
                        "/m/p.yaml");
}

TEST(HostNamespacesDecode, HostPidAndHostIpcDefaultToFalse) {
  auto plain = parse("  hostNetwork: false\n");
  ASSERT_TRUE(plain) << plain.error().message();
  EXPECT_FALSE((*plain)[0].pod.host_pid);
  EXPECT_FALSE((*plain)[0].pod.host_ipc);
  auto host = parse("  hostPID: true\n  hostIPC: true\n");
  ASSERT_TRUE(host) << host.error().message();
  EXPECT_TRUE((*host)[0].pod.host_pid);
  EXPECT_TRUE((*host)[0].pod.host_ipc);
  EXPECT_EQ((*host)[0].pod.refused, "");
}

// The API's validateShareProcessNamespace, and a value of the wrong type.
TEST(HostNamespacesDecode, ErrorsNameTheField) {
  auto both = parse("  hostPID: true\n  shareProcessNamespace: true\n");
  ASSERT_FALSE(both);
  EXPECT_EQ(both.error().message(),
            "parse manifest `/m/p.yaml`: line 6: spec.securityContext.shareProcessNamespace: "
            "Invalid value: true: ShareProcessNamespace and HostPID cannot both be enabled");
  auto wrong = parse("  hostIPC: [yes]\n");
  ASSERT_FALSE(wrong);
  EXPECT_EQ(wrong.error().message(),
            "parse manifest `/m/p.yaml`: line 5: spec.hostIPC: wrong type");
  // Either alone with the other false is fine.
  EXPECT_TRUE(parse("  hostPID: false\n  shareProcessNamespace: true\n"));
}

// The kubelet's sysctl admission: a namespaced sysctl of a namespace the pod
// shares with the node is forbidden.
TEST(HostNamespacesAdmission, IpcSysctlsAreForbiddenWithHostIpc) {
  auto allow = SysctlAllowlist::forNode({"kernel.msgmax"});
  ASSERT_TRUE(allow) << allow.error().message();
  EXPECT_EQ(allow->check("kernel.msgmax", false, false), std::nullopt);
  EXPECT_EQ(allow->check("kernel.msgmax", false, true).value_or(""),
            "\"kernel.msgmax\" not allowed with host ipc enabled");
}

class HostNamespacesSpec : public ::testing::Test {
 protected:
  void SetUp() override {
    rootfs_ = fs::temp_directory_path() / ("kt-hostns-" + std::to_string(::getpid()));
    fs::create_directories(rootfs_ + "/etc");
  }
  void TearDown() override { fs::remove_all(rootfs_); }

  // The namespaces of the container spec of the pod's first container.
  std::vector<isolation::NamespaceRef> namespacesOf(const std::string& spec,
                                                    const std::string& pid_ns = "") {
    auto pods = parse(spec);
    EXPECT_TRUE(pods) << pods.error().message();
    if (!pods) {
      return {};
    }
    pod_ = (*pods)[0].pod;
    PodSandbox sandbox;
    PodVolumes volumes = PodVolumes::adopt({});
    ContainerInput in{.pod = &pod_,
                      .container = &pod_.containers[0],
                      .sandbox = &sandbox,
                      .volumes = &volumes,
                      .rootfs = rootfs_,
                      .pid_ns = pid_ns};
    auto s = buildContainerSpec(in);
    EXPECT_TRUE(s) << s.error().message();
    spec_ = s ? *s : isolation::ContainerSpec{};
    return spec_.namespaces;
  }
  static const isolation::NamespaceRef* find(const std::vector<isolation::NamespaceRef>& all,
                                             Namespace type) {
    auto it = std::find_if(all.begin(), all.end(), [&](const auto& n) { return n.type == type; });
    return it == all.end() ? nullptr : &*it;
  }

  std::string rootfs_;
  Pod pod_;
  isolation::ContainerSpec spec_;
};

TEST_F(HostNamespacesSpec, APodOfItsOwnMakesAPidNamespaceAndJoinsThePodsIpc) {
  auto ns = namespacesOf("  hostNetwork: true\n");
  ASSERT_NE(find(ns, Namespace::kPid), nullptr);
  EXPECT_EQ(find(ns, Namespace::kPid)->path, "");  // a new one
  ASSERT_NE(find(ns, Namespace::kIpc), nullptr);
  EXPECT_TRUE(find(ns, Namespace::kIpc)->path.ends_with("/ipc"));
}

TEST_F(HostNamespacesSpec, HostPidAndHostIpcKeepTheNodesNamespaces) {
  auto pid = namespacesOf("  hostNetwork: true\n  hostPID: true\n");
  EXPECT_EQ(find(pid, Namespace::kPid), nullptr);
  EXPECT_NE(find(pid, Namespace::kIpc), nullptr);
  EXPECT_NE(find(pid, Namespace::kMount), nullptr);  // its own mounts and /proc still
  auto ipc = namespacesOf("  hostNetwork: true\n  hostIPC: true\n");
  EXPECT_EQ(find(ipc, Namespace::kIpc), nullptr);
  EXPECT_NE(find(ipc, Namespace::kPid), nullptr);
  // The node's /dev/shm (POSIX shared memory), not a tmpfs of its own.
  auto shm = std::find_if(spec_.mounts.begin(), spec_.mounts.end(),
                          [](const auto& m) { return m.destination == "/dev/shm"; });
  ASSERT_NE(shm, spec_.mounts.end());
  EXPECT_EQ(shm->type, "bind");
  EXPECT_EQ(shm->source, "/dev/shm");
}

// An ephemeral container's target (or a running container's pid ns) does
// not move a hostPID pod's container out of the node's namespace.
TEST_F(HostNamespacesSpec, HostPidWinsOverATargetsPidNamespace) {
  auto ns = namespacesOf("  hostNetwork: true\n  hostPID: true\n", "/proc/4242/ns/pid");
  EXPECT_EQ(find(ns, Namespace::kPid), nullptr);
  auto own = namespacesOf("  hostNetwork: true\n", "/proc/4242/ns/pid");
  ASSERT_NE(find(own, Namespace::kPid), nullptr);
  EXPECT_EQ(find(own, Namespace::kPid)->path, "/proc/4242/ns/pid");
}

}  // namespace
}  // namespace kernelet::agent
