// Graceful node shutdown against a fake systemd-logind on a private bus
// (dbus-daemon; the fake is served with sd-bus): the agent's own D-Bus client
// takes the delay lock, and on PrepareForShutdown(true) stops the pods in the
// kubelet's order and time, then releases the lock.
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "agent/node/dbus_connection.h"
#include "agent/node/dbus_wire.h"
#include "agent/node/shutdown_manager.h"
#include "support/fake_logind.h"
#include "support/temp_dir.h"
#include "sys/timer_queue.h"

namespace kernelet::agent {
namespace {

using namespace std::chrono;
using Clock = steady_clock;

struct Stop {
  bool critical;
  int64_t grace;
  Clock::time_point at;
  std::function<void()> done;
};

class ShutdownManagerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(bus_.address().empty()) << bus_.error();
    auto l = EventLoop::create();
    ASSERT_TRUE(l);
    loop_ = std::make_unique<EventLoop>(std::move(*l));
    auto t = TimerQueue::create(*loop_);
    ASSERT_TRUE(t);
    timers_ = std::move(*t);
  }

  std::unique_ptr<ShutdownManager> start(int64_t grace, int64_t critical) {
    ShutdownManager::Settings s{.grace_seconds = grace,
                                .critical_seconds = critical,
                                .bus_address = bus_.address(),
                                .logind_conf_dir = dir_.path() + "/logind.conf.d",
                                .call_timeout = milliseconds(3000),
                                .reconnect_after = milliseconds(50),
                                .recheck_every = milliseconds(50)};
    return ShutdownManager::start(*loop_, *timers_, s,
                                  [this](bool critical, int64_t grace, std::function<void()> done) {
                                    stops_.push_back({critical, grace, Clock::now(), done});
                                  });
  }

  // Turns the loop until `ok` or `timeout`.
  bool runUntil(const std::function<bool()>& ok, milliseconds timeout = milliseconds(10000)) {
    auto end = Clock::now() + timeout;
    while (!ok()) {
      if (Clock::now() > end) {
        return false;
      }
      if (!loop_->runOnce(milliseconds(50))) {
        return false;
      }
    }
    return true;
  }

  testing::PrivateBus bus_;
  testing::TempDir dir_;
  std::unique_ptr<EventLoop> loop_;
  std::unique_ptr<TimerQueue> timers_;
  std::vector<Stop> stops_;
};

TEST_F(ShutdownManagerTest, OffByDefaultAsTheKubelet) {
  testing::FakeLogind logind(bus_.address(), 30'000'000, dir_.path());
  EXPECT_EQ(start(0, 0), nullptr);
  EXPECT_TRUE(logind.inhibits().empty());
}

TEST_F(ShutdownManagerTest, TakesTheDelayLockStopsPodsInOrderThenReleasesIt) {
  testing::FakeLogind logind(bus_.address(), 30'000'000, dir_.path());
  ASSERT_EQ(logind.error(), "");
  auto m = start(20, 8);
  ASSERT_NE(m, nullptr);
  EXPECT_TRUE(m->holdsLock());
  ASSERT_EQ(logind.inhibits().size(), 1u);
  testing::InhibitCall call = logind.inhibits()[0];
  EXPECT_EQ(call.what, "shutdown");
  EXPECT_EQ(call.who, "kernelet");
  EXPECT_EQ(call.why, "Kubelet needs time to handle node shutdown");
  EXPECT_EQ(call.mode, "delay");
  EXPECT_EQ(logind.locksHeld(), 1);
  EXPECT_EQ(logind.killUnitCalls(), 0) << "30s is enough: logind's config is left alone";

  logind.emitPrepareForShutdown(true);
  ASSERT_TRUE(runUntil([&] { return stops_.size() == 1; }));
  EXPECT_TRUE(m->shuttingDown());
  EXPECT_FALSE(stops_[0].critical) << "non-critical pods first";
  EXPECT_EQ(stops_[0].grace, 12) << "shutdownGracePeriod - shutdownGracePeriodCriticalPods";
  loop_->runOnce(milliseconds(100)).value();
  EXPECT_EQ(stops_.size(), 1u) << "the critical pods wait for the others";
  EXPECT_EQ(logind.locksHeld(), 1);

  stops_[0].done();  // the non-critical pods terminated
  ASSERT_TRUE(runUntil([&] { return stops_.size() == 2; }));
  EXPECT_TRUE(stops_[1].critical);
  EXPECT_EQ(stops_[1].grace, 8);
  EXPECT_EQ(logind.locksHeld(), 1) << "held while the critical pods terminate";

  stops_[1].done();
  ASSERT_TRUE(runUntil([&] { return !m->holdsLock(); }));
  EXPECT_TRUE(logind.waitForLocks(0, milliseconds(5000))) << "logind sees the lock released";
}

