// Live restore in the runtime (issue #16), in the test VM: a KernelRuntime
// leaves its pod running, a new one on the same root and keeper adopts it -
// the same processes, exec still works, the run that exited meanwhile reads
// its exit code, and the log has every line once - and a leftover pod is
// stopped from its record with its grace period and removed without a trace.
// Recovery keeps adoptable pods and removes the rest: broken and future
// records (reported with their path), and everything of another boot.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "agent/runtime/kernel_runtime.h"
#include "agent/runtime/recovery.h"
#include "agent/runtime/run_records.h"
#include "cgroups/cgroups.h"
#include "isolation/oci_state.h"
#include "support/memory_keeper.h"
#include "support/privileged.h"
#include "sys/fileio.h"
#include "sys/syscalls.h"

namespace kernelet::agent::runtime {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using std::chrono::seconds;

const std::string kImage = "fixtures.kernelet.test/busybox:latest";

bool mountedUnder(const std::string& prefix) {
  std::ifstream in("/proc/self/mountinfo");
  for (std::string line; std::getline(in, line);) {
    std::istringstream f(line);
    std::string id, parent, dev, root, point;
    f >> id >> parent >> dev >> root >> point;
    if (point.starts_with(prefix + "/")) {
      return true;
    }
  }
  return false;
}

// The numbers of the "line N" messages of a CRI log (rotated files are not
// expected at this size).
std::vector<int> loggedLines(const std::string& path) {
  std::vector<int> out;
  std::ifstream in(path);
  static const std::regex msg(R"(^\S+ stdout F line (\d+)$)");
  for (std::string line; std::getline(in, line);) {
    std::smatch m;
    if (std::regex_match(line, m, msg)) {
      out.push_back(std::stoi(m[1]));
    }
  }
  return out;
}

// Shared by every case: one environment, one keeper, pods passed between
// runtimes as an agent restart would pass them.
class LiveRestoreTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!::kernelet::testing::privilegedUnavailableReason().empty()) {
      return;
    }
    env_ = new Env();
    env_->init();
  }
  static void TearDownTestSuite() {
    delete env_;
    env_ = nullptr;
  }
  void SetUp() override {
    KERNELET_REQUIRE_PRIVILEGED();
    ASSERT_NE(env_, nullptr);
    ASSERT_TRUE(env_->ready) << env_->setup_error;
  }

  struct Env {
    std::string base, bridge, cgroup_mount;
    AgentConfig config;
    netns::NetworkConfig net;
    std::unique_ptr<EventLoop> loop;
    std::unique_ptr<TimerQueue> timers;
    std::unique_ptr<netns::Network> network;
    std::unique_ptr<images::ImageStore> images;
    std::unique_ptr<ImagePuller> puller;
    ::kernelet::testing::MemoryKeeper keeper;
    bool ready = false;
    std::string setup_error;

    void init() {
      std::string id = std::to_string(::getpid());
      base = "/tmp/kernelet-lr-" + id;
      bridge = "klr" + std::to_string(::getpid() % 100000);
      config.root_dir = base + "/root";
      config.run_dir = base + "/run";
      config.cgroup_root = "/kernelet-lr-" + id;
      config.seccomp_default = true;
      fs::create_directories(config.root_dir);
      auto h = cgroups::detect();
      if (!h) {
        setup_error = h.error().message();
        return;
      }
      cgroup_mount = h->mount;
      if (auto q = cgroups::ensureQosTree(cgroup_mount, config.cgroup_root,
                                          cgroups::kRequiredControllers);
          !q) {
        setup_error = q.error().message();
        return;
      }
      loop = std::make_unique<EventLoop>(EventLoop::create().value());
      timers = TimerQueue::create(*loop).value();
      net.bridge = bridge;
      net.pod_cidr = "10.203.0.0/24";
      net.run_dir = config.run_dir + "/netns";
      net.state_dir = config.root_dir + "/ipam";
      auto n = netns::Network::open(net);
      if (!n) {
        setup_error = n.error().message();
        return;
      }
      network = std::make_unique<netns::Network>(std::move(*n));
      images = std::make_unique<images::ImageStore>(
          images::ImageStore::open(config.root_dir + "/images").value());
      if (auto imp = images->importLayout(std::string(KERNELET_FIXTURES) + "/oci/busybox"); !imp) {
        setup_error = imp.error().message();
        return;
      }
      puller = ImagePuller::create(*loop, *images, {}).value();
      ready = true;
    }
    ~Env() {
      puller.reset();
      timers.reset();
      // Whatever a failed case left: the recovery of another boot removes it.
      if (ready) {
        (void)cleanUpLeftovers({.cgroup_mount = cgroup_mount,
                                .cgroup_root = config.cgroup_root,
                                .root_dir = config.root_dir,
                                .run_dir = config.run_dir},
                               network.get());
        if (auto top = cgroups::Cgroup::open(cgroup_mount, config.cgroup_root)) {
          (void)top->remove();
        }
      }
      (void)std::system(("ip link del " + bridge + " 2>/dev/null").c_str());
      std::error_code ec;
      fs::remove_all(base, ec);
    }

    std::unique_ptr<KernelRuntime> runtime() {
      return std::make_unique<KernelRuntime>(
          config, *loop, *timers, *images, *puller,
          SandboxEnv{.config = &config,
                     .cgroup_mount = cgroup_mount,
                     .enforce_limits = true,
                     .network = network.get(),
                     .node_resolv_conf = "nameserver 10.203.0.1\n",
                     .node_hosts = ""},
          NodeResources{.capacity_memory = int64_t{1} << 30}, &keeper);
    }
    // Turns the loop until `done` or 20 s.
    bool turnUntil(const std::function<bool()>& done) {
      auto deadline = Clock::now() + seconds(20);
      while (!done()) {
        if (Clock::now() > deadline) {
          return false;
        }
        (void)loop->runOnce(milliseconds(50));  // a failed turn shows as the deadline
      }
      return true;
    }
  };
  static Env* env_;

  static Pod pod(const std::string& uid, std::vector<std::pair<std::string, std::string>> scripts,
                 int64_t grace = 30) {
    Pod p;
    p.uid = uid;
    p.name = "lr-" + uid;
    p.namespace_ = "default";
    p.termination_grace_period_seconds = grace;
    for (auto& [name, script] : scripts) {
      Container c;
      c.name = name;
      c.image = kImage;
      c.image_pull_policy = "Never";
      c.command = {"sh", "-c", script};
      p.containers.push_back(c);
    }
    return p;
  }

  std::string logDir(const Pod& p, const std::string& name) {
    return env_->config.root_dir + "/logs/" + p.uid + "/" + name;
  }

  // Sandbox, volumes and every container started, watched like a pod worker does.
  std::map<std::string, StartedContainer> startPod(KernelRuntime& rt, const Pod& p) {
    std::map<std::string, StartedContainer> out;
    auto sb = rt.createSandbox(p, QosClass::kBestEffort, "hash-" + p.uid);
    EXPECT_TRUE(sb) << sb.error().message();
    auto v = rt.setUpVolumes(p, {}, nullptr);
    EXPECT_TRUE(v) << v.error().message();
    for (const Container& c : p.containers) {
      std::optional<ImageOutcome> image;
      rt.ensureImage(
          c.image, "Never", {}, [] {}, [&](ImageOutcome o) { image = o; });
      EXPECT_TRUE(image && image->ok) << (image ? image->message : "no answer");
      std::optional<StartResult> started;
      ContainerRequest req{.pod = &p,
                           .container = &c,
                           .qos = QosClass::kBestEffort,
                           .image = image->image,
                           .log_dir = logDir(p, c.name)};
      rt.startContainer(req, [&](StartResult r) { started = std::move(r); });
      EXPECT_TRUE(env_->turnUntil([&] { return started.has_value(); }));
      EXPECT_TRUE(started && *started) << (started && !*started ? started->error().message : "");
      if (started && *started) {
        out[c.name] = **started;
        EXPECT_TRUE(rt.watchExit((*started)->handle, [](ContainerExit) {}));
      }
    }
    return out;
  }

  static bool waitExited(int pid) {
    int fd = sys::pidfdOpen(pid);
    if (fd < 0) {
      return true;
    }
    pollfd p{.fd = fd, .events = POLLIN, .revents = 0};
    bool exited = ::poll(&p, 1, 20000) == 1;
    ::close(fd);
    return exited;
  }
};

