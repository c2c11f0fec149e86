// The device cgroup of pods, end to end: `kernelet run` with static pod
// manifests in the test VM, a brd ramdisk (/dev/ram0, block 1:0) as the node's
// disk, and what the containers' shells say when they open device nodes.

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <thread>

#include "agent/pod_status.h"
#include "support/privileged.h"
#include "support/process_util.h"
#include "sys/fileio.h"

namespace kernelet::agent {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono;

const std::string kImage = "fixtures.kernelet.test/busybox:latest";

struct Cmd {
  int status = -1;
  std::string out, err;
};

Cmd runCommand(std::vector<std::string> args) {
  int out[2], err[2];
  if (::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0) {
    return {};
  }
  auto argv = testing::argvOf(args);
  pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(out[1], 1);
    ::dup2(err[1], 2);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  ::close(out[1]);
  ::close(err[1]);
  Cmd r;
  r.out = testing::readAll(out[0]);
  r.err = testing::readAll(err[0]);
  ::waitpid(pid, &r.status, 0);
  return r;
}

// The agent on a manifest directory of its own, as agent_e2e_test.cc runs it.
class PodDevices : public ::testing::Test {
 protected:
  void SetUp() override {
    KERNELET_REQUIRE_PRIVILEGED();
    std::string id = std::to_string(::getpid()) + "-" +
                     ::testing::UnitTest::GetInstance()->current_test_info()->name();
    base_ = "/tmp/kernelet-devices-" + id;
    root_ = base_ + "/root";
    manifests_ = base_ + "/manifests";
    logs_ = base_ + "/logs";
    run_ = "/run/kernelet-devices-" + std::to_string(::getpid());
    cgroup_root_ = "/kernelet-devices-" + std::to_string(::getpid());
    fs::create_directories(manifests_);
    started_ = true;
    // The node's disk: one small ramdisk (Debian builds brd as a module).
    Cmd brd = runCommand({"/sbin/modprobe", "brd", "rd_nr=1", "rd_size=1024"});
    struct stat st {};
    ASSERT_EQ(::stat("/dev/ram0", &st), 0) << "no /dev/ram0 after modprobe brd: " << brd.err;
    ASSERT_TRUE(S_ISBLK(st.st_mode));
    ASSERT_EQ(st.st_rdev, makedev(1, 0));
    Cmd imp = runCommand({KERNELET_BINARY, "images", "--root-dir", root_, "import",
                          std::string(KERNELET_FIXTURES) + "/oci/busybox"});
    ASSERT_EQ(imp.status, 0) << imp.err;
  }

  void TearDown() override {
    if (!started_) {
      return;
    }
    if (agent_ > 0) {
      EXPECT_EQ(stopAgent(), 0);
    }
    fs::remove_all(base_);
    std::string top = "/sys/fs/cgroup" + cgroup_root_;
    for (const char* q : {"/kubepods/burstable", "/kubepods/besteffort", "/kubepods", ""}) {
      ::rmdir((top + q).c_str());
    }
  }

  void startAgent() {
    agent_ = testing::spawnLogged(
        {KERNELET_BINARY, "run", "--pod-manifest-path", manifests_, "--root-dir", root_,
         "--pod-log-dir", logs_, "--run-dir", run_, "--cgroup-root", cgroup_root_,
         "--hostname-override", "node1", "-v", "3"},
        base_ + "/agent.log");
  }

  int stopAgent() {
    ::kill(agent_, SIGTERM);
    int status = -1;
    auto deadline = steady_clock::now() + seconds(90);
    while (::waitpid(agent_, &status, WNOHANG) == 0) {
      if (steady_clock::now() > deadline) {
        ::kill(agent_, SIGKILL);
        ::waitpid(agent_, &status, 0);
        ADD_FAILURE() << "agent did not stop in 90 s\n" << agentLog();
        break;
      }
      std::this_thread::sleep_for(milliseconds(20));
    }
    agent_ = -1;
    return status;
  }

  std::string agentLog() const { return readFile(base_ + "/agent.log").value_or(""); }

  void writeManifest(const std::string& name, const std::string& yaml) {
    std::string tmp = manifests_ + "/." + name + ".tmp";
    std::ofstream(tmp) << yaml;
    fs::rename(tmp, manifests_ + "/" + name);
  }

  std::optional<PodSummary> pod(const std::string& name) const {
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(root_ + "/pods", ec)) {
      auto text = readFile(e.path().string() + "/status.json");
      if (!text) {
        continue;
      }
      auto p = parsePodJson(*text, e.path().string());
      if (p && p->name == name + "-node1") {
        return *p;
      }
    }
    return std::nullopt;
  }

  // The pod's phase once it is one of `phases` (or its last one after 90 s).
  std::string waitForPhase(const std::string& name, const std::vector<std::string>& phases) {
    auto deadline = steady_clock::now() + seconds(90);
    std::optional<PodSummary> last;
    while (steady_clock::now() < deadline) {
      last = pod(name);
      if (last && std::find(phases.begin(), phases.end(), last->status.phase) != phases.end()) {
        return last->status.phase;
      }
      std::this_thread::sleep_for(milliseconds(50));
    }
    ADD_FAILURE() << name << ": no final phase in 90 s\n" << agentLog();
    return last ? last->status.phase : "(no status)";
  }

  // The container's output (stderr is sent to stdout by the scripts, for order).
  std::string logs(const std::string& pod, const std::string& container) {
    Cmd l = runCommand({KERNELET_BINARY, "logs", "--root-dir", root_, "--pod-log-dir", logs_,
                        pod + "-node1", container});
    EXPECT_EQ(l.status, 0) << l.err;
    return l.out;
  }

  std::string base_, root_, manifests_, logs_, run_, cgroup_root_;
  pid_t agent_ = -1;
  bool started_ = false;
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
  startAgent();
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
  startAgent();
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
  startAgent();
  EXPECT_EQ(waitForPhase("priv", {"Succeeded", "Failed"}), "Succeeded");
  EXPECT_EQ(logs("priv", "app"), "16\nmem opened\n");
}

}  // namespace
}  // namespace kernelet::agent
