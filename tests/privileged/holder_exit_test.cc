// The holder hears exits through the proc connector (root in the init
// namespaces, CONFIG_PROC_EVENTS): a run that ends while it is no child of
// the agent (re-parented away, as a container is once its agent died) is
// reported with its status and time; one whose end it did not see reads
// "exit lost".
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/cn_proc.h>
#include <linux/connector.h>
#include <linux/netlink.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

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

// The state letter of /proc/PID/stat (the thread-group leader's).
char procState(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  size_t close = stat.rfind(')');
  return close == std::string::npos || close + 2 >= stat.size() ? '?' : stat[close + 2];
}

// An orphan whose main thread leaves first (the exit syscall, which ends one
// thread: pthread_exit would unwind through the test's frames) once `lead` is
// written, while a worker thread runs on; the worker exits the process with 7
// once `go` is written.
struct LeaderLeaves {
  static int goFd;
  static void* worker(void*) {
    char c = 0;
    (void)!::read(goFd, &c, 1);
    ::_exit(7);
  }
};
int LeaderLeaves::goFd = -1;

int orphanWhoseLeaderLeaves(int& lead_w, int& go_w) {
  int lead[2], go[2], report[2];
  EXPECT_EQ(::pipe2(lead, O_CLOEXEC), 0);
  EXPECT_EQ(::pipe2(go, O_CLOEXEC), 0);
  EXPECT_EQ(::pipe2(report, O_CLOEXEC), 0);
  pid_t middle = ::fork();
  if (middle == 0) {
    pid_t orphan = ::fork();
    if (orphan == 0) {
      ::close(go[1]);
      ::close(lead[1]);
      LeaderLeaves::goFd = go[0];
      pthread_t t;
      if (::pthread_create(&t, nullptr, LeaderLeaves::worker, nullptr) != 0) {
        ::_exit(99);
      }
      char c = 0;
      (void)!::read(lead[0], &c, 1);
      ::syscall(SYS_exit, 0);  // the leader goes; the process lives on
    }
    (void)!::write(report[1], &orphan, sizeof orphan);
    ::_exit(0);
  }
  ::close(go[0]);
  ::close(lead[0]);
  ::close(report[1]);
  int status = 0;
  EXPECT_EQ(::waitpid(middle, &status, 0), middle);
  pid_t orphan = -1;
  EXPECT_EQ(::read(report[0], &orphan, sizeof orphan), static_cast<ssize_t>(sizeof orphan));
  ::close(report[0]);
  lead_w = lead[1];
  go_w = go[1];
  return orphan;
}

// Fails on the old holder, which took the leader's exit (status 0) as the
// process's.
TEST_F(HolderExitTest, AProcessWhoseLeaderLeftFirstIsRunningThenReportsItsLastThreadsExit) {
  auto agent = connectSeeingExits();
  if (!agent) {
    GTEST_SKIP() << "the holder cannot hear exits here (not root in the init namespaces)";
  }
  int lead = -1, go = -1;
  int pid = orphanWhoseLeaderLeaves(lead, go);
  ASSERT_GT(pid, 0);
  UniqueFd pidfd(sys::pidfdOpen(pid));
  ASSERT_TRUE(pidfd);
  ASSERT_TRUE(agent->keep("leaderless", pid, procStartTime(pid), pidfd.get(), {}));
  ASSERT_EQ(::write(lead, "x", 1), 1);
  ::close(lead);
  // The leader is a zombie once its exit event was sent (do_exit sends it
  // before exit_notify). No fd reports that, hence the bounded look.
  for (int i = 0; i < 5000 && procState(pid) != 'Z'; i++) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ASSERT_EQ(procState(pid), 'Z') << "the leader did not leave";
  auto running = agent->fetch("leaderless");
  ASSERT_TRUE(running && running->has_value());
  EXPECT_FALSE((*running)->exit) << "status " << (*running)->exit->wait_status;
  EXPECT_FALSE((*running)->exit_lost);
  ASSERT_EQ(::write(go, "x", 1), 1);
  ::close(go);
  ASSERT_TRUE(awaitExit(pidfd.get()));
  auto fetched = agent->fetch("leaderless");
  ASSERT_TRUE(fetched && fetched->has_value());
  ASSERT_TRUE((*fetched)->exit) << "exit_lost=" << (*fetched)->exit_lost;
  EXPECT_TRUE(WIFEXITED((*fetched)->exit->wait_status));
  EXPECT_EQ(WEXITSTATUS((*fetched)->exit->wait_status), 7);
}

