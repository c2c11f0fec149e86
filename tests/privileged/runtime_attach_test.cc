// Containers with stdin and tty in the runtime, in the test VM: the stdin
// pipe reaches the container, a terminal's output is in the CRI log as
// stdout, attach sessions get the output from then on, a session that does
// not read is cut off while the log goes on, stdinOnce closes stdin, and
// stdin and the terminal survive a runtime restart through the keeper (the
// new runtime's sessions work as the old one's did). One pod for all cases,
// started by the first and adopted by the last.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "agent/runtime/kernel_runtime.h"
#include "agent/runtime/recovery.h"
#include "cgroups/cgroups.h"
#include "support/memory_keeper.h"
#include "support/privileged.h"

namespace kernelet::agent::runtime {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using std::chrono::seconds;

const std::string kImage = "fixtures.kernelet.test/busybox:latest";

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

struct Pipe {
  UniqueFd r, w;
  static Pipe make() {
    int p[2];
    EXPECT_EQ(::pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
    return {UniqueFd(p[0]), UniqueFd(p[1])};
  }
};

class AttachRuntimeTest : public ::testing::Test {
 protected:
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
    std::unique_ptr<KernelRuntime> rt;
    Pod pod;
    std::map<std::string, StartedContainer> started;
    std::string error;

    Result<void> init() {
      std::string id = std::to_string(::getpid());
      base = "/tmp/kernelet-at-" + id;
      bridge = "kat" + std::to_string(::getpid() % 100000);
      config.root_dir = base + "/root";
      config.run_dir = base + "/run";
      config.cgroup_root = "/kernelet-at-" + id;
      fs::create_directories(config.root_dir);
      TRY(auto h, cgroups::detect());
      cgroup_mount = h.mount;
      TRY_VOID(
          cgroups::ensureQosTree(cgroup_mount, config.cgroup_root, cgroups::kRequiredControllers));
      TRY(EventLoop l, EventLoop::create());
      loop = std::make_unique<EventLoop>(std::move(l));
      TRY(timers, TimerQueue::create(*loop));
      net.bridge = bridge;
      net.pod_cidr = "10.204.0.0/24";
      net.run_dir = config.run_dir + "/netns";
      net.state_dir = config.root_dir + "/ipam";
      TRY(netns::Network n, netns::Network::open(net));
      network = std::make_unique<netns::Network>(std::move(n));
      TRY(images::ImageStore s, images::ImageStore::open(config.root_dir + "/images"));
      images = std::make_unique<images::ImageStore>(std::move(s));
      TRY_VOID(images->importLayout(std::string(KERNELET_FIXTURES) + "/oci/busybox"));
      TRY(puller, ImagePuller::create(*loop, *images, {}));
      return {};
    }
    ~Env() {
      rt.reset();
      puller.reset();
      timers.reset();
      if (!cgroup_mount.empty()) {
        (void)cleanUpLeftovers({.cgroup_mount = cgroup_mount,
                                .cgroup_root = config.cgroup_root,
                                .root_dir = config.root_dir,
                                .run_dir = config.run_dir},
                               network.get());  // what a failed case left
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
                     .node_resolv_conf = "nameserver 10.204.0.1\n",
                     .node_hosts = ""},
          NodeResources{.capacity_memory = int64_t{1} << 30}, &keeper);
    }
    bool turnUntil(const std::function<bool()>& done, seconds limit = seconds(20)) {
      auto deadline = Clock::now() + limit;
      while (!done()) {
        if (Clock::now() > deadline) {
          return false;
        }
        (void)loop->runOnce(milliseconds(20));  // a failed turn shows as the deadline
      }
      return true;
    }
    std::string logOf(const std::string& name) {
      return slurp(config.root_dir + "/logs/" + pod.uid + "/" + name + "/0.log");
    }
  };
  static Env* env_;

