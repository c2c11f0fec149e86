// Removal of a cgroup and of a pod sandbox on the event loop, in the test VM:
// the loop keeps serving while killed processes take their time to leave, the
// callbacks come in order, and nothing is left behind.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "agent/pod_sandbox.h"
#include "cgroups/cgroups.h"
#include "support/privileged.h"
#include "support/temp_dir.h"

namespace kernelet {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// A process of ours that ignores SIGTERM (only SIGKILL ends it), in `group`.
pid_t spawnInto(cgroups::Cgroup& group) {
  pid_t pid = ::fork();
  if (pid == 0) {
    ::signal(SIGTERM, SIG_IGN);
    ::execl("/bin/sleep", "sleep", "1000", nullptr);
    ::_exit(127);
  }
  if (pid > 0) {
    auto added = group.addProcess(pid);
    EXPECT_TRUE(added) << added.error().message();
  }
  return pid;
}

bool mounted(const std::string& path) {
  std::ifstream in("/proc/self/mountinfo");
  for (std::string line; std::getline(in, line);) {
    if (line.find(" " + path + " ") != std::string::npos) {
      return true;
    }
  }
  return false;
}

class AsyncTeardownTest : public ::testing::Test {
 protected:
  void SetUp() override {
    KERNELET_REQUIRE_PRIVILEGED();
    auto h = cgroups::detect();
    ASSERT_TRUE(h);
    mount_ = h->mount;
    root_ = "kernelet-teardown-" + std::to_string(::getpid());
    auto loop = EventLoop::create();
    ASSERT_TRUE(loop);
    loop_.emplace(std::move(*loop));
    auto timers = TimerQueue::create(*loop_);
    ASSERT_TRUE(timers);
    timers_ = std::move(*timers);
  }
  void TearDown() override {
    for (pid_t p : spawned_) {
      ::kill(p, SIGKILL);
      ::waitpid(p, nullptr, 0);
    }
    timers_.reset();
    if (!root_.empty()) {
      if (auto top = cgroups::Cgroup::open(mount_, root_)) {
        auto r = top->remove();
        EXPECT_TRUE(r) << r.error().message();
      }
    }
  }
  // A timer every 50 ms, logged: the proof that the loop was not blocked.
  void startTicking() {
    tick_ = [this] {
      ticks_++;
      timers_->after(milliseconds(50), tick_);
    };
    timers_->after(milliseconds(50), tick_);
  }
  void runUntil(const std::function<bool()>& until, milliseconds limit) {
    auto end = Clock::now() + limit;
    while (!until() && Clock::now() < end) {
      auto r = loop_->runOnce(milliseconds(20));
      ASSERT_TRUE(r) << r.error().message();
    }
  }
  // Reaps what the kill ended (our children become zombies until then); a
  // failed test may have left one running: killed first, so this never hangs.
  void reap() {
    for (pid_t p : spawned_) {
      ::kill(p, SIGKILL);
      ::waitpid(p, nullptr, 0);
    }
    spawned_.clear();
  }

