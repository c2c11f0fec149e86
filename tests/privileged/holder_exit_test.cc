// The holder hears exits through the proc connector (root in the init
// namespaces, CONFIG_PROC_EVENTS): a run that ends while it is no child of
// the agent (re-parented away, as a container is once its agent died) is
// reported with its status and time; one whose end it did not see reads
// "exit lost".
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <string>

#include "support/holder_util.h"
#include "support/privileged.h"

namespace kernelet::testing {
namespace {

using agent::runtime::KeptRun;

int64_t realtimeNs() {
  timespec t{};
  (void)::clock_gettime(CLOCK_REALTIME, &t);  // a valid clock: cannot fail
  return static_cast<int64_t>(t.tv_sec) * 1000000000 + t.tv_nsec;
}

class HolderExitTest : public HolderFixture {
 protected:
  // A keeper whose holder hears exits; skips (fails in the test VM) if not.
  std::unique_ptr<agent::runtime::HolderKeeper> connectSeeingExits() {
    auto k = connect();
    if (k && !k->seesExits()) {
      if (inTestVm()) {
        ADD_FAILURE() << "the test VM's kernel must report exits (proc connector)";
      }
      return nullptr;
    }
    return k;
  }
};

// Double fork: the grandchild is re-parented away from the test (to init or
// a subreaper), so only the holder can learn its status. It exits with 7 once
// told to through `go`. Returns its pid.
int orphanExitingWith7(int& go_w) {
  int go[2], report[2];
  EXPECT_EQ(::pipe2(go, O_CLOEXEC), 0);
  EXPECT_EQ(::pipe2(report, O_CLOEXEC), 0);
  pid_t middle = ::fork();
  if (middle == 0) {
    pid_t orphan = ::fork();
    if (orphan == 0) {
      ::close(go[1]);
      char c = 0;
      (void)!::read(go[0], &c, 1);
      ::_exit(7);
    }
    (void)!::write(report[1], &orphan, sizeof orphan);
    ::_exit(0);
  }
  ::close(go[0]);
  ::close(report[1]);
  int status = 0;
  EXPECT_EQ(::waitpid(middle, &status, 0), middle);
  pid_t orphan = -1;
  EXPECT_EQ(::read(report[0], &orphan, sizeof orphan), static_cast<ssize_t>(sizeof orphan));
  ::close(report[0]);
  go_w = go[1];
  return orphan;
}

TEST_F(HolderExitTest, AnOrphanedRunsExitStatusAndTimeAreKept) {
  auto agent = connectSeeingExits();
  if (!agent) {
    GTEST_SKIP() << "the holder cannot hear exits here (not root in the init namespaces)";
  }
  int go = -1;
  int pid = orphanExitingWith7(go);
  ASSERT_GT(pid, 0);
  UniqueFd pidfd(sys::pidfdOpen(pid));
  ASSERT_TRUE(pidfd);
  ASSERT_TRUE(agent->keep("orphan", pid, procStartTime(pid), pidfd.get(), {}));
  int64_t before = realtimeNs();
  ASSERT_EQ(::write(go, "x", 1), 1);
  ::close(go);
  ASSERT_TRUE(awaitExit(pidfd.get()));
  int64_t after = realtimeNs();
  // A new agent asks after the pidfd said "exited": the event came first.
  agent.reset();
  auto next = connect();
  ASSERT_TRUE(next);
  auto fetched = next->fetch("orphan");
  ASSERT_TRUE(fetched) << fetched.error().message();
  ASSERT_TRUE(fetched->has_value());
  const KeptRun& run = **fetched;
  ASSERT_TRUE(run.exit) << "exit_lost=" << run.exit_lost;
  EXPECT_TRUE(WIFEXITED(run.exit->wait_status));
  EXPECT_EQ(WEXITSTATUS(run.exit->wait_status), 7);
  EXPECT_GE(run.exit->finished_unix_ns, before - 1000000);  // event times are ktime: ~µs apart
  EXPECT_LE(run.exit->finished_unix_ns, after + 1000000);
  EXPECT_FALSE(run.exit_lost);
}

TEST_F(HolderExitTest, AKilledRunReportsItsSignal) {
  auto agent = connectSeeingExits();
  if (!agent) {
    GTEST_SKIP() << "the holder cannot hear exits here (not root in the init namespaces)";
  }
  int go = -1;
  int pid = orphanExitingWith7(go);
  UniqueFd pidfd(sys::pidfdOpen(pid));
  ASSERT_TRUE(pidfd);
  ASSERT_TRUE(agent->keep("killed", pid, procStartTime(pid), pidfd.get(), {}));
  ASSERT_EQ(sys::pidfdSendSignal(pidfd.get(), SIGKILL), 0);
  ASSERT_TRUE(awaitExit(pidfd.get()));
  ::close(go);
  auto fetched = agent->fetch("killed");
  ASSERT_TRUE(fetched && fetched->has_value());
  ASSERT_TRUE((*fetched)->exit);
  EXPECT_TRUE(WIFSIGNALED((*fetched)->exit->wait_status));
  EXPECT_EQ(WTERMSIG((*fetched)->exit->wait_status), SIGKILL);
}

TEST_F(HolderExitTest, AnExitTheHolderDidNotSeeReadsLost) {
  auto agent = connectSeeingExits();
  if (!agent) {
    GTEST_SKIP() << "the holder cannot hear exits here (not root in the init namespaces)";
  }
  int go = -1;
  int pid = orphanExitingWith7(go);
  UniqueFd pidfd(sys::pidfdOpen(pid));
  ASSERT_TRUE(pidfd);
  ASSERT_EQ(::write(go, "x", 1), 1);
  ::close(go);
  ASSERT_TRUE(awaitExit(pidfd.get()));
  // Kept only after it ended (the holder was not told of it then).
  ASSERT_TRUE(agent->keep("unseen", pid, 0, pidfd.get(), {}));
  auto fetched = agent->fetch("unseen");
  ASSERT_TRUE(fetched && fetched->has_value());
  EXPECT_FALSE((*fetched)->exit);
  EXPECT_TRUE((*fetched)->exit_lost);
}

}  // namespace
}  // namespace kernelet::testing
