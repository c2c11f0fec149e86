// netns/dial.h in the test's own namespace (an empty ns_path, as for a
// hostNetwork pod): the address families, the refusal's words, the Dialer's
// threads. Dialing inside another namespace is tests/privileged/netns_dial_test.cc.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <condition_variable>
#include <cstring>
#include <mutex>
#include <thread>

#include "netns/dial.h"
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

// A loopback socket on an ephemeral port, listening or not.
struct Loopback {
  explicit Loopback(bool listening) {
    fd.reset(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd) {
      ADD_FAILURE() << "socket: " << std::strerror(errno);
      return;
    }
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
    socklen_t len = sizeof(a);
    EXPECT_EQ(::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&a), &len), 0);
    port = ntohs(a.sin_port);
    if (listening) {
      EXPECT_EQ(::listen(fd.get(), 128), 0);
    }
  }
  UniqueFd fd;
  uint16_t port = 0;
};

TEST(NetnsDialUnitTest, ConnectsToAListenerOnLoopback) {
  Loopback l(true);
  auto fd = dialLocalhost({"", "host"}, l.port, 2s);
  ASSERT_TRUE(fd) << fd.error().message();
  UniqueFd accepted(::accept4(l.fd.get(), nullptr, nullptr, SOCK_CLOEXEC));
  ASSERT_TRUE(accepted);
  ASSERT_EQ(::write(fd->get(), "x", 1), 1);
  char c = 0;
  ASSERT_EQ(::read(accepted.get(), &c, 1), 1);
  EXPECT_EQ(c, 'x');
}

TEST(NetnsDialUnitTest, RefusalReadsAsContainerds) {
  Loopback closed(false);
  auto fd = dialLocalhost({"", "sandbox-7"}, closed.port, 2s);
  ASSERT_FALSE(fd);
  std::string p = std::to_string(closed.port);
  std::string want =
      "failed to execute portforward in network namespace \"host\": "
      "failed to connect to localhost:" +
      p + " inside namespace \"sandbox-7\", IPv4: dial tcp4 127.0.0.1:" + p +
      ": connect: connection refused IPv6 dial tcp6 [::1]:" + p + ": ";
  EXPECT_EQ(fd.error().message().substr(0, want.size()), want) << fd.error().message();
  EXPECT_EQ(fd.error().message().back(), ' ');  // containerd's trailing space
}

TEST(NetnsDialUnitTest, DialerRunsThemAllAndJoinsItsThreads) {
  Loopback l(true);
  const int threads = countEntries("/proc/self/task");
  std::mutex mu;
  std::condition_variable cv;
  int ok = 0, done = 0;
  {
    Dialer dialer(2s, 64);
    for (int i = 0; i < 30; i++) {
      dialer.dial({"", "host"}, l.port, [&](Result<UniqueFd> r) {
        std::lock_guard lock(mu);
        ok += r ? 1 : 0;
        done++;
        cv.notify_all();
      });
    }
    std::unique_lock lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, 20s, [&] { return done == 30; }));
  }
  EXPECT_EQ(ok, 30);
  EXPECT_TRUE(tasksDropTo(threads)) << countEntries("/proc/self/task") << " > " << threads;
}

TEST(NetnsDialUnitTest, DialerRefusesBeyondItsBound) {
  Dialer dialer(2s, 0);
  std::string err;
  dialer.dial({"", "host"}, 80, [&](Result<UniqueFd> r) {
    ASSERT_FALSE(r);
    err = r.error().message();
  });
  EXPECT_EQ(err, "dial: too many connections being dialed at once (at most 0)");
}

}  // namespace
}  // namespace kernelet::netns
