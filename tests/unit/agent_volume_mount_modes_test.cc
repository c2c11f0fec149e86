// volumeMounts[].mountPropagation and recursiveReadOnly: decoded and
// validated as the API does, the OCI options and root propagation the
// container spec gets (containerd's), the source check against mountinfo,
// and containerStatuses[].volumeMounts. The kernel's side is
// agent_runtime_fields_test in the VM.
#include <gtest/gtest.h>
#include <sys/mount.h>

#include <filesystem>
#include <string>

#include "agent/model/pod.h"
#include "agent/runtime/container_builder.h"
#include "agent/runtime/mount_propagation.h"
#include "support/temp_dir.h"
#include "sys/fileio.h"

namespace kernelet::agent {
namespace {

Result<std::vector<ManifestPod>> parse(const std::string& mount, bool privileged = false) {
  return parseManifests(
      "apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec:\n  containers:\n"
      "  - name: c\n    image: i\n    command: [sh]\n" +
          std::string(privileged ? "    securityContext: {privileged: true}\n" : "") +
          "    volumeMounts:\n    - " + mount + "\n  volumes: [{name: v, emptyDir: {}}]\n",
      "/m/p.yaml");
}

std::string error(const std::string& mount, bool privileged = false) {
  auto pods = parse(mount, privileged);
  return pods ? "(parsed)" : pods.error().message();
}

TEST(VolumeMountModesDecode, DefaultsAndValues) {
  auto plain = parse("{name: v, mountPath: /a}");
  ASSERT_TRUE(plain) << plain.error().message();
  const VolumeMount& m = (*plain)[0].pod.containers[0].volume_mounts[0];
  EXPECT_EQ(m.mount_propagation, "None");
  EXPECT_EQ(m.recursive_read_only, "");
  EXPECT_FALSE(m.recursiveReadOnly());
  auto set = parse(
      "{name: v, mountPath: /a, readOnly: true, recursiveReadOnly: IfPossible}\n"
      "    - {name: v, mountPath: /b, mountPropagation: HostToContainer}",
      true);
  ASSERT_TRUE(set) << set.error().message();
  const auto& mounts = (*set)[0].pod.containers[0].volume_mounts;
  EXPECT_TRUE(mounts[0].recursiveReadOnly());
  EXPECT_EQ(mounts[1].mount_propagation, "HostToContainer");
  EXPECT_EQ((*set)[0].pod.refused, "");
  // Bidirectional would not reach the node yet (the root is a slave before
  // pivot_root): refused by name, even where the API allows it.
  EXPECT_EQ(error("{name: v, mountPath: /c, mountPropagation: Bidirectional}", true),
            "parse manifest `/m/p.yaml`: line 11: "
            "spec.containers[0].volumeMounts[0].mountPropagation: not supported by kernelet");
}

// validateMountPropagation and validateMountRecursiveReadOnly, their words.
TEST(VolumeMountModesDecode, ErrorsNameTheField) {
  const std::string at = "parse manifest `/m/p.yaml`: line 10: spec.containers[0].volumeMounts[0].";
  EXPECT_EQ(error("{name: v, mountPath: /a, mountPropagation: Sideways}"),
            at + "mountPropagation: Unsupported value: \"Sideways\": supported values: "
                 "\"Bidirectional\", \"HostToContainer\", \"None\"");
  EXPECT_EQ(error("{name: v, mountPath: /a, mountPropagation: Bidirectional}"),
            at + "mountPropagation: Forbidden: Bidirectional mount propagation is available "
                 "only to privileged containers");
  EXPECT_EQ(error("{name: v, mountPath: /a, recursiveReadOnly: Enabled}"),
            at + "recursiveReadOnly: Forbidden: may only be specified when readOnly is true");
  EXPECT_EQ(error("{name: v, mountPath: /a, readOnly: true, recursiveReadOnly: Enabled, "
                  "mountPropagation: HostToContainer}"),
            at + "recursiveReadOnly: Forbidden: may only be specified when mountPropagation is "
                 "None or not specified");
  EXPECT_EQ(error("{name: v, mountPath: /a, readOnly: true, recursiveReadOnly: Always}"),
            at + "recursiveReadOnly: Unsupported value: \"Always\": supported values: "
                 "\"Disabled\", \"Enabled\", \"IfPossible\"");
  // Disabled is fine on any mount; so is None.
  EXPECT_EQ(error("{name: v, mountPath: /a, recursiveReadOnly: Disabled, mountPropagation: None}"),
            "(parsed)");
}

TEST(MountPropagationIn, TheCoveringMountDecides) {
  const std::string info =
      "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n"
      "30 22 0:40 / /srv rw,relatime - tmpfs tmpfs rw\n"
      "31 30 0:41 / /srv/shared rw shared:7 - tmpfs tmpfs rw\n"
      "32 30 0:42 / /srv/slave rw master:7 - tmpfs tmpfs rw\n"
      "33 30 0:43 / /srv/with\\040space rw shared:9 - tmpfs tmpfs rw\n"
      "34 31 0:44 / /srv/shared rw - tmpfs tmpfs rw\n";
  EXPECT_EQ(mountPropagationIn(info, "/var/lib/x"), "shared");
  EXPECT_EQ(mountPropagationIn(info, "/srv/x"), "private");
  EXPECT_EQ(mountPropagationIn(info, "/srv/slave/a/b"), "slave");
  EXPECT_EQ(mountPropagationIn(info, "/srv/with space/d"), "shared");
  EXPECT_EQ(mountPropagationIn(info, "/srv/sharedx"), "private");  // not under /srv/shared
  // Mounted over: the later line is what the path reaches.
  EXPECT_EQ(mountPropagationIn(info, "/srv/shared/d"), "private");
  EXPECT_EQ(mountPropagationIn("", "/x"), "");
}

// The OCI options each mode gives, and the root's propagation.
class MountModesSpec : public ::testing::Test {
 protected:
  Result<isolation::ContainerSpec> specOf(const std::string& mounts) {
    auto pods = parse(mounts, true);
    if (!pods) {
      return std::unexpected(pods.error());
    }
    pod_ = (*pods)[0].pod;
    std::filesystem::create_directories(dir_.path() + "/rootfs/etc");
    volumes_ = PodVolumes::adopt({.dir = dir_.path(), .paths = {{"v", "/"}}});
    ContainerInput in{.pod = &pod_,
                      .container = &pod_.containers[0],
                      .sandbox = &sandbox_,
                      .volumes = &volumes_,
                      .rootfs = dir_.path() + "/rootfs"};
    return buildContainerSpec(in);
  }
  const isolation::Mount* mountAt(const isolation::ContainerSpec& s, const std::string& dest) {
    for (const auto& m : s.mounts) {
      if (m.destination == dest) {
        return &m;
      }
    }
    return nullptr;
  }

