// The API-data volumes (configMap, secret, downwardAPI, projected) as a
// container sees them: read-only whatever its volumeMount says, so it cannot
// plant links in them for the agent's writer. `kernelet run` with a static
// pod manifest (configMap and secret volumes need an API server, whose start
// alone takes minutes in a loaded TCG VM; the mount options do not depend on
// where the files come from), in the test VM.

#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <thread>

#include "support/privileged.h"
#include "support/static_agent.h"
#include "sys/fileio.h"

namespace kernelet {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono;
using testing::StaticAgent;

const std::string kImage = "fixtures.kernelet.test/busybox:latest";

class AgentVolumes : public ::testing::Test {
 protected:
  void SetUp() override {
    KERNELET_REQUIRE_PRIVILEGED();
    agent_ = std::make_unique<StaticAgent>(KERNELET_BINARY, "volumes");
    root_ = agent_->root();
    auto err = agent_->importImage(std::string(KERNELET_FIXTURES) + "/oci/busybox");
    ASSERT_FALSE(err) << *err;
  }

  void TearDown() override { agent_.reset(); }

  void startAgent() { agent_->start({}, 2); }

  void writeManifest(const std::string& name, const std::string& yaml) {
    agent_->writeManifest(name, yaml);
  }

  // What the pod's containers wrote, from its CRI log files.
  std::string output(const std::string& pod) {
    std::string out;
    std::error_code ec;
    for (const auto& e : fs::recursive_directory_iterator(agent_->logDir(), ec)) {
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
                  << agent_->log();
    return out;
  }

  std::unique_ptr<StaticAgent> agent_;
  std::string root_;
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

bool waitingWith(const std::optional<agent::PodSummary>& p, const std::string& container,
                 const std::string& reason) {
  const agent::ContainerStatus* c = p ? StaticAgent::statusOf(*p, container) : nullptr;
  return c != nullptr && c->state.kind == agent::ContainerState::Kind::kWaiting &&
         c->state.reason == reason;
}

// volumeMounts[].subPath and subPathExpr (issue #19): one agent, two pods.
// "files": an init container writes a config file into an emptyDir; the app
// mounts that one file (a file, not the directory), a subPath the agent
// creates, and a per-pod directory from subPathExpr $(POD_NAME).
// "attack": containers sharing an emptyDir plant `evil -> /` and flip `swap`
// between a directory and a link to /; the victim's subPath mount of evil
// fails as the kubelet's does (CreateContainerConfigError), the racer gets
// either the directory or the same error, never the node's /, and the
// bystander runs on.
TEST_F(AgentVolumes, SubPathsMountWhatIsInsideTheVolumeAndNeverTheHostsRoot) {
  std::string pod_dir_mark = agent_->base();  // exists on the node, not in any image
  writeManifest(
      "files.yaml",
      "apiVersion: v1\nkind: Pod\nmetadata: {name: files}\nspec:\n"
      "  terminationGracePeriodSeconds: 1\n  initContainers:\n"
      "  - name: init\n    image: " +
          kImage +
          "\n    imagePullPolicy: Never\n"
          "    command: [sh, -c, 'mkdir -p /data/conf && echo hello-conf > /data/conf/app.conf && "
          "echo x > /data/conf/other']\n"
          "    volumeMounts: [{name: data, mountPath: /data}]\n"
          "  containers:\n  - name: app\n    image: " +
          kImage +
          "\n    imagePullPolicy: Never\n"
          "    env:\n    - name: POD_NAME\n      valueFrom: {fieldRef: {fieldPath: "
          "metadata.name}}\n"
          "    command: [sh, -c, 'exec 2>&1; cat /etc/app.conf; [ -f /etc/app.conf ] && echo "
          "is-file; [ -e /etc/other ] || echo no-other; ls -ld /made | cut -c1-10; "
          "echo per-pod > /logs/out && echo logs-ok; grep -c \" /etc/app.conf \" /proc/mounts; "
          "echo done; exec kt-sleep 600']\n"
          "    volumeMounts:\n"
          "    - {name: data, mountPath: /etc/app.conf, subPath: conf/app.conf}\n"
          "    - {name: data, mountPath: /made, subPath: made/by/agent}\n"
          "    - {name: data, mountPath: /logs, subPathExpr: \"logs/$(POD_NAME)\"}\n"
          "  volumes: [{name: data, emptyDir: {}}]\n");
  std::string probe = "test -e /mnt" + pod_dir_mark + " && echo ESCAPED; test -e /mnt/inside && " +
                      "echo got-inside; echo contained; exec kt-sleep 600";
  writeManifest(
      "attack.yaml",
      "apiVersion: v1\nkind: Pod\nmetadata: {name: attack}\nspec:\n"
      "  terminationGracePeriodSeconds: 1\n  initContainers:\n"
      "  - name: plant\n    image: " +
          kImage +
          "\n    imagePullPolicy: Never\n"
          "    command: [sh, -c, 'ln -s / /shared/evil && mkdir /shared/swap && touch "
          "/shared/swap/inside']\n"
          "    volumeMounts: [{name: shared, mountPath: /shared}]\n"
          "  - name: flipper\n    image: " +
          kImage +
          "\n    imagePullPolicy: Never\n    restartPolicy: Always\n"
          "    command: [sh, -c, 'cd /shared; while :; do rm -rf swap; ln -s / swap; rm -f swap; "
          "mkdir swap; touch swap/inside; done']\n"
          "    volumeMounts: [{name: shared, mountPath: /shared}]\n"
          "  containers:\n  - name: victim\n    image: " +
          kImage + "\n    imagePullPolicy: Never\n    command: [sh, -c, '" + probe +
          "']\n"
          "    volumeMounts: [{name: shared, mountPath: /mnt, subPath: evil}]\n"
          "  - name: racer\n    image: " +
          kImage + "\n    imagePullPolicy: Never\n    command: [sh, -c, '" + probe +
          "']\n"
          "    volumeMounts: [{name: shared, mountPath: /mnt, subPath: swap}]\n"
          "  - name: bystander\n    image: " +
          kImage +
          "\n    imagePullPolicy: Never\n    command: [sh, -c, 'echo alive; exec kt-sleep 600']\n"
          "    volumeMounts: [{name: shared, mountPath: /shared}]\n"
          "  volumes: [{name: shared, emptyDir: {}}]\n");
  startAgent();

  auto app = agent_->logsWith("files", "app", "done", seconds(180));
  EXPECT_EQ(app.out, "hello-conf\nis-file\nno-other\ndrwxrwxrwx\nlogs-ok\n1\ndone\n")
      << app.err << agent_->log();
  auto files = agent_->pod("files");
  ASSERT_TRUE(files);
  std::string data = root_ + "/pods/" + files->uid + "/volumes/kubernetes.io~empty-dir/data";
  EXPECT_EQ(readFile(data + "/logs/files-node1/out").value_or(""), "per-pod\n");
  EXPECT_TRUE(fs::is_directory(data + "/made/by/agent"));

  auto attack = agent_->waitFor(
      "attack",
      [](const agent::PodSummary& p) {
        return waitingWith(p, "victim", "CreateContainerConfigError");
      },
      seconds(180));
  ASSERT_TRUE(attack) << agent_->log();
  EXPECT_EQ(StaticAgent::statusOf(*attack, "victim")->state.message,
            "failed to prepare subPath for volumeMount \"shared\" of container \"victim\"");
  std::string log = agent_->log();
  EXPECT_NE(log.find("resolves outside of the volume"), std::string::npos) << log;
  EXPECT_EQ(agent_->logs("attack", "victim").out, "");  // it never ran
  EXPECT_NE(agent_->logsWith("attack", "bystander", "alive", seconds(60)).out.find("alive"),
            std::string::npos);
  // The racer: whichever it met, the directory or the link, never the node's /.
  auto raced = agent_->waitFor(
      "attack",
      [&](const agent::PodSummary& p) {
        return waitingWith(p, "racer", "CreateContainerConfigError") ||
               agent_->logs("attack", "racer").out.find("contained") != std::string::npos;
      },
      seconds(120));
  EXPECT_TRUE(raced) << agent_->log();
  EXPECT_EQ(agent_->logs("attack", "racer").out.find("ESCAPED"), std::string::npos);

  // Deleted, the pods leave no mount behind in the agent's namespace (their
  // subPath mounts lived only in the containers' namespaces).
  fs::remove(agent_->base() + "/manifests/files.yaml");
  fs::remove(agent_->base() + "/manifests/attack.yaml");
  auto deadline = steady_clock::now() + seconds(120);
  while ((agent_->pod("files") || agent_->pod("attack")) && steady_clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(300));
  }
  EXPECT_FALSE(agent_->pod("files") || agent_->pod("attack")) << agent_->log();
  std::ifstream mounts("/proc/self/mountinfo");
  for (std::string line; std::getline(mounts, line);) {
    EXPECT_EQ(line.find(root_ + "/pods/"), std::string::npos) << "mount left: " << line;
    EXPECT_EQ(line.find(root_ + "/containers/"), std::string::npos) << "mount left: " << line;
  }
}

}  // namespace
}  // namespace kernelet