  static void SetUpTestSuite() {
    if (!::kernelet::testing::privilegedUnavailableReason().empty()) {
      return;
    }
    env_ = new Env();
    if (auto r = env_->init(); !r) {
      env_->error = r.error().message();
      return;
    }
    Pod& p = env_->pod;
    p.uid = "at-uid-1";
    p.name = "attach";
    p.namespace_ = "default";
    auto add = [&](const std::string& name, const std::string& script, bool in, bool once,
                   bool tty) {
      Container c{.name = name, .image = kImage, .command = {"sh", "-c", script}};
      c.image_pull_policy = "Never";
      c.stdin = in;
      c.stdin_once = once;
      c.tty = tty;
      p.containers.push_back(c);
    };
    add("cat", "cat", true, false, false);
    add("tty", "exec sh", true, false, true);
    add("flood", "i=0; while :; do i=$((i+1)); echo line $i; done", false, false, false);
    add("once", "cat; echo stdin-ended-$?; exec sleep 3600", true, true, false);
    env_->rt = env_->runtime();
    env_->error = startPod();
  }
  static std::string startPod() {
    KernelRuntime& rt = *env_->rt;
    const Pod& p = env_->pod;
    if (auto sb = rt.createSandbox(p, QosClass::kBestEffort, "hash"); !sb) {
      return sb.error().message();
    }
    if (auto v = rt.setUpVolumes(p, {}, nullptr); !v) {
      return v.error().message();
    }
    for (const Container& c : p.containers) {
      std::optional<ImageOutcome> image;
      rt.ensureImage(
          c.image, "Never", {}, [] {}, [&](ImageOutcome o) { image = o; });
      if (!image || !image->ok) {
        return "image: " + (image ? image->message : "no answer");
      }
      std::optional<StartResult> started;
      ContainerRequest req{.pod = &p,
                           .container = &c,
                           .image = image->image,
                           .log_dir = env_->config.root_dir + "/logs/" + p.uid + "/" + c.name};
      rt.startContainer(req, [&](StartResult r) { started = std::move(r); });
      if (!env_->turnUntil([&] { return started.has_value(); }) || !*started) {
        return "start " + c.name + ": " + (started ? started->error().message : "no answer");
      }
      env_->started[c.name] = **started;
      if (auto w = rt.watchExit((*started)->handle, [](ContainerExit) {}); !w) {
        return w.error().message();
      }
    }
    return "";
  }
  static void TearDownTestSuite() {
    delete env_;
    env_ = nullptr;
  }
  void SetUp() override {
    KERNELET_REQUIRE_PRIVILEGED();
    ASSERT_NE(env_, nullptr);
    ASSERT_EQ(env_->error, "");
  }

  ContainerHandle handle(const std::string& name) { return env_->started[name].handle; }

  // Reads `fd` on the loop until `want` is in what came, or its end.
  std::string readUntil(int fd, const std::string& want, bool* eof = nullptr) {
    std::string got;
    bool ended = false;
    env_->turnUntil([&] {
      char buf[4096];
      ssize_t n;
      while ((n = ::read(fd, buf, sizeof buf)) > 0) {
        got.append(buf, static_cast<size_t>(n));
      }
      ended = n == 0;
      return ended || got.find(want) != std::string::npos;
    });
    if (eof != nullptr) {
      *eof = ended;
    }
    return got;
  }
};

AttachRuntimeTest::Env* AttachRuntimeTest::env_ = nullptr;

TEST_F(AttachRuntimeTest, StdinReachesTheContainerAndTheSessionGetsItsOutput) {
  Pipe out = Pipe::make();
  bool ended = false;
  auto a = env_->rt->attach(handle("cat"), {.stdout_fd = out.w.get(), .stdin = true},
                            [&] { ended = true; });
  ASSERT_TRUE(a) << a.error().message();
  out.w.reset();
  ASSERT_TRUE(a->stdin_fd);
  EXPECT_FALSE(a->terminal_fd);
  ASSERT_EQ(::write(a->stdin_fd.get(), "hello cat\n", 10), 10);
  EXPECT_EQ(readUntil(out.r.get(), "hello cat\n"), "hello cat\n");
  ASSERT_TRUE(env_->turnUntil(
      [] { return env_->logOf("cat").find(" stdout F hello cat\n") != std::string::npos; }));
  env_->rt->detach(handle("cat"), a->session);
  bool eof = false;
  readUntil(out.r.get(), "-", &eof);
  EXPECT_TRUE(eof) << "detach closes the session's pipes";
  EXPECT_FALSE(ended);
}

TEST_F(AttachRuntimeTest, ATerminalIsTheContainersStdioAndItsOutputIsLoggedAsStdout) {
  Pipe out = Pipe::make();
  auto a = env_->rt->attach(handle("tty"), {.stdout_fd = out.w.get(), .stdin = true}, [] {});
  ASSERT_TRUE(a) << a.error().message();
  out.w.reset();
  ASSERT_TRUE(a->stdin_fd && a->terminal_fd);
  EXPECT_TRUE(isatty(a->terminal_fd.get()));
  std::string cmd = "tty; echo tty-$((6*7))\n";
  ASSERT_EQ(::write(a->stdin_fd.get(), cmd.data(), cmd.size()), static_cast<ssize_t>(cmd.size()));
  std::string got = readUntil(out.r.get(), "tty-42\r\n");
  EXPECT_NE(got.find("/dev/pts/0\r\n"), std::string::npos) << got;  // the container's devpts
  ASSERT_TRUE(env_->turnUntil([] {
    return env_->logOf("tty").find(" stdout F tty-42\n") != std::string::npos;
  })) << env_->logOf("tty");
  EXPECT_EQ(env_->logOf("tty").find(" stderr "), std::string::npos);
  env_->rt->detach(handle("tty"), a->session);
}

