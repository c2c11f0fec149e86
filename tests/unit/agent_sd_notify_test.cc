// The agent's sd_notify messages as systemd would receive them: a datagram
// socket of our own in NOTIFY_SOCKET's place, read back in order.
#include <gtest/gtest.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstddef>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "agent/app/sd_notify.h"
#include "support/temp_dir.h"
#include "sys/timer_queue.h"
#include "sys/unique_fd.h"

namespace kernelet::agent {
namespace {

using namespace std::chrono;
using Clock = steady_clock;

// The service manager's end: a bound datagram socket.
class Manager {
 public:
  // "/path" or "@abstract", as NOTIFY_SOCKET names it.
  explicit Manager(const std::string& address) : address_(address) {
    fd_.reset(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::memcpy(a.sun_path, address.data(), address.size());
    socklen_t len = offsetof(sockaddr_un, sun_path) + address.size() + 1;
    if (address[0] == '@') {
      a.sun_path[0] = '\0';
      len--;
    }
    bound_ = ::bind(fd_.get(), reinterpret_cast<sockaddr*>(&a), len) == 0;
  }
  bool bound() const { return bound_; }
  // The next datagram, or nullopt after `wait`.
  std::optional<std::string> next(milliseconds wait = milliseconds(2000)) {
    pollfd p{fd_.get(), POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(wait.count())) != 1) {
      return std::nullopt;
    }
    char buf[4096];
    ssize_t n = ::recv(fd_.get(), buf, sizeof buf, 0);
    if (n < 0) {
      return std::nullopt;
    }
    return std::string(buf, static_cast<size_t>(n));
  }

