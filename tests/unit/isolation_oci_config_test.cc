#include <gtest/gtest.h>
#include <sys/mount.h>

#include "isolation/oci_config.h"

namespace kernelet::isolation {
namespace {

// What `crun spec` writes, with terminal off and resources added.
const char* kConfig = R"({
  "ociVersion": "1.0.0",
  "process": {
    "terminal": false,
    "user": {"uid": 1000, "gid": 1000, "additionalGids": [2000]},
    "args": ["sh", "-c", "true"],
    "env": ["PATH=/usr/bin:/bin", "TERM=xterm"],
    "cwd": "/work",
    "capabilities": {"bounding": ["CAP_KILL"], "effective": ["CAP_KILL"], "inheritable": [],
                     "permitted": ["CAP_KILL"], "ambient": ["CAP_KILL"]},
    "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 512}],
    "noNewPrivileges": true,
    "oomScoreAdj": 100
  },
  "root": {"path": "rootfs", "readonly": true},
  "hostname": "box",
  "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"},
             {"destination": "/data", "source": "/srv", "options": ["rbind", "ro"]}],
  "annotations": {"a": "b"},
  "linux": {
    "resources": {
      "devices": [{"allow": false, "access": "rwm"}, {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rw"}],
      "memory": {"limit": 67108864, "reservation": 33554432, "swap": 134217728},
      "cpu": {"shares": 1024, "quota": 50000, "period": 100000},
      "pids": {"limit": 64},
      "unified": {"memory.high": "60000000"}
    },
    "namespaces": [{"type": "pid"}, {"type": "network", "path": "/proc/1/ns/net"}, {"type": "mount"}, {"type": "ipc"}],
    "cgroupsPath": "/box/c1",
    "rootfsPropagation": "rslave",
    "sysctl": {"kernel.shm_rmid_forced": "1"},
    "maskedPaths": ["/proc/kcore"],
    "readonlyPaths": ["/proc/sys"]
  }
})";

TEST(OciConfig, ReadsWhatCrunSpecWrites) {
  auto b = parseOciConfig(kConfig, "/bundles/x");
  ASSERT_TRUE(b) << b.error().message();
  const ContainerSpec& s = b->spec;
  EXPECT_EQ(s.argv, (std::vector<std::string>{"sh", "-c", "true"}));
  EXPECT_EQ(s.cwd, "/work");
  EXPECT_EQ(s.uid, 1000u);
  EXPECT_EQ(s.additional_gids, std::vector<gid_t>{2000});
  EXPECT_EQ(s.rootfs, "/bundles/x/rootfs");
  EXPECT_TRUE(s.readonly_rootfs);
  EXPECT_EQ(s.hostname, "box");
  ASSERT_EQ(s.mounts.size(), 2u);
  EXPECT_EQ(s.mounts[1].options, (std::vector<std::string>{"rbind", "ro"}));
  EXPECT_EQ(s.capabilities.ambient, std::vector<std::string>{"CAP_KILL"});
  ASSERT_EQ(s.rlimits.size(), 1u);
  EXPECT_EQ(s.rlimits[0].soft, 512u);
  EXPECT_TRUE(s.no_new_privileges);
  EXPECT_EQ(s.oom_score_adj, 100);
  ASSERT_EQ(s.namespaces.size(), 4u);
  ASSERT_EQ(s.sysctls.size(), 1u);
  EXPECT_EQ(s.sysctls[0].key, "kernel.shm_rmid_forced");
  EXPECT_EQ(s.namespaces[1].path, "/proc/1/ns/net");
  EXPECT_EQ(s.rootfs_propagation, static_cast<unsigned long>(MS_SLAVE | MS_REC));
  EXPECT_EQ(s.seccomp.kind, SeccompProfile::Kind::kUnconfined);  // none asked: none applied
  EXPECT_EQ(b->cgroups_path, "/box/c1");
  EXPECT_EQ(b->limits.memory_max, 67108864);
  EXPECT_EQ(b->limits.memory_low, 33554432);
  EXPECT_EQ(b->limits.memory_swap_max, 134217728 - 67108864);
  EXPECT_EQ(b->limits.cpu_weight, 100u);
  EXPECT_EQ(b->limits.cpu_max->quota_us, 50000);
  EXPECT_EQ(b->limits.pids_max, 64);
  EXPECT_EQ(b->unified.at("memory.high"), "60000000");
  ASSERT_EQ(b->devices.size(), 2u);
  EXPECT_FALSE(b->devices[0].allow);
  EXPECT_EQ(b->devices[0].type, 'a');
  EXPECT_EQ(b->devices[1].major, 1);
  EXPECT_EQ(b->annotations.at("a"), "b");
}

