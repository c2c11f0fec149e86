// Dialing a port inside a pod's network namespace (netns/dial.h), for real:
// in the test VM only (creating a namespace needs root; nothing touches the
// host's root namespace).
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <thread>

#include "netns/dial.h"
#include "netns/netns.h"
#include "support/privileged.h"
#include "support/process_util.h"

namespace kernelet::netns {
namespace {

using kernelet::testing::countEntries;
using namespace std::chrono_literals;

// A joined thread can still be listed in /proc/self/task for a moment (the
// kernel wakes the joiner before it reaps the task), so a count is awaited,
// bounded, rather than read once.
bool tasksDropTo(int want) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (kernelet::testing::countEntries("/proc/self/task") > want) {
    if (std::chrono::steady_clock::now() > deadline) {
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

std::string threadNetns() {
  std::error_code ec;
  return std::filesystem::read_symlink("/proc/thread-self/ns/net", ec).string();
}

class NetnsDialTest : public ::testing::Test {
 protected:
  void SetUp() override {
    KERNELET_REQUIRE_PRIVILEGED();
    char tmpl[] = "/tmp/kernelet-dial.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    ns_ = dir_ + "/pod";
    auto made = createNamespace(ns_);
    ASSERT_TRUE(made) << made.error().message();
  }
  void TearDown() override {
    for (pid_t pid : children_) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
    if (!ns_.empty()) {
      (void)removeNamespace(ns_);  // best effort: the test already reported
    }
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  // A process in the pod's namespace listening on 127.0.0.1:`port`; it
  // answers each of `conns` connections with `greeting` and closes it.
  void listenInPod(uint16_t port, const std::string& greeting, int conns) {
    int ready[2];
    ASSERT_EQ(::pipe2(ready, O_CLOEXEC), 0);
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      int ns = ::open(ns_.c_str(), O_RDONLY | O_CLOEXEC);
      if (ns < 0 || ::setns(ns, CLONE_NEWNET) != 0) {
        ::_exit(126);
      }
      int l = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_port = htons(port);
      a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      if (::bind(l, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 || ::listen(l, 64) != 0) {
        ::_exit(125);
      }
      (void)!::write(ready[1], "r", 1);
      for (int i = 0; i < conns; i++) {
        int c = ::accept4(l, nullptr, nullptr, SOCK_CLOEXEC);
        if (c >= 0) {
          (void)!::write(c, greeting.data(), greeting.size());
          ::close(c);
        }
      }
      ::_exit(0);
    }
    children_.push_back(pid);
    ::close(ready[1]);
    char c = 0;
    ASSERT_EQ(::read(ready[0], &c, 1), 1) << "the listener in the pod did not start";
    ::close(ready[0]);
  }

  static std::string readAllFrom(int fd) {
    std::string out;
    char buf[256];
    for (;;) {
      pollfd p{.fd = fd, .events = POLLIN, .revents = 0};
      if (::poll(&p, 1, 5000) != 1) {
        return out + "<timeout>";
      }
      ssize_t n = ::read(fd, buf, sizeof(buf));
      if (n <= 0) {
        return out;
      }
      out.append(buf, static_cast<size_t>(n));
    }
  }

  std::string dir_, ns_;
  std::vector<pid_t> children_;
};

TEST_F(NetnsDialTest, ReachesLoopbackInsideThePodOnly) {
  const std::string before = threadNetns();
  const int fds = countEntries("/proc/self/fd");
  const int threads = countEntries("/proc/self/task");
  listenInPod(8080, "hello from the pod", 1);
  {
    auto fd = dialLocalhost({ns_, "pod-1"}, 8080, 2s);
    ASSERT_TRUE(fd) << fd.error().message();
    EXPECT_EQ(readAllFrom(fd->get()), "hello from the pod");
  }
  // The caller never left its namespace; the dial's thread is gone.
  EXPECT_EQ(threadNetns(), before);
  EXPECT_EQ(countEntries("/proc/self/fd"), fds);
  EXPECT_TRUE(tasksDropTo(threads)) << countEntries("/proc/self/task") << " > " << threads;
}

TEST_F(NetnsDialTest, AClosedPortIsRefusedInContainerdsWords) {
  auto fd = dialLocalhost({ns_, "pod-1"}, 8081, 2s);
  ASSERT_FALSE(fd);
  std::string want =
      "failed to execute portforward in network namespace \"" + ns_ +
      "\": failed to connect to localhost:8081 inside namespace \"pod-1\", IPv4: dial tcp4 "
      "127.0.0.1:8081: connect: connection refused IPv6 dial tcp6 [::1]:8081: ";
  std::string got = fd.error().message();
  EXPECT_EQ(got.substr(0, want.size()), want) << got;
}

TEST_F(NetnsDialTest, BadNamespacePathsAreNamed) {
  auto missing = dialLocalhost({dir_ + "/nope", "x"}, 80, 1s);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().message(), "open `" + dir_ + "/nope`: No such file or directory");
  auto not_net = dialLocalhost({"/proc/self/ns/uts", "x"}, 80, 1s);
  ASSERT_FALSE(not_net);
  EXPECT_EQ(not_net.error().message(), "setns `/proc/self/ns/uts`: Invalid argument");
}

TEST_F(NetnsDialTest, DialerRunsManyAtOnceAndJoinsItsThreads) {
  constexpr int kDials = 24;
  listenInPod(9090, "hi", kDials);
  const int threads = countEntries("/proc/self/task");
  const int fds = countEntries("/proc/self/fd");
  std::mutex mu;
  std::condition_variable cv;
  int done = 0, greeted = 0;
  {
    Dialer dialer(2s, 64);
    for (int i = 0; i < kDials; i++) {
      dialer.dial({ns_, "pod-1"}, 9090, [&](Result<UniqueFd> r) {
        bool ok = r && readAllFrom(r->get()) == "hi";
        std::lock_guard lock(mu);
        greeted += ok ? 1 : 0;
        done++;
        cv.notify_all();
      });
    }
    std::unique_lock lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, 30s, [&] { return done == kDials; }));
  }
  EXPECT_EQ(greeted, kDials);
  EXPECT_TRUE(tasksDropTo(threads)) << countEntries("/proc/self/task") << " > " << threads;
  EXPECT_EQ(countEntries("/proc/self/fd"), fds);
}

}  // namespace
}  // namespace kernelet::netns
