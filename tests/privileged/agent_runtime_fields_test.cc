// Pod fields the runtime implements, as a user sees them through
// `kernelet run` with static pods in the test VM:
//   - hostPID: the container sees the node's processes (PID 1 is the node's
//     init, the test's own pid is there), an exec probe runs in it, and what
//     the container leaves behind when its main process ends dies with it;
//   - hostIPC: the container sees a SysV segment and a /dev/shm file of the node;
//   - a pod beside them, without either, sees neither;
//   - lifecycle.stopSignal is the signal the stop sends, and the status's;
//   - readOnly leaves a submount writable, recursiveReadOnly: Enabled does
//     not; HostToContainer sees a mount the node makes later, None does not;
//   - the status's volumeMounts and user are what the container got.

#include <poll.h>
#include <sys/ipc.h>
#include <sys/mount.h>
#include <sys/shm.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>

#include "support/privileged.h"
#include "support/static_agent.h"
#include "sys/fileio.h"
#include "sys/syscalls.h"
#include "sys/unique_fd.h"

namespace kernelet {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono;
using testing::StaticAgent;

const std::string kImage = "fixtures.kernelet.test/busybox:latest";

std::string pod(const std::string& name, const std::string& spec, const std::string& script,
                const std::string& container_extra = "") {
  return "apiVersion: v1\nkind: Pod\nmetadata: {name: " + name + "}\nspec:\n" + spec +
         "  terminationGracePeriodSeconds: 2\n  containers:\n  - name: app\n    image: " + kImage +
         "\n    imagePullPolicy: Never\n    command: [sh, -c, '" + script + "']\n" +
         container_extra;
}

std::string trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) {
    s.pop_back();
  }
  return s;
}

class AgentRuntimeFields : public ::testing::Test {
 protected:
  void SetUp() override {
    KERNELET_REQUIRE_PRIVILEGED();
    agent_ = std::make_unique<StaticAgent>(KERNELET_BINARY, "fields");
    auto err = agent_->importImage(std::string(KERNELET_FIXTURES) + "/oci/busybox");
    ASSERT_FALSE(err) << *err;
  }
  void TearDown() override { agent_.reset(); }

  std::unique_ptr<StaticAgent> agent_;
};

TEST_F(AgentRuntimeFields, AHostPidPodSeesTheNodesProcesses) {
  const std::string me = std::to_string(::getpid());
  const std::string node_init = trimmed(readFile("/proc/1/comm").value_or("?"));
  // Each pod says what its PID 1 is and whether the test's pid is there.
  const std::string look = "echo pid1=$(cat /proc/1/comm); test -d /proc/" + me +
                           " && echo sees-node || echo own-pids; ";
  agent_->writeManifest("host.yaml",
                        pod("host", "  hostPID: true\n", look + "echo done; exec kt-sleep 600",
                            "    readinessProbe: {exec: {command: [test, -d, /proc/" + me +
                                "]}, periodSeconds: 1}\n"));
  agent_->writeManifest("own.yaml", pod("own", "", look + "echo done; exec kt-sleep 600"));
  // Its main process ends and leaves a child: the child's pid (the node's,
  // as seen from the node's PID namespace) is printed first.
  agent_->writeManifest("leaver.yaml", pod("leaver", "  hostPID: true\n  restartPolicy: Never\n",
                                           "kt-sleep 600 & echo child=$!; exit 0"));
  agent_->start({}, 2);

  auto host = agent_->logsWith("host", "app", "done", seconds(180));
  EXPECT_EQ(host.out, "pid1=" + node_init + "\nsees-node\ndone\n") << host.err << agent_->log();
  // PID 1 of its own is its shell (named by whatever busybox was called as,
  // and the VM's init may be a shell too: only the test's pid tells).
  auto own = agent_->logsWith("own", "app", "done", seconds(180));
  EXPECT_NE(own.out.find("\nown-pids\ndone\n"), std::string::npos) << own.err << agent_->log();
  // An exec probe runs in the node's PID namespace too.
  auto ready = agent_->waitFor(
      "host",
      [](const agent::PodSummary& p) {
        const auto* s = StaticAgent::statusOf(p, "app");
        return s != nullptr && s->ready;
      },
      seconds(120));
  EXPECT_TRUE(ready) << agent_->log();

  // No init of its own reaps or kills the child: the container's end does.
  auto done = agent_->waitFor(
      "leaver", [](const agent::PodSummary& p) { return p.status.phase == "Succeeded"; },
      seconds(180));
  ASSERT_TRUE(done) << agent_->log();
  std::string out = agent_->logs("leaver", "app").out;
  ASSERT_TRUE(out.starts_with("child=")) << out;
  pid_t child = std::stoi(out.substr(6));
  UniqueFd pidfd(sys::pidfdOpen(child));
  if (pidfd) {
    // Still there (it may be a zombie of the node's init): it must end soon.
    pollfd p{pidfd.get(), POLLIN, 0};
    EXPECT_EQ(::poll(&p, 1, 10000), 1) << "pid " << child << " outlived its container";
  }
}