std::string withReplaced(const std::string& from, const std::string& to) {
  std::string s = kConfig;
  size_t at = s.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  return s.replace(at, from.size(), to);
}

void expectError(const std::string& json, const std::string& message) {
  auto b = parseOciConfig(json, "/bundles/x");
  ASSERT_FALSE(b) << "accepted: " << message;
  EXPECT_EQ(b.error().message(), "config.json `/bundles/x/config.json`: " + message);
}

// process.terminal is accepted (the master goes to --console-socket: see
// oci::create), with the window of process.consoleSize.
TEST(OciConfig, TerminalAndConsoleSize) {
  auto b = parseOciConfig(withReplaced(R"("terminal": false)", R"("terminal": true,
      "consoleSize": {"height": 24, "width": 132})"),
                          "/bundles/x");
  ASSERT_TRUE(b) << b.error().message();
  EXPECT_TRUE(b->spec.terminal);
  ASSERT_TRUE(b->spec.console_size);
  EXPECT_EQ(b->spec.console_size->rows, 24u);
  EXPECT_EQ(b->spec.console_size->cols, 132u);
  auto plain = parseOciConfig(kConfig, "/bundles/x");
  ASSERT_TRUE(plain) << plain.error().message();
  EXPECT_FALSE(plain->spec.terminal);
  EXPECT_FALSE(plain->spec.console_size);
}

TEST(OciConfig, UnsupportedFieldsAreNamedNeverIgnored) {
  expectError(withReplaced(R"("cgroupsPath")", R"("intelRdt": {}, "cgroupsPath")"),
              "linux.intelRdt: not supported by kernelet");
  expectError(withReplaced(R"("pids": {"limit": 64},)", R"("pids": {"limit": 64}, "blockIO": {},)"),
              "linux.resources.blockIO: not supported by kernelet");
  expectError(withReplaced(R"("terminal": false)",
                           R"("terminal": false, "consoleSize": {"height": 24, "width": 80})"),
              "process.consoleSize: given without \"terminal\": true");
  expectError(withReplaced(R"("terminal": false)",
                           R"("terminal": true, "consoleSize": {"height": 70000, "width": 80})"),
              "process.consoleSize.height: out of range");
  expectError(
      withReplaced(R"("annotations")", R"("hooks": {"prestart": [{"path": "/x"}]}, "annotations")"),
      "hooks: not supported by kernelet");
  expectError(withReplaced(R"({"type": "pid"})", R"({"type": "time"})"),
              "linux.namespaces[0].type: unsupported namespace type \"time\"");
  expectError(withReplaced(R"("memory": {"limit")", R"("memory": {"kernel": 1, "limit")"),
              "linux.resources.memory.kernel: not supported by kernelet");
}

TEST(OciConfig, BrokenInputIsAClearError) {
  expectError("{\"ociVersion\": ", "offset 15: Invalid value.");
  expectError(withReplaced(R"("ociVersion": "1.0.0")", R"("ociVersion": "2.0")"),
              "ociVersion: unsupported version \"2.0\"");
  expectError(withReplaced(R"("args": ["sh", "-c", "true"])", R"("args": [])"),
              "process.args: missing or empty");
  expectError(withReplaced(R"("uid": 1000)", R"("uid": "root")"),
              "process.user.uid: must be an integer");
}

TEST(OciConfig, WrongTypesAreErrorsNamingTheField) {
  expectError("[1]", "must be an object");
  expectError(withReplaced(R"("additionalGids": [2000])", R"("additionalGids": ["wheel"])"),
              "process.user.additionalGids[0]: must be an integer");
  expectError(withReplaced(R"("additionalGids": [2000])", R"("additionalGids": [-1])"),
              "process.user.additionalGids[0]: must not be negative");
  expectError(withReplaced(R"("rlimits": [{)", R"("rlimits": [7, {)"),
              "process.rlimits[0]: must be an object");
  expectError(withReplaced(R"("mounts": [)", R"("mounts": [1, )"), "mounts[0]: must be an object");
  expectError(withReplaced(R"("hostname": "box",)", R"("hostname": "box", "mounts": 5,)"),
              "mounts: must be an array");
  expectError(withReplaced(R"("namespaces": [{"type": "pid"})", R"("namespaces": [{"type": 1})"),
              "linux.namespaces[0].type: must be a string");
  expectError(withReplaced(R"("annotations": {"a": "b"})", R"("annotations": {"a": 1})"),
              "annotations.a: must be a string");
  expectError(withReplaced(R"("noNewPrivileges": true)", R"("noNewPrivileges": "yes")"),
              "process.noNewPrivileges: must be true or false");
  expectError(withReplaced(R"("devices": [{"allow": false)", R"("devices": [{"allow": 0)"),
              "linux.resources.devices[0].allow: must be true or false");
  expectError(withReplaced(R"("sysctl": {"kernel.shm_rmid_forced": "1"})",
                           R"("sysctl": {"kernel.shm_rmid_forced": 1})"),
              "linux.sysctl.kernel.shm_rmid_forced: must be a string");
  expectError(
      withReplaced(R"("root": {"path": "rootfs", "readonly": true})", R"("root": "rootfs")"),
      "root: must be an object");
  std::string deep =
      withReplaced(R"("cgroupsPath": "/box/c1",)",
                   R"("seccomp": )" + std::string(100000, '[') + std::string(100000, ']') + ",");
  auto b = parseOciConfig(deep, "/bundles/x");
  ASSERT_FALSE(b);
  EXPECT_NE(b.error().message().find("nested deeper than"), std::string::npos);
}

