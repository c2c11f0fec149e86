// KernelRuntime::exec with the stdio kubectl exec needs, in the test VM: a
// terminal made in the container (its master over the console socket), or
// pipes for stdin, stdout and stderr; the exec child cannot be inspected from
// the container while it sets up.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
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
#include "cgroups/cgroups.h"
#include "isolation/terminal.h"
#include "support/privileged.h"

namespace kernelet::agent::runtime {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using std::chrono::seconds;

const std::string kImage = "fixtures.kernelet.test/busybox:latest";

// Everything non-blocking `fd` has now, appended to `out`; false at its end.
bool drain(int fd, std::string& out) {
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n > 0) {
      out.append(buf, static_cast<size_t>(n));
      continue;
    }
    return n < 0 && errno == EAGAIN;  // 0, or EIO from a master whose slave closed: the end
  }
}

bool readable(int fd) {
  pollfd p{.fd = fd, .events = POLLIN, .revents = 0};
  return ::poll(&p, 1, 0) == 1;
}

class RuntimeExecTest : public ::testing::Test {
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
    rt_ = env_->runtime();
  }
  void TearDown() override {
    for (const auto& [uid, h] : pods_) {
      (void)rt_->kill(h);  // gone already if it ended
      bool removed = false;
      rt_->destroySandbox(uid, [&] { removed = true; });
      EXPECT_TRUE(env_->turnUntil([&] { return removed; }));
    }
    rt_.reset();
  }

  struct Env {
    std::string base, cgroup_mount;
    AgentConfig config;
    std::unique_ptr<EventLoop> loop;
    std::unique_ptr<TimerQueue> timers;
    std::unique_ptr<images::ImageStore> images;
    std::unique_ptr<ImagePuller> puller;
    bool ready = false;
    std::string setup_error;

    void init() {
      std::string id = std::to_string(::getpid());
      base = "/tmp/kernelet-exec-" + id;
      config.root_dir = base + "/root";
      config.run_dir = base + "/run";
      config.cgroup_root = "/kernelet-exec-" + id;
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
      if (ready) {
        (void)cleanUpLeftovers({.cgroup_mount = cgroup_mount,
                                .cgroup_root = config.cgroup_root,
                                .root_dir = config.root_dir,
                                .run_dir = config.run_dir},
                               nullptr);
        if (auto top = cgroups::Cgroup::open(cgroup_mount, config.cgroup_root)) {
          (void)top->remove();
        }
      }
      std::error_code ec;
      fs::remove_all(base, ec);
    }
    // Host-network pods: no bridge is needed to exec into them.
    std::unique_ptr<KernelRuntime> runtime() {
      return std::make_unique<KernelRuntime>(
          config, *loop, *timers, *images, *puller,
          SandboxEnv{.config = &config,
                     .cgroup_mount = cgroup_mount,
                     .enforce_limits = true,
                     .network = nullptr,
                     .node_resolv_conf = "nameserver 10.203.0.1\n",
                     .node_hosts = ""},
          NodeResources{.capacity_memory = int64_t{1} << 30});
    }
    // Turns the loop until `done` or 20 s.
    bool turnUntil(const std::function<bool()>& done) {
      auto deadline = Clock::now() + seconds(20);
      while (!done()) {
        if (Clock::now() > deadline) {
          return false;
        }
        (void)loop->runOnce(milliseconds(20));  // a failed turn shows as the deadline
      }
      return true;
    }
  };
  static Env* env_;

  // A one-container host-network pod running `script`; its handle. `exited`
  // is set when the container ends.
  ContainerHandle startPod(const std::string& uid, const std::string& script,
                           bool* exited = nullptr) {
    Pod& p = pods_store_.emplace_back();
    p.uid = uid;
    p.name = "exec-" + uid;
    p.namespace_ = "default";
    p.host_network = true;
    Container& c = p.containers.emplace_back();
    c.name = "app";
    c.image = kImage;
    c.image_pull_policy = "Never";
    c.command = {"sh", "-c", script};
    auto sb = rt_->createSandbox(p, QosClass::kBestEffort, "hash-" + uid);
    EXPECT_TRUE(sb) << sb.error().message();
    auto v = rt_->setUpVolumes(p, {}, nullptr);
    EXPECT_TRUE(v) << v.error().message();
    std::optional<ImageOutcome> image;
    rt_->ensureImage(
        c.image, "Never", {}, [] {}, [&](ImageOutcome o) { image = o; });
    EXPECT_TRUE(image && image->ok);
    std::optional<StartResult> started;
    ContainerRequest req{.pod = &p,
                         .container = &c,
                         .qos = QosClass::kBestEffort,
                         .image = image->image,
                         .log_dir = logDir(uid)};
    rt_->startContainer(req, [&](StartResult r) { started = std::move(r); });
    EXPECT_TRUE(env_->turnUntil([&] { return started.has_value(); }));
    if (!started || !*started) {
      ADD_FAILURE() << (started ? started->error().message : "no answer");
      return 0;
    }
    ContainerHandle h = (*started)->handle;
    pods_.emplace_back(uid, h);
    EXPECT_TRUE(rt_->watchExit(h, [exited](ContainerExit) {
      if (exited != nullptr) {
        *exited = true;
      }
    }));
    return h;
  }
  std::string logDir(const std::string& uid) {
    return env_->config.root_dir + "/logs/" + uid + "/app";
  }
  // Turns the loop until the exec ended; its status.
  Result<int> finish(ExecProcess& e) {
    if (!env_->turnUntil([&] { return readable(e.exitFd()); })) {
      return makeError("exec", "", "did not end within 20 s");
    }
    return e.reap();
  }

  std::unique_ptr<KernelRuntime> rt_;
  std::deque<Pod> pods_store_;
  std::vector<std::pair<std::string, ContainerHandle>> pods_;
};

