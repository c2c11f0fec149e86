// isolation::beginStart and watchStart in the test VM: a container start that
// runs on an event loop, which keeps serving other fds and timers while a
// child sets up, kills it at the deadline and cancels it without leaks.
#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <optional>
#include <string>
#include <thread>

#include "cgroups/cgroups.h"
#include "isolation/isolation.h"
#include "support/privileged.h"
#include "support/process_util.h"

namespace kernelet::isolation {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

ContainerSpec baseSpec(std::vector<std::string> argv) {
  ContainerSpec s;
  s.argv = std::move(argv);
  s.env = {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"};
  s.rootfs = KERNELET_FIXTURE_ROOTFS;
  s.hostname = "ctr";
  for (Namespace n : {Namespace::kPid, Namespace::kMount, Namespace::kUts, Namespace::kIpc,
                      Namespace::kNet, Namespace::kCgroup}) {
    s.namespaces.push_back({n, ""});
  }
  s.mounts = defaultMounts();
  std::vector<std::string> caps = defaultCapabilities();
  s.capabilities = {caps, caps, caps, {}, {}};
  s.masked_paths = defaultMaskedPaths();
  s.readonly_paths = defaultReadonlyPaths();
  return s;
}

int countFds() { return kernelet::testing::countEntries("/proc/self/fd"); }

// Zombies or live children of this test process.
int countChildren() {
  int n = 0;
  DIR* d = ::opendir("/proc");
  std::string me = std::to_string(::getpid());
  while (dirent* e = ::readdir(d)) {
    std::ifstream st(std::string("/proc/") + e->d_name + "/stat");
    std::string pid, comm, state, ppid;
    if (st >> pid >> comm >> state >> ppid && ppid == me) {
      n++;
    }
  }
  ::closedir(d);
  return n;
}

// A container cgroup per test; freeze() makes a child born in it stay where
// clone3 left it, as one stuck in a mount or a lock would: a setup that stalls.
class AsyncStartTest : public ::testing::Test {
 protected:
  void SetUp() override {
    KERNELET_REQUIRE_PRIVILEGED();
    auto h = cgroups::detect();
    ASSERT_TRUE(h);
    mount_ = h->mount;
    root_ = "kernelet-async-" + std::to_string(::getpid());
    auto g = cgroups::Cgroup::create(mount_, root_ + "/c");
    ASSERT_TRUE(g) << g.error().message();
    group_ = std::move(*g);
    auto loop = EventLoop::create();
    ASSERT_TRUE(loop);
    loop_.emplace(std::move(*loop));
    auto timers = TimerQueue::create(*loop_);
    ASSERT_TRUE(timers);
    timers_ = std::move(*timers);
    fds_ = countFds();
  }
  void TearDown() override {
    timers_.reset();
    if (!root_.empty()) {
      auto top = cgroups::Cgroup::open(mount_, root_);
      ASSERT_TRUE(top);
      auto r = top->remove();
      EXPECT_TRUE(r) << r.error().message();
    }
  }
  void freeze() { ASSERT_TRUE(group_.write("cgroup.freeze", "1")); }
  ContainerSpec specInGroup(std::vector<std::string> argv) {
    ContainerSpec s = baseSpec(std::move(argv));
    s.cgroup_fd = group_.fd();
    return s;
  }
  // Runs the loop until `until` holds or `limit` passes.
  void runUntil(const std::function<bool()>& until, milliseconds limit) {
    auto end = Clock::now() + limit;
    while (!until() && Clock::now() < end) {
      auto r = loop_->runOnce(milliseconds(20));
      ASSERT_TRUE(r) << r.error().message();
    }
  }

  std::string mount_, root_;
  cgroups::Cgroup group_;
  std::optional<EventLoop> loop_;
  std::unique_ptr<TimerQueue> timers_;
  int fds_ = 0;
};

TEST_F(AsyncStartTest, TheLoopServesOthersWhileASetupStallsAndTheDeadlineKillsIt) {
  freeze();
  ContainerSpec s = specInGroup({"true"});
  s.setup_timeout = milliseconds(3000);
  auto begin = Clock::now();
  auto pending = beginStart(s);
  ASSERT_TRUE(pending) << pending.error().message();
  // beginStart returned long before the child could time out (the blocking
  // start() returns only at the deadline), with the child stuck in setup.
  EXPECT_LT(Clock::now() - begin, milliseconds(2000));
  ASSERT_FALSE(pending->done());

  std::optional<Result<Process>> outcome;
  Clock::time_point finished;
  int calls = 0;
  auto watch = watchStart(*loop_, *timers_, std::move(*pending), [&](Result<Process> r) {
    calls++;
    finished = Clock::now();
    outcome = std::move(r);
  });
  ASSERT_TRUE(watch) << watch.error().message();

  // Other work on the same loop: a timer every 50 ms and a pipe written by a
  // thread; both must be served while the start is pending.
  int ticks = 0;
  std::function<void()> tick = [&] {
    ticks++;
    timers_->after(milliseconds(50), tick);
  };
  timers_->after(milliseconds(50), tick);
  int p[2];
  ASSERT_EQ(::pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
  int bytes = 0;
  int ticks_at_first_byte = -1;
  bool pending_at_first_byte = false;
  ASSERT_TRUE(loop_->add(p[0], EPOLLIN, [&](uint32_t) {
    char c;
    while (::read(p[0], &c, 1) == 1) {
      if (bytes++ == 0) {
        ticks_at_first_byte = ticks;
        pending_at_first_byte = !outcome.has_value();
      }
    }
  }));
  std::thread writer([w = p[1]] {
    std::this_thread::sleep_for(milliseconds(500));
    (void)!::write(w, "x", 1);
  });
  runUntil([&] { return outcome.has_value(); }, milliseconds(30000));
  writer.join();
  loop_->remove(p[0]);
  ::close(p[0]);
  ::close(p[1]);

  ASSERT_TRUE(outcome) << "the start never finished";
  EXPECT_EQ(calls, 1);
  ASSERT_FALSE(*outcome) << "a frozen child was reported as started";
  EXPECT_EQ(outcome->error().message(), std::string("start container `") + KERNELET_FIXTURE_ROOTFS +
                                            "`: setup timed out after 3 s, before exec of `true`; "
                                            "the child was killed");
  EXPECT_GE(finished - begin, milliseconds(3000));
  EXPECT_LT(finished - begin, milliseconds(20000));
  // The loop was not blocked: the pipe was read while the child was pending,
  // and the timer ticked all along (3 s / 50 ms, with slack for TCG).
  EXPECT_EQ(bytes, 1);
  EXPECT_TRUE(pending_at_first_byte);
  EXPECT_GE(ticks_at_first_byte, 3);
  EXPECT_GE(ticks, 15);
  // Nothing of the child is left.
  watch->reset();
  EXPECT_EQ(countChildren(), 0);
  EXPECT_TRUE(group_.processes()->empty());
  EXPECT_EQ(countFds(), fds_);
}

TEST_F(AsyncStartTest, AStartSucceedsOnTheLoop) {
  ContainerSpec s = specInGroup({"sh", "-c", "exit 7"});
  auto pending = beginStart(s);
  ASSERT_TRUE(pending) << pending.error().message();
  std::optional<Result<Process>> outcome;
  auto watch = watchStart(*loop_, *timers_, std::move(*pending),
                          [&](Result<Process> r) { outcome = std::move(r); });
  ASSERT_TRUE(watch) << watch.error().message();
  runUntil([&] { return outcome.has_value(); }, milliseconds(30000));
  ASSERT_TRUE(outcome) << "the start never finished";
  ASSERT_TRUE(*outcome) << (*outcome).error().message();
  auto status = (*outcome)->wait();
  ASSERT_TRUE(status) << status.error().message();
  EXPECT_EQ(status->code, 7);  // the container's own command ran
  outcome.reset();
  watch->reset();
  EXPECT_EQ(countChildren(), 0);
  EXPECT_EQ(countFds(), fds_);
}

TEST_F(AsyncStartTest, TheChildsOwnErrorComesBackOnTheLoop) {
  auto pending = beginStart(specInGroup({"/bin/nope"}));
  ASSERT_TRUE(pending) << pending.error().message();
  std::optional<Result<Process>> outcome;
  // `done` destroys its own watch, as a pod worker dropping its handle would.
  std::unique_ptr<StartWatch> held;
  auto watch = watchStart(*loop_, *timers_, std::move(*pending), [&](Result<Process> r) {
    outcome = std::move(r);
    held.reset();
  });
  ASSERT_TRUE(watch) << watch.error().message();
  held = std::move(*watch);
  runUntil([&] { return outcome.has_value(); }, milliseconds(30000));
  ASSERT_TRUE(outcome) << "the start never finished";
  ASSERT_FALSE(*outcome);
  EXPECT_EQ(outcome->error().message(), "exec `/bin/nope`: No such file or directory");
  EXPECT_EQ(held, nullptr);
  EXPECT_EQ(countChildren(), 0);  // reaped before done ran
  EXPECT_EQ(countFds(), fds_);
}

TEST_F(AsyncStartTest, CancellingAPendingStartKillsAndReapsTheChild) {
  freeze();
  ContainerSpec s = specInGroup({"true"});
  s.setup_timeout = std::chrono::seconds(60);
  auto pending = beginStart(s);
  ASSERT_TRUE(pending) << pending.error().message();
  pid_t pid = pending->pid();
  ASSERT_GT(pid, 0);
  bool called = false;
  auto watch =
      watchStart(*loop_, *timers_, std::move(*pending), [&](Result<Process>) { called = true; });
  ASSERT_TRUE(watch) << watch.error().message();
  runUntil([] { return false; }, milliseconds(300));
  auto procs = group_.processes();
  ASSERT_TRUE(procs);
  ASSERT_EQ(procs->size(), 1u) << "the child is not stuck in its frozen cgroup";
  EXPECT_EQ(countChildren(), 1);

  auto begin = Clock::now();
  watch->reset();  // the pod was deleted while its container was starting
  EXPECT_LT(Clock::now() - begin, milliseconds(10000));
  runUntil([] { return false; }, milliseconds(100));
  EXPECT_FALSE(called) << "a cancelled start called back";
  EXPECT_EQ(countChildren(), 0);
  EXPECT_TRUE(group_.processes()->empty());
  EXPECT_EQ(countFds(), fds_);
  EXPECT_EQ(timers_->size(), 0u);  // its deadline timer went with it
}

TEST_F(AsyncStartTest, AnExecIntoARunningContainerStartsOnTheLoop) {
  ContainerSpec s = specInGroup({"sleep", "1000"});
  auto target = start(s);
  ASSERT_TRUE(target) << target.error().message();
  // What an exec probe runs: the same path through beginStart.
  ContainerSpec e = execSpec(s, target->pid(), {"sh", "-c", "test \"$(hostname)\" = ctr"});
  e.setup_timeout = std::chrono::seconds(10);
  auto pending = beginStart(e);
  ASSERT_TRUE(pending) << pending.error().message();
  std::optional<Result<Process>> outcome;
  auto watch = watchStart(*loop_, *timers_, std::move(*pending),
                          [&](Result<Process> r) { outcome = std::move(r); });
  ASSERT_TRUE(watch) << watch.error().message();
  runUntil([&] { return outcome.has_value(); }, milliseconds(30000));
  ASSERT_TRUE(outcome && *outcome) << (outcome ? outcome->error().message() : "not finished");
  auto status = (*outcome)->wait();
  ASSERT_TRUE(status);
  EXPECT_EQ(status->code, 0);  // it ran in the container's UTS namespace
  ASSERT_TRUE(target->signal(SIGKILL));
  ASSERT_TRUE(target->wait());
  watch->reset();
  EXPECT_EQ(countChildren(), 0);
}

}  // namespace
}  // namespace kernelet::isolation
