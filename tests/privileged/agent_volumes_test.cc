// The API-data volumes (configMap, secret, downwardAPI, projected) as a
// container sees them: read-only whatever its volumeMount says, so it cannot
// plant links in them for the agent's writer. `kernelet run` with a static
// pod manifest (configMap and secret volumes need an API server, whose start
// alone takes minutes in a loaded TCG VM; the mount options do not depend on
// where the files come from), in the test VM.

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <thread>

#include "support/privileged.h"
#include "support/process_util.h"
#include "sys/fileio.h"

namespace kernelet {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono;

const std::string kImage = "fixtures.kernelet.test/busybox:latest";

class AgentVolumes : public ::testing::Test {
 protected:
  void SetUp() override {
    KERNELET_REQUIRE_PRIVILEGED();
    std::string id = std::to_string(::getpid()) + "-" +
                     ::testing::UnitTest::GetInstance()->current_test_info()->name();
    base_ = "/tmp/kernelet-volumes-" + id;
    root_ = base_ + "/root";
    run_ = "/run/kernelet-volumes-" + std::to_string(::getpid());
    cgroup_root_ = "/kernelet-volumes-" + std::to_string(::getpid());
    fs::create_directories(base_ + "/manifests");
    std::string import = std::string(KERNELET_BINARY) + " images --root-dir " + root_ + " import " +
                         KERNELET_FIXTURES + "/oci/busybox >/dev/null 2>&1";
    ASSERT_EQ(std::system(import.c_str()), 0);
    started_ = true;
  }

  void TearDown() override {
    if (!started_) {
      return;
    }
    if (agent_ > 0) {
      ::kill(agent_, SIGTERM);
      int st;
      ::waitpid(agent_, &st, 0);
    }
    fs::remove_all(base_);
    std::string top = "/sys/fs/cgroup" + cgroup_root_;
    for (const char* q : {"/kubepods/burstable", "/kubepods/besteffort", "/kubepods", ""}) {
      ::rmdir((top + q).c_str());
    }
  }

  void startAgent() {
    agent_ = testing::spawnLogged(
        {KERNELET_BINARY, "run", "--pod-manifest-path", base_ + "/manifests", "--root-dir", root_,
         "--pod-log-dir", base_ + "/logs", "--run-dir", run_, "--cgroup-root", cgroup_root_,
         "--hostname-override", "node1", "-v", "2"},
        base_ + "/agent.log");
  }

  void writeManifest(const std::string& name, const std::string& yaml) {
    std::string tmp = base_ + "/manifests/." + name + ".tmp";
    std::ofstream(tmp) << yaml;
    fs::rename(tmp, base_ + "/manifests/" + name);
  }

  // What the pod's containers wrote, from its CRI log files.
  std::string output(const std::string& pod) {
    std::string out;
    std::error_code ec;
    for (const auto& e : fs::recursive_directory_iterator(base_ + "/logs", ec)) {
      if (e.path().string().find("/default_" + pod + "-node1_") != std::string::npos &&
          e.path().extension() == ".log") {
        out += readFile(e.path().string()).value_or("");
      }
    }
    return out;
  }

  std::string waitOutput(const std::string& pod, const std::string& needle, seconds timeout) {
    auto deadline = steady_clock::now() + timeout;
    std::string out;
    while (steady_clock::now() < deadline) {
      out = output(pod);
      if (out.find(needle) != std::string::npos) {
        return out;
      }
      std::this_thread::sleep_for(milliseconds(300));
    }
    ADD_FAILURE() << "\"" << needle << "\" not in " << pod << "'s output after " << timeout.count()
                  << " s: " << out << "\n"
                  << readFile(base_ + "/agent.log").value_or("");
    return out;
  }

  std::string base_, root_, run_, cgroup_root_;
  pid_t agent_ = -1;
  bool started_ = false;
};

size_t count(const std::string& text, const std::string& needle) {
  size_t n = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) {
    n++;
  }
  return n;
}

// The incident of the security issue: a container rewrote ..data of its
// downwardAPI volume to point at / and the agent's next update deleted a node
// directory. Now the container cannot write there at all, even when its
// volumeMounts say readOnly: false.
TEST_F(AgentVolumes, ApiDataVolumesAreReadOnlyInTheContainerWhateverTheMountSays) {
  // Each write attempt prints its error and then ok or failed (busybox's ln -sf
  // reports EEXIST for the link it could not replace); the mount options last.
  std::string script =
      "exec 2>&1; cd /info && ln -sfn / ..data && echo ln-ok || echo ln-failed; "
      "ln -s / ..data_tmp && echo tmp-ok || echo tmp-failed; "
      "echo x > /info/new && echo info-ok || echo info-failed; "
      "echo x > /info/labels && echo labels-ok || echo labels-failed; "
      "rm -f /proj/labels && echo proj-ok || echo proj-failed; "
      "grep -E \" /(info|proj) \" /proc/mounts | cut -d\" \" -f2,4 | cut -d, -f1; "
      "echo data=$(readlink /info/..data); echo labels=$(cat /info/labels) $(cat /proj/labels); "
      "echo done; exec kt-sleep 600";
  writeManifest("victim.yaml",
                "apiVersion: v1\nkind: Pod\nmetadata: {name: victim, labels: {app: demo}}\nspec:\n"
                "  terminationGracePeriodSeconds: 2\n  containers:\n"
                "  - name: app\n    image: " +
                    kImage + "\n    imagePullPolicy: Never\n    command: [sh, -c, '" + script +
                    "']\n    volumeMounts:\n"
                    "    - {name: info, mountPath: /info, readOnly: false}\n"
                    "    - {name: proj, mountPath: /proj}\n"
                    "  volumes:\n"
                    "  - name: info\n    downwardAPI:\n      items:\n"
                    "      - {path: labels, fieldRef: {fieldPath: metadata.labels}}\n"
                    "  - name: proj\n    projected:\n      sources:\n      - downwardAPI:\n"
                    "          items: [{path: labels, fieldRef: {fieldPath: metadata.labels}}]\n");
  startAgent();
  std::string out = waitOutput("victim", "done", seconds(120));
  EXPECT_NE(out.find("ln-failed"), std::string::npos) << out;
  EXPECT_NE(out.find("tmp-failed"), std::string::npos) << out;
  EXPECT_NE(out.find("info-failed"), std::string::npos) << out;
  EXPECT_NE(out.find("labels-failed"), std::string::npos) << out;
  EXPECT_NE(out.find("proj-failed"), std::string::npos) << out;
  EXPECT_GE(count(out, "Read-only file system"), 4u) << out;
  EXPECT_NE(out.find("/info ro"), std::string::npos) << out;
  EXPECT_NE(out.find("/proj ro"), std::string::npos) << out;
  EXPECT_NE(out.find("data=..20"), std::string::npos) << out;
  EXPECT_NE(out.find("labels=app=\"demo\" app=\"demo\""), std::string::npos) << out;

  // On the node the volume is as the agent wrote it: ..data names its own dir.
  std::error_code ec;
  int volumes = 0;
  for (const auto& e : fs::directory_iterator(root_ + "/pods", ec)) {
    std::string vol = e.path().string() + "/volumes/kubernetes.io~downward-api/info";
    if (fs::is_symlink(vol + "/..data")) {
      volumes++;
      EXPECT_TRUE(fs::read_symlink(vol + "/..data").string().starts_with("..20"));
    }
  }
  EXPECT_EQ(volumes, 1);
}

}  // namespace
}  // namespace kernelet