LiveRestoreTest::Env* LiveRestoreTest::env_ = nullptr;

TEST_F(LiveRestoreTest, AdoptsWhatThePreviousRuntimeLeftThenStopsItAsALeftover) {
  Pod p = pod("lr-uid-1",
              {{"printer", "i=0; while true; do i=$((i+1)); echo line $i; sleep 0.1; done"},
               {"exiter", "while [ ! -e /tmp/go ]; do sleep 0.05; done; exit 7"}},
              /*grace=*/30);
  std::string printer_log = logDir(p, "printer") + "/0.log";

  // Runtime A starts the pod and goes, leaving it running.
  auto a = env_->runtime();
  auto started = startPod(*a, p);
  ASSERT_EQ(started.size(), 2u);
  const StartedContainer printer = started["printer"], exiter = started["exiter"];
  uint64_t printer_start = isolation::processStartTime(printer.pid);
  ASSERT_NE(printer_start, 0u);
  ASSERT_TRUE(env_->turnUntil([&] { return loggedLines(printer_log).size() >= 3; }));
  // Its output may wait in the pipe while no agent pumps: 1 MiB of it.
  {
    auto kept = env_->keeper.fetch(printer.id);
    ASSERT_TRUE(kept && *kept);
    ASSERT_EQ((*kept)->fds.size(), 2u);
    EXPECT_EQ(::fcntl((*kept)->fds[0].get(), F_GETPIPE_SZ), 1 << 20);
    EXPECT_EQ(::fcntl((*kept)->fds[1].get(), F_GETPIPE_SZ), 1 << 20);
  }
  a->leaveRunning();
  a.reset();
  size_t logged_by_a = loggedLines(printer_log).size();
  EXPECT_EQ(isolation::processStartTime(printer.pid), printer_start) << "A killed the printer";

  // While no runtime is there, the exiter exits with 7 and the printer goes
  // on printing into its pipe.
  std::string exiter_rootfs = env_->config.root_dir + "/containers/" + exiter.id + "/rootfs";
  std::ofstream(exiter_rootfs + "/tmp/go") << "";
  ASSERT_TRUE(waitExited(exiter.pid));

  // Runtime B on the same root and keeper adopts the pod.
  auto b = env_->runtime();
  auto left = b->leftovers();
  ASSERT_EQ(left.size(), 1u);
  EXPECT_EQ(left[0].uid, p.uid);
  auto adopted = b->adopt(p, QosClass::kBestEffort, {}, nullptr);
  ASSERT_TRUE(adopted);
  EXPECT_TRUE(b->leftovers().empty());
  EXPECT_EQ(adopted->pod_hash, "hash-" + p.uid);
  EXPECT_FALSE(adopted->kill_at);
  ASSERT_EQ(adopted->containers.size(), 2u);
  const AdoptedContainer* ap = nullptr;
  const AdoptedContainer* ae = nullptr;
  for (const auto& c : adopted->containers) {
    (c.name == "printer" ? ap : ae) = &c;
  }
  ASSERT_TRUE(ap && ae);
  EXPECT_EQ(ap->id, printer.id);
  EXPECT_NE(ap->handle, 0u);
  EXPECT_FALSE(ap->ended);
  EXPECT_EQ(ap->started_at, printer.started_at);
  EXPECT_EQ(isolation::processStartTime(printer.pid), printer_start) << "not the same process";
  EXPECT_EQ(ae->id, exiter.id);
  EXPECT_EQ(ae->handle, 0u);
  ASSERT_TRUE(ae->ended);
  EXPECT_EQ(ae->ended->exit.exit_code, 7);
  EXPECT_EQ(ae->ended->exit.reason, "Error");
  EXPECT_FALSE(ae->ended->finished_at.empty());
  EXPECT_FALSE(fs::exists(exiter_rootfs)) << "the ended run's rootfs was left";

  // exec works on the adopted handle.
  int out[2];
  ASSERT_EQ(::pipe2(out, O_CLOEXEC | O_NONBLOCK), 0);
  auto ex = b->exec(ap->handle, {"sh", "-c", "echo exec-ok"}, ExecIo::output(out[1]), seconds(10));
  ::close(out[1]);
  ASSERT_TRUE(ex) << ex.error().message();
  // The exec's setup is watched on the loop: turn it until the process exited.
  ASSERT_TRUE(env_->turnUntil([&] {
    pollfd pe{.fd = (*ex)->exitFd(), .events = POLLIN, .revents = 0};
    return ::poll(&pe, 1, 0) == 1;
  }));
  auto status = (*ex)->reap();
  ASSERT_TRUE(status) << status.error().message();
  EXPECT_EQ(*status, 0);
  char buf[64] = {};
  ssize_t n = ::read(out[0], buf, sizeof buf - 1);
  ::close(out[0]);
  EXPECT_EQ(std::string(buf, n > 0 ? static_cast<size_t>(n) : 0), "exec-ok\n");

  // Every line, in order, once: those A wrote, those that waited in the pipe,
  // those B writes.
  EXPECT_TRUE(b->watchExit(ap->handle, [](ContainerExit) {}));
  size_t target = logged_by_a + 10;
  ASSERT_TRUE(env_->turnUntil([&] { return loggedLines(printer_log).size() >= target; }));
  std::vector<int> lines = loggedLines(printer_log);
  for (size_t i = 0; i < lines.size(); i++) {
    ASSERT_EQ(lines[i], static_cast<int>(i) + 1) << "gap or duplicate at message " << i;
  }

  // B starts terminating the pod (2 s left of its grace period) and goes
  // too; runtime C finds the pod a leftover (its source is gone) and stops
  // it: SIGTERM, which the shell as pid 1 ignores, then SIGKILL when B's
  // grace period ends - not after the pod's whole 30 s.
  b->noteTerminating(p.uid, std::chrono::system_clock::now() + seconds(2));
  b->leaveRunning();
  b.reset();
  auto c = env_->runtime();
  ASSERT_EQ(c->leftovers().size(), 1u);
  std::string record = recordPath(env_->config.root_dir, p.uid);
  auto rec = readPodRecord(record);
  ASSERT_TRUE(rec) << rec.error().message();
  EXPECT_TRUE(rec->kill_at_unix_ms);
  bool stopped = false;
  auto t0 = Clock::now();
  c->stopLeftover(p.uid, [&] { stopped = true; });
  ASSERT_TRUE(env_->turnUntil([&] { return stopped; }));
  auto took = Clock::now() - t0;
  EXPECT_GE(took, milliseconds(1500));
  EXPECT_LT(took, seconds(8));
  EXPECT_TRUE(c->leftovers().empty());
  EXPECT_TRUE(waitExited(printer.pid));
  EXPECT_FALSE(fs::exists(rec->cgroup)) << rec->cgroup;
  EXPECT_FALSE(fs::exists(rec->run_dir)) << rec->run_dir;
  EXPECT_FALSE(fs::exists(rec->netns_path)) << rec->netns_path;
  EXPECT_FALSE(fs::exists("/sys/class/net/" + netns::Network::hostVethName(p.uid)));
  EXPECT_FALSE(fs::exists(record));
  EXPECT_FALSE(fs::exists(env_->config.root_dir + "/containers/" + printer.id));
  EXPECT_FALSE(mountedUnder(env_->config.root_dir));
  EXPECT_FALSE(mountedUnder(env_->config.run_dir + "/pods"));
  EXPECT_EQ(env_->keeper.size(), 0u);
  // The printer's last lines reached its log before it went, still in order.
  lines = loggedLines(printer_log);
  EXPECT_GT(lines.size(), target);
  for (size_t i = 0; i < lines.size(); i++) {
    ASSERT_EQ(lines[i], static_cast<int>(i) + 1) << "gap or duplicate at message " << i;
  }
}