// An orphan in which a worker thread execs `sh`: the old leader dies
// (de_thread) and the program runs on under the same pid. A first byte on
// `go` starts the exec; `exec_done` reads EOF once it is through; the rest of
// `go` feeds sh's `read`.
struct WorkerExecs {
  static int goFd;
  static void* worker(void*) {
    char c = 0;
    (void)!::read(goFd, &c, 1);  // after the KEEP: the test writes "e" then
    ::dup2(goFd, 0);
    ::execl("/bin/sh", "sh", "-c", "read x; exit 5", nullptr);
    ::_exit(98);
  }
};
int WorkerExecs::goFd = -1;

int orphanWhoseWorkerExecs(int& go_w, int& exec_done_r) {
  int go[2], report[2], done[2];
  EXPECT_EQ(::pipe2(go, O_CLOEXEC), 0);
  EXPECT_EQ(::pipe2(report, O_CLOEXEC), 0);
  EXPECT_EQ(::pipe2(done, O_CLOEXEC), 0);
  pid_t middle = ::fork();
  if (middle == 0) {
    pid_t orphan = ::fork();
    if (orphan == 0) {
      ::close(go[1]);
      ::close(done[0]);
      WorkerExecs::goFd = go[0];
      pthread_t t;
      if (::pthread_create(&t, nullptr, WorkerExecs::worker, nullptr) != 0) {
        ::_exit(99);
      }
      for (;;) {
        ::pause();  // the leader waits to be killed by the exec
      }
    }
    (void)!::write(report[1], &orphan, sizeof orphan);
    ::_exit(0);
  }
  ::close(go[0]);
  ::close(report[1]);
  ::close(done[1]);
  int status = 0;
  EXPECT_EQ(::waitpid(middle, &status, 0), middle);
  pid_t orphan = -1;
  EXPECT_EQ(::read(report[0], &orphan, sizeof orphan), static_cast<ssize_t>(sizeof orphan));
  ::close(report[0]);
  go_w = go[1];
  exec_done_r = done[0];
  return orphan;
}

// Fails on the old holder, which took the old leader's death as the exit.
TEST_F(HolderExitTest, AWorkerThreadsExecIsNoExit) {
  auto agent = connectSeeingExits();
  if (!agent) {
    GTEST_SKIP() << "the holder cannot hear exits here (not root in the init namespaces)";
  }
  int go = -1, exec_done = -1;
  int pid = orphanWhoseWorkerExecs(go, exec_done);
  ASSERT_GT(pid, 0);
  UniqueFd pidfd(sys::pidfdOpen(pid));
  ASSERT_TRUE(pidfd);
  ASSERT_TRUE(agent->keep("execs", pid, procStartTime(pid), pidfd.get(), {}));
  ASSERT_EQ(::write(go, "e", 1), 1);
  // EOF once the exec closed the CLOEXEC write end: de_thread, and with it the
  // old leader's exit event, came before.
  char c = 0;
  ASSERT_EQ(::read(exec_done, &c, 1), 0);
  ::close(exec_done);
  auto running = agent->fetch("execs");
  ASSERT_TRUE(running && running->has_value());
  EXPECT_FALSE((*running)->exit) << "status " << (*running)->exit->wait_status;
  EXPECT_FALSE((*running)->exit_lost);
  ASSERT_EQ(::write(go, "x\n", 2), 2);
  ::close(go);
  ASSERT_TRUE(awaitExit(pidfd.get()));
  auto fetched = agent->fetch("execs");
  ASSERT_TRUE(fetched && fetched->has_value());
  ASSERT_TRUE((*fetched)->exit) << "exit_lost=" << (*fetched)->exit_lost;
  EXPECT_TRUE(WIFEXITED((*fetched)->exit->wait_status));
  EXPECT_EQ(WEXITSTATUS((*fetched)->exit->wait_status), 5);
}

// The netlink port of the holder's proc-connector socket: the socket inode
// among its fds that /proc/net/netlink lists with protocol 11.
uint32_t connectorPort(int holder) {
  std::vector<std::string> inodes;
  std::error_code ec;
  for (const auto& e :
       std::filesystem::directory_iterator("/proc/" + std::to_string(holder) + "/fd", ec)) {
    std::string target = std::filesystem::read_symlink(e.path(), ec).string();
    if (target.starts_with("socket:[")) {
      inodes.push_back(target.substr(8, target.size() - 9));
    }
  }
  std::ifstream in("/proc/net/netlink");
  std::string line;
  std::getline(in, line);  // the header
  while (std::getline(in, line)) {
    std::istringstream f(line);
    std::string sk, proto, port, groups, rmem, wmem, dump, locks, drops, inode;
    f >> sk >> proto >> port >> groups >> rmem >> wmem >> dump >> locks >> drops >> inode;
    if (proto == "11" && std::find(inodes.begin(), inodes.end(), inode) != inodes.end()) {
      return static_cast<uint32_t>(std::stoul(port));
    }
  }
  return 0;
}