TEST_F(AttachRuntimeTest, ASessionThatDoesNotReadIsCutOffWhileTheLogGoesOn) {
  Pipe slow = Pipe::make(), fast = Pipe::make();
  auto s = env_->rt->attach(handle("flood"), {.stdout_fd = slow.w.get()}, [] {});
  auto f = env_->rt->attach(handle("flood"), {.stdout_fd = fast.w.get()}, [] {});
  ASSERT_TRUE(s && f);
  slow.w.reset();
  fast.w.reset();
  // The slow one never reads until it is closed; the fast one reads on.
  size_t fast_got = 0;
  bool cut = false;
  ASSERT_TRUE(env_->turnUntil([&] {
    char buf[65536];
    ssize_t n;
    while ((n = ::read(fast.r.get(), buf, sizeof buf)) > 0) {
      fast_got += static_cast<size_t>(n);
    }
    pollfd p{.fd = slow.r.get(), .events = POLLIN};
    // POLLHUP: the runtime closed its end (cut off); what is in it remains.
    cut = ::poll(&p, 1, 0) == 1 && (p.revents & POLLHUP) != 0;
    return cut;
  })) << "a full session was never cut off";
  auto logged_size = [] {
    std::error_code ec;
    auto n = fs::file_size(env_->config.root_dir + "/logs/" + env_->pod.uid + "/flood/0.log", ec);
    return ec ? 0 : static_cast<size_t>(n);
  };
  size_t logged = logged_size();
  size_t fast_then = fast_got;
  ASSERT_TRUE(env_->turnUntil([&] {
    char buf[65536];
    ssize_t n;
    while ((n = ::read(fast.r.get(), buf, sizeof buf)) > 0) {
      fast_got += static_cast<size_t>(n);
    }
    return fast_got > fast_then + 100000 && logged_size() > logged + 100000;
  })) << "the log or the reader that keeps up stopped with the cut";
  env_->rt->detach(handle("flood"), s->session);
  // The flood ends here (the other cases need the VM's time): the reader
  // still attached sees its end.
  ASSERT_TRUE(env_->rt->kill(handle("flood")));
  bool eof = false;
  ASSERT_TRUE(env_->turnUntil([&] {
    char buf[65536];
    ssize_t n;
    while ((n = ::read(fast.r.get(), buf, sizeof buf)) > 0) {
    }
    eof = n == 0;
    return eof;
  }));
}

// The stdin and the terminal the keeper held come back to a new runtime:
// sessions join them as before, the terminal's output is still logged.
TEST_F(AttachRuntimeTest, StdinAndTheTerminalSurviveARuntimeRestart) {
  env_->rt->leaveRunning();
  env_->rt.reset();
  env_->rt = env_->runtime();
  auto adopted = env_->rt->adopt(env_->pod, QosClass::kBestEffort, {}, nullptr);
  ASSERT_TRUE(adopted);
  for (const AdoptedContainer& c : adopted->containers) {
    if (c.name == "flood") {
      continue;  // killed above
    }
    ASSERT_NE(c.handle, 0u) << c.name << " did not survive";
    env_->started[c.name].handle = c.handle;
    ASSERT_TRUE(env_->rt->watchExit(c.handle, [](ContainerExit) {}));
  }
  Pipe out = Pipe::make();
  auto a = env_->rt->attach(handle("cat"), {.stdout_fd = out.w.get(), .stdin = true}, [] {});
  ASSERT_TRUE(a) << a.error().message();
  out.w.reset();
  ASSERT_EQ(::write(a->stdin_fd.get(), "again\n", 6), 6);
  EXPECT_EQ(readUntil(out.r.get(), "again\n"), "again\n");
  env_->rt->detach(handle("cat"), a->session);

  Pipe tout = Pipe::make();
  auto t = env_->rt->attach(handle("tty"), {.stdout_fd = tout.w.get(), .stdin = true}, [] {});
  ASSERT_TRUE(t) << t.error().message();
  tout.w.reset();
  std::string cmd = "echo adopted-$((6*7))\n";
  ASSERT_EQ(::write(t->stdin_fd.get(), cmd.data(), cmd.size()), static_cast<ssize_t>(cmd.size()));
  EXPECT_NE(readUntil(tout.r.get(), "adopted-42\r\n").find("adopted-42\r\n"), std::string::npos);
  ASSERT_TRUE(env_->turnUntil(
      [] { return env_->logOf("tty").find(" stdout F adopted-42\n") != std::string::npos; }));
  env_->rt->detach(handle("tty"), t->session);
}