TEST_F(ShutdownManagerTest, AGroupThatOutlivesItsTimeIsLeftBehind) {
  testing::FakeLogind logind(bus_.address(), 30'000'000, dir_.path());
  auto m = start(2, 1);
  ASSERT_NE(m, nullptr);
  ASSERT_TRUE(m->holdsLock());
  logind.emitPrepareForShutdown(true);
  ASSERT_TRUE(runUntil([&] { return stops_.size() == 2; }));  // no done() from either group
  EXPECT_FALSE(stops_[0].critical);
  EXPECT_TRUE(stops_[1].critical);
  EXPECT_GE(stops_[1].at - stops_[0].at, milliseconds(990)) << "the first group's 1 s";
  ASSERT_TRUE(runUntil([&] { return !m->holdsLock(); }));
  EXPECT_GE(Clock::now() - stops_[1].at, milliseconds(990)) << "the critical group's 1 s";
  EXPECT_TRUE(logind.waitForLocks(0, milliseconds(5000)));
  stops_[0].done();  // late: nothing more happens
  stops_[1].done();
  loop_->runOnce(milliseconds(10)).value();
  EXPECT_EQ(stops_.size(), 2u);
}

TEST_F(ShutdownManagerTest, ACancelledShutdownTakesTheLockAgain) {
  testing::FakeLogind logind(bus_.address(), 30'000'000, dir_.path());
  auto m = start(2, 0);
  ASSERT_NE(m, nullptr);
  logind.emitPrepareForShutdown(true);
  ASSERT_TRUE(runUntil([&] { return stops_.size() == 2; }));
  stops_[0].done();
  stops_[1].done();
  ASSERT_TRUE(runUntil([&] { return !m->holdsLock(); }));
  logind.emitPrepareForShutdown(false);
  ASSERT_TRUE(runUntil([&] { return m->holdsLock(); }));
  EXPECT_FALSE(m->shuttingDown());
  EXPECT_EQ(logind.inhibits().size(), 2u);
  EXPECT_TRUE(logind.waitForLocks(1, milliseconds(5000)));
}

// logind would cut the shutdown short: the drop-in raises InhibitDelayMaxSec
// and systemd makes logind reload, as the kubelet does.
TEST_F(ShutdownManagerTest, AShortInhibitDelayIsRaisedThroughADropIn) {
  std::string conf = dir_.path() + "/logind.conf.d";
  testing::FakeLogind logind(bus_.address(), 5'000'000, conf);
  auto m = start(45, 15);
  ASSERT_NE(m, nullptr);
  ASSERT_TRUE(runUntil([&] { return m->holdsLock(); }));
  std::ifstream in(conf + "/99-kernelet.conf");
  std::stringstream text;
  text << in.rdbuf();
  EXPECT_NE(text.str().find("[Login]\nInhibitDelayMaxSec=45\n"), std::string::npos) << text.str();
  EXPECT_EQ(logind.killUnitCalls(), 1);
  EXPECT_EQ(logind.inhibitDelayMax(), 45'000'000u);
}

TEST_F(ShutdownManagerTest, AnInhibitDelayThatStaysShortTurnsTheFeatureOff) {
  std::string conf = dir_.path() + "/logind.conf.d";
  testing::FakeLogind logind(bus_.address(), 5'000'000, conf, /*reload_works=*/false);
  auto m = start(45, 15);
  ASSERT_NE(m, nullptr);
  ASSERT_TRUE(runUntil([&] { return timers_->size() == 0; }));  // the rechecks ran out
  EXPECT_FALSE(m->holdsLock());
  EXPECT_TRUE(logind.inhibits().empty());
  logind.emitPrepareForShutdown(true);
  loop_->runOnce(milliseconds(200)).value();
  EXPECT_TRUE(stops_.empty());
}

TEST_F(ShutdownManagerTest, WithoutLogindTheAgentCarriesOn) {
  // The bus is there, logind is not (the test VM, most containers).
  auto m = start(30, 10);
  ASSERT_NE(m, nullptr);
  EXPECT_FALSE(m->holdsLock());
  EXPECT_EQ(timers_->size(), 0u) << "no retry: the kubelet does not retry a failed start";
  // No bus at all.
  ShutdownManager::Settings none{.grace_seconds = 30,
                                 .bus_address = "unix:path=" + dir_.path() + "/no-bus"};
  auto n = ShutdownManager::start(*loop_, *timers_, none, [](bool, int64_t, auto) {});
  ASSERT_NE(n, nullptr);
  EXPECT_FALSE(n->holdsLock());
}