// A run whose log pipes the keeper lost cannot be kept (its output would go
// nowhere): it is killed and reported unknown. A pod whose sandbox lost a
// namespace is not adopted at all but removed, so that it starts anew.
TEST_F(LiveRestoreTest, ARunThatEndedWhileNoAgentWatchedHasItsTerminationMessage) {
  const std::string wait = "while [ ! -e /tmp/go ]; do sleep 0.05; done; ";
  Pod p = pod("lr-uid-tm", {{"writer", wait + "echo gone for good > /dev/termination-log; exit 3"},
                            {"logger", wait + "echo last words; exit 4"}});
  p.containers[1].termination_message_policy = "FallbackToLogsOnError";
  auto a = env_->runtime();
  auto started = startPod(*a, p);
  ASSERT_EQ(started.size(), 2u);
  // Each run's file: fresh, empty, writable by anyone, under the pod's dir.
  std::string dir = env_->config.root_dir + "/pods/" + p.uid + "/containers";
  std::vector<std::string> files;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (e.is_regular_file()) {
      files.push_back(e.path().string());
      EXPECT_EQ(fs::file_size(e.path()), 0u);
      EXPECT_EQ(fs::status(e.path()).permissions() & fs::perms::all, static_cast<fs::perms>(0666));
    }
  }
  EXPECT_EQ(files.size(), 2u);
  a->leaveRunning();
  a.reset();
  for (const auto& [name, run] : started) {
    std::ofstream(env_->config.root_dir + "/containers/" + run.id + "/rootfs/tmp/go") << "";
  }
  ASSERT_TRUE(waitExited(started["writer"].pid));
  ASSERT_TRUE(waitExited(started["logger"].pid));

  auto b = env_->runtime();
  auto adopted = b->adopt(p, QosClass::kBestEffort, {}, nullptr);
  ASSERT_TRUE(adopted);
  ASSERT_EQ(adopted->containers.size(), 2u);
  for (const auto& c : adopted->containers) {
    ASSERT_TRUE(c.ended) << c.name;
    if (c.name == "writer") {
      EXPECT_EQ(c.ended->exit.exit_code, 3);
      EXPECT_EQ(c.ended->exit.message, "gone for good\n");
    } else {
      EXPECT_EQ(c.ended->exit.exit_code, 4);
      EXPECT_EQ(c.ended->exit.message, "last words\n") << "the log's tail";
    }
  }
  for (const auto& f : files) {
    EXPECT_FALSE(fs::exists(f)) << "read once, then removed: " << f;
  }
  bool done = false;
  b->destroySandbox(p.uid, [&] { done = true; });
  ASSERT_TRUE(env_->turnUntil([&] { return done; }));
  EXPECT_FALSE(fs::exists(dir));
}