TEST_F(AgentRuntimeFields, AHostIpcPodSharesTheNodesSysvSegments) {
  // A segment of the node's IPC namespace (the test's, which is the agent's).
  const key_t key = 0x6b740000 + (::getpid() & 0xffff);
  int id = ::shmget(key, 4096, IPC_CREAT | IPC_EXCL | 0600);
  ASSERT_GE(id, 0) << "shmget: " << std::strerror(errno);
  struct Remove {
    int id;
    ~Remove() { ::shmctl(id, IPC_RMID, nullptr); }
  } remove{id};
  // /proc/sysvipc/shm lists the segments of the reader's IPC namespace:
  // "key shmid perms size ...", right-aligned decimals.
  // POSIX shared memory: a file in the node's /dev/shm.
  const std::string posix = "/dev/shm/kernelet-test-" + std::to_string(::getpid());
  std::ofstream(posix) << "x";
  const std::string look = "grep -qE \"^ *" + std::to_string(key) + " +" + std::to_string(id) +
                           " \" /proc/sysvipc/shm && echo sees-node || echo own-ipc; test -f " +
                           posix +
                           " && echo sees-shm || echo own-shm; echo done; exec kt-sleep 600";
  agent_->writeManifest("host.yaml", pod("ipchost", "  hostIPC: true\n", look));
  agent_->writeManifest("own.yaml", pod("ipcown", "", look));
  agent_->start({}, 2);

  auto host = agent_->logsWith("ipchost", "app", "done", seconds(180));
  EXPECT_EQ(host.out, "sees-node\nsees-shm\ndone\n") << host.err << agent_->log();
  auto own = agent_->logsWith("ipcown", "app", "done", seconds(180));
  EXPECT_EQ(own.out, "own-ipc\nown-shm\ndone\n") << own.err << agent_->log();
  ::unlink(posix.c_str());
}

// lifecycle.stopSignal (KEP-4960): the stop sends it instead of SIGTERM, and
// the status says which signal each container gets.
TEST_F(AgentRuntimeFields, AStopSignalIsWhatTheProcessGets) {
  const std::string out = agent_->base() + "/signals";
  fs::create_directories(out);
  // Each container writes the signal it got into the shared hostPath dir.
  auto waiter = [](const std::string& name) {
    return "trap \"echo USR1 > /out/" + name + "; exit 0\" USR1; trap \"echo TERM > /out/" + name +
           "; exit 0\" TERM; echo ready; kt-sleep 600 & wait $!";
  };
  agent_->writeManifest(
      "signals.yaml",
      "apiVersion: v1\nkind: Pod\nmetadata: {name: signals}\nspec:\n  os: {name: linux}\n"
      "  terminationGracePeriodSeconds: 30\n  containers:\n"
      "  - name: usr1\n    image: " +
          kImage + "\n    imagePullPolicy: Never\n    command: [sh, -c, '" + waiter("usr1") +
          "']\n    lifecycle: {stopSignal: SIGUSR1}\n"
          "    volumeMounts: [{name: out, mountPath: /out}]\n"
          "  - name: plain\n    image: " +
          kImage + "\n    imagePullPolicy: Never\n    command: [sh, -c, '" + waiter("plain") +
          "']\n    volumeMounts: [{name: out, mountPath: /out}]\n"
          "  volumes: [{name: out, hostPath: {path: " +
          out + ", type: Directory}}]\n");
  agent_->start({}, 2);
  for (const char* c : {"usr1", "plain"}) {
    EXPECT_EQ(agent_->logsWith("signals", c, "ready", seconds(180)).out, "ready\n")
        << agent_->log();
  }
  auto running = agent_->pod("signals");
  ASSERT_TRUE(running);
  EXPECT_EQ(StaticAgent::statusOf(*running, "usr1")->stop_signal, "SIGUSR1");
  EXPECT_EQ(StaticAgent::statusOf(*running, "plain")->stop_signal, "SIGTERM");

  // Deleted: both trap their signal and exit at once (a SIGTERM the usr1
  // container got instead would say TERM; none at all would wait 30 s).
  fs::remove(agent_->base() + "/manifests/signals.yaml");
  auto deadline = steady_clock::now() + seconds(25);
  while (agent_->pod("signals") && steady_clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(200));
  }
  EXPECT_FALSE(agent_->pod("signals")) << agent_->log();
  EXPECT_EQ(readFile(out + "/usr1").value_or("(none)"), "USR1\n");
  EXPECT_EQ(readFile(out + "/plain").value_or("(none)"), "TERM\n");
}