 private:
  std::string address_;
  UniqueFd fd_;
  bool bound_ = false;
};

struct Loop {
  Loop() {
    auto l = EventLoop::create();
    loop = std::make_unique<EventLoop>(std::move(*l));
    timers = std::move(*TimerQueue::create(*loop));
  }
  // Runs the loop (its timers) for `d`.
  void runFor(Clock::duration d) {
    auto end = Clock::now() + d;
    while (Clock::now() < end) {
      auto left = duration_cast<milliseconds>(end - Clock::now()) + milliseconds(1);
      ASSERT_TRUE(loop->runOnce(left));
    }
  }
  std::unique_ptr<EventLoop> loop;
  std::unique_ptr<TimerQueue> timers;
};

TEST(SdNotify, WatchdogIntervalIsOursOnlyAndWellFormed) {
  EXPECT_EQ(watchdogInterval("30000000", nullptr, 42), microseconds(30000000));
  EXPECT_EQ(watchdogInterval("30000000", "42", 42), microseconds(30000000));
  EXPECT_EQ(watchdogInterval("30000000", "", 42), microseconds(30000000));
  EXPECT_EQ(watchdogInterval("30000000", "43", 42), std::nullopt);  // another process's
  EXPECT_EQ(watchdogInterval("30000000", "4x", 42), std::nullopt);
  EXPECT_EQ(watchdogInterval(nullptr, nullptr, 42), std::nullopt);
  EXPECT_EQ(watchdogInterval("0", nullptr, 42), std::nullopt);
  EXPECT_EQ(watchdogInterval("-5", nullptr, 42), std::nullopt);
  EXPECT_EQ(watchdogInterval("12s", nullptr, 42), std::nullopt);
}

TEST(SdNotify, TheEnvironmentIsTakenSoChildrenDoNotInheritIt) {
  ::setenv("NOTIFY_SOCKET", "/run/systemd/notify", 1);
  ::setenv("WATCHDOG_USEC", "2000000", 1);
  ::setenv("WATCHDOG_PID", std::to_string(::getpid()).c_str(), 1);
  ServiceEnvironment env = takeServiceEnvironment();
  EXPECT_EQ(env.notify_socket, "/run/systemd/notify");
  EXPECT_EQ(env.watchdog, microseconds(2000000));
  EXPECT_EQ(::getenv("NOTIFY_SOCKET"), nullptr);
  EXPECT_EQ(::getenv("WATCHDOG_USEC"), nullptr);
  EXPECT_EQ(::getenv("WATCHDOG_PID"), nullptr);
  ServiceEnvironment none = takeServiceEnvironment();
  EXPECT_TRUE(none.notify_socket.empty());
  EXPECT_EQ(none.watchdog, std::nullopt);
}

TEST(SdNotify, MalformedAddressesAreRefusedWithTheAddress) {
  auto relative = SdNotifier::open("run/notify");
  ASSERT_FALSE(relative);
  EXPECT_NE(relative.error().message().find("run/notify"), std::string::npos);
  EXPECT_FALSE(SdNotifier::open("/" + std::string(200, 'x')));
}

TEST(SdNotify, WithoutNotifySocketNothingIsSentAndNoTimerRuns) {
  auto n = SdNotifier::open("");
  ASSERT_TRUE(n);
  EXPECT_FALSE(n->enabled());
  EXPECT_TRUE(n->send("READY=1"));
  Loop l;
  ServiceNotifier s(std::move(*n), microseconds(100000), *l.timers);
  s.start();
  s.ready("up");
  s.stopping("down");
  EXPECT_EQ(s.pingEvery(), std::nullopt);
  EXPECT_EQ(l.timers->size(), 0u);
}

TEST(SdNotify, MessagesArriveInOrderOnAPathSocket) {
  testing::TempDir dir;
  std::string path = dir.path() + "/notify";
  Manager m(path);
  ASSERT_TRUE(m.bound());
  auto n = SdNotifier::open(path);
  ASSERT_TRUE(n) << n.error().message();
  Loop l;
  ServiceNotifier s(std::move(*n), std::nullopt, *l.timers);  // no watchdog
  s.start();
  EXPECT_EQ(l.timers->size(), 0u);
  s.ready("Running 3 pods");
  s.ready("again");  // READY=1 once
  s.status("Running 4 pods");
  s.stopping("Exiting, leaving 4 pods running");
  s.stopping("again");
  EXPECT_EQ(m.next(), "READY=1\nSTATUS=Running 3 pods");
  EXPECT_EQ(m.next(), "STATUS=Running 4 pods");
  EXPECT_EQ(m.next(), "STOPPING=1\nSTATUS=Exiting, leaving 4 pods running");
  EXPECT_EQ(m.next(milliseconds(100)), std::nullopt);
}

TEST(SdNotify, AnAbstractSocketGetsTheMessages) {
  std::string name = "@kernelet-sd-notify-test-" + std::to_string(::getpid());
  Manager m(name);
  ASSERT_TRUE(m.bound());
  auto n = SdNotifier::open(name);
  ASSERT_TRUE(n) << n.error().message();
  EXPECT_TRUE(n->send("READY=1"));
  EXPECT_EQ(m.next(), "READY=1");
}

TEST(SdNotify, AManagerThatIsGoneIsAnErrorNotACrash) {
  testing::TempDir dir;
  auto n = SdNotifier::open(dir.path() + "/nobody");
  ASSERT_TRUE(n);
  auto r = n->send("READY=1");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find(dir.path() + "/nobody"), std::string::npos);
  Loop l;
  ServiceNotifier s(std::move(*n), std::nullopt, *l.timers);
  s.ready("logged, not fatal");
}

// WATCHDOG=1 at once, then every WATCHDOG_USEC/2 while the loop turns; none
// while the loop is stuck.
TEST(SdNotify, WatchdogPingsComeFromTheLoopAtHalfThePeriod) {
  testing::TempDir dir;
  std::string path = dir.path() + "/notify";
  Manager m(path);
  ASSERT_TRUE(m.bound());
  auto n = SdNotifier::open(path);
  ASSERT_TRUE(n);
  Loop l;
  ServiceNotifier s(std::move(*n), milliseconds(200), *l.timers);
  EXPECT_EQ(s.pingEvery(), milliseconds(100));
  s.start();
  s.ready("up");
  EXPECT_EQ(m.next(), "WATCHDOG=1");  // sent by start()
  EXPECT_EQ(m.next(), "READY=1\nSTATUS=up");

  // The loop does not turn: no ping, however long the period has passed.
  ::usleep(300 * 1000);
  EXPECT_EQ(m.next(milliseconds(0)), std::nullopt);

  // The loop turns: the overdue ping at once, then one per 100 ms.
  std::vector<Clock::time_point> at;
  auto start = Clock::now();
  while (Clock::now() - start < milliseconds(650)) {
    l.runFor(milliseconds(10));
    while (auto msg = m.next(milliseconds(0))) {
      EXPECT_EQ(*msg, "WATCHDOG=1");
      at.push_back(Clock::now());
    }
  }
  ASSERT_GE(at.size(), 4u) << "pings in 650 ms at a 100 ms period";
  EXPECT_LE(at.size(), 8u);
  EXPECT_LT(at[0] - start, milliseconds(50)) << "the overdue ping comes with the first turn";
  for (size_t i = 1; i < at.size(); i++) {
    // A timer never fires early; 10 ms is the polling step of this test.
    EXPECT_GE(at[i] - at[i - 1], milliseconds(90)) << "ping " << i;
  }
  s.stopping("bye");
  EXPECT_EQ(m.next(), "STOPPING=1\nSTATUS=bye");
}

}  // namespace
}  // namespace kernelet::agent