RuntimeExecTest::Env* RuntimeExecTest::env_ = nullptr;

// kubectl exec -it: the terminal is the container's, its master comes over
// the console socket, the first window is set before exec and later ones
// through the master.
TEST_F(RuntimeExecTest, ATtyExecGetsATerminalOfTheContainer) {
  ContainerHandle h = startPod("tty", "exec sleep 600");
  ASSERT_NE(h, 0u);
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  UniqueFd ours(sv[0]), theirs(sv[1]);
  std::optional<Result<void>> started;
  ExecIo io;
  io.tty = true;
  io.console_socket = theirs.get();
  io.rows = 33;
  io.cols = 101;
  io.started = [&](Result<void> r) { started = std::move(r); };
  auto e = rt_->exec(h, {"sh"}, io, seconds(20));
  ASSERT_TRUE(e) << e.error().message();
  theirs.reset();
  ASSERT_TRUE(env_->turnUntil([&] { return started.has_value(); }));
  ASSERT_TRUE(*started) << started->error().message();
  auto t = isolation::receiveTerminal(ours.get());
  ASSERT_TRUE(t) << t.error().message();
  EXPECT_EQ(t->name, "/dev/pts/0");
  int m = t->master.get();
  ASSERT_EQ(::fcntl(m, F_SETFL, O_NONBLOCK), 0);

  std::string cmd =
      "stty size; tty; set -- $(cat /proc/$$/stat); echo \"pid=$1 sid=$6 tty_nr=$7\"\n";
  ASSERT_EQ(::write(m, cmd.data(), cmd.size()), static_cast<ssize_t>(cmd.size()));
  std::string out;
  std::regex fields("pid=(\\d+) sid=(\\d+) tty_nr=(\\d+)\r\n");
  std::smatch f;
  ASSERT_TRUE(env_->turnUntil([&] { return !drain(m, out) || std::regex_search(out, f, fields); }))
      << out;
  ASSERT_TRUE(std::regex_search(out, f, fields)) << out;
  EXPECT_NE(out.find("\r\n33 101\r\n/dev/pts/0\r\n"), std::string::npos) << out;
  EXPECT_EQ(f[1], f[2]) << "not its session's leader: " << out;
  EXPECT_EQ(f[3], "34816") << "/dev/pts/0 is not its controlling terminal: " << out;

  ASSERT_TRUE(isolation::setWindowSize(m, {.rows = 40, .cols = 120}));
  cmd = "stty size; exit 4\n";
  ASSERT_EQ(::write(m, cmd.data(), cmd.size()), static_cast<ssize_t>(cmd.size()));
  ASSERT_TRUE(env_->turnUntil([&] { return !drain(m, out); })) << out;
  EXPECT_NE(out.find("\r\n40 120\r\n"), std::string::npos) << out;
  auto status = finish(**e);
  ASSERT_TRUE(status) << status.error().message();
  EXPECT_EQ(*status, 4);
}

// kubectl exec -i without a terminal: stdin reaches the command and its end
// ends it, stdout and stderr stay apart, and no descriptor of the agent
// reaches the container.
TEST_F(RuntimeExecTest, APipeExecGetsStdinAndSplitsStdoutAndStderr) {
  ContainerHandle h = startPod("pipes", "exec sleep 600");
  ASSERT_NE(h, 0u);
  int in[2], out[2], err[2];
  ASSERT_EQ(::pipe2(in, O_CLOEXEC), 0);
  ASSERT_EQ(::pipe2(out, O_CLOEXEC | O_NONBLOCK), 0);
  ASSERT_EQ(::pipe2(err, O_CLOEXEC | O_NONBLOCK), 0);
  UniqueFd in_w(in[1]), out_r(out[0]), err_r(err[0]);
  ExecIo io{.stdin_fd = in[0], .stdout_fd = out[1], .stderr_fd = err[1]};
  auto e = rt_->exec(h, {"sh", "-c", "cat; echo err >&2; ls /proc/self/fd >&2; exit 3"}, io,
                     seconds(20));
  for (int fd : {in[0], out[1], err[1]}) {
    ::close(fd);  // the caller's copies: the process has its own
  }
  ASSERT_TRUE(e) << e.error().message();
  std::string data = "line one\nline two\n";
  ASSERT_EQ(::write(in_w.get(), data.data(), data.size()), static_cast<ssize_t>(data.size()));
  in_w.reset();  // EOF: cat ends
  std::string stdout_text, stderr_text;
  bool out_open = true, err_open = true;
  ASSERT_TRUE(env_->turnUntil([&] {
    out_open = out_open && drain(out_r.get(), stdout_text);
    err_open = err_open && drain(err_r.get(), stderr_text);
    return !out_open && !err_open;
  }));
  auto status = finish(**e);
  ASSERT_TRUE(status) << status.error().message();
  EXPECT_EQ(*status, 3);
  EXPECT_EQ(stdout_text, data);
  EXPECT_EQ(stderr_text, "err\n0\n1\n2\n3\n");
}