TEST_F(LiveRestoreTest, WhatCannotBeKeptIsKilledOrRemoved) {
  Pod p = pod("lr-uid-3", {{"sleeper", "sleep 1000"}});
  Pod q = pod("lr-uid-4", {{"sleeper", "sleep 1000"}});
  auto a = env_->runtime();
  auto in_p = startPod(*a, p);
  auto in_q = startPod(*a, q);
  ASSERT_EQ(in_p.size(), 1u);
  ASSERT_EQ(in_q.size(), 1u);
  a->leaveRunning();
  a.reset();
  env_->keeper.dropFds(in_p["sleeper"].id);
  auto q_rec = readPodRecord(recordPath(env_->config.root_dir, q.uid));
  ASSERT_TRUE(q_rec) << q_rec.error().message();
  std::string uts = q_rec->run_dir + "/uts";
  ASSERT_EQ(::umount2(uts.c_str(), MNT_DETACH), 0);

  auto b = env_->runtime();
  auto adopted = b->adopt(p, QosClass::kBestEffort, {}, nullptr);
  ASSERT_TRUE(adopted);
  ASSERT_EQ(adopted->containers.size(), 1u);
  const AdoptedContainer& c = adopted->containers[0];
  EXPECT_EQ(c.handle, 0u);
  ASSERT_TRUE(c.ended);
  EXPECT_EQ(c.ended->exit.exit_code, 137);
  EXPECT_EQ(c.ended->exit.reason, "ContainerStatusUnknown");
  EXPECT_TRUE(waitExited(in_p["sleeper"].pid));
  EXPECT_FALSE(fs::exists(env_->config.root_dir + "/containers/" + in_p["sleeper"].id));

  EXPECT_FALSE(b->adopt(q, QosClass::kBestEffort, {}, nullptr));
  EXPECT_TRUE(waitExited(in_q["sleeper"].pid));
  EXPECT_FALSE(fs::exists(q_rec->cgroup));
  EXPECT_FALSE(fs::exists(q_rec->netns_path));
  EXPECT_FALSE(fs::exists(recordPath(env_->config.root_dir, q.uid)));
  EXPECT_FALSE(fs::exists(env_->config.root_dir + "/containers/" + in_q["sleeper"].id));
  EXPECT_FALSE(mountedUnder(q_rec->run_dir));
  EXPECT_TRUE(b->leftovers().empty());

  // p's sandbox is b's now: its removal leaves nothing.
  bool removed = false;
  b->destroySandbox(p.uid, [&] { removed = true; });
  ASSERT_TRUE(env_->turnUntil([&] { return removed; }));
  EXPECT_FALSE(fs::exists(recordPath(env_->config.root_dir, p.uid)));
  EXPECT_FALSE(mountedUnder(env_->config.root_dir));
  for (int pid : {in_p["sleeper"].pid, in_q["sleeper"].pid}) {
    ::waitpid(pid, nullptr, 0);  // the test process is their parent
  }
  EXPECT_EQ(env_->keeper.size(), 0u);
}

