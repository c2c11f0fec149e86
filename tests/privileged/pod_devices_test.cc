// The device cgroup of pods, end to end: `kernelet run` with static pod
// manifests in the test VM, a brd ramdisk (/dev/ram0, block 1:0) as the node's
// disk, and what the containers' shells say when they open device nodes.

#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <memory>

#include "agent/status/pod_status.h"
#include "support/privileged.h"
#include "support/static_agent.h"

namespace kernelet::agent {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono;
using testing::CommandResult;
using testing::StaticAgent;

const std::string kImage = "fixtures.kernelet.test/busybox:latest";

// One agent on a manifest directory of its own, as agent_e2e_test.cc runs it,
// shared by the cases (each runs a pod of its own name): starting an agent and
// importing the image is most of a case's time in the test VM.
class PodDevices : public ::testing::Test {
 protected:
  static void TearDownTestSuite() {
    if (agent_ && agent_->pid() > 0) {
      testing::StopResult r = agent_->stopWithin(seconds(90));
      EXPECT_FALSE(r.killed) << "agent did not stop in 90 s\n" << agent_->log();
      EXPECT_EQ(r.status, 0) << agent_->log();
    }
    agent_.reset();
    setup_error_.clear();
  }

  void SetUp() override {
    KERNELET_REQUIRE_PRIVILEGED();
    if (!agent_ && setup_error_.empty()) {
      setup_error_ = startShared();
    }
    ASSERT_TRUE(setup_error_.empty()) << setup_error_;
    base_ = agent_->base();
  }

  // The node's disk, the image and the agent, once; what failed if anything did.
  static std::string startShared() {
    // The node's disk: one small ramdisk (Debian builds brd as a module).
    CommandResult brd = testing::runCommand({"/sbin/modprobe", "brd", "rd_nr=1", "rd_size=1024"});
    struct stat st {};
    if (::stat("/dev/ram0", &st) != 0 || !S_ISBLK(st.st_mode) || st.st_rdev != makedev(1, 0)) {
      return "no block device 1:0 at /dev/ram0 after modprobe brd: " + brd.err;
    }
    agent_ = std::make_unique<StaticAgent>(KERNELET_BINARY, "devices");
    if (auto err = agent_->importImage(std::string(KERNELET_FIXTURES) + "/oci/busybox")) {
      return *err;
    }
    agent_->start();
    return "";
  }

  std::string agentLog() const { return agent_->log(); }

  void writeManifest(const std::string& name, const std::string& yaml) {
    agent_->writeManifest(name, yaml);
  }

  // The pod's phase once it is one of `phases` (or its last one after 90 s).
  std::string waitForPhase(const std::string& name, const std::vector<std::string>& phases) {
    auto final = [&](const PodSummary& p) {
      return std::find(phases.begin(), phases.end(), p.status.phase) != phases.end();
    };
    if (auto p = agent_->waitFor(name, final, seconds(90))) {
      return p->status.phase;
    }
    ADD_FAILURE() << name << ": no final phase in 90 s\n" << agentLog();
    std::optional<PodSummary> last = agent_->pod(name);
    return last ? last->status.phase : "(no status)";
  }

  // The container's output (stderr is sent to stdout by the scripts, for order).
  std::string logs(const std::string& pod, const std::string& container) {
    CommandResult l = agent_->logs(pod, container);
    EXPECT_EQ(l.status, 0) << l.err;
    return l.out;
  }

  static inline std::unique_ptr<StaticAgent> agent_;
  static inline std::string setup_error_;
  std::string base_;
};

// A run-to-completion pod with one container running `script` (no single quotes).
std::string podYaml(const std::string& name, const std::string& script,
                    const std::string& container_extra = "", const std::string& pod_extra = "") {
  return "apiVersion: v1\nkind: Pod\nmetadata:\n  name: " + name +
         "\nspec:\n  restartPolicy: Never\n" + pod_extra + "  containers:\n  - name: app\n" +
         "    image: " + kImage + "\n    imagePullPolicy: Never\n    command: [sh, -c, '" + script +
         "']\n" + container_extra;
}

// A default pod's root makes nodes for the node's disk, kernel log and console: mknod
// is allowed (as with runc), opening them is not; the standard devices work.
TEST_F(PodDevices, ADefaultPodOpensOnlyTheStandardDevices) {
  writeManifest("plain.yaml",
                podYaml("plain",
                        "exec 2>&1; mknod /tmp/ram0 b 1 0 && mknod /tmp/kmsg c 1 11 && echo made; "
                        "head -c 16 /tmp/ram0 >/dev/null && echo ram0 read; "
                        "echo injected-by-pod >/tmp/kmsg && echo kmsg written; "
                        "mknod /tmp/console c 5 1 && echo written-by-pod >/tmp/console; "
                        "head -c 4 /dev/zero | wc -c; head -c 4 /dev/urandom | wc -c; "
                        "echo x >/dev/null && echo null written"));
  EXPECT_EQ(waitForPhase("plain", {"Succeeded", "Failed"}), "Succeeded");
  EXPECT_EQ(logs("plain", "app"),
            "made\n"
            "head: /tmp/ram0: Operation not permitted\n"
            "sh: can't create /tmp/kmsg: Operation not permitted\n"
            "sh: can't create /tmp/console: Operation not permitted\n"
            "4\n4\n"
            "null written\n");
}

// A node the container did not make (an image's, a hostPath's: here a 0666
// node of the ramdisk) opens nothing either, for a user without capabilities.
TEST_F(PodDevices, ADeviceNodeFromOutsideTheContainerDoesNotOpen) {
  fs::create_directories(base_ + "/devs");
  ASSERT_EQ(::mknod((base_ + "/devs/ram0").c_str(), S_IFBLK | 0666, makedev(1, 0)), 0);
  ASSERT_EQ(::chmod((base_ + "/devs/ram0").c_str(), 0666), 0);  // past the umask
  writeManifest("nonroot.yaml",
                podYaml("nonroot",
                        "exec 2>&1; id -u; head -c 16 /devs/ram0 >/dev/null && echo ram0 read; "
                        "true",
                        "    securityContext: {capabilities: {drop: [ALL]}}\n"
                        "    volumeMounts: [{name: devs, mountPath: /devs}]\n",
                        "  securityContext: {runAsUser: 1000}\n"
                        "  volumes: [{name: devs, hostPath: {path: " +
                            base_ + "/devs, type: Directory}}]\n"));
  EXPECT_EQ(waitForPhase("nonroot", {"Succeeded", "Failed"}), "Succeeded");
  EXPECT_EQ(logs("nonroot", "app"), "1000\nhead: /devs/ram0: Operation not permitted\n");
}

// securityContext.privileged gets every device, as containerd gives it.
TEST_F(PodDevices, APrivilegedPodOpensTheNodesDisk) {
  writeManifest("priv.yaml",
                podYaml("priv",
                        "exec 2>&1; mknod /tmp/ram0 b 1 0 && head -c 16 /tmp/ram0 | wc -c; "
                        "mknod /tmp/mem c 1 1 && (exec 3</tmp/mem) && echo mem opened",
                        "    securityContext: {privileged: true}\n"));
  EXPECT_EQ(waitForPhase("priv", {"Succeeded", "Failed"}), "Succeeded");
  EXPECT_EQ(logs("priv", "app"), "16\nmem opened\n");
}

}  // namespace
}  // namespace kernelet::agent