TEST(NodeShutdown, CriticalPodsGraceAndStatusAsTheKubelet) {
  Pod pod;
  EXPECT_FALSE(isCriticalPod(pod));
  pod.priority_class_name = "system-node-critical";
  EXPECT_TRUE(isCriticalPod(pod));
  pod.priority_class_name = "system-cluster-critical";
  EXPECT_TRUE(isCriticalPod(pod));
  pod.priority = 1000;  // a priority wins over the class's name
  EXPECT_FALSE(isCriticalPod(pod));
  pod.priority = 2000000000;
  pod.priority_class_name = "";
  EXPECT_TRUE(isCriticalPod(pod));

  pod.termination_grace_period_seconds = 30;
  EXPECT_EQ(shutdownGrace(pod, 20), 20);
  pod.termination_grace_period_seconds = 5;
  EXPECT_EQ(shutdownGrace(pod, 20), 5);

  PodStatus running;
  running.phase = "Running";
  markShutDown(running, "2026-11-30T20:00:00Z");
  EXPECT_EQ(running.phase, "Failed");
  EXPECT_EQ(running.reason, "Terminated");
  EXPECT_EQ(running.message, "Pod was terminated in response to imminent node shutdown.");
  ASSERT_EQ(running.conditions.size(), 1u);
  EXPECT_EQ(running.conditions[0].type, "DisruptionTarget");
  EXPECT_EQ(running.conditions[0].reason, "TerminationByKubelet");
  PodStatus done;
  done.phase = "Succeeded";
  markShutDown(done, "2026-11-30T20:00:00Z");
  EXPECT_EQ(done.phase, "Succeeded");
}

}  // namespace
}  // namespace kernelet::agent

namespace kernelet::agent::dbus {
namespace {

// A PrepareForShutdown(true) signal as logind sends it, to break in places.
std::string prepareForShutdown() {
  std::string m = encode({.path = "/org/freedesktop/login1",
                          .interface = "org.freedesktop.login1.Manager",
                          .member = "PrepareForShutdown",
                          .args = {{'i', "", 1}}},
                         7);
  m[1] = static_cast<char>(Type::kSignal);
  // encode() writes an 'i' argument; a bool has the same wire form.
  m.replace(m.find("\x01i\0", 0, 3), 3,
            std::string("\x01"
                        "b\0",
                        3));
  return m;
}

TEST(DbusWire, ReadsASignalAndRefusesBrokenOnes) {
  std::string good = prepareForShutdown();
  auto len = messageLength(good);
  ASSERT_TRUE(len && *len);
  EXPECT_EQ(**len, good.size());
  auto m = decode(good);
  ASSERT_TRUE(m) << m.error().message();
  EXPECT_EQ(m->member, "PrepareForShutdown");
  Reader r(m->body, m->signature, m->big_endian);
  EXPECT_EQ(r.readBool(), true);
  EXPECT_FALSE(Reader(m->body, m->signature, m->big_endian).readU64()) << "wrong type";

  EXPECT_EQ(*messageLength(good.substr(0, 10)), std::nullopt) << "more bytes needed";
  std::string endian = good;
  endian[0] = 'x';
  EXPECT_FALSE(messageLength(endian));
  EXPECT_FALSE(decode(good.substr(0, good.size() - 1))) << "truncated";
  std::string huge = good;
  huge[7] = '\x7f';  // a body of ~2 GiB
  EXPECT_FALSE(messageLength(huge));
  std::string bad_bool = good;
  bad_bool[bad_bool.size() - 4] = 2;
  auto b = decode(bad_bool);
  ASSERT_TRUE(b);
  EXPECT_FALSE(Reader(b->body, b->signature, b->big_endian).readBool());
}

TEST(DbusWire, BusAddresses) {
  EXPECT_EQ(unixSocketOf("unix:path=/run/dbus/system_bus_socket"), "/run/dbus/system_bus_socket");
  EXPECT_EQ(unixSocketOf("unix:abstract=/tmp/dbus-x,guid=12"), "@/tmp/dbus-x");
  EXPECT_EQ(unixSocketOf("tcp:host=x,port=1;unix:guid=1,path=/b"), "/b");
  EXPECT_FALSE(unixSocketOf("tcp:host=localhost,port=1"));
  EXPECT_FALSE(unixSocketOf(""));
}

}  // namespace
}  // namespace kernelet::agent::dbus