// A tmpfs the test mounts (made shared when asked), unmounted with what is under it.
class TestMount {
 public:
  TestMount(const std::string& path, bool shared) : path_(path) {
    fs::create_directories(path);
    ok_ = ::mount("tmpfs", path.c_str(), "tmpfs", 0, "size=1m") == 0 &&
          (!shared || ::mount(nullptr, path.c_str(), nullptr, MS_SHARED, nullptr) == 0);
  }
  ~TestMount() { ::umount2(path_.c_str(), MNT_DETACH); }
  bool ok() const { return ok_; }

 private:
  std::string path_;
  bool ok_ = false;
};

// readOnly alone makes the mount read-only and leaves a submount writable;
// recursiveReadOnly: Enabled makes the submount read-only too. The status
// lists the mounts as the kubelet does.
TEST_F(AgentRuntimeFields, RecursiveReadOnlyReachesSubmounts) {
  const std::string vol = agent_->base() + "/vol";
  fs::create_directories(vol);
  TestMount sub(vol + "/sub", false);
  ASSERT_TRUE(sub.ok()) << std::strerror(errno);
  const std::string script =
      "exec 2>/dev/null; for d in ro rro; do touch /$d/top && echo $d-top-written || echo "
      "$d-top-refused; touch /$d/sub/x && echo $d-sub-written || echo $d-sub-refused; done; "
      "echo done; exec kt-sleep 600";
  agent_->writeManifest("rro.yaml",
                        pod("rro", "", script,
                            "    volumeMounts:\n"
                            "    - {name: v, mountPath: /ro, readOnly: true}\n"
                            "    - {name: v, mountPath: /rro, readOnly: true, recursiveReadOnly: "
                            "Enabled}\n"
                            "    - {name: v, mountPath: /rw}\n"
                            "  volumes: [{name: v, hostPath: {path: " +
                                vol + "}}]\n"));
  agent_->start({}, 2);
  auto out = agent_->logsWith("rro", "app", "done", seconds(180));
  EXPECT_EQ(out.out, "ro-top-refused\nro-sub-written\nrro-top-refused\nrro-sub-refused\ndone\n")
      << out.err << agent_->log();
  auto p = agent_->pod("rro");
  ASSERT_TRUE(p);
  const auto* st = StaticAgent::statusOf(*p, "app");
  ASSERT_NE(st, nullptr);
  ASSERT_EQ(st->volume_mounts.size(), 3u);
  EXPECT_EQ(st->volume_mounts[0].mount_path, "/ro");
  EXPECT_TRUE(st->volume_mounts[0].read_only);
  EXPECT_EQ(st->volume_mounts[0].recursive_read_only, "Disabled");
  EXPECT_EQ(st->volume_mounts[1].recursive_read_only, "Enabled");
  EXPECT_FALSE(st->volume_mounts[2].read_only);
  EXPECT_EQ(st->volume_mounts[2].recursive_read_only, "");
  agent_->stop();
}