// stdinOnce (without a terminal): the end of the first session that sent
// stdin closes it for good, and the container reads its end of file - also
// after a restart, with the keeper's copy of stdin let go.
TEST_F(AttachRuntimeTest, StdinOnceClosesStdinWhenTheSessionEnds) {
  Pipe out = Pipe::make();
  bool ended = false;
  auto a = env_->rt->attach(handle("once"), {.stdout_fd = out.w.get(), .stdin = true},
                            [&] { ended = true; });
  ASSERT_TRUE(a) << a.error().message();
  out.w.reset();
  ASSERT_EQ(::write(a->stdin_fd.get(), "last words\n", 11), 11);
  EXPECT_EQ(readUntil(out.r.get(), "last words\n"), "last words\n");
  a->stdin_fd.reset();  // the endpoint's copy goes when the client's stdin ends
  env_->rt->detach(handle("once"), a->session);
  ASSERT_TRUE(env_->turnUntil([] {
    return env_->logOf("once").find(" stdout F stdin-ended-0\n") != std::string::npos;
  })) << env_->logOf("once");
  // containerd's: a later session asking for stdin joins, without it (the
  // container sleeps after its echo, so that it is still there to join).
  auto again = env_->rt->attach(handle("once"), {.stdin = true}, [] {});
  ASSERT_TRUE(again) << again.error().message();
  EXPECT_FALSE(again->stdin_fd);
  env_->rt->detach(handle("once"), again->session);
}

// Review proof: a container in another's PID namespace (shareProcessNamespace,
// or an ephemeral container's targetContainerName) whose main process exits
// leaves what it started running until release() kills its cgroup - after
// the log's finish(). One left behind that floods its stdout held the agent's
// loop in finish() for as long as it wrote, i.e. for ever (fixed on review3:
// finish() drains what was there plus one look).
TEST_F(AttachRuntimeTest, ReviewAFloodingProcessLeftInASharedPidNamespaceDoesNotHoldTheLoop) {
  KernelRuntime& rt = *env_->rt;
  static const Container leaver{.name = "leaver",
                                .image = kImage,
                                .command = {"sh", "-c", "sleep 4321 & yes & sleep 1; echo bye"}};
  const_cast<Container&>(leaver).image_pull_policy = "Never";
  std::optional<ImageOutcome> image;
  rt.ensureImage(
      leaver.image, "Never", {}, [] {}, [&](ImageOutcome o) { image = o; });
  ASSERT_TRUE(image && image->ok);
  std::optional<StartResult> started;
  ContainerRequest req{.pod = &env_->pod,
                       .container = &leaver,
                       .image = image->image,
                       .log_dir = env_->config.root_dir + "/logs/" + env_->pod.uid + "/leaver",
                       .share_pid_with = handle("cat")};
  rt.startContainer(req, [&](StartResult r) { started = std::move(r); });
  ASSERT_TRUE(env_->turnUntil([&] { return started.has_value(); }) && *started);
  bool exited = false;
  ASSERT_TRUE(rt.watchExit((*started)->handle, [&](ContainerExit) { exited = true; }));
  auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(env_->turnUntil([&] { return exited; }));
  double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_LT(took, 5.0) << "the exit took " << took << " s of the agent's loop";
  std::vector<int> left;
  for (const auto& e : std::filesystem::directory_iterator("/proc")) {
    std::string pid = e.path().filename().string();
    if (pid.find_first_not_of("0123456789") != std::string::npos) {
      continue;
    }
    std::ifstream f(e.path() / "cmdline");
    std::string cmd((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    if (cmd == std::string("sleep\0"
                           "4321\0",
                           11)) {
      left.push_back(std::stoi(pid));
    }
  }
  for (int pid : left) {
    ::kill(pid, SIGKILL);
  }
  EXPECT_TRUE(left.empty()) << left.size()
                            << " process(es) of the exited container still run in the pod";
}

}  // namespace
}  // namespace kernelet::agent::runtime
