// End-to-end tests of `kernelet run --kubeconfig` in the test VM whose agent
// or API server goes away while its pods run (cluster_e2e_test has the
// rest): nothing restarts, statuses catch up, a new agent adopts the pods.
// Each case has a cluster of its own. They run in the VM's network namespace
// (tests/CMakeLists.txt: KERNELET_TEST_INIT_NET), where the holder hears of
// exits while the agent is away.

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <iostream>
#include <memory>
#include <regex>
#include <sstream>
#include <string>
#include <thread>

#include "support/e2e_cluster.h"
#include "support/privileged.h"

namespace kernelet {
namespace {

using namespace std::chrono;
using testing::has;
using testing::podYaml;

class ClusterRestartE2E : public testing::E2eClusterTest {
 protected:
  testing::E2eCluster::Options options() const override {
    return {.name = "restart", .server = {.validate_agent = "admin", .token_ttl = 20}};
  }
};

TEST_F(ClusterRestartE2E, TheApiServerAwayRestartsNothingAndStatusesCatchUp) {
  c_->startAgent();
  apply("steady", podYaml("steady", "trap \"exit 0\" TERM; while true; do sleep 1; done"));
  waitKubectl("get pods", has("steady   1/1     Running"), "steady Running");
  std::string id = kubectl("get pod steady -o jsonpath={.status.containerStatuses[0].containerID}");
  c_->server().kill();
  // A minute away (lease renewals and watches fail meanwhile): the agent stays up.
  for (auto back = steady_clock::now() + seconds(60); steady_clock::now() < back;) {
    ASSERT_FALSE(c_->agentExited()) << c_->agentLog();
    std::this_thread::sleep_for(seconds(1));
  }
  ASSERT_TRUE(c_->server().restart());
  // A pod created after the return runs too: the watch came back.
  apply("late", podYaml("late", "trap \"exit 0\" TERM; while true; do sleep 1; done"));
  waitKubectl("get pods", has("late     1/1     Running"), "late Running");
  EXPECT_EQ(kubectl("get pod steady -o jsonpath={.status.containerStatuses[0].containerID}"), id);
  EXPECT_EQ(kubectl("get pod steady -o jsonpath={.status.containerStatuses[0].restartCount}"), "0");
  std::string log = c_->lastAgentLog();
  EXPECT_EQ(log.find("\"Container started\" pod=\"default/steady\"", log.find("steady") + 1),
            log.find("\"Container started\" pod=\"default/steady\""))
      << "steady's container started twice";
}

// A restarted agent adopts the pod: the API never hears that its running
// container is not running or not ready, and its id stays.
TEST_F(ClusterRestartE2E, AnAgentRestartAdoptsThePodWithoutAStatusFlap) {
  c_->startAgent({}, true);
  apply("steady", podYaml("steady", "while true; do sleep 1; done", "") +
                      "    readinessProbe: {exec: {command: [\"true\"]}, periodSeconds: 1}\n");
  waitKubectl("get pods", has("1/1     Running"), "steady Running and ready");
  std::string id = kubectl("get pod steady -o jsonpath={.status.containerStatuses[0].containerID}");
  std::string rv = kubectl("get pod steady -o jsonpath={.metadata.resourceVersion}");
  c_->stopAgent(SIGKILL);
  std::this_thread::sleep_for(seconds(5));
  c_->startAgent({}, true);
  waitKubectl(
      "get nodes",
      [&](const std::string&) { return c_->lastAgentLog().find("Adopted") != std::string::npos; },
      "the pod adopted");
  std::this_thread::sleep_for(seconds(5));  // the new agent's status writes, if any
  EXPECT_EQ(kubectl("get pod steady -o jsonpath={.status.containerStatuses[0].containerID}"), id);
  // Every version of the pod since the restart, as a watch replays them.
  std::string events =
      kubectl("get --raw '/api/v1/namespaces/default/pods?watch=1&resourceVersion=" + rv +
              "&timeoutSeconds=1'");
  std::istringstream lines(events);
  static const std::regex ready("\"ready\":\\s*true");
  int seen = 0;
  for (std::string line; std::getline(lines, line);) {
    if (line.find("\"steady\"") == std::string::npos) {
      continue;
    }
    seen++;
    EXPECT_NE(line.find("\"running\""), std::string::npos) << "a write said not running: " << line;
    EXPECT_TRUE(std::regex_search(line, ready)) << "a write said not ready: " << line;
  }
  // Stop the pod with the agent at the end.
  c_->stopAgent(SIGKILL);
  c_->startAgent();
  // Adopted by this third agent before TearDown's SIGTERM stops it and the pod.
  waitKubectl(
      "get pods",
      [&](const std::string&) {
        return c_->lastAgentLog().find("\"Adopted pod\"") != std::string::npos;
      },
      "the pod adopted again");
  std::cout << seen << " pod updates after the restart\n";
}

}  // namespace
}  // namespace kernelet