  std::string mount_, root_;
  std::optional<EventLoop> loop_;
  std::unique_ptr<TimerQueue> timers_;
  std::function<void()> tick_;
  int ticks_ = 0;
  std::vector<pid_t> spawned_;
};

TEST_F(AsyncTeardownTest, ASlowExitDelaysOnlyItsOwnRemoval) {
  auto g = cgroups::Cgroup::create(mount_, root_ + "/pod/c");
  ASSERT_TRUE(g) << g.error().message();
  auto pod = cgroups::Cgroup::open(mount_, root_ + "/pod");
  ASSERT_TRUE(pod);
  spawned_.push_back(spawnInto(*g));  // killed by cgroup.kill
  std::string path = pod->path();

  std::vector<std::string> order;
  startTicking();
  auto begin = Clock::now();
  auto removal = cgroups::removeAsync(
      *loop_, *timers_, std::move(*pod), std::chrono::seconds(20),
      [&](Result<void> r) { order.push_back(r ? "removed" : r.error().message()); });
  EXPECT_LT(Clock::now() - begin, milliseconds(1000));
  // A straggler that arrives after the kill stands for a process slow to
  // exit (stuck in the kernel): the group stays populated until it goes.
  auto straggler_group = cgroups::Cgroup::open(mount_, root_ + "/pod/c");
  ASSERT_TRUE(straggler_group);
  pid_t straggler = spawnInto(*straggler_group);
  spawned_.push_back(straggler);
  timers_->after(milliseconds(1500), [&] {
    order.push_back("straggler exits");
    ::kill(straggler, SIGKILL);
  });
  runUntil([&] { return order.size() == 2; }, milliseconds(30000));
  ASSERT_EQ(order, (std::vector<std::string>{"straggler exits", "removed"}));
  EXPECT_GE(Clock::now() - begin, milliseconds(1500));
  EXPECT_GE(ticks_, 15) << "the loop was blocked while the group emptied";
  EXPECT_FALSE(std::filesystem::exists(path));
  reap();
}

TEST_F(AsyncTeardownTest, TheDeadlineReportsAGroupThatDoesNotEmpty) {
  auto g = cgroups::Cgroup::create(mount_, root_ + "/pod");
  ASSERT_TRUE(g) << g.error().message();
  std::string path = g->path();
  auto straggler_group = cgroups::Cgroup::open(mount_, root_ + "/pod");
  ASSERT_TRUE(straggler_group);
  std::optional<Result<void>> outcome;
  startTicking();
  spawned_.push_back(spawnInto(*g));
  auto removal = cgroups::removeAsync(*loop_, *timers_, std::move(*g), milliseconds(1000),
                                      [&](Result<void> r) { outcome = r; });
  spawned_.push_back(spawnInto(*straggler_group));  // never exits by itself
  runUntil([&] { return outcome.has_value(); }, milliseconds(30000));
  ASSERT_TRUE(outcome);
  ASSERT_FALSE(*outcome);
  EXPECT_EQ(outcome->error().message(),
            "remove cgroup `" + path + "`: processes still running 1000 ms after cgroup.kill");
  EXPECT_GE(ticks_, 10);
  EXPECT_TRUE(std::filesystem::exists(path));  // left for the next removal
}

TEST_F(AsyncTeardownTest, AnEmptyGroupIsRemovedOnTheNextTurnNotInsideTheCall) {
  auto g = cgroups::Cgroup::create(mount_, root_ + "/empty");
  ASSERT_TRUE(g);
  std::string path = g->path();
  bool done = false;
  auto removal = cgroups::removeAsync(*loop_, *timers_, std::move(*g), milliseconds(1000),
                                      [&](Result<void> r) {
                                        EXPECT_TRUE(r) << r.error().message();
                                        done = true;
                                      });
  EXPECT_FALSE(done);
  runUntil([&] { return done; }, milliseconds(5000));
  EXPECT_TRUE(done);
  EXPECT_FALSE(std::filesystem::exists(path));
}

TEST_F(AsyncTeardownTest, ASandboxGoesWithoutBlockingTheLoopAndLeavesNothing) {
  kernelet::testing::TempDir dir;
  agent::AgentConfig config;
  config.run_dir = dir.path() + "/run";
  config.cgroup_root = "/" + root_;
  ASSERT_TRUE(cgroups::ensureQosTree(mount_, config.cgroup_root));
  agent::SandboxEnv env{.config = &config, .cgroup_mount = mount_, .enforce_limits = true};
  agent::Pod pod;
  pod.uid = "0b4cf5f2-async-teardown";
  pod.name = "teardown";
  pod.namespace_ = "default";
  pod.host_network = true;
  auto sb = agent::PodSandbox::create(pod, agent::QosClass::kBestEffort, env);
  ASSERT_TRUE(sb) << sb.error().message();
  std::string cgroup = sb->cgroup().path();
  std::string ipc = sb->ipcPath(), uts = sb->utsPath();
  std::string run = config.run_dir + "/pods/" + pod.uid;
  ASSERT_TRUE(mounted(ipc));
  // A container's group in the pod's (processes live only in leaves).
  auto c = cgroups::Cgroup::create(cgroup, "app");
  ASSERT_TRUE(c) << c.error().message();
  spawned_.push_back(spawnInto(*c));

  std::vector<std::string> order;
  startTicking();
  timers_->after(milliseconds(0), [&] { order.push_back("other work"); });
  std::unique_ptr<agent::SandboxTeardown> teardown;
  teardown = sb->destroyAsync(*loop_, *timers_, [&](Result<void> r) {
    order.push_back(r ? "sandbox gone" : r.error().message());
    // Everything is gone by the time done runs.
    EXPECT_FALSE(std::filesystem::exists(cgroup));
    EXPECT_FALSE(mounted(ipc));
    EXPECT_FALSE(mounted(uts));
    EXPECT_FALSE(std::filesystem::exists(run));
    teardown.reset();  // done may drop its own handle
  });
  EXPECT_TRUE(order.empty()) << "done ran inside destroyAsync";
  EXPECT_TRUE(sb->cgroup().path().empty());  // the sandbox handed everything over
  runUntil([&] { return order.size() == 2; }, milliseconds(30000));
  EXPECT_EQ(order, (std::vector<std::string>{"other work", "sandbox gone"}));
  EXPECT_EQ(teardown, nullptr);
  // A second destroy of the emptied sandbox is harmless.
  EXPECT_TRUE(sb->destroy());
  reap();
}

}  // namespace
}  // namespace kernelet