// No stdio given: /dev/null. A command that cannot be exec'ed is reported to
// `started` with the error the user sees, and reap() says the same.
TEST_F(RuntimeExecTest, AMissingCommandIsReportedToStarted) {
  ContainerHandle h = startPod("nope", "exec sleep 600");
  ASSERT_NE(h, 0u);
  std::optional<Result<void>> started;
  ExecIo io;
  io.started = [&](Result<void> r) { started = std::move(r); };
  auto e = rt_->exec(h, {"no-such-command"}, io, seconds(20));
  ASSERT_TRUE(e) << e.error().message();
  ASSERT_TRUE(env_->turnUntil([&] { return started.has_value(); }));
  ASSERT_FALSE(*started);
  EXPECT_EQ(started->error().message(), "exec `no-such-command`: No such file or directory");
  auto status = finish(**e);
  ASSERT_FALSE(status);
  EXPECT_EQ(status.error().message(), started->error().message());

  io.started = nullptr;
  io.tty = true;
  io.stdin_fd = 0;
  auto both = rt_->exec(h, {"true"}, io, seconds(20));
  ASSERT_FALSE(both);
  EXPECT_NE(both.error().message().find("process.terminal"), std::string::npos);
}

// While the exec child sets its terminal up (here it blocks on a console
// socket nobody reads, as with a slow client) it is a copy of the agent in
// the container's namespaces: a process of the container hunts it - reads its
// memory and environment, opens its exe, ptraces it - and gets nothing.
TEST_F(RuntimeExecTest, AnExecChildCannotBeInspectedWhileItSetsUp) {
  bool hunter_exited = false;
  ContainerHandle h = startPod("hunt", "exec kt-escape hunt 6", &hunter_exited);
  ASSERT_NE(h, 0u);
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  UniqueFd ours(sv[0]), theirs(sv[1]);
  // Fill the child's end: its sendmsg then waits until we read.
  ASSERT_EQ(::fcntl(theirs.get(), F_SETFL, O_NONBLOCK), 0);
  std::string junk(4096, 'x');
  size_t queued = 0;
  for (ssize_t n; (n = ::write(theirs.get(), junk.data(), junk.size())) > 0;) {
    queued += static_cast<size_t>(n);
  }
  ASSERT_EQ(errno, EAGAIN);
  ASSERT_EQ(::fcntl(theirs.get(), F_SETFL, 0), 0);

  std::optional<Result<void>> started;
  ExecIo io;
  io.tty = true;
  io.console_socket = theirs.get();
  io.started = [&](Result<void> r) { started = std::move(r); };
  auto e = rt_->exec(h, {"true"}, io, seconds(20));
  ASSERT_TRUE(e) << e.error().message();
  theirs.reset();
  // The hunter chases each new process for 2 s: the child stays that long.
  auto until = Clock::now() + milliseconds(2500);
  env_->turnUntil([&] { return Clock::now() >= until; });
  EXPECT_FALSE(started.has_value()) << "the child did not wait for the console socket";
  std::string sink(queued, '\0');
  for (size_t got = 0; got < queued;) {
    ssize_t n = ::read(ours.get(), sink.data() + got, queued - got);
    ASSERT_GT(n, 0);
    got += static_cast<size_t>(n);
  }
  auto t = isolation::receiveTerminal(ours.get());
  ASSERT_TRUE(t) << t.error().message();
  ASSERT_TRUE(env_->turnUntil([&] { return started.has_value(); }));
  EXPECT_TRUE(*started) << started->error().message();
  auto status = finish(**e);
  ASSERT_TRUE(status) << status.error().message();
  EXPECT_EQ(*status, 0);

  ASSERT_TRUE(env_->turnUntil([&] { return hunter_exited; }));
  std::stringstream log;
  log << std::ifstream(logDir("hunt") + "/0.log").rdbuf();
  std::smatch m;
  std::string text = log.str();
  ASSERT_TRUE(std::regex_search(
      text, m, std::regex("hunt: pids=(\\d+) early=(\\d+) exposed=(\\d+) escapes=(\\d+)")))
      << text;
  EXPECT_EQ(text.find("ESCAPE"), std::string::npos) << text;
  EXPECT_EQ(m[3].str(), "0") << text;
  EXPECT_GT(std::stoi(m[2].str()), 0) << "the hunter never met the child: " << text;
}

}  // namespace
}  // namespace kernelet::agent::runtime
