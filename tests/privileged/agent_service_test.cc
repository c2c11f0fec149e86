// `kernelet run` as systemd runs it, end to end in the test VM: the real
// binary with NOTIFY_SOCKET and WATCHDOG_USEC set (a socket of the test's in
// systemd's place), the system bus a private dbus-daemon with a fake
// systemd-logind, --shutdown-grace-period given:
//   - READY=1 once the static pods are adopted, WATCHDOG=1 at half the
//     watchdog period, STOPPING=1 when it exits;
//   - the agent's oom_score_adj is -999, its containers' their QoS class's;
//   - PrepareForShutdown(true) stops the non-critical pod first, then the
//     critical one, both Failed with the kubelet's reason, then releases the
//     delay lock.

#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstddef>
#include <cstring>
#include <memory>
#include <optional>
#include <string>

#include "agent/status/pod_status.h"
#include "support/fake_logind.h"
#include "support/privileged.h"
#include "support/static_agent.h"
#include "sys/fileio.h"
#include "sys/unique_fd.h"

namespace kernelet::agent {
namespace {

using namespace std::chrono;
using testing::StaticAgent;

const std::string kImage = "fixtures.kernelet.test/busybox:latest";

// Exits at once on SIGTERM, so each group's end is the pods', not a timeout's.
std::string podYaml(const std::string& name, const std::string& extra_spec,
                    const std::string& resources) {
  return "apiVersion: v1\nkind: Pod\nmetadata:\n  name: " + name + "\nspec:\n" + extra_spec +
         "  containers:\n  - name: app\n    image: " + kImage +
         "\n    imagePullPolicy: Never\n    command: [\"sh\", \"-c\", \"trap 'exit 0' TERM; while "
         "true; do sleep 1; done\"]\n" +
         resources;
}

// systemd's end of NOTIFY_SOCKET.
class NotifySocket {
 public:
  explicit NotifySocket(const std::string& path) : path_(path) {
    fd_.reset(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
    bound_ = ::bind(fd_.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  }
  bool bound() const { return bound_; }
  // The next message that contains `needle`, skipping others; nullopt after `wait`.
  std::optional<std::string> waitFor(const std::string& needle, milliseconds wait) {
    auto end = steady_clock::now() + wait;
    while (steady_clock::now() < end) {
      pollfd p{fd_.get(), POLLIN, 0};
      auto left = duration_cast<milliseconds>(end - steady_clock::now());
      if (::poll(&p, 1, static_cast<int>(std::max<int64_t>(1, left.count()))) != 1) {
        continue;
      }
      char buf[4096];
      ssize_t n = ::recv(fd_.get(), buf, sizeof buf, 0);
      if (n <= 0) {
        continue;
      }
      std::string msg(buf, static_cast<size_t>(n));
      if (msg.find(needle) != std::string::npos) {
        return msg;
      }
    }
    return std::nullopt;
  }

 private:
  std::string path_;
  UniqueFd fd_;
  bool bound_ = false;
};

std::string procFile(pid_t pid, const char* name) {
  auto r = readFile("/proc/" + std::to_string(pid) + "/" + name);
  if (!r) {
    return "(unreadable)";
  }
  std::string s = *r;
  while (!s.empty() && s.back() == '\n') {
    s.pop_back();
  }
  return s;
}

class AgentService : public ::testing::Test {
 protected:
  void SetUp() override {
    KERNELET_REQUIRE_PRIVILEGED();
    agent_ = std::make_unique<StaticAgent>(KERNELET_BINARY, "service");
    auto err = agent_->importImage(std::string(KERNELET_FIXTURES) + "/oci/busybox");
    ASSERT_FALSE(err) << *err;
  }
  void TearDown() override {
    if (agent_ && agent_->pid() > 0) {
      agent_->stop();
    }
    agent_.reset();
    for (const char* v : {"NOTIFY_SOCKET", "WATCHDOG_USEC", "DBUS_SYSTEM_BUS_ADDRESS"}) {
      ::unsetenv(v);
    }
  }
  PodSummary waitFor(const std::string& name, const std::function<bool(const PodSummary&)>& ok,
                     const std::string& what, seconds timeout = seconds(120)) {
    if (auto p = agent_->waitFor(name, ok, timeout)) {
      return *p;
    }
    std::optional<PodSummary> last = agent_->pod(name);
    ADD_FAILURE() << name << ": " << what << " not reached; phase "
                  << (last ? last->status.phase : "(no status)") << "\n"
                  << agent_->log().substr(0, 20000);
    return last.value_or(PodSummary{});
  }
  std::unique_ptr<StaticAgent> agent_;
};

TEST_F(AgentService, UnderSystemdItNotifiesProtectsItselfAndStopsPodsOnNodeShutdown) {
  NotifySocket notify(agent_->base() + "/notify");
  ASSERT_TRUE(notify.bound());
  testing::PrivateBus bus;
  ASSERT_FALSE(bus.address().empty()) << bus.error();
  testing::FakeLogind logind(bus.address(), 60'000'000, agent_->base() + "/logind.conf.d");
  ASSERT_EQ(logind.error(), "");
  ::setenv("NOTIFY_SOCKET", (agent_->base() + "/notify").c_str(), 1);
  ::setenv("WATCHDOG_USEC", "4000000", 1);  // pings every 2 s
  ::setenv("DBUS_SYSTEM_BUS_ADDRESS", bus.address().c_str(), 1);

  agent_->writeManifest("plain.yaml", podYaml("plain", "", ""));
  agent_->writeManifest("critical.yaml",
                        podYaml("critical", "  priorityClassName: system-node-critical\n",
                                "    resources:\n      limits: {cpu: 100m, memory: 64Mi}\n"
                                "      requests: {cpu: 100m, memory: 64Mi}\n"));
  agent_->start({"--shutdown-grace-period", "40s", "--shutdown-grace-period-critical-pods", "20s"});

  auto ready = notify.waitFor("READY=1", milliseconds(120000));
  ASSERT_TRUE(ready) << agent_->log();
  EXPECT_NE(ready->find("STATUS=Running 2 pods"), std::string::npos) << *ready;
  EXPECT_TRUE(notify.waitFor("WATCHDOG=1", milliseconds(8000))) << "a ping within the period";
  EXPECT_EQ(procFile(agent_->pid(), "oom_score_adj"), "-999");
  ASSERT_TRUE(logind.waitForLocks(1, milliseconds(10000))) << agent_->log();

  auto running = [](const PodSummary& p) { return p.status.phase == "Running"; };
  waitFor("plain", running, "Running");
  waitFor("critical", running, "Running");
  auto plain_pid = agent_->containerPid("plain", "app");
  auto critical_pid = agent_->containerPid("critical", "app");
  ASSERT_TRUE(plain_pid && critical_pid) << agent_->log();
  EXPECT_EQ(procFile(*plain_pid, "oom_score_adj"), "1000") << "BestEffort";
  EXPECT_EQ(procFile(*critical_pid, "oom_score_adj"), "-997") << "Guaranteed";

  logind.emitPrepareForShutdown(true);
  auto failed = [](const PodSummary& p) { return p.status.phase == "Failed"; };
  PodSummary plain = waitFor("plain", failed, "Failed", seconds(60));
  EXPECT_EQ(plain.status.reason, "Terminated");
  EXPECT_EQ(plain.status.message, "Pod was terminated in response to imminent node shutdown.");
  // Read right after: the critical pod is still running while the others stop.
  std::optional<PodSummary> critical = agent_->pod("critical");
  ASSERT_TRUE(critical);
  EXPECT_NE(critical->status.phase, "Failed") << "critical pods stop after the others";
  *critical = waitFor("critical", failed, "Failed", seconds(60));
  EXPECT_EQ(critical->status.reason, "Terminated");
  auto json = readFile(agent_->root() + "/pods/" + critical->uid + "/status.json");
  ASSERT_TRUE(json);
  EXPECT_NE(json->find("DisruptionTarget"), std::string::npos) << *json;
  EXPECT_TRUE(logind.waitForLocks(0, milliseconds(30000))) << "the delay lock is released\n"
                                                           << agent_->log();

  EXPECT_EQ(agent_->stop(), 0) << agent_->log();
  EXPECT_TRUE(notify.waitFor("STOPPING=1", milliseconds(5000)));
}

}  // namespace
}  // namespace kernelet::agent