  testing::TempDir dir_;
  Pod pod_;
  PodSandbox sandbox_;
  PodVolumes volumes_;
};

TEST_F(MountModesSpec, OptionsAndRootPropagation) {
  auto none = specOf(
      "{name: v, mountPath: /a, readOnly: true}\n"
      "    - {name: v, mountPath: /b, readOnly: true, recursiveReadOnly: Enabled}");
  ASSERT_TRUE(none) << none.error().message();
  EXPECT_EQ(mountAt(*none, "/a")->options, (std::vector<std::string>{"rbind", "rprivate", "ro"}));
  EXPECT_EQ(mountAt(*none, "/b")->options, (std::vector<std::string>{"rbind", "rprivate", "rro"}));
  EXPECT_EQ(none->rootfs_propagation, 0u);
  // The root of this machine is not necessarily shared: only the specs of
  // mounts whose source passes the check are built here.
  if (mountPropagationIn(readFile("/proc/self/mountinfo").value_or(""), "/") != "shared") {
    GTEST_SKIP() << "/ is not a shared mount here";
  }
  auto h2c = specOf("{name: v, mountPath: /a, mountPropagation: HostToContainer}");
  ASSERT_TRUE(h2c) << h2c.error().message();
  EXPECT_EQ(mountAt(*h2c, "/a")->options, (std::vector<std::string>{"rbind", "rslave", "rw"}));
  EXPECT_EQ(h2c->rootfs_propagation, static_cast<unsigned long>(MS_SLAVE | MS_REC));
}

// containerd's ensureShared / ensureSharedOrSlave, on a source whose mount
// does not propagate: the start fails with the path named.
TEST(MountPropagationSource, APrivateSourceIsRefused) {
  EXPECT_TRUE(checkPropagationSource("/nonexistent-but-None", "None"));
  auto missing = checkPropagationSource("/nonexistent/kernelet", "HostToContainer");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().message(),
            "resolve mount source `/nonexistent/kernelet`: No such file or directory");
  std::string on = mountPropagationIn(readFile("/proc/self/mountinfo").value_or(""), "/proc");
  auto proc = checkPropagationSource("/proc", "Bidirectional");
  EXPECT_EQ(static_cast<bool>(proc), on == "shared");
  if (!proc) {
    EXPECT_EQ(proc.error().message(),
              "ensure mount propagation `/proc`: path \"/proc\" is not on a shared mount "
              "(Bidirectional needs one)");
  }
}

}  // namespace
}  // namespace kernelet::agent