// A message of a process's making, sent to the holder's netlink port: an
// exit of `pid` with status 99, stamped now.
constexpr size_t kForgedSize = NLMSG_LENGTH(sizeof(cn_msg) + sizeof(proc_event));

ssize_t forgeExit(int nl, uint32_t port, int pid) {
  alignas(nlmsghdr) char msg[kForgedSize] = {};
  auto* h = reinterpret_cast<nlmsghdr*>(msg);
  h->nlmsg_len = kForgedSize;
  h->nlmsg_type = NLMSG_DONE;
  auto* cn = static_cast<cn_msg*>(NLMSG_DATA(h));
  cn->id.idx = CN_IDX_PROC;
  cn->id.val = CN_VAL_PROC;
  cn->len = sizeof(proc_event);
  proc_event ev{};
  ev.what = proc_event::PROC_EVENT_EXIT;
  timespec mono{};
  (void)::clock_gettime(CLOCK_MONOTONIC, &mono);  // a valid clock: cannot fail
  ev.timestamp_ns = static_cast<uint64_t>(mono.tv_sec) * 1000000000 + mono.tv_nsec;
  ev.event_data.exit.process_pid = pid;
  ev.event_data.exit.process_tgid = pid;
  ev.event_data.exit.exit_code = 99 << 8;
  std::memcpy(msg + NLMSG_LENGTH(sizeof(cn_msg)), &ev, sizeof ev);
  sockaddr_nl to{.nl_family = AF_NETLINK, .nl_pad = 0, .nl_pid = port, .nl_groups = 0};
  return ::sendto(nl, msg, sizeof msg, 0, reinterpret_cast<sockaddr*>(&to), sizeof to);
}

// A process with CAP_NET_ADMIN sends exits of its own making to the holder's
// port: one while the run runs (the old holder, reading with recv() and
// taking the first exit, reported 99 at once), and one after the real exit
// but read before the holder looked (it would be the last event of the pid).
TEST_F(HolderExitTest, AForgedExitEventIsIgnored) {
  auto agent = connectSeeingExits();
  if (!agent) {
    GTEST_SKIP() << "the holder cannot hear exits here (not root in the init namespaces)";
  }
  uint32_t port = connectorPort(agent->holderPid());
  ASSERT_NE(port, 0u) << "no connector socket in holder " << agent->holderPid();
  int go = -1;
  int pid = orphanExitingWith7(go);
  UniqueFd pidfd(sys::pidfdOpen(pid));
  ASSERT_TRUE(pidfd);
  ASSERT_TRUE(agent->keep("forged", pid, procStartTime(pid), pidfd.get(), {}));
  UniqueFd nl(::socket(PF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_CONNECTOR));
  ASSERT_TRUE(nl);
  ASSERT_EQ(forgeExit(nl.get(), port, pid),
            static_cast<ssize_t>(sizeof(nlmsghdr) + sizeof(cn_msg) + sizeof(proc_event)))
      << std::strerror(errno);
  auto running = agent->fetch("forged");  // FETCH drains the socket first
  ASSERT_TRUE(running && running->has_value());
  EXPECT_FALSE((*running)->exit) << "status " << (*running)->exit->wait_status;
  // The holder stopped: the real exit and then a forgery wait in its
  // socket, in that order, until it looks.
  ASSERT_EQ(::kill(agent->holderPid(), SIGSTOP), 0);
  ASSERT_EQ(::write(go, "x", 1), 1);
  ::close(go);
  ASSERT_TRUE(awaitExit(pidfd.get()));
  ssize_t sent = forgeExit(nl.get(), port, pid);
  int send_errno = errno;
  ASSERT_EQ(::kill(agent->holderPid(), SIGCONT), 0);
  ASSERT_GT(sent, 0) << std::strerror(send_errno);
  auto fetched = agent->fetch("forged");
  ASSERT_TRUE(fetched && fetched->has_value());
  ASSERT_TRUE((*fetched)->exit) << "exit_lost=" << (*fetched)->exit_lost;
  EXPECT_EQ(WEXITSTATUS((*fetched)->exit->wait_status), 7) << "a forged 99 was taken";
}

}  // namespace
}  // namespace kernelet::testing