TEST(OciConfig, OnlyNamespacedSysctlsAreAccepted) {
  auto config = [](const std::string& sysctl, const std::string& namespaces) {
    std::string s = withReplaced(R"("sysctl": {"kernel.shm_rmid_forced": "1"})",
                                 R"("sysctl": {")" + sysctl + R"(": "1"})");
    std::string from =
        R"("namespaces": [{"type": "pid"}, {"type": "network", "path": "/proc/1/ns/net"}, {"type": "mount"}, {"type": "ipc"}])";
    return s.replace(s.find(from), from.size(), R"("namespaces": [)" + namespaces + "]");
  };
  const std::string all = R"({"type": "network"}, {"type": "uts"}, {"type": "ipc"})";
  for (const char* ok : {"net.ipv4.ip_forward", "kernel.msgmax", "kernel.shm_rmid_forced",
                         "fs.mqueue.msg_max", "kernel.domainname", "kernel.hostname"}) {
    auto b = parseOciConfig(config(ok, all), "/bundles/x");
    EXPECT_TRUE(b) << ok << ": " << b.error().message();
  }
  expectError(config("kernel.core_pattern", all),
              "linux.sysctl.kernel.core_pattern: not a namespaced sysctl");
  expectError(config("vm.overcommit_memory", all),
              "linux.sysctl.vm.overcommit_memory: not a namespaced sysctl");
  expectError(config("net.ipv4.ip_forward", R"({"type": "uts"}, {"type": "ipc"})"),
              "linux.sysctl.net.ipv4.ip_forward: needs a private network namespace");
  expectError(config("kernel.msgmax", R"({"type": "network"})"),
              "linux.sysctl.kernel.msgmax: needs a private IPC namespace");
  expectError(config("kernel.hostname", R"({"type": "network"})"),
              "linux.sysctl.kernel.hostname: needs a private UTS namespace");
  expectError(config("net.ipv4/../../core_pattern", all),
              "linux.sysctl.net.ipv4/../../core_pattern: not a valid sysctl name");
  expectError(config("net..ipv4", all), "linux.sysctl.net..ipv4: not a valid sysctl name");
  // Joining our own network namespace by path is not a private one.
  expectError(config("net.ipv4.ip_forward", R"({"type": "network", "path": "/proc/self/ns/net"})"),
              "linux.sysctl.net.ipv4.ip_forward: needs a private network namespace");
}

// Every propagation runc accepts, unbindable ones included (the child applies
// them to the new root after pivot_root); anything else is refused by name.
TEST(OciConfig, AcceptsEveryRootfsPropagationRuncDoes) {
  const std::pair<const char*, unsigned long> cases[] = {
      {"unbindable", MS_UNBINDABLE}, {"runbindable", MS_UNBINDABLE | MS_REC},
      {"shared", MS_SHARED},         {"rshared", MS_SHARED | MS_REC},
      {"private", MS_PRIVATE},       {"rslave", MS_SLAVE | MS_REC}};
  for (const auto& [value, flags] : cases) {
    std::string config = kConfig;
    config.replace(config.find("\"rslave\""), 8, std::string("\"") + value + "\"");
    auto b = parseOciConfig(config, "/bundles/x");
    ASSERT_TRUE(b) << value << ": " << b.error().message();
    EXPECT_EQ(b->spec.rootfs_propagation, flags) << value;
  }
  std::string bad = kConfig;
  bad.replace(bad.find("\"rslave\""), 8, "\"sideways\"");
  auto b = parseOciConfig(bad, "/bundles/x");
  ASSERT_FALSE(b);
  EXPECT_NE(b.error().message().find("rootfsPropagation"), std::string::npos)
      << b.error().message();
}

}  // namespace
}  // namespace kernelet::isolation