// HostToContainer: a mount the node makes under the volume after the start
// shows inside; beside it a None mount of the same volume does not see it.
// Without a shared source the start fails with containerd's reason.
TEST_F(AgentRuntimeFields, HostToContainerSeesALaterHostMount) {
  const std::string vol = agent_->base() + "/shared";
  TestMount shared(vol, true);
  ASSERT_TRUE(shared.ok()) << std::strerror(errno);
  const std::string script =
      "echo ready; until test -f /h2c/late/marker; do sleep 1; done; echo h2c-sees; "
      "test -f /none/late/marker && echo none-sees || echo none-blind; exec kt-sleep 600";
  agent_->writeManifest("h2c.yaml",
                        pod("h2c", "", script,
                            "    volumeMounts:\n"
                            "    - {name: v, mountPath: /h2c, mountPropagation: HostToContainer}\n"
                            "    - {name: v, mountPath: /none}\n"
                            "  volumes: [{name: v, hostPath: {path: " +
                                vol + "}}]\n"));
  const std::string priv = agent_->base() + "/private";
  fs::create_directories(priv);
  agent_->writeManifest("h2cbad.yaml",
                        pod("h2cbad", "", "echo ran",
                            "    volumeMounts:\n"
                            "    - {name: v, mountPath: /h2c, mountPropagation: HostToContainer}\n"
                            "  volumes: [{name: v, hostPath: {path: " +
                                priv + "}}]\n"));
  agent_->start({}, 2);
  EXPECT_EQ(agent_->logsWith("h2c", "app", "ready", seconds(180)).out, "ready\n") << agent_->log();
  // The private source: never started, containerd's check as the reason.
  auto bad = agent_->waitFor(
      "h2cbad",
      [](const agent::PodSummary& p) {
        const auto* s = StaticAgent::statusOf(p, "app");
        return s != nullptr && s->state.reason == "CreateContainerConfigError";
      },
      seconds(120));
  ASSERT_TRUE(bad) << agent_->log();
  EXPECT_NE(
      StaticAgent::statusOf(*bad, "app")
          ->state.message.find("\" is not on a shared or slave mount (HostToContainer needs one)"),
      std::string::npos)
      << StaticAgent::statusOf(*bad, "app")->state.message;
  {
    TestMount late(vol + "/late", false);
    ASSERT_TRUE(late.ok()) << std::strerror(errno);
    std::ofstream(vol + "/late/marker") << "x";
    auto out = agent_->logsWith("h2c", "app", "none-", seconds(60));
    EXPECT_EQ(out.out, "ready\nh2c-sees\nnone-blind\n") << out.err << agent_->log();
    agent_->stop();  // before the mounts go
  }
}

// containerStatuses[].user.linux: the uid, gid and groups the process started
// with, the primary gid first, as the kubelet reports them.
TEST_F(AgentRuntimeFields, TheStatusSaysWhoTheProcessIs) {
  agent_->writeManifest(
      "user.yaml",
      pod("user",
          "  securityContext: {runAsUser: 1000, runAsGroup: 3000, supplementalGroups: [4000]}\n",
          "id -u; id -g; echo groups=$(grep ^Groups: /proc/self/status | cut -f2); echo done; "
          "exec kt-sleep 600"));
  agent_->start({}, 2);
  auto out = agent_->logsWith("user", "app", "done", seconds(180));
  // The kernel's list of the process's supplementary groups.
  EXPECT_EQ(out.out, "1000\n3000\ngroups=3000 4000\ndone\n") << out.err << agent_->log();
  auto p = agent_->pod("user");
  ASSERT_TRUE(p);
  const auto* st = StaticAgent::statusOf(*p, "app");
  ASSERT_NE(st, nullptr);
  ASSERT_TRUE(st->user);
  EXPECT_EQ(st->user->uid, 1000);
  EXPECT_EQ(st->user->gid, 3000);
  EXPECT_EQ(st->user->supplemental_groups, (std::vector<int64_t>{3000, 4000}));
}

}  // namespace
}  // namespace kernelet