TEST_F(LiveRestoreTest, RecoveryKeepsAdoptablePodsAndRemovesTheRest) {
  Pod p = pod("lr-uid-2", {{"sleeper", "sleep 1000"}});
  auto a = env_->runtime();
  auto started = startPod(*a, p);
  ASSERT_EQ(started.size(), 1u);
  int pid = started["sleeper"].pid;
  a->leaveRunning();
  a.reset();
  std::string record = recordPath(env_->config.root_dir, p.uid);
  auto rec = readPodRecord(record);
  ASSERT_TRUE(rec) << rec.error().message();

  // A torn record and one of a future version, each in a pod dir of its own.
  std::string root = env_->config.root_dir;
  fs::create_directories(root + "/pods/lr-torn");
  std::string torn = recordPath(root, "lr-torn");
  std::string text = toJson(*rec);
  ASSERT_TRUE(writeFileAtomic(torn, text.substr(0, text.size() / 2), 0600, Sync::kNone));
  fs::create_directories(root + "/pods/lr-future");
  std::string future = recordPath(root, "lr-future");
  std::string future_text = text;
  future_text.replace(future_text.find("\"version\":1"), 11, "\"version\":9");
  ASSERT_TRUE(writeFileAtomic(future, future_text, 0600, Sync::kNone));

  LeftoverPaths paths{.cgroup_mount = env_->cgroup_mount,
                      .cgroup_root = env_->config.cgroup_root,
                      .root_dir = root,
                      .run_dir = env_->config.run_dir,
                      .keep_adoptable = true};
  Recovered kept = cleanUpLeftovers(paths, env_->network.get());
  EXPECT_EQ(kept.kept, std::set<std::string>{p.uid});
  std::string errors;
  for (const auto& e : kept.errors) {
    errors += e + "\n";
  }
  EXPECT_NE(errors.find(torn), std::string::npos) << errors;
  EXPECT_NE(errors.find(future), std::string::npos) << errors;
  EXPECT_NE(errors.find("version 9"), std::string::npos) << errors;
  EXPECT_FALSE(fs::exists(root + "/pods/lr-torn"));
  EXPECT_FALSE(fs::exists(root + "/pods/lr-future"));
  // The adoptable pod is untouched.
  EXPECT_EQ(isolation::processStartTime(pid), rec->containers["sleeper"].latest->start_time);
  EXPECT_TRUE(fs::exists(rec->cgroup));
  EXPECT_TRUE(fs::exists(rec->netns_path));
  EXPECT_TRUE(fs::exists(record));
  EXPECT_TRUE(mountedUnder(root + "/containers"));

  // After a reboot (another boot id) nothing of it may be adopted: all goes.
  paths.boot_id = "another-boot";
  Recovered rebooted = cleanUpLeftovers(paths, env_->network.get());
  EXPECT_TRUE(rebooted.kept.empty());
  EXPECT_TRUE(rebooted.errors.empty()) << rebooted.errors.front();
  EXPECT_TRUE(waitExited(pid));
  EXPECT_FALSE(fs::exists(rec->cgroup));
  EXPECT_FALSE(fs::exists(rec->netns_path));
  EXPECT_FALSE(fs::exists("/sys/class/net/" + netns::Network::hostVethName(p.uid)));
  EXPECT_FALSE(fs::exists(root + "/pods/" + p.uid));
  EXPECT_FALSE(mountedUnder(root));
  EXPECT_FALSE(mountedUnder(env_->config.run_dir + "/pods"));
  // The test process is the sleeper's parent: reap it.
  ::waitpid(pid, nullptr, 0);
  for (auto& [id, run] : started) {
    env_->keeper.forget(run.id);
  }
  // A runtime started now finds nothing to adopt.
  EXPECT_TRUE(env_->runtime()->leftovers().empty());
}

}  // namespace
}  // namespace kernelet::agent::runtime
